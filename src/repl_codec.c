/*
 * repl_codec.c - encoder and decoder of replication batches (wire format
 * version 2, and version 1 on input; docs/replication.md is normative,
 * repl_codec.h mirrors it).
 *
 * Owns nothing but bytes: no I/O, no global state, and the decoder never
 * allocates. Every integer is little-endian and is read or written one byte
 * at a time (get_u* / put_u*), so the code neither depends on the host's
 * byte order nor makes unaligned or type-punned accesses.
 *
 *   header (version 2)                                   records (count)
 *   +------+---+----+----+------+---+---+---+----+-----+----+------+----+  +---
 *   | VTMB | 2 |kind|N:16|origin|inc|seq|aux|base|total|T:16|target|C:32|  |...
 *   +------+---+----+----+------+---+---+---+----+-----+----+------+----+  +---
 *   0      4   5    6    8     8+N             32+N  40+N 48+N 50+N  50+N+T
 *
 *   record: op:8 K:16 V:32 flags:32 expire_ms:64 version:64 origin:32
 *           exp_version:64 exp_origin:32 key[K] value[V]
 *           '------------ RC_RECORD_FIXED = 43 bytes -------------'
 *   Version 1 has no base/total and 27-byte records (no flags, no expiry
 *   stamp); both versions share the header's first 32+N bytes.
 *
 * Decoder invariants:
 *  - rc_decode() walks the entire batch before it reports RC_OK; a batch is
 *    accepted or dropped as a whole, so the caller never applies half of it.
 *  - Every read goes through struct cursor, which compares the wanted size
 *    against the bytes remaining (len - pos, which cannot wrap because
 *    pos <= len always holds). Untrusted lengths are never added together.
 *  - A count that cannot fit (count > remaining / fixed record size) is
 *    rejected before the record loop; in any case each record consumes at
 *    least the fixed size, so the loop is bounded by len / 27.
 *  - rc_next() re-parses with the same function that validated, so it
 *    cannot read out of bounds even when handed a reader it should not get.
 *  - On any error *h and *rd are left zeroed: rc_next() then yields nothing.
 *
 * Encoder invariants:
 *  - rc_begin() and rc_append() refuse (-1, errno EINVAL) anything
 *    rc_decode() would reject, so this encoder cannot emit a bad batch.
 *  - A failed rc_append() (EINVAL, ENOMEM, EOVERFLOW) leaves the batch as it
 *    was: space is reserved before anything is written, and the count is
 *    patched last.
 *  - The count field is found again from the header each time (its offset
 *    depends on N and T), so struct rc_buf stays a plain byte buffer.
 *  - The encoder writes version 2 only.
 */
#include "repl_codec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC_LEN 4
#define BUF_MIN 256
/* Header bytes that do not depend on N and T: magic, version, kind, N,
 * incarnation, seq, aux, base, total, T and count (version 2). */
#define HEADER_FIXED (4 + 1 + 1 + 2 + 8 + 8 + 8 + 8 + 8 + 2 + 4)
#define COUNT_SIZE 4

/* ---- little-endian helpers ---- */

static uint16_t get_u16(const unsigned char *p)
{
    unsigned char b[2];
    memcpy(b, p, sizeof b);
    return (uint16_t)(b[0] | (unsigned)b[1] << 8);
}

static uint32_t get_u32(const unsigned char *p)
{
    unsigned char b[4];
    memcpy(b, p, sizeof b);
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
           (uint32_t)b[3] << 24;
}

static uint64_t get_u64(const unsigned char *p)
{
    unsigned char b[8];
    memcpy(b, p, sizeof b);
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

static void put_u16(unsigned char *p, uint16_t v)
{
    unsigned char b[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
    memcpy(p, b, sizeof b);
}

static void put_u32(unsigned char *p, uint32_t v)
{
    unsigned char b[4];
    for (int i = 0; i < 4; i++) b[i] = (unsigned char)(v >> (8 * i));
    memcpy(p, b, sizeof b);
}

static void put_u64(unsigned char *p, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
    memcpy(p, b, sizeof b);
}

/* Two's complement without relying on implementation-defined conversion. */
static int64_t u64_to_i64(uint64_t u)
{
    if (u <= (uint64_t)INT64_MAX) return (int64_t)u;
    return -(int64_t)(~u) - 1;
}

/* ---- decoder ---- */

/* A bounds-checked read position over untrusted bytes; pos <= len. */
struct cursor {
    const unsigned char *p;
    size_t len;
    size_t pos;
};

static size_t cur_left(const struct cursor *c)
{
    return c->len - c->pos;
}

/* The next n bytes, or NULL (nothing consumed) if fewer remain. */
static const unsigned char *cur_take(struct cursor *c, size_t n)
{
    if (n > cur_left(c)) return NULL;
    const unsigned char *at = c->p + c->pos;
    c->pos += n;
    return at;
}

/* Does a record of this op carry a value (and client flags)? */
static bool value_op(unsigned op)
{
    return op == RC_OP_SET || op == RC_OP_EXPIRE;
}

/* The op every record of a kind must have, or 0: any of SET .. EXPIRED.
 * The ops NODE, SUMS and HASHES appear in their kinds only. */
static unsigned kind_op(unsigned kind)
{
    switch (kind) {
    case RC_KIND_DIGESTS:
    case RC_KIND_RANGES:
    case RC_KIND_ROOT: return RC_OP_NODE;
    case RC_KIND_SUMMARY: return RC_OP_SUMS;
    case RC_KIND_WANTS: return RC_OP_HASHES;
    default: return 0;
    }
}

/* Is the record's op the one its kind allows? */
static bool op_fits_kind(unsigned op, unsigned kind)
{
    unsigned want = kind_op(kind);
    return want ? op == want : op <= RC_OP_EXPIRED;
}

/* Ops whose records have no key. */
static bool keyless_op(unsigned op)
{
    return op == RC_OP_FLUSH || op == RC_OP_SUMS || op == RC_OP_HASHES;
}

/* Ops whose value has a size of their own and whose flags, expiry and
 * stamps are 0: NODE, SUMS, HASHES. */
static bool sized_op(unsigned op)
{
    return op >= RC_OP_NODE;
}

/* A sized op's key and value sizes: NODE names a node of the digest tree
 * and holds 0, 8 or 128 bytes; SUMS and HASHES hold n >= 1 entries. */
static bool sized_ok(unsigned op, const unsigned char *key, size_t klen, size_t vlen)
{
    if (op == RC_OP_SUMS) return vlen > 0 && vlen % RC_SUM_SIZE == 0;
    if (op == RC_OP_HASHES) return vlen > 0 && vlen % RC_HASH_SIZE == 0;
    if (klen != RC_NODE_KEY_LEN || (vlen != 0 && vlen != 8 && vlen != 128)) return false;
    unsigned level = key[0];
    uint32_t index = get_u32(key + 1);
    return level < RC_NODE_LEVELS && index < (UINT32_C(1) << (4 * level));
}

static size_t record_fixed(unsigned version)
{
    return version == 1 ? RC_RECORD_FIXED_V1 : RC_RECORD_FIXED;
}

/*
 * Parse one record of a batch of the given format version at c. Returns
 * RC_OK (c moved past it, r filled), RC_ERR_TRUNCATED or RC_ERR_RANGE (c
 * and r unspecified).
 */
static enum rc_status parse_record(struct cursor *c, unsigned version, unsigned kind,
                                   struct rc_record *r)
{
    const unsigned char *f = cur_take(c, record_fixed(version));
    if (!f) return RC_ERR_TRUNCATED;
    unsigned op = f[0];
    size_t klen = get_u16(f + 1);
    uint32_t vlen = get_u32(f + 3);
    unsigned last_op = version == 1 ? RC_OP_EXPIRE : RC_OP_HASHES;
    if (op < RC_OP_SET || op > last_op) return RC_ERR_RANGE;
    if (!op_fits_kind(op, kind)) return RC_ERR_RANGE;
    if (keyless_op(op) ? klen != 0 : (klen < 1 || klen > RC_MAX_KEY_LEN)) return RC_ERR_RANGE;
    if (!value_op(op) && !sized_op(op) && vlen != 0) return RC_ERR_RANGE;
    const unsigned char *key = cur_take(c, klen);
    if (!key) return RC_ERR_TRUNCATED;
    if (sized_op(op) && (!sized_ok(op, key, klen, vlen) || get_u64(f + 11) ||
                         get_u64(f + 19) || get_u32(f + 27) || get_u64(f + 31) ||
                         get_u32(f + 39)))
        return RC_ERR_RANGE;
    /* vlen (up to 2^32-1) is only ever compared with what remains. */
    if (vlen > cur_left(c)) return RC_ERR_TRUNCATED;
    const unsigned char *value = cur_take(c, vlen);

    r->op = (enum rc_op)op;
    if (!value_op(op) && version != 1 && get_u32(f + 7) != 0) return RC_ERR_RANGE;
    r->key = (const char *)key;
    r->key_len = klen;
    r->value = (const char *)value;
    r->value_len = vlen;
    if (version == 1) {
        r->client_flags = 0;
        r->expire_ms = u64_to_i64(get_u64(f + 7));
        r->version = r->exp_version = get_u64(f + 15);
        r->origin_tag = r->exp_origin_tag = get_u32(f + 23);
    } else {
        r->client_flags = get_u32(f + 7);
        r->expire_ms = u64_to_i64(get_u64(f + 11));
        r->version = get_u64(f + 19);
        r->origin_tag = get_u32(f + 27);
        r->exp_version = get_u64(f + 31);
        r->exp_origin_tag = get_u32(f + 39);
    }
    return RC_OK;
}

/* Header fields up to and including the count; c ends at the first record. */
static enum rc_status parse_header(struct cursor *c, struct rc_header *h)
{
    const unsigned char *f;
    size_t have = cur_left(c) < MAGIC_LEN ? cur_left(c) : MAGIC_LEN;

    /* A short foreign body is "not ours", a short prefix of ours is cut. */
    if (have > 0 && memcmp(c->p, RC_MAGIC, have) != 0) return RC_ERR_MAGIC;
    if (!cur_take(c, MAGIC_LEN)) return RC_ERR_TRUNCATED;

    if (!(f = cur_take(c, 1))) return RC_ERR_TRUNCATED;
    if (f[0] != 1 && f[0] != RC_VERSION) return RC_ERR_VERSION;
    h->version = f[0];

    if (!(f = cur_take(c, 1))) return RC_ERR_TRUNCATED;
    if (f[0] < RC_KIND_WRITES || f[0] > (h->version == 1 ? RC_KIND_SYNC_DONE : RC_KIND_WANTS))
        return RC_ERR_RANGE;
    h->kind = (enum rc_kind)f[0];

    if (!(f = cur_take(c, 2))) return RC_ERR_TRUNCATED;
    h->origin_len = get_u16(f);
    if (h->origin_len < 1 || h->origin_len > RC_MAX_ID_LEN) return RC_ERR_RANGE;
    if (!(f = cur_take(c, h->origin_len))) return RC_ERR_TRUNCATED;
    h->origin = (const char *)f;

    if (!(f = cur_take(c, 8 + 8 + 8))) return RC_ERR_TRUNCATED;
    h->incarnation = get_u64(f);
    h->seq = get_u64(f + 8);
    h->aux = get_u64(f + 16);
    if (h->version != 1) {
        if (!(f = cur_take(c, 8 + 8))) return RC_ERR_TRUNCATED;
        h->base = get_u64(f);
        h->total = get_u64(f + 8);
    }
    if (!(f = cur_take(c, 2))) return RC_ERR_TRUNCATED;
    h->target_len = get_u16(f);
    if (h->target_len > RC_MAX_ID_LEN) return RC_ERR_RANGE;
    if (!(f = cur_take(c, h->target_len))) return RC_ERR_TRUNCATED;
    h->target = (const char *)f;

    if (!(f = cur_take(c, COUNT_SIZE))) return RC_ERR_TRUNCATED;
    h->count = get_u32(f);
    return RC_OK;
}

/*
 * Returns RC_OK (h filled, rd ready for h->count calls of rc_next), or the
 * first problem found: RC_ERR_MAGIC, RC_ERR_VERSION, RC_ERR_TRUNCATED,
 * RC_ERR_RANGE, RC_ERR_TRAILING (then *h and *rd are zeroed).
 */
enum rc_status rc_decode(const char *data, size_t len, struct rc_header *h,
                         struct rc_reader *rd)
{
    struct cursor c = {(const unsigned char *)data, data ? len : 0, 0};
    struct rc_header hd;
    struct rc_record rec;
    enum rc_status st;

    memset(h, 0, sizeof *h);
    memset(rd, 0, sizeof *rd);
    memset(&hd, 0, sizeof hd);

    if ((st = parse_header(&c, &hd)) != RC_OK) return st;
    size_t first = c.pos;
    if (hd.count > cur_left(&c) / record_fixed(hd.version)) return RC_ERR_TRUNCATED;
    for (uint32_t i = 0; i < hd.count; i++)
        if ((st = parse_record(&c, hd.version, hd.kind, &rec)) != RC_OK) return st;
    if (cur_left(&c) != 0) return RC_ERR_TRAILING;

    *h = hd;
    rd->data = data;
    rd->len = c.len;
    rd->pos = first;
    rd->left = hd.count;
    rd->version = hd.version;
    rd->kind = hd.kind;
    return RC_OK;
}

bool rc_next(struct rc_reader *rd, struct rc_record *r)
{
    if (rd->left == 0 || rd->pos > rd->len) return false;
    struct cursor c = {(const unsigned char *)rd->data, rd->len, rd->pos};
    if (parse_record(&c, rd->version, rd->kind, r) != RC_OK) { /* only a reader rc_decode refused */
        rd->left = 0;
        return false;
    }
    rd->pos = c.pos;
    rd->left--;
    return true;
}

const char *rc_status_name(enum rc_status st)
{
    switch (st) {
    case RC_OK: return "ok";
    case RC_ERR_MAGIC: return "bad_magic";
    case RC_ERR_VERSION: return "bad_version";
    case RC_ERR_TRUNCATED: return "truncated";
    case RC_ERR_RANGE: return "out_of_range";
    case RC_ERR_TRAILING: return "trailing_bytes";
    }
    return "unknown";
}

/* ---- encoder ---- */

void rc_buf_free(struct rc_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* Make room for n more bytes, doubling. Returns 0, or -1 (b unchanged). */
static int buf_reserve(struct rc_buf *b, size_t n)
{
    if (b->cap - b->len >= n) return 0;
    if (n > SIZE_MAX - b->len) {
        errno = ENOMEM;
        return -1;
    }
    size_t need = b->len + n;
    size_t cap = b->cap ? b->cap : BUF_MIN;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *nd = realloc(b->data, cap);
    if (!nd) return -1; /* realloc set ENOMEM */
    b->data = nd;
    b->cap = cap;
    return 0;
}

/* Bytes at the end of b; the caller has reserved them. */
static unsigned char *buf_tail(struct rc_buf *b, size_t n)
{
    unsigned char *at = (unsigned char *)b->data + b->len;
    b->len += n;
    return at;
}

static void put_bytes(unsigned char *p, const char *src, size_t n)
{
    if (n > 0) memcpy(p, src, n); /* src may be NULL when n == 0 */
}

/* Offset of the count field of the batch in b, or 0 if b holds none. */
static size_t count_offset(const struct rc_buf *b)
{
    const unsigned char *p = (const unsigned char *)b->data;
    if (!p || b->len < HEADER_FIXED || memcmp(p, RC_MAGIC, MAGIC_LEN) != 0)
        return 0;
    size_t n = get_u16(p + 6);
    if (n < 1 || n > RC_MAX_ID_LEN || b->len < HEADER_FIXED + n) return 0;
    size_t t = get_u16(p + 48 + n);
    if (t > RC_MAX_ID_LEN || b->len < HEADER_FIXED + n + t) return 0;
    return 50 + n + t;
}

/*
 * Reset b and write a header with count 0 (h->count is ignored). b may be
 * zeroed or hold an earlier batch, whose memory is reused. Returns 0, or -1
 * with errno EINVAL (h out of range) or ENOMEM.
 */
int rc_begin(struct rc_buf *b, const struct rc_header *h)
{
    if (h->kind < RC_KIND_WRITES || h->kind > RC_KIND_WANTS ||
        h->origin_len < 1 || h->origin_len > RC_MAX_ID_LEN || !h->origin ||
        h->target_len > RC_MAX_ID_LEN || (h->target_len && !h->target)) {
        errno = EINVAL;
        return -1;
    }
    b->len = 0;
    size_t size = HEADER_FIXED + h->origin_len + h->target_len;
    if (buf_reserve(b, size) < 0) return -1;
    unsigned char *p = buf_tail(b, size);

    memcpy(p, RC_MAGIC, MAGIC_LEN);
    p[4] = RC_VERSION;
    p[5] = (unsigned char)h->kind;
    put_u16(p + 6, (uint16_t)h->origin_len);
    p += 8;
    put_bytes(p, h->origin, h->origin_len);
    p += h->origin_len;
    put_u64(p, h->incarnation);
    put_u64(p + 8, h->seq);
    put_u64(p + 16, h->aux);
    put_u64(p + 24, h->base);
    put_u64(p + 32, h->total);
    put_u16(p + 40, (uint16_t)h->target_len);
    p += 42;
    put_bytes(p, h->target, h->target_len);
    put_u32(p + h->target_len, 0);
    return 0;
}

/*
 * Append r and bump the count. Returns 0, or -1 with errno EINVAL (r out of
 * range, or no rc_begin), EOVERFLOW (2^32-1 records already) or ENOMEM;
 * on -1 the batch is unchanged.
 */
int rc_append(struct rc_buf *b, const struct rc_record *r)
{
    size_t off = count_offset(b);
    bool sized = sized_op(r->op);
    if (off == 0 || r->op < RC_OP_SET || r->op > RC_OP_HASHES ||
        !op_fits_kind(r->op, (unsigned char)b->data[5]) ||
        (keyless_op(r->op) ? r->key_len != 0
                           : (r->key_len < 1 || r->key_len > RC_MAX_KEY_LEN || !r->key)) ||
        r->value_len > UINT32_MAX || (r->value_len && !r->value) ||
        (!value_op(r->op) && !sized && (r->value_len != 0 || r->client_flags != 0)) ||
        (sized && (!sized_ok(r->op, (const unsigned char *)r->key, r->key_len, r->value_len) ||
                   r->client_flags || r->expire_ms || r->version || r->origin_tag ||
                   r->exp_version || r->exp_origin_tag))) {
        errno = EINVAL;
        return -1;
    }
    uint32_t count = get_u32((const unsigned char *)b->data + off);
    if (count == UINT32_MAX) {
        errno = EOVERFLOW;
        return -1;
    }
    size_t size = rc_record_size(r->key_len, r->value_len);
    if (buf_reserve(b, size) < 0) return -1;
    unsigned char *p = buf_tail(b, size);

    p[0] = (unsigned char)r->op;
    put_u16(p + 1, (uint16_t)r->key_len);
    put_u32(p + 3, (uint32_t)r->value_len);
    put_u32(p + 7, r->client_flags);
    put_u64(p + 11, (uint64_t)r->expire_ms);
    put_u64(p + 19, r->version);
    put_u32(p + 27, r->origin_tag);
    put_u64(p + 31, r->exp_version);
    put_u32(p + 39, r->exp_origin_tag);
    put_bytes(p + RC_RECORD_FIXED, r->key, r->key_len);
    put_bytes(p + RC_RECORD_FIXED + r->key_len, r->value, r->value_len);
    put_u32((unsigned char *)b->data + off, count + 1);
    return 0;
}

/* Records in the batch in b; 0 if b holds no batch. */
uint32_t rc_count(const struct rc_buf *b)
{
    size_t off = count_offset(b);
    if (off == 0) return 0;
    return get_u32((const unsigned char *)b->data + off);
}

/* ---- entries of SUMS and HASHES records ---- */

void rc_sum_put(char *out, const struct rc_sum *s)
{
    unsigned char *p = (unsigned char *)out;
    put_u64(p, s->hash);
    put_u64(p + 8, s->version);
    put_u32(p + 16, s->origin_tag);
    put_u64(p + 20, s->exp_version);
    put_u32(p + 28, s->exp_origin_tag);
}

void rc_sum_get(const struct rc_record *r, size_t i, struct rc_sum *s)
{
    const unsigned char *p = (const unsigned char *)r->value + i * RC_SUM_SIZE;
    s->hash = get_u64(p);
    s->version = get_u64(p + 8);
    s->origin_tag = get_u32(p + 16);
    s->exp_version = get_u64(p + 20);
    s->exp_origin_tag = get_u32(p + 28);
}

void rc_hash_put(char *out, uint64_t hash)
{
    put_u64((unsigned char *)out, hash);
}

uint64_t rc_hash_get(const struct rc_record *r, size_t i)
{
    return get_u64((const unsigned char *)r->value + i * RC_HASH_SIZE);
}

/* RC_RECORD_FIXED + key_len + value_len, or SIZE_MAX if that overflows. */
size_t rc_record_size(size_t key_len, size_t value_len)
{
    if (key_len > SIZE_MAX - RC_RECORD_FIXED) return SIZE_MAX;
    size_t n = RC_RECORD_FIXED + key_len;
    if (value_len > SIZE_MAX - n) return SIZE_MAX;
    return n + value_len;
}
