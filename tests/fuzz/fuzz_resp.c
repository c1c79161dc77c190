/*
 * fuzz_resp.c - libFuzzer target for the Redis protocol modules
 * (src/resp.c, src/resp_reply.c) and the glob matcher (src/glob.c).
 *
 * One input = the bytes a client sent on a Redis connection: zero, one or
 * many requests, possibly cut anywhere. They are copied into a heap buffer
 * of exactly their size (ASan sees any access past the end).
 *
 * Properties checked (any violation aborts, which libFuzzer reports):
 *  1. Parsing the input as a pipeline (request after request, argv grown
 *     from 0 on RESP_ARGV_FULL) stays in bounds and is consistent: the
 *     status is a known one; RESP_OK consumes 1..len bytes; every argument
 *     lies inside the consumed bytes; a multibulk request leaves the buffer
 *     unchanged and an inline one changes nothing past its line;
 *     RESP_ARGV_FULL asks for more than argv_cap and at most max_args (or
 *     the inline token count); errors are sticky.
 *  2. Resumability: the same input fed to ONE parser in chunks (sizes taken
 *     from the input), each call from a fresh heap copy of a connection
 *     buffer whose consumed head is dropped, yields exactly the same
 *     sequence of requests and the same final status.
 *  3. Canonical re-encoding: every parsed request written back as a
 *     multibulk with the reply writers (resp_put_array/resp_put_bulk), and
 *     as an inline line with every byte as "\xHH", parses to the same
 *     arguments, consuming exactly what was written.
 *  4. Limits are exact: a multibulk request whose longest argument has m
 *     bytes and argc arguments parses with max_bulk_len = m, max_args = argc,
 *     and fails with RESP_ERR_BULK_LEN at m - 1 / RESP_ERR_MULTIBULK_LEN at
 *     argc - 1.
 *  5. resp_error_line() for every error: at most RESP_ERROR_LINE_MAX bytes,
 *     "-ERR Protocol error: " ... "\r\n", no other CR or LF.
 *  6. Numbers: resp_str_to_ll accepts only canonical text (resp_ll_to_str of
 *     the value gives the input back); resp_str_to_ld never yields NaN, and
 *     the INCRBYFLOAT text of a finite value has no exponent, no trailing
 *     zero after a '.', and parses back.
 *  7. glob: on small inputs split into pattern and string, glob_match
 *     agrees with a slow recursive reference; larger inputs just run.
 *
 * Built by `make fuzz` / `make fuzz-smoke` with clang
 * -fsanitize=fuzzer,address,undefined straight from the module sources.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "glob.h"
#include "resp.h"
#include "num.h"
#include "resp_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "fuzz_resp: property failed at %s:%d: %s\n",    \
                    __FILE__, __LINE__, #cond);                             \
            abort();                                                        \
        }                                                                   \
    } while (0)

static const struct resp_limits lim_default = {
    .max_bulk_len = 1u << 20,
    .max_args = 1u << 16,
};

static char *dup_exact(const void *src, size_t n)
{
    char *p = malloc(n ? n : 1);
    CHECK(p != NULL);
    if (n) memcpy(p, src, n);
    return p;
}

/* FNV-1a over a request's arguments: argc, then each length and bytes. */
static uint64_t args_hash(const struct resp_arg *argv, size_t argc)
{
    uint64_t h = 1469598103934665603ull;
#define MIX(b) (h = (h ^ (uint8_t)(b)) * 1099511628211ull)
    for (int s = 0; s < 8; s++) MIX(argc >> (8 * s));
    for (size_t i = 0; i < argc; i++) {
        for (int s = 0; s < 8; s++) MIX(argv[i].len >> (8 * s));
        for (size_t j = 0; j < argv[i].len; j++) MIX(argv[i].ptr[j]);
    }
#undef MIX
    return h;
}

/* resp_parse, growing argv on RESP_ARGV_FULL (property 1 on the asks). */
static enum resp_status parse_grow(struct resp_parser *p, char *buf, size_t len,
                                   const struct resp_limits *lim)
{
    for (;;) {
        enum resp_status st = resp_parse(p, buf, len, lim);
        CHECK(st >= RESP_OK && st <= RESP_ERR_UNBALANCED_QUOTES);
        if (st != RESP_ARGV_FULL) return st;
        size_t want = resp_argv_want(p);
        CHECK(want > p->argv_cap);
        CHECK(want <= lim->max_args || want <= RESP_INLINE_MAX / 2 + 1);
        p->argv = realloc(p->argv, want * sizeof *p->argv);
        CHECK(p->argv != NULL);
        p->argv_cap = want;
    }
}

#define MAX_REQS 256

struct outcome {
    size_t n;                 /* requests parsed */
    uint64_t hash[MAX_REQS];  /* args_hash of each */
    enum resp_status last;    /* the status that stopped the pipeline */
};

/* Property 3 for one request. */
static void check_reencode(const struct resp_arg *argv, size_t argc)
{
    if (argc == 0) return;
    uint64_t want = args_hash(argv, argc);
    size_t total = RESP_HDR_MAX, inl = 1;
    for (size_t i = 0; i < argc; i++) {
        total += resp_bulk_len(argv[i].len);
        inl += 3 + 4 * argv[i].len;
    }
    char *w = malloc(total);
    CHECK(w != NULL);
    size_t n = resp_put_array(w, argc);
    for (size_t i = 0; i < argc; i++)
        n += resp_put_bulk(w + n, argv[i].ptr, argv[i].len);
    CHECK(n <= total);
    char *exact = dup_exact(w, n);
    struct resp_parser p;
    resp_parser_init(&p, NULL, 0);
    CHECK(parse_grow(&p, exact, n, &lim_default) == RESP_OK);
    CHECK(p.consumed == n && p.argc == argc);
    CHECK(args_hash(p.argv, p.argc) == want);
    free(p.argv);
    free(exact);
    free(w);

    if (inl > RESP_INLINE_MAX) return;
    static const char hex[] = "0123456789abcdef";
    w = malloc(inl);
    CHECK(w != NULL);
    n = 0;
    for (size_t i = 0; i < argc; i++) {
        if (i) w[n++] = ' ';
        w[n++] = '"';
        for (size_t j = 0; j < argv[i].len; j++) {
            unsigned char c = (unsigned char)argv[i].ptr[j];
            w[n++] = '\\';
            w[n++] = 'x';
            w[n++] = hex[c >> 4];
            w[n++] = hex[c & 15];
        }
        w[n++] = '"';
    }
    w[n++] = '\n';
    CHECK(n <= inl);
    resp_parser_init(&p, NULL, 0);
    CHECK(parse_grow(&p, w, n, &lim_default) == RESP_OK);
    CHECK(p.consumed == n && p.argc == argc);
    CHECK(args_hash(p.argv, p.argc) == want);
    free(p.argv);
    free(w);
}

/* Property 4 for one multibulk request at the start of data. */
static void check_limits(const uint8_t *data, size_t size, size_t consumed,
                         const struct resp_arg *argv, size_t argc)
{
    size_t m = 0;
    for (size_t i = 0; i < argc; i++)
        if (argv[i].len > m) m = argv[i].len;
    struct resp_limits at = {.max_bulk_len = m, .max_args = argc};
    char *buf = dup_exact(data, size);
    struct resp_parser p;
    resp_parser_init(&p, NULL, 0);
    CHECK(parse_grow(&p, buf, size, &at) == RESP_OK);
    CHECK(p.consumed == consumed && p.argc == argc);
    free(p.argv);
    if (m > 0) {
        struct resp_limits below = {.max_bulk_len = m - 1, .max_args = argc};
        resp_parser_init(&p, NULL, 0);
        CHECK(parse_grow(&p, buf, size, &below) == RESP_ERR_BULK_LEN);
        free(p.argv);
    }
    if (argc > 0) {
        struct resp_limits fewer = {.max_bulk_len = m, .max_args = argc - 1};
        resp_parser_init(&p, NULL, 0);
        CHECK(parse_grow(&p, buf, size, &fewer) == RESP_ERR_MULTIBULK_LEN);
        free(p.argv);
    }
    free(buf);
}

/* Property 5. */
static void check_error_line(enum resp_status st, const struct resp_parser *p)
{
    char line[RESP_ERROR_LINE_MAX];
    size_t n = resp_error_line(line, sizeof line, st, p);
    CHECK(n > 23 && n <= RESP_ERROR_LINE_MAX);
    CHECK(memcmp(line, "-ERR Protocol error: ", 21) == 0);
    CHECK(line[n - 2] == '\r' && line[n - 1] == '\n');
    CHECK(memchr(line, '\r', n - 2) == NULL && memchr(line, '\n', n - 2) == NULL);
}

/* Property 1 (and 3, 4, 5): the whole input as a pipeline, one shot. */
static void run_oneshot(const uint8_t *data, size_t size, struct outcome *out)
{
    char *buf = dup_exact(data, size);
    struct resp_parser p;
    resp_parser_init(&p, NULL, 0);
    size_t pos = 0;
    out->n = 0;
    for (;;) {
        enum resp_status st = parse_grow(&p, buf + pos, size - pos, &lim_default);
        if (st != RESP_OK) {
            out->last = st;
            if (st != RESP_NEED_MORE) {
                check_error_line(st, &p);
                CHECK(resp_parse(&p, buf + pos, size - pos, &lim_default) == st);
            }
            break;
        }
        CHECK(p.consumed >= 1 && p.consumed <= size - pos);
        for (size_t i = 0; i < p.argc; i++)
            CHECK(p.argv[i].ptr >= buf + pos &&
                  p.argv[i].ptr + p.argv[i].len <= buf + pos + p.consumed);
        if (data[pos] == '*') {
            CHECK(memcmp(buf + pos, data + pos, p.consumed) == 0);
            if (out->n < 4) check_limits(data + pos, size - pos, p.consumed, p.argv, p.argc);
        }
        CHECK(memcmp(buf + pos + p.consumed, data + pos + p.consumed,
                     size - pos - p.consumed) == 0);
        if (out->n < 8) check_reencode(p.argv, p.argc);
        if (out->n < MAX_REQS) out->hash[out->n] = args_hash(p.argv, p.argc);
        out->n++;
        pos += p.consumed;
    }
    free(p.argv);
    free(buf);
}

/* Property 2: the same bytes through a connection-like buffer in chunks. */
static void run_chunked(const uint8_t *data, size_t size, const struct outcome *want)
{
    struct resp_parser p;
    resp_parser_init(&p, NULL, 0);
    char *held = NULL; /* the connection's unconsumed bytes */
    size_t held_len = 0, fed = 0, n = 0;
    uint32_t seed = size ? data[0] * 2654435761u + (uint32_t)size : 1;

    for (;;) {
        char *buf = dup_exact(held, held_len); /* a new block every call */
        enum resp_status st = parse_grow(&p, buf, held_len, &lim_default);
        if (st == RESP_OK) {
            if (n < MAX_REQS) CHECK(args_hash(p.argv, p.argc) == want->hash[n]);
            n++;
            memmove(held, held + p.consumed, held_len - p.consumed);
            held_len -= p.consumed;
            free(buf);
            continue;
        }
        free(buf);
        if (st != RESP_NEED_MORE || fed == size) {
            CHECK(st == want->last);
            CHECK(n == want->n);
            break;
        }
        seed = seed * 1103515245u + 12345u;
        size_t chunk = 1 + (seed >> 16) % (64 + size / 16); /* ~32 calls at most on big inputs */
        if (chunk > size - fed) chunk = size - fed;
        held = realloc(held, held_len + chunk);
        CHECK(held != NULL);
        memcpy(held + held_len, data + fed, chunk);
        held_len += chunk;
        fed += chunk;
    }
    free(held);
    free(p.argv);
}

/* Property 6. */
static void check_numbers(const uint8_t *data, size_t size)
{
    int64_t v;
    char *s = dup_exact(data, size);
    if (num_parse_i64(s, size, &v)) {
        char back[NUM_MAX_DIGITS]; /* num_format_* writes a NUL too */
        size_t n = num_format_i64(back, v);
        CHECK(n == size && memcmp(back, s, n) == 0);
    }
    long double d;
    if (resp_str_to_ld(s, size, &d)) {
        CHECK(!isnan(d));
        if (isfinite(d)) {
            char *txt = malloc(RESP_LD_STR_MAX);
            CHECK(txt != NULL);
            size_t n = resp_ld_to_str(txt, RESP_LD_STR_MAX, d);
            CHECK(n > 0 && txt[n] == '\0');
            CHECK(strchr(txt, 'e') == NULL && strchr(txt, 'E') == NULL);
            if (strchr(txt, '.') != NULL) CHECK(txt[n - 1] != '0' && txt[n - 1] != '.');
            CHECK(strcmp(txt, "-0") != 0);
            long double back;
            CHECK(resp_str_to_ld(txt, n, &back));
            free(txt);
        }
        char dbl[RESP_DOUBLE_STR_MAX];
        double dd = fabsl(d) <= DBL_MAX ? (double)d : (d > 0 ? INFINITY : -INFINITY);
        size_t n = resp_double_to_str(dbl, dd);
        CHECK(n > 0 && n < RESP_DOUBLE_STR_MAX);
    }
    free(s);
}

/* Property 7: reference matcher (exponential; small inputs only). */
static int lc(int c, int nocase) { return nocase && c >= 'A' && c <= 'Z' ? c + 32 : c; }

static int ref_glob(const unsigned char *p, size_t pl, const unsigned char *s, size_t sl,
                    int nocase, int top)
{
    if (top && sl == 0) return pl == 0;
    if (pl == 0) return sl == 0;
    if (p[0] == '*') {
        for (size_t k = 0; k <= sl; k++)
            if (ref_glob(p + 1, pl - 1, s + k, sl - k, nocase, 0)) return 1;
        return 0;
    }
    if (sl == 0) return 0;
    size_t used = 1;
    int hit;
    if (p[0] == '?') {
        hit = 1;
    } else if (p[0] == '\\' && pl >= 2) {
        used = 2;
        hit = lc(p[1], nocase) == lc(s[0], nocase);
    } else if (p[0] != '[') {
        hit = lc(p[0], nocase) == lc(s[0], nocase);
    } else {
        size_t i = 1;
        int neg = i < pl && p[i] == '^';
        hit = 0;
        if (neg) i++;
        while (i < pl && p[i] != ']') {
            if (p[i] == '\\' && pl - i >= 2) {
                hit |= p[i + 1] == s[0];
                i += 2;
            } else if (pl - i >= 3 && p[i + 1] == '-') {
                int a = p[i], b = p[i + 2];
                if (a > b) { int t = a; a = b; b = t; }
                a = lc(a, nocase);
                b = lc(b, nocase);
                int x = lc(s[0], nocase);
                hit |= x >= a && x <= b;
                i += 3;
            } else {
                hit |= lc(p[i], nocase) == lc(s[0], nocase);
                i++;
            }
        }
        if (i < pl) i++;
        used = i;
        hit = hit != neg;
    }
    return hit && ref_glob(p + used, pl - used, s + 1, sl - 1, nocase, 0);
}

static void check_glob(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 512) return;
    size_t cut = data[0] % size;
    int nocase = data[0] & 1;
    char *pat = dup_exact(data + 1, cut ? cut - 1 : 0);
    size_t pl = cut ? cut - 1 : 0;
    char *str = dup_exact(data + cut, size - cut);
    size_t sl = size - cut;
    int got = glob_match(pat, pl, str, sl, nocase);
    if (pl <= 14 && sl <= 14)
        CHECK(got == ref_glob((const unsigned char *)pat, pl, (const unsigned char *)str, sl,
                              nocase, 1));
    free(pat);
    free(str);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct outcome *one = malloc(sizeof *one);
    CHECK(one != NULL);
    run_oneshot(data, size, one);
    run_chunked(data, size, one);
    free(one);
    check_numbers(data, size);
    check_glob(data, size);
    return 0;
}
