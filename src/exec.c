/*
 * exec.c - the command core (see exec.h).
 *
 * Every write follows one path, commit(): gate (confirm mode: refuse while
 * the outbox is full, so every acknowledged write is one the broker will
 * confirm), apply to the store (store_write: the same merge replication
 * uses, with fresh stamps that always win locally), then tell the expiry
 * timer and replication. Read-modify-write operations (append, incr) read
 * the item, build the new value in a scratch buffer and commit it as a
 * plain write with a new value stamp, keeping the expiry register: across
 * nodes the last writer wins (a pool is not a counter CRDT).
 */
#include "exec.h"

#include <stdlib.h>
#include <string.h>

#include "expiry.h"
#include "hlc.h"
#include "num.h"
#include "repl.h"
#include "store.h"

struct exec {
    struct exec_config cfg;
    struct exec_stats stats;
    char *scratch;        /* read-modify-write results */
    size_t scratch_cap;
};

struct exec *exec_create(const struct exec_config *cfg)
{
    struct exec *x = calloc(1, sizeof *x);
    if (!x) return NULL;
    x->cfg = *cfg;
    return x;
}

void exec_destroy(struct exec *x)
{
    if (!x) return;
    free(x->scratch);
    free(x);
}

const struct exec_stats *exec_get_stats(const struct exec *x) { return &x->stats; }
struct store *exec_store_of(const struct exec *x) { return x->cfg.store; }

static struct exec_result result(enum exec_status st)
{
    return (struct exec_result){st, NULL, 0};
}

static bool gate_open(struct exec *x)
{
    if (!x->cfg.confirm || !x->cfg.repl || repl_write_allowed(x->cfg.repl)) return true;
    x->stats.writes_refused_outbox++;
    return false;
}

static enum exec_status of_store(enum store_status st)
{
    switch (st) {
    case STORE_OK: return EXEC_OK;
    case STORE_NOT_FOUND: return EXEC_NOT_FOUND;
    case STORE_TOO_LARGE: return EXEC_TOO_LARGE;
    default: return EXEC_NOMEM; /* NOMEM (a fresh local stamp is never stale) */
    }
}

/* Replicate w (as applied: both registers filled in) and note its
 * expiry; fills the result. */
static void published(struct exec *x, const struct store_write *w, bool touch,
                      struct exec_result *res)
{
    if (w->expire_ms) expiry_note(x->cfg.expiry, w->expire_ms);
    if (!x->cfg.repl) return;
    uint64_t seq = touch ? repl_local_touch(x->cfg.repl, w) : repl_local_write(x->cfg.repl, w);
    if (x->cfg.confirm) res->confirm_seq = seq;
}

/* Stamp w with a fresh tick and apply it. A fresh tick beats everything the
 * store holds, except a flush watermark the clock has not seen (a delayed
 * flush that came due): then the clock moves past it and the write is
 * stamped again. */
static enum store_status stamp_and_write(struct exec *x, struct store_write *w, int64_t now_ms)
{
    for (int attempt = 0;; attempt++) {
        uint64_t stamp = hlc_tick(x->cfg.hlc, now_ms);
        if (w->has_value) {
            w->version = stamp;
            w->origin = x->cfg.origin;
        }
        if (w->has_expiry) {
            w->exp_version = stamp;
            w->exp_origin = x->cfg.origin;
        }
        enum store_status st = store_write(x->cfg.store, w, now_ms);
        if (st != STORE_STALE || attempt == 1) return st;
        uint64_t ver[2];
        uint32_t origin[2];
        size_t n = store_flush_stamps(x->cfg.store, ver, origin);
        for (size_t i = 0; i < n; i++)
            if (hlc_physical_ms(ver[i]) <= now_ms) hlc_observe(x->cfg.hlc, ver[i]);
    }
}

/* Apply a local write and hand it on. w's stamps are set here. */
static struct exec_result commit(struct exec *x, struct store_write *w, int64_t now_ms)
{
    if (!gate_open(x)) return result(EXEC_REFUSED);
    struct exec_result res = result(of_store(stamp_and_write(x, w, now_ms)));
    if (res.status != EXEC_OK) {
        if (res.status == EXEC_NOMEM || res.status == EXEC_TOO_LARGE) x->stats.set_refused++;
        return res;
    }
    if (!w->tomb) res.item = store_find(x->cfg.store, w->key, w->key_len, now_ms);
    if (!w->has_expiry && res.item) { /* kept: replicate the register as it is */
        w->expire_ms = res.item->expire_ms;
        w->exp_version = item_exp_version(res.item);
        w->exp_origin = item_exp_origin(res.item);
    }
    published(x, w, false, &res);
    return res;
}

struct item *exec_peek(struct exec *x, const char *key, size_t key_len, int64_t now_ms)
{
    return store_find(x->cfg.store, key, key_len, now_ms);
}

/* A client's lookup: counted as a get (hit, miss, expired). */
static struct item *lookup(struct exec *x, const char *key, size_t key_len, int64_t now_ms)
{
    bool expired;
    x->stats.cmd_get++;
    struct item *it = store_lookup(x->cfg.store, key, key_len, now_ms, &expired);
    if (it) {
        x->stats.get_hits++;
    } else {
        x->stats.get_misses++;
        x->stats.get_expired += expired;
    }
    return it;
}

struct item *exec_read(struct exec *x, const char *key, size_t key_len, bool bump,
                       struct exec_seen *prior, int64_t now_ms)
{
    struct item *it = lookup(x, key, key_len, now_ms);
    if (!it) return NULL;
    if (prior) *prior = (struct exec_seen){(it->flags & ITEM_F_FETCHED) != 0, it->atime};
    if (bump) store_mark_read(it, now_ms);
    return it;
}

struct item *exec_get(struct exec *x, const char *key, size_t key_len, int64_t now_ms)
{
    struct item *it = lookup(x, key, key_len, now_ms);
    if (it) store_mark_read(it, now_ms);
    return it;
}

bool exec_take_token(struct exec *x, struct item *it)
{
    (void)x;
    if (it->flags & ITEM_F_WON) return false;
    it->flags |= ITEM_F_WON;
    return true;
}

/* Room for n bytes of a read-modify-write result. */
static char *scratch(struct exec *x, size_t n)
{
    if (n <= x->scratch_cap) return x->scratch;
    char *p = realloc(x->scratch, n);
    if (!p) return NULL;
    x->scratch = p;
    x->scratch_cap = n;
    return p;
}

/* A write of a new value for key, keeping cur's flags and expiry
 * register; a new key (cur NULL) gets no expiry. */
static struct store_write keep_meta(const char *key, size_t key_len, const char *value,
                                    size_t value_len, const struct item *cur)
{
    return (struct store_write){
        .key = key, .key_len = key_len,
        .has_value = true, .value = value, .value_len = value_len,
        .client_flags = cur ? item_client_flags(cur) : 0,
        .has_expiry = cur == NULL,
    };
}

static struct exec_result set_concat(struct exec *x, const struct exec_store *req,
                                     struct item *cur, int64_t now_ms)
{
    if (!cur && !req->create) return result(EXEC_NOT_STORED);
    size_t old = cur ? cur->value_len : 0;
    if (req->value_len > SIZE_MAX - old ||
        (x->cfg.max_value_len && old + req->value_len > x->cfg.max_value_len)) {
        x->stats.set_refused++;
        return result(EXEC_TOO_LARGE);
    }
    char *buf = scratch(x, old + req->value_len + 1);
    if (!buf) return result(EXEC_NOMEM);
    const char *ov = cur ? item_value(cur) : "";
    if (req->mode == EXEC_APPEND) {
        memcpy(buf, ov, old);
        memcpy(buf + old, req->value, req->value_len);
    } else {
        memcpy(buf, req->value, req->value_len);
        memcpy(buf + req->value_len, ov, old);
    }
    struct store_write w = keep_meta(req->key, req->key_len, buf, old + req->value_len, cur);
    if (!cur) w.client_flags = req->client_flags;
    return commit(x, &w, now_ms);
}

/* The cas check of a write: EXEC_OK (*stale: accepted as an older cas
 * under invalidate), EXEC_NOT_FOUND or EXEC_EXISTS. */
static enum exec_status cas_check(struct exec *x, const struct exec_store *req,
                                  const struct item *cur, bool *stale)
{
    if (!cur) {
        x->stats.cas_misses++;
        return EXEC_NOT_FOUND;
    }
    if (cur->version != req->cas && !(req->invalidate && req->cas < cur->version)) {
        x->stats.cas_badval++;
        return EXEC_EXISTS;
    }
    *stale = cur->version != req->cas;
    x->stats.cas_hits++;
    return EXEC_OK;
}

struct exec_result exec_set(struct exec *x, const struct exec_store *req, int64_t now_ms)
{
    x->stats.cmd_set++;
    struct item *cur = store_find(x->cfg.store, req->key, req->key_len, now_ms);
    bool stale = false, concat = req->mode == EXEC_APPEND || req->mode == EXEC_PREPEND;
    if (req->mode == EXEC_CAS || (concat && req->check_cas)) {
        if (concat && !cur) return result(EXEC_NOT_STORED);
        enum exec_status st = cas_check(x, req, cur, &stale);
        if (st != EXEC_OK) return result(st);
    }
    if ((req->mode == EXEC_ADD && cur) || (req->mode == EXEC_REPLACE && !cur))
        return result(EXEC_NOT_STORED);
    uint8_t marks = stale ? ITEM_F_STALE | (cur->flags & ITEM_F_WON) : 0;
    struct exec_result res;
    if (concat) {
        res = set_concat(x, req, cur, now_ms);
    } else {
        bool keep = req->expire_ms == EXEC_KEEP_TTL || stale;
        struct store_write w = {
            .key = req->key, .key_len = req->key_len,
            .has_value = true, .value = req->value, .value_len = req->value_len,
            .client_flags = req->client_flags,
            .has_expiry = !keep,
            .expire_ms = keep ? 0 : req->expire_ms,
        };
        res = commit(x, &w, now_ms);
    }
    if (res.status == EXEC_OK) {
        x->stats.total_items++;
        if (res.item) res.item->flags |= marks;
    }
    return res;
}

struct exec_result exec_touch(struct exec *x, const char *key, size_t key_len,
                              int64_t expire_ms, int64_t now_ms)
{
    x->stats.cmd_touch++;
    struct item *cur = store_get(x->cfg.store, key, key_len, now_ms);
    if (!cur) {
        x->stats.touch_misses++;
        return result(EXEC_NOT_FOUND);
    }
    if (!gate_open(x)) return result(EXEC_REFUSED);
    /* what replicates: the value it was made on, with that value's stamp;
     * locally only the expiry register moves (cur may be freed by it) */
    struct store_write w = {
        .key = key, .key_len = key_len,
        .has_value = true, .value = item_value(cur), .value_len = cur->value_len,
        .client_flags = item_client_flags(cur),
        .version = cur->version, .origin = cur->origin,
        .has_expiry = true, .expire_ms = expire_ms,
        .exp_version = hlc_tick(x->cfg.hlc, now_ms), .exp_origin = x->cfg.origin,
    };
    store_item_ref(cur);
    enum store_status st = store_expire(x->cfg.store, key, key_len, expire_ms,
                                        w.exp_version, w.exp_origin, now_ms);
    struct exec_result res = result(of_store(st));
    if (st == STORE_OK) {
        x->stats.touch_hits++;
        published(x, &w, true, &res);
        res.item = store_find(x->cfg.store, key, key_len, now_ms);
    }
    store_item_unref(x->cfg.store, cur);
    return res;
}

struct exec_result exec_delete(struct exec *x, const char *key, size_t key_len,
                               uint64_t cas, int64_t now_ms)
{
    /* A delete of a key that is not live changes nothing: stamping a new
     * tombstone that is never published would leave this node holding a
     * delete its peers do not know, and the pool would never converge. */
    struct item *cur = store_find(x->cfg.store, key, key_len, now_ms);
    if (!cur) {
        x->stats.delete_misses++;
        return result(EXEC_NOT_FOUND);
    }
    if (cas && cur->version != cas) return result(EXEC_EXISTS);
    struct store_write w = {
        .key = key, .key_len = key_len, .has_value = true, .tomb = true,
        .has_expiry = true,
    };
    struct exec_result res = commit(x, &w, now_ms);
    if (res.status == EXEC_OK) x->stats.delete_hits++;
    return res;
}

static bool is_blank(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/*
 * A stored value as memcached's incr reads it (strtoull, then a check of
 * the byte after the digits): blanks, an optional sign ('-' only before a
 * zero), 1..20 digits below 2^64, then the end or a blank (whatever
 * follows is ignored). The value is not NUL-terminated.
 */
static bool memcached_number(const char *v, size_t n, uint64_t *out)
{
    size_t i = 0;
    while (i < n && is_blank(v[i])) i++;
    bool neg = i < n && v[i] == '-';
    if (i < n && (v[i] == '+' || v[i] == '-')) i++;
    size_t first = i;
    uint64_t val = 0;
    for (; i < n && v[i] >= '0' && v[i] <= '9'; i++) {
        unsigned d = (unsigned)(v[i] - '0');
        if (val > (UINT64_MAX - d) / 10) return false;
        val = val * 10 + d;
    }
    if (i == first || (i < n && !is_blank(v[i])) || (neg && val != 0)) return false;
    *out = val;
    return true;
}

struct exec_result exec_arith_u64(struct exec *x, const struct exec_arith *a, int64_t now_ms,
                                  uint64_t *out)
{
    struct item *cur = store_get(x->cfg.store, a->key, a->key_len, now_ms);
    char buf[NUM_MAX_DIGITS];
    if (!cur) {
        (*(a->decr ? &x->stats.decr_misses : &x->stats.incr_misses))++;
        if (!a->create) return result(EXEC_NOT_FOUND);
        struct store_write w = keep_meta(a->key, a->key_len, buf,
                                         num_format_u64(buf, a->initial), NULL);
        w.expire_ms = a->create_expire_ms;
        struct exec_result res = commit(x, &w, now_ms);
        if (res.status == EXEC_OK) {
            x->stats.total_items++;
            *out = a->initial;
        }
        return res;
    }
    if (a->check_cas && cur->version != a->cas) return result(EXEC_EXISTS);
    uint64_t val;
    if (!memcached_number(item_value(cur), cur->value_len, &val))
        return result(EXEC_NOT_NUMBER);
    if (a->decr) val = val < a->delta ? 0 : val - a->delta;
    else val += a->delta; /* wraps, as memcached's does */
    struct store_write w = keep_meta(a->key, a->key_len, buf, num_format_u64(buf, val), cur);
    if (a->expire_ms != EXEC_KEEP_TTL) {
        w.has_expiry = true;
        w.expire_ms = a->expire_ms;
    }
    struct exec_result res = commit(x, &w, now_ms);
    if (res.status == EXEC_OK) {
        (*(a->decr ? &x->stats.decr_hits : &x->stats.incr_hits))++;
        *out = val;
    }
    return res;
}

struct exec_result exec_incr_u64(struct exec *x, const char *key, size_t key_len,
                                 bool decr, uint64_t delta, int64_t now_ms, uint64_t *out)
{
    struct exec_arith a = {.key = key, .key_len = key_len, .decr = decr, .delta = delta,
                           .expire_ms = EXEC_KEEP_TTL};
    return exec_arith_u64(x, &a, now_ms, out);
}

struct exec_result exec_invalidate(struct exec *x, const char *key, size_t key_len,
                                   uint64_t cas, int64_t expire_ms, bool stale, bool empty,
                                   int64_t now_ms)
{
    struct item *cur = store_find(x->cfg.store, key, key_len, now_ms);
    if (!cur) return result(EXEC_NOT_FOUND);
    if (cas && cur->version != cas) return result(EXEC_EXISTS);
    store_item_ref(cur); /* its value is the source of the write */
    struct store_write w = keep_meta(key, key_len, empty ? "" : item_value(cur),
                                     empty ? 0 : cur->value_len, cur);
    if (expire_ms != EXEC_KEEP_TTL) {
        w.has_expiry = true;
        w.expire_ms = expire_ms;
    }
    struct exec_result res = commit(x, &w, now_ms);
    store_item_unref(x->cfg.store, cur);
    if (res.status == EXEC_OK && res.item && stale) res.item->flags |= ITEM_F_STALE;
    return res;
}

struct exec_result exec_incr_i64(struct exec *x, const char *key, size_t key_len,
                                 int64_t delta, int64_t now_ms, int64_t *out)
{
    struct item *cur = store_get(x->cfg.store, key, key_len, now_ms);
    int64_t val = 0;
    if (cur && !num_parse_i64(item_value(cur), cur->value_len, &val))
        return result(EXEC_NOT_NUMBER);
    if ((delta > 0 && val > INT64_MAX - delta) || (delta < 0 && val < INT64_MIN - delta))
        return result(EXEC_OVERFLOW);
    val += delta;
    char buf[NUM_MAX_DIGITS];
    size_t len = num_format_i64(buf, val);
    struct store_write w = keep_meta(key, key_len, buf, len, cur);
    struct exec_result res = commit(x, &w, now_ms);
    if (res.status == EXEC_OK) *out = val;
    return res;
}

struct exec_result exec_flush(struct exec *x, int64_t delay_ms, int64_t now_ms)
{
    x->stats.cmd_flush++;
    if (!gate_open(x)) return result(EXEC_REFUSED);
    /* at once: a fresh tick, newer than every item here; delayed: the
     * stamp of that future time (the clock is not moved to it) */
    uint64_t stamp = delay_ms > 0 ? (uint64_t)(now_ms + delay_ms) << HLC_LOGICAL_BITS
                                  : hlc_tick(x->cfg.hlc, now_ms);
    store_flush(x->cfg.store, stamp, x->cfg.origin, now_ms);
    expiry_note(x->cfg.expiry, hlc_physical_ms(stamp));
    struct exec_result res = result(EXEC_OK);
    if (x->cfg.repl) {
        uint64_t seq = repl_local_flush(x->cfg.repl, stamp, x->cfg.origin);
        if (x->cfg.confirm) res.confirm_seq = seq;
    }
    return res;
}
