/*
 * vitamin-benchmark - a closed-loop load generator for Vitamin, memcached
 * (text protocol) and Redis (RESP), in the spirit of redis-benchmark and
 * memtier_benchmark. One thread, one libev loop, -c connections.
 *
 * Closed loop: each connection keeps exactly -P requests in flight. It sends
 * P, and every read that completes k replies is answered by k new requests,
 * appended to the write buffer and sent with one write(). Replies come back
 * in request order, so a ring of P (op, send time) entries per connection is
 * all the bookkeeping there is:
 *
 *   wbuf  [ preformatted requests not yet written ]
 *   ring  [ op | sent_ns ] x P, head = oldest request still unanswered
 *   rbuf  [ parsed ... | partial reply ]  (the tail moves to the front)
 *
 * Requests are preformatted once per run (bench/wire.c: a template per op
 * with the key digits patched in), so making one costs a memcpy and 12
 * digit stores. Keys are "key:%012d" over [0, -r) (shifted by
 * --key-offset, to reach a range no other run used): uniform, or with
 * --zipf S Zipf-distributed (key k has weight 1/(k+1)^S; a precomputed
 * CDF and a binary search); values are -d bytes of [A-Za-z0-9], so no
 * protocol needs escaping. With --set-on-miss a get that misses is
 * followed by a set of that key (a cache filled on demand), which is how
 * the hit ratio of an eviction policy is measured. Replies are parsed
 * incrementally by bench/wire.c's pure parsers.
 *
 * Latency is measured from the write of a request's batch to the return of
 * the read() that completed its reply (one clock read per read event), in
 * microseconds, into bench/hist.c's log-linear histogram (32 linear
 * sub-buckets per power of two).
 *
 * Phases: prefill (optional; a set of every key once, in key order, spread
 * over all connections) -> run (-n requests or -t seconds) -> done. Only
 * the run is measured; reply errors are counted in both.
 *
 * Open loop (--rate R): the run offers R requests per second over all the
 * connections together, whatever the replies do. Request i is due at
 * t0 + i/R; a pacing timer (every millisecond) hands the requests due so
 * far to the connections round-robin, one each per pass, to any connection
 * with fewer than -P in flight. Latency is still measured from the write;
 * how far behind its due time a request was written (the pacing tick, or
 * waiting for a free slot when the server cannot keep up) is reported
 * apart, as behind_max_us, and the ops/s achieved say whether the rate was
 * held. Prefill is never paced.
 *
 * --series MS prints, every MS milliseconds of the run, one line with the
 * wall-clock time and that interval's ops, errors and latency p50/p99/max
 * (a JSON object with --json), before the final summary.
 *
 * The program is this loop and the summary; its command line is
 * bench/opts.c. It is not part of the server and links nothing of
 * libvitamin.
 */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench/hist.h"
#include "bench/opts.h"
#include "bench/wire.h"

#define RBUF_MIN (256u << 10)

/* ---- the load generator ------------------------------------------------ */

enum phase { PH_PREFILL, PH_RUN, PH_DONE };

struct bench;

struct conn {
    ev_io rio;              /* readable */
    ev_io wio;              /* writable; armed only while a write is partial */
    struct bench *b;        /* the run it belongs to */
    int fd;                 /* -1 once failed */
    char *rbuf;             /* received bytes [0, rlen) */
    size_t rlen, rcap;      /* bytes held, bytes allocated */
    char *wbuf;             /* requests [woff, wlen) still to write */
    size_t wlen, woff, wcap; /* end, first unwritten byte, allocated */
    uint8_t *ops;           /* ring of P: op of each request in flight */
    uint64_t *keys;         /* ring of P: its key (--set-on-miss) */
    uint64_t *sent_ns;      /* ring of P: when its batch was written */
    unsigned head;          /* oldest request in flight */
    unsigned inflight;      /* requests sent and not answered */
};

/* Replies of the measured run, by kind (errors: error replies, plus the
 * requests lost with a failed connection). */
struct counters {
    uint64_t ops, gets, sets, hits, misses, errors;
};

struct bench {
    struct options o;       /* as parsed; read-only after setup */
    struct ev_loop *loop;
    struct conn *conns;     /* o.conns of them */
    unsigned live;          /* connections not failed */
    struct wire_tmpl set_t, get_t; /* the preformatted requests */
    uint64_t rng;           /* splitmix64 state */
    uint32_t set_cut;       /* op is a set when 32 random bits < set_cut */
    double *zipf_cdf;       /* --zipf: cdf[k] = P(key <= k) */
    uint64_t *refill;       /* --set-on-miss: keys to set, a ring of refill_cap */
    size_t refill_cap, refill_head, refill_len;
    bool all_sets;          /* --ratio N:0 (set_cut cannot say 100%) */
    enum phase phase;
    uint64_t prefill_next;  /* next key to prefill */
    uint64_t prefill_errors; /* error replies and lost requests in the prefill */
    double prefill_secs;    /* how long the prefill took */
    uint64_t issued;        /* run-phase requests made */
    uint64_t inflight;      /* over all connections */
    struct counters c;      /* run phase */
    struct hist hist;       /* run-phase latency, us */
    struct hist ihist;      /* --series: latency of the current interval */
    uint64_t iops, ierrors; /* --series: ops and errors of the current interval */
    uint64_t ins;           /* --series: when the current interval started */
    unsigned rr;            /* --rate: next connection to offer a request to */
    uint64_t behind_max_ns; /* --rate: latest write of a request after its due time */
    uint64_t t0_ns, t_end_ns; /* the measured run (t0: also the prefill's start) */
    uint64_t last_reply_ns; /* for the --timeout watchdog */
    double cpu0, cpu_secs;  /* this process's CPU over the run */
    uint64_t tick_ops;      /* c.ops at the last progress line */
    uint64_t tick_ns;       /* and when it was printed */
    bool tty;               /* stderr is a terminal: progress lines */
    bool failed;            /* a connection failed, timeout or SIGINT: exit 1 */
    ev_timer deadline;      /* -t */
    ev_timer tick;          /* progress line and watchdog, every second */
    ev_timer pace;          /* --rate: hands out due requests, every ms */
    ev_timer series;        /* --series */
    ev_signal sigint;       /* stop early, still print the summary */
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static uint64_t rand64(struct bench *b)
{
    uint64_t z = (b->rng += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static void finish(struct bench *b)
{
    if (b->phase == PH_DONE) return;
    b->t_end_ns = b->phase == PH_RUN ? now_ns() : b->t0_ns;
    b->cpu_secs = cpu_now() - b->cpu0;
    b->phase = PH_DONE;
    ev_break(b->loop, EVBREAK_ALL);
}

/* --rate: the requests due by now (request i is due at t0 + i/rate). */
static uint64_t due_by(const struct bench *b, uint64_t now)
{
    return (uint64_t)((double)(now - b->t0_ns) * b->o.rate / 1e9) + 1;
}

/* Pick the next request; false when nothing more is to be sent now. */
static bool next_request(struct bench *b, uint64_t now, enum wire_op *op, uint64_t *key)
{
    if (b->phase == PH_PREFILL) {
        if (b->prefill_next >= b->o.keyspace) return false;
        *op = WIRE_SET;
        *key = b->prefill_next++;
        return true;
    }
    if (b->phase != PH_RUN) return false;
    if (b->o.seconds == 0 && b->issued >= b->o.requests) return false;
    if (b->o.rate > 0 && b->issued >= due_by(b, now)) return false;
    if (b->refill_len) { /* a missed get's set first (not counted in -n) */
        *op = WIRE_SET;
        *key = b->refill[b->refill_head];
        b->refill_head = (b->refill_head + 1) % b->refill_cap;
        b->refill_len--;
        return true;
    }
    b->issued++;
    uint64_t r = rand64(b);
    *op = b->all_sets || (uint32_t)r < b->set_cut ? WIRE_SET : WIRE_GET;
    if (b->zipf_cdf) { /* the first k with cdf[k] >= u */
        double u = (double)(rand64(b) >> 11) / 9007199254740992.0;
        uint64_t lo = 0, hi = b->o.keyspace - 1;
        while (lo < hi) {
            uint64_t mid = lo + (hi - lo) / 2;
            if (b->zipf_cdf[mid] < u) lo = mid + 1;
            else hi = mid;
        }
        *key = lo;
    } else {
        *key = (uint64_t)(((unsigned __int128)rand64(b) * b->o.keyspace) >> 64);
    }
    return true;
}

/* --set-on-miss: remember key to set next. */
static void refill_push(struct bench *b, uint64_t key)
{
    if (b->refill_len == b->refill_cap) return; /* more misses than slots: drop */
    b->refill[(b->refill_head + b->refill_len) % b->refill_cap] = key;
    b->refill_len++;
}

static void conn_fail(struct conn *c, const char *why)
{
    struct bench *b = c->b;
    if (c->fd < 0) return;
    fprintf(stderr, "%svitamin-benchmark: connection %ld: %s\n", b->tty ? "\n" : "",
            (long)(c - b->conns), why);
    ev_io_stop(b->loop, &c->rio);
    ev_io_stop(b->loop, &c->wio);
    close(c->fd);
    c->fd = -1;
    b->inflight -= c->inflight;
    if (b->phase == PH_RUN) b->c.errors += c->inflight;
    else b->prefill_errors += c->inflight;
    c->inflight = 0;
    b->failed = true;
    if (--b->live == 0) finish(b);
}

/* Append one request to wbuf if the connection has a free slot and one is
 * to be sent now; false otherwise. */
static bool conn_add(struct conn *c, uint64_t now)
{
    struct bench *b = c->b;
    unsigned P = b->o.pipeline;
    enum wire_op op;
    uint64_t key;
    if (c->fd < 0 || c->inflight >= P || !next_request(b, now, &op, &key)) return false;
    const struct wire_tmpl *t = op == WIRE_SET ? &b->set_t : &b->get_t;
    if (c->wcap - c->wlen < t->len) {
        size_t cap = c->wcap * 2 + t->len;
        char *nb = realloc(c->wbuf, cap);
        if (!nb) {
            conn_fail(c, "out of memory");
            return false;
        }
        c->wbuf = nb;
        c->wcap = cap;
    }
    wire_tmpl_put(t, c->wbuf + c->wlen, b->o.key_offset + key);
    c->wlen += t->len;
    unsigned slot = (c->head + c->inflight) % P;
    c->ops[slot] = (uint8_t)op;
    c->keys[slot] = key;
    c->sent_ns[slot] = now;
    if (b->o.rate > 0 && b->phase == PH_RUN) { /* how late against the schedule */
        uint64_t due = b->t0_ns + (uint64_t)((double)(b->issued - 1) * 1e9 / b->o.rate);
        if (now > due && now - due > b->behind_max_ns) b->behind_max_ns = now - due;
    }
    c->inflight++;
    b->inflight++;
    return true;
}

/* Top the connection up to P requests in flight, appended to wbuf. */
static void conn_fill(struct conn *c, uint64_t now)
{
    while (conn_add(c, now)) {
    }
}

/* Write what is queued: one write() per batch; EV_WRITE only while partial. */
static void conn_flush(struct conn *c)
{
    while (c->fd >= 0 && c->woff < c->wlen) {
        ssize_t n = write(c->fd, c->wbuf + c->woff, c->wlen - c->woff);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                ev_io_start(c->b->loop, &c->wio);
                return;
            }
            conn_fail(c, strerror(errno));
            return;
        }
        c->woff += (size_t)n;
    }
    if (c->fd < 0) return;
    c->woff = c->wlen = 0;
    ev_io_stop(c->b->loop, &c->wio);
}

static void start_run(struct bench *b);

static void account(struct bench *b, enum wire_op op, enum wire_outcome out, uint64_t lat_ns)
{
    if (b->phase != PH_RUN) {
        if (out == WIRE_ERR) b->prefill_errors++;
        return;
    }
    struct counters *k = &b->c;
    k->ops++;
    if (op == WIRE_GET) k->gets++;
    else k->sets++;
    if (out == WIRE_HIT) k->hits++;
    else if (out == WIRE_MISS) k->misses++;
    else if (out == WIRE_ERR) k->errors++;
    hist_record(&b->hist, lat_ns / 1000);
    if (b->o.series_ms > 0) {
        b->iops++;
        if (out == WIRE_ERR) b->ierrors++;
        hist_record(&b->ihist, lat_ns / 1000);
    }
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct conn *c = w->data;
    struct bench *b = c->b;
    if (c->rlen == c->rcap) { /* one reply bigger than the buffer */
        size_t cap = c->rcap * 2;
        char *nb = realloc(c->rbuf, cap);
        if (!nb) {
            conn_fail(c, "out of memory");
            return;
        }
        c->rbuf = nb;
        c->rcap = cap;
    }
    ssize_t got = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
    if (got <= 0) {
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
        conn_fail(c, got == 0 ? "closed by the server" : strerror(errno));
        return;
    }
    c->rlen += (size_t)got;
    uint64_t now = now_ns();
    unsigned P = b->o.pipeline;
    size_t pos = 0;
    while (c->inflight > 0) {
        enum wire_outcome out = WIRE_ERR;
        enum wire_op op = (enum wire_op)c->ops[c->head];
        long n = wire_parse(b->o.proto, c->rbuf + pos, c->rlen - pos, op, &out);
        if (n == 0) break;
        if (n < 0) {
            conn_fail(c, "reply does not parse (protocol desync)");
            return;
        }
        account(b, op, out, now - c->sent_ns[c->head]);
        if (out == WIRE_MISS && b->o.set_on_miss && b->phase == PH_RUN)
            refill_push(b, c->keys[c->head]);
        c->head = (c->head + 1) % P;
        c->inflight--;
        b->inflight--;
        pos += (size_t)n;
    }
    if (pos < c->rlen && c->inflight == 0) {
        conn_fail(c, "unexpected bytes from the server");
        return;
    }
    if (pos > 0) {
        memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
        c->rlen -= pos;
        b->last_reply_ns = now;
    }
    if (b->phase == PH_PREFILL && b->prefill_next >= b->o.keyspace && b->inflight == 0) {
        start_run(b); /* fills and flushes every connection */
        return;
    }
    if (b->phase == PH_RUN && b->o.seconds == 0 && b->c.ops >= b->o.requests) {
        finish(b);
        return;
    }
    conn_fill(c, now);
    conn_flush(c);
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    conn_flush(w->data);
}

static void fill_all(struct bench *b)
{
    uint64_t now = now_ns();
    for (unsigned i = 0; i < b->o.conns; i++) {
        struct conn *c = &b->conns[i];
        if (c->fd < 0) continue;
        conn_fill(c, now);
        conn_flush(c);
    }
}

/* --rate: hand the requests due by now to the connections round-robin, one
 * per connection per turn, skipping connections with -P in flight; then
 * write what each got. */
static void pace_fill(struct bench *b)
{
    uint64_t now = now_ns();
    unsigned n = b->o.conns, full = 0; /* connections in a row that took none */
    while (b->phase == PH_RUN && full < n) {
        struct conn *c = &b->conns[b->rr];
        if (conn_add(c, now)) {
            full = 0;
        } else if (c->fd >= 0 && c->inflight < b->o.pipeline) {
            break; /* it had room: nothing more is due */
        } else {
            full++;
        }
        b->rr = (b->rr + 1) % n;
    }
    for (unsigned i = 0; i < n; i++)
        if (b->conns[i].wlen > b->conns[i].woff) conn_flush(&b->conns[i]);
}

static void on_pace(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    pace_fill(w->data);
}

static void print_series(struct bench *b, uint64_t now)
{
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    double t = (double)wall.tv_sec + wall.tv_nsec / 1e9;
    double el = (double)(now - b->t0_ns) / 1e9;
    double dt = (double)(now - b->ins) / 1e9;
    if (b->o.json)
        printf("{\"series\": true, \"time\": %.3f, \"elapsed\": %.3f, \"ops\": %" PRIu64
               ", \"ops_per_sec\": %.0f, \"errors\": %" PRIu64 ", \"lat_p50_us\": %" PRIu64
               ", \"lat_p99_us\": %" PRIu64 ", \"lat_max_us\": %" PRIu64 "}\n",
               t, el, b->iops, dt > 0 ? (double)b->iops / dt : 0.0, b->ierrors,
               hist_quantile(&b->ihist, 0.50), hist_quantile(&b->ihist, 0.99), b->ihist.max);
    else
        printf("series time %.3f elapsed %.3f ops %" PRIu64 " ops/s %.0f errors %" PRIu64
               " p50 %" PRIu64 " us p99 %" PRIu64 " us max %" PRIu64 " us\n",
               t, el, b->iops, dt > 0 ? (double)b->iops / dt : 0.0, b->ierrors,
               hist_quantile(&b->ihist, 0.50), hist_quantile(&b->ihist, 0.99), b->ihist.max);
    fflush(stdout);
    memset(&b->ihist, 0, sizeof b->ihist);
    b->iops = b->ierrors = 0;
    b->ins = now;
}

static void on_series(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct bench *b = w->data;
    if (b->phase == PH_RUN) print_series(b, now_ns());
}

static void start_run(struct bench *b)
{
    uint64_t now = now_ns();
    if (b->o.prefill) b->prefill_secs = (double)(now - b->t0_ns) / 1e9;
    if (b->tty && b->o.prefill) fprintf(stderr, "\r\033[K");
    b->phase = PH_RUN;
    b->t0_ns = b->last_reply_ns = b->tick_ns = b->ins = now;
    b->tick_ops = 0;
    ev_timer_again(b->loop, &b->tick); /* progress lines count from here */
    b->cpu0 = cpu_now();
    if (b->o.requests == 0 && b->o.seconds == 0) { /* prefill only */
        finish(b);
        return;
    }
    if (b->o.seconds > 0) {
        ev_timer_set(&b->deadline, b->o.seconds, 0.0);
        ev_now_update(b->loop);
        ev_timer_start(b->loop, &b->deadline);
    }
    if (b->o.series_ms > 0) {
        memset(&b->ihist, 0, sizeof b->ihist);
        b->iops = b->ierrors = 0;
        ev_timer_set(&b->series, b->o.series_ms / 1000.0, b->o.series_ms / 1000.0);
        ev_now_update(b->loop);
        ev_timer_start(b->loop, &b->series);
    }
    if (b->o.rate > 0) {
        ev_timer_start(b->loop, &b->pace);
        pace_fill(b);
        return;
    }
    fill_all(b);
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    finish(w->data);
}

static void on_sigint(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    struct bench *b = w->data;
    b->failed = true;
    finish(b);
}

/* Once a second: the progress line (on a terminal) and the no-reply watchdog. */
static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct bench *b = w->data;
    uint64_t now = now_ns();
    if (b->inflight > 0 && (double)(now - b->last_reply_ns) / 1e9 > b->o.timeout) {
        fprintf(stderr, "%svitamin-benchmark: no reply for %.0f s; giving up\n",
                b->tty ? "\n" : "", b->o.timeout);
        b->failed = true;
        finish(b);
        return;
    }
    if (!b->tty) return;
    if (b->phase == PH_PREFILL) {
        fprintf(stderr, "\r\033[Kprefill: %" PRIu64 " of %" PRIu64 " keys", b->prefill_next,
                b->o.keyspace);
    } else if (b->phase == PH_RUN) {
        double el = (double)(now - b->t0_ns) / 1e9;
        double dt = (double)(now - b->tick_ns) / 1e9;
        fprintf(stderr,
                "\r\033[K%6.1f s  %9.0f ops/s now  %9.0f avg  %" PRIu64 " ops  %" PRIu64
                " errors  p99 %" PRIu64 " us",
                el, dt > 0 ? (double)(b->c.ops - b->tick_ops) / dt : 0.0,
                el > 0 ? b->c.ops / el : 0.0,
                b->c.ops, b->c.errors, hist_quantile(&b->hist, 0.99));
        b->tick_ops = b->c.ops;
        b->tick_ns = now;
    }
}

static int dial(const struct options *o)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    int rc = getaddrinfo(o->host, o->port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "vitamin-benchmark: %s: %s\n", o->host, gai_strerror(rc));
        return -1;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
        if (fd < 0) continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        fprintf(stderr, "vitamin-benchmark: cannot connect to %s:%s: %s\n", o->host,
                o->port, strerror(err));
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (!p) {
        perror("vitamin-benchmark: calloc");
        exit(1);
    }
    return p;
}

static void setup(struct bench *b)
{
    const struct options *o = &b->o;
    char *value = xcalloc(1, o->value_size + 1);
    static const char alnum[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    for (size_t i = 0; i < o->value_size; i++) value[i] = alnum[rand64(b) % 62];
    if (wire_tmpl_make(&b->set_t, o->proto, WIRE_SET, value, o->value_size, o->ttl) != 0 ||
        wire_tmpl_make(&b->get_t, o->proto, WIRE_GET, value, o->value_size, o->ttl) != 0) {
        perror("vitamin-benchmark: malloc");
        exit(1);
    }
    free(value);
    if (o->zipf > 0) {
        b->zipf_cdf = xcalloc(o->keyspace, sizeof *b->zipf_cdf);
        double sum = 0;
        for (uint64_t k = 0; k < o->keyspace; k++) sum += pow((double)(k + 1), -o->zipf);
        double acc = 0;
        for (uint64_t k = 0; k < o->keyspace; k++) {
            acc += pow((double)(k + 1), -o->zipf) / sum;
            b->zipf_cdf[k] = acc;
        }
        b->zipf_cdf[o->keyspace - 1] = 1.0;
    }
    if (o->set_on_miss) {
        b->refill_cap = (size_t)o->conns * o->pipeline;
        b->refill = xcalloc(b->refill_cap, sizeof *b->refill);
    }
    b->all_sets = o->get_w == 0;
    b->set_cut = (uint32_t)(((uint64_t)o->set_w << 32) / (o->set_w + o->get_w));
    size_t reply_max = o->value_size + 128;
    size_t rcap = 2 * reply_max > RBUF_MIN ? 2 * reply_max : RBUF_MIN;
    size_t req_max = b->set_t.len > b->get_t.len ? b->set_t.len : b->get_t.len;
    b->conns = xcalloc(o->conns, sizeof *b->conns);
    for (unsigned i = 0; i < o->conns; i++) {
        struct conn *c = &b->conns[i];
        c->b = b;
        c->fd = dial(o);
        if (c->fd < 0) exit(1);
        c->rcap = rcap;
        c->rbuf = xcalloc(1, rcap);
        c->wcap = req_max * o->pipeline;
        c->wbuf = xcalloc(1, c->wcap);
        c->ops = xcalloc(o->pipeline, sizeof *c->ops);
        c->keys = xcalloc(o->pipeline, sizeof *c->keys);
        c->sent_ns = xcalloc(o->pipeline, sizeof *c->sent_ns);
        ev_io_init(&c->rio, on_read, c->fd, EV_READ);
        ev_io_init(&c->wio, on_write, c->fd, EV_WRITE);
        c->rio.data = c->wio.data = c;
        ev_io_start(b->loop, &c->rio);
    }
    b->live = o->conns;
}

/* ---- output ------------------------------------------------------------ */

struct summary {
    double secs, ops_per_sec, mean_us, client_cpu_pct;
    uint64_t p50, p99, p999, max;
};

static struct summary summarize(const struct bench *b)
{
    struct summary s = {0};
    s.secs = (double)(b->t_end_ns - b->t0_ns) / 1e9;
    s.ops_per_sec = s.secs > 0 ? (double)b->c.ops / s.secs : 0;
    s.mean_us = hist_mean(&b->hist);
    s.client_cpu_pct = s.secs > 0 ? 100.0 * b->cpu_secs / s.secs : 0;
    s.p50 = hist_quantile(&b->hist, 0.50);
    s.p99 = hist_quantile(&b->hist, 0.99);
    s.p999 = hist_quantile(&b->hist, 0.999);
    s.max = b->hist.max;
    return s;
}

#define CSV_HEADER                                                                         \
    "protocol,connections,pipeline,value_size,keyspace,set_ratio,get_ratio,ttl,seconds,"   \
    "ops,ops_per_sec,gets,sets,hits,misses,errors,lat_mean_us,lat_p50_us,lat_p99_us,"     \
    "lat_p999_us,lat_max_us,client_cpu_pct,prefill_secs,prefill_errors\n"

static void print_csv(const struct bench *b, const struct summary *s)
{
    const struct options *o = &b->o;
    printf(CSV_HEADER);
    printf("%s,%u,%u,%zu,%" PRIu64 ",%u,%u,%u,%.3f,%" PRIu64 ",%.0f,%" PRIu64 ",%" PRIu64
           ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%.1f,%" PRIu64 ",%" PRIu64 ",%" PRIu64
           ",%" PRIu64 ",%.1f,%.3f,%" PRIu64 "\n",
           wire_protocol_name(o->proto), o->conns, o->pipeline, o->value_size, o->keyspace,
           o->set_w, o->get_w, o->ttl, s->secs, b->c.ops, s->ops_per_sec, b->c.gets,
           b->c.sets, b->c.hits, b->c.misses, b->c.errors, s->mean_us, s->p50, s->p99,
           s->p999, s->max, s->client_cpu_pct, b->prefill_secs, b->prefill_errors);
}

static void print_json(const struct bench *b, const struct summary *s)
{
    const struct options *o = &b->o;
    printf("{\"protocol\": \"%s\", \"connections\": %u, \"pipeline\": %u, "
           "\"value_size\": %zu, \"keyspace\": %" PRIu64 ", \"set_ratio\": %u, "
           "\"get_ratio\": %u, \"ttl\": %u, \"seconds\": %.3f, \"ops\": %" PRIu64 ", "
           "\"ops_per_sec\": %.0f, \"gets\": %" PRIu64 ", \"sets\": %" PRIu64 ", "
           "\"hits\": %" PRIu64 ", \"misses\": %" PRIu64 ", \"errors\": %" PRIu64 ", "
           "\"lat_mean_us\": %.1f, \"lat_p50_us\": %" PRIu64 ", \"lat_p99_us\": %" PRIu64
           ", \"lat_p999_us\": %" PRIu64 ", \"lat_max_us\": %" PRIu64 ", "
           "\"client_cpu_pct\": %.1f, \"prefill_secs\": %.3f, \"prefill_errors\": %" PRIu64
           ", \"rate\": %.0f, \"behind_max_us\": %" PRIu64 ", \"complete\": %s}\n",
           wire_protocol_name(o->proto), o->conns, o->pipeline, o->value_size, o->keyspace,
           o->set_w, o->get_w, o->ttl, s->secs, b->c.ops, s->ops_per_sec, b->c.gets,
           b->c.sets, b->c.hits, b->c.misses, b->c.errors, s->mean_us, s->p50, s->p99,
           s->p999, s->max, s->client_cpu_pct, b->prefill_secs, b->prefill_errors,
           b->o.rate, b->behind_max_ns / 1000, b->failed ? "false" : "true");
}

static void print_text(const struct bench *b, const struct summary *s)
{
    const struct options *o = &b->o;
    printf("%s %s:%s  %u connections, pipeline %u, %zu B values, %" PRIu64
           " keys, set:get %u:%u, ttl %u\n",
           wire_protocol_name(o->proto), o->host, o->port, o->conns, o->pipeline, o->value_size,
           o->keyspace, o->set_w, o->get_w, o->ttl);
    if (o->rate > 0)
        printf("  open loop %.0f requests/s offered; a request was written up to %" PRIu64
               " us after its due time\n", o->rate, b->behind_max_ns / 1000);
    if (o->prefill)
        printf("  prefill   %" PRIu64 " keys in %.2f s, %" PRIu64 " errors\n", o->keyspace,
               b->prefill_secs, b->prefill_errors);
    printf("  ops       %" PRIu64 " in %.2f s = %.0f ops/s\n", b->c.ops, s->secs,
           s->ops_per_sec);
    printf("  requests  %" PRIu64 " gets (%" PRIu64 " hits, %" PRIu64 " misses), %" PRIu64
           " sets, %" PRIu64 " errors\n",
           b->c.gets, b->c.hits, b->c.misses, b->c.sets, b->c.errors);
    printf("  latency   mean %.1f us, p50 %" PRIu64 " us, p99 %" PRIu64 " us, p99.9 %" PRIu64
           " us, max %" PRIu64 " us\n",
           s->mean_us, s->p50, s->p99, s->p999, s->max);
    printf("  client    %.0f%% of a core\n", s->client_cpu_pct);
}

int main(int argc, char **argv)
{
    static struct bench bench; /* the histogram makes it big */
    struct bench *b = &bench;
    bench_parse_options(argc, argv, &b->o);
    signal(SIGPIPE, SIG_IGN);
    b->rng = b->o.seed;
    b->tty = isatty(STDERR_FILENO);
    b->loop = ev_default_loop(EVFLAG_AUTO);
    setup(b);

    ev_timer_init(&b->deadline, on_deadline, 1.0, 0.0);
    b->deadline.data = b;
    ev_timer_init(&b->tick, on_tick, 1.0, 1.0);
    b->tick.data = b;
    ev_timer_init(&b->pace, on_pace, 0.001, 0.001);
    b->pace.data = b;
    ev_timer_init(&b->series, on_series, 1.0, 1.0);
    b->series.data = b;
    ev_timer_start(b->loop, &b->tick);
    ev_signal_init(&b->sigint, on_sigint, SIGINT);
    b->sigint.data = b;
    ev_signal_start(b->loop, &b->sigint);

    b->t0_ns = b->last_reply_ns = now_ns();
    if (b->o.prefill) {
        b->phase = PH_PREFILL;
        fill_all(b);
    } else {
        start_run(b);
    }
    if (b->phase != PH_DONE) ev_run(b->loop, 0);
    if (b->tty) fprintf(stderr, "\r\033[K");

    struct summary s = summarize(b);
    if (b->o.json) print_json(b, &s);
    if (b->o.csv) print_csv(b, &s);
    if (!b->o.json && !b->o.csv) print_text(b, &s);
    fflush(stdout);
    return b->failed ? 1 : 0;
}
