/*
 * metrics.c - GET /metrics on --metrics_port (see metrics.h).
 *
 * Request path, one head per handle() call: parse (http.c) -> route ->
 * compose. The exposition is rendered into the module's own growable
 * buffer (kept between scrapes), then copied after the response head, so
 * Content-Length is known and the connection can stay open.
 *
 * Exposition, per family: "# HELP", "# TYPE", then its samples. Numbers are
 * printed exactly: counts as integers, ms/us as decimal seconds, KiB as
 * bytes; label values are escaped (\\, \", \n).
 */
#include "metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "latency.h"
#include "net.h"
#include "reply.h"
#include "serve.h"
#include "stats.h"

#define PREFIX "vitamin_"
#define TEXT_KEEP (1u << 20) /* a render buffer bigger than this is freed after use */

/* A growable text buffer; oom once an allocation failed. */
struct text {
    char *p;
    size_t len, cap;
    bool oom;
};

struct metrics {
    struct metrics_config cfg;
    struct metrics_stats stats;
    struct text body; /* the last exposition rendered */
};

struct metrics_session {
    size_t scan;        /* bytes of the head known to hold no end (http_parse) */
    int64_t started_ms; /* loop time of the head's first byte; 0: none yet */
};

enum { CMD_NONE = 0, CMD_METRICS };
static const char *const cmd_names[] = {[CMD_NONE] = NULL, [CMD_METRICS] = "metrics"};

static void text_printf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void text_printf(struct text *t, const char *fmt, ...)
{
    if (t->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p ? t->p + t->len : NULL, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->oom = true;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap * 2 : 16384;
        while (cap - t->len <= (size_t)n) cap *= 2;
        char *np = realloc(t->p, cap);
        if (!np) {
            t->oom = true;
            return;
        }
        t->p = np;
        t->cap = cap;
    }
}

/* A label value, escaped as the text format wants. */
static void text_label_value(struct text *t, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\') text_printf(t, "\\\\");
        else if (*v == '"') text_printf(t, "\\\"");
        else if (*v == '\n') text_printf(t, "\\n");
        else text_printf(t, "%c", *v);
    }
}

static const char *type_name(const struct stats_desc *d)
{
    return d->kind == STATS_KIND_COUNTER ? "counter" : "gauge";
}

static void family(struct text *t, const char *metric, const char *type, const char *help)
{
    text_printf(t, "# HELP " PREFIX "%s %s\n# TYPE " PREFIX "%s %s\n", metric, help, metric,
                type);
}

static void on_num(void *arg, const struct stats_desc *d, uint64_t v)
{
    struct text *t = arg;
    if (!d->metric) return;
    family(t, d->metric, type_name(d), d->help);
    switch (d->unit) {
    case STATS_UNIT_ONE:
        text_printf(t, PREFIX "%s %" PRIu64 "\n", d->metric, v);
        break;
    case STATS_UNIT_MS:
        text_printf(t, PREFIX "%s %" PRIu64 ".%03" PRIu64 "\n", d->metric, v / 1000, v % 1000);
        break;
    case STATS_UNIT_US:
        text_printf(t, PREFIX "%s %" PRIu64 ".%06" PRIu64 "\n", d->metric, v / 1000000,
                    v % 1000000);
        break;
    case STATS_UNIT_KIB:
        text_printf(t, PREFIX "%s %" PRIu64 "\n", d->metric, v * 1024);
        break;
    }
}

static void on_text(void *arg, const struct stats_desc *d, const char *v)
{
    struct text *t = arg;
    if (!d->metric) return;
    family(t, d->metric, "gauge", d->help);
    if (!d->states) {
        text_printf(t, PREFIX "%s{%s=\"", d->metric, d->label);
        text_label_value(t, v);
        text_printf(t, "\"} 1\n");
        return;
    }
    for (const char *const *s = d->states; *s; s++)
        text_printf(t, PREFIX "%s{%s=\"%s\"} %d\n", d->metric, d->label, *s, !strcmp(*s, v));
}

/* One histogram's samples; labels are `name="value",...` (already escaped). */
static void histogram(struct text *t, const char *metric, const char *labels,
                      const struct latency_hist *h)
{
    uint64_t cum = 0;
    for (unsigned i = 0; i < LATENCY_BUCKETS; i++) {
        cum += h->counts[i];
        uint32_t us = 1u << i;
        text_printf(t, PREFIX "%s_bucket{%s,le=\"%u.%06u\"} %" PRIu64 "\n", metric, labels,
                    us / 1000000, us % 1000000, cum);
    }
    cum += h->counts[LATENCY_BUCKETS];
    text_printf(t, PREFIX "%s_bucket{%s,le=\"+Inf\"} %" PRIu64 "\n", metric, labels, cum);
    text_printf(t, PREFIX "%s_sum{%s} %" PRIu64 ".%09" PRIu64 "\n", metric, labels,
                h->sum_ns / 1000000000u, h->sum_ns % 1000000000u);
    text_printf(t, PREFIX "%s_count{%s} %" PRIu64 "\n", metric, labels, cum);
}

static uint64_t hist_count(const struct latency_hist *h)
{
    uint64_t n = 0;
    for (unsigned i = 0; i <= LATENCY_BUCKETS; i++) n += h->counts[i];
    return n;
}

static void latencies(struct text *t, const struct net *n)
{
    if (!n) return;
    size_t nl = net_nlisteners(n);
    char labels[160];
    family(t, "request_duration_seconds", "histogram",
           "Server time per request (parse, execute, compose), by listener protocol.");
    for (size_t i = 0; i < nl; i++) {
        struct net_latency l;
        net_latency(n, i, &l);
        snprintf(labels, sizeof labels, "protocol=\"%s\"", l.protocol);
        histogram(t, "request_duration_seconds", labels, l.all);
    }
    family(t, "command_duration_seconds", "histogram",
           "Server time per request, by protocol and command (once served).");
    for (size_t i = 0; i < nl; i++) {
        struct net_latency l;
        net_latency(n, i, &l);
        for (uint16_t c = 0; c < l.ncmds; c++) {
            if (!l.cmd_names[c] || !hist_count(&l.cmd[c])) continue;
            snprintf(labels, sizeof labels, "protocol=\"%s\",command=\"%s\"", l.protocol,
                     l.cmd_names[c]);
            histogram(t, "command_duration_seconds", labels, &l.cmd[c]);
        }
    }
}

/* The whole exposition into m->body. Returns false on ENOMEM. */
static bool render(struct metrics *m, int64_t now_ms)
{
    struct text *t = &m->body;
    t->len = 0;
    t->oom = false;
    struct stats_visitor v = {on_num, on_text, t};
    stats_visit(m->cfg.src, &v, now_ms);
    latencies(t, m->cfg.src->net);
    return !t->oom;
}

/* A short answer: status line, headers, a one-line body. */
static void respond(struct reply_queue *q, int status, bool keep_alive, const char *extra)
{
    reply_printf(q, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    "Content-Length: %zu\r\n%s%s\r\n%d %s\n",
                 status, http_reason(status), strlen(http_reason(status)) + 5,
                 extra ? extra : "", keep_alive ? "" : "Connection: close\r\n", status,
                 http_reason(status));
}

/* Route a complete request and compose its answer. */
static void serve(struct metrics *m, const struct http_request *rq, struct reply_queue *q,
                  int64_t now_ms, struct serve_outcome *res)
{
    const char *ka = rq->keep_alive && rq->minor == 0 ? "Connection: keep-alive\r\n" : "";
    if (rq->path_len != 8 || memcmp(rq->path, "/metrics", 8) != 0) {
        m->stats.not_found++;
        return respond(q, 404, rq->keep_alive, ka);
    }
    if (rq->method == HTTP_OTHER) {
        m->stats.not_found++;
        char allow[96];
        snprintf(allow, sizeof allow, "Allow: GET, HEAD\r\n%s", ka);
        return respond(q, 405, rq->keep_alive, allow);
    }
    res->cmd = CMD_METRICS;
    m->stats.scrapes++; /* counted before rendering: a scrape sees itself */
    if (!render(m, now_ms)) {
        res->close = true;
        return respond(q, 503, false, NULL);
    }
    reply_printf(q, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                    "Content-Length: %zu\r\n%s%s\r\n",
                 m->body.len, ka, rq->keep_alive ? "" : "Connection: close\r\n");
    if (rq->method == HTTP_GET) reply_bytes(q, m->body.p, m->body.len);
    if (m->body.cap > TEXT_KEEP) {
        free(m->body.p);
        m->body = (struct text){NULL, 0, 0, false};
    }
}

/* How long a request head may take to arrive. */
static int64_t head_timeout_ms(const struct metrics *m)
{
    int64_t idle = m->cfg.idle_timeout_s ? (int64_t)*m->cfg.idle_timeout_s * 1000 : 0;
    return idle > 0 && idle < METRICS_HEAD_TIMEOUT_MS ? idle : METRICS_HEAD_TIMEOUT_MS;
}

static size_t metrics_handle(void *ctx, void *session, char *in, size_t len,
                             struct reply_queue *q, int64_t now_ms, struct serve_outcome *res)
{
    struct metrics *m = ctx;
    struct metrics_session *s = session;
    size_t blank = http_skip_blank_lines(in, len);
    if (blank) {
        s->scan = 0;
        return blank;
    }
    if (!s->started_ms) s->started_ms = now_ms;
    /* parse */
    struct http_request rq;
    switch (http_parse(in, len, HTTP_MAX_HEAD, &s->scan, &rq)) {
    case HTTP_NEED_MORE:
        if (now_ms - s->started_ms < head_timeout_ms(m)) return 0;
        m->stats.timeouts++;
        respond(q, 408, false, NULL);
        res->close = true;
        return len;
    case HTTP_INVALID:
        m->stats.bad_requests++;
        respond(q, rq.error, false, NULL);
        res->close = true;
        return len;
    case HTTP_DONE:
        break;
    }
    s->scan = 0;
    s->started_ms = 0;
    /* route and compose */
    serve(m, &rq, q, now_ms, res);
    if (!rq.keep_alive) res->close = true;
    return rq.head_len;
}

struct metrics *metrics_create(const struct metrics_config *cfg)
{
    struct metrics *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->cfg = *cfg;
    return m;
}

void metrics_destroy(struct metrics *m)
{
    if (!m) return;
    free(m->body.p);
    free(m);
}

const struct metrics_stats *metrics_get_stats(const struct metrics *m) { return &m->stats; }

void metrics_stats_visit(const struct metrics *m, const struct stats_visitor *v)
{
    STATS_COUNTER(v, "metrics_scrapes", "metrics_scrapes_total",
                  "GET or HEAD /metrics answered.", m->stats.scrapes);
    STATS_COUNTER(v, "metrics_not_found", "metrics_not_found_total",
                  "Requests for another path (404) or method (405) of --metrics_port.",
                  m->stats.not_found);
    STATS_COUNTER(v, "metrics_bad_requests", "metrics_bad_requests_total",
                  "Malformed or too long HTTP requests (answered, then closed).",
                  m->stats.bad_requests);
    STATS_COUNTER(v, "metrics_timeouts", "metrics_timeouts_total",
                  "HTTP request heads not complete in time (answered 408, then closed).",
                  m->stats.timeouts);
}

void metrics_proto(struct metrics *m, struct serve_proto *out)
{
    *out = (struct serve_proto){
        .name = "metrics",
        .session_size = sizeof(struct metrics_session),
        .handle = metrics_handle,
        .max_input = HTTP_MAX_HEAD,
        .busy_reply = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                      "Connection: close\r\n\r\n",
        .ctx = m,
        .cmd_names = cmd_names,
        .ncmds = sizeof cmd_names / sizeof cmd_names[0],
    };
}
