/*
 * resp_server.c - Redis's connection and server commands: PING ECHO QUIT
 * HELLO AUTH SELECT RESET, CLIENT (SETNAME GETNAME ID SETINFO INFO LIST),
 * CONFIG GET, INFO, DBSIZE, FLUSHALL/FLUSHDB, TIME, and the HELP
 * subcommands.
 *
 * The server's view that Redis tools read (INFO, CONFIG GET, CLIENT LIST)
 * is composed from every module's own counters (stats_sources, stats.h),
 * with Redis's field names where one means the same thing. Vitamin has one
 * database (SELECT 0 only), one user ("default", whose password is
 * --password), no persistence and master-master replication: INFO says
 * role:master and adds the pool's repl_* counters to its replication
 * section. INFO's own section "vitamin" has every stats() field under its
 * stats() name (stats.h's visit), as a module's section would: by name or
 * with "everything", not in "default" or "all".
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "auth.h"
#include "exec.h"
#include "glob.h"
#include "net.h"
#include "num.h"
#include "options.h"
#include "reply.h"
#include "repl.h"
#include "resp_internal.h"
#include "resp_reply.h"
#include "stats.h"
#include "store.h"

#define REDIS_COMPAT_VERSION "7.0.15" /* the Redis whose behaviour is reproduced */

/* ---- text builder (INFO, CLIENT LIST) ----------------------------------- */

struct text {
    char *p;
    size_t len, cap;
    bool nomem;
};

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_add(struct text *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = t->nomem ? 0 : vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0 || t->nomem) return;
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? 2 * t->cap : 1024;
        while (cap - t->len <= (size_t)n) cap *= 2;
        char *np = realloc(t->p, cap);
        if (!np) {
            t->nomem = true;
            return;
        }
        t->p = np;
        t->cap = cap;
    }
}

/* Reply t as a bulk (RESP2) or verbatim txt (RESP3) string, and free it. */
static void text_reply(struct rs_call *c, struct text *t)
{
    if (t->nomem) rs_write_error(c, EXEC_NOMEM);
    else rs_verbatim(c, t->p ? t->p : "", t->len);
    free(t->p);
}

/* ---- connection --------------------------------------------------------- */

void rs_ping(struct rs_call *c)
{
    if (c->argc > 2) return rs_errorf(c, "ERR wrong number of arguments for '%s' command", c->cmd->name);
    if (c->argc == 2) return rs_bulk(c, c->argv[1].ptr, c->argv[1].len);
    rs_simple(c, "PONG");
}

void rs_echo(struct rs_call *c) { rs_bulk(c, c->argv[1].ptr, c->argv[1].len); }

void rs_quit(struct rs_call *c)
{
    rs_ok(c);
    c->res->close = true;
}

static bool is_word(const struct resp_arg *a, const char *w)
{
    size_t n = strlen(w);
    return a->len == n && memcmp(a->ptr, w, n) == 0;
}

/* Check user ("default" or none) and password; AUTH's and HELLO's rule.
 * Without --password the default user takes any password (Redis's nopass). */
static bool try_auth(struct rs_call *c, const struct resp_arg *user, const struct resp_arg *pass)
{
    const struct auth *a = c->r->cfg.auth;
    bool ok = (!user || is_word(user, "default")) &&
              (!a->enabled || auth_check(a, pass->ptr, pass->len));
    if (ok) c->s->authed = true;
    else c->r->stats.auth_failures++;
    return ok;
}

static const char WRONGPASS[] = "WRONGPASS invalid username-password pair or user is disabled.";

void rs_auth(struct rs_call *c)
{
    if (c->argc > 3) return rs_error(c, "ERR syntax error");
    if (c->argc == 2 && !c->r->cfg.auth->enabled)
        return rs_error(c, "ERR AUTH <password> called without any password configured for the "
                           "default user. Are you sure your configuration is correct?");
    if (!try_auth(c, c->argc == 3 ? &c->argv[1] : NULL, &c->argv[c->argc - 1]))
        return rs_error(c, WRONGPASS);
    rs_ok(c);
}

/* Redis's rule for client names and library names: printable, no blanks. */
static bool valid_name(const struct resp_arg *a)
{
    for (size_t i = 0; i < a->len; i++)
        if (a->ptr[i] < '!' || a->ptr[i] > '~') return false;
    return true;
}

/* Set *field to a copy of a (empty: clear). */
static void set_string(char **field, const struct resp_arg *a)
{
    free(*field);
    *field = a->len ? strndup(a->ptr, a->len) : NULL;
}

static const char BAD_NAME[] = "ERR Client names cannot contain spaces, newlines or special characters.";

void rs_hello(struct rs_call *c)
{
    int64_t ver = c->s->ver;
    size_t j = 1;
    if (c->argc >= 2) {
        if (!num_parse_i64(c->argv[1].ptr, c->argv[1].len, &ver))
            return rs_error(c, "ERR Protocol version is not an integer or out of range");
        if (ver < 2 || ver > 3) return rs_error(c, "NOPROTO unsupported protocol version");
        j = 2;
    }
    const struct resp_arg *user = NULL, *pass = NULL, *name = NULL;
    for (; j < c->argc; j++) {
        size_t more = c->argc - j - 1;
        if (rs_arg_is(c, j, "AUTH") && more >= 2) {
            user = &c->argv[j + 1];
            pass = &c->argv[j + 2];
            j += 2;
        } else if (rs_arg_is(c, j, "SETNAME") && more >= 1) {
            name = &c->argv[++j];
            if (!valid_name(name)) return rs_error(c, BAD_NAME);
        } else {
            return rs_errorf(c, "ERR Syntax error in HELLO option '%.*s'",
                             (int)strnlen(c->argv[j].ptr, c->argv[j].len), c->argv[j].ptr);
        }
    }
    if (user && !try_auth(c, user, pass)) return rs_error(c, WRONGPASS);
    if (!c->s->authed)
        return rs_error(c, "NOAUTH HELLO must be called with the client already authenticated, "
                           "otherwise the HELLO AUTH <user> <pass> option can be used to "
                           "authenticate the client and select the RESP protocol version at the "
                           "same time");
    if (name) set_string(&c->s->name, name);
    c->s->ver = (uint8_t)ver;
    rs_map(c, 7);
    rs_bulk_str(c, "server");
    rs_bulk_str(c, "redis");
    rs_bulk_str(c, "version");
    rs_bulk_str(c, REDIS_COMPAT_VERSION);
    rs_bulk_str(c, "proto");
    rs_int(c, ver);
    rs_bulk_str(c, "id");
    rs_int(c, (long long)c->s->id);
    rs_bulk_str(c, "mode");
    rs_bulk_str(c, "standalone");
    rs_bulk_str(c, "role");
    rs_bulk_str(c, "master");
    rs_bulk_str(c, "modules");
    rs_array(c, 0);
}

void rs_select(struct rs_call *c)
{
    int64_t db;
    if (!num_parse_i64(c->argv[1].ptr, c->argv[1].len, &db))
        return rs_error(c, "ERR value is not an integer or out of range");
    if (db < INT32_MIN || db > INT32_MAX)
        return rs_error(c, "ERR value is out of range, value must between -2147483648 and 2147483647");
    if (db != 0) return rs_error(c, "ERR DB index is out of range");
    rs_ok(c);
}

void rs_reset(struct rs_call *c)
{
    struct rs_session *s = c->s;
    free(s->name);
    s->name = NULL;
    s->ver = RESP_V2;
    s->authed = !c->r->cfg.auth->enabled;
    rs_simple(c, "RESET");
}

/* ---- CLIENT ---------------------------------------------------------------- */

void rs_client_setname(struct rs_call *c)
{
    if (!valid_name(&c->argv[2])) return rs_error(c, BAD_NAME);
    set_string(&c->s->name, &c->argv[2]);
    rs_ok(c);
}

void rs_client_getname(struct rs_call *c)
{
    if (c->s->name) rs_bulk_str(c, c->s->name);
    else rs_null(c);
}

void rs_client_id(struct rs_call *c) { rs_int(c, (long long)c->s->id); }

void rs_client_setinfo(struct rs_call *c)
{
    char **field;
    if (rs_arg_is(c, 2, "lib-name")) field = &c->s->lib_name;
    else if (rs_arg_is(c, 2, "lib-ver")) field = &c->s->lib_ver;
    else
        return rs_errorf(c, "ERR Unrecognized option '%.*s'",
                         (int)strnlen(c->argv[2].ptr, c->argv[2].len), c->argv[2].ptr);
    if (!valid_name(&c->argv[3]))
        return rs_errorf(c, "ERR %s cannot contain spaces, newlines or special characters.",
                         field == &c->s->lib_name ? "lib-name" : "lib-ver");
    set_string(field, &c->argv[3]);
    rs_ok(c);
}

/* One CLIENT LIST line, with the fields Vitamin knows. */
static void client_line(struct text *t, const struct rs_session *s, int64_t now_ms)
{
    text_add(t, "id=%" PRIu64 " addr=%s laddr=%s fd=%d name=%s age=%" PRId64 " idle=%" PRId64
             " flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 cmd=%s user=default redir=-1"
             " resp=%u lib-name=%s lib-ver=%s\n",
             s->id, s->peer.addr, s->peer.laddr, s->peer.fd, s->name ? s->name : "",
             (now_ms - s->created_ms) / 1000, (now_ms - s->last_ms) / 1000,
             s->last_cmd ? s->last_cmd : "NULL", s->ver, s->lib_name ? s->lib_name : "",
             s->lib_ver ? s->lib_ver : "");
}

void rs_client_info(struct rs_call *c)
{
    struct text t = {0};
    client_line(&t, c->s, c->now_ms);
    text_reply(c, &t);
}

/* Is the session's id among the ID arguments (from first on)? */
static bool listed(const struct rs_call *c, size_t first, uint64_t id)
{
    for (size_t j = first; j < c->argc; j++) {
        int64_t v;
        if (num_parse_i64(c->argv[j].ptr, c->argv[j].len, &v) && (uint64_t)v == id) return true;
    }
    return false;
}

void rs_client_list(struct rs_call *c)
{
    bool none = false;
    size_t ids = 0; /* first ID argument, 0 = no ID filter */
    if (c->argc == 4 && rs_arg_is(c, 2, "TYPE")) {
        if (rs_arg_is(c, 3, "normal")) none = false;
        else if (rs_arg_is(c, 3, "master") || rs_arg_is(c, 3, "replica") ||
                 rs_arg_is(c, 3, "slave") || rs_arg_is(c, 3, "pubsub"))
            none = true;
        else
            return rs_errorf(c, "ERR Unknown client type '%.*s'",
                             (int)strnlen(c->argv[3].ptr, c->argv[3].len), c->argv[3].ptr);
    } else if (c->argc >= 4 && rs_arg_is(c, 2, "ID")) {
        for (size_t j = 3; j < c->argc; j++) {
            int64_t v;
            if (!num_parse_i64(c->argv[j].ptr, c->argv[j].len, &v) || v < 1)
                return rs_error(c, "ERR Invalid client ID");
        }
        ids = 3;
    } else if (c->argc != 2) {
        return rs_error(c, "ERR syntax error");
    }
    struct text t = {0};
    for (const struct rs_session *s = c->r->sessions; s && !none; s = s->next)
        if (!ids || listed(c, ids, s->id)) client_line(&t, s, c->now_ms);
    text_reply(c, &t);
}

/* ---- CONFIG GET ------------------------------------------------------------ */

static const char *policy_name(enum store_eviction e)
{
    switch (e) {
    case STORE_EVICT_LRU: return "allkeys-lru";
    case STORE_EVICT_TTL: return "volatile-ttl";
    default: return "noeviction";
    }
}

/* The parameters CONFIG GET knows, in reply order. */
static const char *const config_names[] = {
    "maxmemory", "maxmemory-policy", "save", "appendonly", "databases",
    "maxclients", "timeout", "proto-max-bulk-len", "port", "bind",
};
#define NCONFIG (sizeof config_names / sizeof config_names[0])

static void config_value(const struct rs_call *c, size_t i, char *buf, size_t cap)
{
    const struct options *o = c->r->cfg.sources->opts;
    switch (i) {
    case 0: snprintf(buf, cap, "%zu", o->memory_mib << 20); break;
    case 1: snprintf(buf, cap, "%s", policy_name(o->eviction)); break;
    case 2: buf[0] = '\0'; break;
    case 3: snprintf(buf, cap, "no"); break;
    case 4: snprintf(buf, cap, "1"); break;
    case 5: snprintf(buf, cap, "%u", o->max_connections); break;
    case 6: snprintf(buf, cap, "%u", o->idle_timeout); break;
    case 7: snprintf(buf, cap, "%zu", c->r->cfg.max_value_size); break;
    case 8: snprintf(buf, cap, "%u", c->r->cfg.port); break;
    default: snprintf(buf, cap, "%s", o->host); break;
    }
}

void rs_config_get(struct rs_call *c)
{
    bool hit[NCONFIG] = {false};
    size_t n = 0;
    for (size_t i = 0; i < NCONFIG; i++) {
        for (size_t j = 2; j < c->argc && !hit[i]; j++)
            hit[i] = glob_match(c->argv[j].ptr, c->argv[j].len, config_names[i],
                                strlen(config_names[i]), true);
        n += hit[i];
    }
    rs_map(c, n);
    for (size_t i = 0; i < NCONFIG; i++) {
        if (!hit[i]) continue;
        char buf[320];
        config_value(c, i, buf, sizeof buf);
        rs_bulk_str(c, config_names[i]);
        rs_bulk_str(c, buf);
    }
}

/* ---- INFO ------------------------------------------------------------------ */

/* Redis's "human" byte count: 1023B, 1.50K, 12.00M ... */
static void human(char *buf, size_t cap, uint64_t n)
{
    static const char units[] = "KMGTP";
    if (n < 1024) {
        snprintf(buf, cap, "%" PRIu64 "B", n);
        return;
    }
    double d = (double)n / 1024;
    int u = 0;
    while (d >= 1024 && u < 4) {
        d /= 1024;
        u++;
    }
    snprintf(buf, cap, "%.2f%c", d, units[u]);
}

static uint64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, res = 0;
    if (!f) return 0;
    if (fscanf(f, "%llu %llu", &size, &res) != 2) res = 0;
    fclose(f);
    return res * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void info_server(struct rs_call *c, struct text *t)
{
    const struct stats_sources *src = c->r->cfg.sources;
    struct utsname u;
    if (uname(&u) != 0) memset(&u, 0, sizeof u);
    uint64_t h1 = XXH3_64bits_withSeed(src->opts->node_id, strlen(src->opts->node_id),
                                       (uint64_t)src->start_ms);
    uint64_t h2 = XXH3_64bits_withSeed(&h1, sizeof h1, 1);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t up = (c->now_ms - src->start_ms) / 1000;
    text_add(t, "# Server\r\nredis_version:%s\r\nredis_mode:standalone\r\nvitamin_version:%s\r\n"
             "os:%s %s %s\r\narch_bits:%d\r\nmultiplexing_api:libev\r\nprocess_id:%d\r\n"
             "run_id:%016" PRIx64 "%016" PRIx64 "%08" PRIx32 "\r\ntcp_port:%u\r\n"
             "server_time_usec:%lld\r\nuptime_in_seconds:%" PRId64 "\r\n"
             "uptime_in_days:%" PRId64 "\r\nconfig_file:\r\nnode_id:%s\r\n",
             REDIS_COMPAT_VERSION, VITAMIN_VERSION, u.sysname, u.release, u.machine,
             (int)(8 * sizeof(void *)), (int)getpid(), h1, h2, (uint32_t)(h1 ^ h2),
             c->r->cfg.port, (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000, up,
             up / 86400, src->opts->node_id);
}

static void info_clients(struct rs_call *c, struct text *t)
{
    const struct stats_sources *src = c->r->cfg.sources;
    text_add(t, "# Clients\r\nconnected_clients:%" PRIu64 "\r\nmaxclients:%u\r\n"
             "blocked_clients:0\r\ntracking_clients:0\r\n",
             net_get_stats(src->net)->curr_connections, src->opts->max_connections);
}

static void info_memory(struct rs_call *c, struct text *t)
{
    const struct stats_sources *src = c->r->cfg.sources;
    struct store_stats ss;
    store_get_stats(src->store, &ss);
    uint64_t rss = rss_bytes();
    char h_used[32], h_rss[32], h_max[32];
    human(h_used, sizeof h_used, ss.bytes);
    human(h_rss, sizeof h_rss, rss);
    human(h_max, sizeof h_max, ss.limit_bytes);
    text_add(t, "# Memory\r\nused_memory:%" PRIu64 "\r\nused_memory_human:%s\r\n"
             "used_memory_rss:%" PRIu64 "\r\nused_memory_rss_human:%s\r\n"
             "maxmemory:%" PRIu64 "\r\nmaxmemory_human:%s\r\nmaxmemory_policy:%s\r\n"
             "mem_allocator:libc\r\n",
             ss.bytes, h_used, rss, h_rss, ss.limit_bytes, h_max,
             policy_name(src->opts->eviction));
}

static void info_persistence(struct rs_call *c, struct text *t)
{
    text_add(t, "# Persistence\r\nloading:0\r\nrdb_changes_since_last_save:0\r\n"
             "rdb_bgsave_in_progress:0\r\nrdb_last_save_time:%" PRId64 "\r\n"
             "aof_enabled:0\r\n", c->r->cfg.sources->start_ms / 1000);
}

static void info_stats(struct rs_call *c, struct text *t)
{
    const struct stats_sources *src = c->r->cfg.sources;
    const struct net_stats *ns = net_get_stats(src->net);
    const struct exec_stats *xs = exec_get_stats(src->exec);
    const struct resp_stats *rs = &c->r->stats;
    struct store_stats ss;
    store_get_stats(src->store, &ss);
    text_add(t, "# Stats\r\ntotal_connections_received:%" PRIu64 "\r\n"
             "total_commands_processed:%" PRIu64 "\r\ntotal_net_input_bytes:%" PRIu64 "\r\n"
             "total_net_output_bytes:%" PRIu64 "\r\nrejected_connections:%" PRIu64 "\r\n"
             "expired_keys:%" PRIu64 "\r\nevicted_keys:%" PRIu64 "\r\nkeyspace_hits:%" PRIu64 "\r\n"
             "keyspace_misses:%" PRIu64 "\r\ntotal_error_replies:%" PRIu64 "\r\n"
             "resp_connections_received:%" PRIu64 "\r\nresp_unknown_commands:%" PRIu64 "\r\n"
             "resp_protocol_errors:%" PRIu64 "\r\nresp_oversized_requests:%" PRIu64 "\r\n"
             "resp_auth_failures:%" PRIu64 "\r\nresp_noauth_rejections:%" PRIu64 "\r\n",
             ns->total_connections, rs->commands, ns->bytes_read, ns->bytes_written,
             ns->rejected_connections, ss.expired, ss.evicted, xs->get_hits, xs->get_misses,
             rs->errors, rs->connections, rs->unknown_commands, rs->protocol_errors,
             rs->oversized, rs->auth_failures, rs->auth_required);
}

/* A stats.h visitor writing `name:value` INFO lines (arg: a struct text),
 * values printed as stats() prints them. */
static void info_num(void *arg, const struct stats_desc *d, uint64_t v)
{
    char val[STATS_VALUE_MAX];
    stats_format_num(val, sizeof val, d, v);
    text_add(arg, "%s:%s\r\n", d->name, val);
}

static void info_text(void *arg, const struct stats_desc *d, const char *v)
{
    char val[STATS_VALUE_MAX];
    stats_format_text(val, sizeof val, v);
    text_add(arg, "%s:%s\r\n", d->name, val);
}

/* role:master (every node of a pool takes writes), then the pool's repl_*
 * statistics under their stats() names. */
static void info_replication(struct rs_call *c, struct text *t)
{
    const struct stats_sources *src = c->r->cfg.sources;
    text_add(t, "# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_repl_offset:0\r\n");
    if (!src->repl) {
        text_add(t, "repl_state:off\r\n");
        return;
    }
    struct stats_visitor v = {info_num, info_text, t};
    repl_stats_visit(src->repl, &v);
}

static void info_cpu(struct rs_call *c, struct text *t)
{
    (void)c;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    text_add(t, "# CPU\r\nused_cpu_sys:%ld.%06ld\r\nused_cpu_user:%ld.%06ld\r\n",
             (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec, (long)ru.ru_utime.tv_sec,
             (long)ru.ru_utime.tv_usec);
}

static void info_keyspace(struct rs_call *c, struct text *t)
{
    struct store_stats ss;
    store_get_stats(c->r->cfg.sources->store, &ss);
    uint64_t keys = store_live_items(c->r->cfg.sources->store, c->now_ms);
    text_add(t, "# Keyspace\r\n");
    if (keys)
        text_add(t, "db0:keys=%" PRIu64 ",expires=%" PRIu64 ",avg_ttl=0\r\n", keys,
                 ss.expiring < keys ? ss.expiring : keys);
}

/* Every stats() field under its stats() name, from the same visit: what
 * Vitamin counts that Redis has no field for (sync, expiry, snapshot,
 * replication link...), and every counter added later. */
static void info_vitamin(struct rs_call *c, struct text *t)
{
    struct stats_visitor v = {info_num, info_text, t};
    text_add(t, "# Vitamin\r\n");
    stats_visit(c->r->cfg.sources, &v, c->now_ms);
}

/* In reply order: Redis's sections in Redis's order, then Vitamin's, where
 * Redis puts the sections its modules add. Like those, it is not in
 * "default" (no argument) or "all", only in "everything" or by name. */
static const struct {
    const char *name;
    void (*fn)(struct rs_call *c, struct text *t);
    bool extra; /* a module-like section: only by name or "everything" */
} sections[] = {
    {"server", info_server, false},           {"clients", info_clients, false},
    {"memory", info_memory, false},           {"persistence", info_persistence, false},
    {"stats", info_stats, false},             {"replication", info_replication, false},
    {"cpu", info_cpu, false},                 {"keyspace", info_keyspace, false},
    {"vitamin", info_vitamin, true},
};
#define NSECTIONS (sizeof sections / sizeof sections[0])

void rs_info(struct rs_call *c)
{
    bool want[NSECTIONS] = {false};
    bool deflt = c->argc == 1, everything = false;
    for (size_t j = 1; j < c->argc; j++) {
        if (rs_arg_is(c, j, "default") || rs_arg_is(c, j, "all")) deflt = true;
        if (rs_arg_is(c, j, "everything")) everything = true;
        for (size_t i = 0; i < NSECTIONS; i++)
            if (rs_arg_is(c, j, sections[i].name)) want[i] = true;
    }
    struct text t = {0};
    for (size_t i = 0; i < NSECTIONS; i++) {
        if (!want[i] && !everything && (sections[i].extra || !deflt)) continue;
        if (t.len) text_add(&t, "\r\n");
        sections[i].fn(c, &t);
    }
    text_reply(c, &t);
}

/* ---- data-wide commands ---------------------------------------------------- */

void rs_dbsize(struct rs_call *c)
{
    rs_int(c, (long long)store_live_items(exec_store_of(c->r->cfg.exec), c->now_ms));
}

/* FLUSHALL and FLUSHDB [ASYNC|SYNC]: one database, so the same; the flush
 * replicates (every item older than it goes, on every node). */
void rs_flushall(struct rs_call *c)
{
    if (c->argc > 2 || (c->argc == 2 && !rs_arg_is(c, 1, "ASYNC") && !rs_arg_is(c, 1, "SYNC")))
        return rs_error(c, "ERR syntax error");
    struct exec_result er = exec_flush(c->r->cfg.exec, 0, c->now_ms);
    rs_held(c, &er);
    if (er.status != EXEC_OK) return rs_write_error(c, er.status);
    rs_ok(c);
}

void rs_time(struct rs_call *c)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char s[NUM_MAX_DIGITS], us[NUM_MAX_DIGITS];
    rs_array(c, 2);
    rs_bulk(c, s, num_format_i64(s, (int64_t)ts.tv_sec));
    rs_bulk(c, us, num_format_i64(us, (int64_t)(ts.tv_nsec / 1000)));
}

/* ---- HELP ------------------------------------------------------------------ */

static const char *const client_help[] = {
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GETNAME", "    Return the name of the current connection.",
    "ID", "    Return the ID of the current connection.",
    "INFO", "    Return information about the current client connection.",
    "LIST [TYPE <normal|master|replica|pubsub>] [ID <id> [<id> ...]]",
    "    Return information about client connections.",
    "SETINFO <LIB-NAME|LIB-VER> <value>", "    Set client library name or version.",
    "SETNAME <name>", "    Assign the name <name> to the current connection.",
    "HELP", "    Print this help.", NULL,
};

static const char *const config_help[] = {
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern>", "    Return parameters matching the glob-like <pattern> and their values.",
    "    Vitamin knows maxmemory, maxmemory-policy, save, appendonly, databases,",
    "    maxclients, timeout, proto-max-bulk-len, port and bind; it sets none.",
    "HELP", "    Print this help.", NULL,
};

static const char *const command_help[] = {
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)", "    Return details about all commands of this server.",
    "COUNT", "    Return the total number of commands in this server.",
    "LIST", "    Return a list of all commands in this server.",
    "INFO [<command-name> ...]", "    Return details about the given commands (all if none).",
    "DOCS [<command-name> ...]", "    Return documentation of the given commands (all if none).",
    "HELP", "    Print this help.", NULL,
};

void rs_help(struct rs_call *c)
{
    const char *const *lines = rs_arg_is(c, 0, "CLIENT") ? client_help
                               : rs_arg_is(c, 0, "CONFIG") ? config_help : command_help;
    size_t n = 0;
    while (lines[n]) n++;
    rs_array(c, n);
    for (size_t i = 0; i < n; i++) rs_simple(c, lines[i]);
}
