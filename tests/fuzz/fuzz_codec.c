/*
 * fuzz_codec.c - libFuzzer target for the replication batch decoder
 * (src/repl_codec.c), wire format version 2 and version 1.
 *
 * One input = one AMQP message body, as a hostile publisher on the exchange
 * could send it. libFuzzer hands it over in a heap buffer of exactly its
 * size, so ASan sees any read past the end.
 *
 * Properties checked (any violation aborts, which libFuzzer reports):
 *  1. rc_decode() never reads out of bounds and returns a known status; on
 *     failure it leaves *h and *rd zeroed, so rc_next() yields nothing.
 *  2. On RC_OK, rc_next() yields exactly h.count records, each in bounds and
 *     in range: op 1..8 (1..3 in version 1), each in the kind it belongs to
 *     (NODE in DIGESTS/RANGES/ROOT, SUMS in SUMMARY, HASHES in WANTS, the
 *     others in kinds 1..4); FLUSH, SUMS and HASHES without a key and every
 *     other op but NODE with a key of 1..1024 bytes, DEL/FLUSH/EXPIRED
 *     without value; SUMS and HASHES with whole entries (32 and 8 bytes),
 *     at least one, and, like NODE, client flags, expiry and stamps 0; a
 *     version-1 record has flags 0 and its expiry stamped like its value.
 *     Every entry of a SUMS or HASHES record read with rc_sum_get or
 *     rc_hash_get and written back with rc_sum_put or rc_hash_put gives its
 *     bytes back.
 *  3. The format is canonical. The encoder writes version 2 only, so:
 *     - version 2: re-encoding the decoded header and records with
 *       rc_begin()/rc_append() (which must accept them all) gives back the
 *       input byte for byte, and rc_count()/rc_record_size() agree;
 *     - version 1: the version-1 writer below (the old layout, written
 *       from docs/replication.md) gives back the input byte for byte; and
 *       the version-2 re-encoding is exactly 16 bytes longer in the header
 *       and 16 in each record, and decodes to the same header and records.
 *
 * Built by `make fuzz` / `make fuzz-smoke` with clang
 * -fsanitize=fuzzer,address,undefined straight from src/repl_codec.c.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repl_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "fuzz_codec: property failed at %s:%d: %s\n",   \
                    __FILE__, __LINE__, #cond);                             \
            abort();                                                        \
        }                                                                   \
    } while (0)

static bool all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i]) return false;
    return true;
}

static bool inside(const char *p, size_t n, const uint8_t *data, size_t size)
{
    const char *lo = (const char *)data;
    return n == 0 || (p != NULL && p >= lo && n <= size && p - lo <= (ptrdiff_t)(size - n));
}

static bool same_record(const struct rc_record *a, const struct rc_record *b)
{
    return a->op == b->op && a->key_len == b->key_len &&
           (a->key_len == 0 || memcmp(a->key, b->key, a->key_len) == 0) &&
           a->value_len == b->value_len &&
           (a->value_len == 0 || memcmp(a->value, b->value, a->value_len) == 0) &&
           a->client_flags == b->client_flags && a->expire_ms == b->expire_ms &&
           a->version == b->version && a->origin_tag == b->origin_tag &&
           a->exp_version == b->exp_version && a->exp_origin_tag == b->exp_origin_tag;
}

static bool same_header(const struct rc_header *a, const struct rc_header *b)
{
    return a->kind == b->kind && a->origin_len == b->origin_len &&
           memcmp(a->origin, b->origin, a->origin_len) == 0 &&
           a->incarnation == b->incarnation && a->seq == b->seq && a->aux == b->aux &&
           a->base == b->base && a->total == b->total && a->target_len == b->target_len &&
           (a->target_len == 0 || memcmp(a->target, b->target, a->target_len) == 0) &&
           a->count == b->count;
}

/* ---- a version-1 writer (the encoder writes version 2 only) ---- */

struct out {
    unsigned char *p;
    size_t len, cap;
};

static void out_bytes(struct out *o, const void *src, size_t n)
{
    if (o->len + n > o->cap) {
        size_t cap = o->cap ? o->cap : 256;
        while (cap < o->len + n) cap *= 2;
        o->p = realloc(o->p, cap);
        CHECK(o->p != NULL);
        o->cap = cap;
    }
    if (n) memcpy(o->p + o->len, src, n);
    o->len += n;
}

static void out_le(struct out *o, uint64_t v, int n)
{
    unsigned char b[8];
    for (int i = 0; i < n; i++) b[i] = (unsigned char)(v >> (8 * i));
    out_bytes(o, b, (size_t)n);
}

static void v1_header(struct out *o, const struct rc_header *h)
{
    out_bytes(o, "VTMB", 4);
    out_le(o, 1, 1);
    out_le(o, (uint64_t)h->kind, 1);
    out_le(o, h->origin_len, 2);
    out_bytes(o, h->origin, h->origin_len);
    out_le(o, h->incarnation, 8);
    out_le(o, h->seq, 8);
    out_le(o, h->aux, 8);
    out_le(o, h->target_len, 2);
    out_bytes(o, h->target, h->target_len);
    out_le(o, h->count, 4);
}

static void v1_record(struct out *o, const struct rc_record *r)
{
    out_le(o, (uint64_t)r->op, 1);
    out_le(o, r->key_len, 2);
    out_le(o, r->value_len, 4);
    out_le(o, (uint64_t)r->expire_ms, 8);
    out_le(o, r->version, 8);
    out_le(o, r->origin_tag, 4);
    out_bytes(o, r->key, r->key_len);
    out_bytes(o, r->value, r->value_len);
}

/* A SUMS or HASHES record: no key, whole entries (at least one), each of
 * which reads and writes back to its own bytes. */
static void check_entries(const struct rc_record *r)
{
    size_t size = r->op == RC_OP_SUMS ? RC_SUM_SIZE : RC_HASH_SIZE;
    CHECK(r->key_len == 0 && r->value_len > 0 && r->value_len % size == 0);
    char back[RC_SUM_SIZE];
    for (size_t i = 0; i < r->value_len / size; i++) {
        if (r->op == RC_OP_SUMS) {
            struct rc_sum s;
            rc_sum_get(r, i, &s);
            rc_sum_put(back, &s);
        } else {
            rc_hash_put(back, rc_hash_get(r, i));
        }
        CHECK(memcmp(back, r->value + i * size, size) == 0);
    }
}

/* ---- the target ---- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rc_header h;
    struct rc_reader rd;
    struct rc_record r;

    enum rc_status st = rc_decode((const char *)data, size, &h, &rd);
    CHECK(st >= RC_OK && st <= RC_ERR_TRAILING);
    CHECK(rc_status_name(st) != NULL && strcmp(rc_status_name(st), "unknown") != 0);
    if (st != RC_OK) {
        CHECK(all_zero(&h, sizeof h) && all_zero(&rd, sizeof rd));
        CHECK(!rc_next(&rd, &r));
        return 0;
    }

    bool v1 = h.version == 1;
    CHECK(h.version == 1 || h.version == 2);
    CHECK(rd.version == h.version);
    CHECK(h.kind >= RC_KIND_WRITES && h.kind <= (v1 ? RC_KIND_SYNC_DONE : RC_KIND_WANTS));
    bool node_kind = h.kind == RC_KIND_DIGESTS || h.kind == RC_KIND_RANGES ||
                     h.kind == RC_KIND_ROOT;
    bool sums_kind = h.kind == RC_KIND_SUMMARY, hashes_kind = h.kind == RC_KIND_WANTS;
    CHECK(h.origin_len >= 1 && h.origin_len <= RC_MAX_ID_LEN);
    CHECK(h.target_len <= RC_MAX_ID_LEN);
    CHECK(inside(h.origin, h.origin_len, data, size));
    CHECK(inside(h.target, h.target_len, data, size));
    if (v1) CHECK(h.base == 0 && h.total == 0);

    struct rc_buf b = {0};
    struct out o1 = {0};
    CHECK(rc_begin(&b, &h) == 0);
    if (v1) v1_header(&o1, &h);
    size_t expect_len = b.len;
    uint32_t n = 0;
    while (rc_next(&rd, &r)) {
        bool valued = r.op == RC_OP_SET || r.op == RC_OP_EXPIRE;
        CHECK(n < h.count);
        bool sized = r.op == RC_OP_NODE || r.op == RC_OP_SUMS || r.op == RC_OP_HASHES;
        CHECK(r.op >= RC_OP_SET && r.op <= (v1 ? RC_OP_EXPIRE : RC_OP_HASHES));
        CHECK((r.op == RC_OP_NODE) == node_kind);
        CHECK((r.op == RC_OP_SUMS) == sums_kind);
        CHECK((r.op == RC_OP_HASHES) == hashes_kind);
        if (sized)
            CHECK(r.client_flags == 0 && r.expire_ms == 0 && r.version == 0 &&
                  r.origin_tag == 0 && r.exp_version == 0 && r.exp_origin_tag == 0);
        if (r.op == RC_OP_FLUSH)
            CHECK(r.key_len == 0);
        else if (r.op == RC_OP_NODE)
            CHECK(r.key_len == RC_NODE_KEY_LEN && (unsigned char)r.key[0] < RC_NODE_LEVELS &&
                  (r.value_len == 0 || r.value_len == 8 || r.value_len == 128));
        else if (r.op == RC_OP_SUMS || r.op == RC_OP_HASHES)
            check_entries(&r);
        else
            CHECK(r.key_len >= 1 && r.key_len <= RC_MAX_KEY_LEN);
        CHECK(valued || sized || (r.value_len == 0 && r.client_flags == 0));
        if (v1)
            CHECK(r.client_flags == 0 && r.exp_version == r.version &&
                  r.exp_origin_tag == r.origin_tag);
        CHECK(inside(r.key, r.key_len, data, size));
        CHECK(inside(r.value, r.value_len, data, size));
        CHECK(rc_append(&b, &r) == 0);
        if (v1) v1_record(&o1, &r);
        expect_len += rc_record_size(r.key_len, r.value_len);
        n++;
    }
    CHECK(n == h.count);
    CHECK(!rc_next(&rd, &r)); /* stays exhausted */
    CHECK(rc_count(&b) == h.count);
    CHECK(b.len == expect_len);
    if (!v1) {
        CHECK(b.len == size);
        CHECK(memcmp(b.data, data, size) == 0);
    } else {
        /* canonical in its own layout ... */
        CHECK(o1.len == size);
        CHECK(memcmp(o1.p, data, size) == 0);
        /* ... and the version-2 re-encoding carries the same batch */
        CHECK(b.len == size + 16 + 16 * (size_t)h.count);
        struct rc_header h2;
        struct rc_reader rd1, rd2;
        struct rc_record r1, r2;
        CHECK(rc_decode(b.data, b.len, &h2, &rd2) == RC_OK);
        CHECK(h2.version == 2);
        CHECK(same_header(&h, &h2));
        CHECK(rc_decode((const char *)data, size, &h, &rd1) == RC_OK);
        while (rc_next(&rd1, &r1)) {
            CHECK(rc_next(&rd2, &r2));
            CHECK(same_record(&r1, &r2));
        }
        CHECK(!rc_next(&rd2, &r2));
    }
    free(o1.p);
    rc_buf_free(&b);
    return 0;
}
