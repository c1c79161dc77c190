/*
 * vt_serve.c - Vitamin's protocol on the command core (see vt_serve.h).
 *
 * Framing: one request per '\n'-terminated line. vt_handle() finds the next
 * '\n' (remembering how far a partial line was already searched, so a line
 * dribbled in byte by byte costs O(n), not O(n^2)); a line longer than
 * max_line is answered as soon as the limit is crossed and the rest of it is
 * dropped as it arrives (discarding until the next '\n').
 *
 * TTLs become absolute expiry times here (now + ttl s), the only form the
 * core knows.
 */
#include "vt_serve.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "exec.h"
#include "reply.h"
#include "serve.h"
#include "store.h"

struct vt_serve {
    struct vt_serve_config cfg;
    struct vt_stats stats;
};

struct vt_session {
    bool authenticated; /* auth() succeeded */
    bool discarding;    /* dropping the rest of a too-long line */
    size_t scan;        /* bytes of the partial line known to have no '\n' */
};

static const char ERR_NOT_FOUND[] = "Error: Record not found\n";
static const char ERR_MEMORY[] = "Error: Memory overusage\n";
static const char ERR_OUTBOX[] = "Error: Replication unavailable (outbox full)\n";

#define REPLY_LIT(q, s) reply_bytes((q), (s), sizeof(s) - 1)

/* Command names by enum proto_cmd, for per-command latency (serve.h). */
static const char *const cmd_names[] = {
    [PROTO_CMD_NONE] = NULL,         [PROTO_CMD_SET] = "set",     [PROTO_CMD_GET] = "get",
    [PROTO_CMD_DEL] = "del",         [PROTO_CMD_TTL] = "ttl",     [PROTO_CMD_EXPIRE] = "expire",
    [PROTO_CMD_PING] = "ping",       [PROTO_CMD_STATS] = "stats", [PROTO_CMD_QUIT] = "quit",
    [PROTO_CMD_AUTH] = "auth",
};

/* The reply line of a failed write. */
static void write_error(struct reply_queue *q, enum exec_status st)
{
    switch (st) {
    case EXEC_REFUSED: REPLY_LIT(q, ERR_OUTBOX); break;
    case EXEC_NOT_FOUND: REPLY_LIT(q, ERR_NOT_FOUND); break;
    default: REPLY_LIT(q, ERR_MEMORY); break;
    }
}

static int64_t expiry_of(uint32_t ttl, int64_t now_ms)
{
    return ttl ? now_ms + (int64_t)ttl * 1000 : 0;
}

static void held(struct serve_outcome *res, const struct exec_result *er)
{
    if (er->confirm_seq > res->confirm_seq) res->confirm_seq = er->confirm_seq;
}

static void do_set(struct vt_serve *v, const struct proto_request *r, struct reply_queue *q,
                   int64_t now_ms, struct serve_outcome *res)
{
    struct exec_store req = {
        .mode = EXEC_SET, .key = r->key, .key_len = r->key_len,
        .value = r->value, .value_len = r->value_len,
        .expire_ms = r->has_ttl ? expiry_of(r->ttl, now_ms) : 0,
    };
    struct exec_result er = exec_set(v->cfg.exec, &req, now_ms);
    held(res, &er);
    if (er.status != EXEC_OK) return write_error(q, er.status);
    size_t enc = proto_value_encoded_len(r->value, r->value_len);
    char *dst = reply_reserve(q, enc + 1);
    if (!dst) return;
    if (enc == r->value_len) memcpy(dst, r->value, enc); /* no second scan */
    else proto_value_encode(dst, r->value, r->value_len);
    dst[enc] = '\n';
    reply_commit(q, enc + 1);
}

static void do_get(struct vt_serve *v, const struct proto_request *r, struct reply_queue *q,
                   int64_t now_ms)
{
    struct item *it = exec_get(v->cfg.exec, r->key, r->key_len, now_ms);
    if (!it) REPLY_LIT(q, ERR_NOT_FOUND);
    else reply_value(q, it);
}

static void do_del(struct vt_serve *v, const struct proto_request *r, struct reply_queue *q,
                   int64_t now_ms, struct serve_outcome *res)
{
    v->stats.cmd_del++;
    struct exec_result er = exec_delete(v->cfg.exec, r->key, r->key_len, 0, now_ms);
    held(res, &er);
    if (er.status != EXEC_OK) return write_error(q, er.status);
    REPLY_LIT(q, "OK\n");
}

static void do_ttl(struct vt_serve *v, const struct proto_request *r, struct reply_queue *q,
                   int64_t now_ms)
{
    v->stats.cmd_ttl++;
    const struct item *it = exec_peek(v->cfg.exec, r->key, r->key_len, now_ms);
    if (!it) return (void)REPLY_LIT(q, ERR_NOT_FOUND);
    if (it->expire_ms == 0) return (void)REPLY_LIT(q, "-1\n");
    int64_t left_ms = it->expire_ms - now_ms;
    reply_printf(q, "%lld\n", (long long)((left_ms + 999) / 1000));
}

static void do_expire(struct vt_serve *v, const struct proto_request *r, struct reply_queue *q,
                      int64_t now_ms, struct serve_outcome *res)
{
    v->stats.cmd_expire++;
    struct exec_result er = exec_touch(v->cfg.exec, r->key, r->key_len,
                                       expiry_of(r->ttl, now_ms), now_ms);
    held(res, &er);
    if (er.status != EXEC_OK) return write_error(q, er.status);
    REPLY_LIT(q, "OK\n");
}

static void do_auth(struct vt_serve *v, struct vt_session *s, const struct proto_request *r,
                    struct reply_queue *q)
{
    if (!v->cfg.auth->enabled) return (void)reply_str(q, "Error: Authentication is not enabled\n");
    s->authenticated = auth_check(v->cfg.auth, r->key, r->key_len);
    if (!s->authenticated) {
        v->stats.auth_failures++;
        return (void)reply_str(q, "Error: Invalid password\n");
    }
    REPLY_LIT(q, "OK\n");
}

/* One request line: parse -> execute -> compose. */
static void serve_line(struct vt_serve *v, struct vt_session *s, char *line, size_t len,
                       struct reply_queue *q, int64_t now_ms, struct serve_outcome *res)
{
    /* parse */
    struct proto_request r;
    enum proto_status st = proto_parse_line(line, len, &v->cfg.limits, &r);
    if (st != PROTO_OK) {
        v->stats.protocol_errors++;
        char *dst = reply_reserve(q, 160);
        if (dst) reply_commit(q, proto_error_line(dst, 160, st, r.detail));
        return;
    }
    res->cmd = (uint16_t)r.cmd;
    /* execute and compose */
    if (v->cfg.auth->enabled && !s->authenticated && r.cmd != PROTO_CMD_AUTH &&
        r.cmd != PROTO_CMD_PING && r.cmd != PROTO_CMD_QUIT && r.cmd != PROTO_CMD_NONE) {
        v->stats.auth_required++;
        reply_str(q, "Error: Authentication required\n");
        return;
    }
    switch (r.cmd) {
    case PROTO_CMD_NONE: break;
    case PROTO_CMD_SET: do_set(v, &r, q, now_ms, res); break;
    case PROTO_CMD_GET: do_get(v, &r, q, now_ms); break;
    case PROTO_CMD_DEL: do_del(v, &r, q, now_ms, res); break;
    case PROTO_CMD_TTL: do_ttl(v, &r, q, now_ms); break;
    case PROTO_CMD_EXPIRE: do_expire(v, &r, q, now_ms, res); break;
    case PROTO_CMD_PING:
        v->stats.cmd_ping++;
        REPLY_LIT(q, "pong\n");
        break;
    case PROTO_CMD_STATS:
        if (v->cfg.stats_fn) v->cfg.stats_fn(v->cfg.stats_arg, q, now_ms);
        REPLY_LIT(q, "END\n");
        break;
    case PROTO_CMD_AUTH: do_auth(v, s, &r, q); break;
    case PROTO_CMD_QUIT: res->close = true; break;
    }
}

static void line_too_long(struct vt_serve *v, struct reply_queue *q)
{
    v->stats.lines_too_long++;
    REPLY_LIT(q, "Error: Line too long\n");
}

static size_t vt_handle(void *ctx, void *session, char *in, size_t len, struct reply_queue *q,
                        int64_t now_ms, struct serve_outcome *res)
{
    struct vt_serve *v = ctx;
    struct vt_session *s = session;
    char *nl = s->scan < len ? memchr(in + s->scan, '\n', len - s->scan) : NULL;
    if (!nl) {
        s->scan = len;
        if (s->discarding) {
            s->scan = 0;
            return len;
        }
        if (len > v->cfg.max_line) {
            line_too_long(v, q);
            s->discarding = true;
            s->scan = 0;
            return len;
        }
        return 0;
    }
    size_t line_len = (size_t)(nl - in);
    s->scan = 0;
    if (s->discarding) {
        s->discarding = false;
    } else if (line_len > v->cfg.max_line) {
        line_too_long(v, q);
    } else {
        serve_line(v, s, in, line_len, q, now_ms, res);
    }
    return line_len + 1;
}

struct vt_serve *vt_serve_create(const struct vt_serve_config *cfg)
{
    struct vt_serve *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    v->cfg = *cfg;
    return v;
}

void vt_serve_destroy(struct vt_serve *v) { free(v); }

const struct vt_stats *vt_serve_stats(const struct vt_serve *v) { return &v->stats; }

void vt_serve_proto(struct vt_serve *v, struct serve_proto *out)
{
    *out = (struct serve_proto){
        .name = "vitamin",
        .session_size = sizeof(struct vt_session),
        .handle = vt_handle,
        .max_input = v->cfg.max_line + 2,
        .busy_reply = "Error: Too many connections\n",
        .ctx = v,
        .cmd_names = cmd_names,
        .ncmds = sizeof cmd_names / sizeof cmd_names[0],
    };
}
