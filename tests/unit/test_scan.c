/*
 * test_scan.c - client SCAN over the store (store_scan_keys, table.c's home
 * scan): the guarantee Redis gives and SPEC section 7.2 asks for.
 *
 *   A key present for the whole iteration (from the call with cursor 0 to
 *   the call that returns cursor 0) is returned at least once,
 *
 * checked while, between calls, other keys are inserted (growing the table,
 * also while a resize is under way), deleted (backward shifts move the
 * stable keys; shrinking), overwritten, and the incremental move
 * progresses by various amounts. A model of which keys are live checks
 * that nothing else is ever returned: no deleted key, no tombstone, no
 * expired or flushed item. Work per call is bounded by max_buckets.
 *
 * Two kinds of schedules: random ones over many seeds, and an exhaustive
 * one that applies the same disruptive mutation after every possible call
 * of a scan in turn (so every cursor position sees it).
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

#include "store.h"
#include "store_util.h"
#include "test_rng.h"

#define NOW INT64_C(1700000000000)
#define BIG (1u << 30)
#define MAX_STABLE 4000u
#define MAX_VOLATILE 40000u

/* The table hash seed of the stores made next (store_config.hash_seed). */
static uint64_t hash_seed = 1;

static struct store *mk_seeded(int64_t tomb)
{
    struct store_config cfg = {.memory_limit = BIG, .eviction = STORE_EVICT_LRU,
                               .tombstone_ttl_ms = tomb, .hash_seed = hash_seed};
    return mk_cfg(&cfg);
}


static uint64_t clock_v = 1000;
static uint64_t ver(void) { return ++clock_v; }

/* Keys: "s<i>" stable (live for the whole iteration), "v<i>" volatile. */
struct model {
    bool stable[MAX_STABLE];
    bool vol[MAX_VOLATILE];
    unsigned live[MAX_VOLATILE]; /* the volatile keys present, unordered */
    unsigned pos[MAX_VOLATILE];  /* where each one is in live */
    unsigned nlive;
    unsigned char seen[MAX_STABLE];
    unsigned nstable;
    size_t reported;  /* items fn saw in the current call */
};

static size_t key_of(char *buf, char kind, unsigned i)
{
    return (size_t)snprintf(buf, 16, "%c%u", kind, i);
}

static void put(struct store *s, char kind, unsigned i, int64_t expire_ms)
{
    char k[16];
    size_t kl = key_of(k, kind, i);
    assert_int_equal(store_set(s, k, kl, k, kl, expire_ms, ver(), 1, NOW), STORE_OK);
}

static void del(struct store *s, char kind, unsigned i)
{
    char k[16];
    size_t kl = key_of(k, kind, i);
    store_del(s, k, kl, ver(), 1, NOW);
}

/* fn of store_scan_keys: only live keys of the model may come. */
static void visit(void *arg, const struct item *it)
{
    struct model *m = arg;
    char buf[16];
    assert_true(it->key_len > 1 && it->key_len < sizeof buf);
    assert_false(it->flags & ITEM_F_TOMBSTONE);
    memcpy(buf, item_key(it), it->key_len);
    buf[it->key_len] = '\0';
    unsigned i = (unsigned)strtoul(buf + 1, NULL, 10);
    if (buf[0] == 's') {
        assert_true(i < m->nstable && m->stable[i]);
        if (m->seen[i] < 255) m->seen[i]++;
    } else {
        assert_int_equal(buf[0], 'v');
        assert_true(i < MAX_VOLATILE && m->vol[i]);
    }
    m->reported++;
}

/* One scan call; checks the bounds on the work done. */
static void scan_call(struct store *s, struct model *m, uint64_t *cursor, size_t count)
{
    size_t buckets = count * 10;
    m->reported = 0;
    size_t got = store_scan_keys(s, cursor, count, buckets, NOW, visit, m);
    assert_int_equal(got, m->reported);
    /* a bucket is never cut, but no bucket holds anywhere near 64 keys */
    assert_true(got <= count + 64);
}

static void assert_all_seen(const struct model *m)
{
    for (unsigned i = 0; i < m->nstable; i++) {
        if (m->seen[i] == 0) fail_msg("stable key s%u was never returned", i);
    }
}

/* ---- mutations between calls ------------------------------------------ */

static void insert_some(struct store *s, struct model *m, unsigned n)
{
    for (unsigned k = 0; k < n; k++) {
        unsigned i = (unsigned)(rnd() % MAX_VOLATILE);
        put(s, 'v', i, 0);
        if (m->vol[i]) continue;
        m->vol[i] = true;
        m->pos[i] = m->nlive;
        m->live[m->nlive++] = i;
    }
}

/* Delete about pct % of the volatile keys. */
static void delete_some(struct store *s, struct model *m, unsigned pct)
{
    for (unsigned j = 0; j < m->nlive;) {
        unsigned i = m->live[j];
        if (rnd() % 100 >= pct) {
            j++;
            continue;
        }
        del(s, 'v', i);
        m->vol[i] = false;
        m->live[j] = m->live[--m->nlive]; /* j now holds another key */
        m->pos[m->live[j]] = j;
    }
}

static void overwrite_stable(struct store *s, struct model *m, unsigned n)
{
    for (unsigned k = 0; k < n && m->nstable; k++) put(s, 's', (unsigned)(rnd() % m->nstable), 0);
}

static void random_mutation(struct store *s, struct model *m)
{
    switch (rnd() % 8) {
    case 0: insert_some(s, m, (unsigned)(rnd() % 3000)); break; /* grow */
    case 1: delete_some(s, m, 70 + (unsigned)(rnd() % 31)); break; /* shrink */
    case 2: insert_some(s, m, (unsigned)(rnd() % 20)); break;
    case 3: delete_some(s, m, (unsigned)(rnd() % 5)); break; /* shifts */
    case 4: overwrite_stable(s, m, (unsigned)(rnd() % 50)); break;
    case 5: (void)store_maintain(s, (size_t)(rnd() % 2000), 64); break;
    default: break; /* nothing */
    }
}

static struct store *fresh(size_t nstable, size_t nvol, struct model *m)
{
    memset(m, 0, sizeof *m);
    struct store *s = mk_seeded(0);
    m->nstable = (unsigned)nstable;
    for (unsigned i = 0; i < nstable; i++) {
        put(s, 's', i, 0);
        m->stable[i] = true;
    }
    insert_some(s, m, (unsigned)nvol);
    return s;
}

/* ---- tests ------------------------------------------------------------- */

/* Without writes and without a resize under way: each key exactly once. */
static void test_exactly_once_when_quiet(void **state)
{
    (void)state;
    static struct model m;
    rng_state = 0x1234567;
    struct store *s = fresh(3000, 0, &m);
    while (store_maintain(s, 1 << 20, 64)) {
    }
    uint64_t cursor = 0;
    unsigned calls = 0;
    do {
        scan_call(s, &m, &cursor, 1 + (size_t)(rnd() % 30));
        calls++;
    } while (cursor != 0);
    assert_true(calls > 50);
    for (unsigned i = 0; i < m.nstable; i++) assert_int_equal(m.seen[i], 1);
    store_destroy(s);
}

/* An empty store: one call, cursor back to 0, nothing reported. */
static void test_empty(void **state)
{
    (void)state;
    static struct model m;
    struct store *s = fresh(0, 0, &m);
    uint64_t cursor = 0;
    scan_call(s, &m, &cursor, 10);
    assert_int_equal(m.reported, 0);
    assert_int_equal(cursor, 0);
    /* a cursor from nowhere (a bigger table, a client's guess) is fine */
    cursor = UINT64_MAX - 5;
    do {
        scan_call(s, &m, &cursor, 10);
    } while (cursor != 0);
    store_destroy(s);
}

/* Random schedules of mutations between calls, many table seeds. */
static void test_random_schedules(void **state)
{
    (void)state;
    static struct model m;
    for (unsigned seed = 1; seed <= 40; seed++) {
        hash_seed = seed * UINT64_C(0x9e3779b97f4a7c15);
        rng_state = seed * 7919u + 1;
        size_t nstable = 1 + (size_t)(rnd() % 1000);
        struct store *s = fresh(nstable, (size_t)(rnd() % 4000), &m);
        uint64_t cursor = 0;
        unsigned calls = 0, resizes = 0;
        do {
            scan_call(s, &m, &cursor, 1 + (size_t)(rnd() % 16));
            random_mutation(s, &m);
            struct store_stats st = stats(s);
            resizes += (unsigned)st.rehashing;
            calls++;
        } while (cursor != 0 && calls < 100000);
        assert_int_not_equal(calls, 100000);
        assert_all_seen(&m);
        (void)resizes;
        store_destroy(s);
    }
}

/*
 * Exhaustive over the cursor position: the same scan, repeated once for
 * every call index c; after call c one disruptive mutation happens (grow to
 * 4x and half-move, shrink by deleting nearly everything, or a wave of
 * deletes that shifts clusters). Every stable key must be returned in every
 * run.
 */
enum disruption { GROW, SHRINK, SHIFT, NDISRUPTIONS };

static void disrupt(struct store *s, struct model *m, enum disruption d)
{
    switch (d) {
    case GROW:
        insert_some(s, m, 2500);
        (void)store_maintain(s, (size_t)(rnd() % 4096), 64);
        break;
    case SHRINK:
        delete_some(s, m, 100);
        break;
    case SHIFT:
        delete_some(s, m, 30);
        insert_some(s, m, 300);
        break;
    default: break;
    }
}

static void test_exhaustive_positions(void **state)
{
    (void)state;
    static struct model m;
    for (int d = 0; d < NDISRUPTIONS; d++) {
        hash_seed = 0xabcdef + (uint64_t)d;
        /* how many calls a scan of the starting table takes */
        rng_state = 99;
        struct store *s = fresh(200, d == SHRINK ? 2000 : 600, &m);
        uint64_t cursor = 0;
        unsigned ncalls = 0;
        do {
            scan_call(s, &m, &cursor, 4);
            ncalls++;
        } while (cursor != 0);
        store_destroy(s);

        for (unsigned at = 0; at <= ncalls; at++) {
            rng_state = 99;
            s = fresh(200, d == SHRINK ? 2000 : 600, &m);
            cursor = 0;
            unsigned c = 0;
            do {
                scan_call(s, &m, &cursor, 4);
                if (c++ == at) disrupt(s, &m, (enum disruption)d);
                (void)store_maintain(s, 64, 64); /* a resize moves on meanwhile */
            } while (cursor != 0);
            assert_all_seen(&m);
            store_destroy(s);
        }
    }
}

/* Keys being overwritten all along are still returned; deleted ones never. */
static void test_churn_on_stable_keys(void **state)
{
    (void)state;
    static struct model m;
    rng_state = 4242;
    hash_seed = 77;
    struct store *s = fresh(1500, 1500, &m);
    uint64_t cursor = 0;
    do {
        scan_call(s, &m, &cursor, 3);
        overwrite_stable(s, &m, 40);
        delete_some(s, &m, 2);
        insert_some(s, &m, 30);
    } while (cursor != 0);
    assert_all_seen(&m);
    assert_true(m.nlive > 0);
    store_destroy(s);
}

/* Tombstones, expired items and flushed items are never returned. */
static void test_only_live_items(void **state)
{
    (void)state;
    static struct model m;
    memset(&m, 0, sizeof m);
    struct store *s = mk_seeded(60000); /* tombstones on */
    m.nstable = 100;
    for (unsigned i = 0; i < 100; i++) {
        put(s, 's', i, 0);
        m.stable[i] = true;
    }
    for (unsigned i = 0; i < 200; i++) put(s, 'v', i, NOW + 1000); /* expire soon */
    for (unsigned i = 200; i < 400; i++) {
        put(s, 'v', i, 0);
        del(s, 'v', i); /* a tombstone now */
    }
    assert_true(stats(s).tombstones >= 200);
    /* at NOW + 1000 the 'v' keys are expired but still linked */
    m.reported = 0;
    uint64_t cursor = 0;
    do {
        store_scan_keys(s, &cursor, 7, 70, NOW + 1000, visit, &m);
    } while (cursor != 0);
    assert_int_equal(m.reported, 100);
    assert_all_seen(&m);

    /* a flush: nothing older than it comes back */
    assert_true(store_flush(s, ver() << 16, 1, NOW + 5000000));
    m.reported = 0;
    memset(m.stable, 0, sizeof m.stable);
    do {
        store_scan_keys(s, &cursor, 7, 70, NOW + 5000000, visit, &m);
    } while (cursor != 0);
    assert_int_equal(m.reported, 0);
    store_destroy(s);
}

/* store_live_items (DBSIZE): a flush counts at once, not after its sweep. */
static void test_live_items_after_flush(void **state)
{
    (void)state;
    struct store *s = mk_seeded(0);
    int64_t now = (int64_t)(clock_v + 1000); /* stamps' physical ms: see ver() */
    for (unsigned i = 0; i < 300; i++) put(s, 'v', i, 0);
    assert_int_equal(store_live_items(s, now), 300);
    /* a delayed flush (a stamp in the future) counts only from its time on */
    uint64_t w = ver() << 16;
    assert_true(store_flush(s, w, 1, (int64_t)(w >> 16) - 1)); /* delayed */
    assert_int_equal(store_live_items(s, (int64_t)(w >> 16) - 1), 300);
    assert_int_equal(store_live_items(s, (int64_t)(w >> 16)), 0);
    /* writes newer than the flush count; the sweep changes nothing */
    clock_v = (w >> 16) << 16;
    put(s, 'n', 1, 0);
    put(s, 'n', 2, 0);
    now = (int64_t)(w >> 16) + 10;
    assert_int_equal(store_live_items(s, now), 2);
    for (int i = 0; i < 100; i++) (void)store_expire_due(s, now, 64); /* the sweep */
    assert_int_equal(store_live_items(s, now), 2);
    assert_int_equal(stats(s).curr_items, 2);
    /* a flush older than some items (a delayed replicated one): curr_items
     * until the sweep has removed what it killed */
    assert_true(store_flush(s, w + 2, 1, now)); /* kills n1 (w + 1), not n2 (w + 2) */
    assert_int_equal(store_live_items(s, now), 2);
    for (int i = 0; i < 100; i++) (void)store_expire_due(s, now, 64); /* the sweep */
    assert_int_equal(store_live_items(s, now), 1);
    store_destroy(s);
}

/* count and max_buckets bound a call; count 0 visits nothing. */
static void test_bounded_calls(void **state)
{
    (void)state;
    static struct model m;
    rng_state = 5;
    struct store *s = fresh(3000, 0, &m);
    uint64_t cursor = 0;
    m.reported = 0;
    assert_int_equal(store_scan_keys(s, &cursor, 0, 100, NOW, visit, &m), 0);
    assert_int_equal(cursor, 0);
    /* one bucket at most: a handful of keys, and the cursor moved */
    size_t got = store_scan_keys(s, &cursor, 1000, 1, NOW, visit, &m);
    assert_true(got < 16);
    assert_int_not_equal(cursor, 0);
    /* count 1 stops after the first bucket that had a key */
    uint64_t c2 = 0;
    got = store_scan_keys(s, &c2, 1, SIZE_MAX, NOW, visit, &m);
    assert_true(got >= 1 && got < 16);
    store_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exactly_once_when_quiet),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_random_schedules),
        cmocka_unit_test(test_exhaustive_positions),
        cmocka_unit_test(test_churn_on_stable_keys),
        cmocka_unit_test(test_only_live_items),
        cmocka_unit_test(test_live_items_after_flush),
        cmocka_unit_test(test_bounded_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
