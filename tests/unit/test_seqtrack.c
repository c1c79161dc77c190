/*
 * test_seqtrack.c - which batches of a peer were lost: in-order batches,
 * redeliveries, jumps that arrive late within the grace or not, a new
 * incarnation that starts past seq 1 (issue 9's F1), and losses during
 * our own transfer, covered by it or not.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "seqtrack.h"

#define GRACE 3.0

struct gaps {
    int calls;
    uint64_t lost; /* summed */
    char last_peer[32];
};

static void on_gap(void *arg, const char *peer, uint64_t lost)
{
    struct gaps *g = arg;
    g->calls++;
    g->lost += lost;
    strncpy(g->last_peer, peer, sizeof g->last_peer - 1);
}

static int setup(void **state)
{
    static struct gaps g;
    memset(&g, 0, sizeof g);
    *state = &g;
    return 0;
}

static struct seqtrack *new_track(void **state)
{
    struct seqtrack *t = seqtrack_create(GRACE, on_gap, *state);
    assert_non_null(t);
    return t;
}

static bool batch(struct seqtrack *t, const char *id, uint64_t inc, uint64_t seq, bool waiting,
                  double now)
{
    return seqtrack_batch(t, id, strlen(id), inc, seq, waiting, now);
}

static void test_in_order_and_redelivered(void **state)
{
    struct gaps *g = *state;
    struct seqtrack *t = new_track(state);
    for (uint64_t s = 1; s <= 100; s++) assert_false(batch(t, "a", 7, s, false, 0));
    assert_true(batch(t, "a", 7, 50, false, 1)); /* a redelivery */
    assert_true(batch(t, "a", 7, 100, false, 1));
    seqtrack_expire(t, 100);
    assert_int_equal(g->calls, 0);
    seqtrack_destroy(t);
}

static void test_jump_filled_within_grace_is_no_gap(void **state)
{
    struct gaps *g = *state;
    struct seqtrack *t = new_track(state);
    batch(t, "a", 7, 1, false, 0);
    batch(t, "a", 7, 5, false, 0); /* 2..4 skipped */
    seqtrack_expire(t, 1);
    assert_int_equal(g->calls, 0);
    assert_true(batch(t, "a", 7, 3, false, 1)); /* late ones */
    assert_true(batch(t, "a", 7, 2, false, 1));
    assert_true(batch(t, "a", 7, 4, false, 1));
    seqtrack_expire(t, 10);
    assert_int_equal(g->calls, 0);
    seqtrack_destroy(t);
}

static void test_jump_not_filled_is_a_gap_after_grace(void **state)
{
    struct gaps *g = *state;
    struct seqtrack *t = new_track(state);
    batch(t, "a", 7, 1, false, 0);
    batch(t, "a", 7, 5, false, 0);
    batch(t, "a", 7, 3, false, 1);
    seqtrack_expire(t, GRACE - 0.1);
    assert_int_equal(g->calls, 0);
    seqtrack_expire(t, GRACE);
    assert_int_equal(g->calls, 1);
    assert_int_equal(g->lost, 2); /* 2 and 4 */
    assert_string_equal(g->last_peer, "a");
    seqtrack_expire(t, 2 * GRACE); /* reported once */
    assert_int_equal(g->calls, 1);
    seqtrack_destroy(t);
}

static void test_huge_jump_is_a_gap_at_once(void **state)
{
    struct gaps *g = *state;
    struct seqtrack *t = new_track(state);
    batch(t, "a", 7, 1, false, 0);
    batch(t, "a", 7, 2 + SEQTRACK_LATE_MAX, false, 0);
    assert_int_equal(g->calls, 1);
    assert_int_equal(g->lost, SEQTRACK_LATE_MAX);
    seqtrack_destroy(t);
}

/* F1: a peer restarted (new incarnation) and the broker lost its first
 * batches: the first one seen is not seq 1. */
static void test_new_incarnation_must_start_at_one(void **state)
{
    struct gaps *g = *state;
    struct seqtrack *t = new_track(state);
    batch(t, "a", 7, 1, false, 0);
    batch(t, "a", 7, 2, false, 0);
    batch(t, "a", 8, 1, false, 0); /* restarted, nothing lost */
    assert_int_equal(g->calls, 0);
    batch(t, "a", 9, 21, false, 0); /* restarted, 20 batches lost */
    assert_int_equal(g->calls, 1);
    assert_int_equal(g->lost, 20);
    batch(t, "b", 3, 4, false, 0); /* a peer never seen, joined late */
    assert_int_equal(g->calls, 2);
    assert_string_equal(g->last_peer, "b");
    seqtrack_destroy(t);
}

static void test_during_transfer_covered(void **state)
{
    struct gaps *g = *state;
    struct seqtrack *t = new_track(state);
    batch(t, "a", 7, 40, true, 0);
    assert_true(seqtrack_unverified(t));
    seqtrack_covered(t, "a", 1, 7, 39); /* the transfer held 1..39 */
    assert_false(seqtrack_unverified(t));
    seqtrack_transfer_ended(t);
    assert_int_equal(g->calls, 0);
    assert_false(batch(t, "a", 7, 41, false, 1)); /* in order after it */
    seqtrack_expire(t, 100);
    assert_int_equal(g->calls, 0);
    seqtrack_destroy(t);
}

static void test_during_transfer_not_covered(void **state)
{
    struct gaps *g = *state;
    struct seqtrack *t = new_track(state);
    batch(t, "a", 7, 1, false, 0);
    batch(t, "a", 7, 10, true, 0); /* a jump while our transfer waits */
    batch(t, "b", 5, 30, true, 0); /* a new peer past seq 1 */
    seqtrack_covered(t, "a", 1, 7, 5); /* a's answer held only up to 5 */
    seqtrack_covered(t, "b", 1, 5, 29);
    assert_true(seqtrack_unverified(t));
    seqtrack_transfer_ended(t);
    assert_int_equal(g->calls, 1);
    assert_string_equal(g->last_peer, "a");
    assert_false(seqtrack_unverified(t));
    seqtrack_destroy(t);
}

static void test_covered_before_any_batch(void **state)
{
    struct gaps *g = *state;
    struct seqtrack *t = new_track(state);
    seqtrack_covered(t, "a", 1, 7, 12); /* the transfer saw a up to 12 */
    assert_false(batch(t, "a", 7, 13, false, 0));
    assert_true(batch(t, "a", 7, 12, false, 0));
    seqtrack_expire(t, 100);
    assert_int_equal(g->calls, 0);
    seqtrack_destroy(t);
}

static void test_peer_table_is_bounded(void **state)
{
    struct gaps *g = *state;
    struct seqtrack *t = new_track(state);
    char id[16];
    for (int i = 0; i < SEQTRACK_MAX_PEERS + 10; i++) {
        snprintf(id, sizeof id, "p%d", i);
        batch(t, id, 1, 1, false, 0);
    }
    batch(t, "p0", 1, 2, false, 0);
    snprintf(id, sizeof id, "p%d", SEQTRACK_MAX_PEERS + 5);
    assert_false(batch(t, id, 1, 50, false, 0)); /* untracked: no gap */
    assert_int_equal(g->calls, 0);
    seqtrack_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_in_order_and_redelivered, setup),
        cmocka_unit_test_setup(test_jump_filled_within_grace_is_no_gap, setup),
        cmocka_unit_test_setup(test_jump_not_filled_is_a_gap_after_grace, setup),
        cmocka_unit_test_setup(test_huge_jump_is_a_gap_at_once, setup),
        cmocka_unit_test_setup(test_new_incarnation_must_start_at_one, setup),
        cmocka_unit_test_setup(test_during_transfer_covered, setup),
        cmocka_unit_test_setup(test_during_transfer_not_covered, setup),
        cmocka_unit_test_setup(test_covered_before_any_batch, setup),
        cmocka_unit_test_setup(test_peer_table_is_bounded, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
