/*
 * mc_serve_internal.h - what the three parts of the memcached serve layer
 * share: mc_serve.c (framing, authentication, classic commands),
 * mc_serve_meta.c (mg ms md ma) and mc_serve_stats.c (`stats`). Only they
 * include it.
 *
 * One request is served with a struct mc_call on the stack: the parsed
 * request and everything its reply needs, so each command's function takes
 * one argument.
 */
#ifndef VITAMIN_MC_SERVE_INTERNAL_H
#define VITAMIN_MC_SERVE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "exec.h"
#include "mc_proto.h"
#include "mc_reply.h"
#include "mc_serve.h"

struct reply_queue;
struct serve_outcome;
struct item;

/* Relative exptimes go up to 30 days; larger ones are unix times. */
#define MC_RELATIVE_MAX_S 2592000
/* Absolute times are capped here (9999-12-31 23:59:59 UTC). */
#define MC_ABSOLUTE_MAX_S INT64_C(253402300799)

/* Counters as they were at the last `stats reset` (shown: now - these). */
struct mc_base {
    struct exec_stats exec;
    uint64_t evicted, expired_unfetched, evicted_unfetched;
    uint64_t total_connections, rejected_connections, bytes_read, bytes_written;
    struct mc_stats mc;
};

struct mc_serve {
    struct mc_serve_config cfg;
    struct mc_limits limits;
    struct mc_stats stats;
    struct mc_base base;
    const char *cmd_names[MC_SERVE_CMDS]; /* by enum mc_cmd, for net's latency */
};

/* Per connection (zeroed at accept). */
struct mc_session {
    bool authenticated; /* memcached -Y style authentication passed */
    size_t need;        /* parse again once this many bytes are buffered */
    size_t swallow;     /* bytes of a refused data block still to drop */
};

/* One request being served. */
struct mc_call {
    struct mc_serve *m;
    struct mc_session *s;
    const struct mc_request *req;
    struct reply_queue *q;
    int64_t now_ms;
    struct serve_outcome *res;
};

/* ---- mc_serve.c ---- */

/* exptime as the client wrote it -> absolute unix ms for exec (0: never;
 * now: already expired). */
int64_t mcs_expiry(int64_t exptime, int64_t now_ms);
/* Append bytes to the reply; on ENOMEM the connection is closed (a reply
 * with a hole in it would desynchronise the client). */
void mcs_out(struct mc_call *c, const void *p, size_t n);
/* A fixed line (mc_word), sent whatever noreply says. */
void mcs_word(struct mc_call *c, enum mc_word w);
/* The error line of a failed write (SERVER_ERROR ...). */
void mcs_write_error(struct mc_call *c, enum exec_status st, bool storing);
/* Hold the connection's replies for er's replication confirm, if any. */
void mcs_held(struct mc_call *c, const struct exec_result *er);
/* The exec mode of a storage operation. */
enum exec_mode mcs_store_mode(enum mc_op op);
/* Delete key after a refused set, as memcached unlinks the old value. */
void mcs_unlink(struct mc_call *c);
/* "<data>\r\n" of it: copied when small, by reference when large. */
void mcs_value_data(struct mc_call *c, struct item *it);

/* ---- mc_serve_meta.c ---- */

void mcs_meta_get(struct mc_call *c);
void mcs_meta_set(struct mc_call *c);
void mcs_meta_delete(struct mc_call *c);
void mcs_meta_arith(struct mc_call *c);

/* ---- mc_serve_stats.c ---- */

/* stats [settings|reset]: the whole reply; anything else: ERROR. */
void mcs_stats(struct mc_call *c);

#endif
