/*
 * repl.c - the event-loop side of replication (see repl.h).
 *
 * Outgoing: local writes are appended to `cur` (one batch per 1 ms: see
 * on_prepare);
 * an ev_prepare watcher, which runs just before the loop blocks, hands the
 * batch to the outbox, or drops it and counts it if the outbox is full.
 * Each batch carries (origin, incarnation, seq): seq grows by one per
 * batch, so a receiver that sees seq jump knows it lost writes.
 *
 * Incoming: the consumer thread fills the inbox and wakes us (ev_async).
 * Each batch is decoded and validated as a whole first (repl_codec.c); a
 * bad one is dropped, counted and logged once per kind of defect. Our own
 * batches (RabbitMQ ignores no-local, so they come back) are skipped by
 * origin. Every record goes through the store's LWW rule, so applying a
 * redelivered or reordered batch changes nothing.
 */
#include "repl.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "command.h"
#include "log.h"
#include "reply.h"
#include "repl_internal.h"
#include "store.h"

#define BATCH_MAX_BYTES (256u << 10)
#define APPLY_MAX_PER_TURN 64 /* messages applied before yielding to clients */
#define SYNC_SLICE 2048          /* items a stream sends per step */
#define SYNC_STREAM_PERIOD 0.001 /* s between steps while streaming */
#define SYNC_IDLE_PERIOD 0.25    /* s between checks otherwise */
#define SYNC_WAIT_S 3.0          /* a request nobody answers for this long is over */
#define SYNC_RETRY_S 5.0         /* at most one new request per this while syncing */

static int64_t loop_ms(struct repl *r) { return (int64_t)(ev_now(r->loop) * 1000.0); }

/* Hand the current batch to the publisher (or drop it if the outbox is full). */
static void flush_cur(struct repl *r)
{
    uint32_t n = rc_count(&r->cur);
    if (n == 0) return;
    struct repl_msg *m = calloc(1, sizeof *m);
    if (!m) {
        r->outbox_dropped += n;
        rc_buf_free(&r->cur);
        return;
    }
    m->data = r->cur.data;
    m->len = r->cur.len;
    m->writes = n;
    m->seq = r->next_seq;
    memset(&r->cur, 0, sizeof r->cur);
    pthread_mutex_lock(&r->mu);
    /* confirm mode never drops (a dropped batch is never confirmed):
     * repl_write_allowed() keeps the outbox near its bound instead */
    bool full = !r->cfg.confirm && r->outbox.bytes + m->len > r->cfg.outbox_bytes;
    if (!full) {
        repl_list_push(&r->outbox, m);
        r->handed++;
        pthread_cond_signal(&r->outbox_cv);
    }
    pthread_mutex_unlock(&r->mu);
    if (full) {
        if (r->outbox_dropped == 0)
            log_warn("replication: outbox full (%zu bytes); dropping writes until the broker is back",
                     r->cfg.outbox_bytes);
        r->outbox_dropped += n;
        r->need_push = true; /* peers miss these: push our store when back */
        repl_msg_free(m);
    }
}

/* Queue an encoded message for the publisher; routing_key "" = fanout;
 * seq = its WRITES sequence number, 0 for sync traffic. */
static void outbox_put(struct repl *r, struct rc_buf *b, const char *routing_key,
                       uint64_t seq)
{
    struct repl_msg *m = calloc(1, sizeof *m);
    if (!m) {
        rc_buf_free(b);
        return;
    }
    m->data = b->data;
    m->len = b->len;
    m->seq = seq;
    snprintf(m->routing_key, sizeof m->routing_key, "%s", routing_key);
    memset(b, 0, sizeof *b);
    pthread_mutex_lock(&r->mu);
    repl_list_push(&r->outbox, m);
    r->handed++;
    pthread_cond_signal(&r->outbox_cv);
    pthread_mutex_unlock(&r->mu);
}

/*
 * Group commit: a batch goes to the outbox at most every LINGER_S (or once
 * it reaches LINGER_BYTES), not once per loop turn. Under paced load a turn
 * holds only a few writes, and one AMQP message per turn costs the broker
 * more than the writes themselves (lag grew to 400 ms at 50k writes/s;
 * with the linger it is ~6 ms). Confirm mode never waits: its clients do.
 */
#define LINGER_S 0.001
#define LINGER_BYTES (64u << 10)
static void on_linger(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct repl *r = w->data;
    r->last_flush = ev_now(loop);
    flush_cur(r);
}

static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)revents;
    struct repl *r = w->data;
    if (rc_count(&r->cur) == 0) return;
    double now = ev_now(loop);
    if (r->cfg.confirm || r->cur.len >= LINGER_BYTES || now - r->last_flush >= LINGER_S) {
        ev_timer_stop(loop, &r->linger);
        r->last_flush = now;
        flush_cur(r);
        return;
    }
    if (!ev_is_active(&r->linger)) {
        ev_timer_set(&r->linger, LINGER_S - (now - r->last_flush), 0.0);
        ev_timer_start(loop, &r->linger);
    }
}

bool repl_write_allowed(struct repl *r)
{
    if (!r->cfg.confirm) return true;
    pthread_mutex_lock(&r->mu);
    bool ok = r->outbox.bytes + r->cur.len < r->cfg.outbox_bytes;
    pthread_mutex_unlock(&r->mu);
    return ok;
}

uint64_t repl_local_write(struct repl *r, const struct command_write *w)
{
    if (rc_count(&r->cur) == 0) {
        struct rc_header h = {
            .kind = RC_KIND_WRITES,
            .origin = r->node_id,
            .origin_len = strlen(r->node_id),
            .incarnation = r->incarnation,
            .seq = ++r->next_seq,
        };
        r->cur.len = 0;
        if (rc_begin(&r->cur, &h) != 0) goto nomem;
    }
    struct rc_record rec = {
        .op = w->op == COMMAND_WRITE_SET ? RC_OP_SET
              : w->op == COMMAND_WRITE_DEL ? RC_OP_DEL : RC_OP_EXPIRE,
        .key = w->key,
        .key_len = w->key_len,
        .value = w->value,
        .value_len = w->op == COMMAND_WRITE_DEL ? 0 : w->value_len,
        .expire_ms = w->expire_ms,
        .version = w->version,
        .origin_tag = w->origin,
    };
    if (rc_append(&r->cur, &rec) != 0) goto nomem;
    uint64_t seq = r->next_seq;
    if (r->cur.len >= BATCH_MAX_BYTES) flush_cur(r);
    return seq;
nomem:
    r->outbox_dropped++;
    log_error("replication: out of memory batching a write");
    return r->next_seq;
}

/* ---- state transfer ---- */

static void stream_flush(struct repl *r, struct repl_stream *st)
{
    if (rc_count(&st->buf)) outbox_put(r, &st->buf, st->routing_key, 0);
}

static void stream_begin_batch(struct repl *r, struct repl_stream *st, enum rc_kind kind)
{
    struct rc_header h = {
        .kind = kind,
        .origin = r->node_id,
        .origin_len = strlen(r->node_id),
        .incarnation = r->incarnation,
        .aux = st->session,
        .target = st->target,
        .target_len = strlen(st->target),
    };
    st->buf.len = 0;
    rc_begin(&st->buf, &h);
}

struct stream_visit {
    struct repl *r;
    struct repl_stream *st;
    int64_t now;
};

static void stream_visit(void *arg, const struct item *it)
{
    struct stream_visit *v = arg;
    bool tomb = it->flags & ITEM_F_TOMBSTONE;
    if (!tomb && it->expire_ms && it->expire_ms <= v->now) return; /* expiring anyway */
    if (rc_count(&v->st->buf) == 0) stream_begin_batch(v->r, v->st, RC_KIND_SYNC_DATA);
    struct rc_record rec = {
        .op = tomb ? RC_OP_DEL : RC_OP_SET,
        .key = item_key(it),
        .key_len = it->key_len,
        .value = tomb ? NULL : item_value(it),
        .value_len = tomb ? 0 : it->value_len,
        .expire_ms = tomb ? 0 : it->expire_ms,
        .version = it->version,
        .origin_tag = it->origin,
    };
    if (rc_append(&v->st->buf, &rec) == 0) v->st->items++;
    if (v->st->buf.len >= BATCH_MAX_BYTES) stream_flush(v->r, v->st);
}

static void stream_start(struct repl *r, const char *routing_key, const char *target,
                         size_t target_len, uint64_t session)
{
    struct repl_stream *st = NULL;
    for (int i = 0; i < REPL_MAX_STREAMS; i++) { /* a new request restarts its stream */
        if (r->streams[i].active && strcmp(r->streams[i].routing_key, routing_key) == 0) {
            st = &r->streams[i];
            break;
        }
    }
    for (int i = 0; !st && i < REPL_MAX_STREAMS; i++)
        if (!r->streams[i].active) st = &r->streams[i];
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
    ev_timer_set(&r->sync_timer, 0.0, SYNC_STREAM_PERIOD);
    ev_timer_again(r->loop, &r->sync_timer);
}

/* Send one bounded slice of every active stream. */
static void streams_step(struct repl *r, int64_t now)
{
    pthread_mutex_lock(&r->mu);
    bool backed_up = r->outbox.bytes > r->cfg.outbox_bytes / 2;
    pthread_mutex_unlock(&r->mu);
    if (backed_up) return; /* let the publisher catch up; never drop sync data */
    for (int i = 0; i < REPL_MAX_STREAMS; i++) {
        struct repl_stream *st = &r->streams[i];
        if (!st->active) continue;
        struct stream_visit v = {r, st, now};
        if (!st->begun || st->cursor != 0) {
            st->begun = true;
            store_scan(r->store, &st->cursor, SYNC_SLICE, stream_visit, &v);
        }
        if (st->cursor != 0) continue;
        stream_flush(r, st);
        stream_begin_batch(r, st, RC_KIND_SYNC_DONE);
        outbox_put(r, &st->buf, st->routing_key, 0);
        log_info("replication: sent %" PRIu64 " items to %s", st->items,
                 st->target[0] ? st->target : "the pool");
        st->active = false;
        rc_buf_free(&st->buf);
    }
}

static bool streams_active(const struct repl *r)
{
    for (int i = 0; i < REPL_MAX_STREAMS; i++)
        if (r->streams[i].active) return true;
    return false;
}

static void sync_finish(struct repl *r, bool answered)
{
    r->syncing = false;
    if (answered) r->sync_completed++;
    log_info("replication: state transfer %s", answered ? "complete" : "found no peer to answer");
    if (!r->synced_once) {
        r->synced_once = true;
        if (r->cfg.synced_hook) r->cfg.synced_hook(r->cfg.synced_hook_arg);
    }
}

/* Ask the pool for its data and push ours to it. */
static void sync_request(struct repl *r, const char *why)
{
    double now = ev_now(r->loop);
    if (r->syncing && now - r->last_request < SYNC_RETRY_S) return;
    r->last_request = now;
    r->syncing = true;
    r->sync_started++;
    r->sync_deadline = now + SYNC_WAIT_S;
    getrandom(&r->sync_session, sizeof r->sync_session, 0);
    log_info("replication: state transfer requested (%s)", why);
    struct rc_buf b = {0};
    struct rc_header h = {
        .kind = RC_KIND_SYNC_REQUEST,
        .origin = r->node_id,
        .origin_len = strlen(r->node_id),
        .incarnation = r->incarnation,
        .aux = r->sync_session,
    };
    if (rc_begin(&b, &h) == 0) outbox_put(r, &b, "", 0);
    struct store_stats ss;
    store_get_stats(r->store, &ss);
    if (ss.curr_items + ss.tombstones > 0 || r->need_push) stream_start(r, "", "", 0, 0);
    r->need_push = false;
    ev_timer_set(&r->sync_timer, 0.0, SYNC_STREAM_PERIOD);
    ev_timer_again(r->loop, &r->sync_timer);
}

/*
 * After each publisher (re)connect, an empty WRITES batch: it takes the next
 * sequence number, so if the broker lost batches of ours (a restart drops
 * transient messages), every receiver sees the gap now, even if we write
 * nothing more, and asks for a state transfer.
 */
static void send_beacon(struct repl *r)
{
    struct rc_header h = {
        .kind = RC_KIND_WRITES,
        .origin = r->node_id,
        .origin_len = strlen(r->node_id),
        .incarnation = r->incarnation,
        .seq = ++r->next_seq,
    };
    struct rc_buf b = {0};
    if (rc_begin(&b, &h) == 0) outbox_put(r, &b, "", h.seq);
}

static void on_sync_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct repl *r = w->data;
    if (r->need_push && atomic_load(&r->pub_up) && !r->syncing) sync_request(r, "own writes were dropped");

    streams_step(r, loop_ms(r));
    if (r->syncing && ev_now(loop) > r->sync_deadline) sync_finish(r, false);
    w->repeat = streams_active(r) ? SYNC_STREAM_PERIOD : SYNC_IDLE_PERIOD;
    ev_timer_again(loop, w);
}

static void on_sync_message(struct repl *r, const struct rc_header *h)
{
    bool for_me = h->target_len == strlen(r->node_id) &&
                  memcmp(h->target, r->node_id, h->target_len) == 0;
    if (h->kind == RC_KIND_SYNC_REQUEST) {
        char key[256]; /* the requester's queue: "<exchange>.<node id>" */
        size_t el = strlen(r->exchange);
        if (el + 1 + h->origin_len >= sizeof key) return;
        memcpy(key, r->exchange, el);
        key[el] = '.';
        memcpy(key + el + 1, h->origin, h->origin_len);
        key[el + 1 + h->origin_len] = '\0';
        r->sync_served++;
        stream_start(r, key, h->origin, h->origin_len, h->aux);
        return;
    }
    if (!for_me || !r->syncing || h->aux != r->sync_session) return;
    r->sync_deadline = ev_now(r->loop) + SYNC_WAIT_S; /* data flows: keep waiting */
    if (h->kind == RC_KIND_SYNC_DONE) sync_finish(r, true);
}

/* ---- incoming ---- */

static struct repl_peer *peer_find(struct repl *r, const char *id, size_t len)
{
    for (size_t i = 0; i < r->npeers; i++)
        if (strlen(r->peers[i].id) == len && memcmp(r->peers[i].id, id, len) == 0)
            return &r->peers[i];
    if (r->npeers == REPL_MAX_PEERS) return NULL;
    struct repl_peer *p = &r->peers[r->npeers++];
    memset(p, 0, sizeof *p);
    memcpy(p->id, id, len);
    return p;
}

/* Track the per-origin sequence of WRITES batches; count gaps. */
static void track_seq(struct repl *r, const struct rc_header *h)
{
    struct repl_peer *p = peer_find(r, h->origin, h->origin_len);
    if (!p) return;
    if (p->incarnation == h->incarnation && p->last_seq) {
        if (h->seq > p->last_seq + 1) {
            r->gaps++;
            log_warn("replication: lost %" PRIu64 " batches from %s",
                     h->seq - p->last_seq - 1, p->id);
            sync_request(r, "sequence gap");
        }
        if (h->seq <= p->last_seq) return; /* redelivery */
    }
    p->incarnation = h->incarnation;
    p->last_seq = h->seq;
}

static void apply_record(struct repl *r, const struct rc_record *rec, int64_t now,
                         bool live)
{
    hlc_observe(r->hlc, rec->version);
    enum store_status st;
    if (rec->op == RC_OP_DEL)
        st = store_del(r->store, rec->key, rec->key_len, rec->version, rec->origin_tag, now);
    else
        st = store_set(r->store, rec->key, rec->key_len, rec->value, rec->value_len,
                       rec->expire_ms, rec->version, rec->origin_tag, now);
    if (st == STORE_STALE) {
        r->stale++;
        return;
    }
    r->applied++;
    if (rec->expire_ms && r->cfg.applied_hook)
        r->cfg.applied_hook(r->cfg.applied_hook_arg, rec->expire_ms);
    if (!live) {
        r->sync_items++;
        return;
    }
    int64_t lag = now - hlc_physical_ms(rec->version);
    if (lag < 0) lag = 0;
    r->lag_last_ms = (uint64_t)lag;
    if ((uint64_t)lag > r->lag_max_ms) r->lag_max_ms = (uint64_t)lag;
    r->lag_sum_ms += (uint64_t)lag;
    r->lag_count++;
}

static void process_msg(struct repl *r, const struct repl_msg *m, int64_t now)
{
    struct rc_header h;
    struct rc_reader rd;
    enum rc_status st = rc_decode(m->data, m->len, &h, &rd);
    if (st != RC_OK) {
        r->malformed++;
        if (!(r->malformed_logged & (1u << st))) {
            r->malformed_logged |= 1u << st;
            log_warn("replication: dropped a malformed message (%s, %zu bytes); "
                     "further ones of this kind are only counted", rc_status_name(st), m->len);
        }
        return;
    }
    if (h.origin_len == strlen(r->node_id) && memcmp(h.origin, r->node_id, h.origin_len) == 0) {
        r->self_skipped++;
        return;
    }
    r->received++;
    if (h.kind == RC_KIND_WRITES) track_seq(r, &h);
    else on_sync_message(r, &h);
    if (h.kind != RC_KIND_WRITES && h.kind != RC_KIND_SYNC_DATA) return;
    if (h.kind == RC_KIND_SYNC_DATA && h.target_len &&
        !(h.target_len == strlen(r->node_id) && memcmp(h.target, r->node_id, h.target_len) == 0))
        return; /* a transfer meant for another node */
    struct rc_record rec;
    while (rc_next(&rd, &rec)) apply_record(r, &rec, now, h.kind == RC_KIND_WRITES);
}

static void on_inbox(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop;
    (void)revents;
    struct repl *r = w->data;
    /* A (re)connected consumer: a new process has nothing and asks; a node
     * whose queue survived gets what it missed from the queue's backlog
     * (a lost message shows up as a sequence gap); only a queue that is
     * gone means data is lost for sure. */
    uint64_t pubs = atomic_load(&r->pub_events);
    if (pubs != r->pub_events_seen) {
        r->pub_events_seen = pubs;
        if (rc_count(&r->cur) == 0) send_beacon(r); /* else cur carries the seq */
    }
    uint64_t events = atomic_load(&r->con_events);
    uint64_t losses = atomic_load(&r->queue_losses);
    if (events != r->con_events_seen) {
        bool first = r->con_events_seen == 0;
        r->con_events_seen = events;
        if (first)
            sync_request(r, "joining the pool");
        else if (losses != r->queue_losses_seen)
            sync_request(r, "this node's queue was lost");
        r->queue_losses_seen = losses;
    }
    int64_t now = loop_ms(r);
    uint64_t gen = 0, tag = 0;
    bool more = false;
    for (int i = 0; i < APPLY_MAX_PER_TURN; i++) {
        pthread_mutex_lock(&r->mu);
        struct repl_msg *m = repl_list_pop(&r->inbox);
        more = r->inbox.head != NULL;
        pthread_mutex_unlock(&r->mu);
        if (!m) break;
        process_msg(r, m, now);
        gen = m->gen;
        tag = m->tag;
        repl_msg_free(m);
    }
    if (tag) {
        pthread_mutex_lock(&r->mu);
        r->ack_gen = gen;
        r->ack_tag = tag;
        pthread_mutex_unlock(&r->mu);
    }
    if (more) ev_async_send(r->loop, &r->inbox_async); /* the rest next turn */
}

static void on_confirm(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop;
    (void)revents;
    struct repl *r = w->data;
    uint64_t seq = atomic_load(&r->confirmed_seq);
    if (seq != r->last_confirmed) {
        r->last_confirmed = seq;
        if (r->cfg.confirmed_hook) r->cfg.confirmed_hook(r->cfg.confirmed_hook_arg, seq);
    }
}

/* ---- lifecycle ---- */

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

struct repl *repl_create(struct ev_loop *loop, const struct repl_config *cfg,
                         struct store *store, struct hlc *hlc)
{
    struct repl *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->cfg = *cfg;
    r->loop = loop;
    r->store = store;
    r->hlc = hlc;
    copy_str(r->node_id, sizeof r->node_id, cfg->node_id);
    copy_str(r->exchange, sizeof r->exchange, cfg->exchange);
    copy_str(r->host, sizeof r->host, cfg->host);
    copy_str(r->user, sizeof r->user, cfg->user);
    copy_str(r->password, sizeof r->password, cfg->password);
    copy_str(r->vhost, sizeof r->vhost, cfg->vhost);
    if (cfg->cacert) copy_str(r->cacert, sizeof r->cacert, cfg->cacert);
    if (cfg->cert) copy_str(r->cert, sizeof r->cert, cfg->cert);
    if (cfg->key) copy_str(r->key, sizeof r->key, cfg->key);
    r->cfg.cacert = r->cfg.cert = r->cfg.key = NULL; /* use the copies */
    snprintf(r->queue, sizeof r->queue, "%s.%s", r->exchange, r->node_id);
    r->cfg.node_id = r->node_id;
    if (getrandom(&r->incarnation, sizeof r->incarnation, 0) != sizeof r->incarnation)
        r->incarnation = (uint64_t)time(NULL) ^ ((uint64_t)(uintptr_t)r << 16);
    srand((unsigned)r->incarnation);

    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->outbox_cv, &ca);
    pthread_condattr_destroy(&ca);

    ev_timer_init(&r->linger, on_linger, 0.0, 0.0);
    r->linger.data = r;
    ev_prepare_init(&r->flush_prepare, on_prepare);
    r->flush_prepare.data = r;
    ev_prepare_start(loop, &r->flush_prepare);
    ev_unref(loop);
    ev_async_init(&r->inbox_async, on_inbox);
    r->inbox_async.data = r;
    ev_async_start(loop, &r->inbox_async);
    ev_unref(loop);
    ev_async_init(&r->confirm_async, on_confirm);
    r->confirm_async.data = r;
    ev_async_start(loop, &r->confirm_async);
    ev_unref(loop);
    ev_init(&r->sync_timer, on_sync_timer);
    r->sync_timer.data = r;
    r->sync_timer.repeat = SYNC_IDLE_PERIOD;
    ev_timer_again(loop, &r->sync_timer);
    ev_unref(loop);

    if (repl_link_start(r) != 0) {
        log_error("replication: cannot start broker threads");
        repl_destroy(r);
        return NULL;
    }
    log_info("replication: node '%s' joining exchange '%s' on %s:%u%s", r->node_id,
             r->exchange, r->host, cfg->port,
             !cfg->tls ? "" : cfg->tls_verify ? " over TLS (broker certificate and name verified)"
                                              : " over TLS (NOT verified: --rabbitmq_tls_verify=no)");
    if (cfg->tls && !cfg->tls_verify)
        log_warn("replication: the broker's TLS certificate is not checked: anyone on the "
                 "path can pose as the broker and read or inject replicated writes");
    return r;
}

void repl_shutdown(struct repl *r, double timeout)
{
    flush_cur(r);
    pthread_mutex_lock(&r->mu);
    r->draining = true;
    r->stop = true;
    pthread_cond_broadcast(&r->outbox_cv);
    pthread_mutex_unlock(&r->mu);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        pthread_mutex_lock(&r->mu);
        uint64_t handed = r->handed;
        pthread_mutex_unlock(&r->mu);
        clock_gettime(CLOCK_MONOTONIC, &now);
        double waited = (double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9;
        /* done when the broker confirmed every message we gave the publisher */
        if (atomic_load(&r->published_batches) >= handed || waited >= timeout) break;
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&r->mu);
    r->draining = false; /* whatever is left now stays unsent */
    pthread_cond_broadcast(&r->outbox_cv);
    pthread_mutex_unlock(&r->mu);
    repl_link_stop(r);
    pthread_mutex_lock(&r->mu);
    uint64_t left = r->outbox.writes;
    pthread_mutex_unlock(&r->mu);
    if (left || r->outbox_dropped)
        log_warn("replication: shutdown with %" PRIu64 " writes not published "
                 "(%" PRIu64 " dropped earlier by a full outbox)", left, r->outbox_dropped);
    else
        log_info("replication: outbox published; %" PRIu64 " writes in all",
                 atomic_load(&r->published_writes));
}

void repl_destroy(struct repl *r)
{
    if (!r) return;
    repl_link_stop(r);
    ev_ref(r->loop);
    ev_prepare_stop(r->loop, &r->flush_prepare);
    ev_timer_stop(r->loop, &r->linger);
    ev_ref(r->loop);
    ev_async_stop(r->loop, &r->inbox_async);
    ev_ref(r->loop);
    ev_async_stop(r->loop, &r->confirm_async);
    ev_ref(r->loop);
    ev_timer_stop(r->loop, &r->sync_timer);
    for (int i = 0; i < REPL_MAX_STREAMS; i++) rc_buf_free(&r->streams[i].buf);
    struct repl_msg *m;
    while ((m = repl_list_pop(&r->outbox))) repl_msg_free(m);
    while ((m = repl_list_pop(&r->inbox))) repl_msg_free(m);
    rc_buf_free(&r->cur);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->outbox_cv);
    free(r);
}

static const char *state_name(const struct repl *r)
{
    bool pub = atomic_load(&r->pub_up), con = atomic_load(&r->con_up);
    if (pub && con) return r->syncing ? "syncing" : "up";
    if (!atomic_load(&r->ever_up)) return "connecting";
    return "down";
}

void repl_stats(const struct repl *r, struct reply_queue *q)
{
    struct repl *mr = (struct repl *)r; /* the lock is not part of the state */
    pthread_mutex_lock(&mr->mu);
    uint64_t queued = r->outbox.writes, outbox_bytes = r->outbox.bytes;
    pthread_mutex_unlock(&mr->mu);
    queued += rc_count(&r->cur);
    reply_printf(q, "STAT repl_state %s\n", state_name(r));
    reply_printf(q, "STAT node_id %s\n", r->node_id);
    reply_printf(q, "STAT repl_published %" PRIu64 "\n", (uint64_t)atomic_load(&r->published_writes));
    reply_printf(q, "STAT repl_batches_published %" PRIu64 "\n", (uint64_t)atomic_load(&r->published_batches));
    reply_printf(q, "STAT repl_received %" PRIu64 "\n", r->received);
    reply_printf(q, "STAT repl_applied %" PRIu64 "\n", r->applied);
    reply_printf(q, "STAT repl_stale %" PRIu64 "\n", r->stale);
    reply_printf(q, "STAT repl_malformed %" PRIu64 "\n", r->malformed);
    reply_printf(q, "STAT repl_self_skipped %" PRIu64 "\n", r->self_skipped);
    reply_printf(q, "STAT repl_gaps %" PRIu64 "\n", r->gaps);
    reply_printf(q, "STAT repl_queue %" PRIu64 "\n", queued);
    reply_printf(q, "STAT repl_outbox_bytes %" PRIu64 "\n", outbox_bytes);
    reply_printf(q, "STAT repl_outbox_dropped %" PRIu64 "\n", r->outbox_dropped);
    reply_printf(q, "STAT repl_reconnects %" PRIu64 "\n", (uint64_t)atomic_load(&r->reconnects));
    reply_printf(q, "STAT repl_lag_ms_last %" PRIu64 "\n", r->lag_last_ms);
    reply_printf(q, "STAT repl_lag_ms_avg %" PRIu64 "\n", r->lag_count ? r->lag_sum_ms / r->lag_count : 0);
    reply_printf(q, "STAT repl_lag_ms_max %" PRIu64 "\n", r->lag_max_ms);
    reply_printf(q, "STAT repl_confirmed_seq %" PRIu64 "\n", (uint64_t)atomic_load(&r->confirmed_seq));
    reply_printf(q, "STAT sync_started %" PRIu64 "\n", r->sync_started);
    reply_printf(q, "STAT sync_completed %" PRIu64 "\n", r->sync_completed);
    reply_printf(q, "STAT sync_items %" PRIu64 "\n", r->sync_items);
    reply_printf(q, "STAT sync_served %" PRIu64 "\n", r->sync_served);
}
