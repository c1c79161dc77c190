/*
 * repl_codec.h - the replication wire format (version 1): encoder and
 * decoder of batches. Pure functions over bytes: no I/O, no allocation in
 * the decoder, no global state. docs/replication.md is the normative
 * description; this header mirrors it.
 *
 * All integers are little-endian. One AMQP message body = one batch:
 *
 *   offset size  field
 *   0      4     magic "VTMB"
 *   4      1     format version = 1
 *   5      1     kind: 1 WRITES, 2 SYNC_REQUEST, 3 SYNC_DATA, 4 SYNC_DONE
 *   6      2     origin id length N (1..255)
 *   8      N     origin id (the sending node's --node_id, bytes)
 *   8+N    8     incarnation (random per process start; seq restarts with it)
 *   16+N   8     seq: per (origin, incarnation, kind WRITES) batch number,
 *                1, 2, 3, ... ; other kinds carry 0 unless noted
 *   24+N   8     aux: SYNC_*: the sync session id; WRITES: 0
 *   32+N   2     target id length T (0..255): SYNC_*: the node asked / the
 *                node the data is for; WRITES: 0
 *   34+N   T     target id
 *   34+N+T 4     record count C
 *   then C records:
 *          1     op: 1 SET, 2 DEL, 3 EXPIRE (carries the value, like SET)
 *          2     key length K (1..1024)
 *          4     value length V (0 for DEL)
 *          8     expire_ms (int64, absolute unix ms, 0 = never)
 *          8     version (HLC: unix ms << 16 | logical)
 *          4     origin tag (uint32: tie-break tag of the writer)
 *          K     key bytes
 *          V     value bytes
 *   The body ends exactly after the last record; anything else is malformed.
 */
#ifndef VITAMIN_REPL_CODEC_H
#define VITAMIN_REPL_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RC_MAGIC "VTMB"
#define RC_VERSION 1
#define RC_MAX_ID_LEN 255
#define RC_MAX_KEY_LEN 1024
#define RC_RECORD_FIXED 27 /* bytes of a record before its key */

enum rc_kind {
    RC_KIND_WRITES = 1,
    RC_KIND_SYNC_REQUEST = 2,
    RC_KIND_SYNC_DATA = 3,
    RC_KIND_SYNC_DONE = 4,
};

enum rc_op { RC_OP_SET = 1, RC_OP_DEL = 2, RC_OP_EXPIRE = 3 };

struct rc_header {
    enum rc_kind kind;
    const char *origin; /* points into the batch / caller memory */
    size_t origin_len;
    uint64_t incarnation;
    uint64_t seq;
    uint64_t aux;
    const char *target;
    size_t target_len;
    uint32_t count;     /* records that follow */
};

struct rc_record {
    enum rc_op op;
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
    int64_t expire_ms;
    uint64_t version;
    uint32_t origin_tag;
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

#endif
