/*
 * net.c - listeners and connections (see net.h for the contract).
 *
 * A connection's input buffer holds [0, rlen): requests are served in place
 * by the listener's protocol (it may unescape inside the buffer, no copy),
 * the unconsumed tail is moved to the front. The buffer grows up to the
 * protocol's max_input; what a protocol does with more (an error line and
 * discarding, or a close) is its own rule.
 *
 * Connection states: open -> closing (quit, peer EOF or shutdown: no more
 * reading; closed once the reply queue is empty) -> freed.
 */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "latency.h"
#include "log.h"
#include "reply.h"
#include "serve.h"

#define RBUF_INITIAL 8192
#define RBUF_KEEP (64u << 10) /* an empty buffer bigger than this is shrunk */
#define ACCEPT_BATCH 64
#define IOV_BATCH 64

struct conn {
    ev_io rio;              /* readable */
    ev_io wio;              /* writable; armed only while a write would block */
    ev_timer idle;          /* idle_timeout; checks last_active when it fires */
    struct net *net;
    struct listener *listener;       /* the one that accepted it */
    const struct serve_proto *proto; /* its listener's protocol */
    void *session;          /* the protocol's per-connection state */
    int fd;
    bool closing;           /* no more input; close when out is empty */
    bool paused;            /* reading stopped by back-pressure */
    char *rbuf;             /* input bytes [0, rlen) */
    size_t rlen, rcap;
    size_t mem;             /* rcap + out.buf_cap, as counted in client_memory */
    double last_active;     /* ev_now of the last read or write progress */
    uint64_t hold_seq;      /* send nothing until batch hold_seq is confirmed */
    struct conn *hprev, *hnext; /* in net->held while holding */
    bool held;
    struct reply_queue out;
    struct conn *prev, *next;
};

struct listener {
    struct net *net;
    const struct serve_proto *proto;
    uint16_t port;
    int fd;
    ev_io accept_io;
    ev_timer accept_retry;  /* re-enables accepting after EMFILE */
    struct latency_hist latency;  /* every handle() call that consumed input */
    struct latency_hist *cmd_latency; /* per command, proto->ncmds of them (or NULL) */
};

struct net {
    struct ev_loop *loop;
    struct net_config cfg;
    struct store *store;
    struct listener listeners[NET_MAX_LISTENERS];
    size_t nlisteners;
    ev_timer shutdown_timer;
    struct conn *conns;     /* all open connections */
    struct conn *held;      /* connections waiting for a broker confirm */
    uint64_t confirmed_seq; /* replication batches confirmed so far */
    bool shutting_down;
    void (*on_done)(void *);
    void *done_arg;
    struct net_stats stats;
    bool accept_paused;     /* out of descriptors: logged once, not per retry */
};

static void conn_close(struct conn *c);
static bool conn_flush(struct conn *c);
static void conn_flush_accounted(struct conn *c);

static int64_t loop_ms(struct ev_loop *loop) { return (int64_t)(ev_now(loop) * 1000.0); }

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One request served by l's protocol took ns (serve.h, "Latency"). */
static void note_latency(struct listener *l, uint16_t cmd, uint64_t ns)
{
    latency_record(&l->latency, ns);
    if (cmd && cmd < l->proto->ncmds && l->cmd_latency) latency_record(&l->cmd_latency[cmd], ns);
}

static void maybe_done(struct net *n)
{
    if (n->shutting_down && !n->conns && n->on_done) {
        void (*done)(void *) = n->on_done;
        n->on_done = NULL;
        ev_timer_stop(n->loop, &n->shutdown_timer);
        done(n->done_arg);
    }
}

static void held_remove(struct conn *c)
{
    if (!c->held) return;
    if (c->hprev) c->hprev->hnext = c->hnext; else c->net->held = c->hnext;
    if (c->hnext) c->hnext->hprev = c->hprev;
    c->hprev = c->hnext = NULL;
    c->held = false;
}

/* Bring client_memory up to date with c's buffers. */
static void conn_account(struct conn *c)
{
    size_t now = c->rcap + c->out.buf_cap;
    c->net->stats.client_memory += now;
    c->net->stats.client_memory -= c->mem;
    c->mem = now;
}

/* Would growing c's buffers by extra bytes pass max_client_memory? */
static bool over_client_memory(const struct conn *c, size_t extra)
{
    const struct net *n = c->net;
    return n->stats.client_memory + extra > n->cfg.max_client_memory;
}

static void conn_close(struct conn *c)
{
    struct net *n = c->net;
    held_remove(c);
    n->stats.client_memory -= c->mem;
    ev_io_stop(n->loop, &c->rio);
    ev_io_stop(n->loop, &c->wio);
    ev_timer_stop(n->loop, &c->idle);
    close(c->fd);
    reply_queue_free(&c->out);
    if (c->proto->session_end) c->proto->session_end(c->proto->ctx, c->session);
    free(c->session);
    free(c->rbuf);
    if (c->prev) c->prev->next = c->next; else n->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    n->stats.curr_connections--;
    log_debug("connection %d closed", c->fd);
    free(c);
    maybe_done(n);
}

/* Make room to read: grow when the buffer is full of one partial line. */
static int rbuf_room(struct conn *c)
{
    if (c->rlen < c->rcap) return 0;
    size_t cap = c->rcap ? c->rcap * 2 : RBUF_INITIAL;
    size_t max = c->proto->max_input;
    if (cap > max) cap = max > c->rcap ? max : c->rcap;
    if (cap == c->rcap) return 0; /* full at max: the protocol drains it */
    if (c->rcap && over_client_memory(c, cap - c->rcap)) return -1;
    char *nb = realloc(c->rbuf, cap);
    if (!nb) return -1;
    c->rbuf = nb;
    c->rcap = cap;
    conn_account(c);
    return 0;
}

/* Serve every complete request in the buffer (unless paused or closing). */
static void conn_process(struct conn *c)
{
    struct net *n = c->net;
    int64_t now = loop_ms(n->loop);
    uint64_t started = mono_ns(); /* of the next request */
    size_t pos = 0;
    while (pos < c->rlen) {
        if (c->out.pending >= NET_OUTPUT_PAUSE) {
            if (!c->paused) {
                c->paused = true;
                n->stats.reads_paused++;
                ev_io_stop(n->loop, &c->rio);
            }
            break;
        }
        struct serve_outcome res = {.close = false};
        size_t used = c->proto->handle(c->proto->ctx, c->session, c->rbuf + pos,
                                       c->rlen - pos, &c->out, now, &res);
        pos += used;
        if (used) {
            uint64_t done = mono_ns();
            note_latency(c->listener, res.cmd, done - started);
            started = done;
        }
        if (res.confirm_seq > c->hold_seq) c->hold_seq = res.confirm_seq;
        if (res.close) {
            c->closing = true;
            ev_io_stop(n->loop, &c->rio);
            pos = c->rlen; /* input after quit is ignored */
            break;
        }
        if (used == 0) break; /* the rest is an incomplete request */
    }
    if (pos == 0) return;
    if (pos < c->rlen) memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
    c->rlen -= pos;
    if (c->rlen == 0 && c->rcap > RBUF_KEEP) { /* give big buffers back */
        free(c->rbuf);
        c->rbuf = NULL;
        c->rcap = 0;
    }
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct conn *c = w->data;
    if (rbuf_room(c) != 0) {
        c->net->stats.client_memory_closed++;
        log_debug("closing connection %d: client buffers over --max_client_memory", c->fd);
        conn_close(c);
        return;
    }
    ssize_t got = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
    if (got < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        conn_close(c);
        return;
    }
    if (got == 0) { /* peer is done sending: answer what it sent, then close */
        c->closing = true;
        ev_io_stop(loop, &c->rio);
    } else {
        c->rlen += (size_t)got;
        c->net->stats.bytes_read += (uint64_t)got;
        c->last_active = ev_now(loop);
    }
    conn_process(c);
    conn_flush_accounted(c);
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    conn_flush_accounted(w->data);
}

/* Write what is queued; resume a paused client once its replies drain (also
 * while closing: lines it sent before shutdown still get their answers);
 * re-arm watchers from the buffer state; may close. */
/* Returns false if c was closed (and freed). */
static bool conn_flush(struct conn *c)
{
    struct net *n = c->net;
    if (c->hold_seq > n->confirmed_seq) { /* wait for the broker's confirm */
        if (!c->held) {
            c->held = true;
            c->hnext = n->held;
            if (n->held) n->held->hprev = c;
            n->held = c;
            n->stats.replies_held++;
        }
        ev_io_stop(n->loop, &c->wio);
        return true;
    }
    size_t budget = NET_WRITE_BUDGET;
    bool blocked = false; /* the socket took less than offered */
    for (;;) {
        while (c->out.pending > 0 && budget > 0 && !blocked) {
            struct iovec iov[IOV_BATCH];
            int cnt = reply_queue_iov(&c->out, iov, IOV_BATCH, budget);
            size_t want = 0;
            for (int i = 0; i < cnt; i++) want += iov[i].iov_len;
            ssize_t wrote = writev(c->fd, iov, cnt);
            if (wrote < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    blocked = true;
                    break;
                }
                conn_close(c);
                return false;
            }
            reply_queue_consume(&c->out, (size_t)wrote);
            n->stats.bytes_written += (uint64_t)wrote;
            c->last_active = ev_now(n->loop);
            budget -= (size_t)wrote < budget ? (size_t)wrote : budget;
            if ((size_t)wrote < want) blocked = true;
        }
        if (!c->paused || c->out.pending >= NET_OUTPUT_PAUSE / 2) break;
        c->paused = false; /* drained enough: handle the lines that waited */
        if (!c->closing) ev_io_start(n->loop, &c->rio);
        conn_process(c);
        if (c->hold_seq > n->confirmed_seq) return conn_flush(c); /* parks it */
        if (blocked || budget == 0) break;
    }
    if (c->out.pending > 0) {
        ev_io_start(n->loop, &c->wio);
    } else {
        ev_io_stop(n->loop, &c->wio);
        if (c->closing && !c->paused) {
            conn_close(c);
            return false;
        }
    }
    return true;
}

/* conn_flush, then count what the client's buffers hold now; a client whose
 * replies pushed all clients past max_client_memory is closed. */
static void conn_flush_accounted(struct conn *c)
{
    struct net *n = c->net;
    if (!conn_flush(c)) return;
    conn_account(c);
    if (n->stats.client_memory > n->cfg.max_client_memory && c->mem > RBUF_KEEP) {
        n->stats.client_memory_closed++;
        log_debug("closing connection %d: client buffers over --max_client_memory", c->fd);
        conn_close(c);
    }
}

static void on_idle(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct conn *c = w->data;
    double timeout = c->net->cfg.idle_timeout;
    if (timeout <= 0) { /* turned off by a reload */
        ev_timer_stop(loop, w);
        return;
    }
    double left = c->last_active + timeout - ev_now(loop);
    if (left > 0) { /* activity since the timer was armed: sleep the rest */
        w->repeat = left;
        ev_timer_again(loop, w);
        return;
    }
    c->net->stats.idle_closed++;
    log_debug("closing connection %d: idle for %.0f s", c->fd, timeout);
    conn_close(c);
}

/* "ip:port" (or "[ip]:port") of a socket address, "?:0" if unknown. */
static void format_addr(const struct sockaddr_storage *ss, socklen_t len, char *out,
                        size_t cap)
{
    char host[INET6_ADDRSTRLEN], port[8];
    if (getnameinfo((const struct sockaddr *)ss, len, host, sizeof host, port, sizeof port,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf(out, cap, "?:0");
        return;
    }
    snprintf(out, cap, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
}

/* Tell the protocol who connected (only if it asked: two syscalls). */
static void session_start(struct net *n, const struct serve_proto *p, void *session, int fd)
{
    struct serve_peer peer = {.fd = fd};
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
        format_addr(&ss, len, peer.addr, sizeof peer.addr);
    len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
        format_addr(&ss, len, peer.laddr, sizeof peer.laddr);
    p->session_start(p->ctx, session, &peer, loop_ms(n->loop));
}

static void conn_open(struct listener *l, int fd)
{
    struct net *n = l->net;
    struct conn *c = calloc(1, sizeof *c);
    void *session = calloc(1, l->proto->session_size ? l->proto->session_size : 1);
    if (!c || !session) {
        free(c);
        free(session);
        close(fd);
        return;
    }
    c->net = n;
    c->listener = l;
    c->proto = l->proto;
    c->session = session;
    c->fd = fd;
    c->last_active = ev_now(n->loop);
    reply_queue_init(&c->out, n->store);
    ev_io_init(&c->rio, on_read, fd, EV_READ);
    ev_io_init(&c->wio, on_write, fd, EV_WRITE);
    c->rio.data = c->wio.data = c;
    ev_io_start(n->loop, &c->rio);
    if (n->cfg.idle_timeout) {
        ev_timer_init(&c->idle, on_idle, 0.0, (double)n->cfg.idle_timeout);
        c->idle.data = c;
        ev_timer_again(n->loop, &c->idle);
    }
    if (l->proto->session_start) session_start(n, l->proto, session, fd);
    c->next = n->conns;
    if (n->conns) n->conns->prev = c;
    n->conns = c;
    n->stats.curr_connections++;
    n->stats.total_connections++;
}

static void on_accept_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct listener *l = w->data;
    if (!l->net->shutting_down) ev_io_start(loop, &l->accept_io);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct listener *l = w->data;
    struct net *n = l->net;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                if (!n->accept_paused)
                    log_warn("accept: %s; pausing accepts until descriptors free up",
                             strerror(errno));
                n->accept_paused = true;
                ev_io_stop(loop, &l->accept_io);
                ev_timer_set(&l->accept_retry, 0.1, 0.0);
                ev_timer_start(loop, &l->accept_retry);
            }
            return; /* EAGAIN, or a client that went away (ECONNABORTED) */
        }
        if (n->stats.curr_connections >= n->cfg.max_connections) {
            const char *msg = l->proto->busy_reply;
            ssize_t ignored = msg ? write(fd, msg, strlen(msg)) : 0;
            (void)ignored;
            close(fd);
            n->stats.rejected_connections++;
            continue;
        }
        if (n->accept_paused) {
            n->accept_paused = false;
            log_info("accepting clients again");
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn_open(l, fd);
    }
}

static int listen_on(const char *host, uint16_t port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%u", port);
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        log_error("cannot resolve --host %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0) break; /* listen(): net_start */
        log_error("cannot listen on %s:%u: %s", host, port, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static void listeners_close(struct net *n)
{
    for (size_t i = 0; i < n->nlisteners; i++) {
        struct listener *l = &n->listeners[i];
        ev_io_stop(n->loop, &l->accept_io);
        ev_timer_stop(n->loop, &l->accept_retry);
        if (l->fd >= 0) close(l->fd);
        l->fd = -1;
    }
}

static void listeners_free(struct net *n)
{
    for (size_t i = 0; i < n->nlisteners; i++) {
        free(n->listeners[i].cmd_latency);
        n->listeners[i].cmd_latency = NULL;
    }
}

struct net *net_create(struct ev_loop *loop, const struct net_config *cfg,
                       struct store *store)
{
    struct net *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->loop = loop;
    n->cfg = *cfg;
    n->store = store;
    for (size_t i = 0; i < cfg->nlisteners && i < NET_MAX_LISTENERS; i++) {
        struct listener *l = &n->listeners[n->nlisteners++];
        l->net = n;
        l->proto = cfg->listeners[i].proto;
        l->port = cfg->listeners[i].port;
        l->fd = listen_on(cfg->host, l->port);
        if (l->proto->ncmds) l->cmd_latency = calloc(l->proto->ncmds, sizeof *l->cmd_latency);
        if (l->fd < 0 || (l->proto->ncmds && !l->cmd_latency)) {
            listeners_close(n);
            listeners_free(n);
            free(n);
            return NULL;
        }
        ev_io_init(&l->accept_io, on_accept, l->fd, EV_READ);
        l->accept_io.data = l;
        ev_timer_init(&l->accept_retry, on_accept_retry, 0.1, 0.0);
        l->accept_retry.data = l;
    }
    return n;
}

static void on_shutdown_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct net *n = w->data;
    log_warn("shutdown: closing %s clients that did not take their replies in time",
             n->conns ? "some" : "no");
    while (n->conns) conn_close(n->conns);
    maybe_done(n);
}

void net_shutdown(struct net *n, double timeout, void (*done)(void *arg), void *arg)
{
    if (n->shutting_down) return;
    n->shutting_down = true;
    n->on_done = done;
    n->done_arg = arg;
    listeners_close(n);
    ev_timer_init(&n->shutdown_timer, on_shutdown_timeout, timeout, 0.0);
    n->shutdown_timer.data = n;
    ev_timer_start(n->loop, &n->shutdown_timer);
    struct conn *c = n->conns;
    while (c) {
        struct conn *next = c->next;
        c->closing = true;
        ev_io_stop(n->loop, &c->rio);
        conn_flush(c); /* closes it once every received line is answered */
        c = next;
    }
    maybe_done(n);
}

void net_destroy(struct net *n)
{
    if (!n) return;
    while (n->conns) conn_close(n->conns);
    listeners_close(n);
    listeners_free(n);
    ev_timer_stop(n->loop, &n->shutdown_timer);
    free(n);
}

const struct net_stats *net_get_stats(const struct net *n) { return &n->stats; }

size_t net_nlisteners(const struct net *n) { return n->nlisteners; }

void net_latency(const struct net *n, size_t i, struct net_latency *out)
{
    const struct listener *l = &n->listeners[i];
    *out = (struct net_latency){
        .protocol = l->proto->name,
        .port = l->port,
        .all = &l->latency,
        .cmd = l->cmd_latency,
        .cmd_names = l->cmd_latency ? l->proto->cmd_names : NULL,
        .ncmds = l->cmd_latency ? l->proto->ncmds : 0,
    };
}

void net_set_limits(struct net *n, uint32_t max_connections, uint32_t idle_timeout)
{
    n->cfg.max_connections = max_connections;
    n->cfg.idle_timeout = idle_timeout;
}

void net_start(struct net *n)
{
    if (n->shutting_down) return;
    /* Until now the ports were only bound: connections were refused, so a
     * health check saw this node as down rather than hanging on it. */
    for (size_t i = 0; i < n->nlisteners; i++) {
        struct listener *l = &n->listeners[i];
        if (listen(l->fd, 1024) != 0) {
            log_error("cannot listen on %s:%u: %s", n->cfg.host, l->port, strerror(errno));
            continue;
        }
        ev_io_start(n->loop, &l->accept_io);
    }
}

void net_confirmed(struct net *n, uint64_t seq)
{
    n->confirmed_seq = seq;
    struct conn *c = n->held;
    while (c) {
        struct conn *next = c->hnext;
        if (c->hold_seq <= seq) {
            held_remove(c);
            conn_flush(c); /* may close c */
        }
        c = next;
    }
}
