/*
 * test_glob.c - unit tests for the Redis-compatible glob matcher.
 *
 * 1. A golden table recorded from redis-server 7.0.15: every pattern below
 *    was sent as KEYS <pattern> to a database holding exactly the keys of
 *    glob_keys[], and the bit mask says which keys came back. Our KEYS-like
 *    predicate (glob_matches_all() || glob_match()) must agree on every
 *    (pattern, key) pair. Patterns and keys are exact-size heap copies, so
 *    ASan catches any read past either end.
 * 2. nocase cases recorded with CONFIG GET (which matches case-insensitively).
 * 3. Properties against a slow, obviously-correct recursive reference of
 *    the same language, over random patterns and strings (NUL and high bytes
 *    included), and against every prefix of the pattern and the string.
 * 4. Pathological patterns that are exponential for a naive backtracking
 *    matcher finish quickly (counted steps are not observable, so we just
 *    run them: a regression would make this test take minutes).
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

#include "glob.h"

/* ---- Helpers ----------------------------------------------------------- */

static const char *show(const char *s, size_t len)
{
    static char out[4][256];
    static int slot;
    char *o = out[slot++ & 3];
    size_t n = 0;
    for (size_t i = 0; i < len && n + 8 < 256; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            o[n++] = (char)c;
        else
            n += (size_t)snprintf(o + n, 256 - n, "\\x%02x", c);
    }
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

/* glob_match on exact-size heap copies of both sides. */
static bool match_exact(const char *p, size_t pl, const char *s, size_t sl, bool nocase)
{
    char *pc = exact_copy(p, pl), *sc = exact_copy(s, sl);
    bool r = glob_match(pc, pl, sc, sl, nocase);
    free(pc);
    free(sc);
    return r;
}

#define LIT(s) (s), (sizeof(s) - 1)

/* ---- 1. Golden table from redis-server 7.0.15 KEYS --------------------- */

static const struct { const char *s; size_t len; } glob_keys[] = {
    {LIT("")},    {LIT("a")},   {LIT("b")},    {LIT("c")},     {LIT("-")},
    {LIT("]")},   {LIT("^")},   {LIT("\\")},   {LIT("\177")},  {LIT("ab")},
    {LIT("a]")},  {LIT("[")},   {LIT("A")},    {LIT("Z")},     {LIT("_")},
    {LIT("x-y")}, {LIT("aXb")}, {LIT("abc")},  {LIT("*")},     {LIT("?")},
    {LIT("a\000b")}, {LIT("\200")}, {LIT("\377")},
};
#define N_KEYS (sizeof glob_keys / sizeof glob_keys[0])

static const struct {
    const char *pat;
    size_t len;
    uint32_t keys; /* bit i: glob_keys[i] was returned by KEYS */
} golden[] = {
    {"*", 1, 0x7fffffu},
    {"**", 2, 0x7ffffeu},
    {"*\?", 2, 0x7ffffeu},
    {"\?", 1, 0x6c79feu},
    {"a*", 2, 0x130602u},
    {"*a", 2, 0x000002u},
    {"*b*", 3, 0x130204u},
    {"a\?b", 3, 0x110000u},
    {"a*b", 3, 0x110200u},
    {"a**b", 4, 0x110200u},
    {"\?*\?", 3, 0x138600u},
    {"[a-]", 4, 0x004062u},
    {"[a-]]", 5, 0x004062u},
    {"[a-", 3, 0x000012u},
    {"[]", 2, 0x000000u},
    {"[^]", 3, 0x6c79feu},
    {"[]]", 3, 0x000000u},
    {"[]a]", 4, 0x000000u},
    {"[^a]", 4, 0x6c79fcu},
    {"[a", 2, 0x000002u},
    {"[\\]]", 4, 0x000020u},
    {"[\\", 2, 0x000080u},
    {"\\", 1, 0x000080u},
    {"a\\", 2, 0x000000u},
    {"\\a", 2, 0x000002u},
    {"[\200-\377]", 5, 0x600000u},
    {"[\377-\200]", 5, 0x600000u},
    {"[\000-\177]", 5, 0x0c79feu},
    {"[z-a]", 5, 0x00000eu},
    {"[A-z]", 5, 0x0078eeu},
    {"[\\-]", 4, 0x000010u},
    {"[a\\-c]", 6, 0x00001au},
    {"[-a]", 4, 0x000012u},
    {"a[]]", 4, 0x000000u},
    {"[!a]", 4, 0x000002u},
    {"*[", 2, 0x000000u},
    {"[", 1, 0x000000u},
    {"[*]", 3, 0x040000u},
    {"\\*", 2, 0x040000u},
    {"\\\?", 2, 0x080000u},
    {"[a-c-e]", 7, 0x00001eu},
    {"[^]]", 4, 0x000400u},
    {"*]", 2, 0x000420u},
    {"a*]", 3, 0x000400u},
    {"[[]", 3, 0x000800u},
    {"[^\200]", 4, 0x4c79feu},
    {"x[-]y", 5, 0x008000u},
    {"x[a-]y", 6, 0x000000u},
    {"\?*", 2, 0x7ffffeu},
    {"*\?*", 3, 0x7ffffeu},
    {"[\\a-c]", 6, 0x00001au},
    {"[a-\\c]", 6, 0x0040eau},
    {"a\000b", 3, 0x100000u},
    {"a\?b*", 4, 0x110000u},
    {"[a\000]\000b", 6, 0x100000u},
    {"*\000*", 3, 0x100000u},
    {"[^a-c]", 6, 0x6c79f0u},
    {"[^^]", 4, 0x6c79beu},
    {"^", 1, 0x000040u},
    {"[ab", 3, 0x000006u},
    {"[^", 2, 0x6c79feu},
    {"abc*", 4, 0x020000u},
    {"*abc", 4, 0x020000u},
    {"a*c", 3, 0x020000u},
    {"ab*c", 4, 0x020000u},
    {"*X*", 3, 0x010000u},
    {"[A-Z]", 5, 0x003000u},
    {"[a-z]*", 6, 0x13860eu},
    {"x\?y", 3, 0x008000u},
    {"\?\?\?", 3, 0x138000u},
    {"a\?\?", 3, 0x130000u},
    {"\\[", 2, 0x000800u},
    {"[[-]]", 5, 0x0008a0u},
    {"", 0, 0x000001u},
    {"*\\", 2, 0x000080u},
    {"[\\\\]", 4, 0x000080u},
    {"\?\\", 2, 0x000000u},
};

static void test_golden_keys(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof golden / sizeof golden[0]; i++) {
        for (size_t k = 0; k < N_KEYS; k++) {
            bool want = (golden[i].keys >> k) & 1u;
            bool got = glob_matches_all(golden[i].pat, golden[i].len) ||
                       match_exact(golden[i].pat, golden[i].len, glob_keys[k].s,
                                   glob_keys[k].len, false);
            if (got != want)
                fail_msg("KEYS [%s] key [%s]: got %d, redis %d",
                         show(golden[i].pat, golden[i].len),
                         show(glob_keys[k].s, glob_keys[k].len), got, want);
        }
    }
}

/* stringmatchlen itself (no KEYS shortcut): nothing but "" matches "". */
static void test_empty_string(void **state)
{
    (void)state;
    assert_true(match_exact("", 0, "", 0, false));
    assert_false(match_exact(LIT("*"), "", 0, false));
    assert_false(match_exact(LIT("**"), "", 0, false));
    assert_false(match_exact(LIT("?"), "", 0, false));
    assert_false(match_exact("", 0, LIT("a"), false));
    assert_true(glob_matches_all(LIT("*")));
    assert_false(glob_matches_all(LIT("**")));
    assert_false(glob_matches_all(LIT("\\*")));
    assert_false(glob_matches_all("", 0));
}

/* ---- 2. nocase, recorded with CONFIG GET -------------------------------- */

static void test_nocase(void **state)
{
    (void)state;
    static const struct {
        const char *pat, *str;
        bool want;
    } t[] = {
        /* CONFIG GET <pattern> on redis-server 7.0.15 */
        {"MAXMEMORY", "maxmemory", true},
        {"MAXMEM*", "maxmemory-policy", true},
        {"[M]axmemory", "maxmemory", true},
        {"[L-N]axmemory", "maxmemory", true},
        {"[l-n]axmemory", "maxmemory", true},
        {"[N-L]AXMEMORY", "maxmemory", true},
        {"[^m]axmemory", "maxmemory", false},
        {"maxmemory-polic[X-Z]", "maxmemory-policy", true},
        /* the same rules, more corners */
        {"a", "A", true},
        {"A", "a", true},
        {"?", "A", true},
        {"[^A]", "a", false},
        {"[a-c]", "B", true},
        {"[A-C]", "b", true},
        {"[\\A]", "a", false}, /* an escaped byte in a class is exact */
        {"[\\a]", "a", true},
        {"\\A", "a", true},    /* outside a class it is not */
        /* range ends are ordered, then lowered: [M-a] becomes m..a, empty
         * (also CONFIG GET on redis-server 7.0.15) */
        {"[M-a]axmemory", "maxmemory", false},
        {"[a-M]axmemory", "maxmemory", false},
        {"[L-m]axmemory", "maxmemory", true},
        {"[m-A]axmemory", "maxmemory", true},
        {"[Z-a]", "z", false},
        {"[Z-a]", "_", false},
        {"*B*", "abc", true},
        {"\xc9", "\xe9", false}, /* ASCII only */
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        bool got = match_exact(t[i].pat, strlen(t[i].pat), t[i].str, strlen(t[i].str), true);
        if (got != t[i].want)
            fail_msg("nocase [%s] vs [%s]: got %d", t[i].pat, t[i].str, got);
    }
    /* without nocase the letters differ */
    assert_false(match_exact(LIT("MAXMEMORY"), LIT("maxmemory"), false));
    assert_false(match_exact(LIT("[A-C]"), LIT("b"), false));
}

/* Where we differ on purpose: range ends are unsigned bytes. */
static void test_unsigned_ranges(void **state)
{
    (void)state;
    assert_true(match_exact(LIT("[a-\377]"), LIT("\200"), false));
    assert_true(match_exact(LIT("[a-\377]"), LIT("b"), false));
    assert_false(match_exact(LIT("[a-\377]"), LIT("A"), false));
    assert_true(match_exact(LIT("[\377-a]"), LIT("\177"), false));
    assert_false(match_exact(LIT("[\377-a]"), LIT("\000"), false));
}

/* ---- 3. Properties against a reference --------------------------------- */

/* The same language, written as directly as possible (exponential). */
static bool ref_match(const unsigned char *p, size_t pl, const unsigned char *s, size_t sl,
                      bool nocase, int depth);

static unsigned char lc(unsigned char c, bool nocase)
{
    return nocase && c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* One non-star element at p: sets *used, returns whether it matches c. */
static bool ref_elem(const unsigned char *p, size_t pl, unsigned char c, bool nocase,
                     size_t *used)
{
    if (p[0] == '?') {
        *used = 1;
        return true;
    }
    if (p[0] == '\\' && pl >= 2) {
        *used = 2;
        return lc(p[1], nocase) == lc(c, nocase);
    }
    if (p[0] != '[') {
        *used = 1;
        return lc(p[0], nocase) == lc(c, nocase);
    }
    size_t i = 1;
    bool neg = i < pl && p[i] == '^', hit = false;
    if (neg) i++;
    while (i < pl && p[i] != ']') {
        if (p[i] == '\\' && pl - i >= 2) {
            hit |= p[i + 1] == c;
            i += 2;
        } else if (pl - i >= 3 && p[i + 1] == '-') {
            unsigned a = p[i], b = p[i + 2];
            if (a > b) { unsigned t = a; a = b; b = t; }
            if (nocase) { a = lc((unsigned char)a, 1); b = lc((unsigned char)b, 1); }
            unsigned x = lc(c, nocase);
            hit |= x >= a && x <= b;
            i += 3;
        } else {
            hit |= lc(p[i], nocase) == lc(c, nocase);
            i++;
        }
    }
    if (i < pl) i++; /* ']' */
    *used = i;
    return hit != neg;
}

static bool ref_match(const unsigned char *p, size_t pl, const unsigned char *s, size_t sl,
                      bool nocase, int depth)
{
    if (depth == 0 && sl == 0)
        return pl == 0;
    if (pl == 0)
        return sl == 0;
    if (p[0] == '*') {
        for (size_t k = 0; k <= sl; k++)
            if (ref_match(p + 1, pl - 1, s + k, sl - k, nocase, depth + 1))
                return true;
        return false;
    }
    if (sl == 0)
        return false;
    size_t used;
    if (!ref_elem(p, pl, s[0], nocase, &used))
        return false;
    return ref_match(p + used, pl - used, s + 1, sl - 1, nocase, depth + 1);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1du;
}

static void test_reference_property(void **state)
{
    (void)state;
    static const char palpha[] = "ab*?[]^-\\A\0\x80\xff*";
    static const char salpha[] = "abAB-]^\\[*?\0\x80\xff";
    unsigned char p[12], s[12];

    for (int iter = 0; iter < 200000; iter++) {
        size_t pl = (size_t)(rng() % 10), sl = (size_t)(rng() % 9);
        for (size_t i = 0; i < pl; i++)
            p[i] = (unsigned char)palpha[rng() % (sizeof palpha - 1)];
        for (size_t i = 0; i < sl; i++)
            s[i] = (unsigned char)salpha[rng() % (sizeof salpha - 1)];
        bool nocase = rng() % 4 == 0;
        bool want = ref_match(p, pl, s, sl, nocase, 0);
        bool got = match_exact((char *)p, pl, (char *)s, sl, nocase);
        if (got != want)
            fail_msg("[%s] vs [%s] nocase %d: got %d, reference %d", show((char *)p, pl),
                     show((char *)s, sl), nocase, got, want);
    }
}

/* Every prefix of pattern and string, from exact copies: bounds and agreement. */
static void test_all_prefixes(void **state)
{
    (void)state;
    static const char *const pats[] = {"a*b?[c-e]\\*x", "[^]a-]*\\", "*[a-", "[\\", "**?*[]]"};
    static const char *const strs[] = {"aXXb1d*x", "]a-\\", "zz-", "\\", "abc]"};
    for (size_t i = 0; i < sizeof pats / sizeof pats[0]; i++) {
        size_t PL = strlen(pats[i]);
        for (size_t j = 0; j < sizeof strs / sizeof strs[0]; j++) {
            size_t SL = strlen(strs[j]);
            for (size_t pl = 0; pl <= PL; pl++)
                for (size_t sl = 0; sl <= SL; sl++)
                    assert_int_equal(match_exact(pats[i], pl, strs[j], sl, false),
                                     ref_match((const unsigned char *)pats[i], pl,
                                               (const unsigned char *)strs[j], sl, false, 0));
        }
    }
}

/* ---- 4. Pathological patterns ------------------------------------------ */

static void test_pathological(void **state)
{
    (void)state;
    /* Redis issue 5660 / CVE-2022-36021: exponential for naive backtracking */
    char pat[4096], str[4096];
    size_t pl = 0;
    for (int i = 0; i < 1000; i++) {
        pat[pl++] = 'a';
        pat[pl++] = '*';
    }
    pat[pl++] = 'b';
    memset(str, 'a', 3000);
    assert_false(match_exact(pat, pl, str, 3000, false));
    str[2999] = 'b';
    assert_true(match_exact(pat, pl, str, 3000, false));

    /* thousands of separate stars: no recursion, no depth limit, exact answer */
    pl = 0;
    for (int i = 0; i < 2000; i++) {
        pat[pl++] = '*';
        pat[pl++] = '?';
    }
    memset(str, 'x', 2000);
    assert_true(match_exact(pat, pl, str, 2000, false));
    assert_false(match_exact(pat, pl, str, 1999, false));

    /* CVE-2024-31228's shape: "*a]a]a]...*c" */
    pl = 0;
    pat[pl++] = '*';
    for (int i = 0; i < 1000; i++) {
        pat[pl++] = 'a';
        pat[pl++] = ']';
    }
    pat[pl++] = '*';
    pat[pl++] = 'c';
    memset(str, 'a', 4000);
    assert_false(match_exact(pat, pl, str, 4000, false));

    /* a long class after a star: O(plen * slen), still fine at these sizes */
    pl = 0;
    pat[pl++] = '*';
    pat[pl++] = '[';
    memset(pat + pl, 'z', 3000);
    pl += 3000;
    pat[pl++] = ']';
    memset(str, 'y', 1024);
    assert_false(match_exact(pat, pl, str, 1024, false));
    str[1023] = 'z';
    assert_true(match_exact(pat, pl, str, 1024, false));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_keys),
        cmocka_unit_test(test_empty_string),
        cmocka_unit_test(test_nocase),
        cmocka_unit_test(test_unsigned_ranges),
        cmocka_unit_test(test_reference_property),
        cmocka_unit_test(test_all_prefixes),
        cmocka_unit_test(test_pathological),
    };
    return cmocka_run_group_tests_name("glob", tests, NULL, NULL);
}
