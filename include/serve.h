/*
 * serve.h - the contract between the connection layer (net.c) and a
 * protocol's request path (vt_serve.c, mc_serve.c, resp_serve.c).
 *
 * net owns sockets, buffers, back-pressure and limits; it hands a
 * connection's unread input to the protocol's handle(), which serves at
 * most one request from the front of it (parse -> exec -> compose) and says
 * how many bytes it used. The protocol keeps whatever it must remember
 * between calls (authentication, a partial-line scan position, RESP3...)
 * in a per-connection session of session_size bytes that net allocates,
 * zeroes and frees. Nothing else flows between them.
 *
 * Latency. net times each handle() call that consumed input (one clock
 * read per call: the end of one is the start of the next) into its
 * listener's histogram (latency.h), and into the histogram of the command
 * the protocol names in serve_outcome.cmd: an index into its cmd_names
 * (0, or a NULL name: no command, e.g. a blank line or a protocol error).
 * The time is the server's own work on the request (parse, execute,
 * compose), not the network's or the wait in the socket buffers.
 */
#ifndef VITAMIN_SERVE_H
#define VITAMIN_SERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct reply_queue;

/* Where a connection comes from, for protocols that show it (Redis's
 * CLIENT LIST). Addresses are "ip:port", "[ip]:port" for IPv6. */
struct serve_peer {
    int fd;
    char addr[64];  /* the client's address */
    char laddr[64]; /* the address it connected to */
};

/* What one handle() call decided, besides its reply. */
struct serve_outcome {
    bool close;           /* close once the replies queued so far are sent */
    uint64_t confirm_seq; /* send nothing more until replication batch
                             confirm_seq is confirmed (0: no wait) */
    uint16_t cmd;         /* the command served: index into cmd_names (0: none) */
};

struct serve_proto {
    const char *name;     /* "vitamin", "memcache", "redis" (logs, stats) */
    size_t session_size;  /* bytes of per-connection state, zeroed at accept */
    /*
     * Serve at most one request from in[0..len) (the protocol may rewrite
     * those bytes, e.g. to unescape in place). Returns the bytes consumed:
     * 0 means nothing can be done until more input arrives. A protocol may
     * consume bytes without a reply (discarding garbage). Once len reaches
     * max_input, handle must consume something or set close.
     */
    size_t (*handle)(void *ctx, void *session, char *in, size_t len,
                     struct reply_queue *out, int64_t now_ms,
                     struct serve_outcome *res);
    /* Optional: a connection was accepted; called once, before any
     * handle(). Only protocols that set it cost net the address lookups. */
    void (*session_start)(void *ctx, void *session, const struct serve_peer *peer,
                          int64_t now_ms);
    /* Optional: the connection is going away (free what session owns). */
    void (*session_end)(void *ctx, void *session);
    size_t max_input;     /* the most unread input a connection may hold */
    const char *busy_reply; /* sent to a client refused over max_connections */
    void *ctx;            /* the protocol's own state, passed to handle */
    const char *const *cmd_names; /* command names by serve_outcome.cmd, for
                                     per-command latency; NULL: none */
    uint16_t ncmds;       /* entries of cmd_names */
};

#endif
