/*
 * test_latency.c - the latency histogram's buckets (latency.h): each
 * bound is inclusive, the buckets double from 1 us, times over the last
 * bound land in +Inf, and the sum adds up.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "latency.h"

static void test_bounds(void **state)
{
    (void)state;
    assert_int_equal(latency_bucket(0), 0);
    assert_int_equal(latency_bucket(1000), 0);   /* le 1 us */
    assert_int_equal(latency_bucket(1001), 1);
    assert_int_equal(latency_bucket(2000), 1);   /* le 2 us */
    assert_int_equal(latency_bucket(2001), 2);
    for (unsigned i = 1; i < LATENCY_BUCKETS; i++) {
        uint64_t bound = 1000ull << i;
        assert_int_equal(latency_bucket(bound), i);
        assert_int_equal(latency_bucket(bound - 999), i);     /* still above 2^(i-1) us */
        assert_int_equal(latency_bucket((bound >> 1)), i - 1);
    }
    uint64_t last = 1000ull << (LATENCY_BUCKETS - 1);
    assert_int_equal(latency_bucket(last + 1), LATENCY_BUCKETS);
    assert_int_equal(latency_bucket(UINT64_MAX / 2), LATENCY_BUCKETS);
    assert_true(latency_bound_s(0) == 1e-6);
    assert_true(latency_bound_s(LATENCY_BUCKETS - 1) == 524288e-6);
}

static void test_record(void **state)
{
    (void)state;
    struct latency_hist h = {{0}, 0};
    latency_record(&h, 500);
    latency_record(&h, 1500);
    latency_record(&h, 1500);
    latency_record(&h, 10ull * 1000 * 1000 * 1000); /* 10 s */
    assert_int_equal(h.counts[0], 1);
    assert_int_equal(h.counts[1], 2);
    assert_int_equal(h.counts[LATENCY_BUCKETS], 1);
    assert_int_equal(h.sum_ns, 500 + 3000 + 10ull * 1000 * 1000 * 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
