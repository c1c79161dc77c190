/*
 * exec.h - the command core: every operation the protocols offer, executed
 * on the store and handed to replication.
 *
 * Owns: the meaning of each operation (set modes, cas, touch, incr/decr,
 * delete, flush), the HLC stamps of local writes, the confirm-mode gate, and
 * the operation counters. It is the only code that writes the store for a
 * client and the only caller of repl_local_*(). It knows no protocol: keys
 * and values are bytes, expiry is an absolute unix time in ms, and each
 * protocol's serve module turns its own request into these calls and the
 * result into its own reply.
 *
 * Stamps. A write that sets the value takes a fresh HLC tick for the value
 * register (and for the expiry register when it sets the expiry too); a
 * touch takes one for the expiry register only, and replicates the value it
 * was made on with that value's own stamp (store.h, "Two registers").
 * The cas unique of an item is its value stamp, the same on every node.
 *
 * Results. Every write returns a struct exec_result: its status, the item
 * now stored (if live; valid until the next store write unless referenced)
 * and, in --replication_ack=confirm mode, the replication batch whose
 * confirm the reply must wait for (0: none). Nothing else is passed back.
 *
 * Recache marks. For memcached's meta commands an item carries node-local
 * state that is never replicated (store.h: ITEM_F_FETCHED, ITEM_F_STALE,
 * ITEM_F_WON, atime): whether and when a client last read it, whether it
 * was invalidated, and whether one client was already handed the right to
 * recache it. Every new value (a local or a replicated write) starts
 * clear; what replicates of an invalidation is the rewrite of the value
 * with a new stamp (exec_invalidate), so the pool still converges.
 */
#ifndef VITAMIN_EXEC_H
#define VITAMIN_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct hlc;
struct repl;
struct expiry;
struct item;

#define EXEC_KEEP_TTL INT64_MIN /* expire_ms: leave the expiry as it is */

enum exec_status {
    EXEC_OK = 0,
    EXEC_NOT_FOUND,  /* no live item */
    EXEC_EXISTS,     /* cas: the item's cas differs */
    EXEC_NOT_STORED, /* add: the key exists; replace/append/prepend: it does not */
    EXEC_NOMEM,      /* over the memory cap and nothing could be evicted */
    EXEC_TOO_LARGE,  /* one item bigger than the whole memory cap */
    EXEC_REFUSED,    /* confirm mode: the outbox is full, nothing was written */
    EXEC_NOT_NUMBER, /* incr/decr of a value that is not a number */
    EXEC_OVERFLOW,   /* signed incr past the 64-bit range */
};

enum exec_mode {
    EXEC_SET = 0,
    EXEC_ADD,        /* only if the key holds no live item */
    EXEC_REPLACE,    /* only if it does */
    EXEC_APPEND,     /* value after the existing one; keeps flags and expiry */
    EXEC_PREPEND,
    EXEC_CAS,        /* only if the item's cas equals cas */
};

struct exec_store {
    enum exec_mode mode;
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
    uint32_t client_flags;
    int64_t expire_ms;   /* absolute unix ms, 0 = never, <= now = expired at
                            once (still a write), EXEC_KEEP_TTL = unchanged */
    uint64_t cas;        /* EXEC_CAS: the cas unique the client read */
    bool check_cas;      /* APPEND/PREPEND: also only if the item's cas is cas */
    bool invalidate;     /* with a cas check: a cas older than the item's is
                            accepted too; the value is then stored keeping the
                            item's expiry and recache token, marked stale
                            (memcached's ms I) */
    bool create;         /* APPEND/PREPEND: a missing key is created (Redis) */
};

struct exec_result {
    enum exec_status status;
    struct item *item;    /* the live item after the operation, or NULL */
    uint64_t confirm_seq; /* hold the reply until this batch is confirmed */
};

struct exec_config {
    struct store *store;
    struct hlc *hlc;
    struct repl *repl;     /* NULL when standalone */
    struct expiry *expiry; /* told of every new expiry */
    uint32_t origin;       /* this node's tag */
    bool confirm;          /* --replication_ack=confirm */
    size_t max_value_len;  /* longest value append/prepend may build; 0: any */
};

struct exec_stats {
    uint64_t cmd_get, get_hits, get_misses, get_expired;
    uint64_t cmd_set, set_refused;   /* set_refused: out of memory / too large */
    uint64_t cmd_touch, touch_hits, touch_misses;
    uint64_t delete_hits, delete_misses;
    uint64_t incr_hits, incr_misses, decr_hits, decr_misses;
    uint64_t cas_hits, cas_misses, cas_badval;
    uint64_t cmd_flush;
    uint64_t total_items;           /* items stored by clients */
    uint64_t writes_refused_outbox; /* confirm mode: refused, outbox full */
};

struct exec;

struct exec *exec_create(const struct exec_config *cfg);
void exec_destroy(struct exec *x);
const struct exec_stats *exec_get_stats(const struct exec *x);
struct store *exec_store_of(const struct exec *x);

/* Live item for key, or NULL; counted as a get (hit or miss, and
 * get_expired when the miss found it expired); marked read (store_get). */
struct item *exec_get(struct exec *x, const char *key, size_t key_len, int64_t now_ms);

/* An item's read state before a read (memcached meta's h and l). */
struct exec_seen {
    bool fetched;   /* read by a client before */
    uint32_t atime; /* last access, unix seconds */
};

/* exec_get that can leave the item's read state alone (bump false:
 * memcached's u) and report it as it was before (prior, if not NULL). */
struct item *exec_read(struct exec *x, const char *key, size_t key_len, bool bump,
                       struct exec_seen *prior, int64_t now_ms);
/* Live item for key, or NULL, without counting (for commands that only
 * look: TTL, EXISTS, TYPE...). */
struct item *exec_peek(struct exec *x, const char *key, size_t key_len, int64_t now_ms);

/* Store a value by mode (see enum exec_mode). */
struct exec_result exec_set(struct exec *x, const struct exec_store *req, int64_t now_ms);

/* New expiry for a live item (0 = never, <= now: it expires now).
 * EXEC_OK or EXEC_NOT_FOUND (also EXEC_NOMEM, EXEC_REFUSED). */
struct exec_result exec_touch(struct exec *x, const char *key, size_t key_len,
                              int64_t expire_ms, int64_t now_ms);

/* Delete a live item; cas != 0: only if its cas equals cas (else
 * EXEC_EXISTS). EXEC_OK or EXEC_NOT_FOUND (a missing key writes nothing). */
struct exec_result exec_delete(struct exec *x, const char *key, size_t key_len,
                               uint64_t cas, int64_t now_ms);

/*
 * memcached's incr/decr: the value must read as an unsigned 64-bit decimal
 * the way memcached reads it (leading blanks, an optional '+', digits, then
 * the end or a blank and anything); incr wraps at 2^64, decr stops at 0;
 * flags and expiry are kept; the new value is its plain digits. *out gets
 * the new value. EXEC_OK, EXEC_NOT_FOUND, EXEC_NOT_NUMBER (also
 * EXEC_NOMEM, EXEC_REFUSED).
 */
struct exec_result exec_incr_u64(struct exec *x, const char *key, size_t key_len,
                                 bool decr, uint64_t delta, int64_t now_ms,
                                 uint64_t *out);

/* exec_incr_u64 with memcached meta's options (ma). */
struct exec_arith {
    const char *key;
    size_t key_len;
    bool decr;
    uint64_t delta;
    bool check_cas;           /* only if the item's cas is cas (else EXEC_EXISTS) */
    uint64_t cas;
    int64_t expire_ms;        /* on success: the new expiry, or EXEC_KEEP_TTL */
    bool create;              /* a miss creates the key holding initial */
    uint64_t initial;
    int64_t create_expire_ms; /* ... expiring then (0: never) */
};
struct exec_result exec_arith_u64(struct exec *x, const struct exec_arith *a, int64_t now_ms,
                                  uint64_t *out);

/*
 * Invalidate instead of deleting (memcached's md I, md x): the live item
 * keeps its key and flags but its value is rewritten with a new stamp (a
 * new cas; replicated as a write), emptied if empty, with expiry expire_ms
 * (EXEC_KEEP_TTL: kept); stale marks it stale here and takes back its
 * recache token. cas != 0: only if the item's cas equals it. EXEC_OK,
 * EXEC_NOT_FOUND, EXEC_EXISTS (also EXEC_NOMEM, EXEC_REFUSED).
 */
struct exec_result exec_invalidate(struct exec *x, const char *key, size_t key_len,
                                   uint64_t cas, int64_t expire_ms, bool stale, bool empty,
                                   int64_t now_ms);

/* Hand out it's recache token (memcached meta's W): true for the first
 * caller since its value was written or invalidated, false after. */
bool exec_take_token(struct exec *x, struct item *it);

/*
 * Redis's INCRBY/DECRBY: the value must be a signed 64-bit decimal in
 * Redis's strict form; a missing key counts as 0 (created without expiry);
 * the expiry is kept. *out gets the new value. EXEC_OK, EXEC_NOT_NUMBER,
 * EXEC_OVERFLOW (also EXEC_NOMEM, EXEC_REFUSED).
 */
struct exec_result exec_incr_i64(struct exec *x, const char *key, size_t key_len,
                                 int64_t delta, int64_t now_ms, int64_t *out);

/* Forget every item stamped before now + delay_ms (replicated). */
struct exec_result exec_flush(struct exec *x, int64_t delay_ms, int64_t now_ms);

#endif
