/*
 * mc_serve_meta.c - memcached's meta commands mg ms md ma on the command
 * core (mn is one line in mc_serve.c). The parser (mc_meta.c) has checked
 * every flag; here each flag becomes an exec option, and the reply line is
 * mc_meta_reply()'s, with the item's state after the command.
 *
 * Quiet mode (q) hides the "nothing to report" code of each command (mg:
 * EN; ms, md: HD; ma: its success, HD or VA); errors and every other code
 * are always sent.
 *
 * Recache marks (mg W X Z, md I, ms I, mg N R): the item's stale and
 * won-token bits (exec.h, "Recache marks") are this node's, so in a pool
 * one client per node may win the right to recache a key; what the marks
 * protect (the value, its cas, its expiry) replicates as usual.
 *
 * E (a client-chosen cas) is accepted and ignored: the cas unique is the
 * value's HLC stamp, which orders writes across the pool; a chosen one
 * could make a write lose to an older one, or win over every later one.
 */
#include "mc_serve_internal.h"

#include "reply.h"
#include "serve.h"
#include "store.h"

static bool quiet(const struct mc_call *c, enum mc_meta_code code)
{
    return c->req->noreply && mc_meta_quiet_skips(c->req->cmd, code);
}

/* The reply line (the caller sends any data block after it). */
static void meta_line(struct mc_call *c, enum mc_meta_code code, const struct mc_meta_item *mi)
{
    char *p = reply_reserve(c->q, MC_REPLY_LINE_MAX);
    if (!p) {
        c->res->close = true;
        return;
    }
    reply_commit(c->q, mc_meta_reply(p, c->req, code, mi));
}

/* The line of a code without an item, unless quiet mode hides it. */
static void meta_code(struct mc_call *c, enum mc_meta_code code)
{
    if (!quiet(c, code)) meta_line(c, code, NULL);
}

/* Seconds left (rounded up), -1 if it never expires. */
static int64_t ttl_left(const struct item *it, int64_t now_ms)
{
    if (it->expire_ms == 0) return -1;
    int64_t left = it->expire_ms - now_ms;
    return left <= 0 ? 0 : (left + 999) / 1000;
}

static struct mc_meta_item item_info(const struct item *it, int64_t now_ms)
{
    return (struct mc_meta_item){
        .size = it->value_len, .cas = it->version, .flags = item_client_flags(it),
        .ttl = ttl_left(it, now_ms),
    };
}

/* mg N on a miss: an empty item with TTL N (replicated like any write). */
static struct item *vivify(struct mc_call *c)
{
    const struct mc_request *r = c->req;
    struct exec_store st = {
        .mode = EXEC_ADD, .key = r->key, .key_len = r->key_len, .value = "",
        .expire_ms = mcs_expiry(r->vivify_ttl, c->now_ms),
    };
    struct exec_result er = exec_set(c->m->cfg.exec, &st, c->now_ms);
    mcs_held(c, &er);
    return er.status == EXEC_OK ? er.item : NULL;
}

/* mg R: the item expires within R seconds. */
static bool recache_due(const struct mc_call *c, const struct item *it)
{
    return mc_has(c->req, 'R') && it->expire_ms != 0 &&
           ttl_left(it, c->now_ms) < c->req->recache_ttl;
}

/* mg <key> <flags>*: b c f h k l O q s t u v  E N R T */
void mcs_meta_get(struct mc_call *c)
{
    const struct mc_request *r = c->req;
    struct exec *x = c->m->cfg.exec;
    uint32_t now_s = (uint32_t)(c->now_ms / 1000);
    struct exec_seen seen = {false, now_s};
    struct item *it = exec_read(x, r->key, r->key_len, !mc_has(r, 'u'), &seen, c->now_ms);
    bool won = false;
    if (!it && mc_has(r, 'N') && (it = vivify(c)) != NULL) won = exec_take_token(x, it);
    if (!it) {
        meta_code(c, MC_META_EN);
        return;
    }
    bool stale = it->flags & ITEM_F_STALE;
    if (!won && (stale || recache_due(c, it))) won = exec_take_token(x, it);
    struct mc_meta_item mi = item_info(it, c->now_ms); /* t: before T, as memcached */
    store_item_ref(it); /* the reply's item, even if T expires it */
    if (mc_has(r, 'T')) {
        struct exec_result er = exec_touch(x, r->key, r->key_len,
                                           mcs_expiry(r->exptime, c->now_ms), c->now_ms);
        mcs_held(c, &er);
    }
    mi.idle = now_s > seen.atime ? now_s - seen.atime : 0;
    mi.fetched = seen.fetched;
    mi.stale = stale;
    mi.win = won;
    mi.win_sent = (it->flags & ITEM_F_WON) && !won;
    if (mc_has(r, 'v')) {
        meta_line(c, MC_META_VA, &mi);
        mcs_value_data(c, it);
    } else if (!quiet(c, MC_META_HD)) {
        meta_line(c, MC_META_HD, &mi);
    }
    store_item_unref(exec_store_of(x), it);
}

/* ms <key> <datalen> <flags>*: b c C E F I k O q s T M(E A P R S) */
void mcs_meta_set(struct mc_call *c)
{
    const struct mc_request *r = c->req;
    bool concat = r->op == MC_OP_APPEND || r->op == MC_OP_PREPEND;
    struct exec_store st = {
        .mode = mcs_store_mode(r->op), .key = r->key, .key_len = r->key_len,
        .value = r->data, .value_len = r->data_len, .client_flags = r->client_flags,
        .expire_ms = mcs_expiry(r->exptime, c->now_ms), .cas = r->cas,
        .check_cas = concat && r->has_cas, .invalidate = mc_has(r, 'I'),
    };
    struct exec_result er = exec_set(c->m->cfg.exec, &st, c->now_ms);
    mcs_held(c, &er);
    enum mc_meta_code code;
    switch (er.status) {
    case EXEC_OK: code = MC_META_HD; break;
    case EXEC_NOT_STORED: code = MC_META_NS; break;
    case EXEC_EXISTS: code = MC_META_EX; break;
    case EXEC_NOT_FOUND: code = MC_META_NF; break;
    default: /* as memcached, a value that could not be stored is dropped */
        if (!concat) mcs_unlink(c);
        mcs_write_error(c, er.status, true);
        return;
    }
    if (quiet(c, code)) return;
    struct mc_meta_item mi;
    if (er.item) mi = item_info(er.item, c->now_ms);
    meta_line(c, code, er.item ? &mi : NULL);
}

/* md <key> <flags>*: b C E I k O q T x */
void mcs_meta_delete(struct mc_call *c)
{
    const struct mc_request *r = c->req;
    struct exec *x = c->m->cfg.exec;
    uint64_t cas = r->has_cas ? r->cas : 0;
    bool stale = mc_has(r, 'I'), empty = mc_has(r, 'x');
    struct exec_result er;
    if (stale || empty) {
        int64_t expire_ms = stale && mc_has(r, 'T') ? mcs_expiry(r->exptime, c->now_ms)
                                                   : EXEC_KEEP_TTL;
        er = exec_invalidate(x, r->key, r->key_len, cas, expire_ms, stale, empty, c->now_ms);
    } else {
        er = exec_delete(x, r->key, r->key_len, cas, c->now_ms);
    }
    mcs_held(c, &er);
    switch (er.status) {
    case EXEC_OK: meta_code(c, MC_META_HD); break;
    case EXEC_NOT_FOUND: meta_code(c, MC_META_NF); break;
    case EXEC_EXISTS: meta_code(c, MC_META_EX); break;
    default: mcs_write_error(c, er.status, false); break;
    }
}

/* ma <key> <flags>*: b C E N J D T M(I + D -) q O t c v k */
void mcs_meta_arith(struct mc_call *c)
{
    const struct mc_request *r = c->req;
    struct exec_arith a = {
        .key = r->key, .key_len = r->key_len, .decr = r->op == MC_OP_DECR, .delta = r->delta,
        .check_cas = r->has_cas, .cas = r->cas,
        .expire_ms = mc_has(r, 'T') ? mcs_expiry(r->exptime, c->now_ms) : EXEC_KEEP_TTL,
        .create = mc_has(r, 'N'), .initial = r->initial,
        .create_expire_ms = mcs_expiry(r->vivify_ttl, c->now_ms),
    };
    uint64_t value = 0;
    struct exec_result er = exec_arith_u64(c->m->cfg.exec, &a, c->now_ms, &value);
    mcs_held(c, &er);
    if (er.status != EXEC_OK) {
        switch (er.status) {
        case EXEC_NOT_FOUND: meta_code(c, MC_META_NF); break;
        case EXEC_EXISTS: meta_code(c, MC_META_EX); break;
        case EXEC_NOT_NUMBER: mcs_word(c, MC_W_NON_NUMERIC); break;
        default: mcs_write_error(c, er.status, false); break;
        }
        return;
    }
    char number[24];
    size_t n = mc_number_line(number, value); /* digits and "\r\n" */
    struct mc_meta_item mi = {.size = n - 2, .ttl = -1};
    if (er.item) {
        mi.cas = er.item->version;
        mi.ttl = ttl_left(er.item, c->now_ms);
    }
    enum mc_meta_code code = mc_has(r, 'v') ? MC_META_VA : MC_META_HD;
    if (quiet(c, code)) return;
    meta_line(c, code, &mi);
    if (code == MC_META_VA) mcs_out(c, number, n);
}
