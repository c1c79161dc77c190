/*
 * repl.c - the event-loop side of replication (see repl.h).
 *
 * Owns: the batch being filled, applying received batches, the beacon, and
 * the loop's counters. Which batches of a peer were lost is seqtrack.c (a
 * loss asks for a state transfer); state transfer is repl_sync.c; the
 * broker threads are repl_link.c (they see only struct repl_bus,
 * repl_internal.h).
 *
 * Outgoing: local writes are appended to `cur` (group commit: see
 * on_prepare); the batch then moves to the outbox, or is dropped and counted
 * if the outbox is full (never in confirm mode). Each WRITES batch carries
 * (origin, incarnation, seq): seq grows by one per batch, so a receiver
 * that sees seq jump knows it lost writes. An empty WRITES batch (a beacon)
 * takes the next number: after each publisher (re)connect (the broker may
 * have lost batches of ours), BEACON_S after the last batch of a burst (so
 * the loss of a burst's tail is seen without waiting for the next write),
 * and every WAIT_BEACON_S while our state transfer waits (our own beacons
 * coming back tell it that the link works).
 *
 * Incoming: the consumer thread fills the inbox and wakes us (ev_async).
 * Each batch is decoded and validated as a whole first (repl_codec.c); a
 * bad one is dropped, counted and logged once per kind of defect. Our own
 * batches (RabbitMQ ignores no-local, so they come back) are skipped by
 * origin. Every record goes through the store's merge (store_write), so
 * applying a redelivered or reordered batch changes nothing.
 *
 * Gaps: each WRITES batch (beacons too) goes through seqtrack_batch; the
 * rules, across incarnations and during our own transfer, are in
 * seqtrack.h. Lost batches ask for a state transfer (on_gap).
 */
#include "repl.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "hlc.h"
#include "log.h"
#include "record.h"
#include "repl_internal.h"
#include "seqtrack.h"
#include "stats.h"
#include "store.h"

#define APPLY_MAX_PER_TURN 64 /* messages applied before yielding to clients */
#define BEACON_S 1.0          /* a beacon this long after a burst of writes */
#define GAP_GRACE_S 3.0       /* skipped batches may still arrive this long */
#define WAIT_BEACON_S 0.5     /* beacon period while our transfer waits */

struct repl {
    struct repl_bus bus;  /* shared with the broker threads */
    struct repl_sync *sync;
    struct store *store;
    struct hlc *hlc;
    uint64_t incarnation; /* random per process start */

    struct rc_buf cur;    /* batch being filled */
    uint64_t next_seq;    /* number of the last WRITES batch begun */
    ev_prepare flush_prepare;
    ev_timer linger;      /* group commit: flushes cur within LINGER_S */
    double last_flush;    /* ev_now of the last flush of cur */
    ev_timer beacon;      /* every WAIT_BEACON_S: beacons (see above), watchdog */
    double last_traffic;  /* ev_now a batch of writes went out or was applied */
    double last_writes;   /* ev_now a WRITES batch (or beacon) last went out */
    bool tail_due;        /* writes went out since the last beacon */
    struct seqtrack *seq; /* which batches of each peer were lost */
    uint64_t con_events_seen, queue_losses_seen, pub_events_seen;
    uint64_t last_confirmed; /* confirmed seq last reported to the hook */
    uint64_t malformed_logged; /* bit per rc_status already logged */
    /* counters */
    uint64_t applied, stale, malformed, self_skipped, received, gaps, flushes;
    uint64_t beacons_sent, beacons_received;
    uint64_t duplicates;       /* WRITES batches received again (republished) */
    uint64_t lag_last_ms, lag_max_ms, lag_sum_ms, lag_count;
    uint64_t outbox_dropped;   /* writes dropped because the outbox was full */
};

static int64_t loop_ms(const struct repl *r) { return (int64_t)(ev_now(r->bus.loop) * 1000.0); }

/* ---- helpers shared with repl_sync.c ---- */

void repl_header(const struct repl *r, enum rc_kind kind, struct rc_header *h)
{
    memset(h, 0, sizeof *h);
    h->kind = kind;
    h->origin = r->bus.node_id;
    h->origin_len = strlen(r->bus.node_id);
    h->incarnation = r->incarnation;
}

bool repl_is_self(const struct repl *r, const char *id, size_t len)
{
    return len == strlen(r->bus.node_id) && memcmp(id, r->bus.node_id, len) == 0;
}

int repl_queue_of(const struct repl *r, const char *id, size_t len, char *out, size_t cap)
{
    size_t el = strlen(r->bus.exchange);
    if (el + 1 + len >= cap) return -1;
    memcpy(out, r->bus.exchange, el);
    out[el] = '.';
    memcpy(out + el + 1, id, len);
    out[el + 1 + len] = '\0';
    return 0;
}

/* Queue a message for the publisher; with drop_if_full (async WRITES),
 * a full outbox drops it instead. Returns false if dropped. */
static bool outbox_put(struct repl *r, struct rc_buf *b, const char *routing_key,
                       uint64_t seq, uint32_t writes, bool drop_if_full)
{
    struct repl_bus *bus = &r->bus;
    struct repl_msg *m = calloc(1, sizeof *m);
    if (!m) {
        rc_buf_free(b);
        return false;
    }
    m->data = b->data;
    m->len = b->len;
    m->seq = seq;
    m->writes = writes;
    snprintf(m->routing_key, sizeof m->routing_key, "%s", routing_key);
    memset(b, 0, sizeof *b);
    pthread_mutex_lock(&bus->mu);
    bool full = drop_if_full && bus->outbox.bytes + m->len > bus->cfg.outbox_bytes;
    if (!full) {
        repl_list_push(&bus->outbox, m);
        bus->handed++;
        pthread_cond_signal(&bus->outbox_cv);
    }
    pthread_mutex_unlock(&bus->mu);
    if (full) repl_msg_free(m);
    if (seq && !full) {
        r->last_writes = ev_now(bus->loop);
        r->tail_due = writes > 0;
        if (writes) r->last_traffic = r->last_writes;
    }
    return !full;
}

void repl_send(struct repl *r, struct rc_buf *b, const char *routing_key, uint64_t seq)
{
    outbox_put(r, b, routing_key, seq, 0, false);
}

bool repl_outbox_backed_up(struct repl *r)
{
    pthread_mutex_lock(&r->bus.mu);
    bool backed_up = r->bus.outbox.bytes > r->bus.cfg.outbox_bytes / 2;
    pthread_mutex_unlock(&r->bus.mu);
    return backed_up;
}

bool repl_link_up(const struct repl *r)
{
    return atomic_load(&r->bus.pub_up);
}

uint64_t repl_writes_seq(const struct repl *r)
{
    /* not the batch being filled: writes appended to it after a transfer
     * began may be missed by that transfer's walk */
    return r->next_seq - (rc_count(&r->cur) > 0);
}


/* ---- outgoing ---- */

/* Hand the current batch to the publisher (or drop it if the outbox is full). */
static void flush_cur(struct repl *r)
{
    uint32_t n = rc_count(&r->cur);
    if (n == 0) return;
    /* confirm mode never drops (a dropped batch is never confirmed):
     * repl_write_allowed() keeps the outbox near its bound instead */
    if (outbox_put(r, &r->cur, "", r->next_seq, n, !r->bus.cfg.confirm)) return;
    if (r->outbox_dropped == 0)
        log_warn("replication: outbox full (%zu bytes); dropping writes until the broker is back",
                 r->bus.cfg.outbox_bytes);
    r->outbox_dropped += n;
    repl_sync_push(r->sync); /* peers miss these: push our store when back */
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
    if (r->bus.cfg.confirm || r->cur.len >= LINGER_BYTES || now - r->last_flush >= LINGER_S) {
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
    if (!r->bus.cfg.confirm) return true;
    pthread_mutex_lock(&r->bus.mu);
    bool ok = r->bus.outbox.bytes + r->cur.len < r->bus.cfg.outbox_bytes;
    pthread_mutex_unlock(&r->bus.mu);
    return ok;
}

/* Append rec to the batch being filled. Returns its batch number. */
static uint64_t batch_append(struct repl *r, const struct rc_record *rec)
{
    if (rc_count(&r->cur) == 0) {
        struct rc_header h;
        repl_header(r, RC_KIND_WRITES, &h);
        h.seq = ++r->next_seq;
        r->cur.len = 0;
        if (rc_begin(&r->cur, &h) != 0) goto nomem;
    }
    if (rc_append(&r->cur, rec) != 0) goto nomem;
    uint64_t seq = r->next_seq;
    if (r->cur.len >= REPL_BATCH_MAX_BYTES) flush_cur(r);
    return seq;
nomem:
    r->outbox_dropped++;
    log_error("replication: out of memory batching a write");
    repl_sync_push(r->sync);
    return r->next_seq;
}

static uint64_t local_record(struct repl *r, const struct store_write *w, enum rc_op op)
{
    struct rc_record rec = {
        .op = w->tomb ? RC_OP_DEL : op,
        .key = w->key,
        .key_len = w->key_len,
        .value = w->tomb ? NULL : w->value,
        .value_len = w->tomb ? 0 : w->value_len,
        .client_flags = w->tomb ? 0 : w->client_flags,
        .expire_ms = w->tomb ? 0 : w->expire_ms,
        .version = w->version,
        .origin_tag = w->origin,
        .exp_version = w->exp_version,
        .exp_origin_tag = w->exp_origin,
    };
    return batch_append(r, &rec);
}

uint64_t repl_local_write(struct repl *r, const struct store_write *w)
{
    return local_record(r, w, RC_OP_SET);
}

uint64_t repl_local_touch(struct repl *r, const struct store_write *w)
{
    return local_record(r, w, RC_OP_EXPIRE);
}

uint64_t repl_local_flush(struct repl *r, uint64_t version, uint32_t origin)
{
    struct rc_record rec = {.op = RC_OP_FLUSH, .version = version, .origin_tag = origin,
                            .exp_version = version, .exp_origin_tag = origin};
    return batch_append(r, &rec);
}

/* An empty WRITES batch: it takes the next sequence number. */
static void send_beacon(struct repl *r)
{
    struct rc_header h;
    repl_header(r, RC_KIND_WRITES, &h);
    h.seq = ++r->next_seq;
    struct rc_buf b = {0};
    if (rc_begin(&b, &h) == 0 && outbox_put(r, &b, "", h.seq, 0, false)) r->beacons_sent++;
}

static void on_beacon(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct repl *r = w->data;
    bool waiting = repl_sync_waiting(r->sync);
    double period = waiting ? WAIT_BEACON_S : BEACON_S;
    double idle = ev_now(loop) - r->last_writes;
    if (idle >= period && (waiting || r->tail_due) && rc_count(&r->cur) == 0 &&
        repl_link_up(r))
        send_beacon(r);
    repl_watchdog(&r->bus);
    seqtrack_expire(r->seq, ev_now(loop));
    w->repeat = WAIT_BEACON_S;
    ev_timer_again(loop, w);
}

/* ---- incoming ---- */

/* seqtrack's gap callback: batches of `peer` were lost. */
static void on_gap(void *arg, const char *peer, uint64_t lost)
{
    struct repl *r = arg;
    r->gaps++;
    log_warn("replication: lost %" PRIu64 " batches from %s", lost, peer);
    repl_sync_request(r->sync, "sequence gap");
}

bool repl_peers_unverified(const struct repl *r) { return seqtrack_unverified(r->seq); }

void repl_peer_covered(struct repl *r, const char *id, size_t len, uint64_t incarnation,
                       uint64_t base)
{
    seqtrack_covered(r->seq, id, len, incarnation, base);
}

#define IDLE_S 2.0 /* repl_idle: no writes either way for this long */
bool repl_idle(struct repl *r)
{
    if (ev_now(r->bus.loop) - r->last_traffic < IDLE_S || rc_count(&r->cur)) return false;
    pthread_mutex_lock(&r->bus.mu);
    bool empty = !r->bus.outbox.head && !r->bus.inbox.head;
    pthread_mutex_unlock(&r->bus.mu);
    return empty;
}

/* After a transfer ended: peers whose first batches it did not cover. */
void repl_transfer_ended(struct repl *r, bool first)
{
    if (first && r->bus.cfg.synced_hook) r->bus.cfg.synced_hook(r->bus.cfg.synced_hook_arg);
    seqtrack_transfer_ended(r->seq);
}

static void note_lag(struct repl *r, uint64_t version, int64_t now)
{
    int64_t lag = now - hlc_physical_ms(version);
    if (lag < 0) lag = 0;
    r->lag_last_ms = (uint64_t)lag;
    if ((uint64_t)lag > r->lag_max_ms) r->lag_max_ms = (uint64_t)lag;
    r->lag_sum_ms += (uint64_t)lag;
    r->lag_count++;
}

static void apply_record(struct repl *r, const struct rc_record *rec, int64_t now, bool live)
{
    const struct repl_config *cfg = &r->bus.cfg;
    if (rec->op == RC_OP_FLUSH) {
        /* a flush in effect moves our clock past it (a local write made
         * after it must beat it); a delayed one's future stamp must not */
        if (hlc_physical_ms(rec->version) <= now) hlc_observe(r->hlc, rec->version);
        if (!store_flush(r->store, rec->version, rec->origin_tag, now)) {
            r->stale++;
            return;
        }
        r->applied++;
        r->flushes++;
        if (cfg->applied_hook) cfg->applied_hook(cfg->applied_hook_arg, hlc_physical_ms(rec->version));
        return;
    }
    hlc_observe(r->hlc, rec->version);
    hlc_observe(r->hlc, rec->exp_version);
    struct store_write w;
    record_to_write(rec, &w);
    enum store_status st = store_write(r->store, &w, now);
    if (st == STORE_STALE) {
        r->stale++;
        return;
    }
    r->applied++;
    if (rec->expire_ms && cfg->applied_hook) cfg->applied_hook(cfg->applied_hook_arg, rec->expire_ms);
    if (live) note_lag(r, rec->version > rec->exp_version ? rec->version : rec->exp_version, now);
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
    bool beacon = h.kind == RC_KIND_WRITES && h.count == 0;
    if (repl_is_self(r, h.origin, h.origin_len)) {
        if (!beacon) r->self_skipped++;
        repl_sync_on_message(r->sync, &h, &rd, m->len, true);
        return;
    }
    if (beacon) r->beacons_received++;
    else r->received++;
    if (h.kind == RC_KIND_WRITES && !beacon) r->last_traffic = ev_now(r->bus.loop);
    struct rc_reader sync_rd = rd; /* records of DIGESTS, RANGES, ROOT, SUMMARY, WANTS */
    repl_sync_on_message(r->sync, &h, &sync_rd, m->len, false);
    if (h.kind == RC_KIND_WRITES &&
        seqtrack_batch(r->seq, h.origin, h.origin_len, h.incarnation, h.seq,
                       repl_sync_waiting(r->sync), ev_now(r->bus.loop)))
        r->duplicates++;
    if (h.kind != RC_KIND_WRITES && h.kind != RC_KIND_SYNC_DATA) return;
    if (h.kind == RC_KIND_SYNC_DATA && h.target_len && !repl_is_self(r, h.target, h.target_len))
        return; /* a transfer meant for another node */
    bool live = h.kind == RC_KIND_WRITES;
    struct rc_record rec;
    uint64_t before = r->applied;
    while (rc_next(&rd, &rec)) apply_record(r, &rec, now, live);
    if (!live) repl_sync_applied(r->sync, r->applied - before);
}

static void on_inbox(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop;
    (void)revents;
    struct repl *r = w->data;
    struct repl_bus *bus = &r->bus;
    /* A (re)connected consumer: a new process has nothing and asks; a node
     * whose queue survived gets what it missed from the queue's backlog
     * (a lost message shows up as a sequence gap); only a queue that is
     * gone means data is lost for sure. A transfer under way may have lost
     * messages with the old connection: it asks again. */
    uint64_t pubs = atomic_load(&bus->pub_events);
    if (pubs != r->pub_events_seen) {
        r->pub_events_seen = pubs;
        if (rc_count(&r->cur) == 0) send_beacon(r); /* else cur carries the seq */
    }
    uint64_t events = atomic_load(&bus->con_events);
    uint64_t losses = atomic_load(&bus->queue_losses);
    if (events != r->con_events_seen) {
        bool first = r->con_events_seen == 0;
        r->con_events_seen = events;
        if (first) {
            repl_sync_request(r->sync, "joining the pool");
        } else {
            repl_sync_reconnected(r->sync);
            if (losses != r->queue_losses_seen)
                repl_sync_request(r->sync, "this node's queue was lost");
        }
        r->queue_losses_seen = losses;
    }
    int64_t now = loop_ms(r);
    uint64_t gen = 0, tag = 0;
    bool more = false;
    for (int i = 0; i < APPLY_MAX_PER_TURN; i++) {
        pthread_mutex_lock(&bus->mu);
        struct repl_msg *m = repl_list_pop(&bus->inbox);
        more = bus->inbox.head != NULL;
        pthread_mutex_unlock(&bus->mu);
        if (!m) break;
        process_msg(r, m, now);
        gen = m->gen;
        tag = m->tag;
        repl_msg_free(m);
    }
    if (tag) {
        pthread_mutex_lock(&bus->mu);
        bus->ack_gen = gen;
        bus->ack_tag = tag;
        pthread_mutex_unlock(&bus->mu);
    }
    if (more) ev_async_send(bus->loop, &bus->inbox_async); /* the rest next turn */
}

static void on_confirm(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop;
    (void)revents;
    struct repl *r = w->data;
    uint64_t seq = atomic_load(&r->bus.confirmed_seq);
    if (seq != r->last_confirmed) {
        r->last_confirmed = seq;
        if (r->bus.cfg.confirmed_hook) r->bus.cfg.confirmed_hook(r->bus.cfg.confirmed_hook_arg, seq);
    }
}

/* ---- lifecycle ---- */

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

/* A watcher the loop should not wait for (ev_unref) */
#define START_UNREF(kind, loop, w) do { ev_##kind##_start((loop), (w)); ev_unref(loop); } while (0)
#define STOP_UNREF(kind, loop, w) do { ev_ref(loop); ev_##kind##_stop((loop), (w)); } while (0)

struct repl *repl_create(struct ev_loop *loop, const struct repl_config *cfg,
                         struct store *store, struct hlc *hlc)
{
    struct repl *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    struct repl_bus *bus = &r->bus;
    bus->cfg = *cfg;
    bus->loop = loop;
    r->store = store;
    r->hlc = hlc;
    copy_str(bus->node_id, sizeof bus->node_id, cfg->node_id);
    copy_str(bus->exchange, sizeof bus->exchange, cfg->exchange);
    for (size_t i = 0; i < cfg->nbrokers && i < REPL_MAX_BROKERS; i++) {
        copy_str(bus->hosts[i], sizeof bus->hosts[i], cfg->brokers[i].host);
        bus->cfg.brokers[i].host = bus->hosts[i];
    }
    copy_str(bus->user, sizeof bus->user, cfg->user);
    copy_str(bus->password, sizeof bus->password, cfg->password);
    copy_str(bus->vhost, sizeof bus->vhost, cfg->vhost);
    if (cfg->cacert) copy_str(bus->cacert, sizeof bus->cacert, cfg->cacert);
    if (cfg->cert) copy_str(bus->cert, sizeof bus->cert, cfg->cert);
    if (cfg->key) copy_str(bus->key, sizeof bus->key, cfg->key);
    bus->cfg.cacert = bus->cfg.cert = bus->cfg.key = NULL; /* use the copies */
    repl_queue_of(r, bus->node_id, strlen(bus->node_id), bus->queue, sizeof bus->queue);
    bus->cfg.node_id = bus->node_id;
    if (getrandom(&r->incarnation, sizeof r->incarnation, 0) != sizeof r->incarnation)
        r->incarnation = (uint64_t)time(NULL) ^ ((uint64_t)(uintptr_t)r << 16);
    srand((unsigned)r->incarnation);
    /* a pool spreads over the cluster: each node starts at a random entry */
    bus->first_broker = bus->cfg.nbrokers ? (size_t)(r->incarnation % bus->cfg.nbrokers) : 0;
    atomic_store(&bus->pub_broker, bus->first_broker);
    atomic_store(&bus->con_broker, bus->first_broker);

    bus->pub_fd = bus->con_fd = -1;
    pthread_mutex_init(&bus->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&bus->outbox_cv, &ca);
    pthread_condattr_destroy(&ca);

    r->seq = seqtrack_create(GAP_GRACE_S, on_gap, r);
    r->sync = r->seq ? repl_sync_create(r, loop, store, cfg->anti_entropy_s) : NULL;
    if (!r->sync) {
        seqtrack_destroy(r->seq);
        free(r);
        return NULL;
    }
    ev_timer_init(&r->linger, on_linger, 0.0, 0.0);
    r->linger.data = r;
    ev_prepare_init(&r->flush_prepare, on_prepare);
    r->flush_prepare.data = r;
    START_UNREF(prepare, loop, &r->flush_prepare);
    ev_async_init(&bus->inbox_async, on_inbox);
    bus->inbox_async.data = r;
    START_UNREF(async, loop, &bus->inbox_async);
    ev_async_init(&bus->confirm_async, on_confirm);
    bus->confirm_async.data = r;
    START_UNREF(async, loop, &bus->confirm_async);
    ev_init(&r->beacon, on_beacon);
    r->beacon.data = r;
    r->beacon.repeat = WAIT_BEACON_S;
    ev_timer_again(loop, &r->beacon);
    ev_unref(loop);

    if (repl_link_start(bus) != 0) {
        log_error("replication: cannot start broker threads");
        repl_destroy(r);
        return NULL;
    }
    const struct repl_broker *b0 = &bus->cfg.brokers[bus->first_broker];
    log_info("replication: node '%s' joining exchange '%s' on %s:%u%s%s", bus->node_id,
             bus->exchange, b0->host, b0->port,
             bus->cfg.nbrokers > 1 ? " (first of a list of brokers)" : "",
             !cfg->tls ? "" : cfg->tls_verify ? " over TLS (broker certificate and name verified)"
                                              : " over TLS (NOT verified: --rabbitmq_tls_verify=no)");
    if (cfg->tls && !cfg->tls_verify)
        log_warn("replication: the broker's TLS certificate is not checked: anyone on the "
                 "path can pose as the broker and read or inject replicated writes");
    return r;
}

void repl_shutdown(struct repl *r, double timeout)
{
    struct repl_bus *bus = &r->bus;
    flush_cur(r);
    pthread_mutex_lock(&bus->mu);
    bus->draining = true;
    bus->stop = true;
    pthread_cond_broadcast(&bus->outbox_cv);
    pthread_mutex_unlock(&bus->mu);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        pthread_mutex_lock(&bus->mu);
        uint64_t handed = bus->handed;
        pthread_mutex_unlock(&bus->mu);
        clock_gettime(CLOCK_MONOTONIC, &now);
        double waited = (double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9;
        /* done when the broker confirmed every message we gave the publisher */
        if (atomic_load(&bus->published_batches) >= handed || waited >= timeout) break;
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&bus->mu);
    bus->draining = false; /* whatever is left now stays unsent */
    pthread_cond_broadcast(&bus->outbox_cv);
    pthread_mutex_unlock(&bus->mu);
    repl_link_stop(bus);
    pthread_mutex_lock(&bus->mu);
    uint64_t left = bus->outbox.writes;
    pthread_mutex_unlock(&bus->mu);
    if (left || r->outbox_dropped)
        log_warn("replication: shutdown with %" PRIu64 " writes not published "
                 "(%" PRIu64 " dropped earlier by a full outbox)", left, r->outbox_dropped);
    else
        log_info("replication: outbox published; %" PRIu64 " writes in all",
                 atomic_load(&bus->published_writes));
}

void repl_destroy(struct repl *r)
{
    if (!r) return;
    struct repl_bus *bus = &r->bus;
    repl_link_stop(bus);
    STOP_UNREF(prepare, bus->loop, &r->flush_prepare);
    ev_timer_stop(bus->loop, &r->linger);
    STOP_UNREF(async, bus->loop, &bus->inbox_async);
    STOP_UNREF(async, bus->loop, &bus->confirm_async);
    STOP_UNREF(timer, bus->loop, &r->beacon);
    repl_sync_destroy(r->sync);
    seqtrack_destroy(r->seq);
    struct repl_msg *m;
    while ((m = repl_list_pop(&bus->outbox))) repl_msg_free(m);
    while ((m = repl_list_pop(&bus->inbox))) repl_msg_free(m);
    rc_buf_free(&r->cur);
    pthread_mutex_destroy(&bus->mu);
    pthread_cond_destroy(&bus->outbox_cv);
    free(r);
}

static const char *state_name(const struct repl *r)
{
    bool pub = atomic_load(&r->bus.pub_up), con = atomic_load(&r->bus.con_up);
    if (pub && con) return repl_sync_waiting(r->sync) ? "syncing" : "up";
    if (!atomic_load(&r->bus.ever_up)) return "connecting";
    return "down";
}

const char *const repl_state_names[] = {"off", "connecting", "syncing", "up", "down", NULL};

void repl_stats_visit(const struct repl *r, const struct stats_visitor *v)
{
    struct repl_bus *bus = (struct repl_bus *)&r->bus; /* the lock is not state */
    pthread_mutex_lock(&bus->mu);
    uint64_t queued = bus->outbox.writes, outbox_bytes = bus->outbox.bytes;
    pthread_mutex_unlock(&bus->mu);
    queued += rc_count(&r->cur);
    char pub[REPL_MAX_NAME + 8], con[REPL_MAX_NAME + 8]; /* "host:port" */
    const struct repl_broker *pb = &bus->cfg.brokers[atomic_load(&bus->pub_broker)];
    const struct repl_broker *cb = &bus->cfg.brokers[atomic_load(&bus->con_broker)];
    snprintf(con, sizeof con, "%s:%u", cb->host, cb->port);
    snprintf(pub, sizeof pub, "%s:%u", pb->host, pb->port);
    STATS_STATE(v, "repl_state", "repl_state", "state", repl_state_names,
                "Replication state (1 for the current one).", state_name(r));
    STATS_INFO(v, "node_id", "node_info", "node_id", "This node's --node_id.", bus->node_id);
    STATS_INFO(v, "repl_broker", "repl_broker_info", "broker",
               "The broker the consumer is connected to (or trying).", con);
    STATS_INFO(v, "repl_publish_broker", "repl_publish_broker_info", "broker",
               "The broker the publisher is connected to (or trying).", pub);
    STATS_INFO(v, "repl_queue_type", "repl_queue_type_info", "queue_type",
               "Setting --rabbitmq_queue_type.", bus->cfg.classic_queue ? "classic" : "quorum");
    STATS_COUNTER(v, "repl_published", "repl_published_writes_total",
                  "Writes confirmed by the broker.", atomic_load(&bus->published_writes));
    STATS_COUNTER(v, "repl_batches_published", "repl_published_batches_total",
                  "Batches confirmed by the broker (beacons and transfers included).",
                  atomic_load(&bus->published_batches));
    STATS_COUNTER(v, "repl_received", "repl_received_batches_total",
                  "Batches received from peers.", r->received);
    STATS_COUNTER(v, "repl_applied", "repl_applied_total",
                  "Replicated records applied.", r->applied);
    STATS_COUNTER(v, "repl_stale", "repl_stale_total",
                  "Replicated records that changed nothing (older).", r->stale);
    STATS_COUNTER(v, "repl_malformed", "repl_malformed_total",
                  "Messages dropped because they failed validation.", r->malformed);
    STATS_COUNTER(v, "repl_self_skipped", "repl_self_skipped_total",
                  "Own batches that came back.", r->self_skipped);
    STATS_COUNTER(v, "repl_gaps", "repl_gaps_total",
                  "Sequence gaps detected (lost batches of a peer).", r->gaps);
    STATS_COUNTER(v, "repl_flushes", "repl_flushes_total",
                  "FLUSH records that moved the watermark.", r->flushes);
    STATS_COUNTER(v, "repl_beacons_sent", "repl_beacons_sent_total",
                  "Beacons published (empty batches announcing a sequence).", r->beacons_sent);
    STATS_COUNTER(v, "repl_beacons_received", "repl_beacons_received_total",
                  "Beacons received from peers.", r->beacons_received);
    STATS_GAUGE(v, "repl_queue", "repl_outbox_writes",
                "Writes waiting to be published.", queued);
    STATS_GAUGE(v, "repl_outbox_bytes", "repl_outbox_bytes",
                "Bytes waiting to be published.", outbox_bytes);
    STATS_COUNTER(v, "repl_outbox_dropped", "repl_outbox_dropped_total",
                  "Writes dropped because the outbox was full.", r->outbox_dropped);
    STATS_COUNTER(v, "repl_reconnects", "repl_reconnects_total",
                  "Broker connections lost.", atomic_load(&bus->reconnects));
    STATS_COUNTER(v, "repl_failovers", "repl_failovers_total",
                  "Moves to another broker of --rabbitmq_host.", atomic_load(&bus->failovers));
    STATS_COUNTER(v, "repl_confirm_timeouts", "repl_confirm_timeouts_total",
                  "Broker links dropped: a publish got neither a confirm nor a nack "
                  "within --rabbitmq_confirm_timeout.",
                  atomic_load(&bus->confirm_timeouts));
    STATS_COUNTER(v, "repl_watchdog_resets", "repl_watchdog_resets_total",
                  "Broker connections reset by the watchdog.",
                  atomic_load(&bus->watchdog_resets));
    STATS_COUNTER(v, "repl_duplicates", "repl_duplicates_total",
                  "Batches received again (a republish), skipped.", r->duplicates);
    STATS_NUMBER(v, "repl_lag_ms_last", STATS_KIND_GAUGE, "repl_lag_last_seconds",
                 STATS_UNIT_MS, STATS_FMT_DEC,
                 "Origin stamp to local apply of the last live write.", r->lag_last_ms);
    STATS_NUMBER(v, "repl_lag_ms_avg", STATS_KIND_GAUGE, "repl_lag_avg_seconds", STATS_UNIT_MS,
                 STATS_FMT_DEC, "Mean replication lag since start.",
                 r->lag_count ? r->lag_sum_ms / r->lag_count : 0);
    STATS_NUMBER(v, "repl_lag_ms_max", STATS_KIND_GAUGE, "repl_lag_max_seconds", STATS_UNIT_MS,
                 STATS_FMT_DEC, "Largest replication lag since start.", r->lag_max_ms);
    STATS_GAUGE(v, "repl_confirmed_seq", "repl_confirmed_seq",
                "Highest batch sequence confirmed by the broker.",
                atomic_load(&bus->confirmed_seq));
    repl_sync_stats(r->sync, v);
}
