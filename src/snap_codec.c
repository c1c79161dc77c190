/*
 * snap_codec.c - encoder and validating decoder of snapshot files (format
 * in snap_codec.h). Owns nothing but bytes; the records themselves are
 * encoded and decoded by repl_codec.c.
 *
 * snap_parse() runs in three passes over the bytes, each bounded by the
 * length: the framing (header, chunk lengths, end), the checksum, then every
 * batch's content. Only the last pass calls rc_decode(), so a bit flip is
 * reported as a checksum mismatch rather than as whatever it broke.
 */
#include "snap_codec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define BUF_MIN 4096
#define TIME_SIZE 8

/* ---- little-endian helpers ---- */

static uint32_t get_u32(const char *p)
{
    const unsigned char *b = (const unsigned char *)p;
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
           (uint32_t)b[3] << 24;
}

static uint64_t get_u64(const char *p)
{
    const unsigned char *b = (const unsigned char *)p;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

static void put_u32(char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (char)(unsigned char)(v >> (8 * i));
}

static void put_u64(char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (char)(unsigned char)(v >> (8 * i));
}

/* Two's complement without relying on implementation-defined conversion. */
static int64_t u64_to_i64(uint64_t u)
{
    if (u <= (uint64_t)INT64_MAX) return (int64_t)u;
    return -(int64_t)(~u) - 1;
}

static bool tomb_op(enum rc_op op)
{
    return op == RC_OP_DEL || op == RC_OP_EXPIRED;
}

/* ---- decoder ---- */

static enum snap_status fail(struct snap_info *info, enum snap_status st, size_t at,
                             const char *detail)
{
    info->at = at;
    info->detail = detail;
    return st;
}

/* Where a chunk's parts are; filled by frame_chunk(). */
struct frame {
    size_t batch;    /* offset of the batch */
    uint32_t len;    /* its length L (0: the end marker) */
    size_t times;    /* offset of the collection times */
    uint32_t ntimes; /* T */
    size_t next;     /* offset after the chunk */
};

/*
 * The chunk (or end marker) whose length field is at pos. Returns SNAP_OK
 * or SNAP_ERR_TRUNCATED (then *at is where the bytes ran out).
 */
static enum snap_status frame_chunk(const char *data, size_t len, size_t pos,
                                    struct frame *f, size_t *at)
{
    if (len - pos < 4) return *at = len, SNAP_ERR_TRUNCATED;
    f->len = get_u32(data + pos);
    f->batch = pos + 4;
    if (f->len == 0) {
        f->next = f->batch;
        return SNAP_OK;
    }
    if (f->len > len - f->batch) return *at = len, SNAP_ERR_TRUNCATED;
    size_t after = f->batch + f->len;
    if (len - after < 4) return *at = len, SNAP_ERR_TRUNCATED;
    f->ntimes = get_u32(data + after);
    f->times = after + 4;
    if (f->ntimes > (len - f->times) / TIME_SIZE) return *at = len, SNAP_ERR_TRUNCATED;
    f->next = f->times + (size_t)f->ntimes * TIME_SIZE;
    return SNAP_OK;
}

/* Pass 1: header fields and the framing up to the checksum. */
static enum snap_status parse_frame(const char *data, size_t len, struct snap_info *info,
                                    size_t *first_chunk)
{
    if (len < SNAP_HEADER_FIXED) return fail(info, SNAP_ERR_TRUNCATED, len, "ends inside the header");
    info->written_ms = u64_to_i64(get_u64(data + 12));
    size_t n = (unsigned char)data[20] | (size_t)(unsigned char)data[21] << 8;
    if (n < 1 || n > RC_MAX_ID_LEN)
        return fail(info, SNAP_ERR_CORRUPT, 20, "node id length out of range");
    if (len - SNAP_HEADER_FIXED < n) return fail(info, SNAP_ERR_TRUNCATED, len, "ends inside the header");
    info->node_id = data + SNAP_HEADER_FIXED;
    info->node_id_len = n;
    size_t pos = *first_chunk = SNAP_HEADER_FIXED + n;
    size_t at;
    for (;;) {
        struct frame f;
        if (frame_chunk(data, len, pos, &f, &at) != SNAP_OK)
            return fail(info, SNAP_ERR_TRUNCATED, at, "ends inside a chunk of records");
        pos = f.next;
        if (f.len == 0) break;
        info->chunks++;
    }
    if (len - pos < SNAP_END_SIZE - 4)
        return fail(info, SNAP_ERR_TRUNCATED, len, "ends inside the checksum trailer");
    info->records = get_u64(data + pos);
    size_t end = pos + 8 + SNAP_SUM_SIZE;
    if (end != len) return fail(info, SNAP_ERR_TRAILING, end, "bytes after the checksum");
    return SNAP_OK;
}

/* The static phrase for a batch that rc_decode refused. */
static const char *batch_problem(enum rc_status st)
{
    switch (st) {
    case RC_ERR_MAGIC: return "a batch without the wire format's magic";
    case RC_ERR_VERSION: return "a batch of an unknown wire format version";
    case RC_ERR_TRUNCATED: return "a batch shorter than its lengths say";
    case RC_ERR_RANGE: return "a batch with a field out of range";
    case RC_ERR_TRAILING: return "a batch with bytes after its last record";
    case RC_OK: break;
    }
    return "a malformed batch";
}

/* Pass 3: every batch is a snapshot's batch, with matching tombstone times. */
static enum snap_status parse_chunks(const char *data, size_t len, size_t pos,
                                     struct snap_info *info)
{
    uint64_t seq = 0, records = 0;
    size_t at;
    for (;;) {
        struct frame f;
        if (frame_chunk(data, len, pos, &f, &at) != SNAP_OK) /* pass 1 saw it */
            return fail(info, SNAP_ERR_TRUNCATED, at, "ends inside a chunk of records");
        if (f.len == 0) break;
        seq++;
        struct rc_header h;
        struct rc_reader rd;
        enum rc_status rs = rc_decode(data + f.batch, f.len, &h, &rd);
        if (rs != RC_OK) return fail(info, SNAP_ERR_CORRUPT, f.batch, batch_problem(rs));
        if (h.version != RC_VERSION || h.kind != RC_KIND_WRITES || h.incarnation != 0 ||
            h.seq != seq || h.aux != 0 || h.base != 0 || h.total != 0 || h.target_len != 0 ||
            h.count == 0 || h.origin_len != info->node_id_len ||
            memcmp(h.origin, info->node_id, h.origin_len) != 0)
            return fail(info, SNAP_ERR_CORRUPT, f.batch, "a batch whose header is not a snapshot's");
        struct rc_record rec;
        uint32_t tombs = 0;
        for (uint32_t i = 0; rc_next(&rd, &rec); i++) {
            if (rec.op == RC_OP_FLUSH) { /* the watermarks: first records, at most 2 */
                if (seq != 1 || i > 1 || (i == 1 && !info->has_flush))
                    return fail(info, SNAP_ERR_CORRUPT, f.batch, "a flush record out of place");
                info->has_flush = true;
            } else if (tomb_op(rec.op)) {
                tombs++;
            } else if (rec.op != RC_OP_SET) {
                return fail(info, SNAP_ERR_CORRUPT, f.batch, "a record of a kind snapshots do not hold");
            }
        }
        if (tombs != f.ntimes)
            return fail(info, SNAP_ERR_CORRUPT, f.times - 4, "tombstone times do not match the batch");
        info->tombstones += tombs;
        records += h.count;
        pos = f.next;
    }
    if (records != info->records)
        return fail(info, SNAP_ERR_CORRUPT, pos, "record total does not match the chunks");
    return SNAP_OK;
}

enum snap_status snap_parse(const char *data, size_t len, struct snap_info *info)
{
    memset(info, 0, sizeof *info);
    if (!data || len == 0) return fail(info, SNAP_ERR_EMPTY, 0, "the file is empty");
    size_t have = len < SNAP_MAGIC_LEN ? len : SNAP_MAGIC_LEN;
    if (memcmp(data, SNAP_MAGIC, have) != 0)
        return fail(info, SNAP_ERR_MAGIC, 0, "not a Vitamin snapshot (no VTMSNAP magic)");
    if (len < SNAP_MAGIC_LEN + 4) return fail(info, SNAP_ERR_TRUNCATED, len, "ends inside the header");
    info->version = get_u32(data + SNAP_MAGIC_LEN);
    if (info->version != SNAP_VERSION)
        return fail(info, SNAP_ERR_VERSION, SNAP_MAGIC_LEN, "a format version this build does not read");

    size_t first = 0;
    enum snap_status fs = parse_frame(data, len, info, &first);
    bool sum_ok = len >= SNAP_HEADER_FIXED + SNAP_END_SIZE &&
                  XXH3_64bits(data, len - SNAP_SUM_SIZE) == get_u64(data + len - SNAP_SUM_SIZE);
    /* A framing error explains a bad checksum when the file is cut short or
     * has bytes appended; anything else that changed the bytes is a
     * checksum mismatch. */
    if (!sum_ok && fs != SNAP_ERR_TRUNCATED && fs != SNAP_ERR_TRAILING)
        return fail(info, SNAP_ERR_CHECKSUM, len >= SNAP_SUM_SIZE ? len - SNAP_SUM_SIZE : 0,
                    "checksum mismatch (the content changed after it was written)");
    if (fs != SNAP_OK) return fs;
    return parse_chunks(data, len, first, info);
}

const char *snap_status_name(enum snap_status st)
{
    switch (st) {
    case SNAP_OK: return "ok";
    case SNAP_ERR_EMPTY: return "empty";
    case SNAP_ERR_MAGIC: return "not_a_snapshot";
    case SNAP_ERR_VERSION: return "unknown_version";
    case SNAP_ERR_TRUNCATED: return "truncated";
    case SNAP_ERR_CHECKSUM: return "checksum_mismatch";
    case SNAP_ERR_CORRUPT: return "corrupt";
    case SNAP_ERR_TRAILING: return "trailing_bytes";
    }
    return "unknown";
}

void snap_reader_init(struct snap_reader *r, const char *data, size_t len)
{
    memset(r, 0, sizeof *r);
    r->data = data;
    r->len = data ? len : 0;
    size_t n = 0;
    if (r->len >= SNAP_HEADER_FIXED)
        n = (unsigned char)data[20] | (size_t)(unsigned char)data[21] << 8;
    r->pos = r->len >= SNAP_HEADER_FIXED + n ? SNAP_HEADER_FIXED + n : r->len;
}

bool snap_next(struct snap_reader *r, struct rc_record *rec, int64_t *collect_ms)
{
    for (;;) {
        if (r->rd.left > 0 && rc_next(&r->rd, rec)) {
            *collect_ms = 0;
            if (!tomb_op(rec->op)) return true;
            if (r->times_left == 0) return false; /* not from snap_parse */
            *collect_ms = u64_to_i64(get_u64(r->times));
            r->times += TIME_SIZE;
            r->times_left--;
            return true;
        }
        struct frame f;
        size_t at;
        if (r->pos >= r->len || frame_chunk(r->data, r->len, r->pos, &f, &at) != SNAP_OK ||
            f.len == 0)
            return false;
        struct rc_header h;
        if (rc_decode(r->data + f.batch, f.len, &h, &r->rd) != RC_OK) return false;
        r->times = r->data + f.times;
        r->times_left = f.ntimes;
        r->pos = f.next;
        r->seq++;
    }
}

/* ---- encoder ---- */

void snap_buf_free(struct snap_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* Room for n more bytes. Returns 0, or -1 (ENOMEM; b unchanged). */
static int buf_reserve(struct snap_buf *b, size_t n)
{
    if (b->cap - b->len >= n) return 0;
    if (n > SIZE_MAX / 2 - b->len) {
        errno = ENOMEM;
        return -1;
    }
    size_t cap = b->cap ? b->cap : BUF_MIN;
    while (cap < b->len + n) cap *= 2;
    char *nd = realloc(b->data, cap);
    if (!nd) return -1;
    b->data = nd;
    b->cap = cap;
    return 0;
}

static char *buf_tail(struct snap_buf *b, size_t n)
{
    char *at = b->data + b->len;
    b->len += n;
    return at;
}

int snap_encode_header(struct snap_buf *out, const char *node_id, size_t node_id_len,
                       int64_t written_ms)
{
    if (!node_id || node_id_len < 1 || node_id_len > RC_MAX_ID_LEN) {
        errno = EINVAL;
        return -1;
    }
    if (buf_reserve(out, SNAP_HEADER_FIXED + node_id_len) < 0) return -1;
    char *p = buf_tail(out, SNAP_HEADER_FIXED + node_id_len);
    memcpy(p, SNAP_MAGIC, SNAP_MAGIC_LEN);
    put_u32(p + 8, SNAP_VERSION);
    put_u64(p + 12, (uint64_t)written_ms);
    p[20] = (char)(unsigned char)node_id_len;
    p[21] = (char)(unsigned char)(node_id_len >> 8);
    memcpy(p + SNAP_HEADER_FIXED, node_id, node_id_len);
    return 0;
}

int snap_chunk_begin(struct snap_chunk *c, const char *node_id, size_t node_id_len,
                     uint64_t seq)
{
    struct rc_header h = {
        .kind = RC_KIND_WRITES,
        .origin = node_id,
        .origin_len = node_id_len,
        .seq = seq,
    };
    c->times.len = 0;
    c->tombstones = 0;
    return rc_begin(&c->batch, &h);
}

int snap_chunk_add(struct snap_chunk *c, const struct rc_record *rec, int64_t collect_ms)
{
    bool tomb = tomb_op(rec->op);
    if (!tomb && rec->op != RC_OP_SET && rec->op != RC_OP_FLUSH) {
        errno = EINVAL;
        return -1;
    }
    if (tomb && buf_reserve(&c->times, TIME_SIZE) < 0) return -1;
    if (rc_append(&c->batch, rec) < 0) return -1;
    if (tomb) {
        put_u64(buf_tail(&c->times, TIME_SIZE), (uint64_t)collect_ms);
        c->tombstones++;
    }
    return 0;
}

uint32_t snap_chunk_records(const struct snap_chunk *c)
{
    return rc_count(&c->batch);
}

size_t snap_chunk_size(const struct snap_chunk *c)
{
    return 4 + c->batch.len + 4 + c->times.len;
}

int snap_chunk_encode(const struct snap_chunk *c, struct snap_buf *out)
{
    if (snap_chunk_records(c) == 0 || c->batch.len > UINT32_MAX) {
        errno = EINVAL;
        return -1;
    }
    if (buf_reserve(out, snap_chunk_size(c)) < 0) return -1;
    char *p = buf_tail(out, snap_chunk_size(c));
    put_u32(p, (uint32_t)c->batch.len);
    memcpy(p + 4, c->batch.data, c->batch.len);
    p += 4 + c->batch.len;
    put_u32(p, c->tombstones);
    if (c->times.len) memcpy(p + 4, c->times.data, c->times.len);
    return 0;
}

void snap_chunk_free(struct snap_chunk *c)
{
    rc_buf_free(&c->batch);
    snap_buf_free(&c->times);
    c->tombstones = 0;
}

int snap_encode_end(struct snap_buf *out, uint64_t records)
{
    if (buf_reserve(out, 12) < 0) return -1;
    char *p = buf_tail(out, 12);
    put_u32(p, 0);
    put_u64(p + 4, records);
    return 0;
}

int snap_encode_sum(struct snap_buf *out, uint64_t checksum)
{
    if (buf_reserve(out, SNAP_SUM_SIZE) < 0) return -1;
    put_u64(buf_tail(out, SNAP_SUM_SIZE), checksum);
    return 0;
}
