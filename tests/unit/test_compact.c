/*
 * test_compact.c - the store's side of allocator compaction: when value
 * sizes shift at the memory cap, the old size class is left with sparse
 * pages; store_maintain moves its items (the index and the TTL heap follow
 * them) until the pages held are close to the bytes counted, and every item
 * reads back the same, pinned ones included.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "store_util.h"

#define NOW INT64_C(1700000000000)
#define CAP (4u << 20)
#define MIB (1u << 20)

static uint64_t clock_ver = 1000;

/* The value of key i: its size tells the phase, its bytes the key. */
static size_t value_of(unsigned i, size_t len, char *v)
{
    for (size_t j = 0; j < len; j++) v[j] = (char)('a' + (i + j) % 26);
    return len;
}

static void put(struct store *s, unsigned i, size_t len, int64_t expire_ms)
{
    char k[32], v[2048];
    int kl = snprintf(k, sizeof k, "key:%u", i);
    size_t vl = value_of(i, len, v);
    assert_int_equal(store_set(s, k, (size_t)kl, v, vl, expire_ms, ++clock_ver, 1, NOW),
                     STORE_OK);
}

/* Every key of [from, to) still present has its own value; returns how many. */
static unsigned check_values(struct store *s, unsigned from, unsigned to, size_t len)
{
    unsigned found = 0;
    char k[32], v[2048];
    for (unsigned i = from; i < to; i++) {
        int kl = snprintf(k, sizeof k, "key:%u", i);
        const struct item *it = store_peek(s, k, (size_t)kl);
        if (it == NULL) continue;
        found++;
        assert_int_equal(it->value_len, value_of(i, len, v));
        assert_memory_equal(item_value(it), v, len);
    }
    return found;
}

static void test_size_shift_is_compacted(void **state)
{
    (void)state;
    struct store_config cfg = {.memory_limit = CAP, .eviction = STORE_EVICT_LRU,
                               .hash_seed = STORE_TEST_SEED};
    struct store *s = mk_cfg(&cfg);
    enum { SMALL = 100, LARGE = 1000, N_SMALL = 40000, N_LARGE = 12000 };
    for (unsigned i = 0; i < N_SMALL; i++) /* small values, past the cap */
        put(s, i, SMALL, i % 2 ? NOW + 3600000 : 0);
    for (unsigned i = N_SMALL; i < N_SMALL + N_LARGE; i++) /* then large ones */
        put(s, i, LARGE, NOW + 3600000);
    struct store_stats st = stats(s);
    assert_true(st.bytes <= CAP);
    /* the small values' pages are sparse, not empty: far more held than counted */
    assert_true(st.slab_bytes > st.bytes + st.bytes / 4 + MIB);
    unsigned small_left = check_values(s, 0, N_SMALL, SMALL);
    unsigned large_left = check_values(s, N_SMALL, N_SMALL + N_LARGE, LARGE);
    assert_true(small_left > 0);

    /* a reply holds one small item: it is never moved (its bytes stay put) */
    char k[32];
    unsigned pinned_key = 0;
    struct item *pinned = NULL;
    for (unsigned i = 0; i < N_SMALL && !pinned; i++) {
        int kl = snprintf(k, sizeof k, "key:%u", i);
        if ((pinned = store_get(s, k, (size_t)kl, NOW)) != NULL) pinned_key = i;
    }
    assert_non_null(pinned);
    store_item_ref(pinned);

    unsigned turns = 0;
    while (store_maintain(s, 1u << 20, 256)) turns++;
    st = stats(s);
    assert_true(turns > 0);
    assert_true(st.slab_bytes <= st.bytes + st.bytes / 4 + MIB);
    assert_int_equal(check_values(s, 0, N_SMALL, SMALL), small_left);
    assert_int_equal(check_values(s, N_SMALL, N_SMALL + N_LARGE, LARGE), large_left);
    int kl = snprintf(k, sizeof k, "key:%u", pinned_key);
    assert_ptr_equal(store_peek(s, k, (size_t)kl), pinned);
    store_item_unref(s, pinned);
    check_digest(s);

    /* the heap follows moved items: every expiry still fires, in order */
    assert_true(store_expire_due(s, NOW + 3600000, (size_t)-1) > 0);
    st = stats(s);
    assert_int_equal(st.expiring, 0);
    check_digest(s);
    store_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_size_shift_is_compacted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
