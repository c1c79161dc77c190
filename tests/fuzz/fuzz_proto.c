/*
 * fuzz_proto.c - libFuzzer target for the text protocol (src/proto.c).
 *
 * One input = one request line, exactly as the connection would hand it to
 * proto_parse_line(): copied into a heap buffer of exactly its size (so ASan
 * sees any read or write past the end), nothing stripped.
 *
 * Properties checked (any violation aborts, which libFuzzer reports):
 *  1. The parser never reads or writes outside line[0..len), and what it
 *     returns is consistent: key/value point inside the line, a syntax error
 *     names its detail, key lengths respect PROTO_MAX_KEY_LEN, a TTL is in
 *     range, the value respects the limit.
 *  2. Reply encoding round-trips for every parsed string (and for the raw
 *     input taken as a value): encode(v) has the announced length, holds no
 *     raw control byte, never starts with "Error: ", decode(encode(v)) == v,
 *     and encode(decode(encode(v))) == encode(v).
 *  3. A parsed request, written back canonically (every string byte as
 *     \xHH), parses to the same request: the grammar and the unescaper agree.
 *  4. The value limit is exact: a request that parses with value length n
 *     under the default limit parses identically with limit n, and answers
 *     PROTO_ERR_VALUE_TOO_LARGE with limit n - 1.
 *  5. proto_error_line() is called for every status (with the detail the
 *     parser returned) and a set of capacities around the line's length,
 *     into exact-size heap buffers: it writes min(cap, full) bytes, the last
 *     one '\n', and with cap >= 128 the whole "Error: ..." line.
 *  6. proto_value_decode() on arbitrary bytes stays in bounds; when it
 *     succeeds, its output round-trips through encode/decode.
 *
 * Built by `make fuzz` / `make fuzz-smoke` with clang
 * -fsanitize=fuzzer,address,undefined straight from src/proto.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DEFAULT_MAX_VALUE 1048576u

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "fuzz_proto: property failed at %s:%d: %s\n",   \
                    __FILE__, __LINE__, #cond);                             \
            abort();                                                        \
        }                                                                   \
    } while (0)

/* An exactly sized heap copy (malloc(0) is avoided: it may return NULL). */
static char *dup_exact(const void *src, size_t n)
{
    char *p = malloc(n ? n : 1);
    CHECK(p != NULL);
    if (n) memcpy(p, src, n);
    return p;
}

/* Property 2 for one byte string. */
static void check_value_roundtrip(const char *v, size_t len)
{
    size_t elen = proto_value_encoded_len(v, len);
    CHECK(elen >= len);
    CHECK(elen <= 4 * len || len == 0);

    char *enc = dup_exact("", elen); /* exactly elen bytes */
    size_t n = proto_value_encode(enc, v, len);
    CHECK(n == elen);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)enc[i];
        CHECK(c >= 0x20 && c != 0x7f); /* one line, no raw control byte */
    }
    CHECK(!(n >= 7 && memcmp(enc, "Error: ", 7) == 0));
    /* "equals len exactly when the value can be sent as it is" */
    if (elen == len && len > 0) CHECK(memcmp(enc, v, len) == 0);

    char *dec = dup_exact(enc, n);
    size_t dlen = proto_value_decode(dec, n);
    CHECK(dlen == len);
    CHECK(len == 0 || memcmp(dec, v, len) == 0);

    /* encode(decode(encode(v))) == encode(v) */
    size_t elen2 = proto_value_encoded_len(dec, dlen);
    CHECK(elen2 == elen);
    char *enc2 = dup_exact("", elen2);
    size_t n2 = proto_value_encode(enc2, dec, dlen);
    CHECK(n2 == n);
    CHECK(n == 0 || memcmp(enc2, enc, n) == 0);

    free(enc2);
    free(dec);
    free(enc);
}

/* Property 6: decode arbitrary bytes. */
static void check_decode_any(const uint8_t *data, size_t size)
{
    char *buf = dup_exact(data, size);
    size_t dlen = proto_value_decode(buf, size);
    if (dlen != (size_t)-1) {
        CHECK(dlen <= size);
        check_value_roundtrip(buf, dlen);
    }
    free(buf);
}

/* Property 5. */
static void check_error_lines(const char *detail)
{
    static const enum proto_status all[] = {
        PROTO_OK,           PROTO_ERR_UNKNOWN_COMMAND, PROTO_ERR_SYNTAX,
        PROTO_ERR_TTL_NOT_INT, PROTO_ERR_TTL_RANGE,    PROTO_ERR_KEY_TOO_LONG,
        PROTO_ERR_VALUE_TOO_LARGE,
    };
    for (size_t s = 0; s < sizeof all / sizeof all[0]; s++) {
        char full[256];
        size_t flen = proto_error_line(full, sizeof full, all[s], detail);
        CHECK(flen > 7 && flen <= 128);
        CHECK(memcmp(full, "Error: ", 7) == 0);
        CHECK(full[flen - 1] == '\n');
        CHECK(memchr(full, '\n', flen - 1) == NULL);
        const size_t caps[] = {0, 1, 2, 6, 7, 8, flen - 1, flen, flen + 1, 128};
        for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++) {
            size_t cap = caps[k];
            char *dst = dup_exact("", cap);
            size_t n = proto_error_line(dst, cap, all[s], detail);
            CHECK(n <= cap);
            if (cap == 0) {
                CHECK(n == 0);
            } else {
                CHECK(n == (flen < cap ? flen : cap));
                CHECK(dst[n - 1] == '\n');
                CHECK(n < 2 || memcmp(dst, full, n - 1) == 0);
            }
            free(dst);
        }
    }
}

/* Canonical text of one string argument: every byte as \xHH. */
static size_t put_hex_string(char *dst, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t w = 0;
    dst[w++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[w++] = '\\';
        dst[w++] = 'x';
        dst[w++] = hex[c >> 4];
        dst[w++] = hex[c & 15];
    }
    dst[w++] = '"';
    return w;
}

static const char *cmd_name(enum proto_cmd cmd)
{
    switch (cmd) {
    case PROTO_CMD_SET: return "set";
    case PROTO_CMD_GET: return "get";
    case PROTO_CMD_DEL: return "del";
    case PROTO_CMD_TTL: return "ttl";
    case PROTO_CMD_EXPIRE: return "expire";
    case PROTO_CMD_PING: return "ping";
    case PROTO_CMD_STATS: return "stats";
    case PROTO_CMD_QUIT: return "quit";
    case PROTO_CMD_AUTH: return "auth";
    case PROTO_CMD_NONE: break;
    }
    return NULL;
}

static bool same_request(const struct proto_request *a, const struct proto_request *b)
{
    return a->cmd == b->cmd && a->key_len == b->key_len &&
           (a->key_len == 0 || memcmp(a->key, b->key, a->key_len) == 0) &&
           a->value_len == b->value_len &&
           (a->value_len == 0 || memcmp(a->value, b->value, a->value_len) == 0) &&
           (a->value == NULL) == (b->value == NULL) &&
           (a->key == NULL) == (b->key == NULL) &&
           a->has_ttl == b->has_ttl && (!a->has_ttl || a->ttl == b->ttl);
}

/* Property 3: write req back canonically and parse it again. */
static void check_reparse(const struct proto_request *req,
                          const struct proto_limits *lim)
{
    const char *name = cmd_name(req->cmd);
    CHECK(name != NULL);
    size_t cap = 32 + 4 * (req->key_len + req->value_len) + 8;
    char *line = malloc(cap);
    CHECK(line != NULL);
    size_t w = (size_t)sprintf(line, "%s(", name);

    switch (req->cmd) {
    case PROTO_CMD_SET:
        w += put_hex_string(line + w, req->key, req->key_len);
        line[w++] = ',';
        w += put_hex_string(line + w, req->value, req->value_len);
        if (req->has_ttl) w += (size_t)sprintf(line + w, ",%u", (unsigned)req->ttl);
        break;
    case PROTO_CMD_GET:
    case PROTO_CMD_DEL:
    case PROTO_CMD_TTL:
    case PROTO_CMD_AUTH:
        w += put_hex_string(line + w, req->key, req->key_len);
        break;
    case PROTO_CMD_EXPIRE:
        w += put_hex_string(line + w, req->key, req->key_len);
        w += (size_t)sprintf(line + w, ",%u", (unsigned)req->ttl);
        break;
    default:
        break;
    }
    line[w++] = ')';
    CHECK(w <= cap);

    char *exact = dup_exact(line, w);
    struct proto_request again;
    enum proto_status st = proto_parse_line(exact, w, lim, &again);
    CHECK(st == PROTO_OK);
    CHECK(same_request(req, &again));
    free(exact);
    free(line);
}

/* Property 1: fields of a PROTO_OK request. */
static void check_ok_fields(const struct proto_request *req, const char *line,
                            size_t size, const struct proto_limits *lim)
{
    if (req->key) CHECK(req->key >= line && req->key + req->key_len <= line + size);
    if (req->value)
        CHECK(req->value >= line && req->value + req->value_len <= line + size);
    switch (req->cmd) {
    case PROTO_CMD_SET:
        CHECK(req->value != NULL);
        CHECK(req->value_len <= lim->max_value_len);
        /* fall through */
    case PROTO_CMD_GET:
    case PROTO_CMD_DEL:
    case PROTO_CMD_TTL:
    case PROTO_CMD_EXPIRE:
        CHECK(req->key != NULL);
        CHECK(req->key_len >= 1 && req->key_len <= PROTO_MAX_KEY_LEN);
        break;
    case PROTO_CMD_AUTH:
        CHECK(req->key != NULL);
        break;
    default:
        CHECK(req->key == NULL && req->value == NULL);
        break;
    }
    if (req->cmd == PROTO_CMD_EXPIRE) CHECK(req->has_ttl);
    if (req->has_ttl) CHECK(req->ttl <= PROTO_MAX_TTL);
}

/* Property 4: the value limit is exact. */
static void check_value_limit(const uint8_t *data, size_t size,
                              const struct proto_request *req)
{
    struct proto_limits at = {.max_value_len = req->value_len};
    char *line = dup_exact(data, size);
    struct proto_request r2;
    CHECK(proto_parse_line(line, size, &at, &r2) == PROTO_OK);
    CHECK(same_request(req, &r2));
    free(line);

    if (req->value_len == 0) return;
    struct proto_limits below = {.max_value_len = req->value_len - 1};
    line = dup_exact(data, size);
    CHECK(proto_parse_line(line, size, &below, &r2) == PROTO_ERR_VALUE_TOO_LARGE);
    free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct proto_limits lim = {.max_value_len = DEFAULT_MAX_VALUE};
    char *line = dup_exact(data, size);
    struct proto_request req;

    enum proto_status st = proto_parse_line(line, size, &lim, &req);
    CHECK(st >= PROTO_OK && st <= PROTO_ERR_VALUE_TOO_LARGE);
    if (st == PROTO_ERR_SYNTAX) CHECK(req.detail != NULL);

    if (st == PROTO_OK) {
        check_ok_fields(&req, line, size, &lim);
        if (req.key) check_value_roundtrip(req.key, req.key_len);
        if (req.value) check_value_roundtrip(req.value, req.value_len);
        if (req.cmd != PROTO_CMD_NONE) check_reparse(&req, &lim);
        if (req.cmd == PROTO_CMD_SET) check_value_limit(data, size, &req);
    }
    check_error_lines(st == PROTO_ERR_SYNTAX ? req.detail : NULL);
    free(line);

    /* The raw input as a value, and as encoded text. */
    check_value_roundtrip((const char *)data, size);
    check_decode_any(data, size);
    return 0;
}
