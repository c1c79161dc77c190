/*
 * table.h - the store's index: an open-addressing hash table of item
 * pointers, resized incrementally. Internal to the store (src/store.c).
 *
 * Owns the slot arrays and nothing they point at: items belong to the store,
 * which links and unlinks them around the calls here. Single-threaded.
 *
 * Slots. An array is a power-of-two run of 8-byte slots; 0 means empty.
 *
 *    63        48 47                                   0
 *   +------------+--------------------------------------+
 *   | tag (16 b) | struct item * (user-space, 48 bits)  |
 *   +------------+--------------------------------------+
 *   tag = hash >> 48, home slot = hash & mask, hash = table_hash(key).
 *
 * Linear probing: an entry sits at its home or after it, with no empty slot
 * in between, so every entry lies inside the probe cluster (maximal run of
 * occupied slots) that contains its home. A probe stops at the first empty
 * slot; it compares tag, then key_len, then memcmp, so a miss rarely touches
 * an item. Load stays <= 3/4 (table_full() tells the store when one more key
 * would pass it).
 *
 * During a resize there are two arrays, cur and old (table.c): a key is in
 * exactly one of them, and lookups try cur, then old. The lookup path is
 * static inline here so that store_get() pays no call for it.
 */
#ifndef VITAMIN_TABLE_H
#define VITAMIN_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <xxhash.h>

#include "item.h"

#define TABLE_MIN_SLOTS 1024u
#define TABLE_PTR_BITS 48
#define TABLE_PTR_MASK ((UINT64_C(1) << TABLE_PTR_BITS) - 1)

/* One slot allocation. */
struct table_array {
    uint64_t *slots; /* NULL when this array does not exist */
    size_t mask;     /* number of slots - 1 */
    size_t used;     /* occupied slots */
    uint32_t gen;    /* names this allocation in scan cursors; never 0 */
};

struct table {
    struct table_array cur; /* current array: new keys go here */
    struct table_array old; /* array being drained by a resize, or none */
    size_t move_pos;        /* next old slot to move (a cluster boundary) */
    uint64_t seed;          /* of table_hash() */
    uint64_t rng;           /* xorshift64 state of table_sample() */
    uint32_t next_gen;      /* last array generation handed out */
};

/* Where an entry sits: which array, which slot. */
struct table_loc {
    bool old;
    size_t i;
};

/* ---- lifetime (table.c) ------------------------------------------------ */

/* An empty table of the minimum size. Returns 0, or -1 on ENOMEM. */
int table_init(struct table *tb, uint64_t seed);
/* Call release(it) on every entry, then free the arrays. */
void table_destroy(struct table *tb, void (*release)(struct item *it));

/* ---- slots and lookups (inline: the read path) ------------------------ */

static inline uint64_t table_hash(const struct table *tb, const char *key,
                                  size_t len)
{
    return XXH3_64bits_withSeed(key, len, tb->seed);
}

static inline uint64_t table_item_hash(const struct table *tb,
                                       const struct item *it)
{
    return table_hash(tb, item_key(it), it->key_len);
}

/* Can it be packed into a slot (its address fits 48 bits)? */
static inline bool table_packable(const struct item *it)
{
    return ((uint64_t)(uintptr_t)it & ~TABLE_PTR_MASK) == 0;
}

static inline uint64_t table_slot_make(uint64_t hash, const struct item *it)
{
    return (hash & ~TABLE_PTR_MASK) | (uint64_t)(uintptr_t)it;
}

static inline struct item *table_slot_item(uint64_t slot)
{
    return (struct item *)(uintptr_t)(slot & TABLE_PTR_MASK);
}

/* Slot of a holding key, or SIZE_MAX. */
static inline size_t table_probe(const struct table_array *a, uint64_t hash,
                                 const char *key, size_t len)
{
    for (size_t i = hash & a->mask;; i = (i + 1) & a->mask) {
        uint64_t slot = a->slots[i];
        if (slot == 0) return SIZE_MAX;
        if (((slot ^ hash) & ~TABLE_PTR_MASK) == 0) {
            const struct item *it = table_slot_item(slot);
            if (it->key_len == len &&
                (len == 0 || memcmp(it->data, key, len) == 0))
                return i;
        }
    }
}

/* The entry for key (hash = table_hash(key)) and where it sits, or NULL. */
static inline struct item *table_lookup(const struct table *tb, uint64_t hash,
                                        const char *key, size_t len,
                                        struct table_loc *loc)
{
    size_t i = table_probe(&tb->cur, hash, key, len);
    if (i != SIZE_MAX) {
        *loc = (struct table_loc){false, i};
        return table_slot_item(tb->cur.slots[i]);
    }
    if (tb->old.slots == NULL) return NULL;
    i = table_probe(&tb->old, hash, key, len);
    if (i == SIZE_MAX) return NULL;
    *loc = (struct table_loc){true, i};
    return table_slot_item(tb->old.slots[i]);
}

static inline struct item *table_item_at(const struct table *tb,
                                         struct table_loc loc)
{
    return table_slot_item((loc.old ? &tb->old : &tb->cur)->slots[loc.i]);
}

/* Put it (same key, same hash) in the slot at loc, in place of its entry. */
static inline void table_replace(struct table *tb, struct table_loc loc,
                                 uint64_t hash, const struct item *it)
{
    (loc.old ? &tb->old : &tb->cur)->slots[loc.i] = table_slot_make(hash, it);
}

/* Where a linked item sits (it must be in the table). */
struct table_loc table_locate(const struct table *tb, uint64_t hash,
                              const struct item *it);

/* ---- writes (table.c) -------------------------------------------------- */

/* Add a new key's entry to cur. The store keeps the load under 3/4. */
void table_insert(struct table *tb, uint64_t hash, const struct item *it);

/*
 * Empty the slot at loc (backward shift: later entries of its cluster move
 * back) and return the entry that was there. Frees old if it is now empty.
 */
struct item *table_remove(struct table *tb, struct table_loc loc);

/* ---- size and resize --------------------------------------------------- */

/* Bytes of every slot array (for the store's memory accounting). */
static inline size_t table_bytes(const struct table *tb)
{
    return ((tb->cur.mask + 1) + (tb->old.slots ? tb->old.mask + 1 : 0)) *
           sizeof(uint64_t);
}

/* Bytes of cur alone: what stays allocated once a resize finishes. */
static inline size_t table_cur_bytes(const struct table *tb)
{
    return (tb->cur.mask + 1) * sizeof(uint64_t);
}

/* Slots in every array (table_slots of the store's stats). */
static inline size_t table_slots(const struct table *tb)
{
    return table_bytes(tb) / sizeof(uint64_t);
}

/* Is an incremental resize under way (old still holds entries)? */
static inline bool table_resizing(const struct table *tb)
{
    return tb->old.slots != NULL;
}

/* Would one more key pass 3/4 load? */
static inline bool table_full(const struct table *tb)
{
    return (tb->cur.used + tb->old.used + 1) * 4 > (tb->cur.mask + 1) * 3;
}

/* Is it under 1/8 load, above the minimum size and not resizing? */
static inline bool table_sparse(const struct table *tb)
{
    size_t n = tb->cur.mask + 1;
    return !tb->old.slots && n > TABLE_MIN_SLOTS && tb->cur.used * 8 < n;
}

/* Bytes of the array that table_grow() / table_shrink() would allocate. */
static inline size_t table_grow_bytes(const struct table *tb)
{
    return 2 * table_cur_bytes(tb);
}

static inline size_t table_shrink_bytes(const struct table *tb)
{
    return table_cur_bytes(tb) / 2;
}

/*
 * Start a resize to 2x / 1/2x (there must be none under way): cur becomes
 * old, to be drained by table_move(). Returns false on ENOMEM (no change).
 */
bool table_grow(struct table *tb);
bool table_shrink(struct table *tb);

/* Move whole clusters from old to cur until budget slots have been passed. */
void table_move(struct table *tb, size_t budget);

/* ---- walks and samples (table.c) ------------------------------------- */

/*
 * Up to n (at most TABLE_SAMPLE_MAX) distinct entries chosen at random: the
 * places of uniformly random occupied slots of cur and old together (each
 * entry has one slot, so each is equally likely), found by probing random
 * slots; if 32 * n probes found fewer than n, a walk from a random slot
 * adds the next entries not chosen yet. So fewer than n come back only when
 * the table holds fewer than n entries. Like Redis's dictGetSomeKeys, for
 * eviction by sampling. The places hold until the table next changes.
 */
#define TABLE_SAMPLE_MAX 64
size_t table_sample(struct table *tb, size_t n, struct table_loc *locs);

/*
 * A walk that may remove what it finds. *cursor is 0 to start (its format
 * is table_scan's). table_walk looks at up to *budget slots from *cursor,
 * taking one from *budget for each, and stops at the first entry: returns
 * it, with its place in *loc and *cursor left on it. The caller then
 * either removes that entry (table_remove; the next call looks at the same
 * slot again, where a backward shift may have brought a later entry) or
 * steps past it with table_walk_skip(). Returns NULL when the budget ran
 * out (*cursor says where to go on) or the walk is complete (*cursor is 0
 * again). Covers old, then cur; entries only ever move backwards within a
 * cluster or from old to cur, so every entry present from the start to the
 * end of a walk is found at least once (a cursor naming an array that was
 * freed starts the walk over).
 */
struct item *table_walk(const struct table *tb, uint64_t *cursor,
                        size_t *budget, struct table_loc *loc);

static inline void table_walk_skip(uint64_t *cursor) { (*cursor)++; }

/* Visitor of table_scan(). */
typedef void (*table_visit_fn)(void *arg, const struct item *it);

/*
 * Visit every entry, tombstones and all, in slot order from *cursor (0 to
 * start; 0 again when the walk is complete), stopping after max visits,
 * or a few more to finish the probe cluster under way. *cursor is
 * advanced. fn must not change the table. Without changes between calls
 * every entry is visited at least once (see "Scan" in table.c). Returns
 * the number visited.
 */
size_t table_scan(const struct table *tb, uint64_t *cursor, size_t max,
                  table_visit_fn fn, void *arg);

/*
 * Client SCAN by home bucket (see "Home scan" in table.c): from *cursor,
 * visit whole home buckets, in the cursor's order, until the cursor is 0
 * again, max_buckets were visited, or fn returned false (the bucket under
 * way is finished first: a bucket is never cut). fn(arg, it) gets every
 * entry, tombstones too (the caller filters), and returns whether it wants
 * more; it must not write to the table. *cursor is advanced. Returns the
 * buckets visited.
 */
size_t table_scan_homes(const struct table *tb, uint64_t *cursor,
                        size_t max_buckets, bool (*fn)(void *arg, const struct item *it),
                        void *arg);

/* Diagnostics (O(slots)): the longest run of occupied slots in either
 * array, i.e. the worst probe length. */
size_t table_longest_cluster(const struct table *tb);

#endif
