/*
 * command.c - the request path: parse -> execute -> compose, one screen.
 *
 * Local writes take a fresh HLC version, so they always win LWW against what
 * the store holds; the store answers STORE_STALE only for replicated writes.
 * TTLs become absolute expiry times here (now_ms + ttl * 1000), the only
 * form the store and replication know.
 */
#include "command.h"

#include <string.h>
#include <xxhash.h>

#include "hlc.h"
#include "reply.h"
#include "store.h"

static const char ERR_NOT_FOUND[] = "Error: Record not found\n";
static const char ERR_MEMORY[] = "Error: Memory overusage\n";

static const char ERR_OUTBOX[] = "Error: Replication unavailable (outbox full)\n";

/* Confirm mode: a write that could not be confirmed is refused up front,
 * so every acknowledged write is one the broker will confirm. */
static bool write_gate(struct command_ctx *ctx, struct reply_queue *q)
{
    if (!ctx->write_allowed || ctx->write_allowed(ctx->write_hook_arg)) return true;
    ctx->stats.writes_refused_outbox++;
    reply_bytes(q, ERR_OUTBOX, sizeof ERR_OUTBOX - 1);
    return false;
}

static int64_t expiry_of(uint32_t ttl, int64_t now_ms)
{
    return ttl ? now_ms + (int64_t)ttl * 1000 : 0;
}

static void notify(struct command_ctx *ctx, enum command_write_op op,
                   const struct proto_request *r, const char *value,
                   size_t value_len, int64_t expire_ms, uint64_t version)
{
    if (!ctx->write_hook) return;
    struct command_write w = {op, r->key, r->key_len, value, value_len,
                              expire_ms, version, ctx->origin};
    ctx->write_hook(ctx->write_hook_arg, &w);
}

static void exec_set(struct command_ctx *ctx, const struct proto_request *r,
                     struct reply_queue *q, int64_t now_ms)
{
    ctx->stats.cmd_set++;
    if (!write_gate(ctx, q)) return;
    int64_t exp = r->has_ttl ? expiry_of(r->ttl, now_ms) : 0;
    uint64_t ver = hlc_tick(ctx->hlc, now_ms);
    enum store_status st = store_set(ctx->store, r->key, r->key_len, r->value,
                                     r->value_len, exp, ver, ctx->origin, now_ms);
    if (st == STORE_NOMEM || st == STORE_TOO_LARGE) {
        ctx->stats.set_refused++;
        reply_bytes(q, ERR_MEMORY, sizeof ERR_MEMORY - 1);
        return;
    }
    if (st == STORE_OK) notify(ctx, COMMAND_WRITE_SET, r, r->value, r->value_len, exp, ver);
    size_t enc = proto_value_encoded_len(r->value, r->value_len);
    char *dst = reply_reserve(q, enc + 1);
    if (!dst) return;
    if (enc == r->value_len) memcpy(dst, r->value, enc); /* no second scan */
    else proto_value_encode(dst, r->value, r->value_len);
    dst[enc] = '\n';
    reply_commit(q, enc + 1);
}

static void exec_get(struct command_ctx *ctx, const struct proto_request *r,
                     struct reply_queue *q, int64_t now_ms)
{
    ctx->stats.cmd_get++;
    struct item *it = store_get(ctx->store, r->key, r->key_len, now_ms);
    if (!it) {
        ctx->stats.get_misses++;
        reply_bytes(q, ERR_NOT_FOUND, sizeof ERR_NOT_FOUND - 1);
        return;
    }
    ctx->stats.get_hits++;
    reply_value(q, it);
}

static void exec_del(struct command_ctx *ctx, const struct proto_request *r,
                     struct reply_queue *q, int64_t now_ms)
{
    ctx->stats.cmd_del++;
    /* A delete of a key that is not live changes nothing: stamping a new
     * tombstone that is never published would leave this node holding a
     * delete its peers do not know, and the pool would never converge. */
    if (!store_get(ctx->store, r->key, r->key_len, now_ms)) {
        reply_bytes(q, ERR_NOT_FOUND, sizeof ERR_NOT_FOUND - 1);
        return;
    }
    if (!write_gate(ctx, q)) return;
    uint64_t ver = hlc_tick(ctx->hlc, now_ms);
    if (store_del(ctx->store, r->key, r->key_len, ver, ctx->origin, now_ms) != STORE_OK) {
        reply_bytes(q, ERR_NOT_FOUND, sizeof ERR_NOT_FOUND - 1);
        return;
    }
    notify(ctx, COMMAND_WRITE_DEL, r, NULL, 0, 0, ver);
    reply_bytes(q, "OK\n", 3);
}

static void exec_ttl(struct command_ctx *ctx, const struct proto_request *r,
                     struct reply_queue *q, int64_t now_ms)
{
    ctx->stats.cmd_ttl++;
    struct item *it = store_get(ctx->store, r->key, r->key_len, now_ms);
    if (!it) {
        reply_bytes(q, ERR_NOT_FOUND, sizeof ERR_NOT_FOUND - 1);
        return;
    }
    if (it->expire_ms == 0) {
        reply_bytes(q, "-1\n", 3);
        return;
    }
    int64_t left_ms = it->expire_ms - now_ms;
    reply_printf(q, "%lld\n", (long long)((left_ms + 999) / 1000));
}

static void exec_expire(struct command_ctx *ctx, const struct proto_request *r,
                        struct reply_queue *q, int64_t now_ms)
{
    ctx->stats.cmd_expire++;
    if (!write_gate(ctx, q)) return;
    int64_t exp = expiry_of(r->ttl, now_ms);
    uint64_t ver = hlc_tick(ctx->hlc, now_ms);
    enum store_status st = store_expire(ctx->store, r->key, r->key_len, exp, ver,
                                        ctx->origin, now_ms);
    if (st == STORE_NOMEM) { /* the TTL heap could not grow under the cap */
        ctx->stats.set_refused++;
        reply_bytes(q, ERR_MEMORY, sizeof ERR_MEMORY - 1);
        return;
    }
    if (st != STORE_OK) {
        reply_bytes(q, ERR_NOT_FOUND, sizeof ERR_NOT_FOUND - 1);
        return;
    }
    const struct item *it = store_peek(ctx->store, r->key, r->key_len);
    if (it && !(it->flags & ITEM_F_TOMBSTONE))
        notify(ctx, COMMAND_WRITE_EXPIRE, r, item_value(it), it->value_len, exp, ver);
    reply_bytes(q, "OK\n", 3);
}

/* Compare digests of both strings in constant time: the time taken says
 * nothing about how much of a guess was right. */
static bool password_matches(const struct command_ctx *ctx, const char *guess, size_t len)
{
    XXH128_hash_t a = XXH3_128bits(guess, len);
    XXH128_hash_t b = XXH3_128bits(ctx->password, ctx->password_len);
    uint64_t diff = (a.low64 ^ b.low64) | (a.high64 ^ b.high64) |
                    (uint64_t)(len ^ ctx->password_len);
    return diff == 0;
}

static void exec_auth(struct command_ctx *ctx, struct command_session *sess,
                      const struct proto_request *r, struct reply_queue *q)
{
    if (!ctx->password) {
        reply_str(q, "Error: Authentication is not enabled\n");
        return;
    }
    if (!password_matches(ctx, r->key, r->key_len)) {
        ctx->stats.auth_failures++;
        sess->authenticated = false;
        reply_str(q, "Error: Invalid password\n");
        return;
    }
    sess->authenticated = true;
    reply_bytes(q, "OK\n", 3);
}

enum command_outcome command_handle_line(struct command_ctx *ctx,
                                         struct command_session *sess, char *line,
                                         size_t len, struct reply_queue *q,
                                         int64_t now_ms)
{
    /* parse */
    struct proto_request r;
    enum proto_status st = proto_parse_line(line, len, &ctx->limits, &r);
    if (st != PROTO_OK) {
        ctx->stats.protocol_errors++;
        char *dst = reply_reserve(q, 160);
        if (dst) reply_commit(q, proto_error_line(dst, 160, st, r.detail));
        return COMMAND_CONTINUE;
    }
    /* execute and compose */
    if (ctx->password && !sess->authenticated && r.cmd != PROTO_CMD_AUTH &&
        r.cmd != PROTO_CMD_PING && r.cmd != PROTO_CMD_QUIT && r.cmd != PROTO_CMD_NONE) {
        ctx->stats.auth_required++;
        reply_str(q, "Error: Authentication required\n");
        return COMMAND_CONTINUE;
    }
    switch (r.cmd) {
    case PROTO_CMD_NONE: break;
    case PROTO_CMD_SET: exec_set(ctx, &r, q, now_ms); break;
    case PROTO_CMD_GET: exec_get(ctx, &r, q, now_ms); break;
    case PROTO_CMD_DEL: exec_del(ctx, &r, q, now_ms); break;
    case PROTO_CMD_TTL: exec_ttl(ctx, &r, q, now_ms); break;
    case PROTO_CMD_EXPIRE: exec_expire(ctx, &r, q, now_ms); break;
    case PROTO_CMD_PING:
        ctx->stats.cmd_ping++;
        reply_bytes(q, "pong\n", 5);
        break;
    case PROTO_CMD_STATS:
        if (ctx->stats_fn) ctx->stats_fn(ctx->stats_arg, q, now_ms);
        reply_bytes(q, "END\n", 4);
        break;
    case PROTO_CMD_AUTH: exec_auth(ctx, sess, &r, q); break;
    case PROTO_CMD_QUIT: return COMMAND_CLOSE;
    }
    return COMMAND_CONTINUE;
}
