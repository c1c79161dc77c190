/*
 * test_merge.c - the store's merge rules (store_write): two last-writer-wins
 * registers per key, tombstones, the revive rule and the flush watermark.
 *
 * What replication relies on: whatever the delivery order and however often
 * a write is redelivered, every store that applied the same writes holds
 * the same registers. A write here is what a replication record carries:
 * a set (both registers, one stamp), a delete (value "deleted" and expiry 0,
 * one stamp), or an expire/touch/persist made on a node that held some
 * value (that value with its own stamp, and the new expiry with a newer
 * stamp) - so an expire can never undo a newer value.
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

#include "hlc.h"
#include "store.h"
#include "store_util.h"
#include "test_rng.h"

#define NOW INT64_C(1700000000000)
#define TOMB_TTL 60000
#define BIG (1u << 30)


/* ---- writes as replication carries them ------------------------------- */

enum op_kind { OP_SET, OP_DEL, OP_EXPIRE };

struct op {
    enum op_kind kind;
    int key;
    char value[16];    /* set: its value; expire: the value it was made on */
    uint64_t version;  /* set, del: its stamp; expire: the value's stamp */
    uint32_t origin;
    int64_t expire_ms; /* set, expire: the expiry it sets */
    uint64_t exp_version; /* expire: its own stamp */
    uint32_t exp_origin;
};

static struct store_write to_write(const struct op *o, char *key, size_t cap)
{
    int kl = snprintf(key, cap, "key%d", o->key);
    struct store_write w = {
        .key = key, .key_len = (size_t)kl,
        .has_value = true, .tomb = o->kind == OP_DEL,
        .value = o->value, .value_len = o->kind == OP_DEL ? 0 : strlen(o->value),
        .version = o->version, .origin = o->origin,
        .has_expiry = true, .expire_ms = o->kind == OP_DEL ? 0 : o->expire_ms,
        .exp_version = o->kind == OP_EXPIRE ? o->exp_version : o->version,
        .exp_origin = o->kind == OP_EXPIRE ? o->exp_origin : o->origin,
    };
    return w;
}

static enum store_status apply(struct store *s, const struct op *o)
{
    char key[32];
    struct store_write w = to_write(o, key, sizeof key);
    return store_write(s, &w, NOW);
}

/* Everything a replica could disagree about, for one key. */
struct key_state {
    int present;       /* 0 unknown key, 1 live, 2 tombstone */
    char value[16];
    uint32_t client_flags;
    uint64_t version, exp_version;
    uint32_t origin, exp_origin;
    int64_t expiry;    /* the expiry register */
};

static struct key_state read_key(struct store *s, int key)
{
    char k[32];
    int kl = snprintf(k, sizeof k, "key%d", key);
    struct key_state st;
    memset(&st, 0, sizeof st);
    const struct item *it = store_peek(s, k, (size_t)kl);
    if (!it) return st;
    st.present = (it->flags & ITEM_F_TOMBSTONE) ? 2 : 1;
    if (st.present == 1) {
        assert_true(it->value_len < sizeof st.value);
        memcpy(st.value, item_value(it), it->value_len);
    }
    st.client_flags = item_client_flags(it);
    st.version = it->version;
    st.origin = it->origin;
    st.exp_version = item_exp_version(it);
    st.exp_origin = item_exp_origin(it);
    st.expiry = store_item_expiry(it);
    return st;
}

static void assert_same(const struct key_state *a, const struct key_state *b)
{
    assert_int_equal(a->present, b->present);
    assert_string_equal(a->value, b->value);
    assert_int_equal(a->client_flags, b->client_flags);
    assert_int_equal(a->version, b->version);
    assert_int_equal(a->origin, b->origin);
    assert_int_equal(a->exp_version, b->exp_version);
    assert_int_equal(a->exp_origin, b->exp_origin);
    assert_int_equal(a->expiry, b->expiry);
}

/* ---- every order of five writes on one key ----------------------------- */

#define NPERM 5

static bool next_permutation(int *a, int n)
{
    int i = n - 2;
    while (i >= 0 && a[i] >= a[i + 1]) i--;
    if (i < 0) return false;
    int j = n - 1;
    while (a[j] <= a[i]) j--;
    int t = a[i]; a[i] = a[j]; a[j] = t;
    for (int l = i + 1, r = n - 1; l < r; l++, r--) {
        t = a[l]; a[l] = a[r]; a[r] = t;
    }
    return true;
}

/* Apply ops in every order (each one delivered twice, the second time at
 * a random later point) and check that every order gives `want`. */
static void all_orders(const struct op *ops, const struct key_state *want)
{
    int perm[NPERM] = {0, 1, 2, 3, 4};
    int orders = 0;
    do {
        struct store *s = mk(BIG, STORE_EVICT_LRU, TOMB_TTL);
        for (int i = 0; i < NPERM; i++) {
            const struct op *o = &ops[perm[i]];
            assert_int_not_equal(apply(s, o), STORE_NOMEM);
            /* a redelivery of anything applied so far changes nothing */
            const struct op *again = &ops[perm[rnd() % (uint64_t)(i + 1)]];
            assert_int_equal(apply(s, again), STORE_STALE);
        }
        struct key_state got = read_key(s, 0);
        assert_same(&got, want);
        check_digest(s);
        store_destroy(s);
        orders++;
    } while (next_permutation(perm, NPERM));
    assert_int_equal(orders, 120);
}

static void test_every_order_converges(void **state)
{
    (void)state;
    /* a set, a delete, a later set, an expire made on the older value by a
     * lagging node after the later set, and a persist */
    struct op ops[NPERM] = {
        {OP_SET, 0, "v1", 10, 1, NOW + 100000, 0, 0},
        {OP_EXPIRE, 0, "v1", 10, 1, 0, 12, 2},        /* persist on v1 */
        {OP_DEL, 0, "", 15, 3, 0, 0, 0},
        {OP_SET, 0, "v2", 20, 1, NOW + 200000, 0, 0},
        {OP_EXPIRE, 0, "v1", 10, 1, NOW + 600000, 25, 2}, /* F3's expire */
    };
    /* the newest set's value survives; the newest expiry-setting write
     * (the expire stamped 25) decides the expiry */
    struct key_state want = {1, "v2", 0, 20, 25, 1, 2, NOW + 600000};
    all_orders(ops, &want);

    /* the same with the persist newest: the value never expires */
    ops[1].exp_version = 30;
    want.exp_version = 30;
    want.expiry = 0;
    all_orders(ops, &want);

    /* a delete newer than everything wins whatever the expiries */
    ops[1].exp_version = 12;
    ops[2].version = 40;
    struct key_state dead = {2, "", 0, 40, 40, 3, 3, 0};
    all_orders(ops, &dead);
}

/* ---- many keys, random stamps, random orders --------------------------- */

#define RND_OPS 3000
#define RND_KEYS 60
#define RND_ORDERS 30

static struct op rops[RND_OPS];

static void random_ops(void)
{
    /* unique stamps: a shuffled grid of (version, origin) */
    static uint32_t grid[RND_OPS * 2];
    for (uint32_t i = 0; i < RND_OPS * 2; i++) grid[i] = i;
    for (uint32_t i = RND_OPS * 2 - 1; i > 0; i--) {
        uint32_t j = (uint32_t)(rnd() % (i + 1)), t = grid[i];
        grid[i] = grid[j];
        grid[j] = t;
    }
    int sets[RND_KEYS][64], nsets[RND_KEYS] = {0};
    for (int i = 0; i < RND_OPS; i++) {
        struct op *o = &rops[i];
        memset(o, 0, sizeof *o);
        o->key = (int)(rnd() % RND_KEYS);
        o->version = 1000 + grid[2 * i] / 4;
        o->origin = 1 + grid[2 * i] % 4;
        uint64_t r = rnd() % 100;
        /* expiries are 0 or in the future: a value dropped because it
         * expired on arrival can only come back through a write that
         * carries it (see docs/replication.md, "Merge rules") */
        int64_t exp = r % 3 ? 0 : NOW + 1000 + (int64_t)(rnd() % 100000);
        if (r < 35 && nsets[o->key] > 0) {
            const struct op *on = &rops[sets[o->key][rnd() % (uint64_t)nsets[o->key]]];
            o->kind = OP_EXPIRE;
            memcpy(o->value, on->value, sizeof o->value);
            o->version = on->version;
            o->origin = on->origin;
            o->exp_version = 1000 + grid[2 * i + 1] / 4;
            o->exp_origin = 1 + grid[2 * i + 1] % 4;
            o->expire_ms = exp;
        } else if (r < 55) {
            o->kind = OP_DEL;
        } else {
            o->kind = OP_SET;
            snprintf(o->value, sizeof o->value, "val%d", i);
            o->expire_ms = exp;
            if (nsets[o->key] < 64) sets[o->key][nsets[o->key]++] = i;
        }
    }
}

static bool stamp_gt(uint64_t v, uint32_t o, uint64_t cv, uint32_t co)
{
    return v > cv || (v == cv && o > co);
}

/* The registers the ops define, folded in no particular order. */
static struct key_state model(int key)
{
    struct key_state st;
    memset(&st, 0, sizeof st);
    bool any = false;
    for (int i = 0; i < RND_OPS; i++) {
        const struct op *o = &rops[i];
        if (o->key != key) continue;
        uint64_t ev = o->kind == OP_EXPIRE ? o->exp_version : o->version;
        uint32_t eo = o->kind == OP_EXPIRE ? o->exp_origin : o->origin;
        if (!any || stamp_gt(o->version, o->origin, st.version, st.origin)) {
            st.version = o->version;
            st.origin = o->origin;
            st.present = o->kind == OP_DEL ? 2 : 1;
            memset(st.value, 0, sizeof st.value);
            if (o->kind != OP_DEL) memcpy(st.value, o->value, sizeof st.value);
        }
        if (!any || stamp_gt(ev, eo, st.exp_version, st.exp_origin)) {
            st.exp_version = ev;
            st.exp_origin = eo;
            st.expiry = o->kind == OP_DEL ? 0 : o->expire_ms;
        }
        any = true;
    }
    if (st.present == 2) memset(st.value, 0, sizeof st.value);
    return st;
}

static void test_random_orders_converge(void **state)
{
    (void)state;
    random_ops();
    struct key_state want[RND_KEYS];
    uint64_t digest = 0;
    for (int k = 0; k < RND_KEYS; k++) {
        want[k] = model(k);
        if (want[k].present != 1) continue;
        char key[32];
        int kl = snprintf(key, sizeof key, "key%d", k);
        digest ^= item_digest(key, (size_t)kl, want[k].value, strlen(want[k].value),
                              0, want[k].expiry);
    }
    static int order[RND_OPS];
    for (int run = 0; run < RND_ORDERS; run++) {
        for (int i = 0; i < RND_OPS; i++) order[i] = i;
        for (int i = RND_OPS - 1; i > 0; i--) {
            int j = (int)(rnd() % (uint64_t)(i + 1)), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        struct store *s = mk(BIG, STORE_EVICT_LRU, TOMB_TTL);
        for (int i = 0; i < RND_OPS; i++) {
            apply(s, &rops[order[i]]);
            if (rnd() % 7 == 0) /* a redelivery changes nothing */
                assert_int_equal(apply(s, &rops[order[rnd() % (uint64_t)(i + 1)]]),
                                 STORE_STALE);
        }
        for (int k = 0; k < RND_KEYS; k++) {
            struct key_state got = read_key(s, k);
            assert_same(&got, &want[k]);
        }
        assert_int_equal(stats(s).items_digest, digest);
        check_digest(s);
        store_destroy(s);
    }
}

/* ---- expiry, revive, flags -------------------------------------------- */

static void test_expiry_only_writes(void **state)
{
    (void)state;
    struct store *s = mk(BIG, STORE_EVICT_LRU, TOMB_TTL);
    /* an expiry-only write (a local touch) needs a live item */
    assert_int_equal(store_expire(s, "key0", 4, NOW + 5, 9, 1, NOW), STORE_NOT_FOUND);
    struct store_write w = {
        .key = "key0", .key_len = 4, .has_value = true, .value = "v", .value_len = 1,
        .client_flags = 0xdeadbeef, .version = 10, .origin = 1,
        .has_expiry = true, .expire_ms = NOW + 50, .exp_version = 10, .exp_origin = 1,
    };
    assert_int_equal(store_write(s, &w, NOW), STORE_OK);
    struct key_state st = read_key(s, 0);
    assert_int_equal(st.client_flags, 0xdeadbeef);
    /* an older expiry stamp is stale, a newer one moves only the expiry */
    assert_int_equal(store_expire(s, "key0", 4, NOW + 9, 9, 7, NOW), STORE_STALE);
    assert_int_equal(store_expire(s, "key0", 4, NOW + 9, 11, 7, NOW), STORE_OK);
    st = read_key(s, 0);
    assert_int_equal(st.version, 10);
    assert_int_equal(st.exp_version, 11);
    assert_int_equal(st.expiry, NOW + 9);
    assert_int_equal(st.client_flags, 0xdeadbeef);
    /* an expiry in the past is an expiry: the item goes, counted */
    assert_int_equal(store_expire(s, "key0", 4, NOW - 1, 12, 7, NOW), STORE_OK);
    assert_null(store_get(s, "key0", 4, NOW));
    assert_int_equal(stats(s).expired, 1);
    check_digest(s);
    store_destroy(s);
}

/* A value dropped by its expiry comes back with a later expiry only from a
 * write carrying the same value stamp (and its bytes); a delete never. */
static void test_revive_after_expiry(void **state)
{
    (void)state;
    struct store *s = mk(BIG, STORE_EVICT_LRU, TOMB_TTL);
    struct op set = {OP_SET, 0, "v", 10, 1, NOW + 5, 0, 0};
    assert_int_equal(apply(s, &set), STORE_OK);
    assert_null(store_get(s, "key0", 4, NOW + 5)); /* expired: a tombstone */
    struct key_state st = read_key(s, 0);
    assert_int_equal(st.present, 2);
    assert_int_equal(st.expiry, NOW + 5);
    /* an expire made elsewhere on the same value, before it expired */
    struct op touch = {OP_EXPIRE, 0, "v", 10, 1, NOW + 100000, 12, 2};
    assert_int_equal(apply(s, &touch), STORE_OK);
    st = read_key(s, 0);
    assert_int_equal(st.present, 1);
    assert_string_equal(st.value, "v");
    assert_int_equal(st.expiry, NOW + 100000);
    check_digest(s);
    /* a delete's tombstone does not come back */
    struct op del = {OP_DEL, 1, "", 20, 1, 0, 0, 0};
    struct op touch1 = {OP_EXPIRE, 1, "w", 19, 1, NOW + 100000, 21, 2};
    assert_int_equal(apply(s, &del), STORE_OK);
    assert_int_equal(apply(s, &touch1), STORE_OK); /* only the expiry moves */
    st = read_key(s, 1);
    assert_int_equal(st.present, 2);
    assert_int_equal(st.exp_version, 21);
    check_digest(s);
    store_destroy(s);
}

/* ---- flush ------------------------------------------------------------- */

static uint64_t stamp_at(int64_t ms, uint64_t logical)
{
    return ((uint64_t)ms << HLC_LOGICAL_BITS) | logical;
}

static void test_flush_watermark(void **state)
{
    (void)state;
    struct store *s = mk(BIG, STORE_EVICT_LRU, TOMB_TTL);
    char k[32];
    for (int i = 0; i < 5000; i++) {
        int kl = snprintf(k, sizeof k, "f%d", i);
        uint64_t v = stamp_at(NOW - 10, (uint64_t)i);
        assert_int_equal(store_set(s, k, (size_t)kl, "x", 1, i % 2 ? 0 : NOW + 9999,
                                   v, 1, NOW), STORE_OK);
    }
    uint64_t w = stamp_at(NOW, 0);
    assert_true(store_flush(s, w, 1, NOW));
    assert_false(store_flush(s, w, 1, NOW)); /* the same flush again: no change */
    assert_false(store_flush(s, w - 1, 9, NOW));
    /* newer writes survive, older ones are refused */
    assert_int_equal(store_set(s, "new", 3, "n", 1, 0, w + 1, 2, NOW), STORE_OK);
    assert_int_equal(store_set(s, "old", 3, "o", 1, 0, w - 1, 2, NOW), STORE_STALE);
    /* flushed items are gone at once for readers, then swept */
    assert_null(store_get(s, "f1", 2, NOW));
    size_t removed = 0;
    for (int i = 0; i < 100 && store_next_expiry(s) != 0; i++)
        removed += store_expire_due(s, NOW, 256);
    assert_int_equal(stats(s).curr_items, 1);
    assert_true(removed >= 4998);
    assert_int_equal(store_next_expiry(s), 0); /* nothing left to wait for */
    check_digest(s);
    store_destroy(s);
}

/* A watermark in the future (memcached's flush_all <delay>) takes effect at
 * its time: until then items live and writes below it are accepted. */
static void test_delayed_flush(void **state)
{
    (void)state;
    struct store *s = mk(BIG, STORE_EVICT_LRU, 0);
    assert_int_equal(store_set(s, "a", 1, "1", 1, 0, stamp_at(NOW, 0), 1, NOW), STORE_OK);
    assert_true(store_flush(s, stamp_at(NOW + 1000, 0), 1, NOW));
    assert_int_equal(store_next_expiry(s), NOW + 1000);
    assert_non_null(store_get(s, "a", 1, NOW + 999));
    assert_int_equal(store_set(s, "b", 1, "2", 1, 0, stamp_at(NOW + 500, 0), 1, NOW + 500),
                     STORE_OK);
    assert_int_equal(store_expire_due(s, NOW + 999, 256), 0);
    assert_int_equal(store_expire_due(s, NOW + 1000, 256), 2);
    assert_null(store_get(s, "b", 1, NOW + 1000));
    assert_int_equal(stats(s).curr_items, 0);
    assert_int_equal(store_next_expiry(s), 0);
    check_digest(s);
    store_destroy(s);
}

/* An immediate flush while a delayed one is pending takes effect at once;
 * the delayed one still comes at its time. */
static void test_flush_now_during_delayed(void **state)
{
    (void)state;
    struct store *s = mk(BIG, STORE_EVICT_LRU, 0);
    assert_int_equal(store_set(s, "a", 1, "1", 1, 0, stamp_at(NOW, 0), 1, NOW), STORE_OK);
    assert_true(store_flush(s, stamp_at(NOW + 5000, 0), 1, NOW)); /* flush_all 5 */
    assert_int_equal(store_set(s, "b", 1, "2", 1, 0, stamp_at(NOW + 10, 0), 1, NOW + 10),
                     STORE_OK);
    assert_true(store_flush(s, stamp_at(NOW + 20, 0), 2, NOW + 20)); /* flush_all */
    assert_null(store_get(s, "a", 1, NOW + 20));
    assert_null(store_get(s, "b", 1, NOW + 20));
    assert_int_equal(store_set(s, "c", 1, "3", 1, 0, stamp_at(NOW + 30, 0), 1, NOW + 30),
                     STORE_OK);
    assert_non_null(store_get(s, "c", 1, NOW + 4999));
    assert_int_equal(store_next_expiry(s) <= NOW + 5000, true);
    while (store_next_expiry(s) && store_next_expiry(s) <= NOW + 5000)
        store_expire_due(s, NOW + 5000, 256);
    assert_null(store_get(s, "c", 1, NOW + 5000)); /* older than the delayed flush */
    /* a write stamped exactly at the delayed flush's time lives */
    assert_int_equal(store_set(s, "d", 1, "4", 1, 0, stamp_at(NOW + 5000, 0), 1, NOW + 5000),
                     STORE_OK);
    assert_non_null(store_get(s, "d", 1, NOW + 5000));
    uint64_t v[2];
    uint32_t o[2];
    assert_int_equal(store_flush_stamps(s, v, o), 1);
    assert_int_equal(v[0], stamp_at(NOW + 5000, 0));
    check_digest(s);
    store_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_order_converges),
        cmocka_unit_test(test_random_orders_converge),
        cmocka_unit_test(test_expiry_only_writes),
        cmocka_unit_test(test_revive_after_expiry),
        cmocka_unit_test(test_flush_watermark),
        cmocka_unit_test(test_delayed_flush),
        cmocka_unit_test(test_flush_now_during_delayed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
