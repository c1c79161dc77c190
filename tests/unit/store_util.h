/*
 * store_util.h - helpers shared by the store's unit tests (test_store.c,
 * test_merge.c): make a store, read its stats, and check its counters and
 * digest against a full scan. Included after cmocka.h and store.h.
 */
#ifndef VITAMIN_TEST_STORE_UTIL_H
#define VITAMIN_TEST_STORE_UTIL_H

static inline struct store *mk_cfg(const struct store_config *cfg)
{
    struct store *s = store_create(cfg);
    assert_non_null(s);
    return s;
}

/* A fixed table seed, so that a failing test fails the same way again. */
#define STORE_TEST_SEED UINT64_C(0x5eed5eed5eed5eed)

static inline struct store *mk(size_t limit, enum store_eviction ev, int64_t tomb)
{
    struct store_config cfg = {.memory_limit = limit, .eviction = ev, .tombstone_ttl_ms = tomb,
                               .hash_seed = STORE_TEST_SEED};
    return mk_cfg(&cfg);
}

static inline struct store_stats stats(const struct store *s)
{
    struct store_stats st;
    store_get_stats(s, &st);
    return st;
}

struct tally {
    uint64_t digest;
    uint64_t live, tombs;
};

static inline void tally_visit(void *arg, const struct item *it)
{
    struct tally *t = arg;
    if (it->flags & ITEM_F_TOMBSTONE) {
        t->tombs++;
        assert_int_equal(it->value_len, 0);
        return;
    }
    t->live++;
    t->digest ^= item_digest(item_key(it), it->key_len, item_value(it),
                             it->value_len, item_client_flags(it), it->expire_ms);
}

/* A full scan (no writes meanwhile) must agree with the counters. */
static inline void check_digest(struct store *s)
{
    struct tally t = {0, 0, 0};
    uint64_t cursor = 0;
    do {
        store_scan(s, &cursor, 7, tally_visit, &t);
    } while (cursor != 0);
    struct store_stats st = stats(s);
    assert_int_equal(t.live, st.curr_items);
    assert_int_equal(t.tombs, st.tombstones);
    assert_int_equal(t.digest, st.items_digest);
}

#endif
