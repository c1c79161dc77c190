/*
 * test_rdigest.c - range digests (rdigest.h) as the store keeps them: the
 * tree always equals one recomputed from scratch, and stores that differ in
 * k keys differ in at most k leaves (and in their ancestors only).
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

#include "rdigest.h"
#include "store.h"
#include "store_util.h"
#include "rng.h"

#define NOW INT64_C(1700000000000)

static uint64_t rng_state = 0x243f6a8885a308d3ULL;
static uint64_t rnd(void)
{
    return rng_next(&rng_state);
}

static struct store *mk_rd(void)
{
    struct store_config cfg = {.memory_limit = 1u << 30, .eviction = STORE_EVICT_LRU,
                               .tombstone_ttl_ms = 60000, .range_digests = true};
    return mk_cfg(&cfg);
}

/* A tree recomputed from a full scan. */
static void rebuild_visit(void *arg, const struct item *it)
{
    struct rdigest *d = arg;
    if (it->flags & ITEM_F_TOMBSTONE) return;
    rdigest_xor(d, rdigest_leaf_of(item_key(it), it->key_len),
                item_digest(item_key(it), it->key_len, item_value(it), it->value_len,
                            item_client_flags(it), it->expire_ms));
}

static void check_tree(struct store *s)
{
    struct rdigest d;
    assert_int_equal(rdigest_init(&d), 0);
    uint64_t cursor = 0;
    do {
        store_scan(s, &cursor, 100, rebuild_visit, &d);
    } while (cursor != 0);
    for (unsigned l = 0; l < RDIGEST_LEVELS; l++)
        for (uint32_t i = 0; i < rdigest_width(l); i++)
            if (rdigest_get(&d, l, i) != store_range_digest(s, l, i))
                fail_msg("level %u node %u differs from a rebuild", l, i);
    assert_int_equal(store_range_digest(s, 0, 0), stats(s).items_digest);
    rdigest_free(&d);
}

static void test_tree_follows_every_change(void **state)
{
    (void)state;
    struct store *s = mk_rd();
    char k[32], v[32];
    uint64_t ver = 1;
    int64_t now = NOW;
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 2000; i++) {
            int kl = snprintf(k, sizeof k, "k%u", (unsigned)(rnd() % 3000));
            int vl = snprintf(v, sizeof v, "v%llu", (unsigned long long)rnd());
            uint64_t r = rnd() % 10;
            if (r < 5) {
                int64_t exp = r == 0 ? now + 1 + (int64_t)(rnd() % 500) : 0;
                store_set(s, k, (size_t)kl, v, (size_t)vl, exp, ver++, 1, now);
            } else if (r < 7) {
                store_del(s, k, (size_t)kl, ver++, 1, now);
            } else if (r < 9) {
                store_expire(s, k, (size_t)kl, r == 7 ? 0 : now + (int64_t)(rnd() % 300),
                             ver++, 2, now);
            } else {
                store_get(s, k, (size_t)kl, now);
            }
        }
        now += 100;
        store_expire_due(s, now, 100000);
        if (round == 10) store_flush(s, ver++, 3, now);
        check_tree(s);
    }
    store_destroy(s);
}

static void test_k_differences_k_leaves(void **state)
{
    (void)state;
    struct store *a = mk_rd(), *b = mk_rd();
    char k[32];
    for (int i = 0; i < 20000; i++) {
        int kl = snprintf(k, sizeof k, "key:%d", i);
        store_set(a, k, (size_t)kl, "same", 4, 0, 10, 1, NOW);
        store_set(b, k, (size_t)kl, "same", 4, 0, 10, 1, NOW);
    }
    for (unsigned l = 0; l < RDIGEST_LEVELS; l++)
        for (uint32_t i = 0; i < rdigest_width(l); i++)
            assert_int_equal(store_range_digest(a, l, i), store_range_digest(b, l, i));
    /* k keys differ: a newer value, a missing key, an extra key, an expiry */
    const int changed[] = {7, 1234, 19999};
    for (size_t i = 0; i < 3; i++) {
        int kl = snprintf(k, sizeof k, "key:%d", changed[i]);
        store_set(b, k, (size_t)kl, "new", 3, 0, 11, 2, NOW);
    }
    store_del(b, "key:5", 5, 11, 2, NOW);
    store_set(b, "extra", 5, "x", 1, 0, 11, 2, NOW);
    store_expire(b, "key:42", 6, NOW + 1000, 11, 2, NOW);
    uint32_t want[6] = {rdigest_leaf_of("key:7", 5), rdigest_leaf_of("key:1234", 8),
                        rdigest_leaf_of("key:19999", 9), rdigest_leaf_of("key:5", 5),
                        rdigest_leaf_of("extra", 5), rdigest_leaf_of("key:42", 6)};
    unsigned differ = 0;
    for (uint32_t i = 0; i < RDIGEST_LEAVES; i++) {
        if (store_range_digest(a, RDIGEST_LEAF_LEVEL, i) ==
            store_range_digest(b, RDIGEST_LEAF_LEVEL, i))
            continue;
        differ++;
        bool expected = false;
        for (int j = 0; j < 6; j++) expected |= want[j] == i;
        assert_true(expected);
    }
    assert_true(differ >= 1 && differ <= 6);
    /* an ancestor differs exactly when one of its leaves does */
    for (unsigned l = 0; l < RDIGEST_LEAF_LEVEL; l++) {
        for (uint32_t i = 0; i < rdigest_width(l); i++) {
            bool below = false;
            uint32_t span = rdigest_width(RDIGEST_LEAF_LEVEL - l);
            for (uint32_t leaf = i * span; leaf < (i + 1) * span; leaf++)
                below |= store_range_digest(a, RDIGEST_LEAF_LEVEL, leaf) !=
                         store_range_digest(b, RDIGEST_LEAF_LEVEL, leaf);
            if (!below)
                assert_int_equal(store_range_digest(a, l, i), store_range_digest(b, l, i));
        }
    }
    store_destroy(a);
    store_destroy(b);
}

/* A key's hash is XXH3-64, seed 0, the same on every node and build (the
 * wire format names keys by it: docs/replication.md, worked example 5), and
 * its leaf is the hash's top 16 bits; the leaf bitmap holds what it was
 * given. */
static void test_key_hash_and_leaves(void **state)
{
    (void)state;
    assert_true(rdigest_key_hash("user:1", 6) == 0x3b577afd7fed9501ull);
    assert_true(rdigest_key_hash("k", 1) == 0xa921e3704fda881dull);
    assert_int_equal(rdigest_leaf_of("user:1", 6), 0x3b57);
    assert_int_equal(rdigest_leaf_of_hash(0xa921e3704fda881dull), 0xa921);
    uint8_t bits[RDIGEST_BITMAP_BYTES] = {0};
    const uint32_t set[] = {0, 7, 8, 0x3b57, RDIGEST_LEAVES - 1};
    for (size_t i = 0; i < sizeof set / sizeof set[0]; i++) rdigest_bitmap_add(bits, set[i]);
    unsigned n = 0;
    for (uint32_t leaf = 0; leaf < RDIGEST_LEAVES; leaf++) n += rdigest_bitmap_has(bits, leaf);
    assert_int_equal(n, 5);
    for (size_t i = 0; i < sizeof set / sizeof set[0]; i++)
        assert_true(rdigest_bitmap_has(bits, set[i]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_follows_every_change),
        cmocka_unit_test(test_k_differences_k_leaves),
        cmocka_unit_test(test_key_hash_and_leaves),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
