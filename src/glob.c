/*
 * glob.c - Redis-compatible glob matching (the language and the differences
 * from Redis are in glob.h).
 *
 * Owns only code. A pattern is a sequence of elements: runs of '*', and
 * one-byte elements ('?', a literal, an escaped byte, a [...] class), each
 * read by elem_match() without looking at anything but the pattern, so the
 * element boundaries never depend on the string.
 *
 * Because each non-star element eats exactly one byte, the classic greedy
 * matcher with a single backtrack point is exact: on a mismatch, let the
 * most recent star eat one more byte and retry the elements after it.
 * Earlier stars never need to be revisited: whatever they could take, the
 * last star can take instead.
 *
 *   pattern  a * b ? c          string  a x b y b z c
 *              ^star_pi=2                 ^star_si (the star's next start)
 */
#include "glob.h"

#include <stdint.h>

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

/*
 * Does the element at p[*i] (not a '*'; *i < plen) match byte c? Moves *i
 * past the element either way.
 */
static bool elem_match(const unsigned char *p, size_t plen, size_t *i,
                       unsigned char c, bool nocase)
{
    size_t k = *i;

    switch (p[k]) {
    case '?':
        *i = k + 1;
        return true;
    case '\\':
        if (plen - k >= 2)
            k++; /* escaped byte; a final '\' is itself */
        *i = k + 1;
        return nocase ? lower(p[k]) == lower(c) : p[k] == c;
    case '[': {
        bool negate = false, match = false;
        k++;
        if (k < plen && p[k] == '^') {
            negate = true;
            k++;
        }
        for (;;) {
            if (k >= plen)
                break; /* unterminated: the class ends with the pattern */
            if (p[k] == '\\' && plen - k >= 2) {
                if (p[k + 1] == c) /* exact, even with nocase (as Redis) */
                    match = true;
                k += 2;
            } else if (p[k] == ']') {
                k++;
                break;
            } else if (plen - k >= 3 && p[k + 1] == '-') {
                unsigned char lo = p[k], hi = p[k + 2], x = c;
                if (lo > hi) {
                    unsigned char t = lo;
                    lo = hi;
                    hi = t;
                }
                if (nocase) {
                    lo = lower(lo);
                    hi = lower(hi);
                    x = lower(x);
                }
                if (x >= lo && x <= hi)
                    match = true;
                k += 3;
            } else {
                if (nocase ? lower(p[k]) == lower(c) : p[k] == c)
                    match = true;
                k++;
            }
        }
        *i = k;
        return match != negate;
    }
    default:
        *i = k + 1;
        return nocase ? lower(p[k]) == lower(c) : p[k] == c;
    }
}

bool glob_match(const char *pat, size_t plen, const char *str, size_t slen, bool nocase)
{
    const unsigned char *p = (const unsigned char *)pat;
    const unsigned char *s = (const unsigned char *)str;
    size_t pi = 0, si = 0;
    size_t star_pi = SIZE_MAX; /* first element after the last star seen */
    size_t star_si = 0;        /* where that star's match would end next */

    if (slen == 0)
        return plen == 0; /* as stringmatchlen: not even "*" matches "" */

    while (si < slen) {
        if (pi < plen && p[pi] == '*') {
            while (pi < plen && p[pi] == '*')
                pi++;
            if (pi == plen)
                return true; /* a final star takes the rest */
            star_pi = pi;
            star_si = si;
            continue;
        }
        if (pi < plen) {
            size_t next = pi;
            if (elem_match(p, plen, &next, s[si], nocase)) {
                pi = next;
                si++;
                continue;
            }
        }
        if (star_pi == SIZE_MAX)
            return false;
        pi = star_pi; /* the last star eats one more byte */
        si = ++star_si;
    }
    while (pi < plen && p[pi] == '*')
        pi++;
    return pi == plen;
}

bool glob_matches_all(const char *pat, size_t plen)
{
    return plen == 1 && pat[0] == '*';
}
