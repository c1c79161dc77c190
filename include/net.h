/*
 * net.h - the listener and the client connections on the libev loop.
 *
 * Owns: the listeners (one per protocol: --port, --memcache_port,
 * --redis_port), sockets, per-connection input buffers and reply queues,
 * read/write watchers, idle timers, connection limits and the connection
 * counters. Hands each connection's unread input to its listener's protocol
 * (serve.h) one request at a time; knows nothing about what a request means.
 *
 * Per connection, per loop turn: one read(), every complete request in the
 * buffer served, then one writev() of all replies (more only if the
 * socket takes it and the per-wakeup budget allows). EV_WRITE is armed only
 * when a write would block. A client whose unsent replies pass
 * NET_OUTPUT_PAUSE is not read from until they drain (back-pressure), so
 * its memory stays bounded; if it makes no progress for idle_timeout
 * seconds it is closed. The buffers of all clients together stay under
 * max_client_memory (plus each client's first 8 KiB read buffer, bounded
 * by max_connections): a client whose buffer would grow past it is closed.
 */
#ifndef VITAMIN_NET_H
#define VITAMIN_NET_H

#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct store;
struct serve_proto;
struct latency_hist;
struct net;

#define NET_OUTPUT_PAUSE (1u << 20)      /* stop reading above this many unsent bytes */
#define NET_WRITE_BUDGET (4u << 20)      /* bytes written to one client per wakeup */

#define NET_MAX_LISTENERS 4

struct net_listener {
    uint16_t port;
    const struct serve_proto *proto; /* must outlive the net */
};

struct net_config {
    const char *host;
    struct net_listener listeners[NET_MAX_LISTENERS];
    size_t nlisteners;
    uint32_t max_connections; /* over all listeners */
    uint32_t idle_timeout; /* seconds; 0 = never */
    size_t max_client_memory; /* bytes of input and output buffers, all clients */
};

struct net_stats {
    uint64_t curr_connections;
    uint64_t total_connections;
    uint64_t rejected_connections; /* over max_connections */
    uint64_t idle_closed;          /* closed by idle_timeout */
    uint64_t reads_paused;         /* times a client was paused by back-pressure */
    uint64_t bytes_read;
    uint64_t bytes_written;
    uint64_t replies_held;         /* times a client waited for a broker confirm */
    uint64_t client_memory;        /* bytes of client buffers now */
    uint64_t client_memory_closed; /* clients closed to keep under max_client_memory */
};

/* Bind every listener (listening starts with net_start). Returns NULL
 * (after logging why) on failure. */
struct net *net_create(struct ev_loop *loop, const struct net_config *cfg,
                       struct store *store);
/*
 * Stop accepting, stop reading, finish sending replies already made, close
 * every client, then call done(arg) (at most timeout seconds later).
 */
void net_shutdown(struct net *n, double timeout, void (*done)(void *arg), void *arg);
void net_destroy(struct net *n);
const struct net_stats *net_get_stats(const struct net *n);

/* Request service times of one listener (serve.h, "Latency"). */
struct net_latency {
    const char *protocol;            /* its protocol's name */
    uint16_t port;
    const struct latency_hist *all;  /* every request of the listener */
    const struct latency_hist *cmd;  /* by serve_outcome.cmd; NULL: no names */
    const char *const *cmd_names;    /* ncmds of them (a NULL name: none) */
    uint16_t ncmds;
};
size_t net_nlisteners(const struct net *n);
/* Listener i < net_nlisteners(n), in net_config order. */
void net_latency(const struct net *n, size_t i, struct net_latency *out);
/* New limits (a reload): they apply to the next accept and the next idle
 * check of each connection (an idle timer started with 0 = never stays
 * off until the client reconnects). */
void net_set_limits(struct net *n, uint32_t max_connections, uint32_t idle_timeout);
/* Start listening and accepting clients (net_create only binds, so until
 * then connections are refused). */
void net_start(struct net *n);
/*
 * Replication batches up to seq are confirmed by the broker: send the
 * replies that waited for them. A connection whose line made a write in
 * confirm mode holds all its output (so replies stay in order) until then.
 */
void net_confirmed(struct net *n, uint64_t seq);

#endif
