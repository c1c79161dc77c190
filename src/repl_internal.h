/*
 * repl_internal.h - what the parts of replication share: repl.c (the loop
 * side: batches, peers, applying), repl_sync.c (state transfer) and
 * repl_link.c (the broker threads). Nothing else includes it.
 *
 * struct repl_bus is the one thing the broker threads see: the settings
 * (fixed after repl_create), the lists and flags under `mu`, and counters
 * they publish as atomics. No thread holds `mu` across a broker call or a
 * store call. Everything only the loop thread touches lives in struct repl
 * (private to repl.c) and struct repl_sync (private to repl_sync.c), which
 * talk through the functions declared here.
 */
#ifndef VITAMIN_REPL_INTERNAL_H
#define VITAMIN_REPL_INTERNAL_H

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "repl.h"
#include "repl_codec.h"

struct item;
struct reply_queue;

#define REPL_BATCH_MAX_BYTES (256u << 10)
#define REPL_QUEUE_MAX (RC_MAX_ID_LEN + 258) /* "<exchange>.<node id>" + NUL */

/* One encoded batch on its way out, or a received message on its way in. */
struct repl_msg {
    struct repl_msg *next;
    char *data;
    size_t len;
    uint32_t writes;      /* records in it */
    uint64_t tag;         /* inbox: delivery tag; in flight: publish tag */
    uint64_t seq;         /* outbox: WRITES batch sequence number, 0 for sync */
    bool acked;           /* in flight: the broker confirmed it */
    int64_t sent_ms;      /* in flight: when it was published (monotonic) */
    uint64_t gen;         /* inbox: consumer channel generation */
    char routing_key[REPL_QUEUE_MAX]; /* outbox: "" = fanout exchange; else a
                                         queue name, via the default exchange */
};

struct repl_list {
    struct repl_msg *head, *tail;
    size_t bytes;
    uint64_t writes;
    size_t count;
};

struct repl_bus {
    /* settings, fixed after repl_create */
    struct repl_config cfg;
    char node_id[RC_MAX_ID_LEN + 1];
    char exchange[RC_MAX_ID_LEN + 1];
    char queue[REPL_QUEUE_MAX]; /* this node's queue: "<exchange>.<node_id>" */
    char hosts[REPL_MAX_BROKERS][RC_MAX_ID_LEN + 1]; /* cfg.brokers' hosts */
    char user[256], password[256], vhost[256];
    size_t first_broker;       /* where both threads start (random per node) */
    char cacert[4096], cert[4096], key[4096]; /* TLS files, "" = none */
    struct ev_loop *loop;
    ev_async inbox_async;      /* consumer -> loop: the inbox has messages */
    ev_async confirm_async;    /* publisher -> loop: confirmed_seq moved */

    /* under mu */
    pthread_mutex_t mu;
    pthread_cond_t outbox_cv;
    struct repl_list outbox;   /* batches waiting for the publisher */
    struct repl_list inbox;    /* received, waiting for the loop */
    uint64_t ack_gen, ack_tag; /* loop: applied up to (gen, tag) */
    uint64_t handed;           /* messages ever put in the outbox */
    bool stop;                 /* threads exit */
    bool draining;             /* publisher: publish what is left, then exit */

    /* broker threads */
    pthread_t pub_thread, con_thread;
    bool pub_started, con_started;

    /* written by broker threads, read by the loop */
    _Atomic uint64_t published_writes, published_batches, reconnects;
    _Atomic uint64_t confirmed_seq; /* every WRITES batch <= this is confirmed */
    _Atomic uint64_t con_events;    /* consumer connections made (queue bound) */
    _Atomic uint64_t queue_losses;  /* connections that found the queue missing */
    _Atomic uint64_t pub_events;    /* publisher connections made */
    _Atomic int pub_up, con_up, ever_up;
    /* the watchdog (repl_watchdog): each thread's socket while connected
     * (-1 otherwise; written and shut down under mu, so a closed and reused
     * descriptor is never touched) and when its current library call began
     * (ms on CLOCK_MONOTONIC, 0 = not in one) */
    int pub_fd, con_fd;
    _Atomic int64_t pub_busy_ms, con_busy_ms;
    _Atomic uint64_t watchdog_resets;
    _Atomic size_t pub_broker, con_broker; /* index of the broker in use */
    _Atomic uint64_t failovers;     /* moves to another broker of the list */
    _Atomic uint64_t confirm_timeouts; /* links dropped: a publish got neither a
                                          confirm nor a nack in time */
    _Atomic uint64_t queue_type_mismatch; /* our queue exists with the other type */
};

/* ---- repl_link.c: the broker threads ---- */
int repl_link_start(struct repl_bus *b);
void repl_link_stop(struct repl_bus *b);
/* Loop thread, periodically: a broker thread stuck in one library call for
 * more than ~2 heartbeats (rabbitmq-c can block for ever on a frozen broker
 * inside a publish) gets its socket shut down, which makes the call fail. */
void repl_watchdog(struct repl_bus *b);
/* list helpers (caller holds mu where the list is shared) */
void repl_list_push(struct repl_list *l, struct repl_msg *m);
struct repl_msg *repl_list_pop(struct repl_list *l);
void repl_msg_free(struct repl_msg *m);

/* ---- repl.c, for repl_sync.c ---- */
/* A header for a message from this node (kind, origin, incarnation; the
 * rest zeroed). */
void repl_header(const struct repl *r, enum rc_kind kind, struct rc_header *h);
/* Is id this node's id? */
bool repl_is_self(const struct repl *r, const char *id, size_t len);
/* The queue of node id into out ("<exchange>.<id>"). Returns 0, or -1 if
 * it does not fit. */
int repl_queue_of(const struct repl *r, const char *id, size_t len, char *out,
                  size_t cap);
/* Hand an encoded message to the publisher (b is emptied); routing_key
 * "" = the fanout, else a queue; seq: its WRITES number, 0 for others. */
void repl_send(struct repl *r, struct rc_buf *b, const char *routing_key, uint64_t seq);
/* Is the outbox more than half full (transfers should wait)? */
bool repl_outbox_backed_up(struct repl *r);
/* Is the publisher connected? */
bool repl_link_up(const struct repl *r);
/* The number of our last WRITES batch closed (handed to the publisher):
 * every write in batches up to it is in the store. */
uint64_t repl_writes_seq(const struct repl *r);
/* Does a peer's first batch of a new incarnation still wait for a
 * transfer from that peer to cover the batches before it? */
bool repl_peers_unverified(const struct repl *r);
/* A transfer from peer id covered its batches up to base of incarnation. */
void repl_peer_covered(struct repl *r, const char *id, size_t len,
                       uint64_t incarnation, uint64_t base);
/* Our transfer ended (complete, or no peer exists); first: the first one
 * since start. */
void repl_transfer_ended(struct repl *r, bool first);
/* Quiet: nothing written or applied lately, the outbox and inbox empty
 * (anti-entropy compares digests only then). */
bool repl_idle(struct repl *r);

/* ---- repl_stream.c: state transfer, the serving side ---- */
struct ksum;
struct repl_streams;
struct repl_streams *repl_streams_create(struct repl *r, struct store *store);
void repl_streams_destroy(struct repl_streams *ss);
/* A peer asked (session): a full walk, or (incremental) digests first. */
void repl_streams_request(struct repl_streams *ss, const char *routing_key, const char *target,
                          size_t target_len, uint64_t session, bool incremental, double now);
/* A RANGES message for us from the requester h->origin. */
void repl_streams_ranges(struct repl_streams *ss, const struct rc_header *h,
                         struct rc_reader *rd, double now);
/* A SUMMARY message for us from the requester h->origin. */
void repl_streams_summary(struct repl_streams *ss, const struct rc_header *h,
                          struct rc_reader *rd, double now);
/* Push our store to a node's queue, or to the pool (routing_key ""): only
 * the leaves set in the bitmap, if not NULL, and of those only the keys in
 * asked, if not NULL (the push takes asked over; empty: nothing but our
 * flush watermarks). Not numbered. */
void repl_streams_push(struct repl_streams *ss, const char *routing_key, const char *target,
                       size_t target_len, const uint8_t *leaves, struct ksum *asked,
                       double now);
/* Send a peer answering our request (session) our key summaries of the
 * leaves in the bitmap. false: no stream could be opened (all busy, or no
 * memory); nothing is sent. */
bool repl_streams_summarize(struct repl_streams *ss, const char *routing_key,
                            const char *target, size_t target_len, uint64_t session,
                            const uint8_t *leaves, double now);
/* Are our key summaries for that peer and session still being sent? */
bool repl_streams_summarizing(const struct repl_streams *ss, const char *target,
                              size_t target_len, uint64_t session);
/* One bounded step of every walk. Returns true while any is walking. */
bool repl_streams_step(struct repl_streams *ss, int64_t now_ms, double now);
void repl_streams_stats(const struct repl_streams *ss, const struct stats_visitor *v);

/* ---- repl_sync.c: state transfer, the asking side; anti-entropy ---- */
struct repl_sync;
struct repl_sync *repl_sync_create(struct repl *r, struct ev_loop *loop,
                                   struct store *store, double anti_entropy_s);
void repl_sync_destroy(struct repl_sync *y);
/* Ask the pool for its data (unless a transfer is under way), pushing ours
 * to it if we hold any. */
void repl_sync_request(struct repl_sync *y, const char *why);
/* Every valid message (len bytes; rd reads its records), before its records
 * are applied: from another node (self false), or one of our own that came
 * back (self true). DIGESTS, RANGES, ROOT, SUMMARY and WANTS are handled
 * here entirely. */
void repl_sync_on_message(struct repl_sync *y, const struct rc_header *h,
                          struct rc_reader *rd, size_t len, bool self);
/* n records of transfers were applied. */
void repl_sync_applied(struct repl_sync *y, uint64_t n);
/* The consumer reconnected (what was in flight may be lost). */
void repl_sync_reconnected(struct repl_sync *y);
/* Our writes were dropped: push our store to the pool when the link is up. */
void repl_sync_push(struct repl_sync *y);
/* Is our transfer under way? */
bool repl_sync_waiting(const struct repl_sync *y);
void repl_sync_stats(const struct repl_sync *y, const struct stats_visitor *v);

#endif
