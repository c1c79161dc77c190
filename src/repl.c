/*
 * repl.c - the event-loop side of replication (see repl.h).
 *
 * Outgoing: local writes are appended to `cur` (one batch per loop turn);
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
    memset(&r->cur, 0, sizeof r->cur);
    pthread_mutex_lock(&r->mu);
    bool full = r->outbox.bytes + m->len > r->cfg.outbox_bytes;
    if (!full) {
        repl_list_push(&r->outbox, m);
        pthread_cond_signal(&r->outbox_cv);
    }
    pthread_mutex_unlock(&r->mu);
    if (full) {
        if (r->outbox_dropped == 0)
            log_warn("replication: outbox full (%zu bytes); dropping writes until the broker is back",
                     r->cfg.outbox_bytes);
        r->outbox_dropped += n;
        repl_msg_free(m);
    }
}

static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    flush_cur(w->data);
}

void repl_local_write(struct repl *r, const struct command_write *w)
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
    if (r->cur.len >= BATCH_MAX_BYTES) flush_cur(r);
    return;
nomem:
    r->outbox_dropped++;
    log_error("replication: out of memory batching a write");
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
        }
        if (h->seq <= p->last_seq) return; /* redelivery */
    }
    p->incarnation = h->incarnation;
    p->last_seq = h->seq;
}

static void apply_record(struct repl *r, const struct rc_record *rec, int64_t now)
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
    if (h.kind != RC_KIND_WRITES && h.kind != RC_KIND_SYNC_DATA) return;
    struct rc_record rec;
    while (rc_next(&rd, &rec)) apply_record(r, &rec, now);
}

static void on_inbox(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop;
    (void)revents;
    struct repl *r = w->data;
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

    ev_prepare_init(&r->flush_prepare, on_prepare);
    r->flush_prepare.data = r;
    ev_prepare_start(loop, &r->flush_prepare);
    ev_unref(loop);
    ev_async_init(&r->inbox_async, on_inbox);
    r->inbox_async.data = r;
    ev_async_start(loop, &r->inbox_async);
    ev_unref(loop);

    if (repl_link_start(r) != 0) {
        log_error("replication: cannot start broker threads");
        repl_destroy(r);
        return NULL;
    }
    log_info("replication: node '%s' joining exchange '%s' on %s:%u", r->node_id,
             r->exchange, r->host, cfg->port);
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
        bool empty = r->outbox.head == NULL;
        pthread_mutex_unlock(&r->mu);
        clock_gettime(CLOCK_MONOTONIC, &now);
        double waited = (double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9;
        if ((empty && atomic_load(&r->pub_up)) || waited >= timeout) break;
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
    ev_ref(r->loop);
    ev_async_stop(r->loop, &r->inbox_async);
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
    if (pub && con) return "up";
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
}
