/*
 * item.h - one key-value item as the store keeps it, and its accessors.
 *
 * Owns: nothing; this is a type. The store (store.c) makes, links and frees
 * items and is the only writer of their registers; the index (src/table.h)
 * and the TTL heap (ttlheap.h) hold pointers to them and read only the key
 * (table) or expire_ms (heap), and the heap keeps heap_idx; the protocol code reads them
 * through the accessors below.
 *
 * Layout. One allocation: a 40-byte header, the key, the value, then a
 * tail holding what most items do not need, each part only when its bit
 * in meta is set:
 *
 *    0        8          16     20       24        28       32    36  38 39 40
 *   +--------+----------+------+--------+---------+--------+-----+---+--+--+
 *   |version |expire_ms |origin|heap_idx|value_len|refcount|atime|key|fl|me|
 *   |        |          |      |        |         |        |     |len|ag|ta|
 *   +--------+----------+------+--------+---------+--------+-----+---+--+--+
 *   | key | value (a tombstone: its 8-byte expiry register time) | tail   |
 *   +-----+------------------------------------------------------+--------+
 *   tail: [exp_version 8, exp_origin 4] if ITEM_M_EXP_STAMP,
 *         then [client_flags 4]         if ITEM_M_CFLAGS
 *
 * The expiry register's stamp is stored only when it differs from the
 * value's (a set writes both with one stamp; a touch or an expire makes
 * them differ, a tombstone always keeps it), and client flags only when
 * not 0. The tail is unaligned: read it with memcpy (the accessors do).
 */
#ifndef VITAMIN_ITEM_H
#define VITAMIN_ITEM_H

#include <stdint.h>
#include <string.h>

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

/* item->meta: the eviction counter and the shape of the tail. */
enum item_meta {
    ITEM_M_FREQ = 0x0fu,        /* reads counted for eviction (see "lru" in
                                   store_evict.c), saturating at ITEM_FREQ_MAX */
    ITEM_M_EXP_STAMP = 1u << 4, /* the tail holds the expiry register's stamp */
    ITEM_M_CFLAGS = 1u << 5,    /* the tail holds client flags (not 0) */
};

#define ITEM_FREQ_MAX ITEM_M_FREQ

struct item {
    uint64_t version;     /* value register stamp: HLC timestamp ... */
    int64_t expire_ms;    /* absolute unix ms; 0 = never. Tombstone: when
                             the heap collects it (its expiry register's
                             time is in its data, after the key) */
    uint32_t origin;      /* ... and the tag of the node that wrote the value */
    uint32_t heap_idx;    /* position in the TTL heap, TTLHEAP_NONE if not in it */
    uint32_t value_len;   /* bytes of value after the key (0 for a tombstone) */
    uint32_t refcount;    /* replies still pointing at this item */
    uint32_t atime;       /* last access (created, or store_get), unix s;
                             local, not replicated */
    uint16_t key_len;     /* bytes of key at data[0] */
    uint8_t flags;        /* enum item_flags */
    uint8_t meta;         /* enum item_meta */
    char data[];          /* key, value, tail (see "Layout") */
};

static inline const char *item_key(const struct item *it) { return it->data; }
static inline const char *item_value(const struct item *it)
{
    return it->data + it->key_len;
}

/* Where the tail starts. */
static inline const char *item_tail(const struct item *it)
{
    return it->data + it->key_len + it->value_len +
           ((it->flags & ITEM_F_TOMBSTONE) ? sizeof(int64_t) : 0);
}

/* Bytes of the tail for these meta bits. */
static inline size_t item_tail_len(uint8_t meta)
{
    return ((meta & ITEM_M_EXP_STAMP) ? 12u : 0u) + ((meta & ITEM_M_CFLAGS) ? 4u : 0u);
}

/* The expiry register's stamp: version and origin. */
static inline uint64_t item_exp_version(const struct item *it)
{
    if (!(it->meta & ITEM_M_EXP_STAMP)) return it->version;
    uint64_t v;
    memcpy(&v, item_tail(it), sizeof v);
    return v;
}

static inline uint32_t item_exp_origin(const struct item *it)
{
    if (!(it->meta & ITEM_M_EXP_STAMP)) return it->origin;
    uint32_t o;
    memcpy(&o, item_tail(it) + 8, sizeof o);
    return o;
}

/* memcached's opaque 32-bit flags (0 unless set). */
static inline uint32_t item_client_flags(const struct item *it)
{
    if (!(it->meta & ITEM_M_CFLAGS)) return 0;
    uint32_t f;
    memcpy(&f, item_tail(it) + ((it->meta & ITEM_M_EXP_STAMP) ? 12 : 0), sizeof f);
    return f;
}

/* Reads counted for eviction. */
static inline unsigned item_freq(const struct item *it)
{
    return it->meta & ITEM_M_FREQ;
}

#endif
