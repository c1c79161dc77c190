/*
 * test_repl_codec.c - the replication wire format (version 2, and version 1
 * on input): round trips of every kind and op, every decoder error from
 * hand-made bad input, truncation at every byte, lying counts, the encoder
 * refusing what the decoder rejects, version-1 batches built by hand, the
 * range-digest (NODE) and key-summary (SUMS, HASHES) records, and
 * golden batches that pin the bytes documented in docs/replication.md
 * (tests/e2e/test_wire_format.py checks the Python codec against the same
 * hex).
 *
 * Every decode runs on a heap copy of exactly the input's length, so ASan
 * reports any read past the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repl_codec.h"

/* ---- helpers ---- */

/* Decode a copy of data[0..len) that ends exactly where the input ends. */
static enum rc_status decode_copy(const char *data, size_t len,
                                  struct rc_header *h, struct rc_reader *rd,
                                  char **copy)
{
    *copy = malloc(len ? len : 1);
    assert_non_null(*copy);
    if (len) memcpy(*copy, data, len);
    return rc_decode(*copy, len, h, rd);
}

/* Status of decoding data[0..len); h and rd are not needed afterwards. */
static enum rc_status status_of(const char *data, size_t len)
{
    struct rc_header h;
    struct rc_reader rd;
    char *copy;
    enum rc_status st = decode_copy(data, len, &h, &rd, &copy);
    if (st != RC_OK) {
        struct rc_record r;
        assert_int_equal(rd.left, 0);
        assert_int_equal(h.count, 0);
        assert_false(rc_next(&rd, &r));
    }
    free(copy);
    return st;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Hex with optional spaces -> malloc'd bytes; *len set. */
static char *unhex(const char *hex, size_t *len)
{
    char *out = malloc(strlen(hex) / 2 + 1);
    size_t n = 0;
    int hi = -1;
    assert_non_null(out);
    for (const char *p = hex; *p; p++) {
        if (*p == ' ') continue;
        int v = hexval(*p);
        assert_true(v >= 0);
        if (hi < 0) {
            hi = v;
        } else {
            out[n++] = (char)(hi << 4 | v);
            hi = -1;
        }
    }
    assert_true(hi < 0);
    *len = n;
    return out;
}

static struct rc_header header(enum rc_kind kind, const char *origin,
                               uint64_t inc, uint64_t seq, uint64_t aux,
                               const char *target)
{
    struct rc_header h = {
        .kind = kind,
        .origin = origin,
        .origin_len = strlen(origin),
        .incarnation = inc,
        .seq = seq,
        .aux = aux,
        .target = target,
        .target_len = target ? strlen(target) : 0,
    };
    return h;
}

/* A record with both registers stamped (ver, tag), as a set makes it. */
static struct rc_record rec(enum rc_op op, const char *key, const char *value,
                            int64_t expire_ms, uint64_t ver, uint32_t tag)
{
    struct rc_record r = {
        .op = op,
        .key = key,
        .key_len = key ? strlen(key) : 0,
        .value = value,
        .value_len = value ? strlen(value) : 0,
        .expire_ms = expire_ms,
        .version = ver,
        .origin_tag = tag,
        .exp_version = ver,
        .exp_origin_tag = tag,
    };
    return r;
}

static void assert_header_equal(const struct rc_header *a,
                                const struct rc_header *b, uint32_t count)
{
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->origin_len, b->origin_len);
    assert_memory_equal(a->origin, b->origin, a->origin_len);
    assert_true(a->incarnation == b->incarnation);
    assert_true(a->seq == b->seq);
    assert_true(a->aux == b->aux);
    assert_true(a->base == b->base);
    assert_true(a->total == b->total);
    assert_int_equal(a->target_len, b->target_len);
    if (a->target_len) assert_memory_equal(a->target, b->target, a->target_len);
    assert_int_equal(b->count, count);
}

static void assert_record_equal(const struct rc_record *a,
                                const struct rc_record *b)
{
    assert_int_equal(a->op, b->op);
    assert_int_equal(a->key_len, b->key_len);
    if (a->key_len) assert_memory_equal(a->key, b->key, a->key_len);
    assert_int_equal(a->value_len, b->value_len);
    if (a->value_len) assert_memory_equal(a->value, b->value, a->value_len);
    assert_int_equal(a->client_flags, b->client_flags);
    assert_true(a->expire_ms == b->expire_ms);
    assert_true(a->version == b->version);
    assert_int_equal(a->origin_tag, b->origin_tag);
    assert_true(a->exp_version == b->exp_version);
    assert_int_equal(a->exp_origin_tag, b->exp_origin_tag);
}

/* Encode h + recs[0..n), decode, and compare everything. */
static void round_trip(const struct rc_header *h, const struct rc_record *recs,
                       uint32_t n)
{
    struct rc_buf b = {0};
    assert_int_equal(rc_begin(&b, h), 0);
    assert_int_equal(rc_count(&b), 0);
    assert_int_equal(b.len, 54 + h->origin_len + h->target_len);
    for (uint32_t i = 0; i < n; i++) {
        size_t before = b.len;
        assert_int_equal(rc_append(&b, &recs[i]), 0);
        assert_int_equal(rc_count(&b), i + 1);
        assert_int_equal(b.len - before,
                         rc_record_size(recs[i].key_len, recs[i].value_len));
    }

    struct rc_header got;
    struct rc_reader rd;
    struct rc_record r;
    char *copy;
    assert_int_equal(decode_copy(b.data, b.len, &got, &rd, &copy), RC_OK);
    assert_int_equal(got.version, 2);
    assert_int_equal(rd.version, 2);
    assert_header_equal(h, &got, n);
    for (uint32_t i = 0; i < n; i++) {
        assert_true(rc_next(&rd, &r));
        assert_record_equal(&recs[i], &r);
    }
    assert_false(rc_next(&rd, &r));
    assert_false(rc_next(&rd, &r));
    free(copy);
    rc_buf_free(&b);
}

static void put_le(char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) p[i] = (char)(v >> (8 * i));
}

/* ---- version 1, built by hand (the encoder writes version 2 only) ---- */

struct v1buf {
    char data[8192];
    size_t len;
};

static void v1_put(struct v1buf *b, const void *p, size_t n)
{
    assert_true(b->len + n <= sizeof b->data);
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void v1_le(struct v1buf *b, uint64_t v, int n)
{
    char tmp[8];
    put_le(tmp, v, n);
    v1_put(b, tmp, (size_t)n);
}

/* Header of the version-1 layout: magic 1 kind N origin inc seq aux T
 * target count (38+N+T bytes). */
static void v1_header(struct v1buf *b, unsigned kind, const char *origin,
                      uint64_t inc, uint64_t seq, uint64_t aux,
                      const char *target, uint32_t count)
{
    b->len = 0;
    v1_put(b, "VTMB", 4);
    v1_le(b, 1, 1);
    v1_le(b, kind, 1);
    v1_le(b, strlen(origin), 2);
    v1_put(b, origin, strlen(origin));
    v1_le(b, inc, 8);
    v1_le(b, seq, 8);
    v1_le(b, aux, 8);
    size_t tl = target ? strlen(target) : 0;
    v1_le(b, tl, 2);
    v1_put(b, target, tl);
    v1_le(b, count, 4);
}

/* A version-1 record: op K V expire_ms version origin key value (27+K+V). */
static void v1_record(struct v1buf *b, unsigned op, const char *key,
                      size_t klen, const char *value, size_t vlen,
                      int64_t expire_ms, uint64_t ver, uint32_t tag)
{
    v1_le(b, op, 1);
    v1_le(b, klen, 2);
    v1_le(b, vlen, 4);
    v1_le(b, (uint64_t)expire_ms, 8);
    v1_le(b, ver, 8);
    v1_le(b, tag, 4);
    v1_put(b, key, klen);
    v1_put(b, value, vlen);
}

/* What a version-2 reader makes of a version-1 record: flags 0, expiry
 * stamped like the value. */
static struct rc_record as_v1(struct rc_record r)
{
    r.client_flags = 0;
    r.exp_version = r.version;
    r.exp_origin_tag = r.origin_tag;
    return r;
}

static void v1_record_of(struct v1buf *b, const struct rc_record *r)
{
    v1_record(b, r->op, r->key, r->key_len, r->value, r->value_len,
              r->expire_ms, r->version, r->origin_tag);
}

/* ---- round trips ---- */

static void test_round_trip_empty_every_kind(void **state)
{
    (void)state;
    for (int k = RC_KIND_WRITES; k <= RC_KIND_SYNC_DONE; k++) {
        const char *target = k == RC_KIND_WRITES ? NULL : "node-b";
        struct rc_header h = header((enum rc_kind)k, "node-a",
                                    0xfedcba9876543210ull, k == 1 ? 1 : 0,
                                    k == 1 ? 0 : 0x1122334455667788ull, target);
        if (k >= RC_KIND_SYNC_DATA) h.base = 0x0102030405060708ull;
        if (k == RC_KIND_SYNC_DONE) h.total = 123456789;
        round_trip(&h, NULL, 0);
    }
}

static void test_round_trip_one_binary(void **state)
{
    (void)state;
    static const char key[] = {'\0', 'k', '\xff', '\n', ' ', '"', '\x80'};
    static const char val[] = {'\0', '\0', '\r', '\n', '\xfe', '\x01'};
    struct rc_header h = header(RC_KIND_WRITES, "n\0x", 1, 1, 0, NULL);
    h.origin_len = 3; /* an id with a NUL byte is still just bytes */
    struct rc_record r = {
        .op = RC_OP_SET, .key = key, .key_len = sizeof key,
        .value = val, .value_len = sizeof val, .client_flags = 0x80000001u,
        .expire_ms = 1700000000000, .version = 0xffffffffffffffffull,
        .origin_tag = 0xffffffffu, .exp_version = 0x8000000000000000ull,
        .exp_origin_tag = 0x7fffffffu,
    };
    round_trip(&h, &r, 1);
}

/* Every op, with its constraints: FLUSH has no key; DEL, FLUSH and EXPIRED
 * no value and flags 0; the stamps of the two registers differ. */
static void test_round_trip_every_op_every_kind(void **state)
{
    (void)state;
    struct rc_record r[7] = {
        rec(RC_OP_SET, "k1", "v1", 0, 10, 2),
        rec(RC_OP_SET, "k2", "", 0, 11, 2), /* empty value */
        rec(RC_OP_DEL, "k3", NULL, 0, 12, 2),
        rec(RC_OP_EXPIRE, "k4", "v4", 1700000060000, 5, 3),
        rec(RC_OP_FLUSH, NULL, NULL, 0, 14, 2),
        rec(RC_OP_EXPIRED, "k6", NULL, 1700000000001, 15, 4),
        rec(RC_OP_EXPIRE, "k7", "", 0, 16, 2), /* a persist, empty value */
    };
    r[0].client_flags = 0xdeadbeef;
    r[3].client_flags = 7;
    r[3].exp_version = 13; /* an expiry newer than the value it was made on */
    r[3].exp_origin_tag = 9;
    r[5].exp_version = 99;
    r[5].exp_origin_tag = 1;
    for (int k = RC_KIND_WRITES; k <= RC_KIND_SYNC_DONE; k++) {
        struct rc_header h = header((enum rc_kind)k, "a", 2, 3, 4, "bb");
        h.base = 5;
        h.total = 6;
        round_trip(&h, r, 7);
    }
}

static void test_round_trip_limits(void **state)
{
    (void)state;
    char origin[RC_MAX_ID_LEN + 1], target[RC_MAX_ID_LEN + 1];
    static char key[RC_MAX_KEY_LEN];
    memset(origin, 'o', RC_MAX_ID_LEN);
    origin[RC_MAX_ID_LEN] = '\0';
    memset(target, '\xff', RC_MAX_ID_LEN);
    target[RC_MAX_ID_LEN] = '\0';
    for (size_t i = 0; i < sizeof key; i++) key[i] = (char)i;
    struct rc_header h = header(RC_KIND_SYNC_DATA, origin, UINT64_MAX,
                                UINT64_MAX, UINT64_MAX, target);
    h.base = UINT64_MAX;
    h.total = UINT64_MAX;
    struct rc_record r[5] = {
        {.op = RC_OP_SET, .key = key, .key_len = RC_MAX_KEY_LEN, .value = key,
         .value_len = RC_MAX_KEY_LEN, .client_flags = UINT32_MAX,
         .expire_ms = INT64_MAX, .version = UINT64_MAX,
         .origin_tag = UINT32_MAX, .exp_version = UINT64_MAX,
         .exp_origin_tag = UINT32_MAX},
        {.op = RC_OP_DEL, .key = key, .key_len = RC_MAX_KEY_LEN,
         .expire_ms = INT64_MIN},
        {.op = RC_OP_EXPIRE, .key = key, .key_len = 1, .value = "",
         .expire_ms = -1},
        {.op = RC_OP_FLUSH, .version = UINT64_MAX, .origin_tag = UINT32_MAX,
         .expire_ms = INT64_MIN, .exp_version = 1, .exp_origin_tag = 2},
        {.op = RC_OP_EXPIRED, .key = key, .key_len = RC_MAX_KEY_LEN,
         .expire_ms = INT64_MAX, .exp_version = UINT64_MAX},
    };
    round_trip(&h, r, 5);
}

static void test_round_trip_1000(void **state)
{
    (void)state;
    enum { N = 1000 };
    static char bytes[4096];
    static struct rc_record r[N];
    for (size_t i = 0; i < sizeof bytes; i++) bytes[i] = (char)(i * 7 + 3);
    for (uint32_t i = 0; i < N; i++) {
        enum rc_op op = (enum rc_op)(1 + i % 5);
        bool has_value = op == RC_OP_SET || op == RC_OP_EXPIRE;
        size_t klen = 1 + (i * 37) % RC_MAX_KEY_LEN;
        if (i % 100 == 0) klen = RC_MAX_KEY_LEN;
        if (op == RC_OP_FLUSH) klen = 0;
        size_t vlen = has_value ? (i * 131) % 3000 : 0;
        r[i] = (struct rc_record){
            .op = op, .key = bytes + i % 97, .key_len = klen,
            .value = bytes + i % 89, .value_len = vlen,
            .client_flags = has_value ? i * 40503u : 0,
            .expire_ms = (int64_t)i * 1000 - 5000,
            .version = (uint64_t)i << 16 | i, .origin_tag = i * 2654435761u,
            .exp_version = (uint64_t)(i + 7) << 16, .exp_origin_tag = ~i,
        };
    }
    struct rc_header h = header(RC_KIND_SYNC_DATA, "origin", 5, 0, 77, "dst");
    h.base = 1000;
    round_trip(&h, r, N);
}

static void test_buffer_reuse(void **state)
{
    (void)state;
    struct rc_header h1 = header(RC_KIND_WRITES, "long-origin-id", 1, 1, 0, NULL);
    struct rc_header h2 = header(RC_KIND_SYNC_DONE, "s", 1, 0, 9, "t");
    h2.total = 1;
    struct rc_record r = rec(RC_OP_SET, "k", "v", 0, 1, 1);
    struct rc_buf b = {0};
    assert_int_equal(rc_count(&b), 0);
    assert_int_equal(rc_begin(&b, &h1), 0);
    assert_int_equal(rc_append(&b, &r), 0);
    assert_int_equal(rc_append(&b, &r), 0);
    assert_int_equal(rc_count(&b), 2);
    char *before = b.data;
    assert_int_equal(rc_begin(&b, &h2), 0); /* restarts, reuses memory */
    assert_ptr_equal(b.data, before);
    assert_int_equal(rc_count(&b), 0);
    assert_int_equal(rc_append(&b, &r), 0);
    assert_int_equal(rc_count(&b), 1);
    assert_int_equal(status_of(b.data, b.len), RC_OK);
    rc_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    rc_buf_free(&b); /* twice is harmless */
}

/* ---- the encoder refuses what the decoder would reject ---- */

static void test_encoder_rejects(void **state)
{
    (void)state;
    struct rc_buf b = {0};
    struct rc_record ok = rec(RC_OP_SET, "k", "v", 0, 1, 1);
    assert_int_equal(rc_append(&b, &ok), -1); /* no rc_begin yet */
    assert_int_equal(errno, EINVAL);

    struct rc_header bad[] = {
        header((enum rc_kind)0, "n", 1, 1, 0, NULL),
        header((enum rc_kind)10, "n", 1, 1, 0, NULL),
        header(RC_KIND_WRITES, "", 1, 1, 0, NULL),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        assert_int_equal(rc_begin(&b, &bad[i]), -1);
        assert_int_equal(errno, EINVAL);
    }
    struct rc_header h = header(RC_KIND_WRITES, "n", 1, 1, 0, NULL);
    h.origin_len = RC_MAX_ID_LEN + 1;
    assert_int_equal(rc_begin(&b, &h), -1);
    h = header(RC_KIND_WRITES, "n", 1, 1, 0, NULL);
    h.origin = NULL;
    assert_int_equal(rc_begin(&b, &h), -1);
    h = header(RC_KIND_SYNC_REQUEST, "n", 1, 1, 0, "t");
    h.target_len = RC_MAX_ID_LEN + 1;
    assert_int_equal(rc_begin(&b, &h), -1);
    h = header(RC_KIND_SYNC_REQUEST, "n", 1, 1, 0, "t");
    h.target = NULL;
    assert_int_equal(rc_begin(&b, &h), -1);

    h = header(RC_KIND_WRITES, "n", 1, 1, 0, NULL);
    assert_int_equal(rc_begin(&b, &h), 0);
    assert_int_equal(rc_append(&b, &ok), 0);
    size_t len = b.len;
    static char big[RC_MAX_KEY_LEN + 1];
    struct rc_record rbad[] = {
        rec((enum rc_op)0, "k", "v", 0, 1, 1),
        rec((enum rc_op)6, "k", "v", 0, 1, 1),
        rec((enum rc_op)255, "k", "v", 0, 1, 1),
        rec(RC_OP_SET, "", "v", 0, 1, 1),
        rec(RC_OP_EXPIRE, "", "v", 0, 1, 1),
        rec(RC_OP_DEL, "", NULL, 0, 1, 1),
        rec(RC_OP_EXPIRED, "", NULL, 0, 1, 1),
        rec(RC_OP_SET, big, "v", 0, 1, 1),
        rec(RC_OP_DEL, "k", "v", 0, 1, 1),      /* DEL with a value */
        rec(RC_OP_EXPIRED, "k", "v", 0, 1, 1),  /* EXPIRED with a value */
        rec(RC_OP_FLUSH, "k", NULL, 0, 1, 1),   /* FLUSH with a key */
        rec(RC_OP_FLUSH, NULL, "v", 0, 1, 1),   /* FLUSH with a value */
        rec(RC_OP_DEL, "k", NULL, 0, 1, 1),     /* flags, below */
        rec(RC_OP_EXPIRED, "k", NULL, 0, 1, 1), /* flags, below */
        rec(RC_OP_FLUSH, NULL, NULL, 0, 1, 1),  /* flags, below */
        rec(RC_OP_SET, NULL, "v", 0, 1, 1),     /* NULL key */
        rec(RC_OP_SET, "k", NULL, 0, 1, 1),     /* NULL value, below */
    };
    size_t nbad = sizeof rbad / sizeof rbad[0];
    rbad[7].key_len = RC_MAX_KEY_LEN + 1;
    rbad[nbad - 5].client_flags = 1;
    rbad[nbad - 4].client_flags = 0x80000000u;
    rbad[nbad - 3].client_flags = 1;
    rbad[nbad - 2].key_len = 1;
    rbad[nbad - 1].value_len = 1;
    for (size_t i = 0; i < nbad; i++) {
        errno = 0;
        assert_int_equal(rc_append(&b, &rbad[i]), -1);
        assert_int_equal(errno, EINVAL);
        assert_int_equal(b.len, len); /* batch unchanged */
        assert_int_equal(rc_count(&b), 1);
    }
    if (sizeof(size_t) > 4) {
        struct rc_record huge = rec(RC_OP_SET, "k", "v", 0, 1, 1);
        huge.value_len = (size_t)UINT32_MAX + 1;
        assert_int_equal(rc_append(&b, &huge), -1);
    }
    /* what the decoder accepts, the encoder accepts: flags on SET and
     * EXPIRE, FLUSH with no key, any expiry and stamps on any op */
    struct rc_record good[] = {
        rec(RC_OP_SET, "k", "v", -1, 0, 0),
        rec(RC_OP_EXPIRE, "k", "", INT64_MIN, UINT64_MAX, 0),
        rec(RC_OP_FLUSH, NULL, NULL, 5, 1, 1),
        rec(RC_OP_DEL, "k", NULL, 5, 1, 1),
        rec(RC_OP_EXPIRED, "k", NULL, 5, 1, 1),
    };
    good[0].client_flags = UINT32_MAX;
    good[1].client_flags = 1;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_int_equal(rc_append(&b, &good[i]), 0);
    assert_int_equal(status_of(b.data, b.len), RC_OK);
    assert_int_equal(rc_count(&b), 6);

    /* A full count is refused rather than wrapped to 0. */
    size_t full = b.len;
    put_le(b.data + 50 + 1, UINT32_MAX, 4); /* count at 50+N+T; N = 1, T = 0 */
    assert_int_equal(rc_count(&b), UINT32_MAX);
    errno = 0;
    assert_int_equal(rc_append(&b, &ok), -1);
    assert_int_equal(errno, EOVERFLOW);
    assert_int_equal(b.len, full);
    rc_buf_free(&b);
}

static void test_record_size(void **state)
{
    (void)state;
    assert_int_equal(RC_RECORD_FIXED, 43);
    assert_int_equal(RC_RECORD_FIXED_V1, 27);
    assert_int_equal(rc_record_size(0, 0), RC_RECORD_FIXED); /* a FLUSH */
    assert_int_equal(rc_record_size(1, 0), RC_RECORD_FIXED + 1);
    assert_int_equal(rc_record_size(1024, 5000), RC_RECORD_FIXED + 6024);
    assert_true(rc_record_size(SIZE_MAX, 1) == SIZE_MAX);
    assert_true(rc_record_size(10, SIZE_MAX - 20) == SIZE_MAX);
}

static void test_status_names(void **state)
{
    (void)state;
    assert_string_equal(rc_status_name(RC_OK), "ok");
    assert_string_equal(rc_status_name(RC_ERR_MAGIC), "bad_magic");
    assert_string_equal(rc_status_name(RC_ERR_VERSION), "bad_version");
    assert_string_equal(rc_status_name(RC_ERR_TRUNCATED), "truncated");
    assert_string_equal(rc_status_name(RC_ERR_RANGE), "out_of_range");
    assert_string_equal(rc_status_name(RC_ERR_TRAILING), "trailing_bytes");
    assert_string_equal(rc_status_name((enum rc_status)99), "unknown");
}

/* ---- decoder errors from hand-made bad input ---- */

/* A valid five-record WRITES batch, the base of the bad inputs:
 * "VTMB" 2 1 N=2 "n1" inc seq=7 aux=0 base=0 total=0 T=0 count=5, then
 *   [56]  SET     "a"   "xyz" flags 7
 *   [103] DEL     "bb"
 *   [148] EXPIRE  "ccc" ""
 *   [194] FLUSH
 *   [237] EXPIRED "dd"                                     (end: 282) */
#define BASE_TLEN 50
#define BASE_COUNT 52
#define BASE_REC1 56
#define BASE_REC2 103
#define BASE_REC3 148
#define BASE_REC4 194
#define BASE_REC5 237
#define BASE_LEN 282
/* offsets inside a version-2 record */
#define R_K 1
#define R_V 3
#define R_FLAGS 7
static char *base_batch(size_t *len)
{
    struct rc_header h = header(RC_KIND_WRITES, "n1", 99, 7, 0, NULL);
    struct rc_record r[5] = {
        rec(RC_OP_SET, "a", "xyz", 1000, 5, 1),
        rec(RC_OP_DEL, "bb", NULL, 0, 6, 1),
        rec(RC_OP_EXPIRE, "ccc", "", 2000, 7, 1),
        rec(RC_OP_FLUSH, NULL, NULL, 0, 8, 1),
        rec(RC_OP_EXPIRED, "dd", NULL, 500, 9, 1),
    };
    r[0].client_flags = 7;
    struct rc_buf b = {0};
    assert_int_equal(rc_begin(&b, &h), 0);
    for (int i = 0; i < 5; i++) assert_int_equal(rc_append(&b, &r[i]), 0);
    assert_int_equal(b.len, BASE_LEN);
    assert_int_equal(status_of(b.data, b.len), RC_OK);
    *len = b.len;
    return b.data; /* the caller frees */
}

static void test_base_batch_layout(void **state)
{
    (void)state;
    size_t len;
    char *b = base_batch(&len);
    assert_int_equal(b[BASE_REC1], RC_OP_SET);
    assert_int_equal(b[BASE_REC2], RC_OP_DEL);
    assert_int_equal(b[BASE_REC3], RC_OP_EXPIRE);
    assert_int_equal(b[BASE_REC4], RC_OP_FLUSH);
    assert_int_equal(b[BASE_REC5], RC_OP_EXPIRED);
    assert_int_equal(b[BASE_COUNT], 5);
    assert_int_equal(b[BASE_REC1 + R_FLAGS], 7);
    free(b);
}

static void test_bad_magic(void **state)
{
    (void)state;
    size_t len;
    char *b = base_batch(&len);
    b[3] = 'X';
    assert_int_equal(status_of(b, len), RC_ERR_MAGIC);
    assert_int_equal(status_of("{\"a\":1}", 7), RC_ERR_MAGIC);
    assert_int_equal(status_of("x", 1), RC_ERR_MAGIC); /* short and foreign */
    assert_int_equal(status_of("VTM", 3), RC_ERR_TRUNCATED); /* ours, cut */
    assert_int_equal(status_of("VTMB", 4), RC_ERR_TRUNCATED);
    assert_int_equal(status_of("", 0), RC_ERR_TRUNCATED);
    struct rc_header h;
    struct rc_reader rd;
    assert_int_equal(rc_decode(NULL, 0, &h, &rd), RC_ERR_TRUNCATED);
    free(b);
}

static void test_bad_version(void **state)
{
    (void)state;
    size_t len;
    char *b = base_batch(&len);
    unsigned bad[] = {0, 3, 4, 0x80, 0xff};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        b[4] = (char)bad[i];
        assert_int_equal(status_of(b, len), RC_ERR_VERSION);
        assert_int_equal(status_of(b, 5), RC_ERR_VERSION); /* before kind */
    }
    b[4] = 2;
    b[5] = 0; /* kind */
    assert_int_equal(status_of(b, len), RC_ERR_RANGE);
    b[5] = 5;
    assert_int_equal(status_of(b, len), RC_ERR_RANGE);
    /* the version byte decides the layout: these version-2 bytes read as
     * version 1 take the first bytes of base as T = 0 and count = 0 */
    b[5] = RC_KIND_WRITES;
    b[4] = 1;
    assert_int_equal(status_of(b, len), RC_ERR_TRAILING);
    free(b);
}

static void test_bad_id_lengths(void **state)
{
    (void)state;
    size_t len;
    char *b = base_batch(&len);
    put_le(b + 6, 0, 2);
    assert_int_equal(status_of(b, len), RC_ERR_RANGE);
    put_le(b + 6, 256, 2);
    assert_int_equal(status_of(b, len), RC_ERR_RANGE);
    put_le(b + 6, 0xffff, 2);
    assert_int_equal(status_of(b, len), RC_ERR_RANGE);
    put_le(b + 6, 2, 2);
    put_le(b + BASE_TLEN, 256, 2); /* target length */
    assert_int_equal(status_of(b, len), RC_ERR_RANGE);
    put_le(b + BASE_TLEN, 255, 2); /* in range, but runs past the end */
    assert_int_equal(status_of(b, 100), RC_ERR_TRUNCATED);
    free(b);
}

/* base and total are carried, not checked, by the format */
static void test_base_total_any_value(void **state)
{
    (void)state;
    size_t len;
    char *b = base_batch(&len);
    put_le(b + 34, UINT64_MAX, 8);
    put_le(b + 42, 0x0102030405060708ull, 8);
    struct rc_header h;
    struct rc_reader rd;
    char *copy;
    assert_int_equal(decode_copy(b, len, &h, &rd, &copy), RC_OK);
    assert_true(h.base == UINT64_MAX);
    assert_true(h.total == 0x0102030405060708ull);
    assert_int_equal(h.count, 5);
    free(copy);
    free(b);
}

static void test_truncated_everywhere(void **state)
{
    (void)state;
    size_t len;
    char *b = base_batch(&len);
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(status_of(b, cut), RC_ERR_TRUNCATED);
    assert_int_equal(status_of(b, len), RC_OK);
    free(b);
}

static void test_lying_count(void **state)
{
    (void)state;
    size_t len;
    char *b = base_batch(&len);
    put_le(b + BASE_COUNT, 6, 4);
    assert_int_equal(status_of(b, len), RC_ERR_TRUNCATED);
    put_le(b + BASE_COUNT, 0xffffffff, 4);
    assert_int_equal(status_of(b, len), RC_ERR_TRUNCATED);
    put_le(b + BASE_COUNT, 4, 4);
    assert_int_equal(status_of(b, len), RC_ERR_TRAILING);
    put_le(b + BASE_COUNT, 1, 4);
    assert_int_equal(status_of(b, len), RC_ERR_TRAILING);
    put_le(b + BASE_COUNT, 0, 4);
    assert_int_equal(status_of(b, len), RC_ERR_TRAILING);
    /* A large count over bytes that would each parse as a record is still
     * refused up front: 6 records need at least 6 * 43 bytes, 5 are there
     * (226 bytes) and 226 / 43 = 5. */
    put_le(b + BASE_COUNT, 6, 4);
    assert_int_equal(len - BASE_REC1, 226);
    assert_int_equal(status_of(b, len), RC_ERR_TRUNCATED);
    /* a count that fits the bytes left but not the records: found in the
     * record loop (4 FLUSH-sized records fit in 172 bytes) */
    put_le(b + BASE_COUNT, 4, 4);
    assert_int_equal(status_of(b, BASE_REC1 + 4 * RC_RECORD_FIXED),
                     RC_ERR_TRUNCATED);
    free(b);
}

static void test_bad_key_length(void **state)
{
    (void)state;
    size_t len;
    char *b = base_batch(&len);
    put_le(b + BASE_REC2 + R_K, 0, 2); /* a DEL needs a key */
    assert_int_equal(status_of(b, len), RC_ERR_RANGE);
    put_le(b + BASE_REC2 + R_K, RC_MAX_KEY_LEN + 1, 2);
    assert_int_equal(status_of(b, len), RC_ERR_RANGE);
    put_le(b + BASE_REC2 + R_K, 0xffff, 2);
    assert_int_equal(status_of(b, len), RC_ERR_RANGE);
    put_le(b + BASE_REC2 + R_K, RC_MAX_KEY_LEN, 2); /* legal, past the end */
    assert_int_equal(status_of(b, len), RC_ERR_TRUNCATED);
    put_le(b + BASE_REC2 + R_K, 2, 2);
    put_le(b + BASE_REC5 + R_K, 0, 2); /* nor can an EXPIRED do without */
    assert_int_equal(status_of(b, len), RC_ERR_RANGE);
    put_le(b + BASE_REC5 + R_K, 2, 2);
    put_le(b + BASE_REC1 + R_K, 0, 2); /* nor a SET */
    assert_int_equal(status_of(b, len), RC_ERR_RANGE);
    put_le(b + BASE_REC1 + R_K, 1, 2);
    put_le(b + BASE_REC3 + R_K, 0, 2); /* nor an EXPIRE */
    assert_int_equal(status_of(b, len), RC_ERR_RANGE);
    put_le(b + BASE_REC3 + R_K, 3, 2);
    assert_int_equal(status_of(b, len), RC_OK);
    free(b);
}

static void test_flush_has_no_key(void **state)
{
    (void)state;
    size_t len;
    char *b = base_batch(&len);
    put_le(b + BASE_REC4 + R_K, 1, 2); /* the next byte would do as a key */
    assert_int_equal(status_of(b, len), RC_ERR_RANGE);
    put_le(b + BASE_REC4 + R_K, 0xffff, 2);
    assert_int_equal(status_of(b, len), RC_ERR_RANGE);
    put_le(b + BASE_REC4 + R_K, 0, 2);
    assert_int_equal(status_of(b, len), RC_OK);
    free(b);
}

static void test_bad_op(void **state)
{
    (void)state;
    size_t len;
    char *b = base_batch(&len);
    unsigned bad[] = {0, 6, 7, 0x80, 0xff};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        b[BASE_REC3] = (char)bad[i];
        assert_int_equal(status_of(b, len), RC_ERR_RANGE);
    }
    free(b);
}

/* DEL, FLUSH and EXPIRED carry no value */
static void test_value_on_valueless_op(void **state)
{
    (void)state;
    size_t len;
    char *b = base_batch(&len);
    b[BASE_REC1] = RC_OP_DEL; /* the SET "a" "xyz" becomes a DEL with a value */
    assert_int_equal(status_of(b, len), RC_ERR_RANGE);
    b[BASE_REC1] = RC_OP_EXPIRED;
    assert_int_equal(status_of(b, len), RC_ERR_RANGE);
    b[BASE_REC1] = RC_OP_EXPIRE; /* EXPIRE carries its value: fine */
    assert_int_equal(status_of(b, len), RC_OK);
    b[BASE_REC1] = RC_OP_SET;
    /* a value length on them is refused before it is compared with the
     * bytes left */
    put_le(b + BASE_REC4 + R_V, 1, 4);
    assert_int_equal(status_of(b, len), RC_ERR_RANGE);
    put_le(b + BASE_REC4 + R_V, 0, 4);
    put_le(b + BASE_REC5 + R_V, 0xffffffff, 4);
    assert_int_equal(status_of(b, len), RC_ERR_RANGE);
    free(b);
}

/* DEL, FLUSH and EXPIRED carry client flags 0; SET and EXPIRE any */
static void test_flags_on_valueless_op(void **state)
{
    (void)state;
    size_t len;
    char *b = base_batch(&len);
    const size_t at[] = {BASE_REC2, BASE_REC4, BASE_REC5};
    for (size_t i = 0; i < 3; i++) {
        put_le(b + at[i] + R_FLAGS, 1, 4);
        assert_int_equal(status_of(b, len), RC_ERR_RANGE);
        put_le(b + at[i] + R_FLAGS, 0x80000000u, 4);
        assert_int_equal(status_of(b, len), RC_ERR_RANGE);
        put_le(b + at[i] + R_FLAGS, 0, 4);
    }
    put_le(b + BASE_REC1 + R_FLAGS, 0xffffffffu, 4);
    put_le(b + BASE_REC3 + R_FLAGS, 0xffffffffu, 4);
    assert_int_equal(status_of(b, len), RC_OK);
    /* the flags are checked after the key and value are found in the body:
     * flags on the last record (EXPIRED "dd") with its key cut short is
     * "truncated", not "out_of_range" */
    put_le(b + BASE_REC5 + R_FLAGS, 1, 4);
    assert_int_equal(status_of(b, len), RC_ERR_RANGE);
    put_le(b + BASE_COUNT, 1, 4); /* alone, so the count fits the cut body */
    memmove(b + BASE_REC1, b + BASE_REC5, len - BASE_REC5);
    size_t one = BASE_REC1 + (len - BASE_REC5);
    assert_int_equal(status_of(b, one), RC_ERR_RANGE);
    assert_int_equal(status_of(b, one - 1), RC_ERR_TRUNCATED);
    free(b);
}

static void test_trailing_byte(void **state)
{
    (void)state;
    size_t len;
    char *b = base_batch(&len);
    char *more = malloc(len + 1);
    assert_non_null(more);
    memcpy(more, b, len);
    more[len] = 0;
    assert_int_equal(status_of(more, len + 1), RC_ERR_TRAILING);
    free(more);
    free(b);
}

static void test_value_length_huge(void **state)
{
    (void)state;
    size_t len;
    char *b = base_batch(&len);
    put_le(b + BASE_REC1 + R_V, 0xffffffff, 4);
    assert_int_equal(status_of(b, len), RC_ERR_TRUNCATED);
    put_le(b + BASE_REC3 + R_V, 0xffffffff, 4); /* in a later record too */
    put_le(b + BASE_REC1 + R_V, 3, 4);
    assert_int_equal(status_of(b, len), RC_ERR_TRUNCATED);
    put_le(b + BASE_REC3 + R_V, 0x80000000u, 4);
    assert_int_equal(status_of(b, len), RC_ERR_TRUNCATED);
    put_le(b + BASE_REC3 + R_V, (uint64_t)(len - BASE_REC3 - 46 + 1), 4);
    assert_int_equal(status_of(b, len), RC_ERR_TRUNCATED); /* one byte short */
    put_le(b + BASE_REC3 + R_V, (uint64_t)(len - BASE_REC3 - 46), 4);
    /* the value swallows the last two records, which are then missing */
    assert_int_equal(status_of(b, len), RC_ERR_TRUNCATED);
    free(b);
}

/* Flip bytes of a valid batch at random: any result but a crash is fine,
 * and an accepted batch must yield exactly count in-bounds, in-range
 * records. */
static void mutate(const char *b, size_t len, uint32_t seed)
{
    for (int round = 0; round < 20000; round++) {
        char *m = malloc(len);
        assert_non_null(m);
        memcpy(m, b, len);
        for (int k = 0; k < 1 + round % 4; k++) {
            seed = seed * 1103515245u + 12345u;
            m[(seed >> 8) % len] = (char)(seed >> 20);
        }
        seed = seed * 1103515245u + 12345u;
        size_t mlen = round % 3 ? len : (seed >> 8) % (len + 1);
        struct rc_header h;
        struct rc_reader rd;
        struct rc_record r;
        if (rc_decode(m, mlen, &h, &rd) == RC_OK) {
            uint32_t n = 0;
            assert_true(h.version == 1 || h.version == 2);
            while (rc_next(&rd, &r)) {
                bool valued = r.op == RC_OP_SET || r.op == RC_OP_EXPIRE;
                assert_true(r.op >= RC_OP_SET &&
                            r.op <= (h.version == 1 ? RC_OP_EXPIRE : RC_OP_EXPIRED));
                assert_true(r.op == RC_OP_FLUSH ? r.key_len == 0
                                                : r.key_len >= 1 && r.key_len <= RC_MAX_KEY_LEN);
                assert_true(valued || (r.value_len == 0 && r.client_flags == 0));
                if (h.version == 1)
                    assert_true(r.client_flags == 0 && r.exp_version == r.version &&
                                r.exp_origin_tag == r.origin_tag);
                assert_true(r.key >= m && r.key + r.key_len <= m + mlen);
                assert_true(r.value_len == 0 ||
                            (r.value >= m && r.value + r.value_len <= m + mlen));
                n++;
            }
            assert_int_equal(n, h.count);
        }
        free(m);
    }
}

static void test_mutations_are_safe(void **state)
{
    (void)state;
    size_t len;
    char *b = base_batch(&len);
    mutate(b, len, 12345);
    free(b);
}

/* ---- version 1: still read, as version 2 reads it ---- */

/* The same records as base_batch's first three, in the version-1 layout:
 *   [40]  SET    "a"   "xyz"
 *   [71]  DEL    "bb"
 *   [100] EXPIRE "ccc" ""                                   (end: 130) */
#define V1_COUNT 36
#define V1_REC1 40
#define V1_REC2 71
#define V1_REC3 100
#define V1_LEN 130
static struct rc_record v1_recs[3];
static void v1_base(struct v1buf *b)
{
    v1_recs[0] = rec(RC_OP_SET, "a", "xyz", 1000, 5, 1);
    v1_recs[1] = rec(RC_OP_DEL, "bb", NULL, 0, 6, 2);
    v1_recs[2] = rec(RC_OP_EXPIRE, "ccc", "", 2000, 7, 3);
    v1_header(b, RC_KIND_WRITES, "n1", 99, 7, 0, NULL, 3);
    for (int i = 0; i < 3; i++) v1_record_of(b, &v1_recs[i]);
    assert_int_equal(b->len, V1_LEN);
}

static void test_v1_decodes(void **state)
{
    (void)state;
    static struct v1buf b;
    v1_base(&b);
    struct rc_header h;
    struct rc_reader rd;
    struct rc_record r;
    char *copy;
    assert_int_equal(decode_copy(b.data, b.len, &h, &rd, &copy), RC_OK);
    struct rc_header want = header(RC_KIND_WRITES, "n1", 99, 7, 0, NULL);
    assert_int_equal(h.version, 1);
    assert_int_equal(rd.version, 1);
    assert_header_equal(&want, &h, 3); /* base and total 0 */
    for (int i = 0; i < 3; i++) {
        assert_true(rc_next(&rd, &r));
        struct rc_record w = as_v1(v1_recs[i]);
        assert_record_equal(&w, &r);
        assert_int_equal(r.client_flags, 0);
        assert_true(r.exp_version == r.version);
        assert_int_equal(r.exp_origin_tag, r.origin_tag);
    }
    assert_false(rc_next(&rd, &r));
    free(copy);
}

static void test_v1_every_kind(void **state)
{
    (void)state;
    static struct v1buf b;
    for (unsigned k = RC_KIND_WRITES; k <= RC_KIND_SYNC_DONE; k++) {
        v1_header(&b, k, "node-a", 1, k, 0x0102030405060708ull,
                  k == RC_KIND_WRITES ? NULL : "node-b", 2);
        struct rc_record r[2] = {
            rec(RC_OP_SET, "k", "value", -5, UINT64_MAX, UINT32_MAX),
            rec(RC_OP_EXPIRE, "k", "", INT64_MAX, 0, 0),
        };
        for (int i = 0; i < 2; i++) v1_record_of(&b, &r[i]);
        struct rc_header h;
        struct rc_reader rd;
        struct rc_record got;
        char *copy;
        assert_int_equal(decode_copy(b.data, b.len, &h, &rd, &copy), RC_OK);
        assert_int_equal(h.kind, k);
        assert_true(h.seq == k && h.aux == 0x0102030405060708ull);
        assert_true(h.base == 0 && h.total == 0);
        assert_int_equal(h.target_len, k == RC_KIND_WRITES ? 0 : 6);
        for (int i = 0; i < 2; i++) {
            assert_true(rc_next(&rd, &got));
            struct rc_record w = as_v1(r[i]);
            assert_record_equal(&w, &got);
        }
        assert_false(rc_next(&rd, &got));
        free(copy);
    }
}

/* Version 1 has no FLUSH or EXPIRED: ops 4 and 5 are out of range there. */
static void test_v1_rejects_new_ops(void **state)
{
    (void)state;
    static struct v1buf b;
    unsigned bad[] = {0, RC_OP_FLUSH, RC_OP_EXPIRED, 6, 0xff};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v1_base(&b);
        b.data[V1_REC2] = (char)bad[i];
        assert_int_equal(status_of(b.data, b.len), RC_ERR_RANGE);
    }
    /* a FLUSH as version 2 writes it (no key) is out of range too */
    v1_header(&b, RC_KIND_WRITES, "n1", 1, 1, 0, NULL, 1);
    v1_record(&b, RC_OP_FLUSH, "", 0, "", 0, 0, 1, 1);
    assert_int_equal(status_of(b.data, b.len), RC_ERR_RANGE);
    v1_header(&b, RC_KIND_WRITES, "n1", 1, 1, 0, NULL, 1);
    v1_record(&b, RC_OP_SET, "", 0, "", 0, 0, 1, 1); /* no FLUSH: K 0 */
    assert_int_equal(status_of(b.data, b.len), RC_ERR_RANGE);
}

static void test_v1_errors(void **state)
{
    (void)state;
    static struct v1buf b;
    v1_base(&b);
    for (size_t cut = 0; cut < b.len; cut++)
        assert_int_equal(status_of(b.data, cut), RC_ERR_TRUNCATED);
    assert_int_equal(status_of(b.data, b.len), RC_OK);

    b.data[V1_REC1] = RC_OP_DEL; /* with a value */
    assert_int_equal(status_of(b.data, b.len), RC_ERR_RANGE);
    v1_base(&b);
    put_le(b.data + V1_REC2 + R_K, RC_MAX_KEY_LEN + 1, 2);
    assert_int_equal(status_of(b.data, b.len), RC_ERR_RANGE);
    v1_base(&b);
    put_le(b.data + V1_REC1 + R_V, 0xffffffff, 4);
    assert_int_equal(status_of(b.data, b.len), RC_ERR_TRUNCATED);

    /* counts are checked against 27-byte records */
    v1_base(&b);
    put_le(b.data + V1_COUNT, 4, 4); /* 90 bytes left: 90 / 27 = 3 */
    assert_int_equal(status_of(b.data, b.len), RC_ERR_TRUNCATED);
    put_le(b.data + V1_COUNT, 0xffffffff, 4);
    assert_int_equal(status_of(b.data, b.len), RC_ERR_TRUNCATED);
    put_le(b.data + V1_COUNT, 2, 4);
    assert_int_equal(status_of(b.data, b.len), RC_ERR_TRAILING);
    put_le(b.data + V1_COUNT, 0, 4);
    assert_int_equal(status_of(b.data, b.len), RC_ERR_TRAILING);
    v1_base(&b);
    b.data[b.len++] = 0;
    assert_int_equal(status_of(b.data, b.len), RC_ERR_TRAILING);

    /* the header's id checks are the same as version 2's */
    v1_base(&b);
    put_le(b.data + 6, 0, 2);
    assert_int_equal(status_of(b.data, b.len), RC_ERR_RANGE);
    v1_base(&b);
    put_le(b.data + 34, 256, 2); /* T, at 32+N in version 1 */
    assert_int_equal(status_of(b.data, b.len), RC_ERR_RANGE);
    v1_base(&b);
    b.data[5] = 5;
    assert_int_equal(status_of(b.data, b.len), RC_ERR_RANGE);
}

static void test_v1_mutations_are_safe(void **state)
{
    (void)state;
    static struct v1buf b;
    v1_base(&b);
    mutate(b.data, b.len, 777);
}

/* A version-1 batch re-encoded by this (version-2 only) encoder: the same
 * header and records, 16 bytes more header and 16 more a record. */
static void test_v1_reencodes_as_v2(void **state)
{
    (void)state;
    static struct v1buf b;
    v1_base(&b);
    struct rc_header h;
    struct rc_reader rd;
    struct rc_record r, again;
    char *copy;
    assert_int_equal(decode_copy(b.data, b.len, &h, &rd, &copy), RC_OK);
    struct rc_buf out = {0};
    assert_int_equal(rc_begin(&out, &h), 0);
    while (rc_next(&rd, &r)) assert_int_equal(rc_append(&out, &r), 0);
    assert_int_equal(out.len, V1_LEN + 16 + 3 * 16);
    assert_int_equal(out.data[4], 2);

    struct rc_header h2;
    struct rc_reader rd2, rd1;
    char *copy2;
    assert_int_equal(decode_copy(out.data, out.len, &h2, &rd2, &copy2), RC_OK);
    assert_int_equal(h2.version, 2);
    assert_header_equal(&h, &h2, 3);
    assert_int_equal(rc_decode(copy, b.len, &h, &rd1), RC_OK);
    while (rc_next(&rd1, &r)) {
        assert_true(rc_next(&rd2, &again));
        assert_record_equal(&r, &again);
    }
    assert_false(rc_next(&rd2, &again));
    free(copy2);
    free(copy);
    rc_buf_free(&out);
}

/* ---- golden batches: the worked examples of docs/replication.md ---- */

#define HLC_T0 ((uint64_t)1700000000000 << 16)
#define TAG 0x0a0b0c0du

static const char golden_writes_hex[] =
    /* header (56 bytes) */
    "56544d42"         /* magic "VTMB" */
    "02"               /* version 2 */
    "01"               /* kind WRITES */
    "0200"             /* origin length 2 */
    "6e31"             /* origin "n1" */
    "0807060504030201" /* incarnation 0x0102030405060708 */
    "2a00000000000000" /* seq 42 */
    "0000000000000000" /* aux 0 */
    "0000000000000000" /* base 0 */
    "0000000000000000" /* total 0 */
    "0000"             /* target length 0 */
    "04000000"         /* count 4 */
    /* record 1: SET "user:1" = "hi", client flags 42, no expiry */
    "01" "0600" "02000000" "2a000000" "0000000000000000"
    "01000068e5cf8b01" "0d0c0b0a" "01000068e5cf8b01" "0d0c0b0a"
    "757365723a31" "6869"
    /* record 2: DEL "k" */
    "02" "0100" "00000000" "00000000" "0000000000000000"
    "02000068e5cf8b01" "0d0c0b0a" "02000068e5cf8b01" "0d0c0b0a"
    "6b"
    /* record 3: EXPIRE "user:1" at 1700000060000, made on the value
     * stamped T0|1 ("hi", flags 42); the expiry's own stamp is T0|3 */
    "03" "0600" "02000000" "2a000000" "6052e6cf8b010000"
    "01000068e5cf8b01" "0d0c0b0a" "03000068e5cf8b01" "0d0c0b0a"
    "757365723a31" "6869"
    /* record 4: FLUSH: every value stamped below T0|4 dies */
    "04" "0000" "00000000" "00000000" "0000000000000000"
    "04000068e5cf8b01" "0d0c0b0a" "04000068e5cf8b01" "0d0c0b0a";

static const char golden_sync_data_hex[] =
    "56544d42" "02" "03" "0200" "6e31" /* SYNC_DATA from "n1" */
    "0807060504030201"                 /* incarnation */
    "0100000000000000"                 /* seq: transfer message #1 */
    "0302010000000000"                 /* aux: session 0x010203 */
    "2900000000000000"                 /* base 41 */
    "0000000000000000"                 /* total 0 */
    "0200" "6e32"                      /* target "n2" */
    "01000000"                         /* count 1 */
    /* EXPIRED "k3": expired at 1700000030000, its bytes gone */
    "05" "0200" "00000000" "00000000" "30dde5cf8b010000"
    "05000068e5cf8b01" "0d0c0b0a" "05000068e5cf8b01" "0d0c0b0a"
    "6b33";

static const char golden_sync_done_hex[] =
    "56544d42" "02" "04" "0200" "6e31" /* SYNC_DONE from "n1" */
    "0807060504030201"                 /* incarnation */
    "0200000000000000"                 /* seq: transfer message #2 */
    "0302010000000000"                 /* aux: session 0x010203 */
    "2900000000000000"                 /* base 41 */
    "0100000000000000"                 /* total: 1 record sent */
    "0200" "6e32"                      /* target "n2" */
    "00000000";                        /* count 0 */

static const char golden_sync_request_hex[] =
    "56544d42" "02" "02" "0200" "6e32" /* SYNC_REQUEST from "n2" */
    "8877665544332211"                 /* incarnation 0x1122334455667788 */
    "0000000000000000"                 /* seq 0 */
    "0302010000000000"                 /* aux (session id) 0x010203 */
    "0000000000000000"                 /* base 0 */
    "0000000000000000"                 /* total 0 */
    "0000"                             /* no target: asks the pool */
    "00000000";                        /* count 0 */

/* version 1 (an old node's batch): the golden batch of version 1 */
static const char golden_v1_writes_hex[] =
    "56544d42" "01" "01" "0200" "6e31" "0807060504030201" "2a00000000000000"
    "0000000000000000" "0000" "03000000"
    "01" "0600" "02000000" "0000000000000000" "01000068e5cf8b01" "0d0c0b0a"
    "757365723a31" "6869"
    "02" "0100" "00000000" "0000000000000000" "02000068e5cf8b01" "0d0c0b0a"
    "6b"
    "03" "0200" "01000000" "6052e6cf8b010000" "03000068e5cf8b01" "0d0c0b0a"
    "6b32" "76";

static const char golden_v1_sync_hex[] =
    "56544d42" "01" "02" "0200" "6e32" "8877665544332211" "0000000000000000"
    "0302010000000000" "0200" "6e31" "00000000";

/* Encode h + r[0..n) and compare with the hex byte for byte; decode the
 * hex and compare with h and r. */
static void check_golden(const char *hex, size_t want_len,
                         const struct rc_header *h,
                         const struct rc_record *r, uint32_t n)
{
    size_t glen;
    char *golden = unhex(hex, &glen);
    assert_int_equal(glen, want_len);

    struct rc_buf b = {0};
    assert_int_equal(rc_begin(&b, h), 0);
    for (uint32_t i = 0; i < n; i++) assert_int_equal(rc_append(&b, &r[i]), 0);
    assert_int_equal(b.len, glen);
    assert_memory_equal(b.data, golden, glen);

    struct rc_header got;
    struct rc_reader rd;
    struct rc_record rc;
    char *copy;
    assert_int_equal(decode_copy(golden, glen, &got, &rd, &copy), RC_OK);
    assert_int_equal(got.version, 2);
    assert_header_equal(h, &got, n);
    for (uint32_t i = 0; i < n; i++) {
        assert_true(rc_next(&rd, &rc));
        assert_record_equal(&r[i], &rc);
    }
    assert_false(rc_next(&rd, &rc));
    for (size_t cut = 0; cut < glen; cut++)
        assert_int_equal(status_of(golden, cut), RC_ERR_TRUNCATED);
    free(copy);
    rc_buf_free(&b);
    free(golden);
}

static void test_golden_writes(void **state)
{
    (void)state;
    struct rc_header h = header(RC_KIND_WRITES, "n1", 0x0102030405060708ull,
                                42, 0, NULL);
    struct rc_record r[4] = {
        rec(RC_OP_SET, "user:1", "hi", 0, HLC_T0 | 1, TAG),
        rec(RC_OP_DEL, "k", NULL, 0, HLC_T0 | 2, TAG),
        rec(RC_OP_EXPIRE, "user:1", "hi", 1700000060000, HLC_T0 | 1, TAG),
        rec(RC_OP_FLUSH, NULL, NULL, 0, HLC_T0 | 4, TAG),
    };
    r[0].client_flags = 42;
    r[2].client_flags = 42;
    r[2].exp_version = HLC_T0 | 3;
    check_golden(golden_writes_hex, 245, &h, r, 4);
}

static void test_golden_sync_data_and_done(void **state)
{
    (void)state;
    struct rc_header h = header(RC_KIND_SYNC_DATA, "n1", 0x0102030405060708ull,
                                1, 0x010203, "n2");
    h.base = 41;
    struct rc_record r = rec(RC_OP_EXPIRED, "k3", NULL, 1700000030000,
                             HLC_T0 | 5, TAG);
    check_golden(golden_sync_data_hex, 103, &h, &r, 1);

    h = header(RC_KIND_SYNC_DONE, "n1", 0x0102030405060708ull, 2, 0x010203, "n2");
    h.base = 41;
    h.total = 1;
    check_golden(golden_sync_done_hex, 58, &h, NULL, 0);
}

static void test_golden_sync_request(void **state)
{
    (void)state;
    struct rc_header h = header(RC_KIND_SYNC_REQUEST, "n2",
                                0x1122334455667788ull, 0, 0x010203, NULL);
    check_golden(golden_sync_request_hex, 56, &h, NULL, 0);
}

/* The version-1 golden batch still decodes: client flags 0, every expiry
 * stamped like its value, base and total 0. */
static void test_golden_v1(void **state)
{
    (void)state;
    size_t glen;
    char *golden = unhex(golden_v1_writes_hex, &glen);
    assert_int_equal(glen, 133);
    struct rc_header want = header(RC_KIND_WRITES, "n1",
                                   0x0102030405060708ull, 42, 0, NULL);
    struct rc_record r[3] = {
        rec(RC_OP_SET, "user:1", "hi", 0, HLC_T0 | 1, TAG),
        rec(RC_OP_DEL, "k", NULL, 0, HLC_T0 | 2, TAG),
        rec(RC_OP_EXPIRE, "k2", "v", 1700000060000, HLC_T0 | 3, TAG),
    };
    struct rc_header got;
    struct rc_reader rd;
    struct rc_record rc;
    char *copy;
    assert_int_equal(decode_copy(golden, glen, &got, &rd, &copy), RC_OK);
    assert_int_equal(got.version, 1);
    assert_header_equal(&want, &got, 3);
    for (int i = 0; i < 3; i++) {
        assert_true(rc_next(&rd, &rc));
        assert_record_equal(&r[i], &rc);
    }
    assert_false(rc_next(&rd, &rc));
    free(copy);

    /* the hand-built version-1 encoder of this file writes the same bytes */
    static struct v1buf b;
    v1_header(&b, RC_KIND_WRITES, "n1", 0x0102030405060708ull, 42, 0, NULL, 3);
    for (int i = 0; i < 3; i++) v1_record_of(&b, &r[i]);
    assert_int_equal(b.len, glen);
    assert_memory_equal(b.data, golden, glen);
    free(golden);

    golden = unhex(golden_v1_sync_hex, &glen);
    assert_int_equal(glen, 42);
    want = header(RC_KIND_SYNC_REQUEST, "n2", 0x1122334455667788ull, 0,
                  0x010203, "n1");
    assert_int_equal(decode_copy(golden, glen, &got, &rd, &copy), RC_OK);
    assert_int_equal(got.version, 1);
    assert_header_equal(&want, &got, 0);
    free(copy);
    free(golden);
}

/* ---- range-digest messages: NODE records in DIGESTS, RANGES, ROOT ---- */

static struct rc_record node(unsigned level, uint32_t index, const char *value, size_t vlen,
                             char key[RC_NODE_KEY_LEN])
{
    key[0] = (char)level;
    key[1] = (char)index;
    key[2] = (char)(index >> 8);
    key[3] = (char)(index >> 16);
    key[4] = (char)(index >> 24);
    struct rc_record r = {.op = RC_OP_NODE, .key = key, .key_len = RC_NODE_KEY_LEN,
                          .value = value, .value_len = vlen};
    return r;
}

static void test_node_records(void **state)
{
    (void)state;
    char children[128], root[8], k1[5], k2[5], k3[5];
    memset(children, 0xab, sizeof children);
    memset(root, 0x11, sizeof root);
    const enum rc_kind kinds[] = {RC_KIND_DIGESTS, RC_KIND_RANGES, RC_KIND_ROOT};
    for (size_t i = 0; i < 3; i++) {
        struct rc_header h = header(kinds[i], "node-a", 7, 3, 99, "node-b");
        struct rc_buf b = {0};
        assert_int_equal(rc_begin(&b, &h), 0);
        struct rc_record r1 = node(0, 0, children, 128, k1);
        struct rc_record r2 = node(4, 65535, NULL, 0, k2);
        struct rc_record r3 = node(2, 255, root, 8, k3);
        assert_int_equal(rc_append(&b, &r1), 0);
        assert_int_equal(rc_append(&b, &r2), 0);
        assert_int_equal(rc_append(&b, &r3), 0);
        /* nothing but NODE records in these kinds */
        struct rc_record set = rec(RC_OP_SET, "k", "v", 0, 1, 1);
        assert_int_equal(rc_append(&b, &set), -1);
        struct rc_header got;
        struct rc_reader rd;
        char *copy;
        assert_int_equal(decode_copy(b.data, b.len, &got, &rd, &copy), RC_OK);
        assert_int_equal(got.kind, kinds[i]);
        struct rc_record out;
        assert_true(rc_next(&rd, &out));
        assert_int_equal(out.op, RC_OP_NODE);
        assert_int_equal(out.value_len, 128);
        assert_memory_equal(out.key, k1, 5);
        assert_true(rc_next(&rd, &out));
        assert_memory_equal(out.key, k2, 5);
        assert_true(rc_next(&rd, &out));
        assert_int_equal(out.value_len, 8);
        assert_false(rc_next(&rd, &out));
        free(copy);
        rc_buf_free(&b);
    }
    /* out of the tree, odd sizes, stamps, or in a WRITES batch: refused */
    struct rc_header h = header(RC_KIND_RANGES, "n", 1, 1, 0, NULL);
    struct rc_buf b = {0};
    assert_int_equal(rc_begin(&b, &h), 0);
    char k[5], kb[5][5];
    struct rc_record bad[] = {
        node(5, 0, NULL, 0, kb[0]), node(1, 16, NULL, 0, kb[1]), node(0, 1, NULL, 0, kb[2]),
        node(3, 0, children, 7, kb[3]), node(3, 0, children, 16, kb[4]),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(rc_append(&b, &bad[i]), -1);
    struct rc_record stamped = node(1, 3, NULL, 0, k);
    stamped.version = 1;
    assert_int_equal(rc_append(&b, &stamped), -1);
    rc_buf_free(&b);
    h = header(RC_KIND_WRITES, "n", 1, 1, 0, NULL);
    assert_int_equal(rc_begin(&b, &h), 0);
    struct rc_record n1 = node(1, 3, NULL, 0, k);
    assert_int_equal(rc_append(&b, &n1), -1);
    rc_buf_free(&b);
    /* a decoder check too: a WRITES batch holding a NODE record */
    h = header(RC_KIND_RANGES, "n", 1, 1, 0, NULL);
    assert_int_equal(rc_begin(&b, &h), 0);
    assert_int_equal(rc_append(&b, &n1), 0);
    b.data[5] = RC_KIND_WRITES;
    assert_int_equal(status_of(b.data, b.len), RC_ERR_RANGE);
    b.data[5] = RC_KIND_RANGES;
    b.data[4] = 1; /* version 1 has no such kind */
    assert_int_equal(status_of(b.data, b.len), RC_ERR_RANGE);
    rc_buf_free(&b);
}

/* Worked example 4 of docs/replication.md (also tests/e2e/test_wire_format.py,
 * whose wire_check.c builds these bytes the same way): an incremental
 * transfer's DIGESTS and RANGES, and an anti-entropy ROOT. */
#define NODE_ZEROS "00000000" "0000000000000000" "0000000000000000" "00000000" \
                   "0000000000000000" "00000000" /* flags, expiry, stamps */

static const char golden_digests_hex[] =
    "56544d42" "02" "05" "0200" "6e31" /* DIGESTS from "n1" */
    "0807060504030201"                 /* incarnation */
    "0100000000000000"                 /* seq: transfer message #1 */
    "0302010000000000"                 /* aux: session 0x010203 */
    "2900000000000000"                 /* base 41 */
    "0000000000000000"                 /* total 0 */
    "0200" "6e32"                      /* target "n2" */
    "01000000"                         /* count 1 */
    "06" "0500" "80000000" NODE_ZEROS  /* NODE, key 5, value 128 */
    "0000000000"                       /* level 0, index 0: the root */
    "0000000000000000" "1111111111111111" "2222222222222222" "3333333333333333"
    "4444444444444444" "5555555555555555" "6666666666666666" "7777777777777777"
    "8888888888888888" "9999999999999999" "aaaaaaaaaaaaaaaa" "bbbbbbbbbbbbbbbb"
    "cccccccccccccccc" "dddddddddddddddd" "eeeeeeeeeeeeeeee" "ffffffffffffffff";

static const char golden_ranges_hex[] =
    "56544d42" "02" "06" "0200" "6e32" /* RANGES from "n2" */
    "8877665544332211"                 /* incarnation */
    "0000000000000000"                 /* seq 0 */
    "0302010000000000"                 /* aux: session 0x010203 */
    "0000000000000000"                 /* base 0: these nodes only */
    "0000000000000000"                 /* total 0 */
    "0200" "6e31"                      /* target "n1" */
    "02000000"                         /* count 2 */
    "06" "0500" "00000000" NODE_ZEROS "0103000000"  /* level 1, index 3 */
    "06" "0500" "00000000" NODE_ZEROS "010c000000"; /* level 1, index 12 */

static const char golden_root_hex[] =
    "56544d42" "02" "07" "0200" "6e31" /* ROOT from "n1" */
    "0807060504030201"                 /* incarnation */
    "0000000000000000"                 /* seq 0 */
    "0100000000000000"                 /* aux 1: the sender is idle */
    "0000000000000000" "0000000000000000" "0000" /* base, total, no target */
    "01000000"                         /* count 1 */
    "06" "0500" "08000000" NODE_ZEROS "0000000000" /* the root: */
    "efcdab8967452301";                /* 0x0123456789abcdef */

static void test_golden_node(void **state)
{
    (void)state;
    char children[128], root[8], k[3][RC_NODE_KEY_LEN];
    for (unsigned c = 0; c < 16; c++) memset(children + 8 * c, (int)(c * 0x11), 8);
    for (int i = 0; i < 8; i++) root[i] = (char)(0x0123456789abcdefull >> (8 * i));

    struct rc_header h = header(RC_KIND_DIGESTS, "n1", 0x0102030405060708ull, 1, 0x010203,
                                "n2");
    h.base = 41;
    struct rc_record r = node(0, 0, children, sizeof children, k[0]);
    check_golden(golden_digests_hex, 234, &h, &r, 1);

    h = header(RC_KIND_RANGES, "n2", 0x1122334455667788ull, 0, 0x010203, "n1");
    struct rc_record rs[2] = {node(1, 3, NULL, 0, k[1]), node(1, 12, NULL, 0, k[2])};
    check_golden(golden_ranges_hex, 154, &h, rs, 2);

    h = header(RC_KIND_ROOT, "n1", 0x0102030405060708ull, 0, 1, NULL);
    r = node(0, 0, root, sizeof root, k[0]);
    check_golden(golden_root_hex, 112, &h, &r, 1);
}

/* ---- key summaries: SUMS records in SUMMARY, HASHES records in WANTS ---- */

static struct rc_record sized(enum rc_op op, const char *value, size_t vlen)
{
    struct rc_record r = {.op = op, .value = value, .value_len = vlen};
    return r;
}

static void test_keysum_records(void **state)
{
    (void)state;
    enum { N = 300 };
    static char sums[N * RC_SUM_SIZE], hashes[N * RC_HASH_SIZE];
    for (uint32_t i = 0; i < N; i++) {
        struct rc_sum s = {UINT64_MAX - i, (uint64_t)i << 16 | 7, ~i, UINT64_MAX, i};
        rc_sum_put(sums + i * RC_SUM_SIZE, &s);
        rc_hash_put(hashes + i * RC_HASH_SIZE, (uint64_t)i * 0x9e3779b97f4a7c15ull);
    }
    /* one entry and many, several records a batch: entries come back */
    struct rc_record rs[2] = {sized(RC_OP_SUMS, sums, RC_SUM_SIZE),
                              sized(RC_OP_SUMS, sums, sizeof sums)};
    struct rc_header h = header(RC_KIND_SUMMARY, "node-b", 7, 3, 99, "node-a");
    h.base = 1;
    round_trip(&h, rs, 2);
    struct rc_record rh[2] = {sized(RC_OP_HASHES, hashes, RC_HASH_SIZE),
                              sized(RC_OP_HASHES, hashes, sizeof hashes)};
    h = header(RC_KIND_WANTS, "node-a", 7, 5, 99, "node-b");
    h.total = 1;
    round_trip(&h, rh, 2);
    struct rc_sum got;
    rc_sum_get(&rs[1], N - 1, &got);
    assert_true(got.hash == UINT64_MAX - (N - 1) && got.version == ((uint64_t)(N - 1) << 16 | 7) &&
                got.origin_tag == ~(uint32_t)(N - 1) && got.exp_version == UINT64_MAX &&
                got.exp_origin_tag == N - 1);
    assert_true(rc_hash_get(&rh[1], 2) == 2 * 0x9e3779b97f4a7c15ull);
    /* the byte layout of an entry: hash, version, origin, exp_version, exp origin */
    char e[RC_SUM_SIZE];
    struct rc_sum s = {0x0102030405060708ull, 0x1112131415161718ull, 0x21222324u,
                       0x3132333435363738ull, 0x41424344u};
    rc_sum_put(e, &s);
    size_t elen;
    char *want = unhex("0807060504030201 1817161514131211 24232221 3837363534333231 44434241",
                       &elen);
    assert_int_equal(elen, RC_SUM_SIZE);
    assert_memory_equal(e, want, RC_SUM_SIZE);
    free(want);
    /* an empty SUMMARY or WANTS (no record) is fine */
    h = header(RC_KIND_SUMMARY, "n", 1, 1, 2, "t");
    round_trip(&h, NULL, 0);

    /* the encoder refuses: wrong kind, no entries, partial entries, a key,
     * flags, an expiry or a stamp */
    struct rc_buf b = {0};
    const enum rc_kind other[] = {RC_KIND_WRITES, RC_KIND_SYNC_DATA, RC_KIND_DIGESTS,
                                  RC_KIND_WANTS};
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        h = header(other[i], "n", 1, 1, 0, "t");
        assert_int_equal(rc_begin(&b, &h), 0);
        assert_int_equal(rc_append(&b, &rs[0]), -1);
    }
    h = header(RC_KIND_SUMMARY, "n", 1, 1, 0, "t");
    assert_int_equal(rc_begin(&b, &h), 0);
    struct rc_record set = rec(RC_OP_SET, "k", "v", 0, 1, 1), node_rec = rh[0];
    node_rec.op = RC_OP_NODE;
    struct rc_record bad[] = {
        rh[0], set, node_rec, sized(RC_OP_SUMS, NULL, 0), sized(RC_OP_SUMS, sums, 31),
        sized(RC_OP_SUMS, sums, 33), sized(RC_OP_SUMS, sums, 64), sized(RC_OP_SUMS, sums, 32),
        sized(RC_OP_SUMS, sums, 32), sized(RC_OP_SUMS, sums, 32), sized(RC_OP_SUMS, sums, 32),
    };
    bad[6].key = "k";
    bad[6].key_len = 1;
    bad[7].client_flags = 1;
    bad[8].expire_ms = -1;
    bad[9].version = 1;
    bad[10].exp_origin_tag = 1;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        assert_int_equal(rc_append(&b, &bad[i]), -1);
        assert_int_equal(errno, EINVAL);
        assert_int_equal(rc_count(&b), 0);
    }
    h = header(RC_KIND_WANTS, "n", 1, 1, 0, "t");
    assert_int_equal(rc_begin(&b, &h), 0);
    struct rc_record badh[] = {rs[0], sized(RC_OP_HASHES, hashes, 7),
                               sized(RC_OP_HASHES, hashes, 12), sized(RC_OP_HASHES, NULL, 0)};
    for (size_t i = 0; i < sizeof badh / sizeof badh[0]; i++)
        assert_int_equal(rc_append(&b, &badh[i]), -1);
    assert_int_equal(rc_append(&b, &rh[0]), 0);

    /* the decoder refuses the same: patch a good WANTS batch */
    size_t rec_at = b.len - RC_RECORD_FIXED - RC_HASH_SIZE; /* its record */
    char *good = malloc(b.len);
    assert_non_null(good);
    memcpy(good, b.data, b.len);
    size_t len = b.len;
    assert_int_equal(status_of(good, len), RC_OK);
    struct { size_t at; unsigned char byte; enum rc_status st; } cases[] = {
        {rec_at, RC_OP_SUMS, RC_ERR_RANGE},        /* SUMS in WANTS */
        {rec_at, RC_OP_NODE, RC_ERR_RANGE},
        {rec_at, RC_OP_SET, RC_ERR_RANGE},
        {rec_at, 9, RC_ERR_RANGE},                 /* no op 9 */
        {rec_at + 1, 1, RC_ERR_RANGE},             /* a key */
        {rec_at + 3, 7, RC_ERR_RANGE},             /* 7 bytes */
        {rec_at + 3, 9, RC_ERR_RANGE},             /* 9 bytes, though cut */
        {rec_at + 3, 0, RC_ERR_RANGE},             /* no entry */
        {rec_at + 3, 16, RC_ERR_TRUNCATED},        /* 2 hashes, 1 there */
        {rec_at + 7, 1, RC_ERR_RANGE},             /* flags */
        {rec_at + 11, 1, RC_ERR_RANGE},            /* expiry */
        {rec_at + 19, 1, RC_ERR_RANGE},            /* version */
        {rec_at + 30, 1, RC_ERR_RANGE},            /* origin tag */
        {rec_at + 31, 1, RC_ERR_RANGE},            /* exp_version */
        {rec_at + 42, 1, RC_ERR_RANGE},            /* exp origin tag */
        {5, RC_KIND_SUMMARY, RC_ERR_RANGE},        /* HASHES in SUMMARY */
        {5, RC_KIND_SYNC_DATA, RC_ERR_RANGE},
        {5, 10, RC_ERR_RANGE},                     /* no kind 10 */
        {4, 1, RC_ERR_RANGE},                      /* version 1: kinds 1..4 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned char was = (unsigned char)good[cases[i].at];
        good[cases[i].at] = (char)cases[i].byte;
        assert_int_equal(status_of(good, len), cases[i].st);
        good[cases[i].at] = (char)was;
    }
    assert_int_equal(status_of(good, len), RC_OK);
    free(good);
    /* SUMS with V = 33 is out of range even when the batch ends early */
    h = header(RC_KIND_SUMMARY, "n", 1, 1, 0, "t");
    assert_int_equal(rc_begin(&b, &h), 0);
    assert_int_equal(rc_append(&b, &rs[0]), 0);
    put_le(b.data + b.len - RC_SUM_SIZE - RC_RECORD_FIXED + 3, 33, 4);
    assert_int_equal(status_of(b.data, b.len), RC_ERR_RANGE);
    put_le(b.data + b.len - RC_SUM_SIZE - RC_RECORD_FIXED + 3, 64, 4);
    assert_int_equal(status_of(b.data, b.len), RC_ERR_TRUNCATED);
    rc_buf_free(&b);
}

/* Worked example 5 of docs/replication.md (also tests/e2e/test_wire_format.py
 * and its wire_check.c): key summaries and a key asked back. */
static const char golden_summary_hex[] =
    "56544d42" "02" "08" "0200" "6e32" /* SUMMARY from "n2" */
    "8877665544332211"                 /* incarnation */
    "0100000000000000"                 /* seq: summary message #1 */
    "0302010000000000"                 /* aux: session 0x010203 */
    "0100000000000000"                 /* base 1: the last one */
    "0000000000000000"                 /* total 0 */
    "0200" "6e31"                      /* target "n1" */
    "01000000"                         /* count 1 */
    "07" "0000" "40000000" NODE_ZEROS  /* SUMS, no key, 2 entries */
    "0195ed7ffd7a573b" "01000068e5cf8b01" "0d0c0b0a" "01000068e5cf8b01" "0d0c0b0a"
    "1d88da4f70e321a9" "02000068e5cf8b01" "0d0c0b0a" "02000068e5cf8b01" "0d0c0b0a";

static const char golden_wants_hex[] =
    "56544d42" "02" "09" "0200" "6e31" /* WANTS from "n1" */
    "0807060504030201"                 /* incarnation */
    "0500000000000000"                 /* seq: message #5 of its answer */
    "0302010000000000"                 /* aux: session 0x010203 */
    "2900000000000000"                 /* base 41 */
    "0000000000000000"                 /* total 0: the keys listed */
    "0200" "6e32"                      /* target "n2" */
    "01000000"                         /* count 1 */
    "08" "0000" "08000000" NODE_ZEROS  /* HASHES, no key, 1 hash */
    "0195ed7ffd7a573b";                /* XXH3-64 of "user:1" */

static void test_golden_keysums(void **state)
{
    (void)state;
    const uint64_t t0 = 1700000000000ull << 16;
    const uint32_t tag = 0x0a0b0c0d;
    char sums[2 * RC_SUM_SIZE], hash[RC_HASH_SIZE];
    struct rc_sum s1 = {0x3b577afd7fed9501ull, t0 | 1, tag, t0 | 1, tag};
    struct rc_sum s2 = {0xa921e3704fda881dull, t0 | 2, tag, t0 | 2, tag};
    rc_sum_put(sums, &s1);
    rc_sum_put(sums + RC_SUM_SIZE, &s2);
    struct rc_header h = header(RC_KIND_SUMMARY, "n2", 0x1122334455667788ull, 1, 0x010203,
                                "n1");
    h.base = 1;
    struct rc_record r = sized(RC_OP_SUMS, sums, sizeof sums);
    check_golden(golden_summary_hex, 165, &h, &r, 1);

    rc_hash_put(hash, 0x3b577afd7fed9501ull);
    h = header(RC_KIND_WANTS, "n1", 0x0102030405060708ull, 5, 0x010203, "n2");
    h.base = 41;
    r = sized(RC_OP_HASHES, hash, sizeof hash);
    check_golden(golden_wants_hex, 109, &h, &r, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_empty_every_kind),
        cmocka_unit_test(test_round_trip_one_binary),
        cmocka_unit_test(test_round_trip_every_op_every_kind),
        cmocka_unit_test(test_round_trip_limits),
        cmocka_unit_test(test_round_trip_1000),
        cmocka_unit_test(test_buffer_reuse),
        cmocka_unit_test(test_encoder_rejects),
        cmocka_unit_test(test_node_records),
        cmocka_unit_test(test_golden_node),
        cmocka_unit_test(test_keysum_records),
        cmocka_unit_test(test_golden_keysums),
        cmocka_unit_test(test_record_size),
        cmocka_unit_test(test_status_names),
        cmocka_unit_test(test_base_batch_layout),
        cmocka_unit_test(test_bad_magic),
        cmocka_unit_test(test_bad_version),
        cmocka_unit_test(test_bad_id_lengths),
        cmocka_unit_test(test_base_total_any_value),
        cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_lying_count),
        cmocka_unit_test(test_bad_key_length),
        cmocka_unit_test(test_flush_has_no_key),
        cmocka_unit_test(test_bad_op),
        cmocka_unit_test(test_value_on_valueless_op),
        cmocka_unit_test(test_flags_on_valueless_op),
        cmocka_unit_test(test_trailing_byte),
        cmocka_unit_test(test_value_length_huge),
        cmocka_unit_test(test_mutations_are_safe),
        cmocka_unit_test(test_v1_decodes),
        cmocka_unit_test(test_v1_every_kind),
        cmocka_unit_test(test_v1_rejects_new_ops),
        cmocka_unit_test(test_v1_errors),
        cmocka_unit_test(test_v1_mutations_are_safe),
        cmocka_unit_test(test_v1_reencodes_as_v2),
        cmocka_unit_test(test_golden_writes),
        cmocka_unit_test(test_golden_sync_data_and_done),
        cmocka_unit_test(test_golden_sync_request),
        cmocka_unit_test(test_golden_v1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
