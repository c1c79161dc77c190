/*
 * command.h - one request line: parse -> execute -> compose.
 *
 * Owns: the meaning of each command and the command counters. Reads the
 * store, writes it with a fresh HLC version, and composes the reply into
 * the connection's reply queue. Knows nothing of sockets or of the broker:
 * every local write that changed the store is reported to write_hook
 * (replication and the expiry timer listen there).
 */
#ifndef VITAMIN_COMMAND_H
#define VITAMIN_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct store;
struct hlc;
struct reply_queue;

enum command_write_op { COMMAND_WRITE_SET = 1, COMMAND_WRITE_DEL, COMMAND_WRITE_EXPIRE };

/* A local write that was applied to the store. For expire, value is the
 * item's current value (the whole item replicates, so LWW stays total). */
struct command_write {
    enum command_write_op op;
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
    int64_t expire_ms; /* absolute unix ms, 0 = never */
    uint64_t version;
    uint32_t origin;
};

/* Per-connection state the commands need. */
struct command_session {
    bool authenticated; /* auth() succeeded (or no password is set) */
};

struct command_stats {
    uint64_t cmd_get, cmd_set, cmd_del, cmd_ttl, cmd_expire, cmd_ping;
    uint64_t get_hits, get_misses;
    uint64_t protocol_errors; /* lines answered with a protocol error */
    uint64_t set_refused;     /* writes refused with Memory overusage */
    uint64_t auth_failures;   /* auth() with a wrong password */
    uint64_t auth_required;   /* commands refused before auth() */
    uint64_t writes_refused_outbox; /* confirm mode: outbox full */
};

struct command_ctx {
    struct store *store;
    struct hlc *hlc;
    uint32_t origin;             /* this node's tag */
    struct proto_limits limits;
    const char *password;        /* NULL: no authentication */
    size_t password_len;
    struct command_stats stats;
    /* Writes the body of stats() (every STAT line; END is added here). */
    void (*stats_fn)(void *arg, struct reply_queue *q, int64_t now_ms);
    void *stats_arg;
    /* Called after every local write that changed the store. */
    void (*write_hook)(void *arg, const struct command_write *w);
    void *write_hook_arg;
    /* Optional: asked before every write; false refuses it with
     * "Error: Replication unavailable (outbox full)" (confirm mode). */
    bool (*write_allowed)(void *arg);
    /* Set by the write hook in --replication_ack=confirm mode: the reply to
     * the line just handled may only be sent once the broker has confirmed
     * replication batch confirm_seq. The caller reads and clears it. */
    uint64_t confirm_seq;
};

enum command_outcome { COMMAND_CONTINUE = 0, COMMAND_CLOSE };

/*
 * Handle one request line (without '\n'; writable, it is unescaped in
 * place). Appends exactly one reply line (several for stats(), none for a
 * blank line or quit()). Returns COMMAND_CLOSE after quit().
 */
enum command_outcome command_handle_line(struct command_ctx *ctx,
                                         struct command_session *sess, char *line,
                                         size_t len, struct reply_queue *q,
                                         int64_t now_ms);

#endif
