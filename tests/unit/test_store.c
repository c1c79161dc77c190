/*
 * test_store.c - the store: basics, incremental growth against a reference
 * model, expiry, the memory cap under each eviction policy, references, the digest, and last-writer-wins
 * convergence whatever the delivery order.
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
#include "test_rng.h"

static uint64_t version_clock;

#define NOW INT64_C(1700000000000)
#define TOMB_TTL 60000
#define BIG (1u << 30)


static int setup(void **state)
{
    (void)state;
    rng_state = 0x9e3779b97f4a7c15ULL;
    version_clock = 1000;
    return 0;
}

static uint64_t ver(void) { return ++version_clock; }

static enum store_status put(struct store *s, const char *k, const char *v,
                             int64_t expire_ms)
{
    return store_set(s, k, strlen(k), v, strlen(v), expire_ms, ver(), 1, NOW);
}

static enum store_status del(struct store *s, const char *k)
{
    return store_del(s, k, strlen(k), ver(), 1, NOW);
}

static void expect(struct store *s, const char *k, const char *v)
{
    struct item *it = store_get(s, k, strlen(k), NOW);
    if (v == NULL) {
        assert_null(it);
        return;
    }
    assert_non_null(it);
    assert_int_equal(it->value_len, strlen(v));
    assert_memory_equal(item_value(it), v, strlen(v));
}

static void assert_under_cap(const struct store *s)
{
    struct store_stats st = stats(s);
    assert_true(st.bytes <= st.limit_bytes);
}

/* ---- basics ------------------------------------------------------------ */

static void test_basics(void **state)
{
    (void)state;
    struct store *s = mk(BIG, STORE_EVICT_LRU, 0);
    expect(s, "test_key", NULL);
    assert_int_equal(put(s, "test_key", "test value", 0), STORE_OK);
    expect(s, "test_key", "test value");
    assert_int_equal(stats(s).curr_items, 1);
    const struct item *p = store_peek(s, "test_key", 8);
    assert_non_null(p);
    assert_int_equal(p->expire_ms, 0);
    assert_true(p->flags & ITEM_F_LINKED);

    assert_int_equal(store_expire(s, "test_key", 8, NOW + 5000, ver(), 1, NOW),
                     STORE_OK);
    assert_int_equal(store_peek(s, "test_key", 8)->expire_ms, NOW + 5000);
    assert_int_equal(store_next_expiry(s), NOW + 5000);
    assert_int_equal(store_expire(s, "nope", 4, NOW + 5000, ver(), 1, NOW),
                     STORE_NOT_FOUND);

    assert_int_equal(del(s, "test_key"), STORE_OK);
    expect(s, "test_key", NULL);
    assert_null(store_peek(s, "test_key", 8)); /* no tombstones here */
    assert_int_equal(del(s, "test_key"), STORE_NOT_FOUND);
    assert_int_equal(store_next_expiry(s), 0);
    struct store_stats st = stats(s);
    assert_int_equal(st.curr_items, 0);
    assert_int_equal(st.tombstones, 0);
    assert_int_equal(st.items_digest, 0);
    assert_int_equal(st.rehashing, 0);
    assert_int_equal(st.table_slots, 1024);
    assert_true(st.bytes >= 1024 * 8 && st.bytes <= 1024 * 8 + 16 * 8);
    store_destroy(s);
}

static void test_overwrite(void **state)
{
    (void)state;
    struct store *s = mk(BIG, STORE_EVICT_LRU, 0);
    uint64_t empty = stats(s).bytes;
    assert_int_equal(put(s, "k", "short", 0), STORE_OK);
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(put(s, "k", big, NOW + 1000), STORE_OK);
    expect(s, "k", big);
    assert_int_equal(stats(s).curr_items, 1);
    assert_true(stats(s).bytes >= empty + sizeof big);
    assert_int_equal(put(s, "k", "", 0), STORE_OK);
    expect(s, "k", "");
    assert_int_equal(store_next_expiry(s), 0);
    assert_true(stats(s).bytes < empty + 16 * 8 + 100);
    check_digest(s);
    store_destroy(s);
}

static void test_binary_keys(void **state)
{
    (void)state;
    struct store *s = mk(BIG, STORE_EVICT_LRU, 0);
    static const char k1[] = {'a', '\0', 'b'};
    static const char k2[] = {'a', '\0', 'c'};
    static const char k3[] = {'a'};
    static const char k4[] = {'\xff', '\0', '\n', '"'};
    static const char v[] = {'\0', '\r', '\n', '\xff'};
    assert_int_equal(store_set(s, k1, 3, "one", 3, 0, ver(), 1, NOW), STORE_OK);
    assert_int_equal(store_set(s, k2, 3, "two", 3, 0, ver(), 1, NOW), STORE_OK);
    assert_int_equal(store_set(s, k3, 1, "three", 5, 0, ver(), 1, NOW),
                     STORE_OK);
    assert_int_equal(store_set(s, k4, 4, v, 4, 0, ver(), 1, NOW), STORE_OK);
    assert_int_equal(store_set(s, "", 0, "empty", 5, 0, ver(), 1, NOW),
                     STORE_OK);
    struct item *it = store_get(s, k1, 3, NOW);
    assert_non_null(it);
    assert_memory_equal(item_value(it), "one", 3);
    it = store_get(s, k2, 3, NOW);
    assert_non_null(it);
    assert_memory_equal(item_value(it), "two", 3);
    it = store_get(s, k3, 1, NOW);
    assert_non_null(it);
    assert_int_equal(it->value_len, 5);
    it = store_get(s, k4, 4, NOW);
    assert_non_null(it);
    assert_memory_equal(item_value(it), v, 4);
    assert_non_null(store_get(s, "", 0, NOW));
    assert_null(store_get(s, k1, 2, NOW)); /* "a\0" is yet another key */
    assert_int_equal(store_del(s, k1, 3, ver(), 1, NOW), STORE_OK);
    assert_null(store_get(s, k1, 3, NOW));
    assert_non_null(store_get(s, k2, 3, NOW));
    assert_int_equal(stats(s).curr_items, 4);
    check_digest(s);
    store_destroy(s);
}

/* ---- growth against a reference model ---------------------------------- */

#define REF_N 200000

static size_t ref_key(char *buf, unsigned i)
{
    return (size_t)snprintf(buf, 32, "key:%u", i);
}

static size_t ref_val(char *buf, unsigned i, unsigned gen)
{
    return (size_t)snprintf(buf, 48, "value-%u-%u", i, gen);
}

static void ref_check(struct store *s, const unsigned *gen, unsigned i)
{
    char k[32], v[48];
    size_t kl = ref_key(k, i);
    struct item *it = store_get(s, k, kl, NOW);
    if (gen[i] == 0) {
        assert_null(it);
        return;
    }
    assert_non_null(it);
    size_t vl = ref_val(v, i, gen[i]);
    assert_int_equal(it->value_len, vl);
    assert_memory_equal(item_value(it), v, vl);
}

static void test_growth_reference(void **state)
{
    (void)state;
    struct store *s = mk(BIG, STORE_EVICT_LRU, 0);
    unsigned *gen = calloc(REF_N, sizeof *gen);
    assert_non_null(gen);
    unsigned resizes_seen = 0, checks_mid_move = 0, live = 0;
    uint64_t was_rehashing = 0;
    char k[32], v[48];
    for (unsigned i = 0; i < REF_N; i++) {
        unsigned j = (unsigned)(rnd() % (i + 1)); /* overwrite or new */
        if (rnd() % 4 == 0) j = i;
        size_t kl = ref_key(k, j);
        if (gen[j] == 0) live++;
        gen[j]++;
        size_t vl = ref_val(v, j, gen[j]);
        assert_int_equal(store_set(s, k, kl, v, vl, 0, ver(), 1, NOW),
                         STORE_OK);
        if (rnd() % 3 == 0) { /* random delete */
            unsigned d = (unsigned)(rnd() % (i + 1));
            kl = ref_key(k, d);
            enum store_status st = store_del(s, k, kl, ver(), 1, NOW);
            assert_int_equal(st, gen[d] ? STORE_OK : STORE_NOT_FOUND);
            if (gen[d]) live--;
            gen[d] = 0;
        }
        struct store_stats st = stats(s);
        if (st.rehashing && !was_rehashing) resizes_seen++;
        was_rehashing = st.rehashing;
        if (st.rehashing && i % 7 == 0) { /* lookups in the middle of a move */
            checks_mid_move++;
            for (int n = 0; n < 20; n++)
                ref_check(s, gen, (unsigned)(rnd() % (i + 1)));
        }
        assert_int_equal(st.curr_items, live);
    }
    assert_true(resizes_seen >= 6); /* 1024 -> ... -> 256k slots */
    assert_true(checks_mid_move > 100);
    for (unsigned i = 0; i < REF_N; i++) ref_check(s, gen, i);
    check_digest(s);

    /* store_maintain finishes a move; deleting most keys shrinks the table */
    while (store_maintain(s, 1000, 64)) {}
    assert_int_equal(stats(s).rehashing, 0);
    uint64_t slots = stats(s).table_slots;
    for (unsigned i = 0; i < REF_N; i++) {
        if (gen[i] == 0 || i % 50 == 0) continue;
        size_t kl = ref_key(k, i);
        assert_int_equal(store_del(s, k, kl, ver(), 1, NOW), STORE_OK);
        gen[i] = 0;
    }
    while (store_maintain(s, 64, 64)) {}
    assert_true(stats(s).table_slots < slots / 8);
    for (unsigned i = 0; i < REF_N; i++) ref_check(s, gen, i);
    check_digest(s);
    free(gen);
    store_destroy(s);
}

/* Every key, looked up after every tiny step of a move. */
static void test_lookups_mid_move(void **state)
{
    (void)state;
    struct store *s = mk(BIG, STORE_EVICT_LRU, 0);
    unsigned gen[7100] = {0};
    unsigned n = 0, moves = 0;
    char k[32], v[48];
    while (n < 7000) {
        size_t kl = ref_key(k, n);
        size_t vl = ref_val(v, n, ++gen[n]);
        assert_int_equal(store_set(s, k, kl, v, vl, 0, ver(), 1, NOW),
                         STORE_OK);
        n++;
        if (!stats(s).rehashing) continue;
        moves++;
        /* drain it a few slots at a time, deleting from either table */
        do {
            unsigned d = (unsigned)(rnd() % n);
            if (gen[d] && rnd() % 4 == 0) {
                kl = ref_key(k, d);
                assert_int_equal(store_del(s, k, kl, ver(), 1, NOW),
                                 STORE_OK);
                gen[d] = 0;
            }
            for (unsigned i = 0; i < n + 10; i++) ref_check(s, gen, i);
        } while (store_maintain(s, 1 + rnd() % 5, 64));
    }
    assert_true(moves >= 3);
    check_digest(s);
    store_destroy(s);
}

/* ---- expiry ------------------------------------------------------------ */

static void test_lazy_expiry(void **state)
{
    (void)state;
    struct store *s = mk(BIG, STORE_EVICT_LRU, 0);
    assert_int_equal(put(s, "k", "v", NOW + 100), STORE_OK);
    assert_non_null(store_get(s, "k", 1, NOW + 99));
    uint64_t d = stats(s).items_digest;
    assert_int_equal(d, item_digest("k", 1, "v", 1, 0, NOW + 100));
    assert_null(store_get(s, "k", 1, NOW + 100));
    struct store_stats st = stats(s);
    assert_int_equal(st.expired, 1);
    assert_int_equal(st.curr_items, 0);
    assert_int_equal(st.items_digest, 0);
    assert_int_equal(store_next_expiry(s), 0);
    assert_null(store_peek(s, "k", 1));

    /* a write that arrives already expired leaves nothing */
    assert_int_equal(put(s, "dead", "v", NOW), STORE_OK);
    assert_null(store_peek(s, "dead", 4));
    assert_int_equal(put(s, "k", "v", 0), STORE_OK);
    assert_int_equal(put(s, "k", "v", NOW - 5), STORE_OK);
    assert_null(store_peek(s, "k", 1));
    assert_int_equal(stats(s).expired, 1); /* writes are not expiries */

    /* store_expire: set, clear, and in the past (an expiry) */
    assert_int_equal(put(s, "e", "v", 0), STORE_OK);
    uint64_t v0 = version_clock;
    assert_int_equal(store_expire(s, "e", 1, NOW + 50, ver(), 7, NOW),
                     STORE_OK);
    const struct item *p = store_peek(s, "e", 1);
    assert_int_equal(p->version, v0); /* the value register is untouched */
    assert_int_equal(p->origin, 1);
    assert_int_equal(item_exp_version(p), v0 + 1);
    assert_int_equal(item_exp_origin(p), 7);
    assert_int_equal(stats(s).items_digest,
                     item_digest("e", 1, "v", 1, 0, NOW + 50));
    assert_int_equal(store_next_expiry(s), NOW + 50);
    assert_int_equal(store_expire(s, "e", 1, 0, ver(), 1, NOW), STORE_OK);
    assert_int_equal(store_next_expiry(s), 0);
    assert_int_equal(stats(s).items_digest, item_digest("e", 1, "v", 1, 0, 0));
    assert_int_equal(store_expire(s, "e", 1, NOW, ver(), 1, NOW), STORE_OK);
    assert_null(store_peek(s, "e", 1));
    assert_int_equal(stats(s).expired, 2);
    assert_int_equal(stats(s).items_digest, 0);

    /* an expired item is not found by store_expire or store_del */
    assert_int_equal(put(s, "x", "v", NOW + 10), STORE_OK);
    assert_int_equal(store_expire(s, "x", 1, NOW + 99, ver(), 1, NOW + 10),
                     STORE_NOT_FOUND);
    assert_int_equal(stats(s).expired, 3);
    assert_int_equal(put(s, "y", "v", NOW + 10), STORE_OK);
    assert_int_equal(store_del(s, "y", 1, ver(), 1, NOW + 10),
                     STORE_NOT_FOUND);
    assert_int_equal(stats(s).curr_items, 0);
    store_destroy(s);
}

#define N_EXP 1000

static void test_active_expiry(void **state)
{
    (void)state;
    for (int tomb = 0; tomb < 2; tomb++) {
        struct store *s = mk(BIG, STORE_EVICT_LRU, tomb ? TOMB_TTL : 0);
        unsigned order[N_EXP];
        for (unsigned i = 0; i < N_EXP; i++) order[i] = i;
        for (unsigned i = N_EXP - 1; i > 0; i--) {
            unsigned j = (unsigned)(rnd() % (i + 1)), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        char k[16];
        for (unsigned i = 0; i < N_EXP; i++) {
            snprintf(k, sizeof k, "e%u", order[i]);
            assert_int_equal(put(s, k, "v", NOW + 1 + order[i]), STORE_OK);
        }
        assert_int_equal(put(s, "forever", "v", 0), STORE_OK);
        assert_int_equal(store_next_expiry(s), NOW + 1);
        size_t total = 0, n;
        while ((n = store_expire_due(s, NOW + 500, 64)) > 0) {
            assert_true(n <= 64);
            total += n;
        }
        assert_int_equal(total, 500);
        struct store_stats st = stats(s);
        assert_int_equal(st.expired, 500);
        assert_int_equal(st.curr_items, N_EXP - 500 + 1);
        assert_int_equal(st.tombstones, tomb ? 500 : 0);
        assert_null(store_get(s, "e10", 3, NOW + 500));
        assert_non_null(store_get(s, "e500", 4, NOW + 500));
        if (tomb) {
            const struct item *p = store_peek(s, "e10", 3);
            assert_non_null(p);
            assert_true(p->flags & ITEM_F_TOMBSTONE);
            assert_int_equal(p->expire_ms, NOW + 500 + TOMB_TTL);
            assert_int_equal(store_next_expiry(s), NOW + 501);
        }
        check_digest(s);
        /* the rest expire, then the tombstones are collected */
        total = store_expire_due(s, NOW + 2000, SIZE_MAX);
        assert_int_equal(total, N_EXP - 500);
        assert_int_equal(stats(s).expired, N_EXP);
        assert_int_equal(stats(s).tombstones, tomb ? N_EXP : 0);
        total = store_expire_due(s, NOW + 2000 + TOMB_TTL, SIZE_MAX);
        assert_int_equal(total, tomb ? N_EXP : 0);
        st = stats(s);
        assert_int_equal(st.expired, N_EXP); /* collecting is no expiry */
        assert_int_equal(st.tombstones, 0);
        assert_int_equal(st.curr_items, 1);
        assert_int_equal(store_next_expiry(s), 0);
        check_digest(s);
        store_destroy(s);
    }
}

/* ---- memory cap -------------------------------------------------------- */

static void fill_value(char *v, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) v[i] = (char)('a' + (seed + i) % 26);
}

/* Random writes of random sizes; the cap holds after every one. */
static void cap_run(enum store_eviction ev, int64_t tomb)
{
    const size_t limit = 96 * 1024;
    struct store *s = mk(limit, ev, tomb);
    char k[16], v[700];
    int64_t now = NOW;
    unsigned nomem = 0;
    for (int i = 0; i < 6000; i++) {
        int kl = snprintf(k, sizeof k, "m%u", (unsigned)(rnd() % 3000));
        unsigned op = (unsigned)(rnd() % 10);
        if (op < 6) {
            size_t vl = rnd() % 4 ? rnd() % 32 : 100 + rnd() % 600;
            int64_t exp = rnd() % 2 ? 0 : now + 1 + (int64_t)(rnd() % 5000);
            fill_value(v, vl, (unsigned)i);
            enum store_status st = store_set(s, k, (size_t)kl, v, vl, exp,
                                             ver(), 1, now);
            if (st == STORE_NOMEM) nomem++;
            else assert_int_equal(st, STORE_OK);
        } else if (op < 8) {
            enum store_status st = store_del(s, k, (size_t)kl, ver(), 1, now);
            assert_true(st == STORE_OK || st == STORE_NOT_FOUND);
        } else if (op == 8) {
            int64_t exp = rnd() % 3 ? now + (int64_t)(rnd() % 5000) : 0;
            enum store_status st = store_expire(s, k, (size_t)kl, exp, ver(),
                                                1, now);
            assert_true(st != STORE_STALE && st != STORE_TOO_LARGE);
        } else {
            (void)store_get(s, k, (size_t)kl, now);
            now += 3;
            (void)store_expire_due(s, now, 20);
        }
        assert_under_cap(s);
    }
    struct store_stats st = stats(s);
    if (ev == STORE_EVICT_LRU) {
        assert_true(st.evicted > 100);
        assert_int_equal(nomem, 0);
    }
    if (ev == STORE_EVICT_NONE) {
        assert_true(nomem > 100);
        assert_int_equal(st.evicted, 0);
    }
    if (ev == STORE_EVICT_TTL) assert_true(st.evicted > 0);
    check_digest(s);
    store_destroy(s);
}

static void test_cap_random(void **state)
{
    (void)state;
    for (int ev = STORE_EVICT_LRU; ev <= STORE_EVICT_NONE; ev++) {
        cap_run((enum store_eviction)ev, 0);
        cap_run((enum store_eviction)ev, TOMB_TTL);
    }
}

/* A shrink allocates a table too: only when it fits under the cap. */
static void test_shrink_respects_cap(void **state)
{
    (void)state;
    struct store *s = mk(256 * 1024, STORE_EVICT_LRU, 0);
    char k[16], v[2000];
    memset(v, 'b', sizeof v);
    for (unsigned i = 0; i < 3000; i++) {
        int kl = snprintf(k, sizeof k, "t%u", i);
        assert_int_equal(store_set(s, k, (size_t)kl, "", 0, 0, ver(), 1, NOW),
                         STORE_OK);
    }
    while (store_maintain(s, 1000, 64)) {}
    assert_int_equal(stats(s).table_slots, 4096);
    /* big items push the tiny ones out until the table is nearly empty */
    unsigned big = 0;
    while (stats(s).curr_items >= 300) {
        int kl = snprintf(k, sizeof k, "b%u", big++);
        assert_int_equal(store_set(s, k, (size_t)kl, v, sizeof v, 0, ver(), 1,
                                   NOW),
                         STORE_OK);
        assert_under_cap(s);
    }
    /* memory is full: deleting one big item cannot pay for a new table */
    int kl = snprintf(k, sizeof k, "b%u", big - 1);
    assert_int_equal(store_del(s, k, (size_t)kl, ver(), 1, NOW), STORE_OK);
    assert_under_cap(s);
    assert_int_equal(stats(s).table_slots, 4096);
    /* once there is room, it shrinks */
    for (unsigned i = 0; i + 1 < big; i++) {
        kl = snprintf(k, sizeof k, "b%u", i);
        store_del(s, k, (size_t)kl, ver(), 1, NOW);
        assert_under_cap(s);
    }
    while (store_maintain(s, 1000, 64)) {}
    assert_true(stats(s).table_slots < 4096);
    check_digest(s);
    store_destroy(s);
}

/* Bytes one 200-byte-value item costs in an otherwise empty store. */
static uint64_t item_cost_200(void)
{
    struct store *s = mk(BIG, STORE_EVICT_LRU, 0);
    uint64_t before = stats(s).bytes;
    char v[201];
    memset(v, 'v', 200);
    v[200] = '\0';
    assert_int_equal(put(s, "A", v, 0), STORE_OK);
    uint64_t cost = stats(s).bytes - before;
    store_destroy(s);
    return cost;
}

static void test_lru_keeps_accessed(void **state)
{
    (void)state;
    uint64_t cost = item_cost_200() + 16;
    struct store *s = mk(1024 * 8 + 40 * cost, STORE_EVICT_LRU, 0);
    char k[16], v[201];
    memset(v, 'v', 200);
    v[200] = '\0';
    for (char c = 'A'; c <= 'Z'; c++) {
        snprintf(k, sizeof k, "%c", c);
        assert_int_equal(put(s, k, v, 0), STORE_OK);
    }
    assert_int_equal(stats(s).evicted, 0);
    for (char c = 'A'; c <= 'M'; c++) expect(s, (char[]){c, 0}, v);
    for (int i = 0; stats(s).evicted < 16; i++) {
        snprintf(k, sizeof k, "fill%d", i);
        assert_int_equal(put(s, k, v, 0), STORE_OK);
        assert_under_cap(s);
    }
    int accessed = 0, other = 0; /* peek: no access bit set */
    for (char c = 'A'; c <= 'M'; c++) accessed += !!store_peek(s, &c, 1);
    for (char c = 'N'; c <= 'Z'; c++) other += !!store_peek(s, &c, 1);
    /* sampled LRU: recently read keys survive more than unread ones */
    print_message("survivors: %d of 13 read, %d of 13 unread\n", accessed, other);
    assert_true(accessed >= 10);
    assert_true(other < accessed);
    store_destroy(s);
}

/* A hot set read many times survives a long stream of new, never read
 * keys and a one-off scan reading each cold key once: at the cap, an item
 * read more is never taken while a colder one is sampled with it. */
static void test_lru_keeps_hot_set(void **state)
{
    (void)state;
    struct store *s = mk(4u << 20, STORE_EVICT_LRU, 0);
    char k[32], v[64];
    memset(v, 'v', 63);
    v[63] = '\0';
    for (int i = 0; i < 2000; i++) {
        snprintf(k, sizeof k, "hot%d", i);
        assert_int_equal(put(s, k, v, 0), STORE_OK);
        for (int r = 0; r < 4; r++) assert_non_null(store_get(s, k, strlen(k), NOW));
    }
    for (int i = 0; i < 200000; i++) { /* cold writes, far more than fit */
        snprintf(k, sizeof k, "cold%d", i);
        assert_int_equal(put(s, k, v, 0), STORE_OK);
        if (i % 3 == 0) store_get(s, k, strlen(k), NOW); /* a scan reads some once */
    }
    assert_true(stats(s).evicted > 150000);
    int hot = 0;
    for (int i = 0; i < 2000; i++) {
        snprintf(k, sizeof k, "hot%d", i);
        hot += store_peek(s, k, strlen(k)) != NULL;
    }
    print_message("hot keys kept: %d of 2000\n", hot);
    assert_int_equal(hot, 2000);
    store_destroy(s);
}

/* Set key "<prefix><i>" with a 40-byte value at now_ms. */
static void put_at(struct store *s, const char *prefix, int i, int64_t now_ms)
{
    char k[32], v[41];
    memset(v, 'v', 40);
    int n = snprintf(k, sizeof k, "%s%d", prefix, i);
    assert_int_equal(store_set(s, k, (size_t)n, v, 40, 0, ver(), 1, now_ms), STORE_OK);
    assert_under_cap(s);
}

static bool present(struct store *s, const char *prefix, int i)
{
    char k[32];
    int n = snprintf(k, sizeof k, "%s%d", prefix, i);
    return store_peek(s, k, (size_t)n) != NULL;
}

static void read_at(struct store *s, const char *prefix, int i, int64_t now_ms)
{
    char k[32];
    int n = snprintf(k, sizeof k, "%s%d", prefix, i);
    assert_non_null(store_get(s, k, (size_t)n, now_ms));
}

/*
 * What `lru` guarantees (store_evict.c): an item read in the last minute
 * (heat >= 1) is evicted while unread items (heat 0) exist only if all
 * LRU_ROUNDS x LRU_SAMPLE random draws missed them, at most (1 - c)^32
 * per eviction for a fraction c of unread items. Here half of the items
 * are read, then as many new keys are written at the cap as there were
 * unread ones (c stays ~1/2): every read item must stay (one draw of 8
 * loses one about every 256 evictions). Ten minutes later the old reads
 * no longer count (heat halves every idle minute): a newly read set is
 * what stays, and the items read back then go like the unread ones.
 */
static void test_lru_read_never_before_unread(void **state)
{
    (void)state;
    struct store *s = mk(512u << 10, STORE_EVICT_LRU, 0);
    int n = 0;
    while (stats(s).evicted == 0) put_at(s, "a", n++, NOW);
    int fits = (int)stats(s).curr_items;
    print_message("%d items fit\n", fits);
    assert_true(fits > 1000);
    int read = 0;
    for (int i = 0; i < n; i += 2)
        if (present(s, "a", i)) {
            read_at(s, "a", i, NOW);
            read++;
        }
    uint64_t evicted0 = stats(s).evicted;
    for (int i = 0; i < fits - read; i++) put_at(s, "b", i, NOW);
    assert_true(stats(s).evicted - evicted0 + 2 >= (uint64_t)(fits - read));
    int kept = 0;
    for (int i = 0; i < n; i += 2) kept += present(s, "a", i);
    print_message("read items kept: %d of %d\n", kept, read);
    assert_int_equal(kept, read);

    /* ten minutes on: read the "b" keys still present, write as many new */
    int64_t later = NOW + 10 * 60 * 1000;
    int fresh = 0;
    for (int i = 0; i < fits - read; i++)
        if (present(s, "b", i)) {
            read_at(s, "b", i, later);
            fresh++;
        }
    for (int i = 0; i < fits - fresh; i++) put_at(s, "c", i, later);
    int fresh_kept = 0, old_kept = 0;
    for (int i = 0; i < fits - read; i++) fresh_kept += present(s, "b", i);
    for (int i = 0; i < n; i += 2) old_kept += present(s, "a", i);
    print_message("later: read items kept %d of %d, items read 10 min ago kept %d of %d\n",
                  fresh_kept, fresh, old_kept, read);
    assert_int_equal(fresh_kept, fresh);
    assert_true(old_kept < read / 2);
    store_destroy(s);
}

static void test_lru_protects_overwritten(void **state)
{
    (void)state;
    uint64_t cost = item_cost_200() + 16;
    struct store *s = mk(1024 * 8 + 3 * cost, STORE_EVICT_LRU, 0);
    char v[201], big[420];
    memset(v, 'v', 200);
    v[200] = '\0';
    memset(big, 'B', 419);
    big[419] = '\0';
    assert_int_equal(put(s, "A", v, 0), STORE_OK);
    assert_int_equal(put(s, "B", v, 0), STORE_OK);
    assert_int_equal(put(s, "C", v, 0), STORE_OK);
    /* A, B and C are equally cold and every sample holds all three: A
     * would be the victim a third of the time, but it is the one written */
    assert_int_equal(put(s, "A", big, 0), STORE_OK);
    expect(s, "A", big);
    assert_true(stats(s).evicted >= 1);
    assert_under_cap(s);
    /* the only item grows as far as the cap allows */
    char huge[600];
    memset(huge, 'H', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    assert_int_equal(put(s, "A", huge, 0), STORE_OK);
    expect(s, "A", huge);
    assert_under_cap(s);
    store_destroy(s);
}

static void test_ttl_evicts_earliest(void **state)
{
    (void)state;
    uint64_t cost = item_cost_200() + 16;
    struct store *s = mk(1024 * 8 + 40 * cost, STORE_EVICT_TTL, 0);
    char k[16], v[201];
    memset(v, 'v', 200);
    v[200] = '\0';
    int64_t exp[30];
    for (int i = 0; i < 30; i++) {
        exp[i] = NOW + 10000 + (int64_t)((i * 17) % 30) * 100;
        snprintf(k, sizeof k, "K%d", i);
        assert_int_equal(put(s, k, v, exp[i]), STORE_OK);
    }
    for (int i = 0; i < 20; i++) {
        snprintf(k, sizeof k, "L%d", i);
        assert_int_equal(put(s, k, v, NOW + 100000), STORE_OK);
        assert_under_cap(s);
    }
    assert_true(stats(s).evicted >= 5);
    for (int i = 0; i < 30; i++) {
        for (int j = 0; j < 30; j++) {
            char kj[16];
            snprintf(k, sizeof k, "K%d", i);
            snprintf(kj, sizeof kj, "K%d", j);
            /* survivors all expire later than every evicted item */
            if (exp[i] < exp[j] && store_peek(s, k, strlen(k)))
                assert_non_null(store_peek(s, kj, strlen(kj)));
        }
    }
    /* items without an expiry cannot be evicted under this policy */
    store_destroy(s);
    s = mk(1024 * 8 + 10 * cost, STORE_EVICT_TTL, 0);
    enum store_status st = STORE_OK;
    int n = 0;
    while (st == STORE_OK) {
        snprintf(k, sizeof k, "F%d", n++);
        st = put(s, k, v, 0);
        assert_under_cap(s);
    }
    assert_int_equal(st, STORE_NOMEM);
    assert_int_equal(stats(s).evicted, 0);
    store_destroy(s);
}

static void test_noeviction_and_too_large(void **state)
{
    (void)state;
    uint64_t cost = item_cost_200() + 16;
    const size_t limit = 1024 * 8 + 10 * cost;
    struct store *s = mk(limit, STORE_EVICT_NONE, TOMB_TTL);
    char k[16], v[201];
    memset(v, 'v', 200);
    v[200] = '\0';
    enum store_status st = STORE_OK;
    int n = 0;
    while (st == STORE_OK) {
        snprintf(k, sizeof k, "N%d", n++);
        st = put(s, k, v, 0);
        assert_under_cap(s);
    }
    assert_int_equal(st, STORE_NOMEM);
    assert_int_equal(stats(s).curr_items, (uint64_t)n - 1);
    for (int i = 0; i < n - 1; i++) {
        snprintf(k, sizeof k, "N%d", i);
        expect(s, k, v);
    }
    v[0] = 'w'; /* same size: fits in place of the old value */
    assert_int_equal(put(s, "N0", v, 0), STORE_OK);
    expect(s, "N0", v);
    /* a delete always works, even if its tombstone does not fit */
    assert_int_equal(del(s, "N1"), STORE_OK);
    assert_under_cap(s);
    expect(s, "N1", NULL);
    assert_int_equal(stats(s).evicted, 0);

    char *huge = malloc(limit + 1);
    assert_non_null(huge);
    memset(huge, 'h', limit);
    assert_int_equal(store_set(s, "h", 1, huge, limit, 0, ver(), 1, NOW),
                     STORE_TOO_LARGE);
    /* smaller than the cap, but not with the index */
    assert_int_equal(store_set(s, "h", 1, huge, limit - 4096, 0, ver(), 1, NOW),
                     STORE_TOO_LARGE);
    free(huge);
    store_destroy(s);

    s = mk(limit, STORE_EVICT_LRU, 0);
    huge = malloc(limit);
    assert_non_null(huge);
    assert_int_equal(store_set(s, "h", 1, huge, limit, 0, ver(), 1, NOW),
                     STORE_TOO_LARGE);
    assert_int_equal(stats(s).curr_items, 0);
    free(huge);
    store_destroy(s);
}

/* ---- references -------------------------------------------------------- */

static void test_refcount(void **state)
{
    (void)state;
    struct store *s = mk(BIG, STORE_EVICT_LRU, TOMB_TTL);
    uint64_t empty = stats(s).bytes;
    assert_int_equal(put(s, "k", "first", 0), STORE_OK);
    struct item *it = store_get(s, "k", 1, NOW);
    assert_non_null(it);
    store_item_ref(it);
    assert_int_equal(put(s, "k", "second", 0), STORE_OK);
    assert_memory_equal(item_value(it), "first", 5); /* still readable */
    assert_false(it->flags & ITEM_F_LINKED);
    expect(s, "k", "second");
    uint64_t one = stats(s).bytes;
    assert_int_equal(stats(s).curr_items, 1);
    store_item_unref(s, it); /* freed here; ASan would see a leak or UAF */
    assert_int_equal(stats(s).bytes, one);

    /* delete and expiry while referenced */
    it = store_get(s, "k", 1, NOW);
    store_item_ref(it);
    store_item_ref(it);
    assert_int_equal(del(s, "k"), STORE_OK);
    assert_memory_equal(item_value(it), "second", 6);
    store_item_unref(s, it);
    assert_memory_equal(item_value(it), "second", 6);
    store_item_unref(s, it);
    assert_int_equal(put(s, "t", "tv", NOW + 10), STORE_OK);
    it = store_get(s, "t", 1, NOW);
    store_item_ref(it);
    assert_int_equal(store_expire_due(s, NOW + 10, 10), 1);
    assert_memory_equal(item_value(it), "tv", 2);
    store_item_unref(s, it);
    assert_true(store_peek(s, "t", 1)->flags & ITEM_F_TOMBSTONE);

    /* a reference that outlives the link keeps bytes honest */
    assert_int_equal(store_expire_due(s, NOW + 10 + 2 * TOMB_TTL, 100), 2);
    assert_int_equal(stats(s).curr_items + stats(s).tombstones, 0);
    assert_true(stats(s).bytes <= empty + 16 * 8); /* the heap's floor */
    store_destroy(s);

    /* eviction while referenced */
    uint64_t cost = item_cost_200() + 16;
    s = mk(1024 * 8 + 4 * cost, STORE_EVICT_LRU, 0);
    char k[16], v[201];
    memset(v, 'v', 200);
    v[200] = '\0';
    assert_int_equal(put(s, "R", v, 0), STORE_OK);
    it = store_find(s, "R", 1, NOW); /* not read: as cold as the others */
    store_item_ref(it);
    for (int i = 0; i < 20; i++) {
        snprintf(k, sizeof k, "E%d", i);
        assert_int_equal(put(s, k, v, 0), STORE_OK);
        assert_under_cap(s);
    }
    assert_null(store_peek(s, "R", 1));
    assert_memory_equal(item_value(it), v, 200);
    store_item_unref(s, it);
    store_destroy(s);
}

/* ---- scan and digest --------------------------------------------------- */

struct seen {
    unsigned char *count; /* visits per key index */
    unsigned n;
};

static void seen_visit(void *arg, const struct item *it)
{
    struct seen *sn = arg;
    char buf[32];
    assert_true(it->key_len < sizeof buf);
    memcpy(buf, item_key(it), it->key_len);
    buf[it->key_len] = '\0';
    unsigned i = (unsigned)strtoul(buf + 4, NULL, 10);
    assert_true(i < sn->n);
    if (sn->count[i] < 255) sn->count[i]++;
}

static void test_scan_during_resize(void **state)
{
    (void)state;
    struct store *s = mk(BIG, STORE_EVICT_LRU, 0);
    char k[32];
    unsigned n = 0;
    while (!stats(s).rehashing || n < 3000) { /* stop mid-move */
        size_t kl = ref_key(k, n++);
        assert_int_equal(store_set(s, k, kl, "v", 1, 0, ver(), 1, NOW),
                         STORE_OK);
    }
    struct seen sn = {calloc(n, 1), n};
    assert_non_null(sn.count);
    uint64_t cursor = 0;
    unsigned calls = 0;
    do {
        size_t got = store_scan(s, &cursor, 10, seen_visit, &sn);
        assert_true(got <= 10 + 64);
        (void)store_maintain(s, 100, 64); /* the move progresses between calls */
        calls++;
    } while (cursor != 0);
    assert_true(calls > 10);
    assert_int_equal(stats(s).rehashing, 0); /* it finished during the walk */
    for (unsigned i = 0; i < n; i++) assert_true(sn.count[i] >= 1);

    /* no resize under way: exactly once */
    memset(sn.count, 0, n);
    do {
        store_scan(s, &cursor, 33, seen_visit, &sn);
    } while (cursor != 0);
    for (unsigned i = 0; i < n; i++) assert_int_equal(sn.count[i], 1);
    free(sn.count);
    store_destroy(s);
}

static void test_digest_random_ops(void **state)
{
    (void)state;
    struct store *s = mk(BIG, STORE_EVICT_LRU, TOMB_TTL);
    char k[16], v[64];
    int64_t now = NOW;
    for (int i = 0; i < 20000; i++) {
        int kl = snprintf(k, sizeof k, "d%u", (unsigned)(rnd() % 2500));
        unsigned op = (unsigned)(rnd() % 8);
        if (op < 4) {
            size_t vl = rnd() % sizeof v;
            fill_value(v, vl, (unsigned)rnd());
            int64_t exp = rnd() % 2 ? 0 : now - 5 + (int64_t)(rnd() % 400);
            store_set(s, k, (size_t)kl, v, vl, exp, ver(), 1, now);
        } else if (op == 4) {
            store_del(s, k, (size_t)kl, ver(), 1, now);
        } else if (op == 5) {
            int64_t exp = rnd() % 4 ? now + (int64_t)(rnd() % 400) : 0;
            store_expire(s, k, (size_t)kl, exp, ver(), 1, now);
        } else if (op == 6) {
            store_get(s, k, (size_t)kl, now);
        } else {
            now += 1;
            store_expire_due(s, now, 5);
        }
        if (i % 2000 == 0) check_digest(s);
    }
    check_digest(s);
    store_destroy(s);
}

static void test_digest_order_independent(void **state)
{
    (void)state;
    struct store *a = mk(BIG, STORE_EVICT_LRU, 0);
    struct store *b = mk(BIG, STORE_EVICT_LRU, TOMB_TTL);
    char k[16], v[32];
    for (unsigned i = 0; i < 3000; i++) {
        int kl = snprintf(k, sizeof k, "o%u", i);
        int vl = snprintf(v, sizeof v, "final%u", i);
        store_set(a, k, (size_t)kl, v, (size_t)vl, i % 3 ? 0 : NOW + i,
                  ver(), 1, NOW);
    }
    /* b: noise first, then the same final data in reverse order */
    for (unsigned i = 0; i < 6000; i++) {
        int kl = snprintf(k, sizeof k, "o%u", (unsigned)(rnd() % 4000));
        store_set(b, k, (size_t)kl, "noise", 5, 0, ver(), 2, NOW);
    }
    for (unsigned i = 3000; i < 4000; i++) {
        int kl = snprintf(k, sizeof k, "o%u", i);
        store_del(b, k, (size_t)kl, ver(), 2, NOW);
    }
    for (unsigned i = 3000; i-- > 0;) {
        int kl = snprintf(k, sizeof k, "o%u", i);
        int vl = snprintf(v, sizeof v, "final%u", i);
        store_set(b, k, (size_t)kl, v, (size_t)vl, i % 3 ? 0 : NOW + i,
                  ver(), 2, NOW);
    }
    assert_int_equal(stats(a).items_digest, stats(b).items_digest);
    assert_int_equal(stats(a).curr_items, stats(b).curr_items);
    assert_int_not_equal(stats(a).items_digest, 0);
    check_digest(a);
    check_digest(b);
    store_destroy(a);
    store_destroy(b);
}

/* ---- last-writer-wins -------------------------------------------------- */

/*
 * The item's tail (item.h): the expiry stamp only when it differs from the
 * value stamp, client flags only when not 0. An expiry write that needs
 * room for its stamp replaces the item with a copy that keeps the value,
 * the flags and the read state; the next one writes in place.
 */
static void test_item_tail(void **state)
{
    (void)state;
    struct store *s = mk(BIG, STORE_EVICT_LRU, 0);
    assert_int_equal(store_set(s, "a", 1, "value", 5, NOW + 1000, 50, 3, NOW), STORE_OK);
    struct item *a = store_get(s, "a", 1, NOW);
    assert_non_null(a);
    assert_int_equal(a->meta & (ITEM_M_EXP_STAMP | ITEM_M_CFLAGS), 0);
    assert_int_equal(item_exp_version(a), 50);
    assert_int_equal(item_exp_origin(a), 3);
    assert_int_equal(item_client_flags(a), 0);

    struct store_write w = {.key = "b", .key_len = 1, .has_value = true, .value = "value",
                            .value_len = 5, .client_flags = 0xdeadbeef, .version = 60,
                            .origin = 4, .has_expiry = true, .expire_ms = NOW + 1000,
                            .exp_version = 60, .exp_origin = 4};
    assert_int_equal(store_write(s, &w, NOW), STORE_OK);
    struct item *b = store_get(s, "b", 1, NOW);
    assert_int_equal(b->meta & (ITEM_M_EXP_STAMP | ITEM_M_CFLAGS), ITEM_M_CFLAGS);
    assert_int_equal(item_client_flags(b), 0xdeadbeef);
    assert_int_equal(item_exp_version(b), 60);

    /* a touch: b's expiry stamp now differs, so b moves to a bigger copy */
    store_get(s, "b", 1, NOW);
    assert_int_equal(store_expire(s, "b", 1, NOW + 5000, 70, 5, NOW), STORE_OK);
    struct item *b2 = store_find(s, "b", 1, NOW);
    assert_ptr_not_equal(b2, b);
    assert_int_equal(b2->meta & (ITEM_M_EXP_STAMP | ITEM_M_CFLAGS),
                     ITEM_M_EXP_STAMP | ITEM_M_CFLAGS);
    assert_int_equal(b2->version, 60);
    assert_int_equal(b2->origin, 4);
    assert_int_equal(item_exp_version(b2), 70);
    assert_int_equal(item_exp_origin(b2), 5);
    assert_int_equal(item_client_flags(b2), 0xdeadbeef);
    assert_int_equal(b2->expire_ms, NOW + 5000);
    assert_int_equal(b2->value_len, 5);
    assert_memory_equal(item_value(b2), "value", 5);
    assert_true(b2->flags & ITEM_F_FETCHED); /* read state kept */
    assert_int_equal(item_freq(b2), 2);
    check_digest(s);

    /* the next touch writes in place */
    assert_int_equal(store_expire(s, "b", 1, NOW + 6000, 80, 6, NOW), STORE_OK);
    assert_ptr_equal(store_find(s, "b", 1, NOW), b2);
    assert_int_equal(item_exp_version(b2), 80);
    assert_int_equal(item_exp_origin(b2), 6);
    assert_int_equal(item_client_flags(b2), 0xdeadbeef);
    assert_int_equal(store_expire_due(s, NOW + 5999, 10), 1); /* a only */
    assert_non_null(store_find(s, "b", 1, NOW + 5999));
    assert_int_equal(store_expire_due(s, NOW + 6000, 10), 1);
    check_digest(s);
    assert_int_equal(stats(s).curr_items, 0);
    store_destroy(s);
}

static void test_stale_writes(void **state)
{
    (void)state;
    struct store *s = mk(BIG, STORE_EVICT_LRU, 0);
    assert_int_equal(store_set(s, "k", 1, "v5", 2, 0, 5, 2, NOW), STORE_OK);
    assert_int_equal(store_set(s, "k", 1, "v4", 2, 0, 4, 9, NOW), STORE_STALE);
    assert_int_equal(store_set(s, "k", 1, "v5", 2, 0, 5, 2, NOW), STORE_STALE);
    assert_int_equal(store_set(s, "k", 1, "o1", 2, 0, 5, 1, NOW), STORE_STALE);
    assert_int_equal(store_del(s, "k", 1, 5, 1, NOW), STORE_STALE);
    assert_int_equal(store_expire(s, "k", 1, NOW + 9, 5, 2, NOW), STORE_STALE);
    expect(s, "k", "v5");
    assert_int_equal(store_set(s, "k", 1, "o3", 2, 0, 5, 3, NOW), STORE_OK);
    expect(s, "k", "o3");
    assert_int_equal(store_expire(s, "k", 1, NOW + 9, 6, 1, NOW), STORE_OK);
    /* the expire stamped 6 does not make the value older than 6: a set
     * stamped (5,9) beats the value (5,3) but keeps the newer expiry */
    assert_int_equal(store_set(s, "k", 1, "x", 1, 0, 5, 9, NOW), STORE_OK);
    expect(s, "k", "x");
    assert_int_equal(store_peek(s, "k", 1)->expire_ms, NOW + 9);
    assert_int_equal(store_set(s, "k", 1, "y", 1, 0, 5, 8, NOW), STORE_STALE);
    /* an expired, uncollected item still holds its stamps */
    assert_int_equal(store_set(s, "k", 1, "z", 1, 0, 5, 9, NOW + 20),
                     STORE_STALE);
    assert_int_equal(store_set(s, "k", 1, "z", 1, 0, 7, 0, NOW + 20),
                     STORE_OK);
    expect(s, "k", "z");
    store_destroy(s);
}

static void test_tombstones(void **state)
{
    (void)state;
    struct store *s = mk(BIG, STORE_EVICT_LRU, TOMB_TTL);
    assert_int_equal(store_set(s, "k", 1, "v", 1, 0, 10, 1, NOW), STORE_OK);
    assert_int_equal(store_del(s, "k", 1, 20, 1, NOW), STORE_OK);
    struct store_stats st = stats(s);
    assert_int_equal(st.curr_items, 0);
    assert_int_equal(st.tombstones, 1);
    assert_int_equal(st.items_digest, 0);
    const struct item *p = store_peek(s, "k", 1);
    assert_true(p->flags & ITEM_F_TOMBSTONE);
    assert_int_equal(p->version, 20);
    assert_int_equal(p->value_len, 0);
    assert_int_equal(p->expire_ms, NOW + TOMB_TTL);
    assert_null(store_get(s, "k", 1, NOW));
    /* a delayed older set stays dead; so do expire and a second del */
    assert_int_equal(store_set(s, "k", 1, "old", 3, 0, 15, 1, NOW),
                     STORE_STALE);
    assert_int_equal(store_expire(s, "k", 1, 0, 25, 1, NOW), STORE_NOT_FOUND);
    assert_int_equal(store_del(s, "k", 1, 19, 1, NOW), STORE_STALE);
    assert_int_equal(store_del(s, "k", 1, 30, 1, NOW + 5), STORE_NOT_FOUND);
    assert_int_equal(store_peek(s, "k", 1)->version, 30); /* restamped */
    assert_int_equal(store_next_expiry(s), NOW + 5 + TOMB_TTL);
    /* a remote delete of an unknown key still records a tombstone */
    assert_int_equal(store_del(s, "u", 1, 40, 2, NOW), STORE_NOT_FOUND);
    assert_int_equal(store_set(s, "u", 1, "old", 3, 0, 39, 9, NOW),
                     STORE_STALE);
    /* collected after tombstone_ttl; collection is not an expiry */
    assert_int_equal(store_expire_due(s, NOW + TOMB_TTL - 1, 10), 0);
    assert_int_equal(store_expire_due(s, NOW + 5 + TOMB_TTL, 10), 2);
    st = stats(s);
    assert_int_equal(st.tombstones, 0);
    assert_int_equal(st.expired, 0);
    assert_null(store_peek(s, "k", 1));
    assert_int_equal(store_set(s, "k", 1, "old", 3, 0, 15, 1, NOW), STORE_OK);

    /* an expiry also leaves a tombstone with the item's own stamp */
    assert_int_equal(store_set(s, "e", 1, "v", 1, NOW + 10, 50, 3, NOW),
                     STORE_OK);
    assert_null(store_get(s, "e", 1, NOW + 10));
    p = store_peek(s, "e", 1);
    assert_true(p->flags & ITEM_F_TOMBSTONE);
    assert_int_equal(p->version, 50);
    assert_int_equal(p->origin, 3);
    assert_int_equal(store_set(s, "e", 1, "x", 1, 0, 49, 9, NOW + 11),
                     STORE_STALE);
    assert_int_equal(store_set(s, "e", 1, "y", 1, 0, 51, 0, NOW + 11),
                     STORE_OK);
    /* a winning write that is already expired leaves a tombstone too */
    assert_int_equal(store_set(s, "e", 1, "z", 1, NOW, 52, 0, NOW + 11),
                     STORE_OK);
    p = store_peek(s, "e", 1);
    assert_true(p->flags & ITEM_F_TOMBSTONE);
    assert_int_equal(p->version, 52);
    check_digest(s);
    store_destroy(s);
}

/* Writing new keys at the cap under LRU must not pack the table into one
 * huge probe cluster (an eviction order tied to slot position did: a
 * cluster of ~38k of 65k slots, every write ~550x slower). */
static void test_lru_eviction_keeps_clusters_short(void **state)
{
    (void)state;
    struct store *s = mk(4u << 20, STORE_EVICT_LRU, 0);
    char key[32];
    for (int i = 0; i < 400000; i++) {
        int n = snprintf(key, sizeof key, "fill:%d", i);
        assert_int_equal(store_set(s, key, (size_t)n, "vvvvvvvvvvvvvvvv", 16, 0,
                                   (uint64_t)i + 1, 1, 1000), STORE_OK);
    }
    struct store_stats st = stats(s);
    assert_true(st.evicted > 100000);
    size_t longest = store_longest_cluster(s);
    print_message("longest cluster %zu of %llu slots\n", longest, (unsigned long long)st.table_slots);
    assert_true(longest < 400); /* a fresh table at this load: ~100-130 */
    store_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_basics, setup),
        cmocka_unit_test_setup(test_overwrite, setup),
        cmocka_unit_test_setup(test_binary_keys, setup),
        cmocka_unit_test_setup(test_growth_reference, setup),
        cmocka_unit_test_setup(test_lookups_mid_move, setup),
        cmocka_unit_test_setup(test_lazy_expiry, setup),
        cmocka_unit_test_setup(test_active_expiry, setup),
        cmocka_unit_test_setup(test_cap_random, setup),
        cmocka_unit_test_setup(test_shrink_respects_cap, setup),
        cmocka_unit_test_setup(test_lru_keeps_accessed, setup),
        cmocka_unit_test_setup(test_lru_keeps_hot_set, setup),
        cmocka_unit_test_setup(test_lru_read_never_before_unread, setup),
        cmocka_unit_test_setup(test_lru_protects_overwritten, setup),
        cmocka_unit_test_setup(test_ttl_evicts_earliest, setup),
        cmocka_unit_test_setup(test_noeviction_and_too_large, setup),
        cmocka_unit_test_setup(test_refcount, setup),
        cmocka_unit_test_setup(test_scan_during_resize, setup),
        cmocka_unit_test_setup(test_digest_random_ops, setup),
        cmocka_unit_test_setup(test_digest_order_independent, setup),
        cmocka_unit_test_setup(test_item_tail, setup),
        cmocka_unit_test_setup(test_stale_writes, setup),
        cmocka_unit_test_setup(test_tombstones, setup),
        cmocka_unit_test(test_lru_eviction_keeps_clusters_short),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
