/*
 * item.h - one key-value item as the store keeps it, and its accessors.
 *
 * Owns: nothing; this is a type. The store (store.c) makes, links and frees
 * items; the index (src/table.h) and the TTL heap (ttlheap.h) hold pointers
 * to them and read only the key (table) or expire_ms and heap_idx (heap);
 * the protocol code reads them through a store lookup.
 *
 * Layout. One allocation: the header below, then the key bytes, then the
 * value bytes (a tombstone keeps, in place of a value, the 8-byte time of
 * its expiry register; see store.h "Items"):
 *
 *   +-------------------------------+---------------+-----------------+
 *   | struct item header            | key (key_len) | value (value_len)|
 *   +-------------------------------+---------------+-----------------+
 *                                   ^ data
 */
#ifndef VITAMIN_ITEM_H
#define VITAMIN_ITEM_H

#include <stdint.h>

enum item_flags {
    ITEM_F_LINKED = 1u << 0,    /* reachable from the table */
    ITEM_F_TOMBSTONE = 1u << 1, /* no value, never returned; see store.h */
    ITEM_F_PLAIN = 1u << 3,     /* a cache for the reply encoder: the value
                                   is known to need no escaping. An item's
                                   value never changes, so it stays true. */
    ITEM_F_EXPIRED = 1u << 4,   /* tombstone left by an expiry (not a delete):
                                   a write with the same value stamp and a
                                   later expiry brings the value back */
    /* Read state and recache marks (memcached meta's h, X, W/Z). Local to
     * this node, never replicated; a new item (any write of a value,
     * local or replicated) starts with all three clear. */
    ITEM_F_FETCHED = 1u << 5,   /* read by a client (store_get) */
    ITEM_F_STALE = 1u << 6,     /* invalidated: served as stale until rewritten */
    ITEM_F_WON = 1u << 7,       /* its recache token was handed to a client */
};

/* Reads counted per item for eviction saturate here (item->freq). */
#define ITEM_FREQ_MAX 15

struct item {
    uint64_t version;     /* value register stamp: HLC timestamp ... */
    uint64_t exp_version; /* expiry register stamp: HLC timestamp ... */
    int64_t expire_ms;    /* absolute unix ms; 0 = never. Tombstone: when
                             the heap collects it (its expiry register's
                             time is in its data, after the key) */
    uint32_t origin;      /* ... and the tag of the node that wrote the value */
    uint32_t exp_origin;  /* ... and of the node that set the expiry */
    uint32_t heap_idx;    /* position in the TTL heap, TTLHEAP_NONE if not in it */
    uint32_t value_len;   /* bytes of value after the key */
    uint32_t client_flags;/* memcached's opaque 32-bit flags (0 otherwise) */
    uint32_t refcount;    /* replies still pointing at this item */
    uint16_t key_len;     /* bytes of key at data[0] */
    uint8_t flags;        /* enum item_flags */
    uint8_t freq;         /* eviction: reads counted, saturating at
                             ITEM_FREQ_MAX (see "lru" in store_evict.c) */
    uint32_t atime;       /* last access (created, or store_get), unix s;
                             local, not replicated */
    char data[];          /* key bytes, then value bytes */
};

static inline const char *item_key(const struct item *it) { return it->data; }
static inline const char *item_value(const struct item *it)
{
    return it->data + it->key_len;
}

#endif
