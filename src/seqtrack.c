/*
 * seqtrack.c - per-peer sequence tracking of WRITES batches (seqtrack.h).
 *
 * Owns: the peer table (a small array, found by id) and, per peer, the
 * bitmap of the batches a jump skipped (struct late): bit i says seq lo + i
 * arrived. The rules are in seqtrack.h.
 */
#include "seqtrack.h"

#include <stdlib.h>
#include <string.h>

#include "repl_codec.h"

struct late {
    uint64_t lo;      /* first seq covered; 0 = nothing pending */
    uint64_t len;     /* seqs covered: lo .. lo + len - 1 */
    uint64_t missing; /* of those, not arrived */
    double deadline;  /* after which the missing ones are lost */
    uint8_t *bits;
};

struct peer {
    char id[RC_MAX_ID_LEN + 1];
    uint64_t incarnation;
    uint64_t last_seq;   /* 0: no WRITES batch of this incarnation seen yet */
    uint64_t unverified; /* first seq seen of a new incarnation (or after a
                            jump) that the transfer under way must cover */
    struct late late;
};

struct seqtrack {
    double grace_s;
    seqtrack_gap_fn gap;
    void *gap_arg;
    size_t npeers;
    struct peer peers[SEQTRACK_MAX_PEERS];
};

struct seqtrack *seqtrack_create(double grace_s, seqtrack_gap_fn gap, void *arg)
{
    struct seqtrack *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->grace_s = grace_s;
    t->gap = gap;
    t->gap_arg = arg;
    return t;
}

static void late_clear(struct late *l)
{
    free(l->bits);
    memset(l, 0, sizeof *l);
}

void seqtrack_destroy(struct seqtrack *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->npeers; i++) late_clear(&t->peers[i].late);
    free(t);
}

static struct peer *peer_find(struct seqtrack *t, const char *id, size_t len)
{
    if (len > RC_MAX_ID_LEN) return NULL;
    for (size_t i = 0; i < t->npeers; i++)
        if (strlen(t->peers[i].id) == len && memcmp(t->peers[i].id, id, len) == 0)
            return &t->peers[i];
    if (t->npeers == SEQTRACK_MAX_PEERS) return NULL;
    struct peer *p = &t->peers[t->npeers++];
    memset(p, 0, sizeof *p);
    memcpy(p->id, id, len);
    return p;
}

static void lost(struct seqtrack *t, const struct peer *p, uint64_t n)
{
    t->gap(t->gap_arg, p->id, n);
}

/* Cover seqs up to `to` (so l->len reaches to - lo + 1). false: too many. */
static bool late_cover(struct late *l, uint64_t to)
{
    uint64_t len = to - l->lo + 1;
    if (len > SEQTRACK_LATE_MAX) return false;
    if (len > l->len) {
        size_t old = (size_t)((l->len + 7) / 8), need = (size_t)((len + 7) / 8);
        uint8_t *nb = realloc(l->bits, need);
        if (!nb) return false;
        memset(nb + old, 0, need - old);
        l->bits = nb;
        l->len = len;
    }
    return true;
}

static void late_mark(struct late *l, uint64_t seq)
{
    uint64_t i = seq - l->lo;
    l->bits[i / 8] |= (uint8_t)(1u << (i % 8));
}

static bool late_marked(const struct late *l, uint64_t seq)
{
    uint64_t i = seq - l->lo;
    return l->bits[i / 8] & (1u << (i % 8));
}

/* The peer's sequence jumped from last to seq: last+1 .. seq-1 may still
 * come. */
static void late_skip(struct seqtrack *t, struct peer *p, uint64_t last, uint64_t seq,
                      double now)
{
    struct late *l = &p->late;
    uint64_t skipped = seq - last - 1;
    if (!l->lo) {
        l->lo = last + 1;
        l->deadline = now + t->grace_s;
    }
    if (!late_cover(l, seq)) { /* too many to follow: lost */
        uint64_t missing = l->missing + skipped;
        late_clear(l);
        lost(t, p, missing);
        return;
    }
    l->missing += skipped;
    late_mark(l, seq);
}

/* A batch of this incarnation arrived: in order, or one that came late. */
static void late_arrived(struct late *l, uint64_t seq)
{
    if (!l->lo || seq < l->lo) return;
    if (seq >= l->lo + l->len) {
        if (late_cover(l, seq)) late_mark(l, seq);
        return;
    }
    if (late_marked(l, seq)) return;
    late_mark(l, seq);
    if (--l->missing == 0) late_clear(l); /* everything skipped arrived */
}

bool seqtrack_batch(struct seqtrack *t, const char *id, size_t len, uint64_t incarnation,
                    uint64_t seq, bool transfer_waiting, double now)
{
    struct peer *p = peer_find(t, id, len);
    if (!p) return false;
    if (p->incarnation == incarnation && p->last_seq) {
        if (seq <= p->last_seq) { /* redelivered, republished, or late */
            late_arrived(&p->late, seq);
            return true;
        }
        uint64_t last = p->last_seq;
        p->last_seq = seq;
        if (seq == last + 1)
            late_arrived(&p->late, seq);
        else if (transfer_waiting) /* the transfer under way may cover it */
            p->unverified = seq > p->unverified ? seq : p->unverified;
        else
            late_skip(t, p, last, seq, now);
        return false;
    }
    late_clear(&p->late);
    p->incarnation = incarnation; /* a new incarnation (or a new peer) */
    p->last_seq = seq;
    p->unverified = 0;
    if (seq <= 1) return false;
    if (transfer_waiting)
        p->unverified = seq;
    else
        lost(t, p, seq - 1);
    return false;
}

void seqtrack_expire(struct seqtrack *t, double now)
{
    for (size_t i = 0; i < t->npeers; i++) {
        struct late *l = &t->peers[i].late;
        if (!l->lo || now < l->deadline) continue;
        uint64_t missing = l->missing;
        late_clear(l);
        lost(t, &t->peers[i], missing);
    }
}

bool seqtrack_unverified(const struct seqtrack *t)
{
    for (size_t i = 0; i < t->npeers; i++)
        if (t->peers[i].unverified) return true;
    return false;
}

void seqtrack_covered(struct seqtrack *t, const char *id, size_t len, uint64_t incarnation,
                      uint64_t base)
{
    struct peer *p = peer_find(t, id, len);
    if (!p) return;
    if (p->incarnation != incarnation) { /* we have seen nothing of it yet */
        p->incarnation = incarnation;
        p->last_seq = base;
        p->unverified = 0;
        return;
    }
    if (p->last_seq < base) p->last_seq = base;
    if (p->unverified && p->unverified <= base + 1) p->unverified = 0;
}

void seqtrack_transfer_ended(struct seqtrack *t)
{
    for (size_t i = 0; i < t->npeers; i++) {
        struct peer *p = &t->peers[i];
        if (!p->unverified) continue;
        uint64_t n = p->unverified - 1;
        p->unverified = 0;
        lost(t, p, n);
    }
}
