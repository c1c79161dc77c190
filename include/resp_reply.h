/*
 * resp_reply.h - RESP2/RESP3 reply encoding and Redis's text form of numbers.
 *
 * Owns: the bytes of every reply type a Redis command sends, for protocol
 * version 2 or 3, and the exact number <-> text rules of Redis 7.0 that the
 * commands need (string2ll strictness, INCRBYFLOAT's long double text,
 * doubles). Pure functions over caller memory: no I/O, no allocation.
 *
 * Writers are made for a reply queue with reserve/commit:
 *
 *   fixed size  (at most RESP_HDR_MAX bytes; doubles RESP_DOUBLE_MAX)
 *       char *w = reply_reserve(q, RESP_HDR_MAX);
 *       reply_commit(q, resp_put_int(w, 42));
 *   exact size  (the _len function first)
 *       char *w = reply_reserve(q, resp_bulk_len(n));
 *       reply_commit(q, resp_put_bulk(w, s, n));
 *   by reference (a big value stays where it lives)
 *       reply_commit(q, resp_put_bulk_hdr(reply_reserve(q, RESP_HDR_MAX), n));
 *       ...append the n value bytes by reference...,  then RESP_CRLF (2 bytes)
 *
 * Every writer returns the number of bytes written and writes no NUL.
 * ver is 2 or 3 (RESP_V2/RESP_V3); anything but 3 is treated as 2.
 *
 *   writer                     RESP2                   RESP3 (as Redis 7.0)
 *   resp_put_null              $-1\r\n                 _\r\n
 *   resp_put_null_array        *-1\r\n                 _\r\n
 *   resp_put_map(n pairs)      *<2n>\r\n               %<n>\r\n
 *   resp_put_set               *<n>\r\n                ~<n>\r\n
 *   resp_put_bool              :1\r\n / :0\r\n         #t\r\n / #f\r\n
 *   resp_put_double            $<len>\r\n<text>\r\n    ,<text>\r\n
 *   resp_put_verbatim_hdr      $<len>\r\n              =<len+4>\r\n<fmt>:
 *
 * Simple strings and errors are one line: a '\r' or '\n' inside is sent as
 * ' ' (Redis sanitises error text the same way).
 */
#ifndef VITAMIN_RESP_REPLY_H
#define VITAMIN_RESP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#define RESP_V2 2
#define RESP_V3 3

#define RESP_CRLF        "\r\n"
#define RESP_HDR_MAX     32u   /* any fixed-size writer but resp_put_double */
#define RESP_DOUBLE_MAX  48u   /* resp_put_double, either version */
#define RESP_LL_STR_MAX  20u   /* resp_ll_to_str: "-9223372036854775808" */
#define RESP_DOUBLE_STR_MAX 32u /* resp_double_to_str, NUL included */
#define RESP_LD_STR_MAX  5120u /* resp_ld_to_str and resp_str_to_ld, NUL
                                  included (Redis MAX_LONG_DOUBLE_CHARS) */

/* ---- Fixed-size writers: dst has room for RESP_HDR_MAX bytes ----------- */

size_t resp_put_int(char *dst, long long v);              /* :<v>\r\n */
size_t resp_put_array(char *dst, size_t n);               /* *<n>\r\n */
size_t resp_put_bulk_hdr(char *dst, size_t len);          /* $<len>\r\n, then the
                                                             bytes and RESP_CRLF */
size_t resp_put_map(char *dst, int ver, size_t pairs);    /* then 2 * pairs items */
size_t resp_put_set(char *dst, int ver, size_t n);
size_t resp_put_null(char *dst, int ver);                 /* missing string */
size_t resp_put_null_array(char *dst, int ver);           /* missing array */
size_t resp_put_bool(char *dst, int ver, bool b);
/* Verbatim string (INFO, CLIENT INFO in RESP3): fmt is 3 bytes ("txt"),
 * len the bytes that follow "fmt:"; then the bytes and RESP_CRLF. */
size_t resp_put_verbatim_hdr(char *dst, int ver, const char *fmt, size_t len);

/* dst has room for RESP_DOUBLE_MAX bytes. Text as resp_double_to_str(). */
size_t resp_put_double(char *dst, int ver, double d);

/* ---- Exact-size writers ------------------------------------------------ */

size_t resp_simple_len(size_t n);                         /* 1 + n + 2 */
size_t resp_put_simple(char *dst, const char *s, size_t n); /* +<s>\r\n */
/* s is the text without the '-', e.g. "ERR syntax error" or "NOAUTH ...". */
size_t resp_error_len(size_t n);                          /* 1 + n + 2 */
size_t resp_put_error(char *dst, const char *s, size_t n);  /* -<s>\r\n */
size_t resp_bulk_len(size_t n);                           /* header + n + 2 */
size_t resp_put_bulk(char *dst, const char *s, size_t n); /* $<n>\r\n<s>\r\n */

/* ---- Numbers as Redis writes and reads them ---------------------------- */

/*
 * Integers: num.h. Its num_parse_i64 is Redis's string2ll: the whole text
 * must be an integer in int64 range, written canonically: optional '-', no
 * '+', no leading zero except "0" itself, no "-0", no blanks, at least one
 * digit. (Checked against redis-server 7.0: INCRBY by "-0", "+1", "01",
 * "00", " 1", "1 ", "", "9223372036854775808" are all "value is not an
 * integer or out of range".)
 */

/*
 * Redis's string2ld, the float argument/value rule of INCRBYFLOAT: strtold
 * over the whole of s[0..n) (so "1.5", "+1.5", ".5", "5.", "1E3", "0x1p3",
 * "inf", "Infinity" are accepted), rejecting: n == 0 or n >= RESP_LD_STR_MAX,
 * a leading blank, any byte left over (trailing blank, NUL), NaN, overflow
 * (1e5000) and underflow to zero (1e-5000). The caller then rejects a
 * non-finite sum: "ERR increment would produce NaN or Infinity" (so "inf"
 * as increment gets that error, as in Redis). Like Redis, this relies on
 * the process's LC_NUMERIC being "C" (Vitamin never calls setlocale).
 */
bool resp_str_to_ld(const char *s, size_t n, long double *out);

/*
 * INCRBYFLOAT's text of v (Redis "human" long double format): "%.17Lf",
 * then trailing zeros and a trailing '.' removed, "-0" written "0"; never
 * an exponent ("1e300" gives 301 digits). inf -> "inf"/"-inf", nan -> "nan".
 * Writes the text and a NUL into dst[0..cap); returns the text length, or 0
 * if it does not fit (cap >= RESP_LD_STR_MAX always fits).
 * Examples (from redis-server 7.0): 3.0e5 -> "300000", 10.50 -> "10.5",
 * -0.0 -> "0", 1e-20 -> "0", 3.14159265358979323846 -> "3.14159265358979324",
 * 2.5e-17 -> "0.00000000000000002".
 */
size_t resp_ld_to_str(char *dst, size_t cap, long double v);

/*
 * A double as Redis 7.0 replies it (ZSCORE...): "%.17g" ("1.5",
 * "0.10000000000000001", "1.0000000000000001e+300"), inf -> "inf",
 * -inf -> "-inf", nan -> "nan". Writes the text and a NUL into
 * dst[0..RESP_DOUBLE_STR_MAX); returns the text length.
 */
size_t resp_double_to_str(char *dst, double d);

#endif
