/*
 * mc_reply.h - memcached text protocol (classic and meta): reply encoder.
 *
 * Owns: the bytes of every reply line the serve layer sends on the
 * memcached port, except request errors (mc_error_line() in mc_proto.h).
 * Pure functions writing into a caller buffer: no I/O, no allocation, no
 * global state. Values are never copied here: the serve layer sends the
 * header line, then the value by reference, then "\r\n":
 *
 *     char *p = reply_reserve(q, MC_REPLY_LINE_MAX);
 *     reply_commit(q, mc_value_header(p, key, klen, flags, vlen, cas, gets));
 *     ...append the value by reference, then "\r\n"...
 *
 * Every function that takes no capacity writes at most MC_REPLY_LINE_MAX
 * bytes (keys are at most MC_KEY_MAX bytes, opaque tokens MC_OPAQUE_MAX) and
 * returns the number written. Lines end in "\r\n".
 *
 * Meta replies follow memcached: the return flags come in the order the
 * request gave them; O and k are echoed with every code, the item flags
 * (s t c f l h) only when there is an item; a base64 key (b) is echoed in
 * base64 followed by " b"; mg then adds Z, X, W for a win token already
 * sent, a stale item, a won recache token.
 */
#ifndef VITAMIN_MC_REPLY_H
#define VITAMIN_MC_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mc_proto.h"

#define MC_REPLY_LINE_MAX 512

/* Fixed reply lines. */
enum mc_word {
    MC_W_STORED,      /* STORED */
    MC_W_NOT_STORED,  /* NOT_STORED */
    MC_W_EXISTS,      /* EXISTS */
    MC_W_NOT_FOUND,   /* NOT_FOUND */
    MC_W_DELETED,     /* DELETED */
    MC_W_TOUCHED,     /* TOUCHED */
    MC_W_OK,          /* OK (flush_all, verbosity) */
    MC_W_END,         /* END (after VALUE blocks, after STAT lines) */
    MC_W_RESET,       /* RESET (stats reset) */
    MC_W_ERROR,       /* ERROR (unknown stats argument) */
    MC_W_MN,          /* MN (meta no-op) */
    MC_W_NON_NUMERIC, /* CLIENT_ERROR cannot increment or decrement non-numeric value */
    MC_W_OOM_STORE,   /* SERVER_ERROR out of memory storing object */
    MC_W_OOM,         /* SERVER_ERROR out of memory */
    MC_W_AUTH_FAILED, /* CLIENT_ERROR authentication failure */
};
#define MC_W_COUNT (MC_W_AUTH_FAILED + 1)

/* The line of w ("\r\n" included) and its length; NULL for an unknown w. */
const char *mc_word(enum mc_word w, size_t *len);

/* "VALUE <key> <flags> <bytes>[ <cas>]\r\n" (with_cas: gets, gats). */
size_t mc_value_header(char *dst, const char *key, size_t key_len, uint32_t flags,
                       size_t bytes, uint64_t cas, bool with_cas);

/* "<value>\r\n": the reply to incr/decr. */
size_t mc_number_line(char *dst, uint64_t value);

/* "VERSION <version>\r\n", "STAT <name> <value>\r\n": return the full length
 * and write only if it fits in cap (call with cap 0 to size a reservation). */
size_t mc_version_line(char *dst, size_t cap, const char *version);
size_t mc_stat_line(char *dst, size_t cap, const char *name, const char *value,
                    size_t value_len);
size_t mc_stat_u64(char *dst, size_t cap, const char *name, uint64_t value);

/* Meta reply codes. */
enum mc_meta_code {
    MC_META_VA, /* VA <size> <flags>*, a data block follows (mg v, ma v) */
    MC_META_HD, /* success, no value */
    MC_META_EN, /* mg: miss */
    MC_META_NF, /* md, ma, ms cas: not found */
    MC_META_NS, /* ms: not stored */
    MC_META_EX, /* cas mismatch */
};

/* What the serve layer knows of the item, for the return flags. */
struct mc_meta_item {
    size_t size;          /* VA <size> and s: value bytes (ma: digits) */
    uint64_t cas;         /* c */
    uint32_t flags;       /* f: client flags */
    int64_t ttl;          /* t: seconds left, -1 if it never expires */
    uint32_t idle;        /* l: seconds since the last access */
    bool fetched;         /* h: fetched before */
    bool win_sent;        /* Z (mg): a recache token was already handed out */
    bool stale;           /* X (mg): the item is stale */
    bool win;             /* W (mg): this client won the recache token */
};

/*
 * The reply line of meta request req (mg ms md ma) with code; it is the
 * item's state after the command, or NULL when there is none (miss, not
 * stored...). Returns the bytes written (at most MC_REPLY_LINE_MAX).
 */
size_t mc_meta_reply(char *dst, const struct mc_request *req, enum mc_meta_code code,
                     const struct mc_meta_item *it);

/*
 * Quiet mode (flag q): is this reply left unsent? As memcached 1.6.18: mg
 * hides EN, ms/md hide HD, ma hides its success (HD, or VA with v); errors
 * and every other code are sent. The serve layer then relies on a later mn
 * to flush the client's pipeline.
 */
bool mc_meta_quiet_skips(enum mc_cmd cmd, enum mc_meta_code code);

/* Standard base64 of src (with padding) into dst (4 * ceil(n / 3) bytes).
 * Returns the bytes written. */
size_t mc_base64_encode(const char *src, size_t src_len, char *dst);

#endif
