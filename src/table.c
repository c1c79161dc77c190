/*
 * table.c - the store's index: insert, backward-shift delete, incremental
 * resize and the scan walk (the slot layout and lookups are in table.h).
 *
 * Owns the slot arrays cur and old, the resize position and the array
 * generations; never the items (it reads their keys to rehash them).
 *
 * Deletion shifts later entries of the cluster back into the hole when the
 * hole is not before their home (no tombstone slots), which keeps the probe
 * invariant of table.h: no empty slot between an entry and its home.
 *
 * Incremental resize. At 3/4 load the store asks for a 2x array (1/2x when
 * a delete leaves it under 1/8); cur is the new array, old the one draining:
 *
 *   old: [..... empty | moved, now empty .... ^move_pos  A A B . C C C .]
 *   cur: [ entries of moved clusters, and every key inserted since       ]
 *
 * move_pos starts just after an empty slot and whole clusters are moved
 * (their hashes recomputed from the keys), so what is left in old always
 * forms intact clusters and plain probing there stays correct. Lookups try
 * cur, then old; new keys go to cur; an existing key is replaced or removed
 * in whichever array holds it. The store moves a few slots on every write
 * and more from store_maintain(); old is freed once empty. A key is in
 * exactly one array.
 *
 * CLOCK hand. Each array keeps the position of the store's LRU sweep
 * (table_sweep_* in table.h); a new array starts at 0, and the array that
 * becomes old keeps its hand, since the sweep visits old first.
 *
 * Scan. The cursor is (array generation << 40 | slot index); see table_scan.
 * Client SCAN walks home buckets instead, with a cursor that survives
 * resizes and backward shifts; see "Home scan" below.
 */
#include "table.h"

#include <stdlib.h>

#define CURSOR_POS_BITS 40
#define CURSOR_POS_MASK ((UINT64_C(1) << CURSOR_POS_BITS) - 1)
#define GEN_MASK 0xffffffu /* array generations fit the cursor's 24 bits */

/* ---- lifetime ----------------------------------------------------------- */

static uint32_t new_gen(struct table *tb)
{
    tb->next_gen = (tb->next_gen + 1) & GEN_MASK;
    if (tb->next_gen == 0) tb->next_gen = 1;
    return tb->next_gen;
}

int table_init(struct table *tb, uint64_t seed)
{
    *tb = (struct table){0};
    tb->seed = seed;
    tb->cur.slots = calloc(TABLE_MIN_SLOTS, sizeof *tb->cur.slots);
    if (tb->cur.slots == NULL) return -1;
    tb->cur.mask = TABLE_MIN_SLOTS - 1;
    tb->cur.gen = new_gen(tb);
    return 0;
}

static void release_array(struct table_array *a,
                          void (*release)(struct item *it))
{
    for (size_t i = 0; a->slots && i <= a->mask; i++)
        if (a->slots[i]) release(table_slot_item(a->slots[i]));
    free(a->slots);
}

void table_destroy(struct table *tb, void (*release)(struct item *it))
{
    release_array(&tb->cur, release);
    release_array(&tb->old, release);
    *tb = (struct table){0};
}

/* ---- entries ------------------------------------------------------------ */

/* Slot holding exactly it, or SIZE_MAX. */
static size_t find_ptr(const struct table_array *a, uint64_t hash,
                       const struct item *it)
{
    uint64_t want = table_slot_make(hash, it);
    for (size_t i = hash & a->mask; a->slots[i]; i = (i + 1) & a->mask)
        if (a->slots[i] == want) return i;
    return SIZE_MAX;
}

struct table_loc table_locate(const struct table *tb, uint64_t hash,
                              const struct item *it)
{
    size_t i = find_ptr(&tb->cur, hash, it);
    if (i != SIZE_MAX || tb->old.slots == NULL)
        return (struct table_loc){false, i};
    return (struct table_loc){true, find_ptr(&tb->old, hash, it)};
}

static void insert(struct table_array *a, uint64_t hash, const struct item *it)
{
    size_t i = hash & a->mask;
    while (a->slots[i]) i = (i + 1) & a->mask;
    a->slots[i] = table_slot_make(hash, it);
    a->used++;
}

void table_insert(struct table *tb, uint64_t hash, const struct item *it)
{
    insert(&tb->cur, hash, it);
}

static void drop_old(struct table *tb)
{
    free(tb->old.slots);
    tb->old = (struct table_array){0};
}

/* Empty slot hole, pulling back later entries of its cluster. */
static void delete_at(const struct table *tb, struct table_array *a,
                      size_t hole)
{
    for (size_t j = (hole + 1) & a->mask; a->slots[j]; j = (j + 1) & a->mask) {
        size_t home = table_item_hash(tb, table_slot_item(a->slots[j])) &
                      a->mask;
        /* It may move back to hole unless its home lies in (hole, j]. */
        if (((j - home) & a->mask) >= ((j - hole) & a->mask)) {
            a->slots[hole] = a->slots[j];
            hole = j;
        }
    }
    a->slots[hole] = 0;
    a->used--;
}

struct item *table_remove(struct table *tb, struct table_loc loc)
{
    struct table_array *a = loc.old ? &tb->old : &tb->cur;
    struct item *it = table_slot_item(a->slots[loc.i]);
    delete_at(tb, a, loc.i);
    if (loc.old && tb->old.used == 0) drop_old(tb);
    return it;
}

/* ---- incremental resize ------------------------------------------------- */

void table_move(struct table *tb, size_t budget)
{
    struct table_array *o = &tb->old;
    size_t i = tb->move_pos;
    while (o->slots && budget) {
        if (o->slots[i] == 0) {
            i = (i + 1) & o->mask;
            budget--;
            continue;
        }
        do {
            const struct item *it = table_slot_item(o->slots[i]);
            insert(&tb->cur, table_item_hash(tb, it), it);
            o->slots[i] = 0;
            o->used--;
            i = (i + 1) & o->mask;
            if (budget) budget--;
        } while (o->slots[i]);
        if (o->used == 0) drop_old(tb);
    }
    tb->move_pos = i;
}

/* Make cur a fresh array of nslots and start draining the previous one. */
static bool start_resize(struct table *tb, size_t nslots)
{
    uint64_t *slots = calloc(nslots, sizeof *slots);
    if (slots == NULL) return false;
    tb->old = tb->cur;
    tb->cur = (struct table_array){slots, nslots - 1, 0, 0, new_gen(tb)};
    size_t i = 0;
    while (tb->old.slots[i]) i++; /* load <= 3/4: an empty slot exists */
    tb->move_pos = (i + 1) & tb->old.mask;
    if (tb->old.used == 0) drop_old(tb);
    return true;
}

bool table_grow(struct table *tb)
{
    return start_resize(tb, 2 * (tb->cur.mask + 1));
}

bool table_shrink(struct table *tb)
{
    return start_resize(tb, (tb->cur.mask + 1) / 2);
}

/* ---- scan --------------------------------------------------------------- */

/*
 * During a resize the walk covers old, then cur. A call only stops on an
 * empty slot, after max visits (or 4*max+64 slots looked at), so it may
 * visit a few more than max to finish a cluster. Stopping on an empty slot e
 * means every entry after e has its home after e, and a backward shift never
 * moves an entry past its home, so entries not yet visited never slip behind
 * the cursor. Entries that a resize moves out of old land in cur, which is
 * walked afterwards. A cursor naming an array that no longer exists (a
 * resize finished) restarts the walk. Hence, without writes, every entry is
 * visited at least once (exactly once if no resize progresses meanwhile).
 */
size_t table_scan(const struct table *tb, uint64_t *cursor, size_t max,
                  store_visit_fn fn, void *arg)
{
    if (max == 0) return 0;
    uint32_t gen = (uint32_t)(*cursor >> CURSOR_POS_BITS);
    size_t pos = (size_t)(*cursor & CURSOR_POS_MASK);
    const struct table_array *a;
    if (gen != 0 && tb->old.slots && gen == tb->old.gen) {
        a = &tb->old;
    } else if (gen != 0 && gen == tb->cur.gen) {
        a = &tb->cur;
    } else {
        a = tb->old.slots ? &tb->old : &tb->cur;
        pos = 0;
    }
    size_t visited = 0, looked = 0;
    size_t budget = max > SIZE_MAX / 8 ? SIZE_MAX : 4 * max + 64;
    for (;; pos++, looked++) {
        if (pos > a->mask) {
            if (a == &tb->cur) {
                *cursor = 0;
                return visited;
            }
            a = &tb->cur;
            pos = 0;
        }
        uint64_t slot = a->slots[pos];
        if (slot) {
            fn(arg, table_slot_item(slot));
            visited++;
        } else if (visited >= max || looked >= budget) {
            break;
        }
    }
    *cursor = ((uint64_t)a->gen << CURSOR_POS_BITS) | pos;
    return visited;
}

/* ---- home scan (client SCAN) -------------------------------------------- */

/*
 * Home scan. Home bucket h of an array is the set of its entries whose home
 * slot is h. Linear probing keeps every entry in [home, first empty slot
 * after home] (table.h), and a backward shift never moves an entry before
 * its home nor past an empty slot, so reading the slots from h up to the
 * first empty one finds the whole bucket, wherever inserts, deletes and
 * shifts have put its entries (an empty slot h means an empty bucket).
 * Buckets thus behave as the chains of a chained hash table, and the cursor
 * walks them in reverse-binary order, as Redis's dictScan does:
 *
 *     next cursor = rev(rev(cursor | ~mask) + 1)        (rev: bit reversal)
 *
 * Read backwards, the low k bits of a hash place it in one of 2^k equal
 * intervals of [0, 1), one per bucket of a 2^k-slot array, and the walk
 * visits the intervals left to right: everything left of the cursor has
 * been visited. Growing splits each interval in two (the cursor is still a
 * boundary); shrinking merges pairs (masking the cursor rounds it down, so
 * some keys come twice, none zero times). During a resize each key is in
 * exactly one array; a step visits the bucket of the smaller array and the
 * buckets of the larger one that expand it (same low bits) and are not left
 * of the cursor, so the interval is covered in both. Hence a key present from the first call to the last is
 * returned at least once, whatever inserts, deletes, moves, grows and
 * shrinks happen between calls (tests/unit/test_scan.c checks it).
 *
 * Cost: a bucket visit reads its run up to the next empty slot and hashes
 * each key there (homes are not stored), a few keys at 3/4 load.
 */

static uint64_t rev64(uint64_t v)
{
    v = ((v >> 1) & UINT64_C(0x5555555555555555)) | ((v & UINT64_C(0x5555555555555555)) << 1);
    v = ((v >> 2) & UINT64_C(0x3333333333333333)) | ((v & UINT64_C(0x3333333333333333)) << 2);
    v = ((v >> 4) & UINT64_C(0x0f0f0f0f0f0f0f0f)) | ((v & UINT64_C(0x0f0f0f0f0f0f0f0f)) << 4);
    return __builtin_bswap64(v);
}

/* The cursor after bucket (v & mask); 0 when that was the last one. */
static uint64_t next_home(uint64_t v, uint64_t mask)
{
    return rev64(rev64(v | ~mask) + 1);
}

/* Every entry of home bucket h of a. Returns false if fn wants no more. */
static bool visit_home(const struct table *tb, const struct table_array *a, size_t h,
                       bool (*fn)(void *arg, const struct item *it), void *arg)
{
    bool more = true;
    for (size_t i = h; a->slots[i]; i = (i + 1) & a->mask) {
        const struct item *it = table_slot_item(a->slots[i]);
        if ((table_item_hash(tb, it) & a->mask) == h && !fn(arg, it)) more = false;
    }
    return more;
}

size_t table_scan_homes(const struct table *tb, uint64_t *cursor,
                        size_t max_buckets, bool (*fn)(void *arg, const struct item *it),
                        void *arg)
{
    const struct table_array *small = &tb->cur, *large = NULL;
    if (tb->old.slots) {
        large = &tb->old;
        if (large->mask < small->mask) {
            large = &tb->cur;
            small = &tb->old;
        }
    }
    if (tb->cur.used + tb->old.used == 0) { /* nothing to find: done */
        *cursor = 0;
        return 0;
    }
    uint64_t v = *cursor, m0 = small->mask;
    size_t n = 0;
    bool more = true;
    while (more && n < max_buckets) {
        more = visit_home(tb, small, (size_t)(v & m0), fn, arg);
        if (!large) {
            v = next_home(v, m0);
        } else {
            /* the buckets of large that expand v & m0, from v's own bits
             * in m1 ^ m0 on, in the same reversed order; the carry out of
             * those bits advances v & m0 to the next small bucket */
            uint64_t m1 = large->mask;
            do {
                if (!visit_home(tb, large, (size_t)(v & m1), fn, arg)) more = false;
                v = next_home(v, m1);
            } while (v & (m0 ^ m1));
        }
        n++;
        if (v == 0) break;
    }
    *cursor = v;
    return n;
}
