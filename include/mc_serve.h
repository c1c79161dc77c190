/*
 * mc_serve.h - memcached's text protocol (classic and meta commands, SPEC
 * section 7.1) on the command core: the request path parse (mc_proto.c)
 * -> execute (exec.c) -> compose (mc_reply.c).
 *
 * Owns: the framing state of its connections (a refused data block being
 * swallowed, memcached -Y style authentication), the meaning of each
 * memcached command in terms of exec's operations, memcached's `stats`
 * reply and the memcached-only counters. Its serve_proto is what net.c
 * drives (serve.h). What differs from memcached and why: docs/protocol.md
 * and the top of mc_proto.h.
 */
#ifndef VITAMIN_MC_SERVE_H
#define VITAMIN_MC_SERVE_H

#include <stddef.h>
#include <stdint.h>

#include "mc_proto.h"

struct exec;
struct auth;
struct serve_proto;
struct stats_sources;

/* The version this protocol reports (VERSION, stats): the memcached
 * protocol level it speaks, then Vitamin's own version. */
#define MC_SERVE_PROTOCOL_LEVEL "1.6.18"

struct mc_serve_config {
    struct exec *exec;
    const struct auth *auth;             /* the client password (may be disabled) */
    size_t max_value_len;                /* --max_value_size */
    uint16_t port;                       /* its listener (stats settings) */
    const struct stats_sources *stats;   /* server-wide counters for `stats` */
};

#define MC_SERVE_CMDS (MC_CMD_MA + 1) /* enum mc_cmd values */

/* memcached-only counters (the shared ones live in exec, net and store). */
struct mc_stats {
    uint64_t curr_connections;    /* connections to the memcache port now */
    uint64_t total_connections;   /* ... since start */
    uint64_t cmds[MC_SERVE_CMDS];  /* requests served, by enum mc_cmd */
    uint64_t protocol_errors;     /* requests answered with an error line or closed */
    uint64_t auth_cmds;           /* authentication attempts (-Y style set) */
    uint64_t auth_errors;         /* ... refused (wrong password, bad format) */
    uint64_t unauthenticated;     /* requests refused before authentication */
};

struct mc_serve;

struct mc_serve *mc_serve_create(const struct mc_serve_config *cfg);
void mc_serve_destroy(struct mc_serve *m);
const struct mc_stats *mc_serve_stats(const struct mc_serve *m);
/* Requests served, all commands together. */
uint64_t mc_serve_commands(const struct mc_serve *m);
/* The serve_proto that net.c drives for this protocol. */
void mc_serve_proto(struct mc_serve *m, struct serve_proto *out);

#endif
