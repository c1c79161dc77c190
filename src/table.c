/*
 * table.c - the store's index: insert, backward-shift delete, incremental
 * resize and the scan walk (the slot layout and lookups are in table.h).
 *
 * Owns the slot arrays cur and old (large ones mapped from the kernel, see
 * slots_alloc), the resize position and the array generations; never the
 * items (it reads their keys to rehash them).
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
 * Sampling. table_sample() probes uniformly random slots of cur and old
 * together (one draw over their slot counts added up): an entry occupies
 * exactly one slot, so every entry is equally likely, whatever the layout.
 * A choice tied to position instead ("the first entry after a random
 * slot", a sweeping hand) favours the heads of clusters, and evicting by it
 * packs the table into ever longer clusters.
 *
 * Scan and walk. The cursor is (array generation << 40 | slot index); see
 * table_scan and table_walk. Client SCAN walks home buckets instead, with a
 * cursor that survives resizes and backward shifts; see "Home scan" below.
 */
#include "table.h"

#include <stdlib.h>
#include <sys/mman.h>

#include "rng.h"

#define CURSOR_POS_BITS 40
#define CURSOR_POS_MASK ((UINT64_C(1) << CURSOR_POS_BITS) - 1)
#define GEN_MASK 0xffffffu /* array generations fit the cursor's 24 bits */

/* ---- lifetime ----------------------------------------------------------- */

/*
 * Slot arrays of MAP_MIN_BYTES or more are mapped straight from the
 * kernel: they arrive zeroed and untouched, where calloc may serve them
 * from free memory in malloc's heap and clear them there (after a mass
 * expiry, the shrink to 2^20 slots cost 5 ms in one expiry slice), and
 * they go back whole when dropped. Smaller ones come from calloc.
 */
#define MAP_MIN_BYTES (1u << 20)

static uint64_t *slots_alloc(size_t nslots)
{
    size_t bytes = nslots * sizeof(uint64_t);
    if (bytes < MAP_MIN_BYTES) return calloc(nslots, sizeof(uint64_t));
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void slots_free(struct table_array *a)
{
    size_t bytes = (a->mask + 1) * sizeof(uint64_t);
    if (a->slots == NULL) return;
    if (bytes < MAP_MIN_BYTES)
        free(a->slots);
    else
        munmap(a->slots, bytes);
}

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
    tb->rng = (seed ^ UINT64_C(0x9e3779b97f4a7c15)) | 1; /* never 0 */
    tb->cur.slots = slots_alloc(TABLE_MIN_SLOTS);
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
    slots_free(a);
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
    slots_free(&tb->old);
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
    uint64_t *slots = slots_alloc(nslots);
    if (slots == NULL) return false;
    tb->old = tb->cur;
    tb->cur = (struct table_array){slots, nslots - 1, 0, new_gen(tb)};
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
/* The array and slot a cursor names; the first slot of the walk when it
 * names none (0, or an array since freed). */
static const struct table_array *cursor_at(const struct table *tb,
                                           uint64_t cursor, size_t *pos)
{
    uint32_t gen = (uint32_t)(cursor >> CURSOR_POS_BITS);
    *pos = (size_t)(cursor & CURSOR_POS_MASK);
    if (gen != 0 && tb->old.slots && gen == tb->old.gen) return &tb->old;
    if (gen != 0 && gen == tb->cur.gen) return &tb->cur;
    *pos = 0;
    return tb->old.slots ? &tb->old : &tb->cur;
}

static uint64_t cursor_of(const struct table_array *a, size_t pos)
{
    return ((uint64_t)a->gen << CURSOR_POS_BITS) | pos;
}

size_t table_scan(const struct table *tb, uint64_t *cursor, size_t max,
                  table_visit_fn fn, void *arg)
{
    if (max == 0) return 0;
    size_t pos;
    const struct table_array *a = cursor_at(tb, *cursor, &pos);
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
    *cursor = cursor_of(a, pos);
    return visited;
}

struct item *table_walk(const struct table *tb, uint64_t *cursor,
                        size_t *budget, struct table_loc *loc)
{
    size_t pos;
    const struct table_array *a = cursor_at(tb, *cursor, &pos);
    for (;;) {
        if (pos > a->mask) {
            if (a == &tb->cur) {
                *cursor = 0;
                return NULL;
            }
            a = &tb->cur;
            pos = 0;
        }
        if (*budget == 0) break;
        (*budget)--;
        if (a->slots[pos]) {
            *loc = (struct table_loc){a == &tb->old, pos};
            *cursor = cursor_of(a, pos);
            return table_slot_item(a->slots[pos]);
        }
        pos++;
    }
    *cursor = cursor_of(a, pos);
    return NULL;
}

/* ---- sampling ----------------------------------------------------------- */

static uint64_t next_random(struct table *tb)
{
    return rng_next(&tb->rng);
}

/* Add loc to locs[0..n) unless it is there; returns the new count. */
static size_t add_loc(struct table_loc *locs, size_t n, struct table_loc loc)
{
    for (size_t k = 0; k < n; k++)
        if (locs[k].i == loc.i && locs[k].old == loc.old) return n;
    locs[n] = loc;
    return n + 1;
}

/* Slot number s of cur and old laid end to end (cur first). */
static struct table_loc slot_loc(const struct table *tb, size_t s)
{
    size_t ncur = tb->cur.mask + 1;
    return s < ncur ? (struct table_loc){false, s}
                    : (struct table_loc){true, s - ncur};
}

static bool occupied(const struct table *tb, struct table_loc loc)
{
    return (loc.old ? &tb->old : &tb->cur)->slots[loc.i] != 0;
}

size_t table_sample(struct table *tb, size_t n, struct table_loc *locs)
{
    if (n > TABLE_SAMPLE_MAX) n = TABLE_SAMPLE_MAX;
    size_t entries = tb->cur.used + tb->old.used;
    if (n > entries) n = entries;
    size_t total = table_slots(tb), got = 0;
    for (size_t probe = 0; probe < 32 * n && got < n; probe++) {
        size_t s = (size_t)(((unsigned __int128)next_random(tb) * total) >> 64);
        struct table_loc loc = slot_loc(tb, s);
        if (occupied(tb, loc)) got = add_loc(locs, got, loc);
    }
    if (got < n) { /* a sparse table: walk on from a random slot */
        size_t s = (size_t)(((unsigned __int128)next_random(tb) * total) >> 64);
        for (size_t k = 0; k < total && got < n; k++, s = s + 1 == total ? 0 : s + 1) {
            struct table_loc loc = slot_loc(tb, s);
            if (occupied(tb, loc)) got = add_loc(locs, got, loc);
        }
    }
    return got;
}

/* ---- diagnostics -------------------------------------------------------- */

size_t table_longest_cluster(const struct table *tb)
{
    size_t best = 0;
    const struct table_array *arrays[2] = {&tb->cur, &tb->old};
    for (int k = 0; k < 2; k++) {
        const struct table_array *a = arrays[k];
        if (!a->slots) continue;
        size_t run = 0, n = a->mask + 1;
        for (size_t i = 0; i < 2 * n; i++) { /* twice round: runs that wrap */
            run = a->slots[i & a->mask] ? run + 1 : 0;
            if (run > best) best = run;
            if (run >= n) return n;
        }
    }
    return best;
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
