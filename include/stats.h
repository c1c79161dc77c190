/*
 * stats.h - Vitamin's counters, one visit for every reader: the stats()
 * reply (one `STAT <name> <value>` line each), memcached's `stats vitamin`
 * (the same lines, CRLF-terminated: stats_compose), Redis's `INFO vitamin`
 * (`name:value` lines, resp_server.c) and the Prometheus exposition of
 * --metrics_port (metrics.c) all walk the same calls, so a counter is
 * declared once, where its module reads it, and shows on every port.
 *
 * Owns: the names, order and description of every statistic. Each module
 * keeps its own counters (net_stats, exec_stats, vt_stats, store_stats,
 * repl, snapshot_stats, expiry_stats) and reports them through a stats_visitor, one
 * call per statistic with a static descriptor:
 *
 *   STATS_COUNTER(v, "cmd_get", "cmd_get_total", "get requests", xs->cmd_get);
 *                  |   STAT name  metric name after "vitamin_"    value
 *
 * A descriptor tells a value's format (stats_format_num, the same for
 * every text reader) and a metric's kind, unit and help; the STAT line
 * never changes with it (tests and scripts read them). (memcached's plain
 * `stats` and Redis's other INFO sections are composed by their serve
 * modules from the same sources, under memcached's and Redis's names.)
 */
#ifndef VITAMIN_STATS_H
#define VITAMIN_STATS_H

#include <stddef.h>
#include <stdint.h>

struct net;
struct exec;
struct vt_serve;
struct mc_serve;
struct resp_serve;
struct store;
struct options;
struct repl;
struct snapshot;
struct expiry;
struct metrics;
struct reply_queue;

enum stats_kind {
    STATS_KIND_COUNTER, /* only grows while the process lives */
    STATS_KIND_GAUGE,   /* a level: goes up and down */
    STATS_KIND_TEXT,    /* a string: an info metric (label) or a state set */
};

/* The unit of a number as counted; a metric is in the base unit. */
enum stats_unit {
    STATS_UNIT_ONE = 0,
    STATS_UNIT_MS,  /* milliseconds: the metric is in seconds */
    STATS_UNIT_US,  /* microseconds: the metric is in seconds */
    STATS_UNIT_KIB, /* KiB: the metric is in bytes */
};

/* How the STAT line prints the number. */
enum stats_format {
    STATS_FMT_DEC = 0, /* decimal */
    STATS_FMT_HEX16,   /* 16 hex digits (a digest) */
    STATS_FMT_SEC_US,  /* microseconds as seconds.micros ("1.000250") */
};

struct stats_desc {
    const char *name;          /* the STAT line's name */
    enum stats_kind kind;
    const char *metric;        /* after "vitamin_"; NULL: not a metric */
    enum stats_unit unit;
    enum stats_format format;
    const char *label;         /* TEXT: the label holding the value */
    const char *const *states; /* TEXT: every value it can take (a state
                                  set, one 0/1 sample each); NULL: info */
    const char *help;
};

/* One call per statistic, in stats() order. */
struct stats_visitor {
    void (*num)(void *arg, const struct stats_desc *d, uint64_t v);
    void (*text)(void *arg, const struct stats_desc *d, const char *v);
    void *arg;
};

#define STATS_NUM_(vis, v, ...)                                              \
    do {                                                                     \
        static const struct stats_desc stats_d_ = {__VA_ARGS__};             \
        (vis)->num((vis)->arg, &stats_d_, (uint64_t)(v));                    \
    } while (0)
#define STATS_TEXT_(vis, s, ...)                                             \
    do {                                                                     \
        static const struct stats_desc stats_d_ = {__VA_ARGS__};             \
        (vis)->text((vis)->arg, &stats_d_, (s));                             \
    } while (0)

/* A counter; its metric name ends in _total (a unit, if any, before it). */
#define STATS_COUNTER(vis, n_, m_, h_, v)                                    \
    STATS_NUM_(vis, v, .name = n_, .kind = STATS_KIND_COUNTER, .metric = m_, .help = h_)
#define STATS_GAUGE(vis, n_, m_, h_, v)                                      \
    STATS_NUM_(vis, v, .name = n_, .kind = STATS_KIND_GAUGE, .metric = m_, .help = h_)
/* A number counted in ms, us or KiB (u_), exported in seconds or bytes;
 * f_: how its STAT line prints it. */
#define STATS_NUMBER(vis, n_, k_, m_, u_, f_, h_, v)                         \
    STATS_NUM_(vis, v, .name = n_, .kind = k_, .metric = m_, .unit = u_, .format = f_, \
               .help = h_)
/* A string, exported as vitamin_<m_>{<l_>="<value>"} 1. */
#define STATS_INFO(vis, n_, m_, l_, h_, s)                                   \
    STATS_TEXT_(vis, s, .name = n_, .kind = STATS_KIND_TEXT, .metric = m_, .label = l_, \
                .help = h_)
/* A string that is one of states_ (a NULL-terminated list), exported as
 * one vitamin_<m_>{<l_>="<state>"} sample per state, 1 for the current. */
#define STATS_STATE(vis, n_, m_, l_, states_, h_, s)                         \
    STATS_TEXT_(vis, s, .name = n_, .kind = STATS_KIND_TEXT, .metric = m_, .label = l_, \
                .states = states_, .help = h_)

/* Longest value a reader prints, its NUL included (a longer text is cut). */
#define STATS_VALUE_MAX 320

/* The number v as stats() prints it (d->format), NUL-terminated in buf;
 * returns its length. */
size_t stats_format_num(char *buf, size_t cap, const struct stats_desc *d, uint64_t v);
/* The text v as a value of one line: CR and LF (they would end the line)
 * become '_', and it is cut to cap - 1 bytes; returns its length. */
size_t stats_format_text(char *buf, size_t cap, const char *v);

struct stats_sources {
    const struct net *net;
    const struct exec *exec;
    const struct vt_serve *vt;
    const struct mc_serve *mc; /* NULL when --memcache_port is 0 */
    const struct resp_serve *resp; /* NULL when --redis_port is 0 */
    const struct store *store;
    const struct expiry *expiry;
    const struct options *opts;
    const struct repl *repl; /* NULL when standalone */
    const struct snapshot *snapshot; /* NULL without --snapshot (counters 0) */
    const struct metrics *metrics; /* NULL when --metrics_port is 0 */
    int64_t start_ms;        /* when the server started, unix ms */
};

/* Every statistic, in stats() order, for the state at now_ms. */
void stats_visit(const struct stats_sources *src, const struct stats_visitor *v,
                 int64_t now_ms);
/* Append every `STAT <name> <value>` line (not END) for the state at
 * now_ms, each ending in eol: "\n" for stats(), "\r\n" for memcached. */
void stats_compose(const struct stats_sources *src, struct reply_queue *q, const char *eol,
                   int64_t now_ms);

#endif
