/*
 * mc_serve.c - memcached's text protocol on the command core (see
 * mc_serve.h): framing, authentication and the classic commands. Meta
 * commands are in mc_serve_meta.c, `stats` in mc_serve_stats.c.
 *
 * Framing is the parser's (mc_proto.h): mc_handle() hands it the unread
 * input and serves the one request it finds. Two things are remembered
 * between calls, in the session: how many bytes the parser said it needs
 * (so a 1 MiB data block arriving in 64 KiB reads is parsed once, not
 * sixteen times), and how many bytes of a refused data block are still to
 * be dropped as they arrive.
 *
 * Times: exptimes are turned into absolute unix ms here (mcs_expiry), the
 * only form the core knows. The cas unique sent to clients is the item's
 * value stamp (item->version), the same on every node of a pool.
 *
 * Replies: small values are copied next to their VALUE line, large ones
 * (REPLY_REF_MIN and up) are sent from the item itself (reply.h), so a
 * 1 MiB get copies nothing.
 */
#include "mc_serve.h"
#include "mc_serve_internal.h"

#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "options.h"
#include "reply.h"
#include "serve.h"
#include "store.h"

#define VERSION_STRING MC_SERVE_PROTOCOL_LEVEL "-vitamin-" VITAMIN_VERSION

static const char ERR_OUTBOX[] = "SERVER_ERROR replication unavailable (outbox full)\r\n";

/* ---- helpers shared with the meta and stats parts ---------------------- */

int64_t mcs_expiry(int64_t exptime, int64_t now_ms)
{
    if (exptime == 0) return 0;
    if (exptime < 0) return now_ms;
    if (exptime <= MC_RELATIVE_MAX_S) return now_ms + exptime * 1000;
    int64_t at = (exptime < MC_ABSOLUTE_MAX_S ? exptime : MC_ABSOLUTE_MAX_S) * 1000;
    return at > now_ms ? at : now_ms; /* a time in the past: expired at once */
}

void mcs_out(struct mc_call *c, const void *p, size_t n)
{
    if (reply_bytes(c->q, p, n) != 0) c->res->close = true;
}

void mcs_word(struct mc_call *c, enum mc_word w)
{
    size_t n;
    const char *line = mc_word(w, &n);
    mcs_out(c, line, n);
}

void mcs_write_error(struct mc_call *c, enum exec_status st, bool storing)
{
    size_t n;
    const char *line;
    switch (st) {
    case EXEC_TOO_LARGE: /* the parser's line for a data block over the limit */
        line = mc_error_line(MC_ERR_TOO_LARGE, &n);
        mcs_out(c, line, n);
        break;
    case EXEC_REFUSED: mcs_out(c, ERR_OUTBOX, sizeof ERR_OUTBOX - 1); break;
    default: mcs_word(c, storing ? MC_W_OOM_STORE : MC_W_OOM); break;
    }
}

enum exec_mode mcs_store_mode(enum mc_op op)
{
    switch (op) {
    case MC_OP_ADD: return EXEC_ADD;
    case MC_OP_REPLACE: return EXEC_REPLACE;
    case MC_OP_APPEND: return EXEC_APPEND;
    case MC_OP_PREPEND: return EXEC_PREPEND;
    case MC_OP_CAS: return EXEC_CAS;
    default: return EXEC_SET;
    }
}

void mcs_held(struct mc_call *c, const struct exec_result *er)
{
    if (er->confirm_seq > c->res->confirm_seq) c->res->confirm_seq = er->confirm_seq;
}

void mcs_unlink(struct mc_call *c)
{
    struct exec_result er = exec_delete(c->m->cfg.exec, c->req->key, c->req->key_len, 0,
                                        c->now_ms);
    mcs_held(c, &er);
}

void mcs_value_data(struct mc_call *c, struct item *it)
{
    if (reply_raw_value(c->q, it) != 0 || reply_bytes(c->q, "\r\n", 2) != 0)
        c->res->close = true;
}

/* ---- classic commands -------------------------------------------------- */

/* A fixed line, unless classic noreply silences it. */
static void reply(struct mc_call *c, enum mc_word w)
{
    if (!c->req->noreply) mcs_word(c, w);
}

/* "VALUE <key> <flags> <bytes>[ <cas>]\r\n<data>\r\n", then "END\r\n" if
 * last (one reservation for a small value: the common single-key get). */
static void value_block(struct mc_call *c, struct item *it, bool with_cas, bool last)
{
    size_t vlen = it->value_len;
    size_t inline_len = vlen < REPLY_REF_MIN ? vlen + 2 : 0;
    char *p = reply_reserve(c->q, MC_REPLY_LINE_MAX + inline_len + 5);
    if (!p) {
        c->res->close = true;
        return;
    }
    size_t n = mc_value_header(p, item_key(it), it->key_len, item_client_flags(it), vlen,
                               it->version, with_cas);
    if (!inline_len) {
        reply_commit(c->q, n);
        mcs_value_data(c, it);
        if (last) mcs_word(c, MC_W_END);
        return;
    }
    memcpy(p + n, item_value(it), vlen);
    memcpy(p + n + vlen, "\r\nEND\r\n", last ? 7 : 2);
    reply_commit(c->q, n + inline_len + (last ? 5 : 0));
}

/* set add replace append prepend cas */
static void do_store(struct mc_call *c)
{
    const struct mc_request *r = c->req;
    struct exec_store st = {
        .mode = mcs_store_mode(r->op), .key = r->key, .key_len = r->key_len,
        .value = r->data, .value_len = r->data_len, .client_flags = r->client_flags,
        .expire_ms = mcs_expiry(r->exptime, c->now_ms), .cas = r->cas,
    };
    struct exec_result er = exec_set(c->m->cfg.exec, &st, c->now_ms);
    mcs_held(c, &er);
    switch (er.status) {
    case EXEC_OK: reply(c, MC_W_STORED); break;
    case EXEC_NOT_STORED: reply(c, MC_W_NOT_STORED); break;
    case EXEC_EXISTS: reply(c, MC_W_EXISTS); break;
    case EXEC_NOT_FOUND: reply(c, MC_W_NOT_FOUND); break;
    default: /* memcached drops the old value of a set it could not store */
        if (r->cmd == MC_CMD_SET) mcs_unlink(c);
        if (!r->noreply) mcs_write_error(c, er.status, true);
        break;
    }
}

/* gat/gats of one key: the value as it was read, then its new expiry (a
 * negative exptime still returns it once, as memcached does). Returns
 * whether there was a value. */
static bool get_and_touch(struct mc_call *c, const char *key, size_t key_len, int64_t expire_ms,
                          bool with_cas, bool last)
{
    struct exec *x = c->m->cfg.exec;
    struct item *it = exec_get(x, key, key_len, c->now_ms);
    if (!it) return false;
    store_item_ref(it); /* alive even if the touch expires it */
    struct exec_result er = exec_touch(x, key, key_len, expire_ms, c->now_ms);
    mcs_held(c, &er);
    value_block(c, it, with_cas, last);
    store_item_unref(exec_store_of(x), it);
    return true;
}

/* get gets gat gats <key>*: a VALUE block per hit, then END (written with
 * the last hit when that is the last key). */
static void do_get(struct mc_call *c)
{
    const struct mc_request *r = c->req;
    struct exec *x = c->m->cfg.exec;
    bool touch = r->cmd == MC_CMD_GAT || r->cmd == MC_CMD_GATS;
    bool with_cas = r->cmd == MC_CMD_GETS || r->cmd == MC_CMD_GATS;
    int64_t expire_ms = touch ? mcs_expiry(r->exptime, c->now_ms) : 0;
    size_t pos = 0, key_len = 0, next_len = 0;
    const char *key = NULL, *next = NULL;
    bool more = mc_args_next(r, &pos, &key, &key_len), ended = false;
    while (more) {
        more = mc_args_next(r, &pos, &next, &next_len);
        if (touch) {
            ended = get_and_touch(c, key, key_len, expire_ms, with_cas, !more) && !more;
        } else {
            struct item *it = exec_get(x, key, key_len, c->now_ms);
            if (it) value_block(c, it, with_cas, !more);
            ended = it && !more;
        }
        key = next;
        key_len = next_len;
    }
    if (!ended) mcs_word(c, MC_W_END);
}

static void do_delete(struct mc_call *c)
{
    const struct mc_request *r = c->req;
    struct exec_result er = exec_delete(c->m->cfg.exec, r->key, r->key_len, 0, c->now_ms);
    mcs_held(c, &er);
    if (er.status == EXEC_OK) reply(c, MC_W_DELETED);
    else if (er.status == EXEC_NOT_FOUND) reply(c, MC_W_NOT_FOUND);
    else if (!r->noreply) mcs_write_error(c, er.status, false);
}

/* incr decr */
static void do_arith(struct mc_call *c)
{
    const struct mc_request *r = c->req;
    uint64_t value = 0;
    struct exec_result er = exec_incr_u64(c->m->cfg.exec, r->key, r->key_len,
                                          r->cmd == MC_CMD_DECR, r->delta, c->now_ms, &value);
    mcs_held(c, &er);
    if (r->noreply) return;
    switch (er.status) {
    case EXEC_OK: {
        char line[24];
        mcs_out(c, line, mc_number_line(line, value));
        break;
    }
    case EXEC_NOT_FOUND: mcs_word(c, MC_W_NOT_FOUND); break;
    case EXEC_NOT_NUMBER: mcs_word(c, MC_W_NON_NUMERIC); break;
    default: mcs_write_error(c, er.status, false); break;
    }
}

static void do_touch(struct mc_call *c)
{
    const struct mc_request *r = c->req;
    struct exec_result er = exec_touch(c->m->cfg.exec, r->key, r->key_len,
                                       mcs_expiry(r->exptime, c->now_ms), c->now_ms);
    mcs_held(c, &er);
    if (er.status == EXEC_OK) reply(c, MC_W_TOUCHED);
    else if (er.status == EXEC_NOT_FOUND) reply(c, MC_W_NOT_FOUND);
    else if (!r->noreply) mcs_write_error(c, er.status, false);
}

/* flush_all [delay]: a delay is an exptime too (relative or absolute). */
static void do_flush(struct mc_call *c)
{
    const struct mc_request *r = c->req;
    int64_t delay_ms = r->exptime > 0 ? mcs_expiry(r->exptime, c->now_ms) - c->now_ms : 0;
    struct exec_result er = exec_flush(c->m->cfg.exec, delay_ms, c->now_ms);
    mcs_held(c, &er);
    if (er.status == EXEC_OK) reply(c, MC_W_OK);
    else if (!r->noreply) mcs_write_error(c, er.status, false);
}

static void do_version(struct mc_call *c)
{
    char line[64];
    mcs_out(c, line, mc_version_line(line, sizeof line, VERSION_STRING));
}

/* One parsed request: execute and compose. */
static void execute(struct mc_call *c)
{
    c->m->stats.cmds[c->req->cmd]++;
    c->res->cmd = (uint16_t)c->req->cmd;
    switch (c->req->cmd) {
    case MC_CMD_SET: case MC_CMD_ADD: case MC_CMD_REPLACE: case MC_CMD_APPEND:
    case MC_CMD_PREPEND: case MC_CMD_CAS: do_store(c); break;
    case MC_CMD_GET: case MC_CMD_GETS: case MC_CMD_GAT: case MC_CMD_GATS: do_get(c); break;
    case MC_CMD_DELETE: do_delete(c); break;
    case MC_CMD_INCR: case MC_CMD_DECR: do_arith(c); break;
    case MC_CMD_TOUCH: do_touch(c); break;
    case MC_CMD_FLUSH_ALL: do_flush(c); break;
    case MC_CMD_VERSION: do_version(c); break;
    case MC_CMD_VERBOSITY: reply(c, MC_W_OK); break; /* accepted, changes nothing */
    case MC_CMD_STATS: mcs_stats(c); break;
    case MC_CMD_QUIT: c->res->close = true; break;
    case MC_CMD_MN: mcs_word(c, MC_W_MN); break;
    case MC_CMD_MG: mcs_meta_get(c); break;
    case MC_CMD_MS: mcs_meta_set(c); break;
    case MC_CMD_MD: mcs_meta_delete(c); break;
    case MC_CMD_MA: mcs_meta_arith(c); break;
    case MC_CMD_NONE: break;
    }
}

/* A request the parser refused: its line, memcached's unlink, then drop
 * the rest of its data block as it arrives (or close). */
static void refused(struct mc_call *c, bool authenticating)
{
    const struct mc_request *r = c->req;
    struct mc_stats *st = &c->m->stats;
    if (!authenticating) {
        st->protocol_errors++;
    } else if (r->err == MC_ERR_UNAUTH) {
        st->unauthenticated++;
    } else if (r->err != MC_ERR_CLOSE) {
        st->auth_cmds++;
        st->auth_errors++;
    }
    if (r->err_line) mcs_out(c, r->err_line, r->err_len);
    if (r->unlink) mcs_unlink(c);
    if (r->close) c->res->close = true;
    c->s->swallow = r->swallow;
}

/* memcached -Y: a set whose data is "<user> <password>"; any user name,
 * the password is --password. */
static void authenticate(struct mc_call *c)
{
    struct mc_serve *m = c->m;
    size_t pos = 0, user_len, pass_len;
    const char *user, *pass;
    m->stats.auth_cmds++;
    if (!mc_args_next(c->req, &pos, &user, &user_len) ||
        !mc_args_next(c->req, &pos, &pass, &pass_len) ||
        !auth_check(m->cfg.auth, pass, pass_len)) {
        m->stats.auth_errors++;
        mcs_word(c, MC_W_AUTH_FAILED);
        return;
    }
    c->s->authenticated = true;
    mcs_word(c, MC_W_STORED);
}

static size_t mc_handle(void *ctx, void *session, char *in, size_t len, struct reply_queue *q,
                        int64_t now_ms, struct serve_outcome *res)
{
    struct mc_serve *m = ctx;
    struct mc_session *s = session;
    if (s->swallow) { /* a refused data block: drop it unparsed */
        size_t n = len < s->swallow ? len : s->swallow;
        s->swallow -= n;
        return n;
    }
    if (len < s->need) return 0;
    /* parse */
    struct mc_request req;
    size_t used;
    bool authenticating = m->cfg.auth->enabled && !s->authenticated;
    enum mc_status st = authenticating ? mc_parse_auth(in, len, &m->limits, &req, &used)
                                       : mc_parse(in, len, &m->limits, &req, &used);
    if (st == MC_NEED_MORE) {
        s->need = req.need;
        return 0;
    }
    s->need = 0;
    /* execute and compose */
    struct mc_call c = {m, s, &req, q, now_ms, res};
    if (st == MC_ERROR) refused(&c, authenticating);
    else if (authenticating) authenticate(&c);
    else execute(&c);
    return used;
}

static void mc_session_start(void *ctx, void *session, const struct serve_peer *peer,
                             int64_t now_ms)
{
    struct mc_serve *m = ctx;
    (void)session;
    (void)peer;
    (void)now_ms;
    m->stats.curr_connections++;
    m->stats.total_connections++;
}

static void mc_session_end(void *ctx, void *session)
{
    struct mc_serve *m = ctx;
    (void)session;
    m->stats.curr_connections--;
}

/* ---- lifetime ---------------------------------------------------------- */

struct mc_serve *mc_serve_create(const struct mc_serve_config *cfg)
{
    struct mc_serve *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->cfg = *cfg;
    m->limits = (struct mc_limits){.max_value_len = cfg->max_value_len,
                                   .max_get_line = MC_DEFAULT_MAX_GET_LINE};
    for (int i = 0; i < MC_SERVE_CMDS; i++) m->cmd_names[i] = mc_cmd_name((enum mc_cmd)i);
    return m;
}

void mc_serve_destroy(struct mc_serve *m) { free(m); }

const struct mc_stats *mc_serve_stats(const struct mc_serve *m) { return &m->stats; }

uint64_t mc_serve_commands(const struct mc_serve *m)
{
    uint64_t n = 0;
    for (size_t i = 0; i < MC_SERVE_CMDS; i++) n += m->stats.cmds[i];
    return n;
}

void mc_serve_proto(struct mc_serve *m, struct serve_proto *out)
{
    /* room for the longest request: a get line, or a line and its block */
    size_t block = MC_READ_MAX + m->limits.max_value_len + 2;
    *out = (struct serve_proto){
        .name = "memcache",
        .session_size = sizeof(struct mc_session),
        .handle = mc_handle,
        .session_start = mc_session_start,
        .session_end = mc_session_end,
        .max_input = block > m->limits.max_get_line ? block : m->limits.max_get_line,
        .busy_reply = "ERROR Too many open connections\r\n" /* memcached's */,
        .ctx = m,
        .cmd_names = m->cmd_names,
        .ncmds = MC_SERVE_CMDS,
    };
}
