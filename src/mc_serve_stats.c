/*
 * mc_serve_stats.c - memcached's `stats` on the memcache port.
 *
 *   stats            the general statistics, under memcached's names where
 *                    they mean the same (server-wide, as memcached's are:
 *                    one store, one connection limit for every protocol)
 *   stats settings   the settings that have a memcached equivalent
 *   stats vitamin    every field of Vitamin's stats(), its names and
 *                    values (stats_compose, CRLF lines): what memcached has
 *                    no name for, and every counter added later
 *   stats reset      RESET; the counters shown by `stats` restart from
 *                    zero (stats() and `stats vitamin` are not affected)
 *   stats slabs      the store's allocator (slab.h) per size class in
 *                    use: chunk_size, chunks_per_page, total_pages,
 *                    total_chunks, used_chunks, free_chunks,
 *                    free_chunks_end; then active_slabs, total_malloced
 *                    (every page, large items' page runs too). memcached's
 *                    per-class command counters are not kept.
 *   stats items|sizes|conns   END: no per-class item or per-connection
 *                    table to show
 *   anything else    ERROR, as memcached (protocol.txt leaves the
 *                    arguments of `stats` to each server)
 *
 * Reset is a snapshot (struct mc_base) subtracted at display time, so the
 * modules that own the counters never see it.
 */
#include "mc_serve_internal.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "auth.h"
#include "net.h"
#include "options.h"
#include "reply.h"
#include "serve.h"
#include "stats.h"
#include "store.h"

#define STAT_LINE_MAX 160 /* names and values here are short */

static void stat_line(struct mc_call *c, const char *name, const char *value)
{
    char *p = reply_reserve(c->q, STAT_LINE_MAX);
    if (!p) {
        c->res->close = true;
        return;
    }
    size_t n = mc_stat_line(p, STAT_LINE_MAX, name, value, strlen(value));
    reply_commit(c->q, n <= STAT_LINE_MAX ? n : 0);
}

static void stat_u(struct mc_call *c, const char *name, uint64_t value)
{
    char *p = reply_reserve(c->q, STAT_LINE_MAX);
    if (!p) {
        c->res->close = true;
        return;
    }
    reply_commit(c->q, mc_stat_u64(p, STAT_LINE_MAX, name, value));
}

static void stat_time(struct mc_call *c, const char *name, struct timeval tv)
{
    char v[48];
    snprintf(v, sizeof v, "%ld.%06ld", (long)tv.tv_sec, (long)tv.tv_usec);
    stat_line(c, name, v);
}

static uint64_t meta_cmds(const struct mc_stats *m)
{
    return m->cmds[MC_CMD_MN] + m->cmds[MC_CMD_MG] + m->cmds[MC_CMD_MS] +
           m->cmds[MC_CMD_MD] + m->cmds[MC_CMD_MA];
}

static void general(struct mc_call *c)
{
    const struct stats_sources *src = c->m->cfg.stats;
    const struct mc_base *b = &c->m->base;
    const struct exec_stats *x = exec_get_stats(src->exec);
    const struct net_stats *ns = net_get_stats(src->net);
    const struct mc_stats *m = &c->m->stats;
    struct store_stats ss;
    store_get_stats(src->store, &ss);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);

#define DIFF(name, now, base) stat_u(c, name, (now) - (base))
    stat_u(c, "pid", (uint64_t)getpid());
    stat_u(c, "uptime", (uint64_t)((c->now_ms - src->start_ms) / 1000));
    stat_u(c, "time", (uint64_t)(c->now_ms / 1000));
    stat_line(c, "version", MC_SERVE_PROTOCOL_LEVEL "-vitamin-" VITAMIN_VERSION);
    stat_u(c, "pointer_size", 8 * sizeof(void *));
    stat_time(c, "rusage_user", ru.ru_utime);
    stat_time(c, "rusage_system", ru.ru_stime);
    stat_u(c, "max_connections", src->opts->max_connections);
    stat_u(c, "curr_connections", ns->curr_connections);
    DIFF("total_connections", ns->total_connections, b->total_connections);
    DIFF("rejected_connections", ns->rejected_connections, b->rejected_connections);
    DIFF("cmd_get", x->cmd_get, b->exec.cmd_get);
    DIFF("cmd_set", x->cmd_set, b->exec.cmd_set);
    DIFF("cmd_flush", x->cmd_flush, b->exec.cmd_flush);
    DIFF("cmd_touch", x->cmd_touch, b->exec.cmd_touch);
    DIFF("cmd_meta", meta_cmds(m), meta_cmds(&b->mc));
    DIFF("get_hits", x->get_hits, b->exec.get_hits);
    DIFF("get_misses", x->get_misses, b->exec.get_misses);
    DIFF("get_expired", x->get_expired, b->exec.get_expired);
    DIFF("delete_misses", x->delete_misses, b->exec.delete_misses);
    DIFF("delete_hits", x->delete_hits, b->exec.delete_hits);
    DIFF("incr_misses", x->incr_misses, b->exec.incr_misses);
    DIFF("incr_hits", x->incr_hits, b->exec.incr_hits);
    DIFF("decr_misses", x->decr_misses, b->exec.decr_misses);
    DIFF("decr_hits", x->decr_hits, b->exec.decr_hits);
    DIFF("cas_misses", x->cas_misses, b->exec.cas_misses);
    DIFF("cas_hits", x->cas_hits, b->exec.cas_hits);
    DIFF("cas_badval", x->cas_badval, b->exec.cas_badval);
    DIFF("touch_hits", x->touch_hits, b->exec.touch_hits);
    DIFF("touch_misses", x->touch_misses, b->exec.touch_misses);
    DIFF("auth_cmds", m->auth_cmds, b->mc.auth_cmds);
    DIFF("auth_errors", m->auth_errors, b->mc.auth_errors);
    DIFF("bytes_read", ns->bytes_read, b->bytes_read);
    DIFF("bytes_written", ns->bytes_written, b->bytes_written);
    stat_u(c, "limit_maxbytes", ss.limit_bytes);
    stat_u(c, "accepting_conns", 1);
    stat_u(c, "threads", 1);
    stat_u(c, "bytes", ss.bytes);
    stat_u(c, "curr_items", ss.curr_items);
    DIFF("total_items", x->total_items, b->exec.total_items);
    DIFF("expired_unfetched", ss.expired_unfetched, b->expired_unfetched);
    DIFF("evicted_unfetched", ss.evicted_unfetched, b->evicted_unfetched);
    DIFF("evictions", ss.evicted, b->evicted);
#undef DIFF
}

static void settings(struct mc_call *c)
{
    const struct options *o = c->m->cfg.stats->opts;
    stat_u(c, "maxbytes", (uint64_t)o->memory_mib << 20);
    stat_u(c, "maxconns", o->max_connections);
    stat_u(c, "tcpport", c->m->cfg.port);
    stat_u(c, "udpport", 0);
    stat_line(c, "inter", o->host);
    stat_u(c, "verbosity", 0);
    stat_line(c, "evictions", o->eviction == STORE_EVICT_NONE ? "off" : "on");
    stat_u(c, "num_threads", 1);
    stat_line(c, "cas_enabled", "yes");
    stat_u(c, "tcp_backlog", 1024);
    stat_line(c, "binding_protocol", "ascii");
    stat_line(c, "auth_enabled_sasl", "no");
    stat_line(c, "auth_enabled_ascii", c->m->cfg.auth->enabled ? "yes" : "no");
    stat_u(c, "item_size_max", c->m->cfg.max_value_len);
    stat_u(c, "idle_timeout", o->idle_timeout);
    stat_line(c, "flush_enabled", "yes");
}

static void reset(struct mc_call *c)
{
    const struct stats_sources *src = c->m->cfg.stats;
    const struct net_stats *ns = net_get_stats(src->net);
    struct store_stats ss;
    store_get_stats(src->store, &ss);
    c->m->base = (struct mc_base){
        .exec = *exec_get_stats(src->exec),
        .evicted = ss.evicted, .expired_unfetched = ss.expired_unfetched,
        .evicted_unfetched = ss.evicted_unfetched,
        .total_connections = ns->total_connections,
        .rejected_connections = ns->rejected_connections,
        .bytes_read = ns->bytes_read, .bytes_written = ns->bytes_written,
        .mc = c->m->stats,
    };
}

/* memcached's `stats slabs`: the allocation figures of each size class in
 * use (ids from 1, as memcached numbers them), then the totals. The
 * per-class command counters memcached adds are not kept per class. */
static void slabs(struct mc_call *c)
{
    const struct store *st = c->m->cfg.stats->store;
    struct slab_class_stats k;
    uint64_t active = 0;
    char name[48];
    for (unsigned i = 0; store_slab_class(st, i, &k); i++) {
        if (k.pages == 0) continue;
        active++;
        uint64_t total = (uint64_t)k.pages * k.per_page;
        const struct { const char *n; uint64_t v; } f[] = {
            {"chunk_size", k.chunk_size}, {"chunks_per_page", k.per_page},
            {"total_pages", k.pages}, {"total_chunks", total}, {"used_chunks", k.used},
            /* as memcached, which carves a whole page at once: every chunk
             * not in use is free, none is left at the end */
            {"free_chunks", total - k.used}, {"free_chunks_end", 0},
        };
        for (size_t j = 0; j < sizeof f / sizeof f[0]; j++) {
            snprintf(name, sizeof name, "%u:%s", i + 1, f[j].n);
            stat_u(c, name, f[j].v);
        }
    }
    struct store_stats ss;
    store_get_stats(st, &ss);
    stat_u(c, "active_slabs", active);
    stat_u(c, "total_malloced", ss.slab_bytes); /* class pages and runs */
}

static bool is(const char *tok, size_t len, const char *word)
{
    return len == strlen(word) && memcmp(tok, word, len) == 0;
}

void mcs_stats(struct mc_call *c)
{
    size_t pos = 0, len;
    const char *sub;
    if (!mc_args_next(c->req, &pos, &sub, &len)) {
        general(c);
    } else if (is(sub, len, "settings")) {
        settings(c);
    } else if (is(sub, len, "vitamin")) {
        stats_compose(c->m->cfg.stats, c->q, "\r\n", c->now_ms);
    } else if (is(sub, len, "slabs")) {
        slabs(c);
    } else if (is(sub, len, "reset")) {
        reset(c);
        mcs_word(c, MC_W_RESET);
        return;
    } else if (!is(sub, len, "items") && !is(sub, len, "sizes") && !is(sub, len, "conns")) {
        mcs_word(c, MC_W_ERROR);
        return;
    }
    mcs_word(c, MC_W_END);
}
