/*
 * repl_sync.c - state transfer: answering peers' requests with a walk of
 * the store, and getting the pool's data when this node joins or lost some.
 *
 * Owns: the outgoing streams, this node's transfer (session, sources,
 * retries) and the transfer counters. Loop thread only; it reaches the
 * broker through repl_send() and learns about messages through
 * repl_sync_on_message(), both in repl.c.
 *
 * Serving. A SYNC_REQUEST from node X starts a stream to X's queue: SYNC_DATA
 * messages numbered 1, 2, ... (the first one at once, so X knows who
 * answers; it holds our flush watermark as a FLUSH record if we have one,
 * else nothing), each with `base` = the number of our last WRITES batch
 * closed when the walk began (repl_writes_seq), then SYNC_DONE numbered
 * M+1 with `total` = records sent.
 * A stream walks the store a bounded slice per step and pauses while the
 * outbox is half full; a new request from X restarts X's stream.
 *
 * Requesting. Our request goes to the fanout; RabbitMQ brings it back to our
 * own queue too (the echo), which proves the round trip works. Per answering
 * peer (a source) we check that its messages arrive numbered without a hole
 * and that SYNC_DONE's total matches the records received. The transfer is
 *   complete  when the echo came back, every source finished intact, and no
 *             new source started for SYNC_GRACE_S after the echo;
 *   retried   (new session, backoff 1 s doubling to 16 s) when a source has
 *             a hole or a wrong total, stalls for SYNC_STALL_S, the consumer
 *             reconnected meanwhile, or no answer came although peers exist;
 *   over with no peer only when nothing from any other node has ever been
 *             seen, while our own messages kept coming back (the echo and
 *             at least SYNC_ALONE_ECHOES beacons over SYNC_WAIT_S): the
 *             pool's first node. A silent link proves nothing and is waited
 *             out. Data from an incomplete transfer is kept (it merges by
 *             LWW); only the completion is withheld.
 * On completion, each source's (incarnation, base) tells repl.c which of
 * that peer's batches the transfer covered (repl_peer_covered).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"
#include "repl_internal.h"
#include "reply.h"
#include "store.h"

#define SYNC_SLICE 2048          /* items a stream sends per step */
#define SYNC_STREAM_PERIOD 0.001 /* s between steps while streaming */
#define SYNC_IDLE_PERIOD 0.25    /* s between checks otherwise */
#define SYNC_WAIT_S 3.0          /* with no answer at all, wait this long */
#define SYNC_GRACE_S 1.0         /* after the echo, for every peer to start */
#define SYNC_STALL_S 5.0         /* a source silent this long has failed */
#define SYNC_ALONE_ECHOES 2      /* own beacons back before "no peer" */
#define SYNC_BACKOFF_MIN 1.0
#define SYNC_BACKOFF_MAX 16.0
#define MAX_STREAMS 8
#define MAX_SOURCES 32

/* One outgoing transfer: a walk of the store sent as SYNC_DATA. */
struct stream {
    bool active;
    bool begun;            /* the walk has started (cursor 0 is also the end) */
    char routing_key[RC_MAX_ID_LEN + 258]; /* requester's queue, "" = fanout */
    char target[RC_MAX_ID_LEN + 1]; /* requester's node id, "" for a push */
    uint64_t session;      /* the requester's session id (aux) */
    uint64_t base;         /* our last closed WRITES seq when the walk began */
    uint64_t cursor;       /* store_scan position */
    uint64_t msgs;         /* messages sent so far (their seq) */
    uint64_t items;        /* records sent so far */
    struct rc_buf buf;     /* batch being filled */
};

/* A peer answering our current request. */
struct source {
    char id[RC_MAX_ID_LEN + 1];
    uint64_t incarnation, base;
    uint64_t next_seq;     /* the message number expected next */
    uint64_t records;      /* records received */
    double last_msg;       /* ev_now of its last message */
    bool done, failed;
};

struct repl_sync {
    struct repl *r;
    struct ev_loop *loop;
    struct store *store;
    ev_timer timer;        /* drives streams and the transfer's deadlines */
    struct stream streams[MAX_STREAMS];
    /* this node's transfer */
    bool waiting;          /* a request is out and not yet complete */
    bool synced_once;      /* the first transfer after start has ended */
    bool need_push;        /* our writes were dropped: push our store */
    bool reconnected;      /* the consumer reconnected during the wait */
    uint64_t session;
    double requested_at, echo_at; /* echo_at 0: not yet seen */
    double backoff, retry_at;     /* retry_at 0: no retry scheduled */
    unsigned echoes;       /* own messages back since the request */
    bool peer_seen;        /* any other node's message, ever */
    struct source sources[MAX_SOURCES];
    size_t nsources;
    /* counters */
    uint64_t started, completed, retried, failed, alone, items, served;
};

/* ---- serving: streams ---------------------------------------------------- */

static void stream_send(struct repl_sync *y, struct stream *st)
{
    repl_send(y->r, &st->buf, st->routing_key, 0);
}

static void stream_begin_msg(struct repl_sync *y, struct stream *st, enum rc_kind kind)
{
    struct rc_header h;
    repl_header(y->r, kind, &h);
    h.seq = ++st->msgs;
    h.aux = st->session;
    h.base = st->base;
    h.total = kind == RC_KIND_SYNC_DONE ? st->items : 0;
    h.target = st->target;
    h.target_len = strlen(st->target);
    st->buf.len = 0;
    rc_begin(&st->buf, &h);
}

struct stream_visit {
    struct repl_sync *y;
    struct stream *st;
    int64_t now;
};

static void stream_visit(void *arg, const struct item *it)
{
    struct stream_visit *v = arg;
    bool tomb = it->flags & ITEM_F_TOMBSTONE;
    bool dropped = !tomb && it->expire_ms && it->expire_ms <= v->now;
    if (rc_count(&v->st->buf) == 0) stream_begin_msg(v->y, v->st, RC_KIND_SYNC_DATA);
    struct rc_record rec;
    repl_record_of(it, &rec);
    if (dropped) { /* expired, not yet collected: send what a tombstone would */
        rec.op = RC_OP_EXPIRED;
        rec.value = NULL;
        rec.value_len = 0;
        rec.client_flags = 0;
    }
    if (rc_append(&v->st->buf, &rec) == 0) v->st->items++;
    if (v->st->buf.len >= REPL_BATCH_MAX_BYTES) stream_send(v->y, v->st);
}

static void streams_kick(struct repl_sync *y)
{
    ev_timer_set(&y->timer, 0.0, SYNC_STREAM_PERIOD);
    ev_timer_again(y->loop, &y->timer);
}

/* Start (or restart) a stream to routing_key; "" = a push to the pool. */
static void stream_start(struct repl_sync *y, const char *routing_key, const char *target,
                         size_t target_len, uint64_t session)
{
    struct stream *st = NULL;
    for (int i = 0; i < MAX_STREAMS; i++) { /* a new request restarts its stream */
        if (y->streams[i].active && strcmp(y->streams[i].routing_key, routing_key) == 0) {
            st = &y->streams[i];
            break;
        }
    }
    for (int i = 0; !st && i < MAX_STREAMS; i++)
        if (!y->streams[i].active) st = &y->streams[i];
    if (!st) {
        log_warn("replication: too many state transfers at once; dropping a request");
        return;
    }
    rc_buf_free(&st->buf);
    memset(st, 0, sizeof *st);
    st->active = true;
    snprintf(st->routing_key, sizeof st->routing_key, "%s", routing_key);
    memcpy(st->target, target, target_len);
    st->target[target_len] = '\0';
    st->session = session;
    st->base = repl_writes_seq(y->r);
    /* the first message at once: the requester learns who answers. It
     * carries our flush watermark, if any: the requester may have missed
     * that FLUSH (it joins after it, or it was lost), and the walk sends
     * items below the watermark as they are (a pending delayed flush, or
     * not swept yet), which it then refuses or lets die on time as we do */
    stream_begin_msg(y, st, RC_KIND_SYNC_DATA);
    uint64_t flush_ver;
    uint32_t flush_origin;
    store_flush_stamp(y->store, &flush_ver, &flush_origin);
    if (flush_ver) {
        struct rc_record rec = {.op = RC_OP_FLUSH, .version = flush_ver,
                                .origin_tag = flush_origin, .exp_version = flush_ver,
                                .exp_origin_tag = flush_origin};
        if (rc_append(&st->buf, &rec) == 0) st->items++;
    }
    stream_send(y, st);
    streams_kick(y);
}

/* Send one bounded slice of every active stream. */
static void streams_step(struct repl_sync *y, int64_t now)
{
    if (repl_outbox_backed_up(y->r)) return; /* let the publisher catch up */
    for (int i = 0; i < MAX_STREAMS; i++) {
        struct stream *st = &y->streams[i];
        if (!st->active) continue;
        struct stream_visit v = {y, st, now};
        if (!st->begun || st->cursor != 0) {
            st->begun = true;
            store_scan(y->store, &st->cursor, SYNC_SLICE, stream_visit, &v);
        }
        if (st->cursor != 0) continue;
        if (rc_count(&st->buf)) stream_send(y, st);
        stream_begin_msg(y, st, RC_KIND_SYNC_DONE);
        stream_send(y, st);
        log_info("replication: sent %" PRIu64 " items to %s", st->items,
                 st->target[0] ? st->target : "the pool");
        st->active = false;
        rc_buf_free(&st->buf);
    }
}

static bool streams_active(const struct repl_sync *y)
{
    for (int i = 0; i < MAX_STREAMS; i++)
        if (y->streams[i].active) return true;
    return false;
}

/* ---- requesting: this node's transfer ------------------------------------ */

static void finish(struct repl_sync *y, bool alone)
{
    y->waiting = false;
    y->retry_at = 0;
    y->backoff = 0;
    if (alone) {
        y->alone++;
        log_info("replication: state transfer found no other node in the pool "
                 "(our own messages come back, nobody else's): starting as its first node");
    } else {
        y->completed++;
        for (size_t i = 0; i < y->nsources; i++) {
            const struct source *so = &y->sources[i];
            repl_peer_covered(y->r, so->id, strlen(so->id), so->incarnation, so->base);
        }
        log_info("replication: state transfer complete (%zu peers answered)", y->nsources);
    }
    bool first = !y->synced_once;
    y->synced_once = true;
    repl_transfer_ended(y->r, first);
}

static void send_request(struct repl_sync *y, double now)
{
    getrandom(&y->session, sizeof y->session, 0);
    y->waiting = true;
    y->requested_at = now;
    y->echo_at = 0;
    y->echoes = 0;
    y->reconnected = false;
    y->retry_at = 0;
    y->nsources = 0;
    y->started++;
    struct rc_header h;
    repl_header(y->r, RC_KIND_SYNC_REQUEST, &h);
    h.aux = y->session;
    struct rc_buf b = {0};
    if (rc_begin(&b, &h) == 0) repl_send(y->r, &b, "", 0);
    streams_kick(y);
}

void repl_sync_request(struct repl_sync *y, const char *why)
{
    if (y->waiting) return; /* the transfer under way covers it */
    log_info("replication: state transfer requested (%s)", why);
    struct store_stats ss;
    store_get_stats(y->store, &ss);
    if (ss.curr_items + ss.tombstones > 0 || y->need_push) stream_start(y, "", "", 0, 0);
    y->need_push = false;
    send_request(y, ev_now(y->loop));
}

/* Give up on the current attempt and ask again after a backoff. */
static void retry(struct repl_sync *y, const char *why)
{
    double now = ev_now(y->loop);
    y->backoff = y->backoff ? y->backoff * 2 : SYNC_BACKOFF_MIN;
    if (y->backoff > SYNC_BACKOFF_MAX) y->backoff = SYNC_BACKOFF_MAX;
    y->retry_at = now + y->backoff;
    y->retried++;
    log_warn("replication: state transfer incomplete (%s); asking again in %.0f s", why,
             y->backoff);
}

static struct source *source_find(struct repl_sync *y, const char *id, size_t len)
{
    for (size_t i = 0; i < y->nsources; i++)
        if (strlen(y->sources[i].id) == len && memcmp(y->sources[i].id, id, len) == 0)
            return &y->sources[i];
    if (y->nsources == MAX_SOURCES) return NULL;
    struct source *so = &y->sources[y->nsources++];
    memset(so, 0, sizeof *so);
    memcpy(so->id, id, len);
    so->next_seq = 1;
    return so;
}

/* A SYNC_DATA or SYNC_DONE of our session from a peer (records counted
 * by the caller as they are applied: n of them in this message). */
static void on_answer(struct repl_sync *y, const struct rc_header *h)
{
    struct source *so = source_find(y, h->origin, h->origin_len);
    if (!so || so->done || so->failed) return;
    so->last_msg = ev_now(y->loop);
    so->incarnation = h->incarnation;
    so->base = h->base;
    if (h->version == 1) { /* an old node: no numbering, trust SYNC_DONE */
        so->records += h->count;
        if (h->kind == RC_KIND_SYNC_DONE) so->done = true;
        return;
    }
    if (h->seq != so->next_seq) {
        so->failed = true;
        y->failed++;
        log_warn("replication: state transfer from %s lost messages (got #%" PRIu64
                 ", expected #%" PRIu64 ")", so->id, h->seq, so->next_seq);
        return;
    }
    so->next_seq++;
    so->records += h->count;
    if (h->kind != RC_KIND_SYNC_DONE) return;
    if (so->records != h->total) {
        so->failed = true;
        y->failed++;
        log_warn("replication: state transfer from %s incomplete: %" PRIu64 " of %" PRIu64
                 " records arrived", so->id, so->records, h->total);
        return;
    }
    so->done = true;
}

void repl_sync_on_message(struct repl_sync *y, const struct rc_header *h, bool self)
{
    if (self) {
        if (!y->waiting) return;
        if (h->kind == RC_KIND_SYNC_REQUEST && h->aux == y->session && !y->echo_at)
            y->echo_at = ev_now(y->loop);
        if (y->echo_at) y->echoes++;
        return;
    }
    y->peer_seen = true;
    if (h->kind == RC_KIND_SYNC_REQUEST) {
        char key[RC_MAX_ID_LEN + 258]; /* the requester's queue */
        if (repl_queue_of(y->r, h->origin, h->origin_len, key, sizeof key) != 0) return;
        y->served++;
        stream_start(y, key, h->origin, h->origin_len, h->aux);
        return;
    }
    if (h->kind != RC_KIND_SYNC_DATA && h->kind != RC_KIND_SYNC_DONE) return;
    if (!y->waiting || h->aux != y->session || !repl_is_self(y->r, h->target, h->target_len))
        return;
    on_answer(y, h);
}

void repl_sync_applied(struct repl_sync *y, uint64_t items)
{
    y->items += items;
}

void repl_sync_reconnected(struct repl_sync *y)
{
    if (y->waiting) y->reconnected = true;
}

void repl_sync_push(struct repl_sync *y)
{
    y->need_push = true;
}

bool repl_sync_waiting(const struct repl_sync *y)
{
    return y->waiting;
}

/* Decide, once per tick, whether the transfer under way is complete,
 * failed, or still going. */
static void check_transfer(struct repl_sync *y, double now)
{
    if (y->retry_at) {
        if (now >= y->retry_at) send_request(y, now);
        return;
    }
    bool all_done = y->nsources > 0;
    for (size_t i = 0; i < y->nsources; i++) {
        struct source *so = &y->sources[i];
        if (so->failed) return retry(y, "a peer's transfer arrived incomplete");
        if (!so->done && now - so->last_msg > SYNC_STALL_S)
            return retry(y, "a peer's transfer stalled");
        if (!so->done) all_done = false;
    }
    if (y->reconnected && !all_done) return retry(y, "the broker link was re-established");
    if (all_done && y->echo_at && now - y->echo_at >= SYNC_GRACE_S) return finish(y, false);
    if (y->nsources == 0 && now - y->requested_at >= SYNC_WAIT_S) {
        if (y->peer_seen) return retry(y, "no peer answered");
        if (y->echo_at && y->echoes > SYNC_ALONE_ECHOES) return finish(y, true);
        /* our own messages do not come back: the link is not working yet */
    }
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct repl_sync *y = w->data;
    if (y->need_push && !y->waiting && repl_link_up(y->r))
        repl_sync_request(y, "own writes were dropped");
    streams_step(y, (int64_t)(ev_now(loop) * 1000.0));
    if (y->waiting) check_transfer(y, ev_now(loop));
    w->repeat = streams_active(y) ? SYNC_STREAM_PERIOD : SYNC_IDLE_PERIOD;
    ev_timer_again(loop, w);
}

/* ---- lifecycle and stats -------------------------------------------------- */

struct repl_sync *repl_sync_create(struct repl *r, struct ev_loop *loop, struct store *store)
{
    struct repl_sync *y = calloc(1, sizeof *y);
    if (!y) return NULL;
    y->r = r;
    y->loop = loop;
    y->store = store;
    ev_init(&y->timer, on_timer);
    y->timer.data = y;
    y->timer.repeat = SYNC_IDLE_PERIOD;
    ev_timer_again(loop, &y->timer);
    ev_unref(loop);
    return y;
}

void repl_sync_destroy(struct repl_sync *y)
{
    if (!y) return;
    ev_ref(y->loop);
    ev_timer_stop(y->loop, &y->timer);
    for (int i = 0; i < MAX_STREAMS; i++) rc_buf_free(&y->streams[i].buf);
    free(y);
}

void repl_sync_stats(const struct repl_sync *y, struct reply_queue *q)
{
    reply_printf(q, "STAT sync_started %" PRIu64 "\n", y->started);
    reply_printf(q, "STAT sync_completed %" PRIu64 "\n", y->completed);
    reply_printf(q, "STAT sync_retried %" PRIu64 "\n", y->retried);
    reply_printf(q, "STAT sync_failed %" PRIu64 "\n", y->failed);
    reply_printf(q, "STAT sync_alone %" PRIu64 "\n", y->alone);
    reply_printf(q, "STAT sync_items %" PRIu64 "\n", y->items);
    reply_printf(q, "STAT sync_served %" PRIu64 "\n", y->served);
}
