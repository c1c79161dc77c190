/*
 * num.c - decimal integers (see num.h). No locale, no errno, no strtoll:
 * every rule is spelled out, because protocols differ exactly there.
 */
#include "num.h"

bool num_parse_u64(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned char)s[i] - '0';
        if (d > 9) return false;
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

bool num_parse_i64(const char *s, size_t len, int64_t *out)
{
    bool neg = len > 0 && s[0] == '-';
    const char *d = s + neg;
    size_t n = len - neg;
    if (n == 0 || (d[0] == '0' && (n > 1 || neg))) return false; /* "", "01", "-0" */
    uint64_t mag;
    if (!num_parse_u64(d, n, &mag)) return false;
    if (neg) {
        if (mag > (uint64_t)INT64_MAX + 1) return false;
        *out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    } else {
        if (mag > (uint64_t)INT64_MAX) return false;
        *out = (int64_t)mag;
    }
    return true;
}

size_t num_format_u64(char *buf, uint64_t v)
{
    char tmp[NUM_MAX_DIGITS];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++) buf[i] = tmp[n - 1 - i];
    return n;
}

size_t num_format_i64(char *buf, int64_t v)
{
    if (v >= 0) return num_format_u64(buf, (uint64_t)v);
    buf[0] = '-';
    return 1 + num_format_u64(buf + 1, (uint64_t)0 - (uint64_t)v);
}
