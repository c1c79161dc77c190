/*
 * fuzz_codec.c - libFuzzer target for the replication batch decoder
 * (src/repl_codec.c).
 *
 * One input = one AMQP message body, as a hostile publisher on the exchange
 * could send it. libFuzzer hands it over in a heap buffer of exactly its
 * size, so ASan sees any read past the end.
 *
 * Properties checked (any violation aborts, which libFuzzer reports):
 *  1. rc_decode() never reads out of bounds and returns a known status; on
 *     failure it leaves *h and *rd zeroed, so rc_next() yields nothing.
 *  2. On RC_OK, rc_next() yields exactly h.count records, each in bounds and
 *     in range (op, key length, DEL without value), then stops.
 *  3. The format is canonical: re-encoding the decoded header and records
 *     with rc_begin()/rc_append() (which must accept them all) gives back
 *     the input byte for byte, and rc_count()/rc_record_size() agree.
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

    CHECK(h.kind >= RC_KIND_WRITES && h.kind <= RC_KIND_SYNC_DONE);
    CHECK(h.origin_len >= 1 && h.origin_len <= RC_MAX_ID_LEN);
    CHECK(h.target_len <= RC_MAX_ID_LEN);
    CHECK(inside(h.origin, h.origin_len, data, size));
    CHECK(inside(h.target, h.target_len, data, size));

    struct rc_buf b = {0};
    CHECK(rc_begin(&b, &h) == 0);
    size_t expect_len = b.len;
    uint32_t n = 0;
    while (rc_next(&rd, &r)) {
        CHECK(n < h.count);
        CHECK(r.op >= RC_OP_SET && r.op <= RC_OP_EXPIRE);
        CHECK(r.key_len >= 1 && r.key_len <= RC_MAX_KEY_LEN);
        CHECK(r.op != RC_OP_DEL || r.value_len == 0);
        CHECK(inside(r.key, r.key_len, data, size));
        CHECK(inside(r.value, r.value_len, data, size));
        CHECK(rc_append(&b, &r) == 0);
        expect_len += rc_record_size(r.key_len, r.value_len);
        n++;
    }
    CHECK(n == h.count);
    CHECK(!rc_next(&rd, &r)); /* stays exhausted */
    CHECK(rc_count(&b) == h.count);
    CHECK(b.len == expect_len);
    CHECK(b.len == size);
    CHECK(memcmp(b.data, data, size) == 0);
    rc_buf_free(&b);
    return 0;
}
