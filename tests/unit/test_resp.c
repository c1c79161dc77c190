/*
 * test_resp.c - unit tests for the Redis request parser (resp.h) and the
 * reply writers and number rules (resp_reply.h).
 *
 * Parser cases are tables of (input -> status, consumed, arguments, exact
 * error line). The expected error lines and the accept/reject verdicts were
 * recorded from redis-server 7.0.15 over a socket (the places where we
 * differ on purpose are marked OURS and listed in resp.h). Every input is
 *  - parsed from an exact-size heap copy (ASan catches any over-read),
 *  - parsed at every prefix with a fresh parser: the answer is need-more,
 *    or already the final one,
 *  - fed to ONE parser one byte more at a time, each call from a new heap
 *    copy (so the buffer moves between calls, as after a realloc),
 *  - checked for writes: a multibulk request is never written, an inline
 *    line only inside its own quoted tokens.
 * Pipelines of random requests are parsed through a simulated connection
 * buffer filled in random chunks. Writers have golden outputs for RESP2 and
 * RESP3 (several recorded from redis-server: HELLO, INFO, ZSCORE); the
 * number rules are checked against INCRBY/INCRBYFLOAT answers of the server.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"
#include "num.h"
#include "resp_reply.h"

/* ---- Helpers ----------------------------------------------------------- */

#define LIT(s) (s), (sizeof(s) - 1)

static const char *show(const char *s, size_t len)
{
    static char out[4][512];
    static int slot;
    char *o = out[slot++ & 3];
    size_t n = 0;
    for (size_t i = 0; i < len && n + 8 < 512; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            o[n++] = (char)c;
        else
            n += (size_t)snprintf(o + n, 512 - n, "\\x%02x", c);
    }
    if (n + 8 >= 512) n += (size_t)snprintf(o + n, 512 - n, "...");
    o[n] = '\0';
    return o;
}

static char *exact_copy(const char *s, size_t len)
{
    char *p = malloc(len ? len : 1);
    assert_non_null(p);
    if (len) memcpy(p, s, len);
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    assert_non_null(p);
    return p;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1du;
}

/* Arguments rendered as one string: args joined by '|', bytes outside
 * 0x20..0x7e and '|' '\\' written \xHH. */
static size_t render_args(char *out, size_t cap, const struct resp_arg *argv, size_t argc)
{
    size_t n = 0;
    for (size_t i = 0; i < argc; i++) {
        if (i > 0 && n + 1 < cap) out[n++] = '|';
        for (size_t j = 0; j < argv[i].len && n + 5 < cap; j++) {
            unsigned char c = (unsigned char)argv[i].ptr[j];
            if (c >= 0x20 && c < 0x7f && c != '|' && c != '\\')
                out[n++] = (char)c;
            else
                n += (size_t)snprintf(out + n, cap - n, "\\x%02x", c);
        }
    }
    out[n] = '\0';
    return n;
}

static const struct resp_limits dflt = {
    .max_bulk_len = RESP_MAX_BULK_DEFAULT,
    .max_args = RESP_MAX_ARGS_DEFAULT,
};

/* A parser whose argv array is heap-allocated and grown on RESP_ARGV_FULL. */
struct harness {
    struct resp_parser p;
    unsigned grows;    /* RESP_ARGV_FULL answers seen */
};

static void h_init(struct harness *h, size_t cap, bool noauth)
{
    struct resp_arg *argv = cap ? malloc(cap * sizeof *argv) : NULL;
    assert_true(cap == 0 || argv != NULL);
    resp_parser_init(&h->p, argv, cap);
    h->p.noauth = noauth;
    h->grows = 0;
}

static void h_free(struct harness *h) { free(h->p.argv); }

/* resp_parse, growing argv as asked (checking what is asked). */
static enum resp_status h_parse(struct harness *h, char *buf, size_t len,
                                const struct resp_limits *lim)
{
    for (;;) {
        enum resp_status st = resp_parse(&h->p, buf, len, lim);
        if (st != RESP_ARGV_FULL)
            return st;
        size_t want = resp_argv_want(&h->p);
        assert_true(want > h->p.argv_cap);
        assert_true(want > h->p.argc);
        h->p.argv = xrealloc(h->p.argv, want * sizeof *h->p.argv);
        h->p.argv_cap = want;
        h->grows++;
    }
}

/* ---- Parser tables ----------------------------------------------------- */

struct rcase {
    const char *in;
    size_t len;
    enum resp_status st;
    size_t consumed;  /* RESP_OK: 0 means the whole input */
    int argc;         /* RESP_OK */
    const char *args; /* RESP_OK: render_args() of the arguments */
    const char *err;  /* errors: the exact reply line */
    size_t err_len;
};

#define OK(in, argc, args)        {LIT(in), RESP_OK, 0, argc, args, NULL, 0}
#define OKC(in, used, argc, args) {LIT(in), RESP_OK, used, argc, args, NULL, 0}
#define ERR(in, st, line)         {LIT(in), st, 0, 0, NULL, LIT("-ERR Protocol error: " line "\r\n")}

#define E_MBULK   RESP_ERR_MULTIBULK_LEN
#define E_DOLLAR  RESP_ERR_EXPECTED_DOLLAR
#define E_BULK    RESP_ERR_BULK_LEN
#define E_QUOTES  RESP_ERR_UNBALANCED_QUOTES
#define L_MBULK   "invalid multibulk length"
#define L_BULK    "invalid bulk length"
#define L_QUOTES  "unbalanced quotes in request"
#define L_GOT(c)  "expected '$', got '" c "'"

static const struct rcase cases[] = {
    /* ---- multibulk, accepted (redis-server 7.0.15 answers in comments) */
    OK("*1\r\n$4\r\nPING\r\n", 1, "PING"),
    OK("*2\r\n$4\r\nECHO\r\n$0\r\n\r\n", 2, "ECHO|"),               /* $0 */
    OK("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nva\0ue\r\n", 3, "SET|k|va\\x00ue"),
    OK("*1\r\n$2\r\n\r\n\r\n", 1, "\\x0d\\x0a"),
    OK("*2\r\n$1\r\n*\r\n$1\r\n$\r\n", 2, "*|$"),
    OK("*1\r\n$0\r\n\r\n", 1, ""),            /* unknown command '' */
    OK("*0\r\n", 0, ""),                      /* empty: no reply */
    OK("*-1\r\n", 0, ""),
    OK("*-5\r\n", 0, ""),
    OK("*-9223372036854775808\r\n", 0, ""),
    OK("*1\r\n$4\r\nPINGxy", 1, "PING"),      /* +PONG: the CRLF is not checked */
    OK("*1\rx$4\rxPING\r\n", 1, "PING"),      /* +PONG: nor the \n after \r */
    OKC("*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n", 14, 1, "PING"),
    OKC("*1\r\n$4\r\nPING\r\n\r\n", 14, 1, "PING"),
    OKC("*0\r\n*1\r\n$4\r\nPING\r\n", 4, 0, ""),
    OKC("*-1\r\nPING\r\n", 5, 0, ""),
    OK("*1\r\n$10\r\n0123456789\r\n", 1, "0123456789"),
    OK("*1\r\n$3\r\n\xff\x80\x00\r\n", 1, "\\xff\\x80\\x00"),
    OK("*4\r\n$1\r\na\r\n$2\r\nbb\r\n$0\r\n\r\n$3\r\nccc\r\n", 4, "a|bb||ccc"),
    /* ---- multibulk count errors */
    ERR("*-0\r\n", E_MBULK, L_MBULK),
    ERR("*01\r\n$4\r\nPING\r\n", E_MBULK, L_MBULK),
    ERR("*+1\r\n$4\r\nPING\r\n", E_MBULK, L_MBULK),
    ERR("* 1\r\n$4\r\nPING\r\n", E_MBULK, L_MBULK),
    ERR("*1 \r\n$4\r\nPING\r\n", E_MBULK, L_MBULK),
    ERR("*\r\n", E_MBULK, L_MBULK),
    ERR("*x\r\n", E_MBULK, L_MBULK),
    ERR("*1x\r\n", E_MBULK, L_MBULK),
    ERR("*00\r\n", E_MBULK, L_MBULK),
    ERR("*1048577\r\n", E_MBULK, L_MBULK),    /* OURS: Redis 7.0 waits (limit INT_MAX) */
    ERR("*2147483648\r\n", E_MBULK, L_MBULK),
    ERR("*9223372036854775807\r\n", E_MBULK, L_MBULK),
    ERR("*9223372036854775808\r\n", E_MBULK, L_MBULK),
    ERR("*99999999999999999999999\r\n", E_MBULK, L_MBULK),
    ERR("*-9223372036854775809\r\n", E_MBULK, L_MBULK),
    ERR("*1\n$4\r\nPING\r\n", E_MBULK, L_MBULK), /* the count runs to the first \r */
    ERR("*1\0\r\n", E_MBULK, L_MBULK),        /* OURS: Redis waits (strchr stops at NUL) */
    ERR("*\r\r\n", E_MBULK, L_MBULK),
    /* ---- argument header errors */
    ERR("*1\r\nfoo\r\n", E_DOLLAR, L_GOT("f")),
    ERR("*1\r\n\r\n", E_DOLLAR, L_GOT(" ")),  /* Redis prints \r and \n as ' ' */
    ERR("*1\r\n\n\r\n", E_DOLLAR, L_GOT(" ")),
    ERR("*1\r\n \r\n", E_DOLLAR, L_GOT(" ")),
    ERR("*1\r\n\xff\r\n", E_DOLLAR, L_GOT("\xff")),
    ERR("*1\r\n\0\r\n", E_DOLLAR, L_GOT("\0")), /* OURS: Redis waits */
    ERR("*1\r\n*1\r\n", E_DOLLAR, L_GOT("*")),
    ERR("*1\r\n:1\r\n", E_DOLLAR, L_GOT(":")),
    ERR("*2\r\n$4\r\nPING\r\nfoo\r\n", E_DOLLAR, L_GOT("f")),
    ERR("*2\r\n$4\r\nPINGxyz$1\r\n", E_DOLLAR, L_GOT("z")), /* "xy" skipped */
    OK("*2\r\n$4\r\nPINGxy$1\r\nAxy", 2, "PING|A"),
    ERR("*1\r\n$-1\r\n", E_BULK, L_BULK),
    ERR("*1\r\n$01\r\nx\r\n", E_BULK, L_BULK),
    ERR("*1\r\n$+1\r\nx\r\n", E_BULK, L_BULK),
    ERR("*1\r\n$\r\n", E_BULK, L_BULK),
    ERR("*1\r\n$x\r\n", E_BULK, L_BULK),
    ERR("*1\r\n$-0\r\n", E_BULK, L_BULK),
    ERR("*1\r\n$ 1\r\nx\r\n", E_BULK, L_BULK),
    ERR("*1\r\n$1 \r\nx\r\n", E_BULK, L_BULK),
    ERR("*1\r\n$536870913\r\n", E_BULK, L_BULK),   /* proto-max-bulk-len + 1 */
    ERR("*1\r\n$9223372036854775808\r\n", E_BULK, L_BULK),
    ERR("*1\r\n$1\0\r\nx\r\n", E_BULK, L_BULK),    /* OURS: Redis waits */
    ERR("*2\r\n$1\r\na\r\n$-5\r\n", E_BULK, L_BULK),
    /* ---- inline, accepted */
    OK("PING\r\n", 1, "PING"),
    OK("PING\n", 1, "PING"),
    OK("PING\r\r\n", 1, "PING"),
    OK("\r\n", 0, ""),
    OK("\n", 0, ""),
    OK("   \r\n", 0, ""),
    OK("\v\f \t\r\n", 0, ""),
    OKC("   \r\nPING\r\n", 5, 0, ""),
    OKC("PING\r\nPING\r\n", 6, 1, "PING"),
    OK("ECHO \"a\\x41\\n\"\r\n", 2, "ECHO|aA\\x0a"),
    OK("ECHO a\"b\"\r\n", 2, "ECHO|ab"),
    OK("ECHO 'a\\'b'\r\n", 2, "ECHO|a'b"),
    OK("ECHO 'a\\nb'\r\n", 2, "ECHO|a\\x5cnb"),
    OK("ECHO \"\\x4\"\r\n", 2, "ECHO|x4"),
    OK("ECHO \"\\x4g\"\r\n", 2, "ECHO|x4g"),
    OK("ECHO \"\\q\"\r\n", 2, "ECHO|q"),
    OK("ECHO \"\"\r\n", 2, "ECHO|"),
    OK("ECHO ''\r\n", 2, "ECHO|"),
    OK("ECHO \"\\b\\a\\t\\r\"\r\n", 2, "ECHO|\\x08\\x07\\x09\\x0d"),
    OK("ECHO \vfoo\r\n", 2, "ECHO|foo"),
    OK("\vECHO foo\r\n", 2, "ECHO|foo"),
    OK("ECHO foo\v bar\r\n", 3, "ECHO|foo\\x0b|bar"),
    OK("ECHO \"a\"\v\r\n", 2, "ECHO|a"),
    OK("ECHO \"a\" \"b\"\r\n", 3, "ECHO|a|b"),
    OK("ECHO \"\\x41\\x4a\\X41\"\r\n", 2, "ECHO|AJX41"),
    OK("ECHO 'a\\\\b'\r\n", 2, "ECHO|a\\x5c\\x5cb"),
    OK("ECHO '\\''\r\n", 2, "ECHO|'"),
    OK("ECHO \"a\\\"b\"\r\n", 2, "ECHO|a\"b"),
    OK("ECHO \"x\"\t\r\n", 2, "ECHO|x"),
    OK("ECHO \"x\"\r\r\n", 2, "ECHO|x"),
    OK("ECHO\t\"x\"\r\n", 2, "ECHO|x"),
    OK("ECHO \"\\xzz\"\r\n", 2, "ECHO|xzz"),
    OK("ECHO \"\\x\"\r\n", 2, "ECHO|x"),
    OK("ECHO \"\xc3\xa9\"\r\n", 2, "ECHO|\\xc3\\xa9"),
    OK("ECHO x\"y z\" w\r\n", 3, "ECHO|xy z|w"),
    OK("  \t ECHO   a  \r\n", 2, "ECHO|a"),
    OK("ECHO a\r\r\r\n", 2, "ECHO|a"),
    OK("ECHO \"\\\\\"\r\n", 2, "ECHO|\\x5c"),
    OK("ECHO 'a\"b'\r\n", 2, "ECHO|a\"b"),
    OK("ECHO \"a'b\"\r\n", 2, "ECHO|a'b"),
    OK("ECHO \"\\x00\\xFf\"\r\n", 2, "ECHO|\\x00\\xff"),
    OK("ECHO a\"\"\r\n", 2, "ECHO|a"),
    OK("ECHO a\rb\r\n", 3, "ECHO|a|b"),
    OK("ECHO \"\r\" x\r\n", 3, "ECHO|\\x0d|x"),
    OK("$3\r\n", 1, "$3"),                       /* unknown command '$3' */
    OK(" *1\r\n", 1, "*1"),
    OK("ECHO a\0b\r\n", 2, "ECHO|a\\x00b"),        /* OURS: Redis waits */
    OK("ECHO \"a\0b\"\r\n", 2, "ECHO|a\\x00b"),    /* OURS */
    OK("SET k v\n", 3, "SET|k|v"),
    /* ---- inline, unbalanced quotes */
    ERR("ECHO \"a\r\n", E_QUOTES, L_QUOTES),
    ERR("ECHO \"a\"b\r\n", E_QUOTES, L_QUOTES),
    ERR("ECHO a\"b\"c\r\n", E_QUOTES, L_QUOTES),
    ERR("ECHO 'a'b\r\n", E_QUOTES, L_QUOTES),
    ERR("ECHO \"\\\"\r\n", E_QUOTES, L_QUOTES),
    ERR("ECHO '\\'\r\n", E_QUOTES, L_QUOTES),
    ERR("ECHO '\r\n", E_QUOTES, L_QUOTES),
    ERR("ECHO \"\r\n", E_QUOTES, L_QUOTES),
    ERR("ECHO \"a\"\"b\"\r\n", E_QUOTES, L_QUOTES),
    ERR("ECHO x\"y z\"w\r\n", E_QUOTES, L_QUOTES),
    ERR("ECHO \"a\\\r\n", E_QUOTES, L_QUOTES),
    ERR("\"\n", E_QUOTES, L_QUOTES),
    ERR("'\n", E_QUOTES, L_QUOTES),
    ERR("ECHO 'a'\"b\"\r\n", E_QUOTES, L_QUOTES),
};
#define N_CASES (sizeof cases / sizeof cases[0])

static size_t case_consumed(const struct rcase *c)
{
    return c->consumed ? c->consumed : c->len;
}

/* Check a finished parse against a case. buf is where the request was. */
static void check_result(const struct rcase *c, const char *what, size_t k,
                         enum resp_status st, const struct resp_parser *p,
                         const char *buf, size_t len)
{
    if (st != c->st)
        fail_msg("[%s] %s %zu: status %s, want %s", show(c->in, c->len), what, k,
                 resp_status_str(st), resp_status_str(c->st));
    if (st == RESP_OK) {
        char got[1024];
        assert_int_equal(p->consumed, case_consumed(c));
        assert_true(p->consumed <= len);
        if ((int)p->argc != c->argc)
            fail_msg("[%s] %s %zu: argc %zu, want %d", show(c->in, c->len), what, k,
                     p->argc, c->argc);
        for (size_t i = 0; i < p->argc; i++)
            assert_true(p->argv[i].ptr >= buf &&
                        p->argv[i].ptr + p->argv[i].len <= buf + p->consumed);
        render_args(got, sizeof got, p->argv, p->argc);
        if (strcmp(got, c->args) != 0)
            fail_msg("[%s] %s %zu: args [%s], want [%s]", show(c->in, c->len), what, k,
                     got, c->args);
    } else {
        char line[RESP_ERROR_LINE_MAX];
        size_t n = resp_error_line(line, sizeof line, st, p);
        if (n != c->err_len || memcmp(line, c->err, n) != 0)
            fail_msg("[%s] %s %zu: error line [%s], want [%s]", show(c->in, c->len), what,
                     k, show(line, n), show(c->err, c->err_len));
    }
}

/* Writes: never in a multibulk request; for inline, only inside the line
 * of the request, and only when it has quotes. */
static void check_writes(const struct rcase *c, const char *buf, size_t len,
                         enum resp_status st)
{
    bool inline_ok = c->in[0] != '*' && st == RESP_OK;
    bool quotes = memchr(c->in, '"', len) || memchr(c->in, '\'', len);
    if (!inline_ok || !quotes) {
        if (memcmp(buf, c->in, len) != 0)
            fail_msg("[%s]: buffer written", show(c->in, c->len));
        return;
    }
    size_t line_end = case_consumed(c);
    assert_memory_equal(buf + line_end, c->in + line_end, len - line_end);
}

/* ---- Parser tests ------------------------------------------------------ */

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_CASES; i++) {
        const struct rcase *c = &cases[i];
        for (size_t cap = 0; cap <= 4; cap += 4) { /* argv grown from 0, or big enough */
            struct harness h;
            h_init(&h, cap, false);
            char *buf = exact_copy(c->in, c->len);
            enum resp_status st = h_parse(&h, buf, c->len, &dflt);
            check_result(c, "whole, cap", cap, st, &h.p, buf, c->len);
            check_writes(c, buf, c->len, st);
            /* errors are sticky */
            if (st != RESP_OK)
                assert_int_equal(resp_parse(&h.p, buf, c->len, &dflt), st);
            free(buf);
            h_free(&h);
        }
    }
}

/* Every prefix, fresh parser: need-more, or already the final answer. */
static void test_prefixes(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_CASES; i++) {
        const struct rcase *c = &cases[i];
        for (size_t k = 0; k <= c->len; k++) {
            struct harness h;
            h_init(&h, 2, false);
            char *buf = exact_copy(c->in, k);
            enum resp_status st = h_parse(&h, buf, k, &dflt);
            if (st != RESP_NEED_MORE)
                check_result(c, "prefix", k, st, &h.p, buf, k);
            else if (c->st == RESP_OK)
                assert_true(k < case_consumed(c));
            free(buf);
            h_free(&h);
        }
    }
}

/* One parser, one more byte per call, each call from a new heap copy (the
 * buffer moves): the resumable state must give the one-shot answer. */
static void test_resume_moving_buffer(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_CASES; i++) {
        const struct rcase *c = &cases[i];
        struct harness h;
        h_init(&h, 0, false);
        enum resp_status st = RESP_NEED_MORE;
        size_t k;
        for (k = 0; k <= c->len; k++) {
            char *buf = exact_copy(c->in, k);
            st = h_parse(&h, buf, k, &dflt);
            if (st == RESP_NEED_MORE) {
                free(buf);
                continue;
            }
            check_result(c, "resumed at", k, st, &h.p, buf, k);
            free(buf);
            break;
        }
        assert_int_not_equal(st, RESP_NEED_MORE);
        h_free(&h);
    }
}

/* A connection-like input buffer: appended in random chunks, consumed
 * requests removed from the front (so offsets, not pointers, must be kept). */
struct conn_buf {
    char *p;
    size_t len, cap;
};

static void cb_append(struct conn_buf *b, const char *s, size_t n)
{
    if (b->len + n > b->cap) {
        /* always a fresh block: the old bytes move */
        size_t cap = (b->len + n) * 2;
        char *np = malloc(cap);
        assert_non_null(np);
        if (b->len) memcpy(np, b->p, b->len);
        free(b->p);
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void cb_consume(struct conn_buf *b, size_t n)
{
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

/* Build a random request into req (wire bytes) and want (rendered args). */
static void random_request(char **req, size_t *req_len, char *want, size_t want_cap)
{
    static const char *const names[] = {"SET", "GET", "MSET", "DEL", "ECHO", "PING"};
    struct resp_arg args[40];
    char store[40][80];
    size_t argc = 1 + rng() % 8;
    if (rng() % 50 == 0) argc = 20 + rng() % 20;
    bool inl = rng() % 3 == 0;

    for (size_t i = 0; i < argc; i++) {
        size_t n = i == 0 ? 0 : rng() % 12;
        if (i == 0) {
            const char *nm = names[rng() % 6];
            n = strlen(nm);
            memcpy(store[i], nm, n);
        } else if (rng() % 20 == 0) {
            n = 40 + rng() % 40;
        }
        for (size_t j = (i == 0 ? n : 0); j < n; j++)
            store[i][j] = inl && rng() % 2 ? (char)('a' + rng() % 26) : (char)(rng() & 0xff);
        args[i].ptr = store[i];
        args[i].len = n;
    }
    char *out = malloc(64 + argc * 400);
    assert_non_null(out);
    size_t w = 0;
    if (!inl) {
        w += (size_t)sprintf(out + w, "*%zu\r\n", argc);
        for (size_t i = 0; i < argc; i++) {
            w += (size_t)sprintf(out + w, "$%zu\r\n", args[i].len);
            memcpy(out + w, args[i].ptr, args[i].len);
            w += args[i].len;
            out[w++] = '\r';
            out[w++] = '\n';
        }
    } else {
        if (rng() % 4 == 0) out[w++] = ' ';
        for (size_t i = 0; i < argc; i++) {
            if (i > 0) out[w++] = rng() % 5 ? ' ' : '\t';
            /* always double-quoted with escapes: any bytes survive */
            out[w++] = '"';
            for (size_t j = 0; j < args[i].len; j++) {
                unsigned char c = (unsigned char)args[i].ptr[j];
                if (c == '"' || c == '\\') {
                    out[w++] = '\\';
                    out[w++] = (char)c;
                } else if (c < 0x20 || c >= 0x7f || rng() % 8 == 0) {
                    w += (size_t)sprintf(out + w, rng() % 2 ? "\\x%02x" : "\\x%02X", c);
                } else {
                    out[w++] = (char)c;
                }
            }
            out[w++] = '"';
        }
        if (rng() % 2) out[w++] = '\r';
        out[w++] = '\n';
    }
    render_args(want, want_cap, args, argc);
    *req = out;
    *req_len = w;
}

static void test_pipeline(void **state)
{
    (void)state;
    enum { N = 3000 };
    rng_state = 12345;
    struct conn_buf wire = {0};
    char (*want)[4096] = malloc(N * sizeof *want);
    assert_non_null(want);
    for (int i = 0; i < N; i++) {
        char *req;
        size_t n;
        random_request(&req, &n, want[i], sizeof want[i]);
        cb_append(&wire, req, n);
        free(req);
    }

    for (int round = 0; round < 3; round++) {
        struct harness h;
        h_init(&h, round == 0 ? 0 : 3, false);
        struct conn_buf in = {0};
        size_t fed = 0;
        int done = 0;
        while (done < N) {
            enum resp_status st = h_parse(&h, in.p, in.len, &dflt);
            if (st == RESP_NEED_MORE) {
                assert_true(fed < wire.len);
                size_t chunk = round == 2 ? 1 : 1 + rng() % (round ? 4096 : 37);
                if (chunk > wire.len - fed) chunk = wire.len - fed;
                cb_append(&in, wire.p + fed, chunk);
                fed += chunk;
                continue;
            }
            assert_int_equal(st, RESP_OK);
            char got[4096];
            render_args(got, sizeof got, h.p.argv, h.p.argc);
            if (strcmp(got, want[done]) != 0)
                fail_msg("request %d: [%s], want [%s]", done, got, want[done]);
            cb_consume(&in, h.p.consumed);
            done++;
        }
        assert_int_equal(in.len, 0);
        assert_int_equal(fed, wire.len);
        free(in.p);
        h_free(&h);
    }
    free(want);
    free(wire.p);
}

/*
 * A complete request shorter than the one before it, alone in the buffer,
 * is served at once (the parser once compared its length with the previous
 * request's offset and waited for more bytes that never came).
 */
static void test_short_after_long(void **state)
{
    (void)state;
    static const char *const reqs[] = {
        "*2\r\n$4\r\nECHO\r\n$10\r\n0123456789\r\n", "*1\r\n$3\r\nfoo\r\n",
        "PING with a long inline line\r\n", "a\n", "*1\r\n$4\r\nPING\r\n", "*0\r\n",
    };
    struct harness h;
    h_init(&h, 0, false);
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
        size_t n = strlen(reqs[i]);
        char *buf = malloc(n);
        assert_non_null(buf);
        memcpy(buf, reqs[i], n);
        assert_int_equal(h_parse(&h, buf, n, &dflt), RESP_OK);
        assert_int_equal(h.p.consumed, n);
        free(buf);
    }
    h_free(&h);
}

/* ---- argv growth ------------------------------------------------------- */

static void test_argv_growth(void **state)
{
    (void)state;
    /* multibulk: asks for 16, 32, 64, then exactly the rest (100) */
    char req[4096];
    size_t w = (size_t)sprintf(req, "*100\r\n");
    for (int i = 0; i < 100; i++)
        w += (size_t)sprintf(req + w, "$%d\r\n%d\r\n", i < 10 ? 1 : 2, i);
    char *buf = exact_copy(req, w);
    struct resp_parser p;
    resp_parser_init(&p, NULL, 0);
    const size_t wants[] = {16, 32, 64, 100};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(resp_parse(&p, buf, w, &dflt), RESP_ARGV_FULL);
        assert_int_equal(resp_argv_want(&p), wants[i]);
        assert_int_equal(p.argc, p.argv_cap);
        p.argv = xrealloc(p.argv, wants[i] * sizeof *p.argv);
        p.argv_cap = wants[i];
    }
    assert_int_equal(resp_parse(&p, buf, w, &dflt), RESP_OK);
    assert_int_equal(p.argc, 100);
    assert_int_equal(p.consumed, w);
    for (int i = 0; i < 100; i++) {
        char num[16];
        int n = sprintf(num, "%d", i);
        assert_int_equal(p.argv[i].len, (size_t)n);
        assert_memory_equal(p.argv[i].ptr, num, (size_t)n);
    }
    assert_memory_equal(buf, req, w);
    free(p.argv);
    free(buf);

    /* growth is asked only when an argument has fully arrived */
    resp_parser_init(&p, NULL, 0);
    buf = exact_copy(LIT("*2\r\n$3\r\nab"));
    assert_int_equal(resp_parse(&p, buf, 11, &dflt), RESP_NEED_MORE);
    free(buf);

    /* cap exactly argc: no growth */
    struct resp_arg two[2];
    resp_parser_init(&p, two, 2);
    buf = exact_copy(LIT("*2\r\n$1\r\na\r\n$1\r\nb\r\n"));
    assert_int_equal(resp_parse(&p, buf, 18, &dflt), RESP_OK);
    assert_int_equal(p.argc, 2);
    free(buf);

    /* inline: asks once for exactly the token count; buffer untouched until then */
    static const char line[] = "A \"b\\x41\" c d e f g h i j k l m n o p q r s t\r\n";
    buf = exact_copy(LIT(line));
    struct resp_arg four[4];
    resp_parser_init(&p, four, 4);
    assert_int_equal(resp_parse(&p, buf, sizeof line - 1, &dflt), RESP_ARGV_FULL);
    assert_int_equal(resp_argv_want(&p), 20);
    assert_memory_equal(buf, line, sizeof line - 1);
    struct resp_arg *big = malloc(20 * sizeof *big);
    assert_non_null(big);
    p.argv = big;
    p.argv_cap = 20;
    assert_int_equal(resp_parse(&p, buf, sizeof line - 1, &dflt), RESP_OK);
    assert_int_equal(p.argc, 20);
    assert_int_equal(p.argv[1].len, 2);
    assert_memory_equal(p.argv[1].ptr, "bA", 2);
    assert_ptr_equal(p.argv[1].ptr, buf + 2); /* unescaped where its quote was */
    free(big);
    free(buf);
}

/* ---- Limits ------------------------------------------------------------ */

static enum resp_status parse_once(const char *in, size_t len, const struct resp_limits *lim,
                                   bool noauth, size_t *argc)
{
    struct harness h;
    h_init(&h, 1, noauth);
    char *buf = exact_copy(in, len);
    enum resp_status st = h_parse(&h, buf, len, lim);
    if (argc) *argc = h.p.argc;
    free(buf);
    h_free(&h);
    return st;
}

#define PARSE(s, lim, noauth) parse_once(LIT(s), lim, noauth, NULL)

static void test_limits(void **state)
{
    (void)state;
    struct resp_limits lim = {.max_bulk_len = 5, .max_args = 3};
    assert_int_equal(PARSE("*1\r\n$5\r\nabcde\r\n", &lim, false), RESP_OK);
    assert_int_equal(PARSE("*1\r\n$6\r\n", &lim, false), RESP_ERR_BULK_LEN);
    assert_int_equal(PARSE("*3\r\n", &lim, false), RESP_NEED_MORE);
    assert_int_equal(PARSE("*4\r\n", &lim, false), RESP_ERR_MULTIBULK_LEN);
    lim.max_bulk_len = 0;
    assert_int_equal(PARSE("*1\r\n$0\r\n\r\n", &lim, false), RESP_OK);
    assert_int_equal(PARSE("*1\r\n$1\r\n", &lim, false), RESP_ERR_BULK_LEN);

    /* defaults: proto-max-bulk-len and 1024*1024 arguments */
    assert_int_equal(PARSE("*1\r\n$536870912\r\n", &dflt, false), RESP_NEED_MORE);
    assert_int_equal(PARSE("*1048576\r\n", &dflt, false), RESP_NEED_MORE);
    assert_int_equal(PARSE("*1048577\r\n", &dflt, false), RESP_ERR_MULTIBULK_LEN);

    /* before AUTH (redis-server 7.0.15 with requirepass): 10 args, 16 KiB */
    assert_int_equal(PARSE("*10\r\n", &dflt, true), RESP_NEED_MORE);
    assert_int_equal(PARSE("*11\r\n", &dflt, true), RESP_ERR_UNAUTH_MULTIBULK_LEN);
    assert_int_equal(PARSE("*11\r\n", &dflt, false), RESP_NEED_MORE);
    assert_int_equal(PARSE("*1\r\n$16384\r\n", &dflt, true), RESP_NEED_MORE);
    assert_int_equal(PARSE("*1\r\n$16385\r\n", &dflt, true), RESP_ERR_UNAUTH_BULK_LEN);
    assert_int_equal(PARSE("*1\r\n$16385\r\n", &dflt, false), RESP_NEED_MORE);
    assert_int_equal(PARSE("*-1\r\n", &dflt, true), RESP_OK);
    /* the invalid verdict comes first */
    assert_int_equal(PARSE("*x\r\n", &dflt, true), RESP_ERR_MULTIBULK_LEN);
    assert_int_equal(PARSE("*1048577\r\n", &dflt, true), RESP_ERR_MULTIBULK_LEN);
    assert_int_equal(PARSE("*1\r\n$536870913\r\n", &dflt, true), RESP_ERR_BULK_LEN);
    /* inline requests are not limited by these */
    assert_int_equal(PARSE("a b c d e f g h i j k l\r\n", &dflt, true), RESP_OK);

    char line[RESP_ERROR_LINE_MAX];
    struct resp_parser p;
    resp_parser_init(&p, NULL, 0);
    size_t n = resp_error_line(line, sizeof line, RESP_ERR_UNAUTH_MULTIBULK_LEN, &p);
    assert_int_equal(n, strlen("-ERR Protocol error: unauthenticated multibulk length\r\n"));
    assert_memory_equal(line, "-ERR Protocol error: unauthenticated multibulk length\r\n", n);
    n = resp_error_line(line, sizeof line, RESP_ERR_UNAUTH_BULK_LEN, &p);
    assert_memory_equal(line, "-ERR Protocol error: unauthenticated bulk length\r\n", n);
}

/* The 64 KiB line limits, at their exact edges. */
static void test_line_limits(void **state)
{
    (void)state;
    const size_t K = RESP_INLINE_MAX;
    char *big = malloc(K + 16);
    assert_non_null(big);
    size_t argc;

    /* inline: 65536 bytes before '\n' are fine (they may include the \r) */
    memset(big, 'A', K + 16);
    big[K] = '\n';
    assert_int_equal(parse_once(big, K + 1, &dflt, false, &argc), RESP_OK);
    assert_int_equal(argc, 1);
    assert_int_equal(parse_once(big, K, &dflt, false, NULL), RESP_NEED_MORE);
    assert_int_equal(parse_once(big, K + 1 - 1, &dflt, false, NULL), RESP_NEED_MORE);
    big[K - 1] = '\r';
    assert_int_equal(parse_once(big, K + 1, &dflt, false, &argc), RESP_OK);
    /* 65537 bytes without '\n': too big (redis-server: same) */
    memset(big, 'A', K + 16);
    assert_int_equal(parse_once(big, K + 1, &dflt, false, NULL), RESP_ERR_INLINE_TOO_BIG);
    big[K + 1] = '\n';
    assert_int_equal(parse_once(big, K + 2, &dflt, false, NULL), RESP_ERR_INLINE_TOO_BIG);
    big[K] = '\r'; /* "65536 bytes\r\n": the \r is the 65537th byte */
    assert_int_equal(parse_once(big, K + 2, &dflt, false, NULL), RESP_ERR_INLINE_TOO_BIG);

    /* multibulk count line: '*' + 65535 digits waits, one more is too big */
    memset(big, '1', K + 16);
    big[0] = '*';
    assert_int_equal(parse_once(big, K, &dflt, false, NULL), RESP_NEED_MORE);
    assert_int_equal(parse_once(big, K + 1, &dflt, false, NULL), RESP_ERR_MBULK_COUNT_TOO_BIG);
    big[K] = '\r'; /* the '\r' as the 65537th byte: a (too long) number */
    assert_int_equal(parse_once(big, K + 1, &dflt, false, NULL), RESP_NEED_MORE);
    assert_int_equal(parse_once(big, K + 2, &dflt, false, NULL), RESP_ERR_MULTIBULK_LEN);
    big[K] = '1';
    big[K + 1] = '\r'; /* beyond the limit: too big, however it arrives */
    assert_int_equal(parse_once(big, K + 3, &dflt, false, NULL), RESP_ERR_MBULK_COUNT_TOO_BIG);

    /* argument header line */
    memcpy(big, "*1\r\n$", 5);
    memset(big + 5, '1', K + 11);
    assert_int_equal(parse_once(big, 4 + K, &dflt, false, NULL), RESP_NEED_MORE);
    assert_int_equal(parse_once(big, 4 + K + 1, &dflt, false, NULL), RESP_ERR_BULK_COUNT_TOO_BIG);
    memset(big + 4, 'x', K + 12); /* even when it does not start with '$' */
    assert_int_equal(parse_once(big, 4 + K + 1, &dflt, false, NULL), RESP_ERR_BULK_COUNT_TOO_BIG);

    char line[RESP_ERROR_LINE_MAX];
    static const struct { enum resp_status st; const char *want; } t[] = {
        {RESP_ERR_INLINE_TOO_BIG, "-ERR Protocol error: too big inline request\r\n"},
        {RESP_ERR_MBULK_COUNT_TOO_BIG, "-ERR Protocol error: too big mbulk count string\r\n"},
        {RESP_ERR_BULK_COUNT_TOO_BIG, "-ERR Protocol error: too big bulk count string\r\n"},
    };
    for (size_t i = 0; i < 3; i++) {
        size_t n = resp_error_line(line, sizeof line, t[i].st, NULL);
        assert_int_equal(n, strlen(t[i].want));
        assert_memory_equal(line, t[i].want, n);
    }
    free(big);
}

/* Large requests fed in small pieces stay cheap: a re-parse from the start
 * on every call would make this test take minutes. */
static void test_resume_cost(void **state)
{
    (void)state;
    enum { ARGS = 200000 };
    struct conn_buf wire = {0};
    char hdr[32];
    cb_append(&wire, hdr, (size_t)sprintf(hdr, "*%d\r\n", ARGS));
    for (int i = 0; i < ARGS; i++)
        cb_append(&wire, hdr, (size_t)sprintf(hdr, "$%d\r\nv%0*d\r\n", 6, 5, i % 100000));

    struct harness h;
    h_init(&h, 0, false);
    struct conn_buf in = {0};
    size_t fed = 0;
    enum resp_status st;
    while ((st = h_parse(&h, in.p, in.len, &dflt)) == RESP_NEED_MORE) {
        size_t chunk = 1 + (fed % 7);
        if (chunk > wire.len - fed) chunk = wire.len - fed;
        cb_append(&in, wire.p + fed, chunk);
        fed += chunk;
    }
    assert_int_equal(st, RESP_OK);
    assert_int_equal(h.p.argc, ARGS);
    assert_int_equal(h.p.consumed, wire.len);
    assert_memory_equal(h.p.argv[ARGS - 1].ptr, "v99999", 6);
    h_free(&h);
    free(in.p);
    free(wire.p);

    /* a big bulk: the parser says how much it needs */
    struct resp_parser p;
    struct resp_arg one[1];
    resp_parser_init(&p, one, 1);
    static const char head[] = "*1\r\n$1000000\r\n";
    size_t total = sizeof head - 1 + 1000000 + 2;
    char *buf = malloc(total);
    assert_non_null(buf);
    memcpy(buf, head, sizeof head - 1);
    memset(buf + sizeof head - 1, 'z', 1000000);
    memcpy(buf + total - 2, "\r\n", 2);
    assert_int_equal(resp_parse(&p, buf, 20, &dflt), RESP_NEED_MORE);
    assert_int_equal(resp_parser_want(&p), total);
    assert_int_equal(resp_parse(&p, buf, total - 1, &dflt), RESP_NEED_MORE);
    assert_int_equal(resp_parse(&p, buf, total, &dflt), RESP_OK);
    assert_int_equal(p.argv[0].len, 1000000);
    assert_int_equal(resp_parser_want(&p), 0);
    free(buf);

    /* a long inline line dribbled byte by byte */
    enum { L = 60000 };
    char *line = malloc(L + 1);
    assert_non_null(line);
    memset(line, 'q', L);
    line[L] = '\n';
    resp_parser_init(&p, one, 1);
    for (size_t k = 0; k < L + 1; k++)
        assert_int_equal(resp_parse(&p, line, k, &dflt), RESP_NEED_MORE);
    assert_int_equal(resp_parse(&p, line, L + 1, &dflt), RESP_OK);
    assert_int_equal(p.argv[0].len, L);
    free(line);
}

static void test_error_line_api(void **state)
{
    (void)state;
    struct resp_parser p;
    resp_parser_init(&p, NULL, 0);
    static const char full[] = "-ERR Protocol error: invalid multibulk length\r\n";
    size_t flen = sizeof full - 1;
    for (size_t cap = 0; cap <= flen + 2; cap++) {
        char *out = malloc(cap ? cap : 1);
        assert_non_null(out);
        size_t n = resp_error_line(out, cap, RESP_ERR_MULTIBULK_LEN, &p);
        if (cap >= flen) {
            assert_int_equal(n, flen);
            assert_memory_equal(out, full, flen);
        } else if (cap < 2) {
            assert_int_equal(n, 0);
        } else {
            assert_int_equal(n, cap);
            assert_memory_equal(out, full, cap - 2);
            assert_memory_equal(out + cap - 2, "\r\n", 2);
        }
        free(out);
    }
    /* every status has a line that fits RESP_ERROR_LINE_MAX */
    for (int st = RESP_OK; st <= RESP_ERR_UNBALANCED_QUOTES + 1; st++) {
        char line[RESP_ERROR_LINE_MAX + 8];
        size_t n = resp_error_line(line, sizeof line, (enum resp_status)st, &p);
        assert_true(n <= RESP_ERROR_LINE_MAX);
        assert_memory_equal(line, "-ERR Protocol error: ", 21);
        assert_memory_equal(line + n - 2, "\r\n", 2);
        assert_null(memchr(line, '\n', n - 1));
        assert_non_null(resp_status_str((enum resp_status)st));
    }
    /* reset forgets a sticky error; init keeps nothing */
    char *buf = exact_copy(LIT("*x\r\n"));
    assert_int_equal(resp_parse(&p, buf, 4, &dflt), RESP_ERR_MULTIBULK_LEN);
    p.noauth = true;
    resp_parser_reset(&p);
    assert_true(p.noauth);
    free(buf);
    buf = exact_copy(LIT("*-1\r\n"));
    assert_int_equal(resp_parse(&p, buf, 5, &dflt), RESP_OK);
    free(buf);
}

/* ---- Reply writers ----------------------------------------------------- */

/* Run a fixed-size writer into an exact RESP_HDR_MAX heap block. */
#define FIXED(max, expr_with_dst, want)                                        \
    do {                                                                       \
        char *dst = malloc(max);                                               \
        assert_non_null(dst);                                                  \
        size_t n_ = (expr_with_dst);                                           \
        if (n_ != sizeof(want) - 1 || memcmp(dst, want, n_) != 0)              \
            fail_msg("%s: [%s], want [%s]", #expr_with_dst, show(dst, n_),     \
                     show(want, sizeof(want) - 1));                            \
        free(dst);                                                             \
    } while (0)
#define HDR(expr, want) FIXED(RESP_HDR_MAX, expr, want)

static void test_writers(void **state)
{
    (void)state;
    HDR(resp_put_int(dst, 0), ":0\r\n");
    HDR(resp_put_int(dst, -1), ":-1\r\n");
    HDR(resp_put_int(dst, 42), ":42\r\n");
    HDR(resp_put_int(dst, LLONG_MAX), ":9223372036854775807\r\n");
    HDR(resp_put_int(dst, LLONG_MIN), ":-9223372036854775808\r\n");
    HDR(resp_put_array(dst, 0), "*0\r\n");
    HDR(resp_put_array(dst, 3), "*3\r\n");
    HDR(resp_put_array(dst, SIZE_MAX), "*18446744073709551615\r\n");
    HDR(resp_put_bulk_hdr(dst, 0), "$0\r\n");
    HDR(resp_put_bulk_hdr(dst, 589), "$589\r\n");
    /* HELLO's map as redis-server sends it: %7 in RESP3, *14 in RESP2 */
    HDR(resp_put_map(dst, RESP_V3, 7), "%7\r\n");
    HDR(resp_put_map(dst, RESP_V2, 7), "*14\r\n");
    HDR(resp_put_map(dst, RESP_V3, 0), "%0\r\n");
    HDR(resp_put_map(dst, RESP_V2, SIZE_MAX / 2), "*18446744073709551614\r\n");
    /* SMEMBERS: ~1 in RESP3 */
    HDR(resp_put_set(dst, RESP_V3, 1), "~1\r\n");
    HDR(resp_put_set(dst, RESP_V2, 1), "*1\r\n");
    /* GET of a missing key: $-1 / _ */
    HDR(resp_put_null(dst, RESP_V2), "$-1\r\n");
    HDR(resp_put_null(dst, RESP_V3), "_\r\n");
    HDR(resp_put_null(dst, 0), "$-1\r\n"); /* anything but 3 is RESP2 */
    HDR(resp_put_null_array(dst, RESP_V2), "*-1\r\n");
    HDR(resp_put_null_array(dst, RESP_V3), "_\r\n");
    HDR(resp_put_bool(dst, RESP_V2, true), ":1\r\n");
    HDR(resp_put_bool(dst, RESP_V2, false), ":0\r\n");
    HDR(resp_put_bool(dst, RESP_V3, true), "#t\r\n");
    HDR(resp_put_bool(dst, RESP_V3, false), "#f\r\n");
    /* INFO server as redis-server sends it: $589 / =593 txt: */
    HDR(resp_put_verbatim_hdr(dst, RESP_V2, "txt", 589), "$589\r\n");
    HDR(resp_put_verbatim_hdr(dst, RESP_V3, "txt", 589), "=593\r\ntxt:");
    HDR(resp_put_verbatim_hdr(dst, RESP_V3, "mkd", 0), "=4\r\nmkd:");
    HDR(resp_put_verbatim_hdr(dst, RESP_V3, "txt", SIZE_MAX - 4), "=18446744073709551615\r\ntxt:");

    /* ZSCORE as redis-server 7.0.15 sends it */
    FIXED(RESP_DOUBLE_MAX, resp_put_double(dst, RESP_V3, 1.5), ",1.5\r\n");
    FIXED(RESP_DOUBLE_MAX, resp_put_double(dst, RESP_V3, INFINITY), ",inf\r\n");
    FIXED(RESP_DOUBLE_MAX, resp_put_double(dst, RESP_V3, -INFINITY), ",-inf\r\n");
    FIXED(RESP_DOUBLE_MAX, resp_put_double(dst, RESP_V3, 0.1), ",0.10000000000000001\r\n");
    FIXED(RESP_DOUBLE_MAX, resp_put_double(dst, RESP_V3, 1e300), ",1.0000000000000001e+300\r\n");
    FIXED(RESP_DOUBLE_MAX, resp_put_double(dst, RESP_V3, 100), ",100\r\n");
    FIXED(RESP_DOUBLE_MAX, resp_put_double(dst, RESP_V3, 1e-300), ",1e-300\r\n");
    FIXED(RESP_DOUBLE_MAX, resp_put_double(dst, RESP_V3, 0), ",0\r\n");
    FIXED(RESP_DOUBLE_MAX, resp_put_double(dst, RESP_V2, INFINITY), "$3\r\ninf\r\n");
    FIXED(RESP_DOUBLE_MAX, resp_put_double(dst, RESP_V2, 0.1), "$19\r\n0.10000000000000001\r\n");
    FIXED(RESP_DOUBLE_MAX, resp_put_double(dst, RESP_V3, NAN), ",nan\r\n");
    FIXED(RESP_DOUBLE_MAX, resp_put_double(dst, RESP_V3, -NAN), ",nan\r\n");
    FIXED(RESP_DOUBLE_MAX, resp_put_double(dst, RESP_V2, -DBL_MIN),
          "$24\r\n-2.2250738585072014e-308\r\n");
    FIXED(RESP_DOUBLE_MAX, resp_put_double(dst, RESP_V2, -DBL_MAX),
          "$24\r\n-1.7976931348623157e+308\r\n");
    FIXED(RESP_DOUBLE_MAX, resp_put_double(dst, RESP_V2, -4.9406564584124654e-324),
          "$24\r\n-4.9406564584124654e-324\r\n");
}

/* Exact-size writers into blocks of exactly their announced length. */
static void check_exact(const char *what, size_t len, size_t (*put)(char *, const char *, size_t),
                        const char *s, size_t n, const char *want, size_t want_len)
{
    char *dst = malloc(len ? len : 1);
    assert_non_null(dst);
    size_t got = put(dst, s, n);
    if (got != len || got != want_len || memcmp(dst, want, got) != 0)
        fail_msg("%s [%s]: [%s] (len %zu)", what, show(s, n), show(dst, got), len);
    free(dst);
}

static void test_exact_writers(void **state)
{
    (void)state;
    static const struct { const char *s; size_t n; const char *simple, *error, *bulk; size_t bl; } t[] = {
        {LIT("OK"), "+OK\r\n", "-OK\r\n", "$2\r\nOK\r\n", 8},
        {LIT(""), "+\r\n", "-\r\n", "$0\r\n\r\n", 6},
        {LIT("ERR syntax error"), "+ERR syntax error\r\n", "-ERR syntax error\r\n",
         "$16\r\nERR syntax error\r\n", 23},
        {LIT("a\r\nb"), "+a  b\r\n", "-a  b\r\n", "$4\r\na\r\nb\r\n", 10},
        {LIT("\n"), "+ \r\n", "- \r\n", "$1\r\n\n\r\n", 7},
        {LIT("x\0y"), "+x\0y\r\n", "-x\0y\r\n", "$3\r\nx\0y\r\n", 9},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char *src = exact_copy(t[i].s, t[i].n);
        check_exact("simple", resp_simple_len(t[i].n), resp_put_simple, src, t[i].n,
                    t[i].simple, t[i].n + 3);
        check_exact("error", resp_error_len(t[i].n), resp_put_error, src, t[i].n,
                    t[i].error, t[i].n + 3);
        check_exact("bulk", resp_bulk_len(t[i].n), resp_put_bulk, src, t[i].n, t[i].bulk,
                    t[i].bl);
        free(src);
    }
    /* bulk lengths across digit-count boundaries, and header + bytes + CRLF */
    static const size_t sizes[] = {0, 9, 10, 99, 100, 999, 1000, 65535, 65536, 1000000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        char *v = malloc(n ? n : 1);
        assert_non_null(v);
        memset(v, 'v', n);
        size_t len = resp_bulk_len(n);
        char *dst = malloc(len);
        assert_non_null(dst);
        assert_int_equal(resp_put_bulk(dst, v, n), len);
        char hdr[RESP_HDR_MAX];
        size_t h = resp_put_bulk_hdr(hdr, n);
        assert_int_equal(len, h + n + 2);
        assert_memory_equal(dst, hdr, h);
        assert_memory_equal(dst + h + n, RESP_CRLF, 2);
        free(dst);
        free(v);
    }
}

/* ---- Numbers ----------------------------------------------------------- */

static void test_str_to_ll(void **state)
{
    (void)state;
    /* INCRBY 0 by <s> on redis-server 7.0.15: accepted, with the value */
    static const struct { const char *s; long long v; } ok[] = {
        {"1", 1}, {"0", 0}, {"-1", -1}, {"9223372036854775807", LLONG_MAX},
        {"-9223372036854775808", LLONG_MIN}, {"10", 10}, {"-10", -10}, {"100", 100},
    };
    /* ... and "ERR value is not an integer or out of range" */
    static const char *const bad[] = {
        "-0", "+1", "01", "00", " 1", "1 ", "", "-", "1a", "9223372036854775808",
        "-9223372036854775809", "18446744073709551616", "0x10", "1e3", "1.0", "-00",
        "000000000000000000001", "99999999999999999999", "--1", "- 1", "1-", "+0",
        "\t1", "1\n", "184467440737095516150", "-18446744073709551616",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t v = 12345;
        char *s = exact_copy(ok[i].s, strlen(ok[i].s));
        if (!num_parse_i64(s, strlen(ok[i].s), &v) || v != ok[i].v)
            fail_msg("[%s] -> %lld", ok[i].s, v);
        free(s);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v = 12345;
        char *s = exact_copy(bad[i], strlen(bad[i]));
        if (num_parse_i64(s, strlen(bad[i]), &v))
            fail_msg("[%s] accepted as %lld", bad[i], v);
        assert_int_equal(v, 12345); /* untouched on failure */
        free(s);
    }
    int64_t v;
    assert_false(num_parse_i64(LIT("1\0"), &v)); /* NUL is not a digit */
    assert_true(num_parse_i64("12", 1, &v));      /* only n bytes are read */
    assert_int_equal(v, 1);

    /* round trip with resp_ll_to_str, against printf */
    rng_state = 99;
    for (int i = 0; i < 200000; i++) {
        long long x = (long long)rng();
        if (i % 3 == 0) x >>= rng() % 64;
        if (i < 6) x = (long long[]){0, -1, LLONG_MAX, LLONG_MIN, LLONG_MIN + 1, 1}[i];
        char a[NUM_MAX_DIGITS], b[32]; /* num_format_* writes a NUL too */
        size_t n = num_format_i64(a, x);
        int bn = snprintf(b, sizeof b, "%lld", x);
        assert_int_equal(n, (size_t)bn);
        assert_memory_equal(a, b, n);
        int64_t y;
        assert_true(num_parse_i64(a, n, &y));
        assert_true(x == y);
        if (x >= 0) {
            n = num_format_u64(a, (unsigned long long)x * 2u + 1u);
            bn = snprintf(b, sizeof b, "%llu", (unsigned long long)x * 2u + 1u);
            assert_int_equal(n, (size_t)bn);
            assert_memory_equal(a, b, n);
        }
    }
    char a[NUM_MAX_DIGITS];
    assert_int_equal(num_format_u64(a, ULLONG_MAX), 20);
    assert_memory_equal(a, "18446744073709551615", 20);
}

/* INCRBYFLOAT f <incr> after SET f <init>, on redis-server 7.0.15. */
static const struct {
    const char *init;
    size_t init_len;
    const char *incr;
    size_t incr_len;
    const char *out;  /* the new value, or NULL for an error */
    size_t out_len;
    const char *err;  /* the error text */
} incrbyfloat[] = {
    {"0", 1, "3.0e5", 5, "300000", 6, NULL},
    {"0", 1, "1.5", 3, "1.5", 3, NULL},
    {"0", 1, "10.50", 5, "10.5", 4, NULL},
    {"0", 1, "-0.0", 4, "0", 1, NULL},
    {"0", 1, "1e300", 5, "1000000000000000000008997324079559193870523944273290747938260082321265"
     "6465961809357558491520837504971903503725086142748359035925561846729839"
     "1309626052074864628732713564184365329408425510760601678972665293237003"
     "0551382947620994540294772781889620606179267611627097410650567187386105"
     "690089424915104006144", 301, NULL},
    {"0", 1, "-1e300", 6, "-100000000000000000000899732407955919387052394427329074793826008232126"
     "5646596180935755849152083750497190350372508614274835903592556184672983"
     "9130962605207486462873271356418436532940842551076060167897266529323700"
     "3055138294762099454029477278188962060617926761162709741065056718738610"
     "5690089424915104006144", 302, NULL},
    {"0", 1, "1e-20", 5, "0", 1, NULL},
    {"0", 1, "-1e-20", 6, "0", 1, NULL},
    {"0", 1, "0.1", 3, "0.1", 3, NULL},
    {"0", 1, "1.1", 3, "1.1", 3, NULL},
    {"0", 1, "3.14159265358979323846", 22, "3.14159265358979324", 19, NULL},
    {"0", 1, "1e5000", 6, NULL, 0, "ERR value is not a valid float"},
    {"0", 1, "1e-5000", 7, NULL, 0, "ERR value is not a valid float"},
    {"0", 1, "inf", 3, NULL, 0, "ERR increment would produce NaN or Infinity"},
    {"0", 1, "-inf", 4, NULL, 0, "ERR increment would produce NaN or Infinity"},
    {"0", 1, "nan", 3, NULL, 0, "ERR value is not a valid float"},
    {"0", 1, " 1", 2, NULL, 0, "ERR value is not a valid float"},
    {"0", 1, "1 ", 2, NULL, 0, "ERR value is not a valid float"},
    {"0", 1, "", 0, NULL, 0, "ERR value is not a valid float"},
    {"0", 1, "0x10", 4, "16", 2, NULL},
    {"0", 1, "0x1p3", 5, "8", 1, NULL},
    {"0", 1, "1e", 2, NULL, 0, "ERR value is not a valid float"},
    {"0", 1, "+1.5", 4, "1.5", 3, NULL},
    {"0", 1, ".5", 2, "0.5", 3, NULL},
    {"0", 1, "5.", 2, "5", 1, NULL},
    {"0", 1, "1\0002", 3, NULL, 0, "ERR value is not a valid float"},
    {"0", 1, "1e-4940", 7, "0", 1, NULL},
    {"0", 1, "1e-4960", 7, NULL, 0, "ERR value is not a valid float"},
    {"0", 1, "123456789012345678901234567890", 30, "123456789012345678899921813504", 30, NULL},
    {"1e300", 5, "1e300", 5, "2000000000000000000017994648159118387741047888546581495876520164642531"
     "2931923618715116983041675009943807007450172285496718071851123693459678"
     "2619252104149729257465427128368730658816851021521203357945330586474006"
     "1102765895241989080589545563779241212358535223254194821301134374772211"
     "380178849830208012288", 301, NULL},
    {"abc", 3, "1", 1, NULL, 0, "ERR value is not a valid float"},
    {"1 ", 2, "1", 1, NULL, 0, "ERR value is not a valid float"},
    {"inf", 3, "1", 1, NULL, 0, "ERR increment would produce NaN or Infinity"},
    {"0", 1, "9007199254740993", 16, "9007199254740993", 16, NULL},
    {"0", 1, "0.30000000000000004", 19, "0.30000000000000004", 19, NULL},
    {"0.1", 3, "0.2", 3, "0.3", 3, NULL},
    {"5", 1, "-5", 2, "0", 1, NULL},
    {"1.18e4932", 9, "1.18e4932", 9, NULL, 0, "ERR increment would produce NaN or Infinity"},
    {"0", 1, "INF", 3, NULL, 0, "ERR increment would produce NaN or Infinity"},
    {"0", 1, "Infinity", 8, NULL, 0, "ERR increment would produce NaN or Infinity"},
    {"0", 1, "-NaN", 4, NULL, 0, "ERR value is not a valid float"},
    {"0", 1, "1E3", 3, "1000", 4, NULL},
    {"0", 1, "\0111", 2, NULL, 0, "ERR value is not a valid float"},
    {"0", 1, "1\012", 2, NULL, 0, "ERR value is not a valid float"},
    {"0", 1, "2.5e-17", 7, "0.00000000000000002", 19, NULL},
    {"0", 1, "1.23456789e-10", 14, "0.00000000012345679", 19, NULL},
    {"0", 1, "99999999999999999999", 20, "100000000000000000000", 21, NULL},
    {"1", 1, "0.000000000000000001", 20, "1", 1, NULL},
    {"10", 2, "0.1", 3, "10.1", 4, NULL},
    {"-1", 2, "0.5", 3, "-0.5", 4, NULL},
    {"0", 1, "-1.5", 4, "-1.5", 4, NULL},
    {"0", 1, "1e20", 4, "100000000000000000000", 21, NULL},
    {"0", 1, "1e21", 4, "1000000000000000000000", 22, NULL},
    {"0", 1, "12345678.87654321", 17, "12345678.87654320999990887", 26, NULL},
    {"3", 1, "-3.0000000000000001", 19, "-0.0000000000000001", 19, NULL},
    {"0", 1, "0.000000000000000005", 20, "0", 1, NULL},
    {"0", 1, "-0.000000000000000005", 21, "0", 1, NULL},
    {"0", 1, "0.000000000000000015", 20, "0.00000000000000002", 19, NULL},
    {"0", 1, "1e-17", 5, "0.00000000000000001", 19, NULL},
    {"0", 1, "-", 1, NULL, 0, "ERR value is not a valid float"},
    {"0", 1, ".", 1, NULL, 0, "ERR value is not a valid float"},
    {"0", 1, "e5", 2, NULL, 0, "ERR value is not a valid float"},
    {"0", 1, "0x", 2, NULL, 0, "ERR value is not a valid float"},
    {"0", 1, "1_000", 5, NULL, 0, "ERR value is not a valid float"},
    {"0", 1, "1,5", 3, NULL, 0, "ERR value is not a valid float"},
    {"", 0, "1", 1, NULL, 0, "ERR value is not a valid float"},
    {"0", 1, "infinity", 8, NULL, 0, "ERR increment would produce NaN or Infinity"},
    {"0", 1, "-Infinity", 9, NULL, 0, "ERR increment would produce NaN or Infinity"},
    {"0", 1, "1e-4950", 7, "0", 1, NULL},
    {"0", 1, "5e-4951", 7, "0", 1, NULL},
    {"0", 1, "1.19e4932", 9, NULL, 0, "ERR value is not a valid float"},
    {"0", 1, "18446744073709551616", 20, "18446744073709551616", 20, NULL},
};

/* What a serve layer's INCRBYFLOAT does with these helpers. */
static const char *emulate_incrbyfloat(const char *init, size_t il, const char *incr, size_t nl,
                                       char *out, size_t cap, size_t *out_len)
{
    long double a, b;
    if (!resp_str_to_ld(init, il, &a) || !resp_str_to_ld(incr, nl, &b))
        return "ERR value is not a valid float";
    long double v = a + b;
    if (isnan(v) || isinf(v))
        return "ERR increment would produce NaN or Infinity";
    *out_len = resp_ld_to_str(out, cap, v);
    assert_true(*out_len > 0);
    return NULL;
}

static void test_incrbyfloat(void **state)
{
    (void)state;
    char *out = malloc(RESP_LD_STR_MAX);
    assert_non_null(out);
    for (size_t i = 0; i < sizeof incrbyfloat / sizeof incrbyfloat[0]; i++) {
        char *a = exact_copy(incrbyfloat[i].init, incrbyfloat[i].init_len);
        char *b = exact_copy(incrbyfloat[i].incr, incrbyfloat[i].incr_len);
        size_t n = 0;
        const char *err = emulate_incrbyfloat(a, incrbyfloat[i].init_len, b,
                                              incrbyfloat[i].incr_len, out,
                                              RESP_LD_STR_MAX, &n);
        if (incrbyfloat[i].err != NULL) {
            if (err == NULL || strcmp(err, incrbyfloat[i].err) != 0)
                fail_msg("SET %s INCRBYFLOAT [%s]: got %s, redis %s", incrbyfloat[i].init,
                         show(incrbyfloat[i].incr, incrbyfloat[i].incr_len),
                         err ? err : show(out, n), incrbyfloat[i].err);
        } else {
            if (err != NULL || n != incrbyfloat[i].out_len ||
                memcmp(out, incrbyfloat[i].out, n) != 0)
                fail_msg("SET %s INCRBYFLOAT [%s]: got [%s], redis [%s]", incrbyfloat[i].init,
                         show(incrbyfloat[i].incr, incrbyfloat[i].incr_len),
                         err ? err : show(out, n), show(incrbyfloat[i].out, incrbyfloat[i].out_len));
            assert_int_equal(out[n], '\0');
        }
        free(a);
        free(b);
    }

    /* the longest texts (redis-server: 4933 and 4934 characters) */
    size_t n;
    assert_null(emulate_incrbyfloat(LIT("0"), LIT("1.18e4932"), out, RESP_LD_STR_MAX, &n));
    assert_int_equal(n, 4933);
    assert_memory_equal(out, "118000000000000000000065281291809369920269043714016047172983", 60);
    assert_memory_equal(out + n - 25, "6896512585853888628785152", 25);
    assert_null(emulate_incrbyfloat(LIT("0"), LIT("-1.18e4932"), out, RESP_LD_STR_MAX, &n));
    assert_int_equal(n, 4934);
    assert_null(emulate_incrbyfloat(LIT("0"), LIT("1e4000"), out, RESP_LD_STR_MAX, &n));
    assert_int_equal(n, 4000);
    assert_memory_equal(out, "999999999999999999996546387309962378493249258350695763130150", 60);
    assert_memory_equal(out + n - 25, "9951206648276349901340672", 25);
    /* LDBL_MAX fits RESP_LD_STR_MAX */
    assert_true(resp_ld_to_str(out, RESP_LD_STR_MAX, -LDBL_MAX) > 4900);
    free(out);

    /* cap: exact fits (text + NUL), one less does not */
    static const long double vals[] = {1.5L, -0.0L, 300000.0L, 1e300L, INFINITY, -INFINITY, NAN};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        char big[RESP_LD_STR_MAX];
        size_t full = resp_ld_to_str(big, sizeof big, vals[i]);
        assert_true(full > 0);
        char *exact = malloc(full + 1);
        assert_non_null(exact);
        assert_int_equal(resp_ld_to_str(exact, full + 1, vals[i]), full);
        assert_memory_equal(exact, big, full + 1);
        assert_int_equal(resp_ld_to_str(exact, full, vals[i]), 0);
        assert_int_equal(resp_ld_to_str(exact, 0, vals[i]), 0);
        free(exact);
    }
    char s[8];
    assert_int_equal(resp_ld_to_str(s, sizeof s, INFINITY), 3);
    assert_string_equal(s, "inf");
    assert_int_equal(resp_ld_to_str(s, sizeof s, -INFINITY), 4);
    assert_string_equal(s, "-inf");
    assert_int_equal(resp_ld_to_str(s, sizeof s, NAN), 3);
    assert_string_equal(s, "nan");

    /* a float argument longer than Redis's buffer is refused */
    char *longnum = malloc(RESP_LD_STR_MAX);
    assert_non_null(longnum);
    memset(longnum, '1', RESP_LD_STR_MAX);
    long double v;
    assert_false(resp_str_to_ld(longnum, RESP_LD_STR_MAX, &v));
    longnum[0] = '0';
    longnum[1] = '.';
    assert_true(resp_str_to_ld(longnum, RESP_LD_STR_MAX - 1, &v));
    free(longnum);
}

static void test_double_to_str(void **state)
{
    (void)state;
    static const struct { double d; const char *s; } t[] = {
        {1.5, "1.5"}, {0.1, "0.10000000000000001"}, {1e300, "1.0000000000000001e+300"},
        {100, "100"}, {1e-300, "1e-300"}, {0, "0"}, {-0.0, "-0"}, {INFINITY, "inf"},
        {-INFINITY, "-inf"}, {NAN, "nan"}, {-2.5, "-2.5"}, {1e17, "1e+17"},
        {123456789012345678.0, "1.2345678901234568e+17"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char *out = malloc(RESP_DOUBLE_STR_MAX);
        assert_non_null(out);
        size_t n = resp_double_to_str(out, t[i].d);
        assert_int_equal(n, strlen(t[i].s));
        assert_string_equal(out, t[i].s);
        free(out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_prefixes),
        cmocka_unit_test(test_resume_moving_buffer),
        cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_short_after_long),
        cmocka_unit_test(test_argv_growth),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_line_limits),
        cmocka_unit_test(test_resume_cost),
        cmocka_unit_test(test_error_line_api),
        cmocka_unit_test(test_writers),
        cmocka_unit_test(test_exact_writers),
        cmocka_unit_test(test_str_to_ll),
        cmocka_unit_test(test_incrbyfloat),
        cmocka_unit_test(test_double_to_str),
    };
    return cmocka_run_group_tests_name("resp", tests, NULL, NULL);
}
