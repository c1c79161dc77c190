/*
 * store.c - items, the open-addressing index, eviction, LWW and the digest.
 *
 * Owns every item (one malloc: header, key, value), the slot table(s), the
 * TTL heap and the counters. Single-threaded; times come from the caller.
 *
 * Slots. A table is a power-of-two array of 8-byte slots; 0 means empty.
 *
 *    63        48 47                                   0
 *   +------------+--------------------------------------+
 *   | tag (16 b) | struct item * (user-space, 48 bits)  |
 *   +------------+--------------------------------------+
 *   tag = hash >> 48, home slot = hash & mask, hash = XXH3(key, seed).
 *
 * Linear probing: an entry sits at its home or after it, with no empty slot
 * in between, so every entry lies inside the probe cluster (maximal run of
 * occupied slots) that contains its home. A probe stops at the first empty
 * slot; it compares tag, then key_len, then memcmp. Deletion shifts later
 * entries of the cluster back into the hole when the hole is not before
 * their home (no tombstone slots). Load stays <= 3/4.
 *
 * Incremental resize. At 3/4 load a 2x table is allocated (1/2x when a
 * delete leaves it under 1/8); t is the new table, old the one draining:
 *
 *   old: [..... empty | moved, now empty .... ^move_pos  A A B . C C C .]
 *   t:   [ entries of moved clusters, and every key inserted since      ]
 *
 * move_pos starts just after an empty slot and whole clusters are moved
 * (their hashes recomputed from the keys), so what is left in old always
 * forms intact clusters and plain probing there stays correct. Lookups try
 * t, then old; new keys go to t; an existing key is replaced or deleted in
 * whichever table holds it. Each write moves MOVE_PER_WRITE slots,
 * store_maintain() moves more; old is freed once empty. A key is in exactly
 * one table.
 *
 * Accounting. bytes = sum over linked items of malloc_usable_size + 8
 * + 8 * slots of t and old + ttlheap_bytes. A write first computes what it
 * will add (item, table growth, heap growth) minus what it replaces, and
 * evicts by policy until that fits; so bytes <= memory_limit after every
 * write. Items unlinked while referenced leave the accounting at once and
 * are freed by the last store_item_unref().
 *
 * Eviction. LRU is CLOCK over the slots (old's first during a resize): the
 * hand clears ITEM_F_ACCESSED (set by store_get) once and evicts the first
 * entry without it, tombstones included. TTL takes the heap's minimum; NONE
 * refuses. The item a write replaces is never the victim. A new key that
 * needs a bigger table gets it only if that table fits under the cap too;
 * otherwise the write evicts to keep the load under 3/4.
 *
 * Tombstones (tombstone_ttl_ms > 0): a delete, a write that arrives already
 * expired, and the expiry of an item all replace it with a tombstone (key,
 * no value, the stamp of the write that killed it - for an expiry, the
 * item's own stamp) that the heap collects at now + tombstone_ttl_ms.
 *
 * Digest. items_digest is the XOR of item_digest() over every linked
 * non-tombstone item, updated on link/unlink/retime. "Live" for the digest
 * means "not yet collected": an expired item counts until store_get,
 * store_expire_due or a write removes it; the server runs store_expire_due
 * every tick, so the lag is bounded by a tick.
 */
#include "store.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <xxhash.h>

#include "ttlheap.h"

#define TABLE_MIN_SLOTS 1024u
#define PTR_BITS 48
#define PTR_MASK ((UINT64_C(1) << PTR_BITS) - 1)
#define MOVE_PER_WRITE 128u    /* old slots moved by each write in a resize */
#define CHUNK_OVERHEAD 8u      /* malloc's per-chunk header */
#define HEAP_MIN_GROWTH 16u    /* ttlheap.c: first allocation is 16 slots */
#define ITEM_HDR offsetof(struct item, data)
#define CURSOR_POS_BITS 40
#define CURSOR_POS_MASK ((UINT64_C(1) << CURSOR_POS_BITS) - 1)
#define GEN_MASK 0xffffffu     /* table generations fit the cursor's 24 bits */

struct table {
    uint64_t *slots; /* NULL when this table does not exist */
    size_t mask;     /* number of slots - 1 */
    size_t used;     /* occupied slots */
    size_t hand;     /* CLOCK hand: next slot the LRU sweep looks at */
    uint32_t gen;    /* names this allocation in scan cursors; never 0 */
};

struct store {
    struct table t;         /* current table: new keys go here */
    struct table old;       /* table being drained by a resize, or none */
    size_t move_pos;        /* next old slot to move (a cluster boundary) */
    struct ttlheap heap;    /* every linked item with expire_ms != 0 */
    struct store_config cfg;
    uint64_t seed;          /* of the table hash */
    uint64_t item_bytes;    /* cost of every linked item */
    uint64_t items;         /* linked non-tombstone items */
    uint64_t tombstones;    /* linked tombstones */
    uint64_t expired;       /* see struct store_stats */
    uint64_t evicted;
    uint64_t digest;        /* XOR of item_digest() of linked non-tombstones */
    uint32_t next_gen;      /* last table generation handed out */
};

/* Where an entry sits: which table, which slot. */
struct loc {
    bool old;
    size_t i;
};

/*
 * Seed of the table hash: random per store, so that clients cannot aim many
 * keys at one probe cluster. Weak so that unit tests can fix it and build
 * keys with known home slots.
 */
uint64_t store_hash_seed(void);
__attribute__((weak)) uint64_t store_hash_seed(void)
{
    uint64_t seed;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed)
        seed = (uint64_t)(uintptr_t)&seed * UINT64_C(0x9e3779b97f4a7c15);
    return seed;
}

/* ---- items ------------------------------------------------------------ */

uint64_t item_digest(const char *key, size_t key_len, const char *value,
                     size_t value_len, int64_t expire_ms)
{
    uint64_t kh = XXH3_64bits_withSeed(key, key_len, (uint64_t)expire_ms);
    return XXH3_64bits_withSeed(value, value_len, kh);
}

static uint64_t digest_of(const struct item *it)
{
    return item_digest(item_key(it), it->key_len, item_value(it),
                       it->value_len, it->expire_ms);
}

static size_t item_cost(const struct item *it)
{
    return malloc_usable_size((void *)it) + CHUNK_OVERHEAD;
}

static bool is_tomb(const struct item *it)
{
    return (it->flags & ITEM_F_TOMBSTONE) != 0;
}

static bool is_expired(const struct item *it, int64_t now_ms)
{
    return it->expire_ms != 0 && it->expire_ms <= now_ms;
}

/* Does (version, origin) beat the stamp the key holds? */
static bool newer(const struct item *cur, uint64_t version, uint32_t origin)
{
    return version > cur->version ||
           (version == cur->version && origin > cur->origin);
}

static struct item *item_new(const char *key, size_t key_len,
                             const char *value, size_t value_len,
                             int64_t expire_ms, uint64_t version,
                             uint32_t origin, uint8_t flags)
{
    size_t size = ITEM_HDR + key_len + value_len;
    struct item *it = malloc(size < sizeof *it ? sizeof *it : size);
    if (it == NULL) return NULL;
    if (((uint64_t)(uintptr_t)it & ~PTR_MASK) != 0) { /* cannot be packed */
        free(it);
        return NULL;
    }
    it->version = version;
    it->expire_ms = expire_ms;
    it->heap_idx = TTLHEAP_NONE;
    it->value_len = (uint32_t)value_len;
    it->origin = origin;
    it->refcount = 0;
    it->key_len = (uint16_t)key_len;
    it->flags = flags;
    it->unused = 0;
    if (key_len) memcpy(it->data, key, key_len);
    if (value_len) memcpy(it->data + key_len, value, value_len);
    return it;
}

/* ---- slots and tables ------------------------------------------------- */

static inline uint64_t key_hash(const struct store *s, const char *key,
                                size_t len)
{
    return XXH3_64bits_withSeed(key, len, s->seed);
}

static inline uint64_t item_hash(const struct store *s, const struct item *it)
{
    return key_hash(s, item_key(it), it->key_len);
}

static inline uint64_t slot_make(uint64_t hash, const struct item *it)
{
    return (hash & ~PTR_MASK) | (uint64_t)(uintptr_t)it;
}

static inline struct item *slot_item(uint64_t slot)
{
    return (struct item *)(uintptr_t)(slot & PTR_MASK);
}

static inline size_t table_bytes(const struct table *t)
{
    return t->slots ? (t->mask + 1) * sizeof *t->slots : 0;
}

static inline struct table *loc_table(struct store *s, struct loc loc)
{
    return loc.old ? &s->old : &s->t;
}

/* Slot holding key, or SIZE_MAX. */
static size_t table_find(const struct table *t, uint64_t hash,
                         const char *key, size_t len)
{
    for (size_t i = hash & t->mask;; i = (i + 1) & t->mask) {
        uint64_t slot = t->slots[i];
        if (slot == 0) return SIZE_MAX;
        if (((slot ^ hash) & ~PTR_MASK) == 0) {
            const struct item *it = slot_item(slot);
            if (it->key_len == len &&
                (len == 0 || memcmp(it->data, key, len) == 0))
                return i;
        }
    }
}

/* Slot holding exactly it, or SIZE_MAX. */
static size_t table_find_ptr(const struct table *t, uint64_t hash,
                             const struct item *it)
{
    uint64_t want = slot_make(hash, it);
    for (size_t i = hash & t->mask; t->slots[i]; i = (i + 1) & t->mask)
        if (t->slots[i] == want) return i;
    return SIZE_MAX;
}

static void table_insert(struct table *t, uint64_t hash, const struct item *it)
{
    size_t i = hash & t->mask;
    while (t->slots[i]) i = (i + 1) & t->mask;
    t->slots[i] = slot_make(hash, it);
    t->used++;
}

/* Empty slot hole, pulling back later entries of its cluster. */
static void table_delete(const struct store *s, struct table *t, size_t hole)
{
    for (size_t j = (hole + 1) & t->mask; t->slots[j]; j = (j + 1) & t->mask) {
        size_t home = item_hash(s, slot_item(t->slots[j])) & t->mask;
        /* It may move back to hole unless its home lies in (hole, j]. */
        if (((j - home) & t->mask) >= ((j - hole) & t->mask)) {
            t->slots[hole] = t->slots[j];
            hole = j;
        }
    }
    t->slots[hole] = 0;
    t->used--;
}

static struct item *lookup(const struct store *s, uint64_t hash,
                           const char *key, size_t len, struct loc *loc)
{
    size_t i = table_find(&s->t, hash, key, len);
    if (i != SIZE_MAX) {
        *loc = (struct loc){false, i};
        return slot_item(s->t.slots[i]);
    }
    if (s->old.slots == NULL) return NULL;
    i = table_find(&s->old, hash, key, len);
    if (i == SIZE_MAX) return NULL;
    *loc = (struct loc){true, i};
    return slot_item(s->old.slots[i]);
}

/* Where a linked item sits (it must be linked). */
static struct loc locate(const struct store *s, uint64_t hash,
                         const struct item *it)
{
    size_t i = table_find_ptr(&s->t, hash, it);
    if (i != SIZE_MAX || s->old.slots == NULL) return (struct loc){false, i};
    return (struct loc){true, table_find_ptr(&s->old, hash, it)};
}

/* ---- memory ----------------------------------------------------------- */

static uint64_t store_bytes(const struct store *s)
{
    return s->item_bytes + table_bytes(&s->t) + table_bytes(&s->old) +
           ttlheap_bytes(&s->heap);
}

/* Bytes one more push adds to the heap. */
static size_t heap_growth(const struct ttlheap *h)
{
    if (h->len < h->cap) return 0;
    return (h->cap ? h->cap : HEAP_MIN_GROWTH) * sizeof *h->a;
}

static bool fits(const struct store *s, uint64_t add, uint64_t sub)
{
    return store_bytes(s) + add <= s->cfg.memory_limit + sub;
}

/* ---- incremental resize ----------------------------------------------- */

static uint32_t new_gen(struct store *s)
{
    s->next_gen = (s->next_gen + 1) & GEN_MASK;
    if (s->next_gen == 0) s->next_gen = 1;
    return s->next_gen;
}

static void drop_old(struct store *s)
{
    free(s->old.slots);
    s->old = (struct table){0};
}

/* Move whole clusters from old to t until budget slots have been passed. */
static void move_clusters(struct store *s, size_t budget)
{
    struct table *o = &s->old;
    size_t i = s->move_pos;
    while (o->slots && budget) {
        if (o->slots[i] == 0) {
            i = (i + 1) & o->mask;
            budget--;
            continue;
        }
        do {
            const struct item *it = slot_item(o->slots[i]);
            table_insert(&s->t, item_hash(s, it), it);
            o->slots[i] = 0;
            o->used--;
            i = (i + 1) & o->mask;
            if (budget) budget--;
        } while (o->slots[i]);
        if (o->used == 0) drop_old(s);
    }
    s->move_pos = i;
}

/* Make t a fresh table of nslots and start draining the previous one. */
static bool start_resize(struct store *s, size_t nslots)
{
    uint64_t *slots = calloc(nslots, sizeof *slots);
    if (slots == NULL) return false;
    s->old = s->t;
    s->t = (struct table){slots, nslots - 1, 0, 0, new_gen(s)};
    size_t i = 0;
    while (s->old.slots[i]) i++; /* load <= 3/4: an empty slot exists */
    s->move_pos = (i + 1) & s->old.mask;
    if (s->old.used == 0) drop_old(s);
    return true;
}

static bool over_load(const struct store *s)
{
    return (s->t.used + s->old.used + 1) * 4 > (s->t.mask + 1) * 3;
}

static void maybe_shrink(struct store *s)
{
    size_t n = s->t.mask + 1;
    if (s->old.slots || n <= TABLE_MIN_SLOTS || s->t.used * 8 >= n) return;
    if (fits(s, n / 2 * sizeof(uint64_t), 0)) (void)start_resize(s, n / 2);
}

/* ---- linking ---------------------------------------------------------- */

static void account(struct store *s, struct item *it)
{
    it->flags |= ITEM_F_LINKED;
    s->item_bytes += item_cost(it);
    if (is_tomb(it)) {
        s->tombstones++;
    } else {
        s->items++;
        s->digest ^= digest_of(it);
    }
}

/* Take it out of the heap and the accounting; free it unless referenced. */
static void unlink_item(struct store *s, struct item *it)
{
    ttlheap_remove(&s->heap, it);
    s->item_bytes -= item_cost(it);
    if (is_tomb(it)) {
        s->tombstones--;
    } else {
        s->items--;
        s->digest ^= digest_of(it);
    }
    it->flags &= (uint8_t)~ITEM_F_LINKED;
    if (it->refcount == 0) free(it);
}

static void remove_at(struct store *s, struct loc loc)
{
    struct table *t = loc_table(s, loc);
    struct item *it = slot_item(t->slots[loc.i]);
    table_delete(s, t, loc.i);
    unlink_item(s, it);
    if (loc.old && s->old.used == 0) drop_old(s);
}

/*
 * Link it in cur's slot (cur != NULL, then cur is unlinked) or as a new key.
 * Cannot fail: prepare() has made room and put it on the heap when cur was
 * not there; when cur was, removing cur leaves room for it.
 */
static void link_at(struct store *s, uint64_t hash, struct loc loc,
                    struct item *cur, struct item *it)
{
    if (cur) {
        loc_table(s, loc)->slots[loc.i] = slot_make(hash, it);
        unlink_item(s, cur);
    } else {
        table_insert(&s->t, hash, it);
    }
    if (it->expire_ms != 0 && it->heap_idx == TTLHEAP_NONE)
        (void)ttlheap_push(&s->heap, it);
    account(s, it);
}

/* ---- eviction --------------------------------------------------------- */

static void evict_at(struct store *s, struct loc loc, int64_t now_ms)
{
    const struct item *it = slot_item(loc_table(s, loc)->slots[loc.i]);
    if (!is_tomb(it)) {
        if (is_expired(it, now_ms))
            s->expired++;
        else
            s->evicted++;
    }
    remove_at(s, loc);
}

/* CLOCK: clear ITEM_F_ACCESSED once, take the first item without it. */
static bool clock_pick(struct table *t, const struct item *protect,
                       size_t *out)
{
    size_t i = t->hand;
    for (size_t n = 2 * (t->mask + 1) + 1; n; n--, i = (i + 1) & t->mask) {
        if (t->slots[i] == 0) continue;
        struct item *it = slot_item(t->slots[i]);
        if (it == protect) continue;
        if (it->flags & ITEM_F_ACCESSED) {
            it->flags &= (uint8_t)~ITEM_F_ACCESSED;
            continue;
        }
        t->hand = i; /* a shifted-back entry lands here: look again */
        *out = i;
        return true;
    }
    t->hand = i;
    return false;
}

static bool evict_lru(struct store *s, const struct item *protect,
                      int64_t now_ms)
{
    size_t i;
    if (s->old.used && clock_pick(&s->old, protect, &i)) {
        evict_at(s, (struct loc){true, i}, now_ms);
        return true;
    }
    if (s->t.used && clock_pick(&s->t, protect, &i)) {
        evict_at(s, (struct loc){false, i}, now_ms);
        return true;
    }
    return false;
}

/* Earliest expiry in the heap other than protect. */
static bool evict_ttl(struct store *s, const struct item *protect,
                      int64_t now_ms)
{
    const struct ttlheap *h = &s->heap;
    struct item *victim = NULL;
    if (h->len && h->a[0] != protect) {
        victim = h->a[0];
    } else {
        for (uint32_t i = 1; i <= 2 && i < h->len; i++)
            if (!victim || h->a[i]->expire_ms < victim->expire_ms)
                victim = h->a[i];
    }
    if (victim == NULL) return false;
    evict_at(s, locate(s, item_hash(s, victim), victim), now_ms);
    return true;
}

static bool evict_one(struct store *s, const struct item *protect,
                      int64_t now_ms)
{
    switch (s->cfg.eviction) {
    case STORE_EVICT_LRU: return evict_lru(s, protect, now_ms);
    case STORE_EVICT_TTL: return evict_ttl(s, protect, now_ms);
    default: return false;
    }
}

/*
 * A new key needs a slot under 3/4 load: grow the table if the bigger one
 * fits the cap along with the item, otherwise evict to stay under the
 * threshold (with NONE, or nothing to evict: STORE_NOMEM).
 */
static enum store_status make_slot(struct store *s, uint64_t add,
                                   int64_t now_ms, bool *moved)
{
    while (over_load(s)) {
        if (s->old.slots) { /* writes outran the move: finish it first */
            move_clusters(s, SIZE_MAX);
            continue;
        }
        size_t n = s->t.mask + 1;
        if (fits(s, add + 2 * n * sizeof(uint64_t), 0) &&
            start_resize(s, 2 * n))
            continue;
        if (!evict_one(s, NULL, now_ms)) return STORE_NOMEM;
        *moved = true;
    }
    return STORE_OK;
}

/*
 * Get ready to link it in place of cur (NULL: a new key): check the size,
 * find a slot, evict (never cur) until the write fits the cap, and push it
 * on the heap unless link_at() can reuse cur's heap entry. *loc follows cur
 * if evictions moved it, also on failure. Nothing is linked here.
 */
static enum store_status prepare(struct store *s, uint64_t hash,
                                 struct item *it, struct item *cur,
                                 struct loc *loc, int64_t now_ms)
{
    uint64_t cost = item_cost(it);
    uint64_t sub = cur ? item_cost(cur) : 0;
    bool push = it->expire_ms != 0 &&
                !(cur && cur->heap_idx != TTLHEAP_NONE);
    bool moved = false;
    enum store_status st = STORE_OK;

    if (cost + table_bytes(&s->t) > s->cfg.memory_limit)
        return STORE_TOO_LARGE;
    if (cur == NULL) st = make_slot(s, cost, now_ms, &moved);
    while (st == STORE_OK &&
           !fits(s, cost + (push ? heap_growth(&s->heap) : 0), sub)) {
        if (!evict_one(s, cur, now_ms))
            st = STORE_NOMEM;
        else
            moved = true;
    }
    if (st == STORE_OK && push && ttlheap_push(&s->heap, it) != 0)
        st = STORE_NOMEM;
    if (cur && moved) *loc = locate(s, hash, cur);
    return st;
}

/* ---- writes ----------------------------------------------------------- */

/*
 * The key stops being live at stamp (version, origin). With tombstones on,
 * cur (or nothing) becomes a tombstone collected at now + tombstone_ttl;
 * otherwise cur is removed. If no tombstone can be afforded, cur is just
 * removed (with NONE at the cap a delete must still succeed).
 */
static void entomb(struct store *s, uint64_t hash, struct loc loc,
                   struct item *cur, const char *key, size_t key_len,
                   uint64_t version, uint32_t origin, int64_t now_ms)
{
    int64_t ttl = s->cfg.tombstone_ttl_ms;
    if (ttl <= 0) {
        if (cur) remove_at(s, loc);
        return;
    }
    int64_t until = now_ms > INT64_MAX - ttl ? INT64_MAX : now_ms + ttl;
    if (cur && is_tomb(cur)) { /* restamp in place */
        cur->version = version;
        cur->origin = origin;
        cur->expire_ms = until;
        ttlheap_update(&s->heap, cur);
        return;
    }
    struct item *tomb = item_new(key, key_len, NULL, 0, until, version,
                                 origin, ITEM_F_TOMBSTONE);
    if (tomb && prepare(s, hash, tomb, cur, &loc, now_ms) == STORE_OK) {
        link_at(s, hash, loc, cur, tomb);
        return;
    }
    free(tomb);
    if (cur) remove_at(s, loc);
}

/* Its time came: it turns into a tombstone (its own stamp) or goes. */
static void expire_item(struct store *s, uint64_t hash, struct loc loc,
                        struct item *it, int64_t now_ms)
{
    s->expired++;
    entomb(s, hash, loc, it, item_key(it), it->key_len, it->version,
           it->origin, now_ms);
}

enum store_status store_set(struct store *s, const char *key, size_t key_len,
                            const char *value, size_t value_len,
                            int64_t expire_ms, uint64_t version,
                            uint32_t origin, int64_t now_ms)
{
    if (key_len > UINT16_MAX || value_len > UINT32_MAX ||
        ITEM_HDR + key_len + value_len + CHUNK_OVERHEAD > s->cfg.memory_limit)
        return STORE_TOO_LARGE;
    move_clusters(s, MOVE_PER_WRITE);
    uint64_t hash = key_hash(s, key, key_len);
    struct loc loc = {false, 0};
    struct item *cur = lookup(s, hash, key, key_len, &loc);
    if (cur && !newer(cur, version, origin)) return STORE_STALE;
    if (expire_ms != 0 && expire_ms <= now_ms) {
        entomb(s, hash, loc, cur, key, key_len, version, origin, now_ms);
        return STORE_OK;
    }
    struct item *it = item_new(key, key_len, value, value_len, expire_ms,
                               version, origin, 0);
    if (it == NULL) return STORE_NOMEM;
    enum store_status st = prepare(s, hash, it, cur, &loc, now_ms);
    if (st != STORE_OK) {
        free(it);
        return st;
    }
    link_at(s, hash, loc, cur, it);
    return STORE_OK;
}

enum store_status store_del(struct store *s, const char *key, size_t key_len,
                            uint64_t version, uint32_t origin, int64_t now_ms)
{
    if (key_len > UINT16_MAX) return STORE_NOT_FOUND;
    move_clusters(s, MOVE_PER_WRITE);
    uint64_t hash = key_hash(s, key, key_len);
    struct loc loc = {false, 0};
    struct item *cur = lookup(s, hash, key, key_len, &loc);
    if (cur && !newer(cur, version, origin)) return STORE_STALE;
    bool live = cur && !is_tomb(cur) && !is_expired(cur, now_ms);
    if (cur || s->cfg.tombstone_ttl_ms > 0)
        entomb(s, hash, loc, cur, key, key_len, version, origin, now_ms);
    maybe_shrink(s);
    return live ? STORE_OK : STORE_NOT_FOUND;
}

/* New expiry for a live item; may need the heap to grow. */
static enum store_status retime(struct store *s, struct item *it,
                                int64_t expire_ms, int64_t now_ms)
{
    if (expire_ms != 0 && it->heap_idx == TTLHEAP_NONE) {
        while (!fits(s, heap_growth(&s->heap), 0))
            if (!evict_one(s, it, now_ms)) return STORE_NOMEM;
    }
    uint64_t before = digest_of(it);
    int64_t prev = it->expire_ms;
    it->expire_ms = expire_ms;
    if (expire_ms == 0) {
        ttlheap_remove(&s->heap, it);
    } else if (it->heap_idx != TTLHEAP_NONE) {
        ttlheap_update(&s->heap, it);
    } else if (ttlheap_push(&s->heap, it) != 0) {
        it->expire_ms = prev;
        return STORE_NOMEM;
    }
    s->digest ^= before ^ digest_of(it);
    return STORE_OK;
}

/*
 * LWW caveat: sets and deletes commute in any delivery order, but an expire
 * only changes the item it finds. Delivered before the (older) set it was
 * meant for, it finds nothing and the set then wins without the new expiry.
 * Convergence needs an expire delivered after that set, or replicated as a
 * full set (value + new expiry) by the node that has the value.
 */
enum store_status store_expire(struct store *s, const char *key,
                               size_t key_len, int64_t expire_ms,
                               uint64_t version, uint32_t origin,
                               int64_t now_ms)
{
    if (key_len > UINT16_MAX) return STORE_NOT_FOUND;
    move_clusters(s, MOVE_PER_WRITE);
    uint64_t hash = key_hash(s, key, key_len);
    struct loc loc;
    struct item *cur = lookup(s, hash, key, key_len, &loc);
    if (cur == NULL) return STORE_NOT_FOUND;
    if (!newer(cur, version, origin)) return STORE_STALE;
    if (is_tomb(cur)) return STORE_NOT_FOUND;
    if (is_expired(cur, now_ms)) {
        expire_item(s, hash, loc, cur, now_ms);
        return STORE_NOT_FOUND;
    }
    if (expire_ms != 0 && expire_ms <= now_ms) {
        s->expired++;
        entomb(s, hash, loc, cur, key, key_len, version, origin, now_ms);
        return STORE_OK;
    }
    enum store_status st = retime(s, cur, expire_ms, now_ms);
    if (st == STORE_OK) {
        cur->version = version;
        cur->origin = origin;
    }
    return st;
}

size_t store_expire_due(struct store *s, int64_t now_ms, size_t max)
{
    size_t n = 0;
    struct item *it;
    while (n < max && (it = ttlheap_peek(&s->heap)) != NULL &&
           it->expire_ms <= now_ms) {
        uint64_t hash = item_hash(s, it);
        struct loc loc = locate(s, hash, it);
        if (is_tomb(it))
            remove_at(s, loc);
        else
            expire_item(s, hash, loc, it, now_ms);
        n++;
    }
    if (n) maybe_shrink(s);
    return n;
}

/* ---- reads ------------------------------------------------------------ */

struct item *store_get(struct store *s, const char *key, size_t key_len,
                       int64_t now_ms)
{
    if (key_len > UINT16_MAX) return NULL;
    uint64_t hash = key_hash(s, key, key_len);
    struct loc loc;
    struct item *it = lookup(s, hash, key, key_len, &loc);
    if (it == NULL || is_tomb(it)) return NULL;
    if (is_expired(it, now_ms)) {
        expire_item(s, hash, loc, it, now_ms);
        return NULL;
    }
    if (!(it->flags & ITEM_F_ACCESSED)) it->flags |= ITEM_F_ACCESSED;
    return it;
}

const struct item *store_peek(const struct store *s, const char *key,
                              size_t key_len)
{
    if (key_len > UINT16_MAX) return NULL;
    struct loc loc;
    return lookup(s, key_hash(s, key, key_len), key, key_len, &loc);
}

int64_t store_next_expiry(const struct store *s)
{
    const struct item *it = ttlheap_peek(&s->heap);
    return it ? it->expire_ms : 0;
}

bool store_maintain(struct store *s, size_t max_slots)
{
    move_clusters(s, max_slots);
    return s->old.slots != NULL;
}

void store_item_ref(struct item *it) { it->refcount++; }

void store_item_unref(struct store *s, struct item *it)
{
    (void)s;
    if (--it->refcount == 0 && !(it->flags & ITEM_F_LINKED)) free(it);
}

/*
 * Scan. The cursor is (table generation << 40 | slot index). During a
 * resize the walk covers old, then t. A call only stops on an empty slot,
 * after max visits (or 4*max+64 slots looked at), so it may visit a few
 * more than max to finish a cluster. Stopping on an empty slot e means every
 * entry after e has its home after e, and a backward shift never moves an
 * entry past its home, so entries not yet visited never slip behind the
 * cursor. Entries that a resize moves out of old land in t, which is walked
 * afterwards. A cursor naming a table that no longer exists (a resize
 * finished) restarts the walk. Hence, without writes, every item is visited
 * at least once (exactly once if no resize progresses meanwhile).
 */
size_t store_scan(struct store *s, uint64_t *cursor, size_t max,
                  store_visit_fn fn, void *arg)
{
    if (max == 0) return 0;
    uint32_t gen = (uint32_t)(*cursor >> CURSOR_POS_BITS);
    size_t pos = (size_t)(*cursor & CURSOR_POS_MASK);
    struct table *t;
    if (gen != 0 && s->old.slots && gen == s->old.gen) {
        t = &s->old;
    } else if (gen != 0 && gen == s->t.gen) {
        t = &s->t;
    } else {
        t = s->old.slots ? &s->old : &s->t;
        pos = 0;
    }
    size_t visited = 0, looked = 0;
    size_t budget = max > SIZE_MAX / 8 ? SIZE_MAX : 4 * max + 64;
    for (;; pos++, looked++) {
        if (pos > t->mask) {
            if (t == &s->t) {
                *cursor = 0;
                return visited;
            }
            t = &s->t;
            pos = 0;
        }
        uint64_t slot = t->slots[pos];
        if (slot) {
            fn(arg, slot_item(slot));
            visited++;
        } else if (visited >= max || looked >= budget) {
            break;
        }
    }
    *cursor = ((uint64_t)t->gen << CURSOR_POS_BITS) | pos;
    return visited;
}

void store_get_stats(const struct store *s, struct store_stats *out)
{
    out->curr_items = s->items;
    out->tombstones = s->tombstones;
    out->bytes = store_bytes(s);
    out->limit_bytes = s->cfg.memory_limit;
    out->expired = s->expired;
    out->evicted = s->evicted;
    out->table_slots = (s->t.mask + 1) + (s->old.slots ? s->old.mask + 1 : 0);
    out->rehashing = s->old.slots != NULL;
    out->items_digest = s->digest;
}

/* ---- lifetime --------------------------------------------------------- */

struct store *store_create(const struct store_config *cfg)
{
    struct store *s = calloc(1, sizeof *s);
    if (s == NULL) return NULL;
    s->cfg = *cfg;
    s->seed = store_hash_seed();
    ttlheap_init(&s->heap);
    s->t.slots = calloc(TABLE_MIN_SLOTS, sizeof *s->t.slots);
    if (s->t.slots == NULL) {
        free(s);
        return NULL;
    }
    s->t.mask = TABLE_MIN_SLOTS - 1;
    s->t.gen = new_gen(s);
    return s;
}

/* Referenced items outlive the store: their last unref frees them. */
static void free_table_items(struct table *t)
{
    for (size_t i = 0; t->slots && i <= t->mask; i++) {
        if (t->slots[i] == 0) continue;
        struct item *it = slot_item(t->slots[i]);
        it->flags &= (uint8_t)~ITEM_F_LINKED;
        if (it->refcount == 0) free(it);
    }
    free(t->slots);
}

void store_destroy(struct store *s)
{
    if (s == NULL) return;
    ttlheap_free(&s->heap);
    free_table_items(&s->t);
    free_table_items(&s->old);
    free(s);
}
