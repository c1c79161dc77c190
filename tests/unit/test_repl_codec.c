/*
 * test_repl_codec.c - the replication wire format: round trips, every
 * decoder error from hand-made bad input, truncation at every byte, and
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

static void assert_header_equal(const struct rc_header *a,
                                const struct rc_header *b, uint32_t count)
{
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->origin_len, b->origin_len);
    assert_memory_equal(a->origin, b->origin, a->origin_len);
    assert_true(a->incarnation == b->incarnation);
    assert_true(a->seq == b->seq);
    assert_true(a->aux == b->aux);
    assert_int_equal(a->target_len, b->target_len);
    if (a->target_len) assert_memory_equal(a->target, b->target, a->target_len);
    assert_int_equal(b->count, count);
}

static void assert_record_equal(const struct rc_record *a,
                                const struct rc_record *b)
{
    assert_int_equal(a->op, b->op);
    assert_int_equal(a->key_len, b->key_len);
    assert_memory_equal(a->key, b->key, a->key_len);
    assert_int_equal(a->value_len, b->value_len);
    if (a->value_len) assert_memory_equal(a->value, b->value, a->value_len);
    assert_true(a->expire_ms == b->expire_ms);
    assert_true(a->version == b->version);
    assert_int_equal(a->origin_tag, b->origin_tag);
}

/* Encode h + recs[0..n), decode, and compare everything. */
static void round_trip(const struct rc_header *h, const struct rc_record *recs,
                       uint32_t n)
{
    struct rc_buf b = {0};
    assert_int_equal(rc_begin(&b, h), 0);
    assert_int_equal(rc_count(&b), 0);
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

/* A valid three-record WRITES batch, used as the base of the bad inputs:
 * "VTMB" 1 1 N=2 "n1" inc seq=7 aux=0 T=0 count=3, then
 *   [40]  SET    "a"   "xyz"
 *   [71]  DEL    "bb"
 *   [100] EXPIRE "ccc" ""                                   (end: 130) */
#define BASE_REC1 40
#define BASE_REC2 71
#define BASE_REC3 100
#define BASE_COUNT 36
static char *base_batch(size_t *len)
{
    struct rc_header h = header(RC_KIND_WRITES, "n1", 99, 7, 0, NULL);
    struct rc_record r[3] = {
        {RC_OP_SET, "a", 1, "xyz", 3, 1000, 5, 1},
        {RC_OP_DEL, "bb", 2, NULL, 0, 0, 6, 1},
        {RC_OP_EXPIRE, "ccc", 3, "", 0, 2000, 7, 1},
    };
    struct rc_buf b = {0};
    assert_int_equal(rc_begin(&b, &h), 0);
    for (int i = 0; i < 3; i++) assert_int_equal(rc_append(&b, &r[i]), 0);
    assert_int_equal(b.len, 130);
    assert_int_equal(status_of(b.data, b.len), RC_OK);
    *len = b.len;
    return b.data; /* the caller frees */
}

static void put_le(char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) p[i] = (char)(v >> (8 * i));
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
    struct rc_record r = {RC_OP_SET, key, sizeof key, val, sizeof val,
                          1700000000000, 0xffffffffffffffffull, 0xffffffffu};
    round_trip(&h, &r, 1);
}

static void test_round_trip_every_op_every_kind(void **state)
{
    (void)state;
    struct rc_record r[4] = {
        {RC_OP_SET, "k1", 2, "v1", 2, 0, 1, 2},
        {RC_OP_SET, "k2", 2, "", 0, 0, 1, 2}, /* empty value */
        {RC_OP_DEL, "k3", 2, NULL, 0, 0, 1, 2},
        {RC_OP_EXPIRE, "k4", 2, "v4", 2, 1700000060000, 1, 2},
    };
    for (int k = RC_KIND_WRITES; k <= RC_KIND_SYNC_DONE; k++) {
        struct rc_header h = header((enum rc_kind)k, "a", 2, 3, 4, "bb");
        round_trip(&h, r, 4);
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
    struct rc_record r[3] = {
        {RC_OP_SET, key, RC_MAX_KEY_LEN, key, RC_MAX_KEY_LEN, INT64_MAX,
         UINT64_MAX, UINT32_MAX},
        {RC_OP_DEL, key, RC_MAX_KEY_LEN, NULL, 0, INT64_MIN, 0, 0},
        {RC_OP_EXPIRE, key, 1, "", 0, -1, 0, 0},
    };
    round_trip(&h, r, 3);
}

static void test_round_trip_1000(void **state)
{
    (void)state;
    enum { N = 1000 };
    static char bytes[4096];
    static struct rc_record r[N];
    for (size_t i = 0; i < sizeof bytes; i++) bytes[i] = (char)(i * 7 + 3);
    for (uint32_t i = 0; i < N; i++) {
        enum rc_op op = (enum rc_op)(1 + i % 3);
        size_t klen = 1 + (i * 37) % RC_MAX_KEY_LEN;
        if (i % 100 == 0) klen = RC_MAX_KEY_LEN;
        size_t vlen = op == RC_OP_DEL ? 0 : (i * 131) % 3000;
        r[i] = (struct rc_record){op, bytes + i % 97, klen, bytes + i % 89,
                                  vlen, (int64_t)i * 1000 - 5000,
                                  (uint64_t)i << 16 | i, i * 2654435761u};
    }
    struct rc_header h = header(RC_KIND_SYNC_DATA, "origin", 5, 0, 77, "dst");
    round_trip(&h, r, N);
}

static void test_buffer_reuse(void **state)
{
    (void)state;
    struct rc_header h1 = header(RC_KIND_WRITES, "long-origin-id", 1, 1, 0, NULL);
    struct rc_header h2 = header(RC_KIND_SYNC_DONE, "s", 1, 0, 9, "t");
    struct rc_record r = {RC_OP_SET, "k", 1, "v", 1, 0, 1, 1};
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
    struct rc_record ok = {RC_OP_SET, "k", 1, "v", 1, 0, 1, 1};
    assert_int_equal(rc_append(&b, &ok), -1); /* no rc_begin yet */
    assert_int_equal(errno, EINVAL);

    struct rc_header bad[] = {
        header((enum rc_kind)0, "n", 1, 1, 0, NULL),
        header((enum rc_kind)5, "n", 1, 1, 0, NULL),
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
    h = header(RC_KIND_SYNC_REQUEST, "n", 1, 1, 0, "t");
    h.target_len = RC_MAX_ID_LEN + 1;
    assert_int_equal(rc_begin(&b, &h), -1);

    h = header(RC_KIND_WRITES, "n", 1, 1, 0, NULL);
    assert_int_equal(rc_begin(&b, &h), 0);
    assert_int_equal(rc_append(&b, &ok), 0);
    size_t len = b.len;
    static char big[RC_MAX_KEY_LEN + 1];
    struct rc_record rbad[] = {
        {(enum rc_op)0, "k", 1, "v", 1, 0, 1, 1},
        {(enum rc_op)4, "k", 1, "v", 1, 0, 1, 1},
        {RC_OP_SET, "", 0, "v", 1, 0, 1, 1},
        {RC_OP_SET, big, RC_MAX_KEY_LEN + 1, "v", 1, 0, 1, 1},
        {RC_OP_DEL, "k", 1, "v", 1, 0, 1, 1},
        {RC_OP_SET, NULL, 1, "v", 1, 0, 1, 1},
        {RC_OP_SET, "k", 1, NULL, 1, 0, 1, 1},
    };
    for (size_t i = 0; i < sizeof rbad / sizeof rbad[0]; i++) {
        errno = 0;
        assert_int_equal(rc_append(&b, &rbad[i]), -1);
        assert_int_equal(errno, EINVAL);
        assert_int_equal(b.len, len); /* batch unchanged */
        assert_int_equal(rc_count(&b), 1);
    }
    if (sizeof(size_t) > 4) {
        struct rc_record huge = {RC_OP_SET, "k", 1, "v",
                                 (size_t)UINT32_MAX + 1, 0, 1, 1};
        assert_int_equal(rc_append(&b, &huge), -1);
    }
    assert_int_equal(status_of(b.data, b.len), RC_OK);

    /* A full count is refused rather than wrapped to 0. */
    put_le(b.data + b.len - rc_record_size(1, 1) - 4, UINT32_MAX, 4);
    assert_int_equal(rc_count(&b), UINT32_MAX);
    assert_int_equal(rc_append(&b, &ok), -1);
    assert_int_equal(errno, EOVERFLOW);
    assert_int_equal(b.len, len);
    rc_buf_free(&b);
}

static void test_record_size(void **state)
{
    (void)state;
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
    b[4] = 2;
    assert_int_equal(status_of(b, len), RC_ERR_VERSION);
    b[4] = 0;
    assert_int_equal(status_of(b, len), RC_ERR_VERSION);
    b[4] = 1;
    b[5] = 0; /* kind */
    assert_int_equal(status_of(b, len), RC_ERR_RANGE);
    b[5] = 5;
    assert_int_equal(status_of(b, len), RC_ERR_RANGE);
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
    put_le(b + 34, 256, 2); /* target length */
    assert_int_equal(status_of(b, len), RC_ERR_RANGE);
    put_le(b + 34, 255, 2); /* in range, but runs past the end */
    assert_int_equal(status_of(b, 60), RC_ERR_TRUNCATED);
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
    put_le(b + BASE_COUNT, 4, 4);
    assert_int_equal(status_of(b, len), RC_ERR_TRUNCATED);
    put_le(b + BASE_COUNT, 0xffffffff, 4);
    assert_int_equal(status_of(b, len), RC_ERR_TRUNCATED);
    put_le(b + BASE_COUNT, 2, 4);
    assert_int_equal(status_of(b, len), RC_ERR_TRAILING);
    put_le(b + BASE_COUNT, 0, 4);
    assert_int_equal(status_of(b, len), RC_ERR_TRAILING);
    /* A large count over bytes that would each parse as a record is still
     * refused up front: 4 records need at least 4 * 27 bytes. */
    put_le(b + BASE_COUNT, 4, 4);
    assert_int_equal(status_of(b, BASE_COUNT + 4 + 3 * RC_RECORD_FIXED),
                     RC_ERR_TRUNCATED);
    free(b);
}

static void test_bad_key_length(void **state)
{
    (void)state;
    size_t len;
    char *b = base_batch(&len);
    put_le(b + BASE_REC2 + 1, 0, 2);
    assert_int_equal(status_of(b, len), RC_ERR_RANGE);
    put_le(b + BASE_REC2 + 1, RC_MAX_KEY_LEN + 1, 2);
    assert_int_equal(status_of(b, len), RC_ERR_RANGE);
    put_le(b + BASE_REC2 + 1, RC_MAX_KEY_LEN, 2); /* legal, past the end */
    assert_int_equal(status_of(b, len), RC_ERR_TRUNCATED);
    free(b);
}

static void test_bad_op(void **state)
{
    (void)state;
    size_t len;
    char *b = base_batch(&len);
    b[BASE_REC3] = 0;
    assert_int_equal(status_of(b, len), RC_ERR_RANGE);
    b[BASE_REC3] = 4;
    assert_int_equal(status_of(b, len), RC_ERR_RANGE);
    b[BASE_REC3] = (char)0xff;
    assert_int_equal(status_of(b, len), RC_ERR_RANGE);
    free(b);
}

static void test_del_with_value(void **state)
{
    (void)state;
    size_t len;
    char *b = base_batch(&len);
    b[BASE_REC1] = RC_OP_DEL; /* the SET "a" "xyz" becomes a DEL with a value */
    assert_int_equal(status_of(b, len), RC_ERR_RANGE);
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
    put_le(b + BASE_REC1 + 3, 0xffffffff, 4);
    assert_int_equal(status_of(b, len), RC_ERR_TRUNCATED);
    put_le(b + BASE_REC3 + 3, 0xffffffff, 4); /* in the last record too */
    put_le(b + BASE_REC1 + 3, 3, 4);
    assert_int_equal(status_of(b, len), RC_ERR_TRUNCATED);
    put_le(b + BASE_REC3 + 3, 1, 4); /* one byte more than is there */
    assert_int_equal(status_of(b, len), RC_ERR_TRUNCATED);
    free(b);
}

/* Flip bytes of a valid batch at random: any result but a crash is fine,
 * and an accepted batch must yield exactly count in-bounds records. */
static void test_mutations_are_safe(void **state)
{
    (void)state;
    size_t len;
    char *b = base_batch(&len);
    uint32_t seed = 12345;
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
            while (rc_next(&rd, &r)) {
                assert_true(r.key >= m && r.key + r.key_len <= m + mlen);
                assert_true(r.value_len == 0 ||
                            (r.value >= m && r.value + r.value_len <= m + mlen));
                n++;
            }
            assert_int_equal(n, h.count);
        }
        free(m);
    }
    free(b);
}

/* ---- golden batches: the worked examples of docs/replication.md ---- */

static const char golden_writes_hex[] =
    /* header */
    "56544d42"         /* magic "VTMB" */
    "01"               /* version 1 */
    "01"               /* kind WRITES */
    "0200"             /* origin length 2 */
    "6e31"             /* origin "n1" */
    "0807060504030201" /* incarnation 0x0102030405060708 */
    "2a00000000000000" /* seq 42 */
    "0000000000000000" /* aux 0 */
    "0000"             /* target length 0 */
    "03000000"         /* count 3 */
    /* record 1: SET "user:1" = "hi", no expiry */
    "01" "0600" "02000000" "0000000000000000" "01000068e5cf8b01" "0d0c0b0a"
    "757365723a31" "6869"
    /* record 2: DEL "k" */
    "02" "0100" "00000000" "0000000000000000" "02000068e5cf8b01" "0d0c0b0a"
    "6b"
    /* record 3: EXPIRE "k2" = "v", expires at 1700000060000 */
    "03" "0200" "01000000" "6052e6cf8b010000" "03000068e5cf8b01" "0d0c0b0a"
    "6b32" "76";

static const char golden_sync_hex[] =
    "56544d42" "01" "02" "0200" "6e32" /* SYNC_REQUEST from "n2" */
    "8877665544332211"                 /* incarnation 0x1122334455667788 */
    "0000000000000000"                 /* seq 0 */
    "0302010000000000"                 /* aux (session id) 0x010203 */
    "0200" "6e31"                      /* target "n1" */
    "00000000";                        /* count 0 */

#define HLC_T0 ((uint64_t)1700000000000 << 16)

static void test_golden_writes(void **state)
{
    (void)state;
    size_t glen;
    char *golden = unhex(golden_writes_hex, &glen);
    assert_int_equal(glen, 133);

    struct rc_header h = header(RC_KIND_WRITES, "n1", 0x0102030405060708ull,
                                42, 0, NULL);
    struct rc_record r[3] = {
        {RC_OP_SET, "user:1", 6, "hi", 2, 0, HLC_T0 | 1, 0x0a0b0c0d},
        {RC_OP_DEL, "k", 1, NULL, 0, 0, HLC_T0 | 2, 0x0a0b0c0d},
        {RC_OP_EXPIRE, "k2", 2, "v", 1, 1700000060000, HLC_T0 | 3, 0x0a0b0c0d},
    };
    struct rc_buf b = {0};
    assert_int_equal(rc_begin(&b, &h), 0);
    for (int i = 0; i < 3; i++) assert_int_equal(rc_append(&b, &r[i]), 0);
    assert_int_equal(b.len, glen);
    assert_memory_equal(b.data, golden, glen);

    struct rc_header got;
    struct rc_reader rd;
    struct rc_record rec;
    assert_int_equal(rc_decode(golden, glen, &got, &rd), RC_OK);
    assert_header_equal(&h, &got, 3);
    for (int i = 0; i < 3; i++) {
        assert_true(rc_next(&rd, &rec));
        assert_record_equal(&r[i], &rec);
    }
    assert_false(rc_next(&rd, &rec));
    rc_buf_free(&b);
    free(golden);
}

static void test_golden_sync_request(void **state)
{
    (void)state;
    size_t glen;
    char *golden = unhex(golden_sync_hex, &glen);
    assert_int_equal(glen, 42);
    struct rc_header h = header(RC_KIND_SYNC_REQUEST, "n2",
                                0x1122334455667788ull, 0, 0x010203, "n1");
    struct rc_buf b = {0};
    assert_int_equal(rc_begin(&b, &h), 0);
    assert_int_equal(b.len, glen);
    assert_memory_equal(b.data, golden, glen);

    struct rc_header got;
    struct rc_reader rd;
    assert_int_equal(rc_decode(golden, glen, &got, &rd), RC_OK);
    assert_header_equal(&h, &got, 0);
    rc_buf_free(&b);
    free(golden);
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
        cmocka_unit_test(test_record_size),
        cmocka_unit_test(test_status_names),
        cmocka_unit_test(test_bad_magic),
        cmocka_unit_test(test_bad_version),
        cmocka_unit_test(test_bad_id_lengths),
        cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_lying_count),
        cmocka_unit_test(test_bad_key_length),
        cmocka_unit_test(test_bad_op),
        cmocka_unit_test(test_del_with_value),
        cmocka_unit_test(test_trailing_byte),
        cmocka_unit_test(test_value_length_huge),
        cmocka_unit_test(test_mutations_are_safe),
        cmocka_unit_test(test_golden_writes),
        cmocka_unit_test(test_golden_sync_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
