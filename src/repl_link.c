/*
 * repl_link.c - the broker threads of replication (see repl.h).
 *
 * Publisher thread: one AMQP connection in confirm mode. Moves batches from
 * the shared outbox to its private in-flight list as it publishes them
 * (at most PUB_WINDOW unconfirmed); a batch leaves the in-flight list only
 * when the broker confirms it. If the connection is lost, the in-flight
 * batches go back to the front of the outbox, in order, and are published
 * again after reconnecting: at-least-once, and harmless because applying a
 * batch twice is a no-op under LWW. A publish left with neither a confirm
 * nor a nack for cfg.confirm_timeout_s (--rabbitmq_confirm_timeout) counts
 * as a lost link too, counted in confirm_timeouts: the broker lost it
 * (RabbitMQ's advice: time confirms out), and in confirm mode a client's
 * reply waits on it.
 *
 * Consumer thread: one AMQP connection consuming this node's durable queue
 * (bound to the fanout exchange; it outlives the connection, so a reconnect
 * loses nothing) with manual acks and a prefetch window. Received bodies go
 * to the inbox; the loop reports how far it has applied and this thread
 * acks up to there (multiple = true).
 *
 * Both threads call into rabbitmq-c at least every POLL_MS, which services
 * heartbeats, so a broker that stops answering without closing the socket
 * (SIGSTOP, a black hole) is left after 2-3 heartbeat intervals. The
 * publisher reads (zero timeout) before each burst, where a missed
 * heartbeat shows. rabbitmq-c can still block for ever inside a publish to
 * a frozen broker (waiting for a byte once the heartbeat deadline passed,
 * or on a full send buffer); each thread marks its calls (repl_amqp_busy) for
 * the loop's watchdog (repl_amqp.c).
 *
 * Brokers. --rabbitmq_host may list the nodes of a RabbitMQ cluster. Both
 * threads start at the same random entry (so a pool spreads over the
 * cluster) and move to the next one on a failed connect or a lost link,
 * with exponential backoff and jitter between attempts (connecting and
 * moving along the list: repl_amqp.c); each change is logged once, not
 * every retry. The node's queue is a quorum queue (or a
 * classic one, --rabbitmq_queue_type), bounded by x-max-length-bytes with
 * drop-head (a full queue drops its oldest batches, which the node sees as
 * a gap, and never refuses a publish: one slow node cannot stall the
 * others) and deleted by the broker after x-expires without a consumer.
 */
#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "repl_amqp.h"
#include "repl_internal.h"

#define PUB_WINDOW 256
#define PREFETCH 256
#define POLL_MS 100

/* ---- lists (callers hold r->mu when the list is shared) ---- */

void repl_list_push(struct repl_list *l, struct repl_msg *m)
{
    m->next = NULL;
    if (l->tail) l->tail->next = m; else l->head = m;
    l->tail = m;
    l->bytes += m->len;
    l->writes += m->writes;
    l->count++;
}

struct repl_msg *repl_list_pop(struct repl_list *l)
{
    struct repl_msg *m = l->head;
    if (!m) return NULL;
    l->head = m->next;
    if (!l->head) l->tail = NULL;
    l->bytes -= m->len;
    l->writes -= m->writes;
    l->count--;
    m->next = NULL;
    return m;
}

/* Move all of src in front of dst, keeping src's order. */
static void list_prepend_all(struct repl_list *dst, struct repl_list *src)
{
    if (!src->head) return;
    src->tail->next = dst->head;
    if (!dst->tail) dst->tail = src->tail;
    dst->head = src->head;
    dst->bytes += src->bytes;
    dst->writes += src->writes;
    dst->count += src->count;
    memset(src, 0, sizeof *src);
}

void repl_msg_free(struct repl_msg *m)
{
    if (!m) return;
    free(m->data);
    free(m);
}

/* ---- publisher ---- */

struct pub {
    struct repl_bus *r;
    amqp_connection_state_t conn;
    struct repl_list inflight; /* published, waiting for the broker's ack */
    uint64_t next_tag;         /* delivery tag of the next publish */
    unsigned backoff;          /* ms before the next connect; back to the
                                  minimum only once a confirm arrives */
    bool troubled;             /* a drop was logged; no confirm since */
};

/* The link goes (its in-flight batches back to the outbox, to be published
 * again). next_broker: the broker node failed (try the next one); else a
 * queue refused a batch (a nack, e.g. while a quorum leader is elected):
 * the same node is tried again after the backoff. */
static void pub_drop(struct pub *p, const char *why, bool next_broker)
{
    struct repl_bus *r = p->r;
    if (p->conn) {
        if (!p->troubled)
            log_warn("replication: publisher lost the link to broker %s (%s); reconnecting",
                     repl_amqp_broker_name(r, atomic_load(&r->pub_broker)), why);
        else
            log_debug("replication: publisher lost the link to broker %s (%s) again",
                      repl_amqp_broker_name(r, atomic_load(&r->pub_broker)), why);
        p->troubled = true;
        repl_amqp_watch_fd(r, &r->pub_fd, NULL);
        amqp_destroy_connection(p->conn);
        p->conn = NULL;
        atomic_store(&r->pub_up, 0);
        atomic_fetch_add(&r->reconnects, 1);
        if (next_broker) repl_amqp_failover(r, &r->pub_broker);
        else {
            repl_amqp_nap(r, p->backoff);
            p->backoff = repl_amqp_next_backoff(p->backoff);
        }
    }
    pthread_mutex_lock(&r->mu);
    list_prepend_all(&r->outbox, &p->inflight);
    pthread_mutex_unlock(&r->mu);
}

/* The broker confirmed tag (and every earlier one if multiple). Batches
 * leave the in-flight list from the head only, so confirmed_seq only ever
 * names a batch whose predecessors are all confirmed too. */
static void pub_confirmed(struct pub *p, uint64_t tag, bool multiple)
{
    struct repl_bus *r = p->r;
    for (struct repl_msg *m = p->inflight.head; m && m->tag <= tag; m = m->next)
        if (m->tag == tag || multiple) m->acked = true;
    if (p->inflight.head && p->inflight.head->acked) { /* the link works */
        p->backoff = REPL_AMQP_BACKOFF_MIN_MS;
        p->troubled = false;
    }
    while (p->inflight.head && p->inflight.head->acked) {
        struct repl_msg *m = repl_list_pop(&p->inflight);
        atomic_fetch_add(&r->published_writes, m->writes);
        atomic_fetch_add(&r->published_batches, 1);
        if (m->seq) {
            atomic_store(&r->confirmed_seq, m->seq);
            ev_async_send(r->loop, &r->confirm_async);
        }
        repl_msg_free(m);
    }
}

/* Read frames for up to wait_ms (0 = only what is already there). */
static void pub_read_frames(struct pub *p, unsigned wait_ms)
{
    struct timeval tv = {wait_ms / 1000, (long)(wait_ms % 1000) * 1000};
    for (;;) {
        amqp_frame_t f;
        int rc = amqp_simple_wait_frame_noblock(p->conn, &f, &tv);
        if (rc == AMQP_STATUS_TIMEOUT) return;
        if (rc != AMQP_STATUS_OK) {
            pub_drop(p, amqp_error_string2(rc), true);
            return;
        }
        if (f.frame_type == AMQP_FRAME_METHOD) {
            switch (f.payload.method.id) {
            case AMQP_BASIC_ACK_METHOD: {
                amqp_basic_ack_t *a = f.payload.method.decoded;
                pub_confirmed(p, a->delivery_tag, a->multiple);
                break;
            }
            case AMQP_BASIC_NACK_METHOD:
                pub_drop(p, "a queue refused a batch (nack)", false);
                return;
            case AMQP_CHANNEL_CLOSE_METHOD:
            case AMQP_CONNECTION_CLOSE_METHOD:
                pub_drop(p, "broker closed the channel", true);
                return;
            default:
                break;
            }
        }
        tv = (struct timeval){0, 0};
        if (!amqp_frames_enqueued(p->conn) && !amqp_data_in_buffer(p->conn)) {
            if (!p->inflight.head) return;
        }
    }
}

/* Has the oldest publish in flight waited longer than the confirm timeout? */
static bool pub_confirm_overdue(const struct pub *p)
{
    int64_t limit = (int64_t)p->r->cfg.confirm_timeout_s * 1000;
    return repl_amqp_now_ms() - p->inflight.head->sent_ms > limit;
}

static bool pub_connect(struct pub *p, bool *was_down)
{
    struct repl_bus *r = p->r;
    const char *why = "?";
    size_t at = atomic_load(&r->pub_broker);
    amqp_connection_state_t conn = repl_amqp_open(r, at, &why);
    if (conn) {
        amqp_confirm_select(conn, 1);
        amqp_rpc_reply_t rep = amqp_get_rpc_reply(conn);
        if (rep.reply_type != AMQP_RESPONSE_NORMAL) {
            why = repl_amqp_reply_error(rep);
            amqp_destroy_connection(conn);
            conn = NULL;
        }
    }
    if (!conn) {
        if (!*was_down)
            log_warn("replication: publisher cannot reach broker %s (%s); retrying%s",
                     repl_amqp_broker_name(r, at), why,
                     r->cfg.nbrokers > 1 ? " with the next brokers of the list" : "");
        *was_down = true;
        repl_amqp_failover(r, &r->pub_broker);
        repl_amqp_nap(r, p->backoff);
        p->backoff = repl_amqp_next_backoff(p->backoff);
        return false;
    }
    p->conn = conn;
    repl_amqp_watch_fd(r, &r->pub_fd, conn);
    p->next_tag = 1;
    *was_down = false;
    atomic_store(&r->pub_up, 1);
    atomic_fetch_add(&r->pub_events, 1);
    ev_async_send(r->loop, &r->inbox_async); /* the loop sends a sequence beacon */
    log_info("replication: publisher connected to broker %s, exchange '%s'",
             repl_amqp_broker_name(r, at), r->exchange);
    return true;
}

static void *pub_main(void *arg)
{
    struct pub p = {.r = arg, .backoff = REPL_AMQP_BACKOFF_MIN_MS};
    struct repl_bus *r = p.r;
    bool was_down = false;
    amqp_basic_properties_t props;
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
    props.content_type = amqp_cstring_bytes("application/x-vitamin-batch");
    /* a quorum queue keeps every message on disk anyway; a classic one
     * gets transient messages: one lost in a broker restart is a gap */
    props.delivery_mode = r->cfg.classic_queue ? 1 : 2;

    for (;;) {
        pthread_mutex_lock(&r->mu);
        bool stop = r->stop, draining = r->draining;
        bool idle = !r->outbox.head && !p.inflight.head;
        pthread_mutex_unlock(&r->mu);
        if (stop && (!draining || idle)) break;
        if (!p.conn) {
            if (!pub_connect(&p, &was_down)) continue;
        }
        repl_amqp_busy(&r->pub_busy_ms, true);
        pub_read_frames(&p, 0); /* acks; and a missed heartbeat shows here */
        /* publish up to the window */
        while (p.conn && p.inflight.count < PUB_WINDOW) {
            pthread_mutex_lock(&r->mu);
            struct repl_msg *m = repl_list_pop(&r->outbox);
            pthread_mutex_unlock(&r->mu);
            if (!m) break;
            amqp_bytes_t body = {m->len, m->data};
            bool direct = m->routing_key[0] != '\0';
            int rc = amqp_basic_publish(p.conn, 1,
                                        amqp_cstring_bytes(direct ? "" : r->exchange),
                                        amqp_cstring_bytes(direct ? m->routing_key : ""),
                                        0, 0, &props, body);
            m->tag = p.next_tag++;
            m->acked = false;
            m->sent_ms = repl_amqp_now_ms();
            repl_list_push(&p.inflight, m);
            if (rc != AMQP_STATUS_OK) {
                pub_drop(&p, amqp_error_string2(rc), true);
                break;
            }
        }
        if (!p.conn) {
            repl_amqp_busy(&r->pub_busy_ms, false);
            continue;
        }
        if (p.inflight.head) {
            pthread_mutex_lock(&r->mu);
            bool more = r->outbox.head != NULL && p.inflight.count < PUB_WINDOW;
            pthread_mutex_unlock(&r->mu);
            pub_read_frames(&p, more ? 0 : 20);
            repl_amqp_busy(&r->pub_busy_ms, false);
            if (p.conn && p.inflight.head && pub_confirm_overdue(&p)) {
                char why[64];
                snprintf(why, sizeof why, "no confirm or nack of a publish for %u s",
                         r->cfg.confirm_timeout_s);
                atomic_fetch_add(&r->confirm_timeouts, 1);
                pub_drop(&p, why, true);
            }
            continue;
        }
        repl_amqp_busy(&r->pub_busy_ms, false);
        /* idle: wait for work, but call into the library every POLL_MS so
         * heartbeats are sent and a dead link is noticed */
        repl_amqp_nap(r, POLL_MS);
        pthread_mutex_lock(&r->mu);
        bool work = r->outbox.head != NULL;
        pthread_mutex_unlock(&r->mu);
        if (!work && p.conn) {
            repl_amqp_busy(&r->pub_busy_ms, true);
            pub_read_frames(&p, 0);
            repl_amqp_busy(&r->pub_busy_ms, false);
        }
    }
    repl_amqp_watch_fd(r, &r->pub_fd, NULL);
    if (p.conn) repl_amqp_close(p.conn, true);
    atomic_store(&r->pub_up, 0);
    pthread_mutex_lock(&r->mu);
    list_prepend_all(&r->outbox, &p.inflight); /* counted as not sent */
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* ---- consumer ---- */

/*
 * Does the queue exist already? A passive declare on a spare channel: the
 * broker closes that channel (404) when it does not, which is answered with
 * close-ok. Returns 1, 0, or -1 if the connection is unusable.
 */
static int queue_exists(amqp_connection_state_t conn, amqp_bytes_t q)
{
    amqp_channel_open(conn, 2);
    if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL) return -1;
    amqp_queue_declare(conn, 2, q, 1, 0, 0, 0, amqp_empty_table);
    amqp_rpc_reply_t rep = amqp_get_rpc_reply(conn);
    if (rep.reply_type == AMQP_RESPONSE_NORMAL) {
        amqp_channel_close(conn, 2, AMQP_REPLY_SUCCESS);
        return 1;
    }
    if (rep.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
        rep.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        amqp_channel_close_ok_t ok;
        return amqp_send_method(conn, 2, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok) == AMQP_STATUS_OK
                   ? 0 : -1;
    }
    return -1;
}

/* The declare arguments of our queue, of the given type, into args[4]. */
static amqp_table_t queue_args(const struct repl_bus *r, bool classic, amqp_table_entry_t *args)
{
    size_t n = 0;
    args[n].key = amqp_cstring_bytes("x-queue-type");
    args[n].value.kind = AMQP_FIELD_KIND_UTF8;
    args[n++].value.value.bytes = amqp_cstring_bytes(classic ? "classic" : "quorum");
    args[n].key = amqp_cstring_bytes("x-expires");
    args[n].value.kind = AMQP_FIELD_KIND_I64;
    args[n++].value.value.i64 = (int64_t)r->cfg.queue_ttl_s * 1000;
    args[n].key = amqp_cstring_bytes("x-max-length-bytes");
    args[n].value.kind = AMQP_FIELD_KIND_I64;
    args[n++].value.value.i64 = (int64_t)r->cfg.queue_max_bytes;
    args[n].key = amqp_cstring_bytes("x-overflow");
    args[n].value.kind = AMQP_FIELD_KIND_UTF8;
    args[n++].value.value.bytes = amqp_cstring_bytes("drop-head");
    return (amqp_table_t){(int)n, args};
}

/* Declare our queue on channel ch. Returns the reply. */
static amqp_rpc_reply_t declare_queue(amqp_connection_state_t conn, int ch,
                                      const struct repl_bus *r, bool classic)
{
    amqp_table_entry_t args[4];
    amqp_queue_declare(conn, (amqp_channel_t)ch, amqp_cstring_bytes(r->queue), 0, 1, 0, 0,
                       queue_args(r, classic, args));
    return amqp_get_rpc_reply(conn);
}

/* Did the broker refuse a declare because the queue exists with other
 * arguments (406 PRECONDITION_FAILED)? */
static bool precondition_failed(amqp_rpc_reply_t rep)
{
    if (rep.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION ||
        rep.reply.id != AMQP_CHANNEL_CLOSE_METHOD)
        return false;
    const amqp_channel_close_t *m = rep.reply.decoded;
    return m->reply_code == AMQP_PRECONDITION_FAILED;
}

/*
 * Declare our queue as configured. If it exists with other arguments (a
 * classic queue after an upgrade to quorum, a changed --rabbitmq_queue_ttl
 * or size...), the broker closes channel 1 with 406: then the queue is used
 * as it is (passive declare on a reopened channel), with one log line per
 * process quoting the broker. Returns the reply of the declare that counts.
 */
static amqp_rpc_reply_t declare_own_queue(amqp_connection_state_t conn, struct repl_bus *r)
{
    amqp_rpc_reply_t rep = declare_queue(conn, 1, r, r->cfg.classic_queue);
    if (!precondition_failed(rep)) return rep;
    const amqp_channel_close_t *m = rep.reply.decoded;
    if (atomic_fetch_add(&r->queue_type_mismatch, 1) == 0)
        log_warn("replication: queue '%s' exists with other settings than ours (%s queue; "
                 "broker: %.*s): using it as it is; delete it (rabbitmqctl delete_queue %s) "
                 "while this node is stopped to apply ours", r->queue,
                 r->cfg.classic_queue ? "classic" : "quorum", (int)m->reply_text.len,
                 (const char *)m->reply_text.bytes, r->queue);
    amqp_channel_close_ok_t ok;
    if (amqp_send_method(conn, 1, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok) != AMQP_STATUS_OK) return rep;
    amqp_channel_open(conn, 1);
    if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL) return rep;
    amqp_queue_declare(conn, 1, amqp_cstring_bytes(r->queue), 1, 0, 0, 0, amqp_empty_table);
    return amqp_get_rpc_reply(conn);
}

/* Connect to the current broker and start consuming this node's queue;
 * *existed tells whether the queue was there before (if not, whatever was
 * sent meanwhile is lost). */
static amqp_connection_state_t con_connect(struct repl_bus *r, const char **why, bool *existed)
{
    amqp_connection_state_t conn = repl_amqp_open(r, atomic_load(&r->con_broker), why);
    if (!conn) return NULL;
    int ex = queue_exists(conn, amqp_cstring_bytes(r->queue));
    if (ex < 0) {
        *why = "cannot check the node's queue";
        amqp_destroy_connection(conn);
        return NULL;
    }
    *existed = ex == 1;
    amqp_bytes_t q = amqp_cstring_bytes(r->queue);
    amqp_rpc_reply_t rep = declare_own_queue(conn, r);
    /* Bind every time, also a queue that existed: it may have lost its
     * binding or never had one (a process killed between queue.declare and
     * queue.bind, an exchange deleted and declared again), and an unbound
     * queue gets the direct state-transfer messages but no replicated write
     * and no echo: the node would wait in "syncing" for ever. (A bind can
     * block while a cluster node is frozen, until the others declare it
     * down; so does the basic.consume below, so skipping it saved nothing.) */
    if (rep.reply_type == AMQP_RESPONSE_NORMAL) {
        amqp_queue_bind(conn, 1, q, amqp_cstring_bytes(r->exchange), amqp_empty_bytes,
                        amqp_empty_table);
        rep = amqp_get_rpc_reply(conn);
    }
    if (rep.reply_type == AMQP_RESPONSE_NORMAL) {
        amqp_basic_qos(conn, 1, 0, PREFETCH, 0);
        rep = amqp_get_rpc_reply(conn);
    }
    if (rep.reply_type == AMQP_RESPONSE_NORMAL) {
        amqp_basic_consume(conn, 1, q, amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
        rep = amqp_get_rpc_reply(conn);
    }
    if (rep.reply_type != AMQP_RESPONSE_NORMAL) {
        *why = repl_amqp_reply_error(rep);
        amqp_destroy_connection(conn);
        return NULL;
    }
    return conn;
}

static void *con_main(void *arg)
{
    struct repl_bus *r = arg;
    amqp_connection_state_t conn = NULL;
    unsigned backoff = REPL_AMQP_BACKOFF_MIN_MS;
    bool was_down = false;
    uint64_t gen = 0, acked = 0, delivered = 0;

    while (!repl_amqp_stopping(r)) {
        if (!conn) {
            const char *why = "?";
            bool existed = false;
            size_t at = atomic_load(&r->con_broker);
            conn = con_connect(r, &why, &existed);
            if (!conn) {
                if (!was_down)
                    log_warn("replication: consumer cannot use broker %s (%s); retrying%s",
                             repl_amqp_broker_name(r, at), why,
                             r->cfg.nbrokers > 1 ? " with the next brokers of the list" : "");
                was_down = true;
                repl_amqp_failover(r, &r->con_broker);
                repl_amqp_nap(r, backoff);
                backoff = repl_amqp_next_backoff(backoff);
                continue;
            }
            repl_amqp_watch_fd(r, &r->con_fd, conn);
            gen++;
            acked = 0;
            delivered = 0;
            backoff = REPL_AMQP_BACKOFF_MIN_MS;
            was_down = false;
            atomic_store(&r->con_up, 1);
            atomic_store(&r->ever_up, 1);
            if (!existed) atomic_fetch_add(&r->queue_losses, 1);
            atomic_fetch_add(&r->con_events, 1);
            ev_async_send(r->loop, &r->inbox_async); /* the loop decides on a sync */
            log_info("replication: consuming queue '%s' on broker %s", r->queue,
                     repl_amqp_broker_name(r, at));
        }
        /* ack what the loop has applied */
        pthread_mutex_lock(&r->mu);
        uint64_t tag = r->ack_gen == gen ? r->ack_tag : 0;
        pthread_mutex_unlock(&r->mu);
        repl_amqp_busy(&r->con_busy_ms, true);
        if (tag > acked) {
            amqp_basic_ack(conn, 1, tag, 1);
            acked = tag;
        }
        amqp_maybe_release_buffers(conn);
        amqp_envelope_t env;
        /* deliveries the loop has not applied yet: come back soon to ack
         * them, or a full prefetch window stalls delivery for POLL_MS */
        struct timeval tv = {0, delivered > acked ? 1000 : POLL_MS * 1000};
        amqp_rpc_reply_t res = amqp_consume_message(conn, &env, &tv, 0);
        repl_amqp_busy(&r->con_busy_ms, false);
        if (res.reply_type == AMQP_RESPONSE_NORMAL) {
            struct repl_msg *m = calloc(1, sizeof *m);
            char *data = m ? malloc(env.message.body.len ? env.message.body.len : 1) : NULL;
            if (m && data) {
                if (env.message.body.len)
                    memcpy(data, env.message.body.bytes, env.message.body.len);
                m->data = data;
                m->len = env.message.body.len;
                m->tag = env.delivery_tag;
                delivered = env.delivery_tag;
                m->gen = gen;
                pthread_mutex_lock(&r->mu);
                repl_list_push(&r->inbox, m);
                pthread_mutex_unlock(&r->mu);
                ev_async_send(r->loop, &r->inbox_async);
            } else {
                free(m);
                free(data);
                log_error("replication: out of memory receiving a batch");
            }
            amqp_destroy_envelope(&env);
            continue;
        }
        if (res.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            res.library_error == AMQP_STATUS_TIMEOUT)
            continue;
        if (res.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            res.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
            amqp_frame_t f;
            if (amqp_simple_wait_frame(conn, &f) == AMQP_STATUS_OK &&
                !(f.frame_type == AMQP_FRAME_METHOD &&
                  (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
                   f.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD ||
                   f.payload.method.id == AMQP_BASIC_CANCEL_METHOD)))
                continue;
        }
        log_warn("replication: consumer lost the link to broker %s (%s); reconnecting",
                 repl_amqp_broker_name(r, atomic_load(&r->con_broker)),
                 res.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION
                     ? amqp_error_string2(res.library_error) : repl_amqp_reply_error(res));
        repl_amqp_watch_fd(r, &r->con_fd, NULL);
        amqp_destroy_connection(conn);
        conn = NULL;
        atomic_store(&r->con_up, 0);
        atomic_fetch_add(&r->reconnects, 1);
        repl_amqp_failover(r, &r->con_broker);
    }
    repl_amqp_watch_fd(r, &r->con_fd, NULL);
    if (conn) repl_amqp_close(conn, true);
    atomic_store(&r->con_up, 0);
    return NULL;
}

int repl_link_start(struct repl_bus *r)
{
    /* rabbitmq-c sets OpenSSL up on the first TLS socket (under its own
     * lock); do it here once, before the threads exist, so that a failure
     * shows at start. */
    if (r->cfg.tls && amqp_initialize_ssl_library() != AMQP_STATUS_OK) {
        log_error("replication: cannot initialize the TLS library (OpenSSL)");
        return -1;
    }
    /* Signals belong to the loop thread: the threads start with them blocked. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = -1;
    if (pthread_create(&r->pub_thread, NULL, pub_main, r) == 0) {
        r->pub_started = true;
        if (pthread_create(&r->con_thread, NULL, con_main, r) == 0) {
            r->con_started = true;
            rc = 0;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

void repl_link_stop(struct repl_bus *r)
{
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_broadcast(&r->outbox_cv);
    pthread_mutex_unlock(&r->mu);
    if (r->con_started) pthread_join(r->con_thread, NULL);
    if (r->pub_started) pthread_join(r->pub_thread, NULL);
    r->con_started = r->pub_started = false;
}
