/*
 * resp_keys.c - Redis's generic key commands on the command core: DEL
 * UNLINK EXISTS TYPE, the EXPIRE family (NX XX GT LT), TTL PTTL EXPIRETIME
 * PEXPIRETIME PERSIST, SCAN (MATCH COUNT TYPE), KEYS, RANDOMKEY.
 *
 * Expiry changes go through exec_touch(), which writes only the key's
 * expiry register: on a pool, an EXPIRE made on a node that has not yet
 * seen a newer SET cannot undo that SET's value (store.h, "Two
 * registers"). An expiry time already past expires the key at once (Redis
 * deletes it).
 *
 * SCAN walks the store by hash bucket with a reverse-binary cursor
 * (store_scan_keys), which gives Redis's guarantee: a key present for the
 * whole iteration is returned at least once, also while the table grows or
 * shrinks and while deletes shift other keys; a key may come twice. COUNT
 * bounds the work of a call (at most 10 x COUNT buckets, as Redis, or 1024
 * when that is more: the smallest table; a call stops early once it has
 * COUNT keys, so the floor only costs on nearly empty tables); MATCH
 * and TYPE filter what was found, so a call may return fewer keys than
 * COUNT, or none, before the iteration ends.
 */
#include <stdlib.h>
#include <string.h>

#include "exec.h"
#include "glob.h"
#include "num.h"
#include "resp_internal.h"
#include "rng.h"
#include "store.h"

#define X(c) ((c)->r->cfg.exec)
/* Buckets a SCAN call may visit: 10 x COUNT as Redis, but at least the
 * smallest table, so a nearly empty store is scanned in one call. */
#define SCAN_MIN_BUCKETS 1024
#define FOUND_KEEP 4096 /* result slots kept between calls */
#define KEY(c, i) (c)->argv[i].ptr, (c)->argv[i].len

/* ---- DEL, EXISTS, TYPE --------------------------------------------------- */

void rs_del(struct rs_call *c)
{
    long long n = 0;
    for (size_t i = 1; i < c->argc; i++) {
        struct exec_result er = exec_delete(X(c), KEY(c, i), 0, c->now_ms);
        rs_held(c, &er);
        if (er.status == EXEC_OK) n++;
        else if (er.status != EXEC_NOT_FOUND) return rs_write_error(c, er.status);
    }
    rs_int(c, n);
}

void rs_exists(struct rs_call *c)
{
    long long n = 0;
    for (size_t i = 1; i < c->argc; i++) n += exec_peek(X(c), KEY(c, i), c->now_ms) != NULL;
    rs_int(c, n);
}

void rs_type(struct rs_call *c)
{
    rs_simple(c, exec_peek(X(c), KEY(c, 1), c->now_ms) ? "string" : "none");
}

/* ---- expiry ---------------------------------------------------------------- */

enum { EXP_NX = 1, EXP_XX = 2, EXP_GT = 4, EXP_LT = 8 };

/* NX XX GT LT from argument 3 on; replies Redis's error and returns false. */
static bool expire_flags(struct rs_call *c, unsigned *out)
{
    unsigned f = 0;
    for (size_t j = 3; j < c->argc; j++) {
        if (rs_arg_is(c, j, "NX")) f |= EXP_NX;
        else if (rs_arg_is(c, j, "XX")) f |= EXP_XX;
        else if (rs_arg_is(c, j, "GT")) f |= EXP_GT;
        else if (rs_arg_is(c, j, "LT")) f |= EXP_LT;
        else {
            rs_errorf(c, "ERR Unsupported option %.*s",
                      (int)strnlen(c->argv[j].ptr, c->argv[j].len), c->argv[j].ptr);
            return false;
        }
    }
    if ((f & EXP_NX) && (f & (EXP_XX | EXP_GT | EXP_LT))) {
        rs_error(c, "ERR NX and XX, GT or LT options at the same time are not compatible");
        return false;
    }
    if ((f & EXP_GT) && (f & EXP_LT)) {
        rs_error(c, "ERR GT and LT options at the same time are not compatible");
        return false;
    }
    *out = f;
    return true;
}

/* Does the condition allow replacing expiry cur (-1: none) by when? */
static bool condition_holds(unsigned f, int64_t cur, int64_t when)
{
    if ((f & EXP_NX) && cur != -1) return false;
    if ((f & EXP_XX) && cur == -1) return false;
    if ((f & EXP_GT) && (cur == -1 || when <= cur)) return false; /* none = infinite */
    if ((f & EXP_LT) && cur != -1 && when >= cur) return false;
    return true;
}

/* EXPIRE / PEXPIRE / EXPIREAT / PEXPIREAT: when = base + argv[2] x unit. */
static void expire_generic(struct rs_call *c, int64_t base, bool seconds)
{
    unsigned f;
    int64_t when;
    if (!expire_flags(c, &f) || !rs_arg_i64(c, 2, &when)) return;
    bool ok = !(seconds && (when > INT64_MAX / 1000 || when < INT64_MIN / 1000));
    if (ok && seconds) when *= 1000;
    if (ok && when > INT64_MAX - base) ok = false;
    if (!ok) return rs_errorf(c, "ERR invalid expire time in '%s' command", c->cmd->name);
    when += base;
    const struct item *it = exec_peek(X(c), KEY(c, 1), c->now_ms);
    if (!it || !condition_holds(f, it->expire_ms ? it->expire_ms : -1, when)) return rs_int(c, 0);
    struct exec_result er = exec_touch(X(c), KEY(c, 1), when <= c->now_ms ? c->now_ms : when,
                                       c->now_ms);
    rs_held(c, &er);
    if (er.status != EXEC_OK && er.status != EXEC_NOT_FOUND) return rs_write_error(c, er.status);
    rs_int(c, er.status == EXEC_OK);
}

void rs_expire(struct rs_call *c) { expire_generic(c, c->now_ms, true); }
void rs_pexpire(struct rs_call *c) { expire_generic(c, c->now_ms, false); }
void rs_expireat(struct rs_call *c) { expire_generic(c, 0, true); }
void rs_pexpireat(struct rs_call *c) { expire_generic(c, 0, false); }

/* -2 missing, -1 no expiry, else the expiry: as the time left (rel) or the
 * unix time, in ms or (rounded as Redis does) s. */
static void ttl_generic(struct rs_call *c, bool rel, bool ms)
{
    const struct item *it = exec_peek(X(c), KEY(c, 1), c->now_ms);
    if (!it) return rs_int(c, -2);
    if (it->expire_ms == 0) return rs_int(c, -1);
    int64_t v = rel ? it->expire_ms - c->now_ms : it->expire_ms;
    if (!ms) v = rel ? (v + 500) / 1000 : v / 1000;
    rs_int(c, v);
}

void rs_ttl(struct rs_call *c) { ttl_generic(c, true, false); }
void rs_pttl(struct rs_call *c) { ttl_generic(c, true, true); }
void rs_expiretime(struct rs_call *c) { ttl_generic(c, false, false); }
void rs_pexpiretime(struct rs_call *c) { ttl_generic(c, false, true); }

void rs_persist(struct rs_call *c)
{
    const struct item *it = exec_peek(X(c), KEY(c, 1), c->now_ms);
    if (!it || it->expire_ms == 0) return rs_int(c, 0);
    struct exec_result er = exec_touch(X(c), KEY(c, 1), 0, c->now_ms);
    rs_held(c, &er);
    if (er.status != EXEC_OK) return rs_write_error(c, er.status);
    rs_int(c, 1);
}

/* ---- SCAN, KEYS, RANDOMKEY ---------------------------------------------- */

/* Collects what the walk reports into r->found. */
struct collect {
    struct resp_serve *r;
    bool nomem;
};

static void collect(void *arg, const struct item *it)
{
    struct collect *k = arg;
    if (!rs_found_push(k->r, it)) k->nomem = true;
}

/*
 * Redis's SCAN cursor rule (strtoul): no leading blank, an optional sign
 * ("-1" wraps, as in Redis), digits up to a NUL or the end, "" is 0; no
 * overflow.
 */
static bool parse_cursor(const struct resp_arg *a, uint64_t *out)
{
    size_t n = strnlen(a->ptr, a->len), i = 0;
    bool neg = false;
    if (n == 0) {
        *out = 0;
        return true;
    }
    if (a->ptr[0] == '+' || a->ptr[0] == '-') neg = a->ptr[i++] == '-';
    uint64_t v;
    if (i == n || !num_parse_u64(a->ptr + i, n - i, &v)) return false;
    *out = neg ? (uint64_t)0 - v : v;
    return true;
}

/* Keep the found keys that match the pattern (NULL: all) and type
 * (NULL: all; only "string" exists). Returns how many remain. */
static size_t filter_found(struct resp_serve *r, const struct resp_arg *pat,
                           const struct resp_arg *type)
{
    bool none = type && !(type->len == 6 && strncasecmp(type->ptr, "string", 6) == 0);
    if (pat && glob_matches_all(pat->ptr, pat->len)) pat = NULL;
    size_t kept = 0;
    for (size_t i = 0; i < r->found_len && !none; i++) {
        const struct item *it = r->found[i];
        if (!pat || glob_match(pat->ptr, pat->len, item_key(it), it->key_len, false))
            r->found[kept++] = it;
    }
    r->found_len = kept;
    return kept;
}

static void reply_found(struct rs_call *c)
{
    struct resp_serve *r = c->r;
    rs_array(c, r->found_len);
    for (size_t i = 0; i < r->found_len; i++)
        rs_bulk(c, item_key(r->found[i]), r->found[i]->key_len);
    r->found_len = 0;
    if (r->found_cap > FOUND_KEEP) { /* a big KEYS must not pin its array */
        free(r->found);
        r->found = NULL;
        r->found_cap = 0;
    }
}

void rs_scan(struct rs_call *c)
{
    uint64_t cursor;
    if (!parse_cursor(&c->argv[1], &cursor)) return rs_error(c, "ERR invalid cursor");
    const struct resp_arg *pat = NULL, *type = NULL;
    int64_t count = 10;
    for (size_t j = 2; j < c->argc; j += 2) {
        if (j + 1 >= c->argc) return rs_error(c, "ERR syntax error");
        if (rs_arg_is(c, j, "COUNT")) {
            if (!rs_arg_i64(c, j + 1, &count)) return;
            if (count < 1) return rs_error(c, "ERR syntax error");
        } else if (rs_arg_is(c, j, "MATCH")) {
            pat = &c->argv[j + 1];
        } else if (rs_arg_is(c, j, "TYPE")) {
            type = &c->argv[j + 1];
        } else {
            return rs_error(c, "ERR syntax error");
        }
    }
    struct collect k = {c->r, false};
    size_t want = (size_t)count, buckets = want > SIZE_MAX / 10 ? SIZE_MAX : 10 * want;
    if (buckets < SCAN_MIN_BUCKETS) buckets = SCAN_MIN_BUCKETS;
    c->r->found_len = 0;
    store_scan_keys(exec_store_of(X(c)), &cursor, want, buckets, c->now_ms, collect, &k);
    if (k.nomem) {
        c->r->found_len = 0;
        return rs_write_error(c, EXEC_NOMEM);
    }
    filter_found(c->r, pat, type);
    char num[NUM_MAX_DIGITS];
    rs_array(c, 2);
    rs_bulk(c, num, num_format_u64(num, cursor));
    reply_found(c);
}

void rs_keys(struct rs_call *c)
{
    struct collect k = {c->r, false};
    uint64_t cursor = 0;
    c->r->found_len = 0;
    store_scan_keys(exec_store_of(X(c)), &cursor, SIZE_MAX, SIZE_MAX, c->now_ms, collect, &k);
    if (k.nomem) {
        c->r->found_len = 0;
        return rs_write_error(c, EXEC_NOMEM);
    }
    filter_found(c->r, &c->argv[1], NULL);
    reply_found(c);
}

/* From a random bucket on (wrapping once): the first live key found. */
void rs_randomkey(struct rs_call *c)
{
    struct resp_serve *r = c->r;
    const struct store *st = exec_store_of(X(c));
    if (store_live_items(st, c->now_ms) == 0) return rs_null(c);
    struct collect k = {r, false};
    uint64_t x = rng_next(&r->rng);
    uint64_t cursor = x;
    r->found_len = 0;
    for (int pass = 0; pass < 2 && r->found_len == 0; pass++) {
        store_scan_keys(st, &cursor, 1, SIZE_MAX, c->now_ms, collect, &k);
        cursor = 0;
    }
    if (r->found_len == 0) return rs_null(c);
    const struct item *it = r->found[x % r->found_len];
    r->found_len = 0;
    rs_bulk(c, item_key(it), it->key_len);
}
