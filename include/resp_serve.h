/*
 * resp_serve.h - Redis's protocol (RESP2 and RESP3, SPEC section 7.2) on the
 * command core: the request path parse (resp.c) -> execute (exec.c) ->
 * compose (resp_reply.c), for --redis_port.
 *
 * Owns: the per-connection RESP session (parser state, argv, protocol
 * version, authentication, client name and id), the command table with
 * Redis's arities, reply types and error wording, the Redis-only counters,
 * and Redis's views of the server (INFO, CONFIG GET, CLIENT LIST,
 * COMMAND). Every write goes through exec.c, so it replicates like any
 * other; nothing here touches the store except to read it.
 *
 * Files: resp_serve.c (framing, dispatch, replies), resp_keys.c (generic
 * key commands, SCAN, KEYS), resp_strings.c (string commands),
 * resp_server.c (connection and server commands), resp_command.c (the
 * command table and COMMAND); resp_internal.h is what they share.
 */
#ifndef VITAMIN_RESP_SERVE_H
#define VITAMIN_RESP_SERVE_H

#include <stddef.h>
#include <stdint.h>

struct exec;
struct auth;
struct serve_proto;
struct stats_sources;

struct resp_serve_config {
    struct exec *exec;
    const struct auth *auth;               /* the client password (may be off) */
    const struct stats_sources *sources;   /* what INFO reads (every module) */
    size_t max_value_size;                 /* largest value (proto-max-bulk-len) */
    uint16_t port;                         /* --redis_port, for INFO */
};

struct resp_stats {
    uint64_t connections;      /* RESP connections accepted */
    uint64_t commands;         /* commands executed (total_commands_processed) */
    uint64_t errors;           /* error replies (total_error_replies) */
    uint64_t unknown_commands; /* of those: unknown command or subcommand */
    uint64_t protocol_errors;  /* connections closed after a protocol error */
    uint64_t oversized;        /* connections closed: one request over the input limit */
    uint64_t auth_failures;    /* AUTH or HELLO AUTH with a wrong password */
    uint64_t auth_required;    /* commands refused with -NOAUTH */
};

struct resp_serve;

/* Returns NULL on ENOMEM. */
struct resp_serve *resp_serve_create(const struct resp_serve_config *cfg);
void resp_serve_destroy(struct resp_serve *r);
const struct resp_stats *resp_serve_stats(const struct resp_serve *r);
/* The serve_proto that net.c drives for this protocol. */
void resp_serve_proto(struct resp_serve *r, struct serve_proto *out);

#endif
