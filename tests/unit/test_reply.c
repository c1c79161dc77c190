/* Unit tests of the reply queue: merging of small replies, zero-copy
 * references to big values, partial sends, compaction and item lifetime. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reply.h"
#include "store.h"

static struct store *new_store(void)
{
    struct store_config cfg = {.memory_limit = 64u << 20, .eviction = STORE_EVICT_LRU};
    struct store *s = store_create(&cfg);
    assert_non_null(s);
    return s;
}

/* Drain the queue through iovecs in chunks of at most step bytes. */
static size_t drain(struct reply_queue *q, char *out, size_t cap, size_t step)
{
    size_t got = 0;
    while (q->pending) {
        struct iovec iov[8];
        int n = reply_queue_iov(q, iov, 8, step);
        assert_true(n > 0);
        size_t sent = 0;
        for (int i = 0; i < n; i++) {
            assert_true(got + iov[i].iov_len <= cap);
            memcpy(out + got, iov[i].iov_base, iov[i].iov_len);
            got += iov[i].iov_len;
            sent += iov[i].iov_len;
        }
        reply_queue_consume(q, sent);
    }
    return got;
}

static void test_small_replies_merge(void **state)
{
    (void)state;
    struct reply_queue q;
    reply_queue_init(&q, NULL);
    for (int i = 0; i < 100; i++) reply_bytes(&q, "pong\n", 5);
    assert_int_equal(q.pending, 500);
    assert_int_equal(q.seg_len - q.seg_first, 1); /* one iovec for all */
    char out[600];
    assert_int_equal(drain(&q, out, sizeof out, 1 << 20), 500);
    assert_memory_equal(out, "pong\npong\n", 10);
    assert_int_equal(q.buf_len, 0); /* restarted at zero once sent */
    reply_queue_free(&q);
}

static void test_big_value_is_referenced_and_outlives_delete(void **state)
{
    (void)state;
    struct store *s = new_store();
    char *big = malloc(4096);
    memset(big, 'v', 4096);
    assert_int_equal(store_set(s, "k", 1, big, 4096, 0, 1, 1, 1000), STORE_OK);
    struct item *it = store_get(s, "k", 1, 1000);
    assert_non_null(it);
    struct reply_queue q;
    reply_queue_init(&q, s);
    reply_bytes(&q, "a\n", 2);
    assert_int_equal(reply_value(&q, it), 0);
    reply_bytes(&q, "b\n", 2);
    assert_int_equal(q.pending, 2 + 4096 + 1 + 2);
    /* the value segment points into the item, no copy */
    struct iovec iov[8];
    int n = reply_queue_iov(&q, iov, 8, 1 << 20);
    assert_int_equal(n, 3);
    assert_ptr_equal(iov[1].iov_base, item_value(it));
    /* deleting the key must not free bytes a reply still points at */
    assert_int_equal(store_del(s, "k", 1, 2, 1, 1000), STORE_OK);
    char *out = malloc(8192);
    size_t got = drain(&q, out, 8192, 1000); /* partial sends of 1000 bytes */
    assert_int_equal(got, 2 + 4096 + 1 + 2);
    assert_memory_equal(out, "a\n", 2);
    assert_memory_equal(out + 2, big, 4096);
    assert_memory_equal(out + 4098, "\nb\n", 3);
    reply_queue_free(&q);
    free(out);
    free(big);
    store_destroy(s);
}

static void test_value_needing_escape_is_encoded(void **state)
{
    (void)state;
    struct store *s = new_store();
    assert_int_equal(store_set(s, "k", 1, "a\nb", 3, 0, 1, 1, 1000), STORE_OK);
    struct reply_queue q;
    reply_queue_init(&q, s);
    reply_value(&q, store_get(s, "k", 1, 1000));
    char out[16];
    size_t got = drain(&q, out, sizeof out, 1 << 20);
    assert_int_equal(got, 5);
    assert_memory_equal(out, "a\\nb\n", 5);
    reply_queue_free(&q);
    store_destroy(s);
}

static void test_compaction_keeps_order(void **state)
{
    (void)state;
    struct reply_queue q;
    reply_queue_init(&q, NULL);
    char line[64];
    char expect[200000];
    size_t elen = 0;
    char out[200000];
    size_t olen = 0;
    /* interleave appends and partial consumes so buf must compact */
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(line, sizeof line, "line %d\n", i);
        reply_bytes(&q, line, (size_t)n);
        memcpy(expect + elen, line, (size_t)n);
        elen += (size_t)n;
        if (i % 3 == 0) {
            struct iovec iov[4];
            int c = reply_queue_iov(&q, iov, 4, 17);
            size_t sent = 0;
            for (int k = 0; k < c; k++) {
                memcpy(out + olen, iov[k].iov_base, iov[k].iov_len);
                olen += iov[k].iov_len;
                sent += iov[k].iov_len;
            }
            reply_queue_consume(&q, sent);
        }
    }
    olen += drain(&q, out + olen, sizeof out - olen, 1 << 20);
    assert_int_equal(olen, elen);
    assert_memory_equal(out, expect, elen);
    reply_queue_free(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_replies_merge),
        cmocka_unit_test(test_big_value_is_referenced_and_outlives_delete),
        cmocka_unit_test(test_value_needing_escape_is_encoded),
        cmocka_unit_test(test_compaction_keeps_order),
    };
    return cmocka_run_group_tests_name("reply", tests, NULL, NULL);
}
