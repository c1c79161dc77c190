/*
 * stats.h - the stats() reply: one `STAT <name> <value>` line per counter.
 *
 * Owns: the names and order of Vitamin's STAT lines. Each module keeps its
 * own counters (net_stats, exec_stats, vt_stats, store_stats, repl_stats,
 * snapshot_stats);
 * this module only reads them and prints them, so a new counter is one
 * line here. (memcached's and Redis's own stats replies are composed by
 * their serve modules from the same sources.)
 */
#ifndef VITAMIN_STATS_H
#define VITAMIN_STATS_H

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
struct reply_queue;

struct stats_sources {
    const struct net *net;
    const struct exec *exec;
    const struct vt_serve *vt;
    const struct mc_serve *mc; /* NULL when --memcache_port is 0 */
    const struct resp_serve *resp; /* NULL when --redis_port is 0 */
    const struct store *store;
    const struct options *opts;
    const struct repl *repl; /* NULL when standalone */
    const struct snapshot *snapshot; /* NULL without --snapshot (counters 0) */
    int64_t start_ms;        /* when the server started, unix ms */
};

/* Append every STAT line (not END) for the state at now_ms. */
void stats_compose(const struct stats_sources *src, struct reply_queue *q,
                   int64_t now_ms);

#endif
