/*
 * test_proto.c - unit tests for the text protocol parser and reply encoder.
 *
 * Parser cases are tables of (request line -> status, fields, error line).
 * Every line is copied into an exactly-sized heap buffer before parsing, so
 * under ASan any read past the line is caught; every prefix of every line is
 * parsed too (a connection may hand over a line cut anywhere in fuzzing).
 * The encoder is checked against fixed pairs, against a slow reference
 * encoder written here, and by round-trip properties over random values.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

/* ---- Helpers ----------------------------------------------------------- */

#define LIT(s) (s), (sizeof(s) - 1)

/* Printable rendering of bytes for failure messages (static buffer). */
static const char *show(const char *s, size_t len)
{
    static char out[512];
    size_t n = 0;

    for (size_t i = 0; i < len && n + 8 < sizeof out; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            out[n++] = (char)c;
        else
            n += (size_t)snprintf(out + n, sizeof out - n, "\\x%02x", c);
    }
    if (n + 8 >= sizeof out)
        n += (size_t)snprintf(out + n, sizeof out - n, "...");
    out[n] = '\0';
    return out;
}

/* A heap copy of exactly len bytes (ASan flags any access outside it). */
static char *exact_copy(const char *s, size_t len)
{
    char *buf = malloc(len);
    assert_true(buf != NULL || len == 0);
    if (len > 0)
        memcpy(buf, s, len);
    return buf;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n > 0 ? n : 1);
    assert_non_null(p);
    return p;
}

static bool bytes_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* Deterministic PRNG for the property tests (xorshift64*). */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1du;
}

/* Growable byte buffer for building requests. */
struct sbuf {
    char *p;
    size_t len, cap;
};

static void sb_put(struct sbuf *b, const void *s, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        assert_non_null(b->p);
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void sb_str(struct sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_rep(struct sbuf *b, const char *s, size_t times)
{
    for (size_t i = 0; i < times; i++)
        sb_str(b, s);
}

/*
 * Append v as the inside of a request string. style 0: minimal (only '"'
 * and '\\' escaped); 1: every byte as \xHH, upper/lower hex alternating;
 * 2: a random mix of raw, named escapes and \xHH.
 */
static void sb_quote(struct sbuf *b, const char *v, size_t len, int style)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        char tmp[8];
        int mode = style == 2 ? (int)(rng() % 3) : style;
        if (mode == 1) {
            snprintf(tmp, sizeof tmp, (i & 1) ? "\\x%02X" : "\\x%02x", c);
            sb_str(b, tmp);
            continue;
        }
        if (mode == 2) {
            const char *named = NULL;
            switch (c) {
            case '\n': named = "\\n"; break;
            case '\r': named = "\\r"; break;
            case '\t': named = "\\t"; break;
            case '\0': named = "\\0"; break;
            default: break;
            }
            if (named) {
                sb_str(b, named);
                continue;
            }
        }
        if (c == '"')
            sb_str(b, "\\\"");
        else if (c == '\\')
            sb_str(b, "\\\\");
        else
            sb_put(b, &v[i], 1);
    }
}

/* Slow, obviously-correct reference of the reply encoding. */
static size_t ref_encode(char *dst, const char *v, size_t len)
{
    size_t w = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (i == 0 && len >= 7 && memcmp(v, "Error: ", 7) == 0)
            w += (size_t)sprintf(dst + w, "\\x45");
        else if (c == '\\')
            w += (size_t)sprintf(dst + w, "\\\\");
        else if (c == '\r')
            w += (size_t)sprintf(dst + w, "\\r");
        else if (c == '\n')
            w += (size_t)sprintf(dst + w, "\\n");
        else if (c == '\t')
            w += (size_t)sprintf(dst + w, "\\t");
        else if (c < 0x20 || c == 0x7f)
            w += (size_t)sprintf(dst + w, "\\x%02x", c);
        else
            dst[w++] = (char)c;
    }
    return w;
}

/* ---- Parser tables ----------------------------------------------------- */

struct pcase {
    const char *in;       /* request line, no '\n' */
    size_t in_len;
    enum proto_status st; /* expected status */
    enum proto_cmd cmd;   /* PROTO_OK: expected fields from here on */
    const char *key;      /* NULL: req.key must be NULL */
    size_t key_len;
    const char *val;      /* NULL: req.value must be NULL */
    size_t val_len;
    bool has_ttl;
    uint32_t ttl;
    const char *err;      /* errors: the exact reply line */
};

#define OK_NONE(l)          {LIT(l), PROTO_OK, PROTO_CMD_NONE, NULL, 0, NULL, 0, false, 0, NULL}
#define OK_NOARG(l, c)      {LIT(l), PROTO_OK, c, NULL, 0, NULL, 0, false, 0, NULL}
#define OK_KEY(l, c, k)     {LIT(l), PROTO_OK, c, LIT(k), NULL, 0, false, 0, NULL}
#define OK_SET(l, k, v)     {LIT(l), PROTO_OK, PROTO_CMD_SET, LIT(k), LIT(v), false, 0, NULL}
#define OK_SETT(l, k, v, t) {LIT(l), PROTO_OK, PROTO_CMD_SET, LIT(k), LIT(v), true, t, NULL}
#define OK_EXP(l, k, t)     {LIT(l), PROTO_OK, PROTO_CMD_EXPIRE, LIT(k), NULL, 0, true, t, NULL}
#define ERR(l, s, e)        {LIT(l), s, PROTO_CMD_NONE, NULL, 0, NULL, 0, false, 0, e}

#define E_UNK     "Error: Unrecognized command\n"
#define E_NOTINT  "Error: TTL is not an integer\n"
#define E_RANGE   "Error: TTL out of range (0..315360000)\n"
#define E_KEY     "Error: Key too long\n"
#define E_VALUE   "Error: Value too large\n"
#define E_SYN(d)  "Error: Syntax error: " d "\n"

#define UNK(l)     ERR(l, PROTO_ERR_UNKNOWN_COMMAND, E_UNK)
#define SYN(l, d)  ERR(l, PROTO_ERR_SYNTAX, E_SYN(d))
#define NOTINT(l)  ERR(l, PROTO_ERR_TTL_NOT_INT, E_NOTINT)
#define RANGE(l)   ERR(l, PROTO_ERR_TTL_RANGE, E_RANGE)
#define KEYLONG(l) ERR(l, PROTO_ERR_KEY_TOO_LONG, E_KEY)
#define VALBIG(l)  ERR(l, PROTO_ERR_VALUE_TOO_LARGE, E_VALUE)

#define D_PAREN    "missing ')'"
#define D_ARITY    "wrong number of arguments"
#define D_STRING   "expected a quoted string"
#define D_UNTERM   "unterminated string"
#define D_ESCAPE   "bad escape sequence in string"
#define D_SEP      "expected ',' or ')' after argument"
#define D_BEFORE   "expected an argument before ','"
#define D_AFTER    "expected an argument after ','"
#define D_TRAILING "trailing garbage after ')'"

/* Table cases run with this value limit. */
static const struct proto_limits table_limits = {.max_value_len = 16};

static const struct pcase ok_cases[] = {
    /* blank lines: no request */
    OK_NONE(""),
    OK_NONE("   "),
    OK_NONE("\t \t"),
    OK_NONE("\r"),
    OK_NONE(" \r \r"),
    /* every command */
    OK_SET("set(\"k\",\"v\")", "k", "v"),
    OK_SETT("set(\"k\",\"v\",60)", "k", "v", 60),
    OK_SETT("set(\"test_key\",\"test value\",60)", "test_key", "test value", 60),
    OK_SET("set(\"k\",\"\")", "k", ""),
    OK_KEY("get(\"k\")", PROTO_CMD_GET, "k"),
    OK_KEY("del(\"k\")", PROTO_CMD_DEL, "k"),
    OK_KEY("ttl(\"k\")", PROTO_CMD_TTL, "k"),
    OK_EXP("expire(\"k\",60)", "k", 60),
    OK_NOARG("ping()", PROTO_CMD_PING),
    OK_NOARG("stats()", PROTO_CMD_STATS),
    OK_NOARG("quit()", PROTO_CMD_QUIT),
    OK_KEY("auth(\"pw\")", PROTO_CMD_AUTH, "pw"),
    OK_KEY("auth(\"\")", PROTO_CMD_AUTH, ""), /* no length rule for passwords */
    /* case-insensitive names */
    OK_KEY("GET(\"k\")", PROTO_CMD_GET, "k"),
    OK_KEY("gEt(\"K\")", PROTO_CMD_GET, "K"),
    OK_SETT("Set(\"k\",\"v\",1)", "k", "v", 1),
    OK_SET("SET(\"k\",\"v\")", "k", "v"),
    OK_KEY("DEL(\"k\")", PROTO_CMD_DEL, "k"),
    OK_KEY("TtL(\"k\")", PROTO_CMD_TTL, "k"),
    OK_EXP("ExPiRe(\"k\",5)", "k", 5),
    OK_NOARG("PING()", PROTO_CMD_PING),
    OK_NOARG("Stats()", PROTO_CMD_STATS),
    OK_NOARG("QUIT()", PROTO_CMD_QUIT),
    OK_KEY("AUTH(\"Pw\")", PROTO_CMD_AUTH, "Pw"),
    /* blanks around every token */
    OK_SETT(" \t set \t ( \t \"k\" \t , \t \"v\" \t , \t 60 \t ) \t ", "k", "v", 60),
    OK_SETT("set( \"k\" , \"v\" , 60 )", "k", "v", 60),
    OK_EXP("expire (\"k\" ,\t7 )", "k", 7),
    OK_NOARG("ping ( )", PROTO_CMD_PING),
    OK_NOARG("\tstats\t(\t)\t", PROTO_CMD_STATS),
    OK_KEY("  get(\"k\")  ", PROTO_CMD_GET, "k"),
    OK_KEY("get\t(\"k\")", PROTO_CMD_GET, "k"),
    OK_KEY("get(\" k \")", PROTO_CMD_GET, " k "), /* blanks inside quotes kept */
    /* trailing CR */
    OK_KEY("get(\"k\")\r", PROTO_CMD_GET, "k"),
    OK_NOARG("ping() \t\r", PROTO_CMD_PING),
    OK_SETT("set(\"k\",\"v\",7)\r", "k", "v", 7),
    /* every escape */
    OK_KEY("get(\"a\\\\b\")", PROTO_CMD_GET, "a\\b"),
    OK_KEY("get(\"a\\\"b\")", PROTO_CMD_GET, "a\"b"),
    OK_KEY("get(\"a\\nb\")", PROTO_CMD_GET, "a\nb"),
    OK_KEY("get(\"a\\rb\")", PROTO_CMD_GET, "a\rb"),
    OK_KEY("get(\"a\\tb\")", PROTO_CMD_GET, "a\tb"),
    OK_KEY("get(\"a\\0b\")", PROTO_CMD_GET, "a\0b"),
    OK_KEY("get(\"\\x41\")", PROTO_CMD_GET, "A"),
    OK_KEY("get(\"\\x4a\\x4A\")", PROTO_CMD_GET, "JJ"),
    OK_KEY("get(\"\\xff\\xFF\\xfF\")", PROTO_CMD_GET, "\xff\xff\xff"),
    OK_KEY("get(\"\\x00\")", PROTO_CMD_GET, "\0"),
    OK_KEY("get(\"\\x22\\x5c\")", PROTO_CMD_GET, "\"\\"),
    OK_KEY("get(\"\\\\\\\\\\\"\\\"\")", PROTO_CMD_GET, "\\\\\"\""),
    OK_SET("set(\"say \\\"hi\\\"\",\"a\\tb\\r\\n\")", "say \"hi\"", "a\tb\r\n"),
    OK_KEY("get(\"\\\\x41\")", PROTO_CMD_GET, "\\x41"), /* escaped backslash, then text */
    /* raw bytes inside quotes */
    OK_KEY("get(\"a\0b\")", PROTO_CMD_GET, "a\0b"),
    OK_KEY("get(\"\0\")", PROTO_CMD_GET, "\0"),
    OK_KEY("get(\"\x80\xff\")", PROTO_CMD_GET, "\x80\xff"),
    OK_KEY("get(\"h\xc3\xa9llo\")", PROTO_CMD_GET, "h\xc3\xa9llo"),
    OK_KEY("get(\"a\rb\")", PROTO_CMD_GET, "a\rb"),
    OK_KEY("get(\"a\tb\")", PROTO_CMD_GET, "a\tb"),
    OK_KEY("get(\"a\nb\")", PROTO_CMD_GET, "a\nb"),
    OK_KEY("get(\"\x7f\x01\")", PROTO_CMD_GET, "\x7f\x01"),
    OK_KEY("get(\"a,b)c(\")", PROTO_CMD_GET, "a,b)c("),
    OK_KEY("get(\"'\")", PROTO_CMD_GET, "'"),
    OK_SET("set(\"k\",\"v\r\")\r", "k", "v\r"),
    /* TTL boundaries */
    OK_SETT("set(\"k\",\"v\",0)", "k", "v", 0),
    OK_SETT("set(\"k\",\"v\",315360000)", "k", "v", 315360000u),
    OK_SETT("set(\"k\",\"v\",315359999)", "k", "v", 315359999u),
    OK_EXP("expire(\"k\",0)", "k", 0),
    OK_EXP("expire(\"k\",315360000)", "k", 315360000u),
    OK_EXP("expire(\"k\",000000000000000000000000000000060)", "k", 60),
    OK_EXP("expire(\"k\",0000000000000000000000000315360000)", "k", 315360000u),
    /* value length at the table limit (16) */
    OK_SET("set(\"k\",\"0123456789abcdef\")", "k", "0123456789abcdef"),
    OK_SET("set(\"k\",\"\\x41\\x41\\x41\\x41\\x41\\x41\\x41\\x41"
           "\\x41\\x41\\x41\\x41\\x41\\x41\\x41\\x41\")",
           "k", "AAAAAAAAAAAAAAAA"),
    OK_SETT("set(\"k\",\"\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\",1)", "k",
            "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n", 1),
};

static const struct pcase err_cases[] = {
    /* no name( shape, or unknown name */
    UNK("foo(\"k\")"),
    UNK("get"),
    UNK("get  "),
    UNK("get x"),
    UNK("get \"k\""),
    UNK("(\"k\")"),
    UNK("\"get\"()"),
    UNK("gets(\"k\")"),
    UNK("ge(\"k\")"),
    UNK("get1(\"k\")"),
    UNK("ge t(\"k\")"),
    UNK("pin g()"),
    UNK("1"),
    UNK("_get()"),
    UNK("\0get()"),
    UNK("get\0()"),
    UNK("g\xc3\xa9t()"),
    UNK("setx("),
    UNK("expires(\"k\",1)"),
    UNK("getget(\"k\")"),
    UNK("expireX(\"k\",1)"),
    UNK("abcdefghijklmnop()"),
    UNK(")"),
    UNK("get)(\"k\")"),
    UNK("get[\"k\"]"),
    UNK("\rping()"),
    UNK("get\r(\"k\")"),
    UNK("x"),
    UNK("\r\rx\r"),
    /* missing ')' */
    SYN("get(", D_PAREN),
    SYN("get(  ", D_PAREN),
    SYN("get(\"k\"", D_PAREN),
    SYN("get(\"k\"  \r", D_PAREN),
    SYN("set(\"k\",\"v\",60", D_PAREN),
    SYN("set(\"k\",\"v\",60 \t", D_PAREN),
    SYN("ping(", D_PAREN),
    SYN("ping(\r", D_PAREN),
    /* wrong number of arguments */
    SYN("get()", D_ARITY),
    SYN("get( )", D_ARITY),
    SYN("del()", D_ARITY),
    SYN("ttl()", D_ARITY),
    SYN("set()", D_ARITY),
    SYN("set(\"k\")", D_ARITY),
    SYN("expire()", D_ARITY),
    SYN("expire(\"k\")", D_ARITY),
    SYN("auth()", D_ARITY),
    SYN("get(\"k\",\"x\")", D_ARITY),
    SYN("get(\"k\",\"x", D_ARITY),
    SYN("del(\"a\",\"b\")", D_ARITY),
    SYN("ttl(\"a\",1)", D_ARITY),
    SYN("set(\"k\",\"v\",1,2)", D_ARITY),
    SYN("set(\"k\",\"v\",1,\"x\")", D_ARITY),
    SYN("expire(\"k\",1,2)", D_ARITY),
    SYN("ping(\"x\")", D_ARITY),
    SYN("stats(1)", D_ARITY),
    SYN("quit(x)", D_ARITY),
    SYN("auth(\"a\",\"b\")", D_ARITY),
    SYN("get() trailing", D_ARITY),
    /* an integer (or anything else) where a string is expected */
    SYN("get(k)", D_STRING),
    SYN("get(5)", D_STRING),
    SYN("set(5,\"v\")", D_STRING),
    SYN("set(\"k\",5)", D_STRING),
    SYN("set(\"k\",5,5)", D_STRING),
    SYN("set(\"k\",v)", D_STRING),
    SYN("expire(5,5)", D_STRING),
    SYN("auth(pw)", D_STRING),
    SYN("auth(123)", D_STRING),
    SYN("get('k')", D_STRING),
    SYN("get(\0\"k\")", D_STRING),
    SYN("get(\r\"k\")", D_STRING),
    /* unterminated string */
    SYN("get(\"abc", D_UNTERM),
    SYN("get(\"", D_UNTERM),
    SYN("get(\"abc\\\"", D_UNTERM),
    SYN("get(\"abc\\", D_UNTERM),
    SYN("get(\"abc\\\")", D_UNTERM),
    SYN("set(\"k\",\"v", D_UNTERM),
    SYN("set(\"k\",\"v\r\r", D_UNTERM),
    /* bad escapes */
    SYN("get(\"\\a\")", D_ESCAPE),
    SYN("get(\"\\e\")", D_ESCAPE),
    SYN("get(\"\\x\")", D_ESCAPE),
    SYN("get(\"\\x\"", D_ESCAPE),
    SYN("get(\"\\x4\")", D_ESCAPE),
    SYN("get(\"\\x4", D_ESCAPE),
    SYN("get(\"\\xg1\")", D_ESCAPE),
    SYN("get(\"\\x1g\")", D_ESCAPE),
    SYN("get(\"\\X41\")", D_ESCAPE),
    SYN("get(\"\\u0041\")", D_ESCAPE),
    SYN("get(\"\\N\")", D_ESCAPE),
    SYN("get(\"\\R\")", D_ESCAPE),
    SYN("get(\"\\'\")", D_ESCAPE),
    SYN("get(\"\\/\")", D_ESCAPE),
    SYN("get(\"\\ \")", D_ESCAPE),
    SYN("get(\"\\1\")", D_ESCAPE),
    SYN("get(\"\\\0\")", D_ESCAPE),
    SYN("get(\"\\\r\")", D_ESCAPE),
    SYN("set(\"k\",\"ok\\q\")", D_ESCAPE),
    SYN("get(\"\\q\"", D_ESCAPE),           /* before the missing ')' */
    SYN("set(\"k\\q\",\"v\",abc)", D_ESCAPE), /* before the bad TTL */
    /* missing ',' between arguments */
    SYN("get(\"k\" \"x\")", D_SEP),
    SYN("get(\"k\"x)", D_SEP),
    SYN("get(\"k\"\r)", D_SEP),
    SYN("get(\"k\";)", D_SEP),
    SYN("set(\"k\" \"v\")", D_SEP),
    SYN("set(\"k\",\"v\",60 x)", D_SEP),
    SYN("set(\"k\",\"v\",60 70)", D_SEP),
    SYN("set(\"k\",\"v\",60 \"x\")", D_SEP),
    /* empty argument positions */
    SYN("get(\"k\",)", D_AFTER),
    SYN("get(\"k\",", D_AFTER),
    SYN("get(\"k\",  ", D_AFTER),
    SYN("set(\"k\",,\"v\")", D_AFTER),
    SYN("set(\"k\",\"v\", )", D_AFTER),
    SYN("expire(\"k\",)", D_AFTER),
    SYN("get(,\"k\")", D_BEFORE),
    SYN("ping(,)", D_BEFORE),
    /* trailing garbage */
    SYN("get(\"k\"))", D_TRAILING),
    SYN("ping() x", D_TRAILING),
    SYN("ping()x", D_TRAILING),
    SYN("ping()\r\r", D_TRAILING),
    SYN("ping()\0", D_TRAILING),
    SYN("ping();", D_TRAILING),
    SYN("ping()ping()", D_TRAILING),
    SYN("get(\"k\")\"", D_TRAILING),
    SYN("set(\"k\",\"v\",1) 2", D_TRAILING),
    /* TTL not an integer */
    NOTINT("set(\"k\",\"v\",-5)"),
    NOTINT("set(\"k\",\"v\",1.5)"),
    NOTINT("set(\"k\",\"v\",abc)"),
    NOTINT("set(\"k\",\"v\",\"60\")"),
    NOTINT("set(\"k\",\"v\",\"\")"),
    NOTINT("set(\"k\",\"v\",\"60"),    /* a string, even an unterminated one */
    NOTINT("set(\"k\",\"v\",60abc)"),
    NOTINT("set(\"k\",\"v\",+5)"),
    NOTINT("set(\"k\",\"v\",0x10)"),
    NOTINT("set(\"k\",\"v\",1e3)"),
    NOTINT("set(\"k\",\"v\",6\"0\")"),
    NOTINT("set(\"k\",\"v\",60\0)"),
    NOTINT("set(\"k\",\"v\",60\r)"),
    NOTINT("set(\"k\",\"v\",-0)"),
    NOTINT("set(\"k\",\"v\",99999999999999999999999x)"),
    NOTINT("set(\"k\",\"v\",abc,1)"),  /* before the extra argument */
    NOTINT("set(\"k\",\"v\",abc"),     /* before the missing ')' */
    NOTINT("expire(\"k\",\"60\")"),
    NOTINT("expire(\"k\",abc)"),
    NOTINT("expire(\"k\",-1)"),
    NOTINT("EXPIRE( \"k\" , 1_000 )"),
    /* TTL out of range */
    RANGE("set(\"k\",\"v\",315360001)"),
    RANGE("set(\"k\",\"v\",99999999999999999999999)"),
    RANGE("set(\"k\",\"v\",18446744073709551615)"),
    RANGE("set(\"k\",\"v\",18446744073709551616)"),
    RANGE("set(\"k\",\"v\",18446744073709551676)"), /* 2^64 + 60 */
    RANGE("set(\"k\",\"v\",4294967296)"),
    RANGE("set(\"k\",\"v\",4294967356)"),            /* 2^32 + 60 */
    RANGE("set(\"k\",\"v\",1000000000000000000000000000000000000000000000000000)"),
    RANGE("set(\"k\",\"v\",99999999999999999999999 x)"), /* before the bad ',' */
    RANGE("set(\"k\",\"v\",315360001,1)"),
    RANGE("expire(\"k\",315360001)"),
    RANGE("expire(\"k\",00000000000000000000000315360001)"),
    RANGE("expire(\"k\",99999999999999999999999)"),
    /* key empty or too long (long keys: test_parse_key_length) */
    KEYLONG("get(\"\")"),
    KEYLONG("del(\"\")"),
    KEYLONG("ttl(\"\")"),
    KEYLONG("set(\"\",\"v\")"),
    KEYLONG("expire(\"\",1)"),
    KEYLONG("set(\"\",\"unterminated"), /* key comes first */
    KEYLONG("set(\"\",5)"),
    KEYLONG("get(\"\",\"x\")"),
    KEYLONG("get(\"\""),
    /* value over the table limit (16) */
    VALBIG("set(\"k\",\"0123456789abcdefg\")"),
    VALBIG("set(\"k\",\"0123456789abcdefg\",abc)"), /* value comes first */
    VALBIG("set(\"k\",\"0123456789abcdefg\""),
    VALBIG("set(\"k\",\"\\x41\\x41\\x41\\x41\\x41\\x41\\x41\\x41"
           "\\x41\\x41\\x41\\x41\\x41\\x41\\x41\\x41\\0\")"),
};

#define N_OK  (sizeof ok_cases / sizeof ok_cases[0])
#define N_ERR (sizeof err_cases / sizeof err_cases[0])

/* Parse one table case from an exact heap copy and check everything. */
static void run_case(size_t idx, const struct pcase *c)
{
    char *buf = exact_copy(c->in, c->in_len);
    struct proto_request req;
    memset(&req, 0xa5, sizeof req); /* garbage: the parser must reset it */
    enum proto_status st = proto_parse_line(buf, c->in_len, &table_limits, &req);

    if (st != c->st)
        fail_msg("case %zu [%s]: status %d, want %d (detail %s)", idx,
                 show(c->in, c->in_len), st, c->st,
                 st == PROTO_ERR_SYNTAX ? req.detail : "-");

    if (st == PROTO_OK) {
        if (req.cmd != c->cmd)
            fail_msg("case %zu [%s]: cmd %d, want %d", idx, show(c->in, c->in_len),
                     req.cmd, c->cmd);
        if (c->key == NULL) {
            assert_null(req.key);
            assert_int_equal(req.key_len, 0);
        } else {
            if (!bytes_eq(req.key, req.key_len, c->key, c->key_len))
                fail_msg("case %zu [%s]: key [%s]", idx, show(c->in, c->in_len),
                         show(req.key, req.key_len));
            /* points into the line: unescaped in place */
            assert_true(req.key >= buf && req.key + req.key_len <= buf + c->in_len);
        }
        if (c->val == NULL) {
            assert_null(req.value);
            assert_int_equal(req.value_len, 0);
        } else {
            if (!bytes_eq(req.value, req.value_len, c->val, c->val_len))
                fail_msg("case %zu [%s]: value [%s]", idx, show(c->in, c->in_len),
                         show(req.value, req.value_len));
            assert_true(req.value >= buf &&
                        req.value + req.value_len <= buf + c->in_len);
            assert_true(req.value >= req.key + req.key_len);
        }
        assert_int_equal(req.has_ttl, c->has_ttl);
        if (c->has_ttl)
            assert_int_equal(req.ttl, c->ttl);
        assert_null(req.detail);
    } else {
        char line[160];
        size_t n = proto_error_line(line, sizeof line, st, req.detail);
        if (!bytes_eq(line, n, c->err, strlen(c->err)))
            fail_msg("case %zu [%s]: error line [%s], want [%s]", idx,
                     show(c->in, c->in_len), show(line, n), c->err);
        assert_true(n < 128); /* the header promises cap >= 128 is enough */
        if (st == PROTO_ERR_SYNTAX)
            assert_non_null(req.detail);
        else
            assert_null(req.detail);
    }
    free(buf);
}

/* ---- Parser tests ------------------------------------------------------ */

static void test_parse_ok_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_OK; i++)
        run_case(i, &ok_cases[i]);
}

static void test_parse_error_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ERR; i++)
        run_case(i, &err_cases[i]);
}

/* Every prefix of every table line, in an exact buffer: never reads outside. */
static void test_parse_table_prefixes(void **state)
{
    (void)state;
    const struct pcase *tables[] = {ok_cases, err_cases};
    const size_t counts[] = {N_OK, N_ERR};

    for (size_t t = 0; t < 2; t++) {
        for (size_t i = 0; i < counts[t]; i++) {
            const struct pcase *c = &tables[t][i];
            for (size_t k = 0; k <= c->in_len; k++) {
                char *buf = exact_copy(c->in, k);
                struct proto_request req;
                enum proto_status st = proto_parse_line(buf, k, &table_limits, &req);
                assert_true((int)st >= 0 && (int)st <= (int)PROTO_ERR_VALUE_TOO_LARGE);
                if (st == PROTO_ERR_SYNTAX)
                    assert_non_null(req.detail);
                free(buf);
            }
        }
    }
}

static bool all_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return false;
    return true;
}

/* Cut valid requests at every byte: only the whole line is a request. */
static void test_parse_split_points(void **state)
{
    (void)state;
    static const char *const valid[] = {
        "set(\"k\",\"v\",60)",
        "set( \"key\" , \"va\\\"l\\x41ue\" , 315360000 )",
        "set(\"k\",\"\")",
        "  GET ( \"k\\n\" )",
        "get(\"k\")",
        "del(\"a\\\\b\")",
        "ttl(\"\\0\")",
        "expire(\"k\",0)",
        "expire(\"k\", 123456)",
        "ping()",
        "stats( )",
        "quit()",
        "auth(\"secret\")",
        "auth(\"\")",
    };

    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        size_t len = strlen(valid[i]);
        for (size_t k = 0; k <= len; k++) {
            char *buf = exact_copy(valid[i], k);
            struct proto_request req;
            enum proto_status st = proto_parse_line(buf, k, &table_limits, &req);
            if (k == len) {
                assert_int_equal(st, PROTO_OK);
                assert_int_not_equal(req.cmd, PROTO_CMD_NONE);
            } else if (st == PROTO_OK) {
                /* only an all-blank prefix may parse, as "no request" */
                if (req.cmd != PROTO_CMD_NONE || !all_blank(valid[i], k))
                    fail_msg("[%s] cut at %zu parsed as a request",
                             show(valid[i], len), k);
            }
            free(buf);
        }
    }
}

/* Parse a built line from an exact copy. */
static enum proto_status parse_built(const struct sbuf *b, const struct proto_limits *lim,
                                     struct proto_request *req, char **copy)
{
    *copy = exact_copy(b->p, b->len);
    return proto_parse_line(*copy, b->len, lim, req);
}

/* "<cmd>(\"" + key + "\"" + tail */
static enum proto_status parse_with_key(const char *cmd, const char *unit, size_t times,
                                        const char *tail, struct proto_request *req,
                                        char **copy)
{
    struct sbuf b = {0};
    sb_str(&b, cmd);
    sb_str(&b, "(\"");
    sb_rep(&b, unit, times);
    sb_str(&b, "\"");
    sb_str(&b, tail);
    enum proto_status st = parse_built(&b, &table_limits, req, copy);
    free(b.p);
    return st;
}

static void test_parse_key_length(void **state)
{
    (void)state;
    static const struct {
        const char *cmd, *tail;
        enum proto_cmd want;
    } cmds[] = {
        {"get", ")", PROTO_CMD_GET},
        {"del", ")", PROTO_CMD_DEL},
        {"ttl", ")", PROTO_CMD_TTL},
        {"set", ",\"v\",5)", PROTO_CMD_SET},
        {"expire", ",5)", PROTO_CMD_EXPIRE},
    };
    static const char *const units[] = {"a", "\\x41", "\\\\", "\\0"};
    struct proto_request req;
    char *copy;

    for (size_t c = 0; c < sizeof cmds / sizeof cmds[0]; c++) {
        for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
            assert_int_equal(parse_with_key(cmds[c].cmd, units[u], 1, cmds[c].tail,
                                            &req, &copy), PROTO_OK);
            assert_int_equal(req.key_len, 1);
            free(copy);

            assert_int_equal(parse_with_key(cmds[c].cmd, units[u], PROTO_MAX_KEY_LEN,
                                            cmds[c].tail, &req, &copy), PROTO_OK);
            assert_int_equal(req.cmd, cmds[c].want);
            assert_int_equal(req.key_len, PROTO_MAX_KEY_LEN);
            free(copy);

            assert_int_equal(parse_with_key(cmds[c].cmd, units[u], PROTO_MAX_KEY_LEN + 1,
                                            cmds[c].tail, &req, &copy),
                             PROTO_ERR_KEY_TOO_LONG);
            free(copy);
        }
        assert_int_equal(parse_with_key(cmds[c].cmd, "", 0, cmds[c].tail, &req, &copy),
                         PROTO_ERR_KEY_TOO_LONG);
        free(copy);
        /* a long key is reported before a later error */
        assert_int_equal(parse_with_key(cmds[c].cmd, "a", 5000, ",,,", &req, &copy),
                         PROTO_ERR_KEY_TOO_LONG);
        free(copy);
    }

    /* auth: no limit on the password beyond the line */
    assert_int_equal(parse_with_key("auth", "p", 5000, ")", &req, &copy), PROTO_OK);
    assert_int_equal(req.cmd, PROTO_CMD_AUTH);
    assert_int_equal(req.key_len, 5000);
    free(copy);
}

/* set("k","<times x unit>") with the given value limit */
static enum proto_status parse_value(size_t max, const char *unit, size_t times,
                                     struct proto_request *req, char **copy)
{
    const struct proto_limits lim = {.max_value_len = max};
    struct sbuf b = {0};
    sb_str(&b, "set(\"k\",\"");
    sb_rep(&b, unit, times);
    sb_str(&b, "\",60)");
    enum proto_status st = parse_built(&b, &lim, req, copy);
    free(b.p);
    return st;
}

static void test_parse_value_length(void **state)
{
    (void)state;
    static const size_t maxes[] = {0, 1, 16, 1000, 1u << 20};
    static const char *const units[] = {"v", "\\n", "\\xfe", "\\\\"};
    struct proto_request req;
    char *copy;

    for (size_t m = 0; m < sizeof maxes / sizeof maxes[0]; m++) {
        size_t max = maxes[m];
        for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
            assert_int_equal(parse_value(max, units[u], max, &req, &copy), PROTO_OK);
            assert_int_equal(req.value_len, max);
            assert_true(req.has_ttl);
            assert_int_equal(req.ttl, 60);
            free(copy);
            assert_int_equal(parse_value(max, units[u], max + 1, &req, &copy),
                             PROTO_ERR_VALUE_TOO_LARGE);
            free(copy);
        }
    }

    /* raw NUL bytes count as value bytes */
    const struct proto_limits lim = {.max_value_len = 3};
    struct sbuf b = {0};
    sb_put(&b, LIT("set(\"k\",\"\0\0\0\")"));
    assert_int_equal(parse_built(&b, &lim, &req, &copy), PROTO_OK);
    assert_true(bytes_eq(req.value, req.value_len, "\0\0\0", 3));
    free(copy);
    free(b.p);
    b = (struct sbuf){0};
    sb_put(&b, LIT("set(\"k\",\"\0\0\0\0\")"));
    assert_int_equal(parse_built(&b, &lim, &req, &copy), PROTO_ERR_VALUE_TOO_LARGE);
    free(copy);
    free(b.p);
}

static void test_parse_ttl_boundaries(void **state)
{
    (void)state;
    static const struct {
        const char *ttl;
        enum proto_status st;
        uint32_t want;
    } t[] = {
        {"0", PROTO_OK, 0},
        {"1", PROTO_OK, 1},
        {"315359999", PROTO_OK, 315359999u},
        {"315360000", PROTO_OK, 315360000u},
        {"315360001", PROTO_ERR_TTL_RANGE, 0},
        {"400000000", PROTO_ERR_TTL_RANGE, 0},
        {"3153600000", PROTO_ERR_TTL_RANGE, 0},
        {"99999999999999999999999", PROTO_ERR_TTL_RANGE, 0},
        {"00", PROTO_OK, 0},
        {"-1", PROTO_ERR_TTL_NOT_INT, 0},
    };
    static const char *const fmt[] = {"set(\"k\",\"v\",%s)", "expire(\"k\",%s)",
                                      "set ( \"k\" , \"v\" , %s ) "};

    for (size_t f = 0; f < sizeof fmt / sizeof fmt[0]; f++) {
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
            char line[128];
            int n = snprintf(line, sizeof line, fmt[f], t[i].ttl);
            char *buf = exact_copy(line, (size_t)n);
            struct proto_request req;
            enum proto_status st = proto_parse_line(buf, (size_t)n, &table_limits, &req);
            if (st != t[i].st)
                fail_msg("[%s]: status %d, want %d", line, st, t[i].st);
            if (st == PROTO_OK) {
                assert_true(req.has_ttl);
                assert_int_equal(req.ttl, t[i].want);
            }
            free(buf);
        }
    }
}

/* Values and keys holding every byte value survive request escaping. */
static void test_parse_all_bytes(void **state)
{
    (void)state;
    char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    const struct proto_limits lim = {.max_value_len = 1024};

    for (int style = 0; style < 3; style++) {
        struct sbuf b = {0};
        sb_str(&b, "set(\"");
        sb_quote(&b, all, sizeof all, style);
        sb_str(&b, "\",\"");
        sb_quote(&b, all, sizeof all, style);
        sb_str(&b, "\")");

        struct proto_request req;
        char *copy;
        assert_int_equal(parse_built(&b, &lim, &req, &copy), PROTO_OK);
        assert_int_equal(req.cmd, PROTO_CMD_SET);
        assert_true(bytes_eq(req.key, req.key_len, all, sizeof all));
        assert_true(bytes_eq(req.value, req.value_len, all, sizeof all));

        /* and back out through the reply encoding */
        size_t elen = proto_value_encoded_len(req.value, req.value_len);
        char *enc = xmalloc(elen);
        assert_int_equal(proto_value_encode(enc, req.value, req.value_len), elen);
        assert_null(memchr(enc, '\n', elen));
        assert_null(memchr(enc, '\r', elen));
        assert_int_equal(proto_value_decode(enc, elen), sizeof all);
        assert_memory_equal(enc, all, sizeof all);
        free(enc);
        free(copy);
        free(b.p);
    }

    /* each byte on its own, minimally escaped, as a key */
    for (int c = 0; c < 256; c++) {
        char ch = (char)c;
        struct sbuf b = {0};
        sb_str(&b, "get(\"");
        sb_quote(&b, &ch, 1, 0);
        sb_str(&b, "\")");
        struct proto_request req;
        char *copy;
        assert_int_equal(parse_built(&b, &lim, &req, &copy), PROTO_OK);
        assert_true(bytes_eq(req.key, req.key_len, &ch, 1));
        free(copy);
        free(b.p);
    }
}

/* The unescaped bytes are written into the line itself. */
static void test_parse_in_place(void **state)
{
    (void)state;
    char line[] = "set(\"a\\x41b\",\"\\n\\t\",9)";
    struct proto_request req;

    assert_int_equal(proto_parse_line(line, strlen(line), &table_limits, &req), PROTO_OK);
    assert_ptr_equal(req.key, line + 5);
    assert_int_equal(req.key_len, 3);
    assert_memory_equal(line + 5, "aAb", 3);
    assert_ptr_equal(req.value, line + 14);
    assert_int_equal(req.value_len, 2);
    assert_memory_equal(line + 14, "\n\t", 2);
    assert_int_equal(req.ttl, 9);

    /* a blank or failed parse leaves the request cleared */
    char blank[] = "  ";
    memset(&req, 0xa5, sizeof req);
    assert_int_equal(proto_parse_line(blank, 2, &table_limits, &req), PROTO_OK);
    assert_int_equal(req.cmd, PROTO_CMD_NONE);
    assert_null(req.key);
    assert_null(req.value);
    assert_false(req.has_ttl);
    assert_null(req.detail);
}

/* ---- Error lines ------------------------------------------------------- */

static void test_error_lines(void **state)
{
    (void)state;
    static const struct {
        enum proto_status st;
        const char *detail;
        const char *want;
    } t[] = {
        {PROTO_ERR_UNKNOWN_COMMAND, NULL, "Error: Unrecognized command\n"},
        {PROTO_ERR_SYNTAX, "unterminated string", "Error: Syntax error: unterminated string\n"},
        {PROTO_ERR_SYNTAX, NULL, "Error: Syntax error: malformed request\n"},
        {PROTO_ERR_TTL_NOT_INT, NULL, "Error: TTL is not an integer\n"},
        {PROTO_ERR_TTL_RANGE, NULL, "Error: TTL out of range (0..315360000)\n"},
        {PROTO_ERR_KEY_TOO_LONG, NULL, "Error: Key too long\n"},
        {PROTO_ERR_VALUE_TOO_LARGE, "ignored", "Error: Value too large\n"},
        {PROTO_OK, NULL, "Error: Internal error\n"},
        {(enum proto_status)99, NULL, "Error: Internal error\n"},
    };

    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char out[128];
        size_t n = proto_error_line(out, sizeof out, t[i].st, t[i].detail);
        if (!bytes_eq(out, n, t[i].want, strlen(t[i].want)))
            fail_msg("status %d: [%s]", t[i].st, show(out, n));
    }
}

/* Any cap: never a byte past it, and a cut line still ends in '\n'. */
static void test_error_line_truncation(void **state)
{
    (void)state;
    const char *full = "Error: Syntax error: unterminated string\n";
    size_t flen = strlen(full);

    for (size_t cap = 0; cap <= flen + 2; cap++) {
        char out[64];
        memset(out, 0x5a, sizeof out);
        size_t n = proto_error_line(out, cap, PROTO_ERR_SYNTAX, "unterminated string");
        assert_int_equal(n, cap < flen ? cap : flen);
        for (size_t i = n; i < sizeof out; i++)
            assert_int_equal((unsigned char)out[i], 0x5a);
        if (n > 0) {
            assert_int_equal(out[n - 1], '\n');
            assert_memory_equal(out, full, n - 1);
        }
    }

    /* exact-size heap buffers: ASan checks the bound too */
    for (size_t cap = 0; cap <= flen; cap++) {
        char *out = xmalloc(cap);
        size_t n = proto_error_line(out, cap, PROTO_ERR_TTL_RANGE, NULL);
        assert_true(n <= cap);
        free(out);
    }
}

/* ---- Reply encoding ---------------------------------------------------- */

static void test_encode_table(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t in_len;
        const char *out;
        size_t out_len;
    } t[] = {
        {LIT(""), LIT("")},
        {LIT("test value"), LIT("test value")},
        {LIT("a\\b"), LIT("a\\\\b")},
        {LIT("\r\n\t"), LIT("\\r\\n\\t")},
        {LIT("\0"), LIT("\\x00")},
        {LIT("a\0b"), LIT("a\\x00b")},
        {LIT("\x01\x1b\x1f"), LIT("\\x01\\x1b\\x1f")},
        {LIT("\x0b\x0c"), LIT("\\x0b\\x0c")},
        {LIT("\x7f"), LIT("\\x7f")},
        {LIT(" ~"), LIT(" ~")},
        {LIT("\x80\xff\xfe"), LIT("\x80\xff\xfe")},
        {LIT("h\xc3\xa9llo \xe2\x82\xac"), LIT("h\xc3\xa9llo \xe2\x82\xac")},
        {LIT("\"quoted\""), LIT("\"quoted\"")},
        {LIT("Error: x"), LIT("\\x45rror: x")},
        {LIT("Error: "), LIT("\\x45rror: ")},
        {LIT("Error: \n"), LIT("\\x45rror: \\n")},
        {LIT("Error: Error: "), LIT("\\x45rror: Error: ")},
        {LIT("Error:"), LIT("Error:")},
        {LIT("Error:x"), LIT("Error:x")},
        {LIT("Error:\t"), LIT("Error:\\t")},
        {LIT("Error"), LIT("Error")},
        {LIT("error: x"), LIT("error: x")},
        {LIT("ERROR: x"), LIT("ERROR: x")},
        {LIT(" Error: x"), LIT(" Error: x")},
        {LIT("xError: "), LIT("xError: ")},
        {LIT("\\x45"), LIT("\\\\x45")},
    };

    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char *in = exact_copy(t[i].in, t[i].in_len);
        size_t elen = proto_value_encoded_len(in, t[i].in_len);
        char *out = xmalloc(elen);
        size_t n = proto_value_encode(out, in, t[i].in_len);
        if (!bytes_eq(out, n, t[i].out, t[i].out_len) || n != elen)
            fail_msg("encode [%s]: got [%s] len %zu", show(t[i].in, t[i].in_len),
                     show(out, n), elen);
        assert_int_equal(elen == t[i].in_len,
                         bytes_eq(t[i].in, t[i].in_len, t[i].out, t[i].out_len));
        assert_int_equal(proto_value_decode(out, n), t[i].in_len);
        assert_true(bytes_eq(out, t[i].in_len, t[i].in, t[i].in_len));
        free(out);
        free(in);
    }
}

static void test_decode_table(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t in_len;
        const char *out; /* NULL: invalid */
        size_t out_len;
    } t[] = {
        {LIT(""), LIT("")},
        {LIT("abc"), LIT("abc")},
        {LIT("\\\\"), LIT("\\")},
        {LIT("\\\""), LIT("\"")},
        {LIT("\\n\\r\\t"), LIT("\n\r\t")},
        {LIT("\\0"), LIT("\0")},
        {LIT("\\x00\\x7f\\xff"), LIT("\0\x7f\xff")},
        {LIT("\\x4A\\x4a\\xAb"), LIT("JJ\xab")},
        {LIT("\\x45rror: x"), LIT("Error: x")},
        {LIT("\x80 raw \xff"), LIT("\x80 raw \xff")},
        {LIT("\\"), NULL, 0},
        {LIT("abc\\"), NULL, 0},
        {LIT("\\q"), NULL, 0},
        {LIT("\\x"), NULL, 0},
        {LIT("\\x4"), NULL, 0},
        {LIT("\\xg0"), NULL, 0},
        {LIT("\\x0g"), NULL, 0},
        {LIT("\\X41"), NULL, 0},
        {LIT("\\u0041"), NULL, 0},
        {LIT("ok\\1"), NULL, 0},
    };

    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char *buf = exact_copy(t[i].in, t[i].in_len);
        size_t n = proto_value_decode(buf, t[i].in_len);
        if (t[i].out == NULL) {
            if (n != (size_t)-1)
                fail_msg("decode [%s] accepted", show(t[i].in, t[i].in_len));
        } else if (!bytes_eq(buf, n, t[i].out, t[i].out_len)) {
            fail_msg("decode [%s]", show(t[i].in, t[i].in_len));
        }
        free(buf);
    }
}

static bool needs_escape(const char *v, size_t len)
{
    if (len >= 7 && memcmp(v, "Error: ", 7) == 0)
        return true;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c == 0x7f || c == '\\')
            return true;
    }
    return false;
}

/* Random values: decode(encode(v)) == v, output is one line, and a request
 * built from v parses back to v. */
static void test_encode_property(void **state)
{
    (void)state;
    static const char interesting[] = "\\\"\r\n\t\0\x7f\x1f E:rx0";
    const struct proto_limits lim = {.max_value_len = 4096};
    rng_state = 0x9e3779b97f4a7c15u;

    for (int iter = 0; iter < 20000; iter++) {
        size_t len = (size_t)(rng() % 8 == 0 ? rng() % 600 : rng() % 24);
        char *v = xmalloc(len + 7);
        size_t off = 0;
        if (rng() % 8 == 0) {
            memcpy(v, "Error: ", 7);
            off = 7;
        }
        int mode = (int)(rng() % 3);
        for (size_t i = 0; i < len; i++) {
            uint64_t r = rng();
            if (mode == 0)
                v[off + i] = (char)(r & 0xff);
            else if (mode == 1)
                v[off + i] = interesting[(r >> 8) % (sizeof interesting - 1)];
            else
                v[off + i] = (char)(0x20 + (r >> 8) % 95); /* printable */
        }
        len += off;

        size_t elen = proto_value_encoded_len(v, len);
        char *enc = xmalloc(elen);
        char *ref = xmalloc(len * 4 + 1);
        size_t n = proto_value_encode(enc, v, len);
        size_t rn = ref_encode(ref, v, len);
        assert_int_equal(n, elen);
        assert_true(bytes_eq(enc, n, ref, rn));
        assert_int_equal(elen == len, !needs_escape(v, len));
        if (elen == len)
            assert_true(bytes_eq(enc, n, v, len));
        assert_null(memchr(enc, '\n', n));
        assert_null(memchr(enc, '\r', n));
        assert_false(n >= 7 && memcmp(enc, "Error: ", 7) == 0);
        assert_int_equal(proto_value_decode(enc, n), len);
        assert_true(bytes_eq(enc, len, v, len));

        /* the same bytes through a request */
        struct sbuf b = {0};
        sb_str(&b, "set(\"k\",\"");
        sb_quote(&b, v, len, (int)(rng() % 3));
        sb_str(&b, "\")");
        struct proto_request req;
        char *copy;
        assert_int_equal(parse_built(&b, &lim, &req, &copy), PROTO_OK);
        assert_true(bytes_eq(req.value, req.value_len, v, len));

        free(copy);
        free(b.p);
        free(ref);
        free(enc);
        free(v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ok_table),
        cmocka_unit_test(test_parse_error_table),
        cmocka_unit_test(test_parse_table_prefixes),
        cmocka_unit_test(test_parse_split_points),
        cmocka_unit_test(test_parse_key_length),
        cmocka_unit_test(test_parse_value_length),
        cmocka_unit_test(test_parse_ttl_boundaries),
        cmocka_unit_test(test_parse_all_bytes),
        cmocka_unit_test(test_parse_in_place),
        cmocka_unit_test(test_error_lines),
        cmocka_unit_test(test_error_line_truncation),
        cmocka_unit_test(test_encode_table),
        cmocka_unit_test(test_decode_table),
        cmocka_unit_test(test_encode_property),
    };
    return cmocka_run_group_tests_name("proto", tests, NULL, NULL);
}
