/*
 * stats.c - every module's counters in stats() order (see stats.h), how a
 * value prints in every text reply, and the visitor that prints them as
 * STAT lines. Names follow memcached where one exists (curr_items, bytes,
 * limit_maxbytes, get_hits, evictions is "evicted" as the SPEC says);
 * metric names follow Prometheus's conventions (a unit suffix in base
 * units, _total on counters).
 */
#include "stats.h"

#include <inttypes.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

#include "exec.h"
#include "expiry.h"
#include "mc_serve.h"
#include "metrics.h"
#include "resp_serve.h"
#include "net.h"
#include "options.h"
#include "reply.h"
#include "repl.h"
#include "snapshot.h"
#include "store.h"
#include "vt_serve.h"

size_t stats_format_num(char *buf, size_t cap, const struct stats_desc *d, uint64_t v)
{
    int n = 0;
    switch (d->format) {
    case STATS_FMT_DEC: n = snprintf(buf, cap, "%" PRIu64, v); break;
    case STATS_FMT_HEX16: n = snprintf(buf, cap, "%016" PRIx64, v); break;
    case STATS_FMT_SEC_US:
        n = snprintf(buf, cap, "%" PRIu64 ".%06" PRIu64, v / 1000000, v % 1000000);
        break;
    }
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

size_t stats_format_text(char *buf, size_t cap, const char *v)
{
    size_t n = 0;
    for (; v[n] && n + 1 < cap; n++) buf[n] = v[n] == '\r' || v[n] == '\n' ? '_' : v[n];
    buf[n] = '\0';
    return n;
}

/* STAT lines into a reply queue (stats_compose). */
struct line_sink {
    struct reply_queue *q;
    const char *eol;
};

static void line_num(void *arg, const struct stats_desc *d, uint64_t v)
{
    const struct line_sink *s = arg;
    char val[STATS_VALUE_MAX];
    stats_format_num(val, sizeof val, d, v);
    reply_printf(s->q, "STAT %s %s%s", d->name, val, s->eol);
}

static void line_text(void *arg, const struct stats_desc *d, const char *v)
{
    const struct line_sink *s = arg;
    char val[STATS_VALUE_MAX];
    stats_format_text(val, sizeof val, v);
    reply_printf(s->q, "STAT %s %s%s", d->name, val, s->eol);
}

static const char *eviction_name(enum store_eviction e)
{
    switch (e) {
    case STORE_EVICT_LRU: return "lru";
    case STORE_EVICT_TTL: return "ttl";
    case STORE_EVICT_NONE: return "noeviction";
    }
    return "?";
}

static uint64_t tv_us(struct timeval tv)
{
    return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

static void process_stats(const struct stats_sources *src, const struct stats_visitor *v,
                          int64_t now_ms)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    STATS_GAUGE(v, "pid", "pid", "Process id.", getpid());
    STATS_GAUGE(v, "uptime", "uptime_seconds", "Seconds since the server started.",
                (now_ms - src->start_ms) / 1000);
    STATS_GAUGE(v, "time", "time_seconds", "The server's clock, unix seconds.", now_ms / 1000);
    STATS_INFO(v, "version", "build_info", "version", "Vitamin's version.", VITAMIN_VERSION);
    STATS_NUMBER(v, "rusage_user", STATS_KIND_COUNTER, "cpu_user_seconds_total", STATS_UNIT_US,
                 STATS_FMT_SEC_US, "CPU time spent in user mode.", tv_us(ru.ru_utime));
    STATS_NUMBER(v, "rusage_system", STATS_KIND_COUNTER, "cpu_system_seconds_total",
                 STATS_UNIT_US, STATS_FMT_SEC_US, "CPU time spent in the kernel.",
                 tv_us(ru.ru_stime));
    STATS_NUMBER(v, "max_rss_kb", STATS_KIND_GAUGE, "max_rss_bytes", STATS_UNIT_KIB,
                 STATS_FMT_DEC, "Largest resident set size so far.", ru.ru_maxrss);
}

static void net_part(const struct stats_sources *src, const struct stats_visitor *v)
{
    const struct net_stats *ns = net_get_stats(src->net);
    const struct vt_stats *vs = vt_serve_stats(src->vt);
    STATS_GAUGE(v, "curr_connections", "connections", "Clients connected now (every port).",
                ns->curr_connections);
    STATS_COUNTER(v, "total_connections", "connections_accepted_total",
                  "Clients accepted (every port).", ns->total_connections);
    STATS_COUNTER(v, "rejected_connections", "connections_rejected_total",
                  "Clients refused over --max_connections.", ns->rejected_connections);
    STATS_GAUGE(v, "max_connections", "max_connections",
                "Setting --max_connections: clients accepted at once.",
                src->opts->max_connections);
    STATS_COUNTER(v, "idle_closed", "connections_idle_closed_total",
                  "Clients closed after --idle_timeout without progress.", ns->idle_closed);
    STATS_COUNTER(v, "reads_paused", "reads_paused_total",
                  "Times a client was not read from until its replies drained.",
                  ns->reads_paused);
    STATS_COUNTER(v, "lines_too_long", "lines_too_long_total",
                  "Request lines over the longest allowed (Vitamin's protocol).",
                  vs->lines_too_long);
    STATS_COUNTER(v, "bytes_read", "read_bytes_total", "Bytes read from clients.",
                  ns->bytes_read);
    STATS_COUNTER(v, "bytes_written", "written_bytes_total", "Bytes written to clients.",
                  ns->bytes_written);
    STATS_COUNTER(v, "replies_held", "replies_held_total",
                  "Times a client's replies waited for a broker confirm.", ns->replies_held);
    STATS_GAUGE(v, "client_memory", "client_memory_bytes",
                "Bytes of client input and output buffers now.", ns->client_memory);
    STATS_COUNTER(v, "client_memory_closed", "client_memory_closed_total",
                  "Clients closed to stay under --max_client_memory.",
                  ns->client_memory_closed);
}

static void command_stats(const struct stats_sources *src, const struct stats_visitor *v)
{
    const struct exec_stats *xs = exec_get_stats(src->exec);
    const struct vt_stats *vs = vt_serve_stats(src->vt);
    STATS_COUNTER(v, "cmd_get", "cmd_get_total", "Reads of a key (every protocol).",
                  xs->cmd_get);
    STATS_COUNTER(v, "cmd_set", "cmd_set_total", "Writes of a value (every protocol).",
                  xs->cmd_set);
    STATS_COUNTER(v, "cmd_del", "cmd_del_total", "del() requests.", vs->cmd_del);
    STATS_COUNTER(v, "cmd_ttl", "cmd_ttl_total", "ttl() requests.", vs->cmd_ttl);
    STATS_COUNTER(v, "cmd_expire", "cmd_expire_total", "expire() requests.", vs->cmd_expire);
    STATS_COUNTER(v, "cmd_ping", "cmd_ping_total", "ping() requests.", vs->cmd_ping);
    STATS_COUNTER(v, "cmd_touch", "cmd_touch_total", "Expiry changes (every protocol).",
                  xs->cmd_touch);
    STATS_COUNTER(v, "cmd_flush", "cmd_flush_total", "Flushes of all data.", xs->cmd_flush);
    STATS_COUNTER(v, "get_hits", "get_hits_total", "Reads that found a live item.",
                  xs->get_hits);
    STATS_COUNTER(v, "get_misses", "get_misses_total", "Reads that found none.",
                  xs->get_misses);
    STATS_COUNTER(v, "delete_hits", "delete_hits_total", "Deletes of a live item.",
                  xs->delete_hits);
    STATS_COUNTER(v, "delete_misses", "delete_misses_total", "Deletes that found none.",
                  xs->delete_misses);
    STATS_COUNTER(v, "touch_hits", "touch_hits_total", "Expiry changes of a live item.",
                  xs->touch_hits);
    STATS_COUNTER(v, "touch_misses", "touch_misses_total", "Expiry changes that found none.",
                  xs->touch_misses);
    STATS_COUNTER(v, "total_items", "items_stored_total", "Items stored by clients.",
                  xs->total_items);
    STATS_COUNTER(v, "protocol_errors", "protocol_errors_total",
                  "Requests answered with a protocol error (Vitamin's protocol).",
                  vs->protocol_errors);
    STATS_COUNTER(v, "set_refused", "set_refused_total",
                  "Writes refused: over the memory cap, or too large.", xs->set_refused);
    STATS_COUNTER(v, "auth_failures", "auth_failures_total", "auth() with a wrong password.",
                  vs->auth_failures);
    STATS_COUNTER(v, "auth_required", "auth_required_total",
                  "Requests refused before auth().", vs->auth_required);
    STATS_COUNTER(v, "writes_refused_outbox", "writes_refused_outbox_total",
                  "Confirm mode: writes refused because the outbox was full.",
                  xs->writes_refused_outbox);
}

/* The memcache and redis ports' own counters (their own `stats` and INFO
 * replies have the rest, under memcached's and Redis's names). */
static void protocol_part(const struct stats_sources *src, const struct stats_visitor *v)
{
    if (src->mc) {
        const struct mc_stats *ms = mc_serve_stats(src->mc);
        STATS_GAUGE(v, "mc_curr_connections", "mc_connections",
                    "Clients connected to the memcache port now.", ms->curr_connections);
        STATS_COUNTER(v, "mc_total_connections", "mc_connections_accepted_total",
                      "Clients accepted on the memcache port.", ms->total_connections);
        STATS_COUNTER(v, "mc_commands", "mc_commands_total",
                      "Requests served on the memcache port.", mc_serve_commands(src->mc));
        STATS_COUNTER(v, "mc_protocol_errors", "mc_protocol_errors_total",
                      "memcache requests answered with an error line or closed.",
                      ms->protocol_errors);
        STATS_COUNTER(v, "mc_auth_failures", "mc_auth_failures_total",
                      "memcache authentications refused.", ms->auth_errors);
    }
    if (src->resp) {
        const struct resp_stats *rs = resp_serve_stats(src->resp);
        STATS_COUNTER(v, "resp_total_connections", "resp_connections_accepted_total",
                      "Clients accepted on the redis port.", rs->connections);
        STATS_COUNTER(v, "resp_commands", "resp_commands_total",
                      "Commands executed on the redis port.", rs->commands);
        STATS_COUNTER(v, "resp_error_replies", "resp_error_replies_total",
                      "Error replies on the redis port.", rs->errors);
        STATS_COUNTER(v, "resp_protocol_errors", "resp_protocol_errors_total",
                      "redis clients closed after garbage or an oversized request.",
                      rs->protocol_errors + rs->oversized);
        STATS_COUNTER(v, "resp_auth_failures", "resp_auth_failures_total",
                      "AUTH or HELLO AUTH with a wrong password.", rs->auth_failures);
    }
}

static void store_part(const struct stats_sources *src, const struct stats_visitor *v)
{
    struct store_stats ss;
    store_get_stats(src->store, &ss);
    STATS_GAUGE(v, "curr_items", "items", "Live items.", ss.curr_items);
    STATS_GAUGE(v, "tombstones", "tombstones", "Delete markers held for replication.",
                ss.tombstones);
    STATS_GAUGE(v, "bytes", "memory_used_bytes", "Bytes of data and index counted against --memory.",
                ss.bytes);
    STATS_GAUGE(v, "limit_maxbytes", "memory_limit_bytes", "Setting --memory, in bytes.",
                ss.limit_bytes);
    STATS_INFO(v, "eviction", "eviction_info", "policy", "Setting --eviction.",
               eviction_name(src->opts->eviction));
    STATS_COUNTER(v, "expired", "expired_total", "Items removed because their time came.",
                  ss.expired);
    STATS_COUNTER(v, "evicted", "evicted_total", "Items removed to make room.", ss.evicted);
    struct expiry_stats es;
    expiry_get_stats(src->expiry, &es);
    STATS_NUMBER(v, "expiry_turn_max_us", STATS_KIND_GAUGE, "expiry_turn_max_seconds",
                 STATS_UNIT_US, STATS_FMT_DEC,
                 "Longest loop turn of the expiry timer since start (due items, rehash), wall clock.",
                 es.turn_max_us);
    STATS_NUMBER(v, "expiry_turn_cpu_max_us", STATS_KIND_GAUGE, "expiry_turn_cpu_max_seconds",
                 STATS_UNIT_US, STATS_FMT_DEC,
                 "Most CPU time one loop turn of the expiry timer used since start.",
                 es.turn_cpu_max_us);
    STATS_GAUGE(v, "table_slots", "table_slots", "Slots of the hash table(s).", ss.table_slots);
    STATS_GAUGE(v, "rehashing", "rehashing", "1 while the table is being resized.",
                ss.rehashing);
    STATS_GAUGE(v, "slab_bytes", "slab_bytes",
                "Pages the item allocator holds (items and the free room in their pages).",
                ss.slab_bytes);
    STATS_COUNTER(v, "slab_pages_released", "slab_pages_released_total",
                  "Empty 64 KiB pages the item allocator gave back to the OS.",
                  ss.slab_pages_released);
    STATS_COUNTER(v, "slab_items_moved", "slab_items_moved_total",
                  "Items the allocator moved to empty pages that evictions or deletes left sparse.",
                  ss.slab_items_moved);
    /* A hash, not a quantity: not a metric (as a label it would make a new
     * series at every write), only text replies show it. */
    STATS_NUMBER(v, "items_digest", STATS_KIND_GAUGE, NULL, STATS_UNIT_ONE, STATS_FMT_HEX16,
                 NULL, ss.items_digest);
}

static void snapshot_part(const struct stats_sources *src, const struct stats_visitor *v)
{
    struct snapshot_stats sn;
    snapshot_get_stats(src->snapshot, &sn);
    STATS_COUNTER(v, "snapshot_saves", "snapshot_saves_total", "Snapshot files written.",
                  sn.saves);
    STATS_COUNTER(v, "snapshot_failures", "snapshot_failures_total",
                  "Snapshot saves that failed, and files that could not be loaded.",
                  sn.failures);
    STATS_GAUGE(v, "snapshot_in_progress", "snapshot_in_progress",
                "1 while a background save runs.", sn.saving);
    STATS_GAUGE(v, "snapshot_saved_items", "snapshot_saved_items",
                "Live items in the last save.", sn.saved_items);
    STATS_GAUGE(v, "snapshot_saved_tombstones", "snapshot_saved_tombstones",
                "Tombstones in the last save.", sn.saved_tombstones);
    STATS_GAUGE(v, "snapshot_save_bytes", "snapshot_saved_bytes",
                "Size of the last snapshot file.", sn.save_bytes);
    STATS_NUMBER(v, "snapshot_save_ms", STATS_KIND_GAUGE, "snapshot_save_duration_seconds",
                 STATS_UNIT_MS, STATS_FMT_DEC, "Duration of the last save.", sn.save_ms);
    STATS_NUMBER(v, "snapshot_save_slice_max_us", STATS_KIND_GAUGE,
                 "snapshot_save_slice_max_seconds", STATS_UNIT_US, STATS_FMT_DEC,
                 "Longest loop turn spent on the last background save.",
                 sn.save_slice_max_us);
    STATS_GAUGE(v, "snapshot_last_save_time", "snapshot_last_save_timestamp_seconds",
                "When the last good save began, unix seconds (0: none).", sn.last_save_time);
    STATS_GAUGE(v, "snapshot_loaded_items", "snapshot_loaded_items",
                "Live items loaded at start.", sn.loaded_items);
    STATS_GAUGE(v, "snapshot_loaded_tombstones", "snapshot_loaded_tombstones",
                "Tombstones loaded at start.", sn.loaded_tombstones);
    STATS_GAUGE(v, "snapshot_load_dropped", "snapshot_load_dropped",
                "Records skipped at load: expired, collected or older.", sn.load_dropped);
    STATS_GAUGE(v, "snapshot_load_refused", "snapshot_load_refused",
                "Records the store refused at load (memory cap).", sn.load_refused);
    STATS_NUMBER(v, "snapshot_load_ms", STATS_KIND_GAUGE, "snapshot_load_duration_seconds",
                 STATS_UNIT_MS, STATS_FMT_DEC, "Duration of the load at start.", sn.load_ms);
}

void stats_visit(const struct stats_sources *src, const struct stats_visitor *v,
                 int64_t now_ms)
{
    process_stats(src, v, now_ms);
    net_part(src, v);
    command_stats(src, v);
    protocol_part(src, v);
    store_part(src, v);
    snapshot_part(src, v);
    if (src->metrics) metrics_stats_visit(src->metrics, v);
    if (src->repl) {
        repl_stats_visit(src->repl, v);
    } else {
        STATS_STATE(v, "repl_state", "repl_state", "state", repl_state_names,
                    "Replication state (1 for the current one).", "off");
        STATS_INFO(v, "node_id", "node_info", "node_id", "This node's --node_id.",
                   src->opts->node_id);
    }
}

void stats_compose(const struct stats_sources *src, struct reply_queue *q, const char *eol,
                   int64_t now_ms)
{
    struct line_sink sink = {q, eol};
    struct stats_visitor v = {line_num, line_text, &sink};
    stats_visit(src, &v, now_ms);
}
