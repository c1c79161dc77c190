/*
 * test_ksum.c - the key-summary table (src/ksum.c): what is put is found,
 * with its stamps; a hash put twice keeps the newer stamp of each register
 * and its mark; the table grows past what it was sized for but never past
 * its max, and a refused put changes nothing; iteration in bounded slices
 * sees every entry once; keys that share their home slot all stay
 * reachable.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ksum.h"

static struct ksum_entry entry(uint64_t hash, uint64_t ver, uint32_t origin, uint64_t exp_ver,
                               uint32_t exp_origin)
{
    struct ksum_entry e = {.hash = hash, .version = ver, .origin = origin,
                           .exp_version = exp_ver, .exp_origin = exp_origin};
    return e;
}

/* A spread of 64-bit hashes (splitmix64), as XXH3 gives them. */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void test_put_find(void **state)
{
    (void)state;
    enum { N = 100000 };
    struct ksum *t = ksum_create(N, 10); /* sized for 10: it must grow */
    assert_non_null(t);
    for (uint64_t i = 0; i < N; i++) {
        struct ksum_entry e = entry(mix(i), i << 16, (uint32_t)i, i, ~(uint32_t)i);
        e.mark = 9; /* ignored: a new entry's mark is 0 */
        assert_int_equal(ksum_put(t, &e), 0);
    }
    assert_int_equal(ksum_count(t), N);
    for (uint64_t i = 0; i < N; i++) {
        struct ksum_entry *e = ksum_find(t, mix(i));
        assert_non_null(e);
        assert_true(e->hash == mix(i) && e->version == i << 16 && e->origin == (uint32_t)i &&
                    e->exp_version == i && e->exp_origin == ~(uint32_t)i && e->mark == 0);
    }
    assert_null(ksum_find(t, mix(N)));
    assert_null(ksum_find(t, 0));
    ksum_destroy(t);
    ksum_destroy(NULL);
}

static void test_put_twice_keeps_the_newest(void **state)
{
    (void)state;
    struct ksum *t = ksum_create(4, 4);
    assert_non_null(t);
    struct ksum_entry a = entry(42, 100, 1, 200, 1);
    assert_int_equal(ksum_put(t, &a), 0);
    ksum_find(t, 42)->mark = 3;
    /* a newer value stamp, an older expiry stamp */
    struct ksum_entry b = entry(42, 100, 2, 150, 9);
    assert_int_equal(ksum_put(t, &b), 0);
    struct ksum_entry *e = ksum_find(t, 42);
    assert_true(e->version == 100 && e->origin == 2 && e->exp_version == 200 &&
                e->exp_origin == 1 && e->mark == 3);
    /* an older value stamp, a newer expiry stamp (same version, higher tag) */
    struct ksum_entry c = entry(42, 99, 7, 200, 2);
    assert_int_equal(ksum_put(t, &c), 0);
    e = ksum_find(t, 42);
    assert_true(e->version == 100 && e->origin == 2 && e->exp_version == 200 &&
                e->exp_origin == 2 && e->mark == 3);
    assert_int_equal(ksum_count(t), 1);
    ksum_destroy(t);
}

static void test_max_is_a_hard_limit(void **state)
{
    (void)state;
    struct ksum *t = ksum_create(1000, 1000000); /* asks for more than max: max wins */
    assert_non_null(t);
    for (uint64_t i = 0; i < 1000; i++) {
        struct ksum_entry e = entry(mix(i), 1, 1, 1, 1);
        assert_int_equal(ksum_put(t, &e), 0);
    }
    struct ksum_entry extra = entry(mix(1000), 1, 1, 1, 1);
    assert_int_equal(ksum_put(t, &extra), -1);
    assert_int_equal(ksum_count(t), 1000);
    assert_null(ksum_find(t, mix(1000)));
    /* a hash it holds still merges when full */
    struct ksum_entry again = entry(mix(5), 2, 1, 1, 1);
    assert_int_equal(ksum_put(t, &again), 0);
    assert_true(ksum_find(t, mix(5))->version == 2);
    ksum_destroy(t);
    /* max 0: holds nothing, refuses everything */
    t = ksum_create(0, 0);
    assert_non_null(t);
    assert_int_equal(ksum_put(t, &extra), -1);
    assert_int_equal(ksum_count(t), 0);
    size_t pos = 0;
    assert_null(ksum_next(t, &pos, pos + 1000000));
    assert_true(ksum_done(t, pos));
    ksum_destroy(t);
}

/* Hashes that share their low bits (the home slot) and differ only in the
 * top bits (a leaf's keys differ there least) all stay reachable. */
static void test_same_home_slot(void **state)
{
    (void)state;
    struct ksum *t = ksum_create(1 << 20, 0);
    assert_non_null(t);
    for (uint64_t i = 0; i < 500; i++) {
        struct ksum_entry e = entry(i << 48 | 0x1234, i, 0, 0, 0);
        assert_int_equal(ksum_put(t, &e), 0);
    }
    for (uint64_t i = 0; i < 500; i++) {
        struct ksum_entry *e = ksum_find(t, i << 48 | 0x1234);
        assert_non_null(e);
        assert_true(e->version == i);
    }
    assert_null(ksum_find(t, (uint64_t)500 << 48 | 0x1234));
    ksum_destroy(t);
}

static void test_iterate_in_slices(void **state)
{
    (void)state;
    enum { N = 5000 };
    struct ksum *t = ksum_create(N, N);
    assert_non_null(t);
    for (uint64_t i = 0; i < N; i++) {
        struct ksum_entry e = entry(mix(i), i, 0, 0, 0);
        assert_int_equal(ksum_put(t, &e), 0);
    }
    unsigned char *seen = calloc(N, 1);
    assert_non_null(seen);
    size_t pos = 0, calls = 0, found = 0;
    while (!ksum_done(t, pos)) {
        struct ksum_entry *e;
        calls++;
        size_t end = pos + 100;
        while ((e = ksum_next(t, &pos, end))) {
            assert_true(e->version < N);
            assert_int_equal(seen[e->version], 0);
            seen[e->version] = 1;
            found++;
        }
    }
    assert_int_equal(found, N);
    assert_true(calls >= 8192 / 100); /* slices of 100 slots, not one sweep */
    assert_null(ksum_next(t, &pos, pos + 100));
    free(seen);
    ksum_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_find),
        cmocka_unit_test(test_put_twice_keeps_the_newest),
        cmocka_unit_test(test_max_is_a_hard_limit),
        cmocka_unit_test(test_same_home_slot),
        cmocka_unit_test(test_iterate_in_slices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
