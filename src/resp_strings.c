/*
 * resp_strings.c - Redis's string commands on the command core: GET SET
 * (NX XX GET EX PX EXAT PXAT KEEPTTL) SETNX SETEX PSETEX GETSET GETDEL
 * GETEX MGET MSET MSETNX INCR DECR INCRBY DECRBY INCRBYFLOAT APPEND STRLEN
 * GETRANGE SETRANGE.
 *
 * Each handler parses its arguments with Redis's rules and wording, then
 * makes exec.c calls; read-modify-write commands (GETSET, GETDEL, GETEX,
 * INCRBYFLOAT, APPEND, SETRANGE) read the item and write the result as a
 * plain write, which replicates with a new version (last writer wins across
 * nodes, SPEC 7.3). An item replied after a write of the same key is
 * referenced first, so the write cannot free it. TTLs become absolute unix
 * milliseconds here; an expiry already in the past makes the write leave
 * the key absent, as Redis's does.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exec.h"
#include "resp_internal.h"
#include "resp_reply.h"
#include "store.h"

#define X(c) ((c)->r->cfg.exec)
#define KEY(c, i) (c)->argv[i].ptr, (c)->argv[i].len
#define STORE(c) exec_store_of(X(c))

/* ---- SET / GETEX options ----------------------------------------------- */

enum {
    OPT_NX = 1u << 0,
    OPT_XX = 1u << 1,
    OPT_GET = 1u << 2,
    OPT_KEEPTTL = 1u << 3,
    OPT_PERSIST = 1u << 4,
    OPT_EX = 1u << 5,
    OPT_PX = 1u << 6,
    OPT_EXAT = 1u << 7,
    OPT_PXAT = 1u << 8,
};
#define OPT_EXPIRE (OPT_EX | OPT_PX | OPT_EXAT | OPT_PXAT)

struct set_opts {
    unsigned flags;
    size_t expire_arg; /* argument holding the EX/PX/EXAT/PXAT number */
};

/* The expiry word at j (OPT_EX...), or 0. */
static unsigned expire_word(const struct rs_call *c, size_t j)
{
    if (rs_arg_is(c, j, "EX")) return OPT_EX;
    if (rs_arg_is(c, j, "PX")) return OPT_PX;
    if (rs_arg_is(c, j, "EXAT")) return OPT_EXAT;
    if (rs_arg_is(c, j, "PXAT")) return OPT_PXAT;
    return 0;
}

/*
 * Redis's grammar of SET's (is_set) or GETEX's options from argument from
 * on: a word may repeat, but not meet its incompatible ones (NX/XX; one kind
 * of expiry, KEEPTTL, PERSIST). Replies "syntax error" and returns false.
 */
static bool parse_opts(struct rs_call *c, size_t from, bool is_set, struct set_opts *o)
{
    for (size_t j = from; j < c->argc; j++) {
        unsigned f = o->flags, e = expire_word(c, j);
        if (is_set && rs_arg_is(c, j, "NX") && !(f & OPT_XX)) {
            o->flags |= OPT_NX;
        } else if (is_set && rs_arg_is(c, j, "XX") && !(f & OPT_NX)) {
            o->flags |= OPT_XX;
        } else if (is_set && rs_arg_is(c, j, "GET")) {
            o->flags |= OPT_GET;
        } else if (is_set && rs_arg_is(c, j, "KEEPTTL") && !(f & (OPT_EXPIRE | OPT_PERSIST))) {
            o->flags |= OPT_KEEPTTL;
        } else if (!is_set && rs_arg_is(c, j, "PERSIST") && !(f & (OPT_EXPIRE | OPT_KEEPTTL))) {
            o->flags |= OPT_PERSIST;
        } else if (e && !(f & ((OPT_EXPIRE & ~e) | OPT_KEEPTTL | OPT_PERSIST)) && j + 1 < c->argc) {
            o->flags |= e;
            o->expire_arg = ++j;
        } else {
            rs_error(c, "ERR syntax error");
            return false;
        }
    }
    return true;
}

/* The absolute expiry (unix ms) that o asks for; replies and returns false
 * if the number is not an integer or not a valid time. */
static bool expire_of(struct rs_call *c, const struct set_opts *o, int64_t *out)
{
    int64_t v;
    if (!rs_arg_i64(c, o->expire_arg, &v)) return false;
    bool secs = o->flags & (OPT_EX | OPT_EXAT), rel = o->flags & (OPT_EX | OPT_PX);
    bool ok = v > 0 && !(secs && v > INT64_MAX / 1000);
    if (ok && secs) v *= 1000;
    if (ok && rel) {
        ok = v <= INT64_MAX - c->now_ms;
        v += ok ? c->now_ms : 0;
    }
    if (!ok) {
        rs_errorf(c, "ERR invalid expire time in '%s' command", c->cmd->name);
        return false;
    }
    *out = v;
    return true;
}

/* ---- GET and SET family ----------------------------------------------- */

void rs_get(struct rs_call *c)
{
    struct item *it = exec_get(X(c), KEY(c, 1), c->now_ms);
    if (it) rs_item(c, it);
    else rs_null(c);
}

/* The reply of SET ... GET, GETSET, GETDEL: old (referenced) or nil; then
 * old is released. */
static void reply_old(struct rs_call *c, struct item *old)
{
    if (!old) return rs_null(c);
    rs_item(c, old);
    store_item_unref(STORE(c), old);
}

static struct item *get_ref(struct rs_call *c)
{
    struct item *it = exec_get(X(c), KEY(c, 1), c->now_ms);
    if (it) store_item_ref(it);
    return it;
}

/* Store argv[vi] under argv[ki] by mode. */
static struct exec_result store_value(struct rs_call *c, size_t ki, size_t vi,
                                      enum exec_mode mode, int64_t expire_ms)
{
    struct exec_store req = {.mode = mode, .key = c->argv[ki].ptr, .key_len = c->argv[ki].len,
                             .value = c->argv[vi].ptr, .value_len = c->argv[vi].len,
                             .expire_ms = expire_ms};
    struct exec_result er = exec_set(X(c), &req, c->now_ms);
    rs_held(c, &er);
    return er;
}

void rs_set_cmd(struct rs_call *c)
{
    struct set_opts o = {0, 0};
    int64_t expire_ms = 0;
    if (!parse_opts(c, 3, true, &o)) return;
    if ((o.flags & OPT_EXPIRE) && !expire_of(c, &o, &expire_ms)) return;
    if (rs_too_big(c, c->argv[2].len)) return;
    struct item *old = (o.flags & OPT_GET) ? get_ref(c) : NULL;
    if ((o.flags & OPT_KEEPTTL) && exec_peek(X(c), KEY(c, 1), c->now_ms))
        expire_ms = EXEC_KEEP_TTL; /* a new key gets no expiry, stamped */
    enum exec_mode mode = (o.flags & OPT_NX) ? EXEC_ADD : (o.flags & OPT_XX) ? EXEC_REPLACE : EXEC_SET;
    struct exec_result er = store_value(c, 1, 2, mode, expire_ms);
    if (er.status != EXEC_OK && er.status != EXEC_NOT_STORED) {
        rs_write_error(c, er.status);
        if (old) store_item_unref(STORE(c), old);
        return;
    }
    if (o.flags & OPT_GET) return reply_old(c, old);
    if (er.status == EXEC_NOT_STORED) return rs_null(c);
    rs_ok(c);
}

void rs_setnx(struct rs_call *c)
{
    if (rs_too_big(c, c->argv[2].len)) return;
    struct exec_result er = store_value(c, 1, 2, EXEC_ADD, 0);
    if (er.status == EXEC_OK || er.status == EXEC_NOT_STORED) return rs_int(c, er.status == EXEC_OK);
    rs_write_error(c, er.status);
}

/* SETEX / PSETEX key ttl value. */
static void setex_generic(struct rs_call *c, int64_t unit_ms)
{
    int64_t ttl;
    if (!rs_arg_i64(c, 2, &ttl)) return;
    if (ttl <= 0 || ttl > INT64_MAX / unit_ms || ttl * unit_ms > INT64_MAX - c->now_ms)
        return rs_errorf(c, "ERR invalid expire time in '%s' command", c->cmd->name);
    if (rs_too_big(c, c->argv[3].len)) return;
    struct exec_result er = store_value(c, 1, 3, EXEC_SET, c->now_ms + ttl * unit_ms);
    if (er.status != EXEC_OK) return rs_write_error(c, er.status);
    rs_ok(c);
}

void rs_setex(struct rs_call *c) { setex_generic(c, 1000); }
void rs_psetex(struct rs_call *c) { setex_generic(c, 1); }

void rs_getset(struct rs_call *c)
{
    if (rs_too_big(c, c->argv[2].len)) return;
    struct item *old = get_ref(c);
    struct exec_result er = store_value(c, 1, 2, EXEC_SET, 0);
    if (er.status != EXEC_OK) {
        rs_write_error(c, er.status);
        if (old) store_item_unref(STORE(c), old);
        return;
    }
    reply_old(c, old);
}

void rs_getdel(struct rs_call *c)
{
    struct item *old = get_ref(c);
    if (!old) return rs_null(c);
    struct exec_result er = exec_delete(X(c), KEY(c, 1), 0, c->now_ms);
    rs_held(c, &er);
    if (er.status != EXEC_OK && er.status != EXEC_NOT_FOUND) {
        rs_write_error(c, er.status);
        store_item_unref(STORE(c), old);
        return;
    }
    reply_old(c, old);
}

void rs_getex(struct rs_call *c)
{
    struct set_opts o = {0, 0};
    int64_t expire_ms = 0;
    if (!parse_opts(c, 2, false, &o)) return;
    struct item *it = get_ref(c);
    if (!it) return rs_null(c); /* Redis checks the time only for a key that exists */
    if ((o.flags & OPT_EXPIRE) && !expire_of(c, &o, &expire_ms)) {
        store_item_unref(STORE(c), it);
        return;
    }
    bool touch = (o.flags & OPT_EXPIRE) || ((o.flags & OPT_PERSIST) && it->expire_ms != 0);
    if (touch) {
        /* a time already past expires the key now (Redis deletes it) */
        if (expire_ms != 0 && expire_ms <= c->now_ms) expire_ms = c->now_ms;
        struct exec_result er = exec_touch(X(c), KEY(c, 1), expire_ms, c->now_ms);
        rs_held(c, &er);
        if (er.status != EXEC_OK && er.status != EXEC_NOT_FOUND) {
            rs_write_error(c, er.status);
            store_item_unref(STORE(c), it);
            return;
        }
    }
    reply_old(c, it);
}

/* ---- multi-key ---------------------------------------------------------- */

void rs_mget(struct rs_call *c)
{
    rs_array(c, c->argc - 1);
    for (size_t i = 1; i < c->argc; i++) {
        struct item *it = exec_get(X(c), KEY(c, i), c->now_ms);
        if (it) rs_item(c, it);
        else rs_null(c);
    }
}

/* MSET and MSETNX take pairs; every value is checked before any write. */
static bool pairs_ok(struct rs_call *c)
{
    if (c->argc % 2 == 0) {
        rs_errorf(c, "ERR wrong number of arguments for '%s' command", c->cmd->name);
        return false;
    }
    for (size_t i = 2; i < c->argc; i += 2)
        if (rs_too_big(c, c->argv[i].len)) return false;
    return true;
}

/* Store every pair; replies the error of the first that fails. */
static bool set_pairs(struct rs_call *c)
{
    for (size_t i = 1; i < c->argc; i += 2) {
        struct exec_result er = store_value(c, i, i + 1, EXEC_SET, 0);
        if (er.status != EXEC_OK) {
            rs_write_error(c, er.status);
            return false;
        }
    }
    return true;
}

void rs_mset(struct rs_call *c)
{
    if (pairs_ok(c) && set_pairs(c)) rs_ok(c);
}

void rs_msetnx(struct rs_call *c)
{
    if (!pairs_ok(c)) return;
    for (size_t i = 1; i < c->argc; i += 2)
        if (exec_peek(X(c), KEY(c, i), c->now_ms)) return rs_int(c, 0);
    if (set_pairs(c)) rs_int(c, 1);
}

/* ---- counters ----------------------------------------------------------- */

static void incr_by(struct rs_call *c, int64_t delta)
{
    int64_t v;
    struct exec_result er = exec_incr_i64(X(c), KEY(c, 1), delta, c->now_ms, &v);
    rs_held(c, &er);
    switch (er.status) {
    case EXEC_OK: return rs_int(c, v);
    case EXEC_NOT_NUMBER: return rs_error(c, "ERR value is not an integer or out of range");
    case EXEC_OVERFLOW: return rs_error(c, "ERR increment or decrement would overflow");
    default: return rs_write_error(c, er.status);
    }
}

void rs_incr(struct rs_call *c) { incr_by(c, 1); }
void rs_decr(struct rs_call *c) { incr_by(c, -1); }

void rs_incrby(struct rs_call *c)
{
    int64_t d;
    if (rs_arg_i64(c, 2, &d)) incr_by(c, d);
}

void rs_decrby(struct rs_call *c)
{
    int64_t d;
    if (!rs_arg_i64(c, 2, &d)) return;
    if (d == INT64_MIN) return rs_error(c, "ERR decrement would overflow");
    incr_by(c, -d);
}

/* A write of a computed value for key 1 that keeps cur's flags and
 * expiry (a new key gets no expiry). */
static struct exec_result store_computed(struct rs_call *c, const struct item *cur,
                                         const char *v, size_t n)
{
    struct exec_store req = {.mode = EXEC_SET, .key = c->argv[1].ptr, .key_len = c->argv[1].len,
                             .value = v, .value_len = n,
                             .client_flags = cur ? item_client_flags(cur) : 0,
                             .expire_ms = cur ? EXEC_KEEP_TTL : 0};
    struct exec_result er = exec_set(X(c), &req, c->now_ms);
    rs_held(c, &er);
    return er;
}

void rs_incrbyfloat(struct rs_call *c)
{
    struct item *cur = exec_peek(X(c), KEY(c, 1), c->now_ms);
    long double v = 0, incr;
    if ((cur && !resp_str_to_ld(item_value(cur), cur->value_len, &v)) ||
        !resp_str_to_ld(c->argv[2].ptr, c->argv[2].len, &incr))
        return rs_error(c, "ERR value is not a valid float");
    v += incr;
    if (isnan(v) || isinf(v)) return rs_error(c, "ERR increment would produce NaN or Infinity");
    char buf[RESP_LD_STR_MAX];
    size_t n = resp_ld_to_str(buf, sizeof buf, v);
    if (rs_too_big(c, n)) return;
    struct exec_result er = store_computed(c, cur, buf, n);
    if (er.status != EXEC_OK) return rs_write_error(c, er.status);
    rs_bulk(c, buf, n);
}

/* ---- byte strings -------------------------------------------------------- */

void rs_append(struct rs_call *c)
{
    const struct item *cur = exec_peek(X(c), KEY(c, 1), c->now_ms);
    size_t total = (cur ? cur->value_len : 0) + c->argv[2].len;
    if (rs_too_big(c, total)) return;
    struct exec_store req = {.mode = EXEC_APPEND, .key = c->argv[1].ptr, .key_len = c->argv[1].len,
                             .value = c->argv[2].ptr, .value_len = c->argv[2].len,
                             .create = true};
    struct exec_result er = exec_set(X(c), &req, c->now_ms);
    rs_held(c, &er);
    if (er.status != EXEC_OK) return rs_write_error(c, er.status);
    rs_int(c, (long long)total);
}

void rs_strlen(struct rs_call *c)
{
    const struct item *it = exec_peek(X(c), KEY(c, 1), c->now_ms);
    rs_int(c, it ? (long long)it->value_len : 0);
}

void rs_getrange(struct rs_call *c)
{
    int64_t start, end;
    if (!rs_arg_i64(c, 2, &start) || !rs_arg_i64(c, 3, &end)) return;
    struct item *it = exec_get(X(c), KEY(c, 1), c->now_ms);
    int64_t len = it ? it->value_len : 0;
    if (!it || (start < 0 && end < 0 && start > end)) return rs_bulk(c, "", 0);
    if (start < 0) start += len;
    if (end < 0) end += len;
    if (start < 0) start = 0;
    if (end < 0) end = 0;
    if (end >= len) end = len - 1;
    if (start > end || len == 0) return rs_bulk(c, "", 0);
    rs_bulk(c, item_value(it) + start, (size_t)(end - start + 1));
}

void rs_setrange(struct rs_call *c)
{
    int64_t off;
    if (!rs_arg_i64(c, 2, &off)) return;
    if (off < 0) return rs_error(c, "ERR offset is out of range");
    const struct item *cur = exec_peek(X(c), KEY(c, 1), c->now_ms);
    size_t olen = cur ? cur->value_len : 0, vlen = c->argv[3].len;
    if (vlen == 0) return rs_int(c, (long long)olen); /* nothing written */
    if (rs_too_big(c, (uint64_t)off + vlen)) return;
    size_t end = (size_t)off + vlen, nlen = end > olen ? end : olen;
    char *buf = rs_scratch(c->r, nlen);
    if (!buf) return rs_write_error(c, EXEC_NOMEM);
    if (olen) memcpy(buf, item_value(cur), olen);
    if ((size_t)off > olen) memset(buf + olen, 0, (size_t)off - olen);
    memcpy(buf + off, c->argv[3].ptr, vlen);
    struct exec_result er = store_computed(c, cur, buf, nlen);
    if (er.status != EXEC_OK) return rs_write_error(c, er.status);
    rs_int(c, (long long)nlen);
}
