/*
 * store.c - items and their lifetime: writes merged by last-writer-wins,
 * tombstones, reads, references, memory accounting, the digests.
 *
 * Owns: every item (one chunk of the store's slab allocator, slab.h: header,
 * key, value, tail; item.h), the index over
 * them (struct table, table.h: slot arrays, probing, incremental resize,
 * sampling and walks live there), the TTL heap (ttlheap.h), the flush
 * watermarks and the counters. What leaves without a client asking (the
 * victim of an eviction, due items, the flush sweep) is store_evict.c's
 * choice, removed through store_remove_at()/store_expire_item() here; see
 * store_impl.h for the seam. Single-threaded; times come from the caller.
 *
 * Writes. Each write first moves MOVE_PER_WRITE slots of a resize under way
 * (table_move), hashes the key once and looks it up; the (hash, table_loc)
 * pair then follows the key through prepare/link_at/store_remove_at. A new
 * key that would pass 3/4 load grows the table, or evicts (make_slot); a
 * delete or an expiry that leaves it under 1/8 shrinks it
 * (store_maybe_shrink).
 *
 * Accounting. bytes = sum over linked items of their slab_size (the chunk
 * of their size class; a large item's pages as far as it fills them)
 * + table_bytes (both slot arrays during a resize) + ttlheap_bytes. A write
 * first computes what it will add (item, table growth, heap growth) minus
 * what it replaces, and evicts by policy (store_evict_one) until that fits;
 * so bytes <= memory_limit after every write. The item a write replaces is
 * never the victim. A new key that needs a bigger table gets it only if
 * that table fits under the cap too; otherwise the write evicts to keep
 * the load under 3/4. Items unlinked while referenced leave the accounting
 * at once and are freed by the last store_item_unref().
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
#include "store_impl.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <xxhash.h>

#define MOVE_PER_WRITE 128u    /* old slots moved by each write in a resize */
#define RELEASE_PER_CALL 64u   /* emptied allocator pages given back per store_maintain */
#define ITEM_HDR offsetof(struct item, data)

/* A random seed for the table hash (store_config.hash_seed 0). */
static uint64_t random_seed(void)
{
    uint64_t seed;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed)
        seed = (uint64_t)(uintptr_t)&seed * UINT64_C(0x9e3779b97f4a7c15);
    return seed;
}

/* ---- items ------------------------------------------------------------ */

uint64_t item_digest(const char *key, size_t key_len, const char *value,
                     size_t value_len, uint32_t client_flags,
                     int64_t expire_ms)
{
    uint64_t kh = XXH3_64bits_withSeed(key, key_len, (uint64_t)expire_ms);
    return XXH3_64bits_withSeed(value, value_len,
                                kh ^ client_flags * UINT64_C(0x9e3779b97f4a7c15));
}

static uint64_t digest_of(const struct item *it)
{
    return item_digest(item_key(it), it->key_len, item_value(it),
                       it->value_len, item_client_flags(it), it->expire_ms);
}

static size_t item_cost(const struct store *s, const struct item *it)
{
    return slab_size(s->slab, it);
}

/* Both registers of a key, as a write leaves them. */
struct regs {
    uint64_t version;    /* value register stamp */
    uint32_t origin;
    uint32_t client_flags;
    uint64_t exp_version; /* expiry register stamp */
    uint32_t exp_origin;
    int64_t expire_ms;   /* expiry register */
};

static struct regs regs_of(const struct item *it)
{
    return (struct regs){it->version, it->origin, item_client_flags(it),
                         item_exp_version(it), item_exp_origin(it),
                         store_item_expiry(it)};
}

/* Does the expiry stamp of r need a place in the tail of an item holding
 * r's value stamp? */
static bool own_exp_stamp(const struct regs *r)
{
    return r->exp_version != r->version || r->exp_origin != r->origin;
}

/* Write the expiry register's stamp into it (it has room for it, or the
 * stamp is its value stamp). */
static void set_exp_stamp(struct item *it, uint64_t exp_version, uint32_t exp_origin)
{
    if (!(it->meta & ITEM_M_EXP_STAMP)) return; /* equal to the value stamp */
    char *tail = (char *)item_tail(it);
    memcpy(tail, &exp_version, sizeof exp_version);
    memcpy(tail + 8, &exp_origin, sizeof exp_origin);
}

/* A live item (flags 0), or a tombstone (ITEM_F_TOMBSTONE, maybe with
 * ITEM_F_EXPIRED) collected at collect_ms, which keeps r->expire_ms after
 * its key. The tail holds the expiry stamp if it differs from the value
 * stamp (a tombstone's always: it is restamped in place) and the client
 * flags if not 0. */
static struct item *item_new(struct store *s, const char *key, size_t key_len,
                             const char *value, size_t value_len,
                             const struct regs *r, uint8_t flags,
                             int64_t collect_ms, int64_t now_ms)
{
    bool tomb = flags & ITEM_F_TOMBSTONE;
    uint8_t meta = (uint8_t)((tomb || own_exp_stamp(r) ? ITEM_M_EXP_STAMP : 0) |
                             (!tomb && r->client_flags ? ITEM_M_CFLAGS : 0));
    size_t body = tomb ? sizeof(int64_t) : value_len;
    size_t size = ITEM_HDR + key_len + body + item_tail_len(meta);
    struct item *it = slab_alloc(s->slab, size);
    if (it == NULL) return NULL;
    it->version = r->version;
    it->origin = r->origin;
    it->expire_ms = tomb ? collect_ms : r->expire_ms;
    it->heap_idx = TTLHEAP_NONE;
    it->value_len = tomb ? 0 : (uint32_t)value_len;
    it->refcount = 0;
    it->atime = (uint32_t)(now_ms / 1000);
    it->key_len = (uint16_t)key_len;
    it->flags = flags;
    it->meta = meta;
    if (key_len) memcpy(it->data, key, key_len);
    if (tomb) memcpy(it->data + key_len, &r->expire_ms, sizeof r->expire_ms);
    else if (value_len) memcpy(it->data + key_len, value, value_len);
    set_exp_stamp(it, r->exp_version, r->exp_origin);
    if (meta & ITEM_M_CFLAGS)
        memcpy((char *)item_tail(it) + item_tail_len(meta & ITEM_M_EXP_STAMP),
               &r->client_flags, sizeof r->client_flags);
    return it;
}

int64_t store_item_expiry(const struct item *it)
{
    if (!is_tomb(it)) return it->expire_ms;
    int64_t e;
    memcpy(&e, it->data + it->key_len, sizeof e);
    return e;
}

/* ---- memory ----------------------------------------------------------- */

/* it's digest term enters or leaves the digests. */
static void digest_toggle(struct store *s, const struct item *it, uint64_t term)
{
    s->digest ^= term;
    if (s->cfg.range_digests)
        rdigest_xor(&s->rd, rdigest_leaf_of(item_key(it), it->key_len), term);
}

/* ---- resize ----------------------------------------------------------- */

void store_maybe_shrink(struct store *s)
{
    if (!table_sparse(&s->tb)) return;
    if (fits(s, table_shrink_bytes(&s->tb), 0)) (void)table_shrink(&s->tb);
}

/* ---- linking ---------------------------------------------------------- */

/* Is it's value stamp below the flush watermark (in effect or not)? */
static bool below_watermark(const struct store *s, const struct item *it)
{
    return it->version < s->flush_ver; /* as flushed() compares */
}

static void account(struct store *s, struct item *it)
{
    it->flags |= ITEM_F_LINKED;
    s->item_bytes += item_cost(s, it);
    if (it->version > s->max_version) s->max_version = it->version;
    if (is_tomb(it)) {
        s->tombstones++;
    } else {
        s->items++;
        digest_toggle(s, it, digest_of(it));
        if (below_watermark(s, it)) s->below_flush++; /* a delayed flush */
    }
}

/* Take it out of the heap and the accounting; free it unless referenced. */
static void unlink_item(struct store *s, struct item *it)
{
    ttlheap_remove(&s->heap, it);
    s->item_bytes -= item_cost(s, it);
    if (is_tomb(it)) {
        s->tombstones--;
    } else {
        s->items--;
        digest_toggle(s, it, digest_of(it));
        if (s->below_flush && below_watermark(s, it)) s->below_flush--;
    }
    it->flags &= (uint8_t)~ITEM_F_LINKED;
    if (it->refcount == 0) slab_free(s->slab, it);
}

void store_remove_at(struct store *s, struct table_loc loc)
{
    unlink_item(s, table_remove(&s->tb, loc));
}

/*
 * Link it in cur's slot (cur != NULL, then cur is unlinked) or as a new key.
 * Cannot fail: prepare() has made room and put it on the heap when cur was
 * not there; when cur was, removing cur leaves room for it.
 */
static void link_at(struct store *s, uint64_t hash, struct table_loc loc,
                    struct item *cur, struct item *it)
{
    if (cur) {
        table_replace(&s->tb, loc, hash, it);
        unlink_item(s, cur);
    } else {
        table_insert(&s->tb, hash, it);
    }
    if (it->expire_ms != 0 && it->heap_idx == TTLHEAP_NONE)
        (void)ttlheap_push(&s->heap, it);
    account(s, it);
}

/* ---- eviction --------------------------------------------------------- */

/*
 * A new key needs a slot under 3/4 load: grow the table if the bigger one
 * fits the cap along with the item, otherwise evict to stay under the
 * threshold (with NONE, or nothing to evict: STORE_NOMEM).
 */
static enum store_status make_slot(struct store *s, uint64_t add,
                                   int64_t now_ms, bool *moved)
{
    while (table_full(&s->tb)) {
        if (table_resizing(&s->tb)) { /* writes outran the move: finish it */
            table_move(&s->tb, SIZE_MAX);
            continue;
        }
        if (fits(s, add + table_grow_bytes(&s->tb), 0) && table_grow(&s->tb))
            continue;
        if (!store_evict_one(s, NULL, now_ms)) return STORE_NOMEM;
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
                                 struct table_loc *loc, int64_t now_ms)
{
    uint64_t cost = item_cost(s, it);
    uint64_t sub = cur ? item_cost(s, cur) : 0;
    bool push = it->expire_ms != 0 &&
                !(cur && cur->heap_idx != TTLHEAP_NONE);
    bool moved = false;
    enum store_status st = STORE_OK;

    if (cost + table_cur_bytes(&s->tb) > s->cfg.memory_limit)
        return STORE_TOO_LARGE;
    if (cur == NULL) st = make_slot(s, cost, now_ms, &moved);
    while (st == STORE_OK &&
           !fits(s, cost + (push ? ttlheap_push_bytes(&s->heap) : 0), sub)) {
        if (!store_evict_one(s, cur, now_ms))
            st = STORE_NOMEM;
        else
            moved = true;
    }
    if (st == STORE_OK && push && ttlheap_push(&s->heap, it) != 0)
        st = STORE_NOMEM;
    if (cur && moved) *loc = table_locate(&s->tb, hash, cur);
    return st;
}

/* Link the new item it in place of cur (NULL: a new key), or free it if
 * there is no room (prepare's status). */
static enum store_status place(struct store *s, uint64_t hash, struct table_loc loc,
                               struct item *cur, struct item *it, int64_t now_ms)
{
    enum store_status st = prepare(s, hash, it, cur, &loc, now_ms);
    if (st != STORE_OK) {
        slab_free(s->slab, it);
        return st;
    }
    link_at(s, hash, loc, cur, it);
    return STORE_OK;
}

/* ---- writes ----------------------------------------------------------- */

/*
 * The key stops being live with registers r: with tombstones on, cur (or
 * nothing) becomes a tombstone (ITEM_F_EXPIRED when an expiry killed it)
 * collected at now + tombstone_ttl; otherwise cur is removed. If no
 * tombstone can be afforded, cur is just removed (with NONE at the cap a
 * delete must still succeed).
 */
static void entomb(struct store *s, uint64_t hash, struct table_loc loc,
                   struct item *cur, const char *key, size_t key_len,
                   const struct regs *r, bool by_expiry, int64_t now_ms)
{
    int64_t ttl = s->cfg.tombstone_ttl_ms;
    if (ttl <= 0) {
        if (cur) store_remove_at(s, loc);
        return;
    }
    int64_t until = now_ms > INT64_MAX - ttl ? INT64_MAX : now_ms + ttl;
    uint8_t flags = ITEM_F_TOMBSTONE | (by_expiry ? ITEM_F_EXPIRED : 0);
    if (cur && is_tomb(cur)) { /* restamp in place */
        cur->version = r->version;
        cur->origin = r->origin;
        set_exp_stamp(cur, r->exp_version, r->exp_origin);
        memcpy(cur->data + cur->key_len, &r->expire_ms, sizeof r->expire_ms);
        cur->flags = (uint8_t)((cur->flags & ~ITEM_F_EXPIRED) | flags);
        cur->expire_ms = until;
        ttlheap_update(&s->heap, cur);
        return;
    }
    struct item *tomb = item_new(s, key, key_len, NULL, 0, r, flags, until, now_ms);
    if (tomb && prepare(s, hash, tomb, cur, &loc, now_ms) == STORE_OK) {
        link_at(s, hash, loc, cur, tomb);
        return;
    }
    if (tomb) slab_free(s->slab, tomb);
    if (cur) store_remove_at(s, loc);
}

void store_expire_item(struct store *s, uint64_t hash, struct table_loc loc,
                       struct item *it, int64_t now_ms)
{
    count_expired(s, it);
    struct regs r = regs_of(it);
    entomb(s, hash, loc, it, item_key(it), it->key_len, &r, true, now_ms);
}

/* New expiry for a live item; may need the heap to grow. */
static enum store_status retime(struct store *s, struct item *it,
                                int64_t expire_ms, int64_t now_ms)
{
    if (expire_ms != 0 && it->heap_idx == TTLHEAP_NONE) {
        while (!fits(s, ttlheap_push_bytes(&s->heap), 0))
            if (!store_evict_one(s, it, now_ms)) return STORE_NOMEM;
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
    digest_toggle(s, it, before ^ digest_of(it));
    return STORE_OK;
}

/* Only the expiry register of cur moves (to r's): in place, or in a copy
 * of cur when its stamp needs room in the tail (cur may be freed). */
static enum store_status write_expiry(struct store *s, uint64_t hash,
                                      struct table_loc loc, struct item *cur,
                                      const struct regs *r, int64_t now_ms)
{
    if (is_tomb(cur)) { /* stays dead; remembers the newer expiry */
        entomb(s, hash, loc, cur, item_key(cur), cur->key_len, r,
               (cur->flags & ITEM_F_EXPIRED) != 0, now_ms);
        return STORE_OK;
    }
    if (r->expire_ms != 0 && r->expire_ms <= now_ms) {
        count_expired(s, cur);
        entomb(s, hash, loc, cur, item_key(cur), cur->key_len, r, true, now_ms);
        return STORE_OK;
    }
    if ((cur->meta & ITEM_M_EXP_STAMP) ||
        (r->exp_version == cur->version && r->exp_origin == cur->origin)) {
        enum store_status st = retime(s, cur, r->expire_ms, now_ms);
        if (st == STORE_OK) set_exp_stamp(cur, r->exp_version, r->exp_origin);
        return st;
    }
    /* the stamp needs a tail cur has no room for: a copy of cur with it
     * takes its place, keeping its read state */
    struct item *it = item_new(s, item_key(cur), cur->key_len, item_value(cur),
                               cur->value_len, r, 0, 0, now_ms);
    if (it == NULL) return STORE_NOMEM;
    it->flags = cur->flags & (uint8_t)~ITEM_F_LINKED;
    it->meta = (uint8_t)((it->meta & ~ITEM_M_FREQ) | item_freq(cur));
    it->atime = cur->atime;
    return place(s, hash, loc, cur, it, now_ms);
}

void store_flush_due(struct store *s, int64_t now_ms)
{
    if (s->pend_ver && now_ms >= hlc_physical_ms(s->pend_ver))
        store_flush(s, s->pend_ver, s->pend_origin, now_ms);
}

enum store_status store_write(struct store *s, const struct store_write *w,
                              int64_t now_ms)
{
    if (w->key_len > UINT16_MAX) return w->has_value ? STORE_TOO_LARGE : STORE_NOT_FOUND;
    if (w->has_value && !w->tomb &&
        (w->value_len > UINT32_MAX ||
         slab_size_for(s->slab, ITEM_HDR + w->key_len + w->value_len) > s->cfg.memory_limit))
        return STORE_TOO_LARGE;
    table_move(&s->tb, MOVE_PER_WRITE);
    store_flush_due(s, now_ms);
    uint64_t hash = table_hash(&s->tb, w->key, w->key_len);
    struct table_loc loc = {false, 0};
    struct item *cur = table_lookup(&s->tb, hash, w->key, w->key_len, &loc);
    if (cur && flushed(s, cur->version, now_ms)) {
        store_remove_at(s, loc); /* dead since the flush: as if absent */
        cur = NULL;
    }
    bool vnew = w->has_value && !flushed(s, w->version, now_ms) &&
                (!cur || hlc_stamp_newer(cur->version, cur->origin, w->version, w->origin) ||
                 ((cur->flags & ITEM_F_EXPIRED) && !w->tomb &&
                  cur->version == w->version && cur->origin == w->origin));
    bool enew = w->has_expiry &&
                (!cur || hlc_stamp_newer(item_exp_version(cur), item_exp_origin(cur),
                                         w->exp_version, w->exp_origin));
    if (!w->has_value) { /* an expiry-only write needs a live item */
        if (!cur || is_tomb(cur)) return STORE_NOT_FOUND;
        if (is_expired(cur, now_ms)) {
            store_expire_item(s, hash, loc, cur, now_ms);
            return STORE_NOT_FOUND;
        }
    }
    if (!vnew && !(enew && cur)) return STORE_STALE;

    struct regs r = cur ? regs_of(cur) : (struct regs){0};
    if (enew) {
        r.exp_version = w->exp_version;
        r.exp_origin = w->exp_origin;
        r.expire_ms = w->expire_ms;
    }
    if (!vnew) return write_expiry(s, hash, loc, cur, &r, now_ms);
    r.version = w->version;
    r.origin = w->origin;
    r.client_flags = w->tomb ? 0 : w->client_flags;
    bool expired = r.expire_ms != 0 && r.expire_ms <= now_ms;
    if (w->tomb || expired) {
        if (cur || s->cfg.tombstone_ttl_ms > 0)
            entomb(s, hash, loc, cur, w->key, w->key_len, &r,
                   !w->tomb || w->expired, now_ms);
        if (w->tomb) store_maybe_shrink(s);
        return STORE_OK;
    }
    struct item *it = item_new(s, w->key, w->key_len, w->value, w->value_len, &r, 0, 0, now_ms);
    if (it == NULL) return STORE_NOMEM;
    return place(s, hash, loc, cur, it, now_ms);
}

enum store_status store_set(struct store *s, const char *key, size_t key_len,
                            const char *value, size_t value_len,
                            int64_t expire_ms, uint64_t version,
                            uint32_t origin, int64_t now_ms)
{
    struct store_write w = {
        .key = key, .key_len = key_len,
        .has_value = true, .value = value, .value_len = value_len,
        .version = version, .origin = origin,
        .has_expiry = true, .expire_ms = expire_ms,
        .exp_version = version, .exp_origin = origin,
    };
    return store_write(s, &w, now_ms);
}

enum store_status store_del(struct store *s, const char *key, size_t key_len,
                            uint64_t version, uint32_t origin, int64_t now_ms)
{
    const struct item *cur = store_peek(s, key, key_len);
    bool live = cur && !is_tomb(cur) && !is_expired(cur, now_ms) &&
                !flushed(s, cur->version, now_ms);
    struct store_write w = {
        .key = key, .key_len = key_len,
        .has_value = true, .tomb = true,
        .version = version, .origin = origin,
        .has_expiry = true, .exp_version = version, .exp_origin = origin,
    };
    enum store_status st = store_write(s, &w, now_ms);
    if (st != STORE_OK) return st == STORE_TOO_LARGE ? STORE_NOT_FOUND : st;
    return live ? STORE_OK : STORE_NOT_FOUND;
}

enum store_status store_expire(struct store *s, const char *key,
                               size_t key_len, int64_t expire_ms,
                               uint64_t version, uint32_t origin,
                               int64_t now_ms)
{
    struct store_write w = {
        .key = key, .key_len = key_len,
        .has_expiry = true, .expire_ms = expire_ms,
        .exp_version = version, .exp_origin = origin,
    };
    return store_write(s, &w, now_ms);
}

bool store_flush(struct store *s, uint64_t version, uint32_t origin, int64_t now_ms)
{
    if (!hlc_stamp_newer(s->flush_ver, s->flush_origin, version, origin)) return false;
    if (hlc_physical_ms(version) > now_ms) { /* delayed: keep the latest one */
        if (!hlc_stamp_newer(s->pend_ver, s->pend_origin, version, origin)) return false;
        s->pend_ver = version;
        s->pend_origin = origin;
        return true;
    }
    s->flush_ver = version;
    s->flush_origin = origin;
    if (!hlc_stamp_newer(s->flush_ver, s->flush_origin, s->pend_ver, s->pend_origin))
        s->pend_ver = s->pend_origin = 0; /* a pending one is now moot */
    /* newer than every item ever linked (a local flush): all are below it;
     * otherwise unknown, and the sweep makes the count right */
    s->below_flush = version > s->max_version ? s->items : 0;
    store_sweep_restart(s);
    return true;
}

size_t store_flush_stamps(const struct store *s, uint64_t version[2], uint32_t origin[2])
{
    size_t n = 0;
    if (s->flush_ver) {
        version[n] = s->flush_ver;
        origin[n++] = s->flush_origin;
    }
    if (s->pend_ver) {
        version[n] = s->pend_ver;
        origin[n++] = s->pend_origin;
    }
    return n;
}

/* ---- reads ------------------------------------------------------------ */

struct item *store_lookup(struct store *s, const char *key, size_t key_len,
                          int64_t now_ms, bool *expired)
{
    *expired = false;
    if (key_len > UINT16_MAX) return NULL;
    uint64_t hash = table_hash(&s->tb, key, key_len);
    struct table_loc loc;
    struct item *it = table_lookup(&s->tb, hash, key, key_len, &loc);
    if (it == NULL || is_tomb(it)) return NULL;
    if (is_expired(it, now_ms)) {
        store_expire_item(s, hash, loc, it, now_ms);
        *expired = true;
        return NULL;
    }
    if (flushed(s, it->version, now_ms)) {
        store_remove_at(s, loc);
        return NULL;
    }
    return it;
}

struct item *store_find(struct store *s, const char *key, size_t key_len,
                        int64_t now_ms)
{
    bool expired;
    return store_lookup(s, key, key_len, now_ms, &expired);
}

struct item *store_get(struct store *s, const char *key, size_t key_len,
                       int64_t now_ms)
{
    struct item *it = store_find(s, key, key_len, now_ms);
    if (it) store_mark_read(it, now_ms);
    return it;
}


const struct item *store_peek(const struct store *s, const char *key,
                              size_t key_len)
{
    if (key_len > UINT16_MAX) return NULL;
    struct table_loc loc;
    uint64_t hash = table_hash(&s->tb, key, key_len);
    return table_lookup(&s->tb, hash, key, key_len, &loc);
}

/* slab_compact moved the item at from to to (a copy): the index and the
 * heap point at the copy, unless a reply still holds from. */
static bool item_moved(void *arg, const void *from, void *to)
{
    struct store *s = arg;
    const struct item *old = from;
    struct item *it = to;
    if (old->refcount) return false;
    uint64_t hash = table_item_hash(&s->tb, old);
    table_replace(&s->tb, table_locate(&s->tb, hash, old), hash, it);
    ttlheap_moved(&s->heap, it);
    return true;
}

bool store_maintain(struct store *s, size_t max_slots, size_t max_moves)
{
    table_move(&s->tb, max_slots);
    size_t moved = slab_compact(s->slab, max_moves, item_moved, s);
    size_t waiting = slab_release(s->slab, RELEASE_PER_CALL);
    return table_resizing(&s->tb) || (max_moves && moved == max_moves) || waiting;
}

void store_item_ref(struct item *it) { it->refcount++; }

void store_item_unref(struct store *s, struct item *it)
{
    if (--it->refcount == 0 && !(it->flags & ITEM_F_LINKED)) slab_free(s->slab, it);
}

/* The walk and its guarantees: table_scan() in table.c. */
size_t store_scan(struct store *s, uint64_t *cursor, size_t max,
                  store_visit_fn fn, void *arg)
{
    return table_scan(&s->tb, cursor, max, fn, arg);
}

struct live_walk {
    const struct store *s;
    int64_t now_ms;
    size_t count;    /* items wanted */
    size_t reported;
    store_visit_fn fn;
    void *arg;
};

static bool live_visit(void *arg, const struct item *it)
{
    struct live_walk *w = arg;
    if (!is_tomb(it) && !is_expired(it, w->now_ms) &&
        !flushed(w->s, it->version, w->now_ms)) {
        w->fn(w->arg, it);
        w->reported++;
    }
    return w->reported < w->count;
}

size_t store_scan_keys(const struct store *s, uint64_t *cursor, size_t count,
                       size_t max_buckets, int64_t now_ms, store_visit_fn fn,
                       void *arg)
{
    struct live_walk w = {s, now_ms, count, 0, fn, arg};
    if (count > 0) table_scan_homes(&s->tb, cursor, max_buckets, live_visit, &w);
    return w.reported;
}

uint64_t store_live_items(const struct store *s, int64_t now_ms)
{
    if (s->pend_ver && now_ms >= hlc_physical_ms(s->pend_ver)) /* due, not applied yet */
        return s->pend_ver > s->max_version ? 0 : s->items;
    return s->flush_ver && s->below_flush <= s->items ? s->items - s->below_flush : s->items;
}

void store_get_stats(const struct store *s, struct store_stats *out)
{
    out->curr_items = s->items;
    /* the heap holds every item with an expiry, tombstones included */
    size_t expiring = ttlheap_len(&s->heap);
    out->expiring = expiring > s->tombstones ? expiring - s->tombstones : 0;
    out->tombstones = s->tombstones;
    out->bytes = store_bytes(s);
    out->limit_bytes = s->cfg.memory_limit;
    out->expired = s->expired;
    out->evicted = s->evicted;
    out->expired_unfetched = s->expired_unfetched;
    out->evicted_unfetched = s->evicted_unfetched;
    out->table_slots = table_slots(&s->tb);
    out->rehashing = table_resizing(&s->tb);
    struct slab_stats sl;
    slab_get_stats(s->slab, &sl);
    out->slab_bytes = (uint64_t)sl.pages * SLAB_PAGE;
    out->slab_pages_released = sl.pages_released;
    out->slab_items_moved = sl.moved;
    out->items_digest = s->digest;
}

/* ---- lifetime --------------------------------------------------------- */

struct store *store_create(const struct store_config *cfg)
{
    struct store *s = calloc(1, sizeof *s);
    if (s == NULL) return NULL;
    s->cfg = *cfg;
    if ((s->slab = slab_create(0)) == NULL) {
        free(s);
        return NULL;
    }
    struct slab_stats sl;
    slab_get_stats(s->slab, &sl);
    if (sl.reserved / 2 < cfg->memory_limit) { /* see SLAB_MAX_CHUNK */
        slab_destroy(s->slab);
        free(s);
        return NULL;
    }
    ttlheap_init(&s->heap, slab_base(s->slab));
    if (cfg->range_digests && rdigest_init(&s->rd) != 0) {
        slab_destroy(s->slab);
        free(s);
        return NULL;
    }
    if (table_init(&s->tb, cfg->hash_seed ? cfg->hash_seed : random_seed()) != 0) {
        rdigest_free(&s->rd);
        slab_destroy(s->slab);
        free(s);
        return NULL;
    }
    return s;
}

/* The slab goes with the store, and every item with it. */
static void release_item(struct item *it) { it->flags &= (uint8_t)~ITEM_F_LINKED; }

void store_destroy(struct store *s)
{
    if (s == NULL) return;
    ttlheap_free(&s->heap);
    table_destroy(&s->tb, release_item);
    rdigest_free(&s->rd);
    slab_destroy(s->slab);
    free(s);
}

bool store_slab_class(const struct store *s, unsigned i, struct slab_class_stats *out)
{
    struct slab_stats st;
    slab_get_stats(s->slab, &st);
    if (i >= st.classes) return false;
    slab_get_class(s->slab, i, out);
    return true;
}

uint64_t store_range_digest(const struct store *s, unsigned level, uint32_t index)
{
    return rdigest_get(&s->rd, level, index);
}

size_t store_longest_cluster(const struct store *s)
{
    return table_longest_cluster(&s->tb);
}
