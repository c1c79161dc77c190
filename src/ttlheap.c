/*
 * ttlheap.c - binary min-heap of items keyed by item->expire_ms.
 *
 * Owns: the id array a[] (never the items; item(i) below is the item a[i]
 * names). Invariants:
 *   - item((i-1)/2)->expire_ms <= item(i)->expire_ms for every 0 < i < len;
 *   - item(i)->heap_idx == i for every i < len, and an item outside the heap
 *     has heap_idx == TTLHEAP_NONE;
 *   - cap is 0 or a power of two >= HEAP_MIN_CAP, and len <= cap.
 *
 *   index:   0   1   2   3   4   5   6          children of i: 2i+1, 2i+2
 *   a[]:   [ 5 | 9 | 7 |12 |10 | 8 |   ]        parent of i:   (i-1)/2
 *             \_heap_idx back-pointers_/
 *
 * Growth doubles cap; a remove that leaves len <= cap/4 halves it (never
 * below HEAP_MIN_CAP), so a mass expiry gives the memory back. The store
 * accounts cap * 4 bytes (ttlheap_bytes), and before a push
 * asks what it would add (ttlheap_push_bytes).
 */
#include "ttlheap.h"

#include <stdlib.h>

#include "item.h"

#define HEAP_MIN_CAP 16u

void ttlheap_init(struct ttlheap *h, const char *base)
{
    h->a = NULL;
    h->base = base;
    h->len = 0;
    h->cap = 0;
}

void ttlheap_free(struct ttlheap *h)
{
    for (uint32_t i = 0; i < h->len; i++) ttlheap_at(h, i)->heap_idx = TTLHEAP_NONE;
    free(h->a);
    ttlheap_init(h, h->base);
}

static inline int64_t key_at(const struct ttlheap *h, uint32_t i)
{
    return ttlheap_at(h, i)->expire_ms;
}

static inline void place(struct ttlheap *h, uint32_t i, struct item *it)
{
    h->a[i] = slab_id(h->base, it);
    it->heap_idx = i;
}

static void sift_up(struct ttlheap *h, uint32_t i)
{
    struct item *it = ttlheap_at(h, i);
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (key_at(h, parent) <= it->expire_ms) break;
        place(h, i, ttlheap_at(h, parent));
        i = parent;
    }
    place(h, i, it);
}

static void sift_down(struct ttlheap *h, uint32_t i)
{
    struct item *it = ttlheap_at(h, i);
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= h->len || c < i) break;
        if (c + 1 < h->len && key_at(h, c + 1) < key_at(h, c)) c++;
        if (key_at(h, c) >= it->expire_ms) break;
        place(h, i, ttlheap_at(h, c));
        i = c;
    }
    place(h, i, it);
}

/* Move a[i] up or down, whichever its key now requires. */
static void fix(struct ttlheap *h, uint32_t i)
{
    if (i > 0 && key_at(h, (i - 1) / 2) > key_at(h, i))
        sift_up(h, i);
    else
        sift_down(h, i);
}

static int resize(struct ttlheap *h, uint32_t cap)
{
    uint32_t *a = realloc(h->a, (size_t)cap * sizeof *a);
    if (a == NULL) return -1;
    h->a = a;
    h->cap = cap;
    return 0;
}

/* The cap a push into a full heap grows it to. */
static uint32_t grown_cap(const struct ttlheap *h)
{
    return h->cap ? h->cap * 2 : HEAP_MIN_CAP;
}

size_t ttlheap_push_bytes(const struct ttlheap *h)
{
    if (h->len < h->cap) return 0;
    return (size_t)(grown_cap(h) - h->cap) * sizeof *h->a;
}

struct item *ttlheap_min_except(const struct ttlheap *h, const struct item *skip)
{
    if (h->len && ttlheap_at(h, 0) != skip) return ttlheap_at(h, 0);
    struct item *best = NULL; /* skip is the root: the smaller child */
    for (uint32_t i = 1; i <= 2 && i < h->len; i++)
        if (!best || key_at(h, i) < best->expire_ms) best = ttlheap_at(h, i);
    return best;
}

int ttlheap_push(struct ttlheap *h, struct item *it)
{
    if (h->len == h->cap) {
        if (h->cap > UINT32_MAX / 4) return -1;
        if (resize(h, grown_cap(h)) != 0) return -1;
    }
    place(h, h->len++, it);
    sift_up(h, h->len - 1);
    return 0;
}

void ttlheap_remove(struct ttlheap *h, struct item *it)
{
    uint32_t i = it->heap_idx;
    if (i == TTLHEAP_NONE) return;
    it->heap_idx = TTLHEAP_NONE;
    struct item *last = ttlheap_at(h, --h->len);
    if (i != h->len) {
        place(h, i, last);
        fix(h, i);
    }
    /* A failed shrink keeps the bigger array, which is harmless. */
    if (h->cap > HEAP_MIN_CAP && h->len <= h->cap / 4)
        (void)resize(h, h->cap / 2);
}

void ttlheap_update(struct ttlheap *h, struct item *it)
{
    if (it->heap_idx != TTLHEAP_NONE) fix(h, it->heap_idx);
}

void ttlheap_moved(struct ttlheap *h, const struct item *it)
{
    if (it->heap_idx != TTLHEAP_NONE) h->a[it->heap_idx] = slab_id(h->base, it);
}
