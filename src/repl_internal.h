/*
 * repl_internal.h - state shared by repl.c (loop thread) and repl_link.c
 * (broker threads). Only these two files include it.
 *
 * Locking: `mu` guards outbox, inbox, ack_* and stop flags. No thread holds
 * it across a broker call or a store call. Counters written by a broker
 * thread and read by the loop are atomics.
 */
#ifndef VITAMIN_REPL_INTERNAL_H
#define VITAMIN_REPL_INTERNAL_H

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "hlc.h"
#include "repl.h"
#include "repl_codec.h"

/* One encoded batch on its way out, or a received message on its way in. */
struct repl_msg {
    struct repl_msg *next;
    char *data;
    size_t len;
    uint32_t writes;      /* records in it */
    uint64_t tag;         /* inbox: delivery tag; in flight: publish tag */
    uint64_t seq;         /* outbox: WRITES batch sequence number, 0 for sync */
    bool acked;           /* in flight: the broker confirmed it */
    uint64_t gen;         /* inbox: consumer channel generation */
    char routing_key[256];/* outbox: "" = fanout exchange; else a queue name
                             published through the default exchange */
};

struct repl_list {
    struct repl_msg *head, *tail;
    size_t bytes;
    uint64_t writes;
    size_t count;
};

#define REPL_MAX_PEERS 64
struct repl_peer {
    char id[RC_MAX_ID_LEN + 1];
    uint64_t incarnation;
    uint64_t last_seq;
};

/* One outgoing state-transfer stream: a walk of the store sent as SYNC_DATA. */
#define REPL_MAX_STREAMS 8
struct repl_stream {
    bool active;
    char routing_key[256]; /* requester's queue, or "" = the fanout (a push) */
    char target[RC_MAX_ID_LEN + 1]; /* requester's node id, "" for a push */
    uint64_t session;      /* the requester's session id (aux) */
    uint64_t cursor;       /* store_scan position */
    bool begun;            /* the walk has started (cursor 0 is also the end) */
    struct rc_buf buf;     /* batch being filled */
    uint64_t items;        /* records sent so far */
};

struct repl {
    struct repl_config cfg;
    char node_id[RC_MAX_ID_LEN + 1];
    char exchange[256];
    char queue[512];      /* this node's queue: "<exchange>.<node_id>" */
    char host[256], user[256], password[256], vhost[256];
    char cacert[4096], cert[4096], key[4096]; /* TLS files, "" = none */
    uint64_t incarnation; /* random per process start */

    /* loop thread only */
    struct ev_loop *loop;
    struct store *store;
    struct hlc *hlc;
    struct rc_buf cur;    /* batch being filled this loop turn */
    uint64_t next_seq;
    ev_prepare flush_prepare;
    ev_timer linger;           /* group commit: flushes cur within LINGER_S */
    double last_flush;         /* ev_now of the last flush of cur */
    ev_async inbox_async;
    struct repl_peer peers[REPL_MAX_PEERS];
    size_t npeers;
    uint64_t malformed_logged; /* bit per rc_status already logged */
    uint64_t applied, stale, malformed, self_skipped, received, gaps;
    uint64_t lag_last_ms, lag_max_ms, lag_sum_ms, lag_count;
    uint64_t outbox_dropped;   /* writes dropped because the outbox was full */
    uint64_t last_confirmed;   /* confirmed seq last reported to the hook */
    /* state transfer (loop thread) */
    ev_timer sync_timer;       /* drives streams and the sync deadline */
    struct repl_stream streams[REPL_MAX_STREAMS];
    bool syncing;              /* our request is out, not yet answered */
    bool synced_once;          /* the first sync after start has ended */
    bool need_push;            /* our outbox overflowed: push our store */
    uint64_t sync_session;     /* id of our current request */
    double sync_deadline;      /* ev_now after which we stop waiting */
    double last_request;       /* ev_now of the last request (rate limit) */
    uint64_t con_events_seen;  /* consumer (re)connections handled */
    uint64_t queue_losses_seen;
    uint64_t pub_events_seen;  /* publisher (re)connections handled */
    uint64_t sync_started, sync_completed, sync_items, sync_served;

    /* shared, under mu */
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

    /* counters written by broker threads */
    _Atomic uint64_t published_writes, published_batches, reconnects;
    _Atomic uint64_t confirmed_seq; /* every WRITES batch <= this is confirmed */
    _Atomic uint64_t con_events;    /* consumer connections made (queue bound) */
    _Atomic uint64_t queue_losses;  /* connections that found the queue missing */
    _Atomic uint64_t pub_events;    /* publisher connections made */
    ev_async confirm_async;         /* publisher -> loop: confirmed_seq moved */
    _Atomic int pub_up, con_up, ever_up;
};

/* repl_link.c */
int repl_link_start(struct repl *r);
void repl_link_stop(struct repl *r);

/* list helpers (caller holds mu where the list is shared) */
void repl_list_push(struct repl_list *l, struct repl_msg *m);
struct repl_msg *repl_list_pop(struct repl_list *l);
void repl_msg_free(struct repl_msg *m);

#endif
