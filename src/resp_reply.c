/*
 * resp_reply.c - RESP2/RESP3 reply writers and Redis's number text rules
 * (contract and the table of per-version encodings in resp_reply.h).
 *
 * Owns only code. Every writer composes its output from three pieces: a
 * type byte, an optional decimal, and "\r\n"; the decimal is written by
 * num_format_u64 (num.h: digits into a small stack buffer, then copied), so no
 * writer calls printf except the float formatters, whose exact output
 * (glibc's correctly rounded "%.17Lf" and "%.17g") is the Redis behaviour
 * being reproduced.
 */
#include "resp_reply.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "num.h"

/* ---- Floats as text ---------------------------------------------------- */

static bool is_c_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

bool resp_str_to_ld(const char *s, size_t n, long double *out)
{
    char buf[RESP_LD_STR_MAX];

    if (n == 0 || n >= sizeof buf || is_c_space((unsigned char)s[0]))
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';

    int saved = errno;
    errno = 0;
    char *end;
    long double v = strtold(buf, &end);
    int err = errno;
    errno = saved;
    if ((size_t)(end - buf) != n || err == EINVAL || isnan(v))
        return false;
    if (err == ERANGE && (isinf(v) || v == 0.0L))
        return false; /* overflow, or underflow all the way to zero */
    *out = v;
    return true;
}

size_t resp_ld_to_str(char *dst, size_t cap, long double v)
{
    const char *special = NULL;

    if (isinf(v))
        special = v > 0 ? "inf" : "-inf";
    else if (isnan(v))
        special = "nan";
    if (special != NULL) {
        size_t n = strlen(special);
        if (n + 1 > cap)
            return 0;
        memcpy(dst, special, n + 1);
        return n;
    }
    char tmp[RESP_LD_STR_MAX]; /* "%.17Lf" of LDBL_MAX takes 4952 bytes */
    int r = snprintf(tmp, sizeof tmp, "%.17Lf", v);
    if (r < 0 || (size_t)r >= sizeof tmp)
        return 0;
    size_t n = (size_t)r;
    /* "%.17Lf" always prints a '.': drop trailing zeros, then the '.' */
    while (tmp[n - 1] == '0')
        n--;
    if (tmp[n - 1] == '.')
        n--;
    if (n == 2 && tmp[0] == '-' && tmp[1] == '0') {
        tmp[0] = '0';
        n = 1;
    }
    if (n + 1 > cap)
        return 0;
    memcpy(dst, tmp, n);
    dst[n] = '\0';
    return n;
}

size_t resp_double_to_str(char *dst, double d)
{
    const char *special = NULL;

    if (isinf(d))
        special = d > 0 ? "inf" : "-inf";
    else if (isnan(d))
        special = "nan"; /* glibc would say "-nan" for a negative NaN */
    if (special != NULL) {
        size_t n = strlen(special);
        memcpy(dst, special, n + 1);
        return n;
    }
    int r = snprintf(dst, RESP_DOUBLE_STR_MAX, "%.17g", d);
    return r > 0 ? (size_t)r : 0; /* at most 24 characters */
}

/* ---- Writers ----------------------------------------------------------- */

/* <type><decimal>\r\n */
static size_t put_num_line(char *dst, char type, bool neg, unsigned long long v)
{
    size_t n = 0;
    dst[n++] = type;
    if (neg)
        dst[n++] = '-';
    n += num_format_u64(dst + n, v);
    dst[n++] = '\r';
    dst[n++] = '\n';
    return n;
}

/* <type><text>\r\n */
static size_t put_text_line(char *dst, char type, const char *s, size_t len)
{
    dst[0] = type;
    memcpy(dst + 1, s, len);
    dst[1 + len] = '\r';
    dst[2 + len] = '\n';
    return len + 3;
}

size_t resp_put_int(char *dst, long long v)
{
    if (v >= 0)
        return put_num_line(dst, ':', false, (unsigned long long)v);
    return put_num_line(dst, ':', true, (unsigned long long)(-(v + 1)) + 1u);
}

size_t resp_put_array(char *dst, size_t n)
{
    return put_num_line(dst, '*', false, n);
}

size_t resp_put_bulk_hdr(char *dst, size_t len)
{
    return put_num_line(dst, '$', false, len);
}

size_t resp_put_map(char *dst, int ver, size_t pairs)
{
    if (ver == RESP_V3)
        return put_num_line(dst, '%', false, pairs);
    return put_num_line(dst, '*', false, 2 * (unsigned long long)pairs);
}

size_t resp_put_set(char *dst, int ver, size_t n)
{
    return put_num_line(dst, ver == RESP_V3 ? '~' : '*', false, n);
}

size_t resp_put_null(char *dst, int ver)
{
    if (ver == RESP_V3)
        return put_text_line(dst, '_', "", 0);
    return put_text_line(dst, '$', "-1", 2);
}

size_t resp_put_null_array(char *dst, int ver)
{
    if (ver == RESP_V3)
        return put_text_line(dst, '_', "", 0);
    return put_text_line(dst, '*', "-1", 2);
}

size_t resp_put_bool(char *dst, int ver, bool b)
{
    if (ver == RESP_V3)
        return put_text_line(dst, '#', b ? "t" : "f", 1);
    return put_text_line(dst, ':', b ? "1" : "0", 1);
}

size_t resp_put_verbatim_hdr(char *dst, int ver, const char *fmt, size_t len)
{
    if (ver != RESP_V3)
        return resp_put_bulk_hdr(dst, len);
    size_t n = put_num_line(dst, '=', false, (unsigned long long)len + 4);
    memcpy(dst + n, fmt, 3);
    dst[n + 3] = ':';
    return n + 4;
}

size_t resp_put_double(char *dst, int ver, double d)
{
    char text[RESP_DOUBLE_STR_MAX];
    size_t len = resp_double_to_str(text, d);

    if (ver == RESP_V3)
        return put_text_line(dst, ',', text, len);
    return resp_put_bulk(dst, text, len);
}

size_t resp_simple_len(size_t n) { return n + 3; }
size_t resp_error_len(size_t n) { return n + 3; }

/* A one-line text reply: CR and LF inside become spaces. */
static size_t put_line_sanitized(char *dst, char type, const char *s, size_t len)
{
    size_t n = put_text_line(dst, type, s, len);
    for (size_t i = 1; i <= len; i++)
        if (dst[i] == '\r' || dst[i] == '\n')
            dst[i] = ' ';
    return n;
}

size_t resp_put_simple(char *dst, const char *s, size_t n)
{
    return put_line_sanitized(dst, '+', s, n);
}

size_t resp_put_error(char *dst, const char *s, size_t n)
{
    return put_line_sanitized(dst, '-', s, n);
}

size_t resp_bulk_len(size_t n)
{
    char digits[RESP_LL_STR_MAX];
    return 1 + num_format_u64(digits, n) + 2 + n + 2;
}

size_t resp_put_bulk(char *dst, const char *s, size_t n)
{
    size_t h = resp_put_bulk_hdr(dst, n);
    if (n > 0)
        memcpy(dst + h, s, n);
    dst[h + n] = '\r';
    dst[h + n + 1] = '\n';
    return h + n + 2;
}
