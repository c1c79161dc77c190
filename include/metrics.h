/*
 * metrics.h - Prometheus text exposition (format 0.0.4) of Vitamin's
 * statistics at GET /metrics on --metrics_port, served on the event loop
 * like any other protocol (serve.h).
 *
 * Owns: the HTTP/1.1 responder of that one route (parsing is http.c's), the
 * exposition text, and its own counters. What it exposes:
 *   - every stats() number under its metric name (stats.h descriptors):
 *     vitamin_<name>, counters ending in _total, units in base units
 *     (_seconds, _bytes); strings as info metrics (vitamin_build_info,
 *     vitamin_node_info, vitamin_repl_broker_info{broker="host:port"}) or
 *     a state set (vitamin_repl_state{state="up"} 1, other states 0);
 *   - vitamin_request_duration_seconds{protocol}: a histogram per listener
 *     of the server's time per request; vitamin_command_duration_seconds
 *     {protocol,command} per command (latency.h buckets; a command appears
 *     once it has been served);
 *   - vitamin_metrics_* : this responder's own requests and errors.
 *
 * Why a hand-written responder rather than a library: the job is one GET
 * route on a loop that net.c already runs, with its limits (connections,
 * buffers, idle timeout, back-pressure). libmicrohttpd brings its own
 * sockets and threads or an external-select loop, so its clients would sit
 * outside net's limits and counters; Debian's prometheus-cpp is C++ with
 * its own server threads (civetweb), and the C client (libprom/promhttp,
 * not in Debian) is libmicrohttpd plus its own metric registry, when the
 * counters already live in each module. The
 * subset of HTTP needed (request heads up to 8 KiB, GET/HEAD, keep-alive,
 * pipelining) is ~200 lines, pure and fuzzed (tests/fuzz/fuzz_http.c).
 *
 * Hostile clients: a head over HTTP_MAX_HEAD gets 431, a malformed one 400,
 * a head not complete METRICS_HEAD_TIMEOUT_MS (or --idle_timeout, if
 * shorter) after its first byte 408 (slowloris), each then closed; a request with a body is answered and
 * the connection closed; silence is net's idle timeout.
 */
#ifndef VITAMIN_METRICS_H
#define VITAMIN_METRICS_H

#include <stdint.h>

struct serve_proto;
struct stats_sources;
struct stats_visitor;

#define METRICS_HEAD_TIMEOUT_MS 10000

struct metrics_config {
    const struct stats_sources *src; /* what stats() shows; src->net for latency */
    const uint32_t *idle_timeout_s;  /* --idle_timeout as now (a reload changes it) */
};

struct metrics_stats {
    uint64_t scrapes;      /* 200 answers to GET/HEAD /metrics */
    uint64_t not_found;    /* 404 and 405 answers */
    uint64_t bad_requests; /* 400, 431 and 505 answers (then closed) */
    uint64_t timeouts;     /* 408: a head not complete in time (then closed) */
};

struct metrics;

struct metrics *metrics_create(const struct metrics_config *cfg);
void metrics_destroy(struct metrics *m);
const struct metrics_stats *metrics_get_stats(const struct metrics *m);
/* The serve_proto that net.c drives for --metrics_port. */
void metrics_proto(struct metrics *m, struct serve_proto *out);
/* Its counters as statistics (stats.h), for stats() and the exposition. */
void metrics_stats_visit(const struct metrics *m, const struct stats_visitor *v);

#endif
