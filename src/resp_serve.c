/*
 * resp_serve.c - Redis's protocol on the command core (see resp_serve.h):
 * framing, the dispatcher, the reply helpers, the session lifecycle.
 *
 * Request path, one handle() call per request:
 *
 *   parse     resp_parse() over the connection's input (the parser resumes
 *             where it stopped, so a big request costs O(bytes) in total);
 *             argv lives in the session, on the heap only past 8 arguments
 *   dispatch  look the name up (and a container's subcommand), then in
 *             Redis's order: unknown command, arity, -NOAUTH, key length
 *   execute   the command's handler: exec.c calls for data, then
 *   compose   one reply, RESP2 or RESP3 as the session speaks
 *
 * A protocol error gets Redis's "-ERR Protocol error: ..." line and the
 * connection is closed after the replies before it, as Redis does. A single
 * request longer than max_input (64 MiB + 4 x --max_value_size) closes the
 * connection without a reply (Redis's client-query-buffer-limit).
 */
#include "resp_serve.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "num.h"
#include "reply.h"
#include "resp_internal.h"
#include "resp_reply.h"
#include "store.h"

#define RS_QUERY_MAX (64u << 20) /* input bound besides 4 x max_value_size */
#define ARGV_KEEP 1024           /* a heap argv bigger than this is freed after use */

/* ---- replies ----------------------------------------------------------- */

/* Write a fixed-size header (at most RESP_HDR_MAX bytes). */
#define PUT_HDR(c, call)                                           \
    do {                                                           \
        char *w_ = reply_reserve((c)->q, RESP_HDR_MAX);            \
        if (w_) reply_commit((c)->q, call);                        \
    } while (0)

void rs_raw(struct rs_call *c, const char *p, size_t n) { reply_bytes(c->q, p, n); }
void rs_ok(struct rs_call *c) { rs_raw(c, "+OK\r\n", 5); }

void rs_simple(struct rs_call *c, const char *s)
{
    size_t n = strlen(s);
    char *w = reply_reserve(c->q, resp_simple_len(n));
    if (w) reply_commit(c->q, resp_put_simple(w, s, n));
}

void rs_error(struct rs_call *c, const char *msg)
{
    c->r->stats.errors++;
    size_t n = strlen(msg);
    char *w = reply_reserve(c->q, resp_error_len(n));
    if (w) reply_commit(c->q, resp_put_error(w, msg, n));
}

void rs_errorf(struct rs_call *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    rs_error(c, msg);
}

void rs_int(struct rs_call *c, long long v) { PUT_HDR(c, resp_put_int(w_, v)); }
void rs_array(struct rs_call *c, size_t n) { PUT_HDR(c, resp_put_array(w_, n)); }
void rs_map(struct rs_call *c, size_t n) { PUT_HDR(c, resp_put_map(w_, c->s->ver, n)); }
void rs_set(struct rs_call *c, size_t n) { PUT_HDR(c, resp_put_set(w_, c->s->ver, n)); }
void rs_null(struct rs_call *c) { PUT_HDR(c, resp_put_null(w_, c->s->ver)); }

void rs_bulk(struct rs_call *c, const char *p, size_t n)
{
    char *w = reply_reserve(c->q, resp_bulk_len(n));
    if (w) reply_commit(c->q, resp_put_bulk(w, p, n));
}

void rs_bulk_str(struct rs_call *c, const char *s) { rs_bulk(c, s, strlen(s)); }

void rs_item(struct rs_call *c, struct item *it)
{
    if (it->value_len < REPLY_REF_MIN) return rs_bulk(c, item_value(it), it->value_len);
    PUT_HDR(c, resp_put_bulk_hdr(w_, it->value_len));
    reply_raw_value(c->q, it); /* referenced until sent */
    rs_raw(c, RESP_CRLF, 2);
}

void rs_verbatim(struct rs_call *c, const char *p, size_t n)
{
    PUT_HDR(c, resp_put_verbatim_hdr(w_, c->s->ver, "txt", n));
    rs_raw(c, p, n);
    rs_raw(c, RESP_CRLF, 2);
}

void rs_write_error(struct rs_call *c, enum exec_status st)
{
    if (st == EXEC_REFUSED) return rs_error(c, "NOREPLICAS Not enough good replicas to write.");
    rs_error(c, "OOM command not allowed when used memory > 'maxmemory'.");
}

void rs_held(struct rs_call *c, const struct exec_result *er)
{
    if (er->confirm_seq > c->res->confirm_seq) c->res->confirm_seq = er->confirm_seq;
}

/* ---- arguments --------------------------------------------------------- */

bool rs_arg_is(const struct rs_call *c, size_t i, const char *w)
{
    size_t n = strlen(w);
    return i < c->argc && c->argv[i].len == n && strncasecmp(c->argv[i].ptr, w, n) == 0;
}

bool rs_arg_i64(struct rs_call *c, size_t i, int64_t *out)
{
    if (num_parse_i64(c->argv[i].ptr, c->argv[i].len, out)) return true;
    rs_error(c, "ERR value is not an integer or out of range");
    return false;
}

bool rs_too_big(struct rs_call *c, uint64_t n)
{
    if (n <= c->r->cfg.max_value_size) return false;
    rs_error(c, "ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    return true;
}

char *rs_scratch(struct resp_serve *r, size_t n)
{
    if (n <= r->scratch_cap) return r->scratch;
    char *p = realloc(r->scratch, n);
    if (!p) return NULL;
    r->scratch = p;
    r->scratch_cap = n;
    return p;
}

bool rs_found_push(struct resp_serve *r, const struct item *it)
{
    if (r->found_len == r->found_cap) {
        size_t cap = r->found_cap ? 2 * r->found_cap : 64;
        const struct item **p = realloc(r->found, cap * sizeof *p);
        if (!p) return false;
        r->found = p;
        r->found_cap = cap;
    }
    r->found[r->found_len++] = it;
    return true;
}

/* ---- dispatch ---------------------------------------------------------- */

/* "'a' 'b' " as Redis quotes arguments in an error: each cut at a NUL (it
 * prints C strings) and the whole at about 128 bytes. */
static size_t quote_args(const struct rs_call *c, size_t from, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = from; i < c->argc && n < 128; i++) {
        size_t len = strnlen(c->argv[i].ptr, c->argv[i].len);
        if (len > 128 - n) len = 128 - n;
        n += (size_t)snprintf(out + n, cap - n, "'%.*s' ", (int)len, c->argv[i].ptr);
    }
    return n;
}

static void unknown_command(struct rs_call *c)
{
    char args[160];
    quote_args(c, 1, args, sizeof args);
    c->r->stats.unknown_commands++;
    rs_errorf(c, "ERR unknown command '%.*s', with args beginning with: %s",
              (int)strnlen(c->argv[0].ptr, c->argv[0].len < 128 ? c->argv[0].len : 128),
              c->argv[0].ptr, args);
}

static void unknown_subcommand(struct rs_call *c)
{
    char name[RS_NAME_MAX + 1];
    size_t n = strnlen(c->argv[0].ptr, c->argv[0].len < RS_NAME_MAX ? c->argv[0].len : RS_NAME_MAX);
    for (size_t i = 0; i < n; i++) {
        char ch = c->argv[0].ptr[i];
        name[i] = ch >= 'a' && ch <= 'z' ? (char)(ch - 32) : ch;
    }
    name[n] = '\0';
    c->r->stats.unknown_commands++;
    rs_errorf(c, "ERR unknown subcommand '%.*s'. Try %s HELP.",
              (int)strnlen(c->argv[1].ptr, c->argv[1].len < 128 ? c->argv[1].len : 128),
              c->argv[1].ptr, name);
}

static bool arity_ok(int arity, size_t argc)
{
    return arity >= 0 ? argc == (size_t)arity : argc >= (size_t)-arity;
}

/* Every key argument within RS_KEY_MAX bytes? */
static bool keys_ok(const struct rs_call *c)
{
    const struct rs_cmd *cmd = c->cmd;
    if (cmd->first_key <= 0) return true;
    size_t last = cmd->last_key < 0 ? c->argc - (size_t)-cmd->last_key : (size_t)cmd->last_key;
    for (size_t i = (size_t)cmd->first_key; i <= last && i < c->argc; i += (size_t)cmd->key_step)
        if (c->argv[i].len > RS_KEY_MAX) return false;
    return true;
}

static void dispatch(struct rs_call *c)
{
    struct resp_serve *r = c->r;
    const struct rs_cmd *cmd = rs_lookup(r, c->argv[0].ptr, c->argv[0].len);
    if (!cmd) return unknown_command(c);
    c->res->cmd = (uint16_t)(cmd - rs_commands + 1); /* a subcommand counts as its container */
    if (cmd->subs && c->argc >= 2) {
        cmd = rs_lookup_sub(cmd, c->argv[1].ptr, c->argv[1].len);
        if (!cmd) return unknown_subcommand(c);
    }
    c->cmd = cmd;
    if (!arity_ok(cmd->arity, c->argc))
        return rs_errorf(c, "ERR wrong number of arguments for '%s' command", cmd->name);
    if (!c->s->authed && !(cmd->flags & RS_F_NOAUTH)) {
        r->stats.auth_required++;
        return rs_error(c, "NOAUTH Authentication required.");
    }
    if (!keys_ok(c)) return rs_error(c, "ERR key exceeds maximum allowed size (1024 bytes)");
    r->stats.commands++;
    c->s->last_cmd = cmd->name;
    c->s->last_ms = c->now_ms;
    cmd->fn(c);
}

/* ---- framing ----------------------------------------------------------- */

static void session_begin(struct resp_serve *r, struct rs_session *s, int64_t now_ms)
{
    s->started = true;
    s->id = ++r->next_id;
    s->created_ms = s->last_ms = now_ms;
    s->ver = RESP_V2;
    s->authed = !r->cfg.auth->enabled;
    resp_parser_init(&s->p, s->argv_inline, RS_ARGV_INLINE);
    s->next = r->sessions;
    if (r->sessions) r->sessions->prev = s;
    r->sessions = s;
    r->stats.connections++;
}

static void rs_session_start(void *ctx, void *session, const struct serve_peer *peer,
                             int64_t now_ms)
{
    struct rs_session *s = session;
    s->peer = *peer;
    session_begin(ctx, s, now_ms);
}

static void free_argv(struct rs_session *s)
{
    if (s->p.argv != s->argv_inline) free(s->p.argv);
    s->p.argv = s->argv_inline;
    s->p.argv_cap = RS_ARGV_INLINE;
}

static void rs_session_end(void *ctx, void *session)
{
    struct resp_serve *r = ctx;
    struct rs_session *s = session;
    if (!s->started) return;
    if (s->prev) s->prev->next = s->next;
    else r->sessions = s->next;
    if (s->next) s->next->prev = s->prev;
    free_argv(s);
    free(s->name);
    free(s->lib_name);
    free(s->lib_ver);
}

/* RESP_ARGV_FULL: room for the arguments the parser asks for. */
static bool grow_argv(struct rs_session *s)
{
    size_t want = resp_argv_want(&s->p);
    struct resp_arg *a = s->p.argv == s->argv_inline ? NULL : s->p.argv;
    a = realloc(a, want * sizeof *a);
    if (!a) return false;
    if (s->p.argv == s->argv_inline) memcpy(a, s->argv_inline, sizeof s->argv_inline);
    s->p.argv = a;
    s->p.argv_cap = want;
    return true;
}

static size_t protocol_error(struct resp_serve *r, struct rs_session *s, enum resp_status st,
                             size_t len, struct reply_queue *q, struct serve_outcome *res)
{
    r->stats.protocol_errors++;
    r->stats.errors++;
    char *w = reply_reserve(q, RESP_ERROR_LINE_MAX);
    if (w) reply_commit(q, resp_error_line(w, RESP_ERROR_LINE_MAX, st, &s->p));
    res->close = true;
    return len;
}

static size_t rs_handle(void *ctx, void *session, char *in, size_t len, struct reply_queue *q,
                        int64_t now_ms, struct serve_outcome *res)
{
    struct resp_serve *r = ctx;
    struct rs_session *s = session;
    if (!s->started) session_begin(r, s, now_ms);
    /* parse */
    s->p.noauth = !s->authed;
    enum resp_status st;
    while ((st = resp_parse(&s->p, in, len, &r->limits)) == RESP_ARGV_FULL) {
        if (!grow_argv(s)) {
            res->close = true;
            return len;
        }
    }
    if (st == RESP_NEED_MORE) {
        if (len < r->max_input) return 0;
        r->stats.oversized++; /* Redis: client-query-buffer-limit, closed silently */
        res->close = true;
        return len;
    }
    if (st != RESP_OK) return protocol_error(r, s, st, len, q, res);
    /* execute and compose */
    size_t used = s->p.consumed;
    if (s->p.argc > 0) {
        struct rs_call c = {.r = r, .s = s, .argv = s->p.argv, .argc = s->p.argc,
                            .q = q, .now_ms = now_ms, .res = res};
        dispatch(&c);
    }
    if (s->p.argv_cap > ARGV_KEEP) free_argv(s);
    return used;
}

/* ---- lifetime ---------------------------------------------------------- */

struct resp_serve *resp_serve_create(const struct resp_serve_config *cfg)
{
    struct resp_serve *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->cfg = *cfg;
    /* a key is a bulk too: never refuse one the key limit allows */
    r->limits.max_bulk_len = cfg->max_value_size > RS_KEY_MAX ? cfg->max_value_size : RS_KEY_MAX;
    r->limits.max_args = RESP_MAX_ARGS_DEFAULT;
    r->max_input = RS_QUERY_MAX + 4 * r->limits.max_bulk_len;
    r->rng = (uint64_t)(uintptr_t)r * UINT64_C(0x9e3779b97f4a7c15) | 1;
    rs_index_build(r);
    for (size_t i = 0; i < rs_ncommands && i + 1 < RS_INDEX_SLOTS; i++)
        r->cmd_names[i + 1] = rs_commands[i].name;
    return r;
}

void resp_serve_destroy(struct resp_serve *r)
{
    if (!r) return;
    free(r->scratch);
    free(r->found);
    free(r);
}

const struct resp_stats *resp_serve_stats(const struct resp_serve *r) { return &r->stats; }

void resp_serve_proto(struct resp_serve *r, struct serve_proto *out)
{
    *out = (struct serve_proto){
        .name = "redis",
        .session_size = sizeof(struct rs_session),
        .handle = rs_handle,
        .session_start = rs_session_start,
        .session_end = rs_session_end,
        .max_input = r->max_input,
        .busy_reply = "-ERR max number of clients reached\r\n",
        .ctx = r,
        .cmd_names = r->cmd_names,
        .ncmds = (uint16_t)(rs_ncommands + 1 < RS_INDEX_SLOTS ? rs_ncommands + 1 : RS_INDEX_SLOTS),
    };
}
