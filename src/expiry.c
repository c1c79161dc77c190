/*
 * expiry.c - active expiry: see expiry.h. Invariant: the timer is always
 * armed, for min(next expiry in the heap, now + IDLE_PERIOD) (so rehash
 * steps also run on an idle server); armed_ms remembers for when, so a write
 * with an earlier expiry re-arms it with one comparison.
 */
#include "expiry.h"

#include <ev.h>
#include <malloc.h>
#include <stdlib.h>

#include "log.h"

#include "store.h"

#define IDLE_PERIOD_MS 1000
#define REHASH_STEP 8192

struct expiry {
    ev_timer timer;
    struct ev_loop *loop;
    struct store *store;
    int64_t armed_ms; /* absolute unix ms the timer fires at */
    uint64_t peak_bytes; /* the store's bytes at their highest since the last trim */
    double last_trim;    /* ev_now of the last malloc_trim */
};

#define TRIM_MIN_BYTES (16u << 20) /* freed at least this much ... */
#define TRIM_PERIOD_S 1.0          /* ... and at most one trim a second */

/*
 * Give freed memory back to the OS once the store has shrunk a lot (a mass
 * expiry, flush, or deletes): glibc returns only the top of its heap by
 * itself, so after a wave RSS would stay at its peak. malloc_trim(0) also
 * releases free pages inside the heap; it runs when the wave is over (no
 * expiry work pending), so no client waits behind both.
 */
static void maybe_trim(struct expiry *e)
{
    struct store_stats st;
    store_get_stats(e->store, &st);
    if (st.bytes > e->peak_bytes) e->peak_bytes = st.bytes;
    double now = ev_now(e->loop);
    if (e->peak_bytes - st.bytes < TRIM_MIN_BYTES || now - e->last_trim < TRIM_PERIOD_S) return;
    double t0 = ev_time();
    malloc_trim(0);
    e->last_trim = now;
    e->peak_bytes = st.bytes;
    log_debug("expiry: gave freed memory back to the OS in %.1f ms", (ev_time() - t0) * 1000.0);
}

static int64_t now_ms(struct ev_loop *loop) { return (int64_t)(ev_now(loop) * 1000.0); }

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
    double start = ev_time();
    bool more = false;
    for (;;) {
        size_t n = store_expire_due(e->store, now, EXPIRY_SLICE);
        if (n < EXPIRY_SLICE) break;
        if ((ev_time() - start) * 1000.0 >= EXPIRY_BUDGET_MS) {
            more = true;
            break;
        }
    }
    if (store_maintain(e->store, REHASH_STEP)) more = true;
    if (more) {
        arm(e, now); /* again on the next loop turn, after I/O */
        return;
    }
    maybe_trim(e);
    int64_t next = store_next_expiry(e->store);
    int64_t idle = now + IDLE_PERIOD_MS;
    arm(e, next && next < idle ? next : idle);
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

void expiry_note(struct expiry *e, int64_t expire_ms)
{
    if (expire_ms && expire_ms < e->armed_ms) arm(e, expire_ms);
}
