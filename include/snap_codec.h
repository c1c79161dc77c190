/*
 * snap_codec.h - the snapshot file format (--snapshot FILE): encoder and
 * validating decoder. Pure functions over bytes, like repl_codec.h: no I/O,
 * no global state, and the decoder never allocates. docs/operations.md
 * ("Warm restart") describes the same format for operators.
 *
 * A snapshot is replication records in wire format version 2
 * (repl_codec.h), cut into batches, with a header in front and a checksum
 * at the end, so the project has one record encoding. All integers are
 * little-endian.
 *
 *   offset  size  field
 *   0       8     magic "VTMSNAP\0"
 *   8       4     format version = 1
 *   12      8     written_ms: unix ms when the save began (int64)
 *   20      2     node id length N (1..255)
 *   22      N     node id: the --node_id of the node that wrote it
 *   then chunks, one after the other:
 *           4     L: bytes of the batch (>= 1; 0 ends the chunks, below)
 *           L     one batch (repl_codec.h, version 2): kind WRITES, origin =
 *                 the node id above, incarnation 0, seq = chunk number (1,
 *                 2, ...), aux, base, total 0, no target, >= 1 record; ops
 *                 SET (a live item), DEL (a delete's tombstone), EXPIRED
 *                 (an expiry's tombstone) or FLUSH (the flush watermarks:
 *                 the first record(s) of the first chunk, the one in
 *                 effect then a pending delayed one, only if ever flushed)
 *           4     T: how many of its records are tombstones (DEL, EXPIRED)
 *           8*T   when each of those is collected (int64 unix ms), in
 *                 record order
 *   end:
 *           4     0
 *           8     R: records in all chunks
 *           8     XXH3-64 (seed 0) of every byte of the file before it
 *   The file ends exactly there.
 *
 *   +--------+---+-------+---+----+  +---+-------+---+-------+  +---+---+---+
 *   |VTMSNAP0| 1 |written| N | id |  | L | batch | T | times |..| 0 | R |sum|
 *   +--------+---+-------+---+----+  +---+-------+---+-------+  +---+---+---+
 *
 * Decoder invariants (snap_parse):
 *  - The whole file is checked before anything is reported valid: header,
 *    every chunk's framing, the checksum, then every batch through
 *    rc_decode() and the fields above. A caller applies a file only after
 *    SNAP_OK, so a bad file is refused whole.
 *  - Untrusted lengths are only ever compared with the bytes remaining.
 *  - When the checksum does not match, the framing decides the message: a
 *    file that ends inside a chunk or before its end is "truncated",
 *    otherwise it is a checksum mismatch.
 */
#ifndef VITAMIN_SNAP_CODEC_H
#define VITAMIN_SNAP_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repl_codec.h"

#define SNAP_MAGIC "VTMSNAP\0"
#define SNAP_MAGIC_LEN 8
#define SNAP_VERSION 1
#define SNAP_HEADER_FIXED 22 /* header bytes before the node id */
#define SNAP_END_SIZE 20     /* the end: 0, R, checksum */
#define SNAP_SUM_SIZE 8

enum snap_status {
    SNAP_OK = 0,
    SNAP_ERR_EMPTY,     /* zero bytes */
    SNAP_ERR_MAGIC,     /* not a Vitamin snapshot */
    SNAP_ERR_VERSION,   /* a format version this build does not read */
    SNAP_ERR_TRUNCATED, /* ends before its end */
    SNAP_ERR_CHECKSUM,  /* complete, but the bytes changed */
    SNAP_ERR_CORRUPT,   /* checksum right, content invalid (a foreign writer) */
    SNAP_ERR_TRAILING,  /* bytes after the checksum */
};

/* What snap_parse learnt; on an error, how far it got. */
struct snap_info {
    unsigned version;    /* format version read (0 if not that far) */
    const char *node_id; /* into the data */
    size_t node_id_len;
    int64_t written_ms;
    uint64_t chunks;     /* batches */
    uint64_t records;    /* records of every op */
    uint64_t tombstones; /* DEL and EXPIRED records */
    bool has_flush;      /* a FLUSH record is present */
    size_t at;           /* on error: byte offset where it was found */
    const char *detail;  /* on error: a static phrase saying what is wrong */
};

/*
 * Validate a whole file. Returns SNAP_OK (info filled, snap_reader_init()
 * may then read it), or the problem (info->at and info->detail say where
 * and what).
 */
enum snap_status snap_parse(const char *data, size_t len, struct snap_info *info);
const char *snap_status_name(enum snap_status st);

/* ---- reading a file snap_parse accepted ---- */
struct snap_reader {
    const char *data;
    size_t len;
    size_t pos;            /* next chunk's length field */
    uint64_t seq;          /* chunks read so far */
    struct rc_reader rd;   /* records of the current batch */
    const char *times;     /* collection times of its tombstones */
    uint32_t times_left;
};

void snap_reader_init(struct snap_reader *r, const char *data, size_t len);
/*
 * Next record, and for a tombstone (DEL, EXPIRED) the unix ms it is
 * collected at (0 for SET and FLUSH). Returns false when none is left.
 * Only for data that snap_parse accepted (otherwise it stops early, safely).
 */
bool snap_next(struct snap_reader *r, struct rc_record *rec, int64_t *collect_ms);

/* ---- writing ---- */

/* A growable byte buffer owned by the caller; zero it before first use. */
struct snap_buf {
    char *data;
    size_t len;
    size_t cap;
};
void snap_buf_free(struct snap_buf *b);

/* Append the header. Returns 0, or -1 (EINVAL: bad node id; ENOMEM). */
int snap_encode_header(struct snap_buf *out, const char *node_id, size_t node_id_len,
                       int64_t written_ms);

/* One chunk being filled: a batch and its tombstones' collection times. */
struct snap_chunk {
    struct rc_buf batch;
    struct snap_buf times;
    uint32_t tombstones;
};

/* Start chunk number seq (1, 2, ...), reusing c's memory. Returns 0 or -1. */
int snap_chunk_begin(struct snap_chunk *c, const char *node_id, size_t node_id_len,
                     uint64_t seq);
/*
 * Add a record (SET, DEL, EXPIRED or FLUSH; collect_ms is used for DEL and
 * EXPIRED). Returns 0, or -1 with errno EINVAL (another op, or a record
 * rc_append refuses), EOVERFLOW or ENOMEM; on -1 the chunk is unchanged.
 */
int snap_chunk_add(struct snap_chunk *c, const struct rc_record *rec, int64_t collect_ms);
uint32_t snap_chunk_records(const struct snap_chunk *c);
/* Bytes the chunk takes in the file. */
size_t snap_chunk_size(const struct snap_chunk *c);
/* Append the chunk (L, batch, T, times) to out. It must hold >= 1 record.
 * Returns 0 or -1. */
int snap_chunk_encode(const struct snap_chunk *c, struct snap_buf *out);
void snap_chunk_free(struct snap_chunk *c);

/*
 * The end, in two steps because the checksum covers the bytes before it:
 * snap_encode_end() appends the 0 and R; snap_encode_sum() the checksum
 * (XXH3-64 of the whole file so far). Return 0 or -1.
 */
int snap_encode_end(struct snap_buf *out, uint64_t records);
int snap_encode_sum(struct snap_buf *out, uint64_t checksum);

#endif
