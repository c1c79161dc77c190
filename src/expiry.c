/*
 * expiry.c - active expiry: see expiry.h. Invariant: the timer is always
 * armed, for min(next expiry in the heap, now + IDLE_PERIOD) (so rehash
 * steps also run on an idle server); armed_ms remembers for when, so a write
 * with an earlier expiry re-arms it with one comparison.
 *
 * Owns: the timer and the longest-turn figures of expiry_stats. Memory the
 * store frees goes back to the OS from the store's allocator (slab.h), a
 * page at a time as it empties, so there is nothing to trim here.
 */
#include "expiry.h"

#include <ev.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"

#include "store.h"

#define IDLE_PERIOD_MS 1000
#define REHASH_STEP 8192
#define COMPACT_MOVES 1024 /* items moved out of sparse pages per idle turn */
#define COMPACT_MOVES_BUSY 64 /* ... per turn that also expired items */

struct expiry {
    ev_timer timer;
    struct ev_loop *loop;
    struct store *store;
    int64_t armed_ms; /* absolute unix ms the timer fires at */
    struct expiry_stats st; /* longest turn so far */
};

/* CPU time this thread has used, in s. */
static double thread_cpu_s(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return 0.0;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t now_ms(struct ev_loop *loop) { return (int64_t)(ev_now(loop) * 1000.0); }

/* A turn that began at wall start and CPU cpu_start ends now. */
static void count_turn(struct expiry *e, double start, double cpu_start)
{
    uint64_t wall = (uint64_t)((ev_time() - start) * 1e6);
    uint64_t cpu = (uint64_t)((thread_cpu_s() - cpu_start) * 1e6);
    if (wall > e->st.turn_max_us) e->st.turn_max_us = wall;
    if (cpu > e->st.turn_cpu_max_us) e->st.turn_cpu_max_us = cpu;
}

static void arm(struct expiry *e, int64_t at_ms)
{
    int64_t now = now_ms(e->loop);
    if (at_ms < now) at_ms = now;
    e->armed_ms = at_ms;
    ev_timer_stop(e->loop, &e->timer);
    ev_timer_set(&e->timer, (double)(at_ms - now) / 1000.0, 0.0);
    ev_timer_start(e->loop, &e->timer);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct expiry *e = w->data;
    int64_t now = now_ms(loop);
    double start = ev_time(), cpu_start = thread_cpu_s();
    bool more = false;
    size_t expired = 0;
    for (;;) {
        size_t n = store_expire_due(e->store, now, EXPIRY_SLICE);
        expired += n;
        if (n < EXPIRY_SLICE) break;
        if ((ev_time() - start) * 1000.0 >= EXPIRY_BUDGET_MS) {
            more = true;
            break;
        }
    }
    /* Compaction moves items out of sparse pages; in an expiry wave the
     * pages empty by themselves, and moving items due a moment later only
     * lengthens the turn: none while due items wait, a few while items
     * expire, the full step when none did. */
    size_t moves = more ? 0 : expired ? COMPACT_MOVES_BUSY : COMPACT_MOVES;
    if (store_maintain(e->store, REHASH_STEP, moves)) more = true;
    if (more) {
        arm(e, now); /* again on the next loop turn, after I/O */
    } else {
        int64_t next = store_next_expiry(e->store);
        int64_t idle = now + IDLE_PERIOD_MS;
        arm(e, next && next < idle ? next : idle);
    }
    count_turn(e, start, cpu_start);
}

struct expiry *expiry_create(struct ev_loop *loop, struct store *store)
{
    struct expiry *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->loop = loop;
    e->store = store;
    ev_timer_init(&e->timer, on_timer, 0.0, 0.0);
    /* after the client I/O of the same loop turn: a ready client waits for
     * at most one slice, not two (typical get in a 1M-key wave 2.2 -> 1.1 ms) */
    ev_set_priority(&e->timer, EV_MINPRI);
    e->timer.data = e;
    arm(e, now_ms(loop) + IDLE_PERIOD_MS);
    return e;
}

void expiry_destroy(struct expiry *e)
{
    if (!e) return;
    ev_timer_stop(e->loop, &e->timer);
    free(e);
}

void expiry_get_stats(const struct expiry *e, struct expiry_stats *st)
{
    *st = e ? e->st : (struct expiry_stats){0};
}

void expiry_note(struct expiry *e, int64_t expire_ms)
{
    if (expire_ms && expire_ms < e->armed_ms) arm(e, expire_ms);
}
