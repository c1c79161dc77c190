/*
 * repl_codec.h - the replication wire format (version 2; version 1 is still
 * read): encoder and decoder of batches. Pure functions over bytes: no I/O,
 * no allocation in the decoder, no global state. docs/replication.md is the
 * normative description; this header mirrors it.
 *
 * All integers are little-endian. One AMQP message body = one batch:
 *
 *   offset size  field
 *   0      4     magic "VTMB"
 *   4      1     format version = 2 (1 is accepted on input, see below)
 *   5      1     kind: 1 WRITES, 2 SYNC_REQUEST, 3 SYNC_DATA, 4 SYNC_DONE,
 *                5 DIGESTS, 6 RANGES, 7 ROOT, 8 SUMMARY, 9 WANTS (5..9:
 *                version 2)
 *   6      2     origin id length N (1..255)
 *   8      N     origin id (the sending node's --node_id, bytes)
 *   8+N    8     incarnation (random per process start; seq restarts with it)
 *   16+N   8     seq: WRITES: per (origin, incarnation) batch number 1, 2, ...;
 *                SYNC_DATA / SYNC_DONE: per transfer message number 1, 2, ...;
 *                SYNC_REQUEST: 0
 *                DIGESTS, WANTS: numbered with the SYNC_DATA of the same
 *                transfer; SUMMARY: 1, 2, ... per (session, peer)
 *   24+N   8     aux: SYNC_*, DIGESTS, RANGES, SUMMARY, WANTS: the
 *                transfer's session id;
 *                ROOT: 1 if the sender was idle (nothing written or
 *                applied lately); WRITES: 0
 *   32+N   8     base: SYNC_DATA / SYNC_DONE / DIGESTS / WANTS: the
 *                sender's last WRITES seq when its transfer began;
 *                SYNC_REQUEST: the mode asked for, 0 full, 1 incremental;
 *                RANGES: 1 everything; SUMMARY: 1 on the last one;
 *                otherwise 0
 *   40+N   8     total: SYNC_DONE: records the transfer sent; DIGESTS:
 *                RC_FEATURE_KEYSUMS if the sender takes SUMMARY messages;
 *                RANGES of leaves: 1 if SUMMARY messages follow; WANTS: 1
 *                "every item of the leaves" (records ignored); otherwise 0
 *   48+N   2     target id length T (0..255): SYNC_DATA, SYNC_DONE,
 *                DIGESTS, RANGES, SUMMARY, WANTS: the node the message is
 *                for (SYNC_DATA of a push to the pool: 0); WRITES,
 *                SYNC_REQUEST, ROOT: 0
 *   50+N   T     target id
 *   50+N+T 4     record count C
 *   then C records:
 *          1     op: 1 SET, 2 DEL, 3 EXPIRE, 4 FLUSH, 5 EXPIRED, 6 NODE,
 *                7 SUMS, 8 HASHES
 *          2     key length K (1..1024; FLUSH, SUMS, HASHES: 0; NODE: 5)
 *          4     value length V (DEL, FLUSH, EXPIRED: 0; NODE: 0, 8 or
 *                128; SUMS: 32n, HASHES: 8n, n >= 1)
 *          4     client flags (memcached's 32-bit flags; 0 unless SET/EXPIRE)
 *          8     expire_ms (int64, absolute unix ms, 0 = never)
 *          8     version: stamp of the value (HLC: unix ms << 16 | logical)
 *          4     origin tag (uint32: tie-break tag of the value's writer)
 *          8     exp_version: stamp of the expiry
 *          4     exp origin tag
 *          K     key bytes
 *          V     value bytes
 *   The body ends exactly after the last record; anything else is malformed.
 *
 * A NODE record names a node of the range-digest tree (rdigest.h): its key
 * is the level (1 byte, 0..4) and the index (4 bytes, < 16^level); its
 * value is empty (RANGES: "this node, please"), its 8-byte digest (ROOT),
 * or its 16 children's digests (DIGESTS), all little-endian; flags, expiry
 * and stamps are 0. NODE records appear only in DIGESTS, RANGES and ROOT
 * messages, and those carry nothing else.
 *
 * A SUMS record (only in SUMMARY messages, which carry nothing else) is an
 * array of key summaries, RC_SUM_SIZE bytes each: the key's hash (XXH3-64,
 * seed 0: rdigest.h), its value stamp (version, origin tag) and its expiry
 * stamp (exp_version, exp origin tag). A HASHES record (only in WANTS,
 * which carry nothing else) is an array of 8-byte key hashes. Neither has
 * a key; flags, expiry and stamps are 0.
 *
 * Version 1 had no base/total and 27-byte records (op K V expire_ms version
 * origin, no flags and no expiry stamp); a version-1 record is read as one
 * with client flags 0 and its expiry stamped like its value.
 */
#ifndef VITAMIN_REPL_CODEC_H
#define VITAMIN_REPL_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RC_MAGIC "VTMB"
#define RC_VERSION 2   /* written; 1 and 2 are read */
#define RC_MAX_ID_LEN 255
#define RC_MAX_KEY_LEN 1024
#define RC_RECORD_FIXED 43    /* bytes of a version-2 record before its key */
#define RC_RECORD_FIXED_V1 27 /* the same in version 1 */

enum rc_kind {
    RC_KIND_WRITES = 1,
    RC_KIND_SYNC_REQUEST = 2,
    RC_KIND_SYNC_DATA = 3,
    RC_KIND_SYNC_DONE = 4,
    RC_KIND_DIGESTS = 5, /* a peer's digests of the nodes asked for */
    RC_KIND_RANGES = 6,  /* nodes asked for: their children, or a leaf's items */
    RC_KIND_ROOT = 7,    /* anti-entropy: a node's root digest */
    RC_KIND_SUMMARY = 8, /* the requester's key summaries of the leaves that differ */
    RC_KIND_WANTS = 9,   /* keys the serving side asks back from the requester */
};

/* DIGESTS' total: the key-summary step the sender serves (a bit set). */
#define RC_FEATURE_KEYSUMS 1u

/* How a receiver merges a record: docs/replication.md, "Merge rules". */
enum rc_op {
    RC_OP_SET = 1,    /* value and expiry, each with its own stamp */
    RC_OP_DEL = 2,    /* value "deleted", expiry 0 */
    RC_OP_EXPIRE = 3, /* an expiry change; carries the value it was made on,
                         with that value's stamp, and merges like SET */
    RC_OP_FLUSH = 4,  /* no key: every value stamped below version dies */
    RC_OP_EXPIRED = 5,/* a value that expired, bytes gone: its stamps and
                         expiry only (state transfer of an expiry's tombstone) */
    RC_OP_NODE = 6,   /* a range-digest tree node (see above) */
    RC_OP_SUMS = 7,   /* key summaries (see above) */
    RC_OP_HASHES = 8, /* key hashes (see above) */
};

#define RC_NODE_KEY_LEN 5
#define RC_NODE_LEVELS 5 /* rdigest.h: levels 0..4 */
#define RC_SUM_SIZE 32   /* bytes of a key summary in a SUMS record */
#define RC_HASH_SIZE 8   /* bytes of a key hash in a HASHES record */

struct rc_header {
    enum rc_kind kind;
    const char *origin; /* points into the batch / caller memory */
    size_t origin_len;
    uint64_t incarnation;
    uint64_t seq;
    uint64_t aux;
    uint64_t base;      /* version 2: see the table above; 0 in version 1 */
    uint64_t total;
    const char *target;
    size_t target_len;
    uint32_t count;     /* records that follow */
    unsigned version;   /* decoded: the batch's format version */
};

struct rc_record {
    enum rc_op op;
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
    uint32_t client_flags;
    int64_t expire_ms;
    uint64_t version;
    uint32_t origin_tag;
    uint64_t exp_version;
    uint32_t exp_origin_tag;
};

/* One key summary of a SUMS record. */
struct rc_sum {
    uint64_t hash;           /* XXH3-64 of the key, seed 0 */
    uint64_t version;        /* value register stamp */
    uint32_t origin_tag;
    uint64_t exp_version;    /* expiry register stamp */
    uint32_t exp_origin_tag;
};

enum rc_status {
    RC_OK = 0,
    RC_ERR_MAGIC,     /* not a Vitamin batch (foreign publisher) */
    RC_ERR_VERSION,   /* a format version this build does not know */
    RC_ERR_TRUNCATED, /* ends before a length says it should */
    RC_ERR_RANGE,     /* a length or enum out of range */
    RC_ERR_TRAILING,  /* bytes after the last record */
};

/* ---- encoder: appends to a growable buffer owned by the caller ---- */
struct rc_buf {
    char *data;
    size_t len;
    size_t cap;
};

void rc_buf_free(struct rc_buf *b);
/* Start a batch (writes the header with count 0). Returns 0 or -1 (ENOMEM). */
int rc_begin(struct rc_buf *b, const struct rc_header *h);
/* Append one record and bump the header's count. Returns 0 or -1. */
int rc_append(struct rc_buf *b, const struct rc_record *r);
/* Records in the batch being built in b. */
uint32_t rc_count(const struct rc_buf *b);
/* Encoded size of a record, for batch size limits. */
size_t rc_record_size(size_t key_len, size_t value_len);

/* ---- decoder: validates everything before anything is used ---- */
struct rc_reader {
    const char *data;
    size_t len;
    size_t pos;       /* next record */
    uint32_t left;    /* records not yet read */
    unsigned version; /* format version of the batch */
    unsigned kind;    /* its kind */
};

/*
 * Check a whole batch (header and every record) and fill h; on RC_OK,
 * rc_next() yields each record without further failure. A batch that is
 * not RC_OK must be dropped as a whole.
 */
enum rc_status rc_decode(const char *data, size_t len, struct rc_header *h,
                         struct rc_reader *rd);
/* Next record; returns false when none is left. */
bool rc_next(struct rc_reader *rd, struct rc_record *r);
const char *rc_status_name(enum rc_status st);

/* ---- entries of SUMS and HASHES records (little-endian, as above) ---- */
/* Write s as RC_SUM_SIZE bytes at out. */
void rc_sum_put(char *out, const struct rc_sum *s);
/* Entry i of a SUMS record's value (i < value_len / RC_SUM_SIZE). */
void rc_sum_get(const struct rc_record *r, size_t i, struct rc_sum *s);
/* Write hash as RC_HASH_SIZE bytes at out. */
void rc_hash_put(char *out, uint64_t hash);
/* Entry i of a HASHES record's value (i < value_len / RC_HASH_SIZE). */
uint64_t rc_hash_get(const struct rc_record *r, size_t i);

#endif
