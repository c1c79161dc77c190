/*
 * fuzz_snapshot.c - libFuzzer target for the snapshot file validator
 * (src/snap_codec.c, which reads batches with src/repl_codec.c).
 *
 * One input = the bytes of a --snapshot file, as a disk, a copy or another
 * program could leave it. Each input is parsed twice: as it is, and with
 * its last 8 bytes replaced by the right checksum, so that the fuzzer gets
 * past the checksum to the framing and the batches inside.
 *
 * Properties checked (any violation aborts, which libFuzzer reports):
 *  1. snap_parse() never reads out of bounds (libFuzzer's buffer is exactly
 *     the input's size) and returns a known status; on an error, detail is
 *     set and at <= size.
 *  2. On SNAP_OK, snap_next() yields exactly info.records records, with
 *     info.tombstones collection times, each record in range (op, key and
 *     value inside the input), and the FLUSH record only first.
 *  3. The format is canonical: encoding the records again, chunk by chunk,
 *     with snap_encode_header, snap_chunk_begin/add/encode, snap_encode_end
 *     and snap_encode_sum (which must accept them all) gives back the input
 *     byte for byte.
 *
 * Built by `make fuzz` / `make fuzz-smoke` with clang
 * -fsanitize=fuzzer,address,undefined from src/snap_codec.c and
 * src/repl_codec.c, linked with libxxhash.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "repl_codec.h"
#include "snap_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz_snapshot: property failed at %s:%d: %s\n",   \
                    __FILE__, __LINE__, #cond);                                \
            abort();                                                           \
        }                                                                      \
    } while (0)

static bool inside(const char *p, size_t n, const char *lo, size_t size)
{
    return n == 0 || (p != NULL && p >= lo && n <= size && (size_t)(p - lo) <= size - n);
}

static void check(const char *data, size_t size)
{
    struct snap_info info;
    enum snap_status st = snap_parse(data, size, &info);
    CHECK(st >= SNAP_OK && st <= SNAP_ERR_TRAILING);
    CHECK(strcmp(snap_status_name(st), "unknown") != 0);
    if (st != SNAP_OK) {
        CHECK(info.detail != NULL);
        CHECK(info.at <= size);
        return;
    }
    CHECK(info.version == SNAP_VERSION);
    CHECK(info.node_id_len >= 1 && info.node_id_len <= RC_MAX_ID_LEN);
    CHECK(inside(info.node_id, info.node_id_len, data, size));

    struct snap_buf out = {0};
    struct snap_chunk c = {0};
    CHECK(snap_encode_header(&out, info.node_id, info.node_id_len, info.written_ms) == 0);
    struct snap_reader r;
    struct rc_record rec;
    int64_t collect;
    uint64_t n = 0, tombs = 0, seq = 0;
    snap_reader_init(&r, data, size);
    while (snap_next(&r, &rec, &collect)) {
        CHECK(n < info.records);
        CHECK(rec.op == RC_OP_SET || rec.op == RC_OP_DEL || rec.op == RC_OP_EXPIRED ||
              rec.op == RC_OP_FLUSH);
        CHECK(rec.op != RC_OP_FLUSH || n == 0);
        CHECK(inside(rec.key, rec.key_len, data, size));
        CHECK(inside(rec.value, rec.value_len, data, size));
        CHECK(rec.op == RC_OP_FLUSH ? rec.key_len == 0
                                    : rec.key_len >= 1 && rec.key_len <= RC_MAX_KEY_LEN);
        CHECK(rec.op == RC_OP_SET || (rec.value_len == 0 && rec.client_flags == 0));
        if (rec.op == RC_OP_DEL || rec.op == RC_OP_EXPIRED) tombs++;
        else CHECK(collect == 0);
        if (r.seq != seq) { /* a new chunk began: close the previous one */
            if (seq) {
                CHECK(snap_chunk_encode(&c, &out) == 0);
                c.batch.len = 0;
            }
            seq = r.seq;
            CHECK(snap_chunk_begin(&c, info.node_id, info.node_id_len, seq) == 0);
        }
        CHECK(snap_chunk_add(&c, &rec, collect) == 0);
        n++;
    }
    CHECK(n == info.records);
    CHECK(tombs == info.tombstones);
    CHECK(seq == info.chunks);
    if (seq) CHECK(snap_chunk_encode(&c, &out) == 0);
    CHECK(snap_encode_end(&out, n) == 0);
    CHECK(snap_encode_sum(&out, XXH3_64bits(out.data, out.len)) == 0);
    CHECK(out.len == size && memcmp(out.data, data, size) == 0);
    snap_chunk_free(&c);
    snap_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check((const char *)data, size);
    if (size < 8) return 0;
    char *sealed = malloc(size);
    if (!sealed) return 0;
    memcpy(sealed, data, size);
    uint64_t h = XXH3_64bits(sealed, size - 8);
    for (int i = 0; i < 8; i++) sealed[size - 8 + i] = (char)(unsigned char)(h >> (8 * i));
    check(sealed, size);
    free(sealed);
    return 0;
}
