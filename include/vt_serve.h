/*
 * vt_serve.h - Vitamin's own protocol (SPEC section 2) on the command core:
 * the request path parse (proto.c) -> execute (exec.c) -> compose.
 *
 * Owns: line framing of its connections (a too-long line is answered
 * "Error: Line too long" and discarded up to its '\n'), the meaning of each
 * Vitamin command, and the Vitamin-only counters. Its serve_proto is what
 * net.c drives (serve.h).
 */
#ifndef VITAMIN_VT_SERVE_H
#define VITAMIN_VT_SERVE_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct exec;
struct auth;
struct reply_queue;
struct serve_proto;

struct vt_serve_config {
    struct exec *exec;
    const struct auth *auth;     /* the client password (may be disabled) */
    struct proto_limits limits;
    size_t max_line;             /* longest request line, in bytes */
    /* Writes the body of stats() (every STAT line; END is added here). */
    void (*stats_fn)(void *arg, struct reply_queue *q, int64_t now_ms);
    void *stats_arg;
};

struct vt_stats {
    uint64_t cmd_del, cmd_ttl, cmd_expire, cmd_ping;
    uint64_t protocol_errors; /* lines answered with a protocol error */
    uint64_t lines_too_long;
    uint64_t auth_failures;   /* auth() with a wrong password */
    uint64_t auth_required;   /* commands refused before auth() */
};

struct vt_serve;

struct vt_serve *vt_serve_create(const struct vt_serve_config *cfg);
void vt_serve_destroy(struct vt_serve *v);
const struct vt_stats *vt_serve_stats(const struct vt_serve *v);
/* The serve_proto that net.c drives for this protocol. */
void vt_serve_proto(struct vt_serve *v, struct serve_proto *out);

#endif
