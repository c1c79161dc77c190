/*
 * ttlheap.h - binary min-heap of items ordered by item->expire_ms.
 *
 * Owns: the heap array only: 4-byte item ids (slab.h: an item's offset
 * from base / 8), not pointers. Each item records its own position
 * (item->heap_idx), so remove and update are O(log n) without a search.
 * Invariant: item->heap_idx == TTLHEAP_NONE exactly when the item is not in
 * the heap; for every i>0, a[(i-1)/2]->expire_ms <= a[i]->expire_ms.
 * The array grows by doubling and shrinks by half when a quarter full, so
 * memory comes back after a mass expiry.
 */
#ifndef VITAMIN_TTLHEAP_H
#define VITAMIN_TTLHEAP_H

#include <stddef.h>
#include <stdint.h>

#include "slab.h"

struct item;

#define TTLHEAP_NONE UINT32_MAX

struct ttlheap {
    uint32_t *a;     /* item ids; a[0] has the smallest expire_ms */
    const char *base;/* where ids count from: every item lies at or after it,
                        within SLAB_MAX_RANGE */
    uint32_t len;    /* items in the heap */
    uint32_t cap;    /* slots allocated in a */
};

/* An empty heap of items that lie at base or after it. */
void ttlheap_init(struct ttlheap *h, const char *base);
void ttlheap_free(struct ttlheap *h);
/* Insert it (it->heap_idx must be TTLHEAP_NONE). Returns 0, or -1 on ENOMEM. */
int ttlheap_push(struct ttlheap *h, struct item *it);
/* Remove it from wherever it is; no-op if it->heap_idx == TTLHEAP_NONE. */
void ttlheap_remove(struct ttlheap *h, struct item *it);
/* it is a copy of an item at it->heap_idx (or of one not in the heap), made
 * at another address: the heap names the copy from now on. */
void ttlheap_moved(struct ttlheap *h, const struct item *it);
/* Restore order after it->expire_ms changed (it must be in the heap). */
void ttlheap_update(struct ttlheap *h, struct item *it);
/* Smallest item, or NULL when empty. */
static inline struct item *ttlheap_at(const struct ttlheap *h, uint32_t i)
{
    return (struct item *)slab_ptr(h->base, h->a[i]);
}
static inline struct item *ttlheap_peek(const struct ttlheap *h)
{
    return h->len ? ttlheap_at(h, 0) : NULL;
}
/* The item with the smallest expire_ms other than skip, or NULL. */
struct item *ttlheap_min_except(const struct ttlheap *h, const struct item *skip);
/* Items in the heap. */
static inline size_t ttlheap_len(const struct ttlheap *h) { return h->len; }
/* Bytes the next push would add to ttlheap_bytes (0 unless it is full). */
size_t ttlheap_push_bytes(const struct ttlheap *h);
/* Bytes allocated by the heap (for memory accounting). */
static inline size_t ttlheap_bytes(const struct ttlheap *h)
{
    return (size_t)h->cap * sizeof *h->a;
}

#endif
