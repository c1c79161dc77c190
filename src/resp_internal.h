/*
 * resp_internal.h - what the files of the Redis serve module share (see
 * resp_serve.h): the server and session state, the request being served,
 * the command table entry, and the reply helpers every command uses.
 * Internal names carry the prefix rs_.
 *
 * A command handler gets one struct rs_call: the arguments (already checked
 * for arity, authentication and key length by the dispatcher), the reply
 * queue, the loop time and the outcome to fill (close, confirm_seq). It
 * writes exactly one reply (which may be an array) with the rs_* helpers.
 */
#ifndef VITAMIN_RESP_INTERNAL_H
#define VITAMIN_RESP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "exec.h"
#include "resp.h"
#include "resp_serve.h"
#include "serve.h"

struct item;
struct reply_queue;

#define RS_KEY_MAX 1024      /* longest key, in bytes (SPEC 7) */
#define RS_ARGV_INLINE 8     /* arguments held in the session itself */
#define RS_NAME_MAX 64       /* longest command name looked up */
#define RS_INDEX_SLOTS 256   /* command name index (power of two) */

/* Command flags (COMMAND INFO shows them by Redis's names). */
enum {
    RS_F_WRITE = 1u << 0,    /* "write": may modify data */
    RS_F_READONLY = 1u << 1, /* "readonly" */
    RS_F_DENYOOM = 1u << 2,  /* "denyoom": may use more memory */
    RS_F_FAST = 1u << 3,     /* "fast": O(1) or O(log N) */
    RS_F_NOAUTH = 1u << 4,   /* "no_auth": allowed before AUTH */
    RS_F_ADMIN = 1u << 5,    /* "admin" */
    RS_F_LOADING = 1u << 6,  /* "loading", "stale": served while syncing */
};

struct rs_call;

/* One entry of the command table (resp_command.c). */
struct rs_cmd {
    const char *name;        /* lower case; "client|list" for a subcommand */
    void (*fn)(struct rs_call *c);
    int arity;               /* Redis's: n = exactly n arguments, -n = at least n */
    unsigned flags;          /* RS_F_* */
    int first_key, last_key, key_step; /* key positions: 0 = none; last -1 = to the end */
    const char *group;       /* COMMAND DOCS: "string", "generic", ... */
    const char *since;       /* Redis version that added it */
    const char *summary;
    const char *complexity;
    const char *args;        /* argument syntax, see rs_docs_args() in resp_command.c */
    const struct rs_cmd *subs; /* a container's subcommands, ended by a NULL name */
};

/* The Redis protocol module (one per server). */
struct resp_serve {
    struct resp_serve_config cfg;
    struct resp_limits limits;
    size_t max_input;              /* net's bound on one connection's unread input */
    struct resp_stats stats;
    struct rs_session *sessions;   /* every open RESP connection (CLIENT LIST) */
    uint64_t next_id;              /* CLIENT ID of the next connection */
    uint64_t rng;                  /* RANDOMKEY's start */
    char *scratch;                 /* SETRANGE, INFO, COMMAND DOCS text */
    size_t scratch_cap;
    const struct item **found;     /* SCAN and KEYS results */
    size_t found_len, found_cap;
    uint16_t index[RS_INDEX_SLOTS]; /* top-level command by name hash: table index + 1 */
    const char *cmd_names[RS_INDEX_SLOTS]; /* table index + 1 -> name, for net's latency */
};

/* One connection's state (net allocates it zeroed; session_size). */
struct rs_session {
    struct resp_parser p;
    struct resp_arg argv_inline[RS_ARGV_INLINE];
    struct rs_session *prev, *next; /* in resp_serve.sessions */
    struct serve_peer peer;
    uint64_t id;                    /* CLIENT ID */
    int64_t created_ms, last_ms;    /* accepted; last command */
    const char *last_cmd;           /* full name of the last command */
    char *name, *lib_name, *lib_ver; /* CLIENT SETNAME / SETINFO (malloc'd) */
    uint8_t ver;                    /* RESP version: 2 or 3 */
    bool authed;                    /* AUTH succeeded (or no password) */
    bool started;
};

/* The request being served. */
struct rs_call {
    struct resp_serve *r;
    struct rs_session *s;
    const struct resp_arg *argv;
    size_t argc;
    const struct rs_cmd *cmd;
    struct reply_queue *q;
    int64_t now_ms;
    struct serve_outcome *res;
};

/* ---- replies (resp_serve.c) --------------------------------------------- */

void rs_ok(struct rs_call *c);                          /* +OK */
void rs_simple(struct rs_call *c, const char *s);       /* +<s> */
void rs_error(struct rs_call *c, const char *msg);      /* -<msg>, counted */
void rs_errorf(struct rs_call *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void rs_int(struct rs_call *c, long long v);
void rs_bulk(struct rs_call *c, const char *p, size_t n);
void rs_bulk_str(struct rs_call *c, const char *s);
void rs_null(struct rs_call *c);                        /* missing string */
void rs_item(struct rs_call *c, struct item *it);       /* its value, by reference if big */
void rs_array(struct rs_call *c, size_t n);
void rs_map(struct rs_call *c, size_t pairs);           /* flat array in RESP2 */
void rs_set(struct rs_call *c, size_t n);
void rs_verbatim(struct rs_call *c, const char *p, size_t n); /* INFO, CLIENT INFO */
/* Raw bytes, already RESP-encoded. */
void rs_raw(struct rs_call *c, const char *p, size_t n);

/* The error reply of a failed write (out of memory, outbox full). */
void rs_write_error(struct rs_call *c, enum exec_status st);
/* The reply must wait for what a write's confirm needs (confirm mode). */
void rs_held(struct rs_call *c, const struct exec_result *er);

/* ---- arguments (resp_serve.c) ------------------------------------------- */

/* Is argument i the word w (ASCII case-insensitive)? */
bool rs_arg_is(const struct rs_call *c, size_t i, const char *w);
/* Argument i as a Redis integer; else replies "value is not an integer or
 * out of range" and returns false. */
bool rs_arg_i64(struct rs_call *c, size_t i, int64_t *out);
/* Is a value of n bytes too large (then replies Redis's size error)? */
bool rs_too_big(struct rs_call *c, uint64_t n);
/* Room for n bytes of scratch (NULL on ENOMEM). */
char *rs_scratch(struct resp_serve *r, size_t n);
/* Append a found item for SCAN/KEYS (false on ENOMEM). */
bool rs_found_push(struct resp_serve *r, const struct item *it);

/* ---- command table (resp_command.c) ------------------------------------- */

extern const struct rs_cmd rs_commands[];
extern const size_t rs_ncommands;
void rs_index_build(struct resp_serve *r);
const struct rs_cmd *rs_lookup(const struct resp_serve *r, const char *name, size_t len);
const struct rs_cmd *rs_lookup_sub(const struct rs_cmd *cmd, const char *name, size_t len);

/* ---- handlers ----------------------------------------------------------- */

/* resp_strings.c */
void rs_get(struct rs_call *c);
void rs_set_cmd(struct rs_call *c);
void rs_setnx(struct rs_call *c);
void rs_setex(struct rs_call *c);
void rs_psetex(struct rs_call *c);
void rs_getset(struct rs_call *c);
void rs_getdel(struct rs_call *c);
void rs_getex(struct rs_call *c);
void rs_mget(struct rs_call *c);
void rs_mset(struct rs_call *c);
void rs_msetnx(struct rs_call *c);
void rs_incr(struct rs_call *c);
void rs_decr(struct rs_call *c);
void rs_incrby(struct rs_call *c);
void rs_decrby(struct rs_call *c);
void rs_incrbyfloat(struct rs_call *c);
void rs_append(struct rs_call *c);
void rs_strlen(struct rs_call *c);
void rs_getrange(struct rs_call *c);
void rs_setrange(struct rs_call *c);

/* resp_keys.c */
void rs_del(struct rs_call *c);
void rs_exists(struct rs_call *c);
void rs_type(struct rs_call *c);
void rs_expire(struct rs_call *c);
void rs_pexpire(struct rs_call *c);
void rs_expireat(struct rs_call *c);
void rs_pexpireat(struct rs_call *c);
void rs_ttl(struct rs_call *c);
void rs_pttl(struct rs_call *c);
void rs_expiretime(struct rs_call *c);
void rs_pexpiretime(struct rs_call *c);
void rs_persist(struct rs_call *c);
void rs_scan(struct rs_call *c);
void rs_keys(struct rs_call *c);
void rs_randomkey(struct rs_call *c);

/* resp_server.c */
void rs_ping(struct rs_call *c);
void rs_echo(struct rs_call *c);
void rs_quit(struct rs_call *c);
void rs_hello(struct rs_call *c);
void rs_auth(struct rs_call *c);
void rs_select(struct rs_call *c);
void rs_reset(struct rs_call *c);
void rs_client_setname(struct rs_call *c);
void rs_client_getname(struct rs_call *c);
void rs_client_id(struct rs_call *c);
void rs_client_setinfo(struct rs_call *c);
void rs_client_info(struct rs_call *c);
void rs_client_list(struct rs_call *c);
void rs_config_get(struct rs_call *c);
void rs_info(struct rs_call *c);
void rs_dbsize(struct rs_call *c);
void rs_flushall(struct rs_call *c);
void rs_time(struct rs_call *c);
void rs_help(struct rs_call *c);  /* CLIENT/CONFIG/COMMAND HELP */

/* resp_command.c */
void rs_command(struct rs_call *c);
void rs_command_count(struct rs_call *c);
void rs_command_list(struct rs_call *c);
void rs_command_info(struct rs_call *c);
void rs_command_docs(struct rs_call *c);

#endif
