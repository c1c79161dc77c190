/*
 * repl.h - master-master replication over a RabbitMQ fanout exchange.
 *
 * Owns: the broker link (two threads, each with its own AMQP connection:
 * a publisher and a consumer), the outbox of local writes waiting to be
 * published, the inbox of received batches, per-origin sequence tracking,
 * and the replication counters.
 *
 * Threads. The event-loop thread alone touches the store. It appends each
 * local write to the current batch; at most every 1 ms (ev_prepare) the
 * batch moves to the outbox, which the publisher thread drains. The
 * consumer thread puts received batches in the inbox and wakes the loop
 * with ev_async; the loop decodes, applies by LWW, and tells the consumer
 * thread how far it may ack. The loop never makes a broker call and never
 * waits on a lock held across broker I/O.
 *
 * State transfer (repl_sync.c). When a node starts, finds its queue lost,
 * or sees a gap in a peer's batch sequence, it sends SYNC_REQUEST to the
 * pool and streams its own store to every peer (SYNC_DATA on the fanout);
 * each peer answers a request by streaming its store to the requester's
 * queue, in numbered messages with a record total, so the requester knows
 * whether it got everything and asks again (with backoff) until it did.
 * All of it merges by LWW, so it heals both ways and never loops: transfer
 * traffic triggers no transfer. Streams advance a bounded slice per loop
 * turn and pause while the outbox is half full.
 *
 *   loop thread                  publisher thread        consumer thread
 *   write -> cur batch -prepare-> outbox -> publish(confirm) -> exchange
 *   apply <-async- inbox <------------------------------- consume(queue)
 */
#ifndef VITAMIN_REPL_H
#define VITAMIN_REPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct store;
struct hlc;
struct store_write;
struct stats_visitor;

#define REPL_MAX_BROKERS 16
#define REPL_MAX_NAME 255 /* longest broker host name */

/* One broker node of --rabbitmq_host. */
struct repl_broker {
    const char *host;
    uint16_t port;
};

struct repl_config {
    struct repl_broker brokers[REPL_MAX_BROKERS]; /* the cluster's nodes */
    size_t nbrokers;
    unsigned heartbeat_s;         /* AMQP heartbeat */
    unsigned confirm_timeout_s;   /* a publish neither confirmed nor nacked
                                     this long: the link counts as lost */
    bool classic_queue;           /* a classic queue, not a quorum queue */
    uint32_t queue_ttl_s;         /* our queue outlives us this long (x-expires) */
    size_t queue_max_bytes;       /* bound of our queue (x-max-length-bytes) */
    double anti_entropy_s;        /* seconds between digest rounds; 0 = off */
    const char *user;
    const char *password;
    const char *vhost;
    const char *exchange;
    const char *node_id;
    uint32_t origin_tag;          /* this node's LWW tie-break tag */
    size_t outbox_bytes;          /* bound of unpublished writes */
    bool confirm;                 /* --replication_ack=confirm: never drop a
                                     batch; refuse writes while full instead */
    /* TLS to the broker (rabbitmq-c's OpenSSL socket) when tls is set.
     * cacert: CA file (PEM); cert + key: optional client certificate;
     * tls_verify: check the broker's certificate chain and host name. */
    int tls;
    const char *cacert, *cert, *key; /* NULL = not given */
    int tls_verify;
    /* Called on the loop thread after a replicated write with an expiry
     * (or a tombstone) was applied, so the expiry timer can re-arm. */
    void (*applied_hook)(void *arg, int64_t expire_ms);
    void *applied_hook_arg;
    /* Called on the loop thread when every WRITES batch up to seq has been
     * confirmed by the broker (for --replication_ack=confirm). */
    void (*confirmed_hook)(void *arg, uint64_t seq);
    void *confirmed_hook_arg;
    /* Called on the loop thread when the first state transfer after start
     * is complete (or found no peer to answer). For --sync_before_serve. */
    void (*synced_hook)(void *arg);
    void *synced_hook_arg;
};

struct repl;

/* Start the broker threads. Returns NULL on ENOMEM or thread failure. */
struct repl *repl_create(struct ev_loop *loop, const struct repl_config *cfg,
                         struct store *store, struct hlc *hlc);
/* Loop thread: may a write be accepted now? False only in confirm mode
 * while the outbox is full (the write would be neither sent nor confirmed). */
bool repl_write_allowed(struct repl *r);
/* Loop thread: queue a local write, as applied to the store (both
 * registers filled in), for publication. Returns the sequence number of
 * the batch that carries it (see confirmed_hook). */
uint64_t repl_local_write(struct repl *r, const struct store_write *w);
/* The same for an expiry change (touch, expire): w carries the value it
 * was made on, with that value's own stamp, so receivers that lack the
 * value get it too, and never a newer one's loss. */
uint64_t repl_local_touch(struct repl *r, const struct store_write *w);
/* Loop thread: queue a flush (watermark stamp). Returns its batch number. */
uint64_t repl_local_flush(struct repl *r, uint64_t version, uint32_t origin);
/*
 * Loop thread, on shutdown: hand the last batch to the publisher and give
 * it up to timeout seconds to publish the outbox; then stop both threads.
 * Logs how many writes did not leave. Blocks the (stopping) loop.
 */
void repl_shutdown(struct repl *r, double timeout);
void repl_destroy(struct repl *r);
/* Every replication statistic (stats.h), in stats() order. */
void repl_stats_visit(const struct repl *r, const struct stats_visitor *v);
/* The values of repl_state, NULL-terminated ("off" when standalone). */
extern const char *const repl_state_names[];

#endif
