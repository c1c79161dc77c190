/*
 * store_impl.h - what the two halves of the store share: struct store, the
 * item tests both need, and the steps each half offers the other.
 * Internal: only store.c and store_evict.c include it.
 *
 * Owns: the layout of struct store (the fields store_evict.c writes are
 * marked; store.c writes the rest).
 *
 * The seam. store.c owns the items and their lifetime: it makes, links,
 * replaces and frees them, merges writes by last-writer-wins, serves
 * reads, and keeps the accounting, the counters and the digests exact.
 * store_evict.c decides what leaves without a client asking for it: the
 * victim of an eviction at the cap, the due items at the top of the heap,
 * and the items a flush killed (the flush sweep). It removes them only
 * through store.c's store_remove_at() and store_expire_item(), so the
 * accounting stays in one place.
 */
#ifndef VITAMIN_STORE_IMPL_H
#define VITAMIN_STORE_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "hlc.h"
#include "rdigest.h"
#include "slab.h"
#include "store.h"
#include "table.h"
#include "ttlheap.h"

struct store {
    struct slab *slab;      /* where every item lives */
    struct table tb;        /* the index: every linked item */
    struct ttlheap heap;    /* every linked item with expire_ms != 0 */
    struct store_config cfg;
    uint64_t item_bytes;    /* cost of every linked item */
    uint64_t items;         /* linked non-tombstone items */
    uint64_t tombstones;    /* linked tombstones */
    uint64_t expired;       /* see struct store_stats */
    uint64_t evicted;       /* (counted by store_evict.c) */
    uint64_t expired_unfetched;
    uint64_t evicted_unfetched; /* (counted by store_evict.c) */
    uint64_t digest;        /* XOR of item_digest() of linked non-tombstones */
    struct rdigest rd;      /* the same split by key range (range_digests) */
    uint64_t flush_ver;     /* flush watermark in effect (0: never flushed) */
    uint32_t flush_origin;
    uint64_t pend_ver;      /* a delayed flush's watermark, not yet due */
    uint32_t pend_origin;
    uint64_t max_version;   /* no item ever linked had a newer value stamp */
    uint64_t below_flush;   /* linked live items below the watermark, not
                               yet swept (exact when the flush was newer
                               than max_version; see store_live_items) */
    /* the flush sweep (store_evict.c): */
    bool sweep_due;         /* items below the watermark may still be linked */
    uint64_t sweep_cursor;  /* where the sweep goes on (table_walk) */
};

/* ---- items ------------------------------------------------------------ */

static inline bool is_tomb(const struct item *it)
{
    return (it->flags & ITEM_F_TOMBSTONE) != 0;
}

static inline bool is_expired(const struct item *it, int64_t now_ms)
{
    return it->expire_ms != 0 && it->expire_ms <= now_ms;
}

/* A value stamped v is below a flush watermark that is in effect (by
 * version alone: a write stamped exactly at a delayed flush's time lives). */
static inline bool flushed(const struct store *s, uint64_t v, int64_t now_ms)
{
    return v < s->flush_ver ||
           (s->pend_ver && v < s->pend_ver && now_ms >= hlc_physical_ms(s->pend_ver));
}

/* A live item leaves because its time came. */
static inline void count_expired(struct store *s, const struct item *it)
{
    s->expired++;
    if (!(it->flags & ITEM_F_FETCHED)) s->expired_unfetched++;
}

/* ---- memory ----------------------------------------------------------- */

/* What stats() reports as bytes; see "Accounting" in store.c. */
static inline uint64_t store_bytes(const struct store *s)
{
    return s->item_bytes + table_bytes(&s->tb) + ttlheap_bytes(&s->heap) +
           (s->cfg.range_digests ? rdigest_bytes() : 0);
}

/* Would adding add bytes and freeing sub keep bytes under the cap? */
static inline bool fits(const struct store *s, uint64_t add, uint64_t sub)
{
    return store_bytes(s) + add <= s->cfg.memory_limit + sub;
}

/* ---- store.c, for store_evict.c ---------------------------------------- */

/* Unlink the item at loc (out of the table, the heap, the accounting and
 * the digest) and free it unless a reply still references it. */
void store_remove_at(struct store *s, struct table_loc loc);

/* Its time came: counted as expired, it turns into a tombstone (its own
 * registers) or goes. hash and loc are its own. */
void store_expire_item(struct store *s, uint64_t hash, struct table_loc loc,
                       struct item *it, int64_t now_ms);

/* Start shrinking a sparse table, if the smaller array fits the cap. */
void store_maybe_shrink(struct store *s);

/* A delayed flush whose time has come takes effect. */
void store_flush_due(struct store *s, int64_t now_ms);

/* ---- store_evict.c, for store.c ---------------------------------------- */

/* Evict one item by the configured policy, never protect (the item a
 * write replaces). Returns false when there is nothing to evict, or the
 * policy is noeviction. */
bool store_evict_one(struct store *s, const struct item *protect, int64_t now_ms);

/* A flush watermark moved: the sweep starts again from the beginning. */
void store_sweep_restart(struct store *s);

#endif
