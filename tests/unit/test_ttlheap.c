/*
 * test_ttlheap.c - the TTL min-heap: order, heap_idx back-pointers, growth
 * and shrink, checked after every operation of random sequences. The items
 * live in one array, which serves as the base their ids count from.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "ttlheap.h"
#include "rng.h"

#define N_ITEMS 2000

static uint64_t rng_state = 0x853c49e6748fea9bULL;

static uint64_t rnd(void)
{
    return rng_next(&rng_state);
}

static struct item *items_new(size_t n)
{
    struct item *v = calloc(n, sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++) v[i].heap_idx = TTLHEAP_NONE;
    return v;
}

/* Heap order, back-pointers, and exactly the items flagged in `in`. */
static void check_heap(const struct ttlheap *h, const struct item *v,
                       const bool *in, size_t n)
{
    size_t count = 0;
    assert_true(h->len <= h->cap);
    for (uint32_t i = 0; i < h->len; i++) {
        assert_int_equal(ttlheap_at(h, i)->heap_idx, i);
        if (i > 0)
            assert_true(ttlheap_at(h, (i - 1) / 2)->expire_ms <= ttlheap_at(h, i)->expire_ms);
    }
    for (size_t i = 0; i < n; i++) {
        if (in[i]) {
            count++;
            assert_true(v[i].heap_idx < h->len);
            assert_ptr_equal(ttlheap_at(h, v[i].heap_idx), &v[i]);
        } else {
            assert_int_equal(v[i].heap_idx, TTLHEAP_NONE);
        }
    }
    assert_int_equal(count, h->len);
}

static void test_random_ops(void **state)
{
    (void)state;
    struct item *v = items_new(N_ITEMS);
    bool in[N_ITEMS] = {false};
    struct ttlheap h;
    ttlheap_init(&h, (const char *)v);
    assert_null(ttlheap_peek(&h));
    for (int step = 0; step < 20000; step++) {
        size_t i = rnd() % N_ITEMS;
        unsigned op = (unsigned)(rnd() % 4);
        if (!in[i]) {
            v[i].expire_ms = (int64_t)(rnd() % 500); /* many ties */
            assert_int_equal(ttlheap_push(&h, &v[i]), 0);
            in[i] = true;
        } else if (op == 0) {
            ttlheap_remove(&h, &v[i]);
            in[i] = false;
        } else {
            v[i].expire_ms = (int64_t)(rnd() % 500);
            ttlheap_update(&h, &v[i]);
        }
        ttlheap_remove(&h, &v[(i + 1) % N_ITEMS]); /* no-op when absent */
        in[(i + 1) % N_ITEMS] = false;
        if (step % 97 == 0 || step < 200) check_heap(&h, v, in, N_ITEMS);
    }
    check_heap(&h, v, in, N_ITEMS);
    assert_int_equal(ttlheap_bytes(&h), h.cap * sizeof(uint32_t)); /* 4-byte ids */
    ttlheap_free(&h);
    for (size_t i = 0; i < N_ITEMS; i++)
        assert_int_equal(v[i].heap_idx, TTLHEAP_NONE);
    assert_int_equal(h.len, 0);
    assert_int_equal(ttlheap_bytes(&h), 0);
    free(v);
}

static void test_pop_order_sorted(void **state)
{
    (void)state;
    struct item *v = items_new(N_ITEMS);
    struct ttlheap h;
    ttlheap_init(&h, (const char *)v);
    for (size_t i = 0; i < N_ITEMS; i++) {
        v[i].expire_ms = (int64_t)(rnd() % 100000) - 50000;
        assert_int_equal(ttlheap_push(&h, &v[i]), 0);
    }
    int64_t last = INT64_MIN;
    size_t popped = 0;
    struct item *it;
    while ((it = ttlheap_peek(&h)) != NULL) {
        assert_true(it->expire_ms >= last);
        last = it->expire_ms;
        ttlheap_remove(&h, it);
        assert_int_equal(it->heap_idx, TTLHEAP_NONE);
        popped++;
    }
    assert_int_equal(popped, N_ITEMS);
    ttlheap_free(&h);
    free(v);
}

static void test_update_moves_both_ways(void **state)
{
    (void)state;
    struct item *v = items_new(64);
    bool in[64];
    struct ttlheap h;
    ttlheap_init(&h, (const char *)v);
    for (size_t i = 0; i < 64; i++) {
        v[i].expire_ms = (int64_t)i * 10;
        assert_int_equal(ttlheap_push(&h, &v[i]), 0);
        in[i] = true;
    }
    v[63].expire_ms = -1; /* leaf to the root */
    ttlheap_update(&h, &v[63]);
    assert_ptr_equal(ttlheap_peek(&h), &v[63]);
    v[63].expire_ms = 100000; /* root to a leaf */
    ttlheap_update(&h, &v[63]);
    assert_ptr_equal(ttlheap_peek(&h), &v[0]);
    check_heap(&h, v, in, 64);
    ttlheap_free(&h);
    free(v);
}

static void test_grow_and_shrink(void **state)
{
    (void)state;
    struct item *v = items_new(N_ITEMS);
    struct ttlheap h;
    ttlheap_init(&h, (const char *)v);
    assert_int_equal(ttlheap_bytes(&h), 0);
    for (size_t i = 0; i < N_ITEMS; i++) {
        v[i].expire_ms = (int64_t)(rnd() % 1000);
        assert_int_equal(ttlheap_push(&h, &v[i]), 0);
        assert_true(h.cap >= h.len && (h.cap & (h.cap - 1)) == 0);
    }
    uint32_t big = h.cap;
    assert_true(big >= N_ITEMS && big < 2 * N_ITEMS);
    for (size_t i = 0; i < N_ITEMS - 10; i++) {
        ttlheap_remove(&h, &v[i]);
        assert_true(h.len == 0 || h.cap <= 4 * h.len || h.cap <= 16);
    }
    assert_true(h.cap <= 64);
    assert_true(ttlheap_bytes(&h) < big * sizeof(uint32_t) / 16);
    bool in[N_ITEMS] = {false};
    for (size_t i = N_ITEMS - 10; i < N_ITEMS; i++) in[i] = true;
    check_heap(&h, v, in, N_ITEMS);
    ttlheap_free(&h);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_ops),
        cmocka_unit_test(test_pop_order_sorted),
        cmocka_unit_test(test_update_moves_both_ways),
        cmocka_unit_test(test_grow_and_shrink),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
