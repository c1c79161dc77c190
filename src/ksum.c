/*
 * ksum.c - the key-summary table (see ksum.h).
 *
 * Owns: one array of slots, a power of two long. A key hash's home slot is
 * taken from the hash mixed with a random seed of the table's own: key
 * hashes are XXH3 with seed 0, which anyone can compute, so keys chosen to
 * share home slots would otherwise make inserts quadratic. A collision
 * probes the next slots. Nothing is ever removed, so no tombstones are
 * needed.
 */
#include "ksum.h"

#include <stdlib.h>
#include <sys/random.h>

#include "hlc.h"

#define KSUM_MIN_SLOTS 64

struct ksum {
    struct ksum_entry *slots;
    size_t nslots; /* a power of two */
    size_t count;  /* entries held: at most 3/4 of nslots */
    size_t max;    /* entries it may ever hold */
    uint64_t seed; /* mixed into home slots */
};

/* Slots for n entries at most 3/4 full. */
static size_t slots_for(size_t n)
{
    size_t s = KSUM_MIN_SLOTS;
    while (s / 4 * 3 < n && s < SIZE_MAX / 2 / sizeof(struct ksum_entry)) s *= 2;
    return s;
}

/* hash's home slot: hash ^ seed, multiplied and folded (xorshift). */
static size_t home(uint64_t hash, uint64_t seed, size_t nslots)
{
    uint64_t x = (hash ^ seed) * UINT64_C(0x9e3779b97f4a7c15);
    x ^= x >> 29;
    return (size_t)x & (nslots - 1);
}

/* The slot that holds hash, or the empty one where it would go. */
static struct ksum_entry *probe(struct ksum_entry *slots, size_t nslots, uint64_t seed,
                                uint64_t hash)
{
    size_t i = home(hash, seed, nslots);
    while (slots[i].used && slots[i].hash != hash) i = (i + 1) & (nslots - 1);
    return &slots[i];
}

struct ksum *ksum_create(size_t max, size_t expect)
{
    struct ksum *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->max = max;
    if (getrandom(&t->seed, sizeof t->seed, GRND_NONBLOCK) != sizeof t->seed)
        t->seed = (uint64_t)(uintptr_t)t * UINT64_C(0xbf58476d1ce4e5b9);
    t->nslots = slots_for(expect < max ? expect : max);
    t->slots = calloc(t->nslots, sizeof *t->slots);
    if (!t->slots) {
        free(t);
        return NULL;
    }
    return t;
}

void ksum_destroy(struct ksum *t)
{
    if (!t) return;
    free(t->slots);
    free(t);
}

/* Double the slots. Returns 0, or -1 (t unchanged) on ENOMEM. */
static int grow(struct ksum *t)
{
    size_t n = t->nslots * 2;
    struct ksum_entry *slots = calloc(n, sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i < t->nslots; i++)
        if (t->slots[i].used) *probe(slots, n, t->seed, t->slots[i].hash) = t->slots[i];
    free(t->slots);
    t->slots = slots;
    t->nslots = n;
    return 0;
}

int ksum_put(struct ksum *t, const struct ksum_entry *e)
{
    struct ksum_entry *at = probe(t->slots, t->nslots, t->seed, e->hash);
    if (at->used) {
        if (hlc_stamp_newer(at->version, at->origin, e->version, e->origin)) {
            at->version = e->version;
            at->origin = e->origin;
        }
        if (hlc_stamp_newer(at->exp_version, at->exp_origin, e->exp_version, e->exp_origin)) {
            at->exp_version = e->exp_version;
            at->exp_origin = e->exp_origin;
        }
        return 0;
    }
    if (t->count >= t->max) return -1;
    if (t->count + 1 > t->nslots / 4 * 3) {
        if (grow(t) != 0) return -1;
        at = probe(t->slots, t->nslots, t->seed, e->hash);
    }
    *at = *e;
    at->mark = 0;
    at->used = true;
    t->count++;
    return 0;
}

struct ksum_entry *ksum_find(const struct ksum *t, uint64_t hash)
{
    struct ksum_entry *at = probe(t->slots, t->nslots, t->seed, hash);
    return at->used ? at : NULL;
}

size_t ksum_count(const struct ksum *t)
{
    return t->count;
}

struct ksum_entry *ksum_next(const struct ksum *t, size_t *pos, size_t end)
{
    if (end > t->nslots) end = t->nslots;
    while (*pos < end) {
        struct ksum_entry *e = &t->slots[(*pos)++];
        if (e->used) return e;
    }
    return NULL;
}

bool ksum_done(const struct ksum *t, size_t pos)
{
    return pos >= t->nslots;
}
