/*
 * test_table.c - the index on its own (src/table.c, src/table.h), with
 * items made here: lookups against a reference model through growth,
 * incremental moves and shrinking; backward-shift deletes in a cluster
 * that wraps around the end of the array; random samples (only entries,
 * no repeats, all of a small table, uniform over the entries, also across
 * the two arrays of a resize); the walk that removes as it goes; the scan.
 * The table's seed is the test's, so keys with known home slots can be
 * built.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "table.h"
#include "test_rng.h"

#define SEED UINT64_C(0x5eed5eed5eed5eed)


static int setup(void **state)
{
    (void)state;
    rng_state = 0x9e3779b97f4a7c15ULL;
    return 0;
}

static struct item *mkitem(const char *key, size_t len)
{
    struct item *it = calloc(1, sizeof *it + len);
    assert_non_null(it);
    it->key_len = (uint16_t)len;
    memcpy(it->data, key, len);
    return it;
}

static void free_item(struct item *it) { free(it); }

static size_t key_of(char *buf, unsigned i)
{
    return (size_t)snprintf(buf, 24, "key:%u", i);
}

static struct item *find(const struct table *tb, const char *k, size_t kl,
                         struct table_loc *loc)
{
    return table_lookup(tb, table_hash(tb, k, kl), k, kl, loc);
}

/* Insert a new key the way the store does: grow (or finish a move) first
 * when one more key would pass 3/4 load. */
static void add(struct table *tb, struct item *it)
{
    while (table_full(tb)) {
        if (table_resizing(tb)) table_move(tb, SIZE_MAX);
        else assert_true(table_grow(tb));
    }
    table_insert(tb, table_item_hash(tb, it), it);
}

static void del(struct table *tb, const char *k, size_t kl)
{
    struct table_loc loc;
    struct item *it = find(tb, k, kl, &loc);
    assert_non_null(it);
    assert_ptr_equal(table_remove(tb, loc), it);
    free(it);
    if (table_sparse(tb)) assert_true(table_shrink(tb));
}

static size_t entries(const struct table *tb)
{
    return tb->cur.used + tb->old.used;
}

/* ---- lookups through growth, moves and shrinking ------------------------ */

#define REF_N 30000u

static void check_key(const struct table *tb, const bool *in, unsigned i)
{
    char k[24];
    size_t kl = key_of(k, i);
    struct table_loc loc;
    struct item *it = find(tb, k, kl, &loc);
    if (!in[i]) {
        assert_null(it);
        return;
    }
    assert_non_null(it);
    assert_int_equal(it->key_len, kl);
    assert_memory_equal(item_key(it), k, kl);
    assert_ptr_equal(table_item_at(tb, loc), it);
    struct table_loc at = table_locate(tb, table_item_hash(tb, it), it);
    assert_int_equal(at.old, loc.old);
    assert_int_equal(at.i, loc.i);
}

static void test_reference(void **state)
{
    (void)state;
    struct table tb;
    assert_int_equal(table_init(&tb, SEED), 0);
    bool *in = calloc(REF_N, sizeof *in);
    assert_non_null(in);
    unsigned resizes = 0, mid_move_checks = 0;
    char k[24];
    for (unsigned step = 0; step < 5 * REF_N; step++) {
        unsigned i = (unsigned)(rnd() % REF_N);
        size_t kl = key_of(k, i);
        bool growing = step < 2 * REF_N; /* then mostly deletes: shrinks */
        bool was_resizing = table_resizing(&tb);
        if (!in[i] && (growing || rnd() % 32 == 0)) {
            add(&tb, mkitem(k, kl));
            in[i] = true;
        } else if (in[i] && (!growing || rnd() % 3 == 0)) {
            del(&tb, k, kl);
            in[i] = false;
        }
        table_move(&tb, (size_t)(rnd() % 8));
        if (table_resizing(&tb) && !was_resizing) resizes++;
        if (table_resizing(&tb) && step % 5 == 0) {
            mid_move_checks++;
            for (int n = 0; n < 20; n++) check_key(&tb, in, (unsigned)(rnd() % REF_N));
        }
        assert_true(entries(&tb) * 4 <= table_slots(&tb) * 3);
    }
    print_message("%u resizes, %zu slots at the end\n", resizes, table_slots(&tb));
    assert_true(resizes >= 7); /* grew 1024 -> 32k slots, shrank to 8k */
    assert_true(mid_move_checks > 1000);
    size_t n = 0;
    for (unsigned i = 0; i < REF_N; i++) {
        check_key(&tb, in, i);
        n += in[i];
    }
    assert_int_equal(entries(&tb), n);
    table_destroy(&tb, free_item);
    free(in);
}

/* ---- backward shift in a cluster that wraps around ---------------------- */

static unsigned wrap_counter;

/* A new key whose home slot in a fresh 1024-slot table is home. */
static size_t key_with_home(char *buf, size_t home)
{
    for (;;) {
        int n = snprintf(buf, 16, "w%u", wrap_counter++);
        if ((XXH3_64bits_withSeed(buf, (size_t)n, SEED) & 1023) == home)
            return (size_t)n;
    }
}

#define WRAP_KEYS 13

static void test_wrapped_cluster_deletes(void **state)
{
    (void)state;
    /* homes 1021 x4, 1023 x3, 0 x2, 2 x2, 1019 x2: one cluster, 1019..8 */
    static const size_t homes[WRAP_KEYS] = {1021, 1021, 1021, 1021, 1023,
                                            1023, 1023, 0, 0, 2, 2, 1019,
                                            1019};
    char keys[WRAP_KEYS][16];
    size_t lens[WRAP_KEYS];
    for (int i = 0; i < WRAP_KEYS; i++) lens[i] = key_with_home(keys[i], homes[i]);

    for (int round = 0; round < 400; round++) {
        struct table tb;
        assert_int_equal(table_init(&tb, SEED), 0);
        int order[WRAP_KEYS];
        bool present[WRAP_KEYS];
        for (int i = 0; i < WRAP_KEYS; i++) order[i] = i;
        for (int i = WRAP_KEYS - 1; i > 0; i--) { /* random insert order */
            int j = (int)(rnd() % (uint64_t)(i + 1)), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (int i = 0; i < WRAP_KEYS; i++) {
            add(&tb, mkitem(keys[order[i]], lens[order[i]]));
            present[order[i]] = true;
        }
        assert_true(table_longest_cluster(&tb) >= WRAP_KEYS);
        /* delete in random order (round < 13: that key first), re-adding
         * some, and look every key up after each step */
        for (int step = 0; step < 3 * WRAP_KEYS; step++) {
            int i = step == 0 && round < WRAP_KEYS ? round
                                                   : (int)(rnd() % WRAP_KEYS);
            if (present[i]) del(&tb, keys[i], lens[i]);
            else add(&tb, mkitem(keys[i], lens[i]));
            present[i] = !present[i];
            for (int j = 0; j < WRAP_KEYS; j++) {
                struct table_loc loc;
                struct item *it = find(&tb, keys[j], lens[j], &loc);
                if (present[j]) assert_non_null(it);
                else assert_null(it);
            }
        }
        table_destroy(&tb, free_item);
    }
}

/* ---- sampling ----------------------------------------------------------- */

/* n keys "key:0".. in a fresh table; their items into items[]. */
static void fill(struct table *tb, unsigned n, struct item **items)
{
    assert_int_equal(table_init(tb, SEED), 0);
    char k[24];
    for (unsigned i = 0; i < n; i++) {
        items[i] = mkitem(k, key_of(k, i));
        add(tb, items[i]);
    }
}

static unsigned index_of(const struct item *it)
{
    return (unsigned)strtoul(item_key(it) + 4, NULL, 10);
}

/* One sample: only entries, no place twice; the count of each entry
 * chosen goes into counts. */
static size_t sample_check(struct table *tb, size_t n, unsigned *counts)
{
    struct table_loc locs[TABLE_SAMPLE_MAX];
    size_t got = table_sample(tb, n, locs);
    for (size_t a = 0; a < got; a++) {
        const struct item *it = table_item_at(tb, locs[a]);
        assert_non_null(it);
        for (size_t b = 0; b < a; b++)
            assert_false(locs[a].old == locs[b].old && locs[a].i == locs[b].i);
        if (counts) counts[index_of(it)]++;
    }
    return got;
}

static void test_sample_small(void **state)
{
    (void)state;
    struct item *items[8];
    for (unsigned n = 0; n <= 8; n++) {
        struct table tb;
        fill(&tb, n, items);
        unsigned counts[8] = {0};
        /* fewer entries than asked for: every one of them, once */
        assert_int_equal(sample_check(&tb, 8, counts), n);
        for (unsigned i = 0; i < n; i++) assert_int_equal(counts[i], 1);
        /* as many as asked for, out of more */
        if (n >= 3) assert_int_equal(sample_check(&tb, 3, NULL), 3);
        table_destroy(&tb, free_item);
    }
}

/* Each entry is chosen about as often as any other: 300 entries, 40,000
 * samples of 8, so ~1067 each; a choice tied to position (cluster heads)
 * gives some entries a multiple of that and others nearly none. */
static void check_uniform(struct table *tb, unsigned n)
{
    unsigned *counts = calloc(n, sizeof *counts);
    assert_non_null(counts);
    const unsigned rounds = 40000;
    for (unsigned r = 0; r < rounds; r++) assert_int_equal(sample_check(tb, 8, counts), 8);
    double want = (double)rounds * 8 / n;
    unsigned lo = UINT32_MAX, hi = 0;
    for (unsigned i = 0; i < n; i++) {
        if (counts[i] < lo) lo = counts[i];
        if (counts[i] > hi) hi = counts[i];
    }
    print_message("sampled %u entries: %u..%u times each (expected %.0f)\n", n, lo, hi, want);
    assert_true(lo > want * 0.75);
    assert_true(hi < want * 1.25);
    free(counts);
}

static void test_sample_uniform(void **state)
{
    (void)state;
    enum { N = 300 };
    struct item *items[N];
    struct table tb;
    fill(&tb, N, items);
    check_uniform(&tb, N);
    table_destroy(&tb, free_item);
}

/* During a resize some entries are in old, some in cur: both are drawn. */
static void test_sample_during_resize(void **state)
{
    (void)state;
    enum { N = 768 }; /* the 769th key grows 1024 -> 2048 slots */
    struct item *items[N + 1];
    struct table tb;
    fill(&tb, N, items);
    assert_false(table_resizing(&tb));
    char k[24];
    items[N] = mkitem(k, key_of(k, N));
    add(&tb, items[N]);
    assert_true(table_resizing(&tb));
    table_move(&tb, 700); /* about half moved */
    assert_true(table_resizing(&tb));
    assert_true(tb.old.used > 100 && tb.cur.used > 100);
    check_uniform(&tb, N + 1);
    table_destroy(&tb, free_item);
}

/* ---- the walk that removes ---------------------------------------------- */

/* Remove every entry whose index is a multiple of 3 with small budgets, a
 * resize moving on and new keys (never removed) arriving between calls:
 * when the walk is complete none of those is left, and every other entry
 * is still there. */
static void test_walk_removing(void **state)
{
    (void)state;
    enum { N = 5000, MORE = 8000 };
    static bool in[N + MORE];
    struct table tb;
    assert_int_equal(table_init(&tb, SEED), 0);
    char k[24];
    for (unsigned i = 0; i < N; i++) {
        add(&tb, mkitem(k, key_of(k, i)));
        in[i] = true;
    }
    unsigned next = N, calls = 0, removed = 0, resizes = 0;
    uint64_t cursor = 0;
    do {
        size_t budget = 1 + (size_t)(rnd() % 40);
        struct table_loc loc;
        struct item *it;
        while ((it = table_walk(&tb, &cursor, &budget, &loc)) != NULL) {
            unsigned i = index_of(it);
            if (i < N && i % 3 == 0) {
                free(table_remove(&tb, loc));
                in[i] = false;
                removed++;
            } else {
                table_walk_skip(&cursor);
            }
        }
        calls++;
        size_t slots = tb.cur.mask;
        for (unsigned a = (unsigned)(rnd() % 16); a > 0 && next < N + MORE; a--) {
            add(&tb, mkitem(k, key_of(k, next)));
            in[next++] = true;
        }
        resizes += tb.cur.mask != slots; /* a new array was made */
        table_move(&tb, (size_t)(rnd() % 16));
    } while (cursor != 0);
    print_message("walk: %u calls, %u removed, %u resizes started\n", calls, removed, resizes);
    assert_true(resizes >= 1);
    assert_int_equal(removed, (N + 2) / 3);
    for (unsigned i = 0; i < next; i++) {
        struct table_loc loc;
        assert_true((find(&tb, k, key_of(k, i), &loc) != NULL) == in[i]);
        assert_true(in[i] == (i >= N || i % 3 != 0));
    }
    table_destroy(&tb, free_item);
}

/* ---- scan --------------------------------------------------------------- */

static void count_visit(void *arg, const struct item *it)
{
    unsigned *counts = arg;
    counts[index_of(it)]++;
}

/* Without changes: every entry once, also across a resize under way. */
static void test_scan_once(void **state)
{
    (void)state;
    enum { N = 769 };
    struct item *items[N];
    struct table tb;
    fill(&tb, N, items);
    assert_true(table_resizing(&tb));
    table_move(&tb, 300);
    unsigned counts[N] = {0};
    uint64_t cursor = 0;
    do {
        table_scan(&tb, &cursor, 5, count_visit, counts);
    } while (cursor != 0);
    for (unsigned i = 0; i < N; i++) assert_int_equal(counts[i], 1);
    table_destroy(&tb, free_item);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_reference, setup),
        cmocka_unit_test_setup(test_wrapped_cluster_deletes, setup),
        cmocka_unit_test_setup(test_sample_small, setup),
        cmocka_unit_test_setup(test_sample_uniform, setup),
        cmocka_unit_test_setup(test_sample_during_resize, setup),
        cmocka_unit_test_setup(test_walk_removing, setup),
        cmocka_unit_test_setup(test_scan_once, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
