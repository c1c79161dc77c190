/*
 * store.h - the key-value store: items, open-addressing hash table, TTL
 * heap, memory cap and eviction, last-writer-wins versions, items digest.
 *
 * Owns: every item and the index over them. Knows nothing of the protocol or
 * of the network: keys and values are byte strings, times are absolute unix
 * milliseconds passed in by the caller (the store never reads a clock).
 *
 * Items (item.h). One allocation per item: header, then key bytes, then
 * value bytes. An item is "live" when linked, not a tombstone, not expired at now_ms and
 * not older than the flush watermark. A tombstone remembers a key that
 * stopped being live (a delete, or an expiry while tombstones are on) so
 * that an older, delayed write cannot bring it back, until the heap collects
 * it tombstone_ttl_ms later. Tombstones are only made when
 * tombstone_ttl_ms > 0.
 *
 * Two registers per key. Each key holds a value register (value bytes,
 * client flags, or "deleted"; stamp version/origin) and an expiry register
 * (expire_ms; stamp exp_version/exp_origin), each merged by last-writer-wins
 * on its own stamp (see store_write). A set writes both with one stamp; a
 * touch/expire writes only the expiry register; a delete writes both
 * (value "deleted", expiry 0). So an expiry change never undoes a newer
 * value, and a newer set's value always survives a concurrent expire.
 * A stamp is (version, origin): a hybrid-logical-clock timestamp and a tag
 * of the node that made it; local writes use a fresh HLC tick, which is
 * greater than anything the store holds.
 *
 * Flush. store_flush() records a watermark stamp W: every item whose value
 * stamp is below W is dead once the clock reaches W's time (a delayed
 * flush), and writes stamped below W are refused from then on. Dead items
 * are removed by a bounded sweep run from store_expire_due().
 *
 * Hash table. Linear probing over 8-byte slots, each holding the item pointer
 * and a 16-bit tag of its hash, so probes rarely touch items. Deletion by
 * backward shift (no tombstone slots). Growth is incremental: a new table is
 * allocated at 3/4 load and whole probe clusters are moved from the old one
 * a few at a time on every write and from store_maintain(); lookups consult
 * both tables while a move is under way, so no call ever rehashes everything.
 *
 * References. A reply may point at an item's value until it is sent:
 * store_item_ref()/store_item_unref(). An item that is replaced, deleted,
 * expired or evicted while referenced is unlinked at once (it stops counting
 * toward the memory cap) and freed at its last unref.
 *
 * Memory. bytes = sum of the allocated size of every linked item (as malloc
 * reports it, plus its chunk header) + the table(s) + the heap. A write that
 * would pass memory_limit first evicts by policy: LRU = sampled eviction
 * by heat (reads counted, halved per idle minute; the coldest of 8 random
 * items goes, drawn again up to 4 times while all drawn were read; see
 * store_evict.c), TTL = earliest expire_ms from the heap,
 * NONE = refuse.
 *
 * Digest. items_digest = XOR over live items of item_digest(key, value,
 * client flags, expire_ms), kept up to date on every change, so two stores
 * with the same live data have the same digest whatever the order of the
 * writes.
 */
#ifndef VITAMIN_STORE_H
#define VITAMIN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "item.h"
#include "slab.h"

enum store_status {
    STORE_OK = 0,
    STORE_NOT_FOUND, /* no live item for that key */
    STORE_STALE,     /* the key holds a newer (version, origin): write ignored */
    STORE_NOMEM,     /* over the cap and nothing could be evicted (or ENOMEM) */
    STORE_TOO_LARGE, /* one item bigger than the whole memory cap */
};

enum store_eviction {
    STORE_EVICT_LRU = 0,
    STORE_EVICT_TTL,
    STORE_EVICT_NONE,
};

struct store_config {
    size_t memory_limit;          /* bytes for items and index */
    enum store_eviction eviction; /* what to do when a write would pass it */
    int64_t tombstone_ttl_ms;     /* keep delete markers this long; 0 = none */
    bool range_digests;           /* keep the digest per key range (rdigest.h;
                                     ~560 KiB, counted in bytes): replication */
    uint64_t hash_seed;           /* of the index's hash; 0 = a random one,
                                     so that clients cannot aim many keys at
                                     one probe cluster (tests fix it) */
};

struct store_stats {
    uint64_t curr_items;   /* live items (not tombstones) */
    uint64_t expiring;     /* of those, items with an expiry */
    uint64_t tombstones;   /* delete markers held */
    uint64_t bytes;        /* accounted bytes, see "Memory" above */
    uint64_t limit_bytes;  /* memory_limit */
    uint64_t expired;      /* items removed because their time came */
    uint64_t evicted;      /* items removed to make room */
    uint64_t expired_unfetched; /* of expired: never read by a client */
    uint64_t evicted_unfetched; /* of evicted: never read by a client */
    uint64_t table_slots;  /* slots in the table(s) */
    uint64_t rehashing;    /* 1 while an incremental resize is under way */
    uint64_t slab_bytes;   /* the item allocator's pages in use (slab.h):
                              bytes plus what its partly used pages hold free */
    uint64_t slab_pages_released; /* its empty pages given back to the OS */
    uint64_t slab_items_moved;    /* items moved to empty sparse pages */
    uint64_t items_digest; /* see "Digest" above */
};

struct store;

/* The item allocator's size class i (slab.h), for memcached's `stats
 * slabs`; false past the last class. */
bool store_slab_class(const struct store *s, unsigned i, struct slab_class_stats *out);

/* Returns NULL on ENOMEM, or when the address range the items live in
 * (slab.h) could not be reserved at twice memory_limit. */
struct store *store_create(const struct store_config *cfg);
/* Frees every item: drop every reference (store_item_unref) first. */
void store_destroy(struct store *s);

/*
 * Live item for key at now_ms, or NULL. An item found expired is removed
 * (counted in expired). Marks the item read (store_mark_read). The pointer
 * is valid until the next call that writes to the store (store_maintain
 * included: it moves items), unless referenced.
 */
struct item *store_get(struct store *s, const char *key, size_t key_len,
                       int64_t now_ms);

/* Note a client's read of it at now_ms: counted for eviction, fetched, and
 * its last access time. */
static inline void store_mark_read(struct item *it, int64_t now_ms)
{
    uint32_t now_s = (uint32_t)(now_ms / 1000);
    if (!(it->flags & ITEM_F_FETCHED)) it->flags |= ITEM_F_FETCHED;
    if (item_freq(it) < ITEM_FREQ_MAX) it->meta++;
    if (it->atime != now_s) it->atime = now_s;
}

/* store_find that also says, on a miss, whether the key held an item
 * whose time had come (and that this lookup removed). */
struct item *store_lookup(struct store *s, const char *key, size_t key_len,
                          int64_t now_ms, bool *expired);

/* store_get without the access: for writers and commands that only look. */
struct item *store_find(struct store *s, const char *key, size_t key_len,
                        int64_t now_ms);

/*
 * Any item for key, live or not (tombstone, or expired not yet collected),
 * without side effects; NULL if the key is unknown. For replication.
 */
const struct item *store_peek(const struct store *s, const char *key,
                              size_t key_len);

/* One write, as it reaches the store: either register, or both. */
struct store_write {
    const char *key;
    size_t key_len;
    /* value register; has_value false leaves it alone */
    bool has_value;
    bool tomb;             /* no value: deleted, or (expired) gone by expiry */
    bool expired;          /* with tomb: the value expired and its bytes are
                              gone (what an expiry's tombstone records) */
    const char *value;
    size_t value_len;
    uint32_t client_flags;
    uint64_t version;      /* stamp of the value register */
    uint32_t origin;
    /* expiry register; has_expiry false leaves it alone */
    bool has_expiry;
    int64_t expire_ms;     /* absolute unix ms, 0 = never */
    uint64_t exp_version;  /* stamp of the expiry register */
    uint32_t exp_origin;
};

/*
 * Merge w into the key, register by register: the value part replaces the
 * key's value register if its stamp is newer (or, for a tombstone left by
 * an expiry, equal: the same write brought back with its bytes); the
 * expiry part replaces the expiry register if its stamp is newer. A value
 * stamped below an effective flush watermark is refused. The result is
 * live when the value is not deleted and the expiry is 0 or after now_ms;
 * otherwise the key becomes a tombstone (or is removed when tombstones are
 * off). An expiry-only write (has_value false) needs a live item.
 * Returns STORE_OK (a register changed), STORE_STALE (nothing newer),
 * STORE_NOT_FOUND (expiry-only write, no live item), STORE_NOMEM or
 * STORE_TOO_LARGE.
 */
enum store_status store_write(struct store *s, const struct store_write *w,
                              int64_t now_ms);

/*
 * Shorthands for store_write. store_set: both registers with one stamp,
 * client flags 0 (a write whose expire_ms is already <= now_ms leaves the
 * key absent). store_del: value "deleted" and expiry 0 with one stamp;
 * returns STORE_NOT_FOUND when no live item was there (a tombstone may
 * still have been recorded, so a delayed older set stays dead).
 * store_expire: the expiry register of a live item (expire_ms <= now_ms
 * removes it, as an expiry).
 */
enum store_status store_set(struct store *s, const char *key, size_t key_len,
                            const char *value, size_t value_len,
                            int64_t expire_ms, uint64_t version,
                            uint32_t origin, int64_t now_ms);
enum store_status store_del(struct store *s, const char *key, size_t key_len,
                            uint64_t version, uint32_t origin, int64_t now_ms);
enum store_status store_expire(struct store *s, const char *key,
                               size_t key_len, int64_t expire_ms,
                               uint64_t version, uint32_t origin,
                               int64_t now_ms);

/*
 * Flush: every item whose value stamp is below `version` dies once now_ms
 * reaches the hlc time of version - at once for a stamp from the HLC; a
 * stamp in the future is memcached's delayed flush_all - and writes
 * stamped below it are refused from then on. The store keeps the greatest
 * watermark in effect and the greatest one still pending (an immediate
 * flush does not wait for a pending delayed one). Returns true if either
 * moved.
 */
bool store_flush(struct store *s, uint64_t version, uint32_t origin, int64_t now_ms);
/* The watermarks (in effect, then pending) into version/origin; returns
 * how many (0..2). For state transfer. */
size_t store_flush_stamps(const struct store *s, uint64_t version[2], uint32_t origin[2]);

/*
 * The expiry register of an item: its expire_ms when live, the time kept
 * in its data when it is a tombstone.
 */
int64_t store_item_expiry(const struct item *it);

/*
 * Remove at most max items whose expire_ms <= now_ms (expired items and
 * due tombstones), earliest first, then, after a flush took effect, sweep
 * a bounded number of slots for items below the watermark. Returns how
 * many were removed.
 */
size_t store_expire_due(struct store *s, int64_t now_ms, size_t max);

/* Earliest expire_ms in the heap, or the time a pending flush sweep can
 * start if earlier; 0 when there is nothing to wait for. */
int64_t store_next_expiry(const struct store *s);

/*
 * Bounded background work: move up to max_slots slots of an incremental
 * resize, up to max_moves items out of sparse allocator pages
 * (slab_compact), and give a bounded number of emptied pages back to the
 * OS (slab_release). Returns true while work remains.
 */
bool store_maintain(struct store *s, size_t max_slots, size_t max_moves);

/* Keep it alive (not freed) until the matching unref. */
void store_item_ref(struct item *it);
void store_item_unref(struct store *s, struct item *it);

/*
 * Visit every linked item (live, tombstones and not-yet-collected expired
 * ones) in table order, starting at *cursor, stopping after max visits
 * (a call finishes the probe cluster it is in, so it may visit a few more).
 * *cursor is advanced; it is 0 again when the walk is complete. Items
 * written during a walk may be missed or seen twice (state transfer merges
 * by LWW, so that is harmless). fn must not write to the store. Returns the
 * number visited.
 */
typedef void (*store_visit_fn)(void *arg, const struct item *it);
size_t store_scan(struct store *s, uint64_t *cursor, size_t max,
                  store_visit_fn fn, void *arg);

/*
 * Client SCAN with Redis's guarantee: from *cursor (0 to start), report the
 * live items of whole hash buckets until *cursor is 0 again (the iteration
 * is complete), max_buckets buckets were visited, or at least count items
 * were reported. Tombstones and expired or flushed items are skipped (not
 * removed). A key that is live from the call with cursor 0 to the call that
 * returns 0 is reported at least once, whatever writes, deletes and table
 * resizes happen between the calls; a key may be reported more than once.
 * The cursor is a bucket number in reverse-binary order (table.c). fn must
 * not write to the store. Returns the items reported.
 */
size_t store_scan_keys(const struct store *s, uint64_t *cursor, size_t count,
                       size_t max_buckets, int64_t now_ms, store_visit_fn fn,
                       void *arg);

/*
 * Live items at now_ms, for Redis's DBSIZE: curr_items without those that a
 * flush in effect has killed but the bounded sweep has not removed yet.
 * Exact after a flush newer than every item the store ever held (every
 * local flush); after an older replicated one, curr_items until the sweep
 * is done (a few loop turns).
 */
uint64_t store_live_items(const struct store *s, int64_t now_ms);

void store_get_stats(const struct store *s, struct store_stats *out);

/* The range digest of node index of level L (rdigest.h); the store must
 * have been created with range_digests. Level 0, index 0 is items_digest. */
uint64_t store_range_digest(const struct store *s, unsigned level, uint32_t index);

/* Diagnostics (O(slots), for tests and debugging): the longest run of
 * occupied slots, i.e. the worst probe length. */
size_t store_longest_cluster(const struct store *s);

/* The digest term of one live item; XOR of these over live items is
 * items_digest. h = XXH3_64(value, seed = XXH3_64(key, seed = expire_ms)
 * ^ client_flags * 0x9e3779b97f4a7c15), so flags 0 give the digest of
 * version 1. */
uint64_t item_digest(const char *key, size_t key_len, const char *value,
                     size_t value_len, uint32_t client_flags,
                     int64_t expire_ms);

#endif
