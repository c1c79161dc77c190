/*
 * stats.c - prints every module's counters as STAT lines (see stats.h).
 * Names follow memcached where one exists (curr_items, bytes,
 * limit_maxbytes, get_hits, evictions is "evicted" as the SPEC says).
 */
#include "stats.h"

#include <inttypes.h>
#include <sys/resource.h>
#include <unistd.h>

#include "exec.h"
#include "mc_serve.h"
#include "resp_serve.h"
#include "net.h"
#include "options.h"
#include "reply.h"
#include "repl.h"
#include "snapshot.h"
#include "store.h"
#include "vt_serve.h"

#define STAT_U(name, v) reply_printf(q, "STAT %s %" PRIu64 "\n", name, (uint64_t)(v))
#define STAT_S(name, v) reply_printf(q, "STAT %s %s\n", name, v)

static const char *eviction_name(enum store_eviction e)
{
    switch (e) {
    case STORE_EVICT_LRU: return "lru";
    case STORE_EVICT_TTL: return "ttl";
    case STORE_EVICT_NONE: return "noeviction";
    }
    return "?";
}

void stats_compose(const struct stats_sources *src, struct reply_queue *q,
                   int64_t now_ms)
{
    const struct net_stats *ns = net_get_stats(src->net);
    const struct exec_stats *xs = exec_get_stats(src->exec);
    const struct vt_stats *vs = vt_serve_stats(src->vt);
    struct store_stats ss;
    store_get_stats(src->store, &ss);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);

    STAT_U("pid", getpid());
    STAT_U("uptime", (now_ms - src->start_ms) / 1000);
    STAT_U("time", now_ms / 1000);
    STAT_S("version", VITAMIN_VERSION);
    reply_printf(q, "STAT rusage_user %ld.%06ld\n", (long)ru.ru_utime.tv_sec,
                 (long)ru.ru_utime.tv_usec);
    reply_printf(q, "STAT rusage_system %ld.%06ld\n", (long)ru.ru_stime.tv_sec,
                 (long)ru.ru_stime.tv_usec);
    STAT_U("max_rss_kb", ru.ru_maxrss);

    STAT_U("curr_connections", ns->curr_connections);
    STAT_U("total_connections", ns->total_connections);
    STAT_U("rejected_connections", ns->rejected_connections);
    STAT_U("max_connections", src->opts->max_connections);
    STAT_U("idle_closed", ns->idle_closed);
    STAT_U("reads_paused", ns->reads_paused);
    STAT_U("lines_too_long", vs->lines_too_long);
    STAT_U("bytes_read", ns->bytes_read);
    STAT_U("bytes_written", ns->bytes_written);
    STAT_U("replies_held", ns->replies_held);
    STAT_U("client_memory", ns->client_memory);
    STAT_U("client_memory_closed", ns->client_memory_closed);

    STAT_U("cmd_get", xs->cmd_get);
    STAT_U("cmd_set", xs->cmd_set);
    STAT_U("cmd_del", vs->cmd_del);
    STAT_U("cmd_ttl", vs->cmd_ttl);
    STAT_U("cmd_expire", vs->cmd_expire);
    STAT_U("cmd_ping", vs->cmd_ping);
    STAT_U("cmd_touch", xs->cmd_touch);
    STAT_U("cmd_flush", xs->cmd_flush);
    STAT_U("get_hits", xs->get_hits);
    STAT_U("get_misses", xs->get_misses);
    STAT_U("delete_hits", xs->delete_hits);
    STAT_U("delete_misses", xs->delete_misses);
    STAT_U("touch_hits", xs->touch_hits);
    STAT_U("touch_misses", xs->touch_misses);
    STAT_U("total_items", xs->total_items);
    STAT_U("protocol_errors", vs->protocol_errors);
    STAT_U("set_refused", xs->set_refused);
    STAT_U("auth_failures", vs->auth_failures);
    STAT_U("auth_required", vs->auth_required);
    STAT_U("writes_refused_outbox", xs->writes_refused_outbox);
    if (src->mc) { /* the memcache port's own (its `stats` has the rest) */
        const struct mc_stats *ms = mc_serve_stats(src->mc);
        STAT_U("mc_curr_connections", ms->curr_connections);
        STAT_U("mc_total_connections", ms->total_connections);
        STAT_U("mc_commands", mc_serve_commands(src->mc));
        STAT_U("mc_protocol_errors", ms->protocol_errors);
        STAT_U("mc_auth_failures", ms->auth_errors);
    }
    if (src->resp) { /* the redis port's own (its INFO has the rest) */
        const struct resp_stats *rs = resp_serve_stats(src->resp);
        STAT_U("resp_total_connections", rs->connections);
        STAT_U("resp_commands", rs->commands);
        STAT_U("resp_error_replies", rs->errors);
        STAT_U("resp_protocol_errors", rs->protocol_errors + rs->oversized);
        STAT_U("resp_auth_failures", rs->auth_failures);
    }

    STAT_U("curr_items", ss.curr_items);
    STAT_U("tombstones", ss.tombstones);
    STAT_U("bytes", ss.bytes);
    STAT_U("limit_maxbytes", ss.limit_bytes);
    STAT_S("eviction", eviction_name(src->opts->eviction));
    STAT_U("expired", ss.expired);
    STAT_U("evicted", ss.evicted);
    STAT_U("table_slots", ss.table_slots);
    STAT_U("rehashing", ss.rehashing);
    reply_printf(q, "STAT items_digest %016" PRIx64 "\n", ss.items_digest);

    struct snapshot_stats sn;
    snapshot_get_stats(src->snapshot, &sn);
    STAT_U("snapshot_saves", sn.saves);
    STAT_U("snapshot_failures", sn.failures);
    STAT_U("snapshot_in_progress", sn.saving);
    STAT_U("snapshot_saved_items", sn.saved_items);
    STAT_U("snapshot_saved_tombstones", sn.saved_tombstones);
    STAT_U("snapshot_save_bytes", sn.save_bytes);
    STAT_U("snapshot_save_ms", sn.save_ms);
    STAT_U("snapshot_save_slice_max_us", sn.save_slice_max_us);
    STAT_U("snapshot_last_save_time", sn.last_save_time);
    STAT_U("snapshot_loaded_items", sn.loaded_items);
    STAT_U("snapshot_loaded_tombstones", sn.loaded_tombstones);
    STAT_U("snapshot_load_dropped", sn.load_dropped);
    STAT_U("snapshot_load_refused", sn.load_refused);
    STAT_U("snapshot_load_ms", sn.load_ms);
    if (src->repl) repl_stats(src->repl, q);
    else reply_printf(q, "STAT repl_state off\nSTAT node_id %s\n", src->opts->node_id);
}
