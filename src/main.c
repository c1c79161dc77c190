/*
 * main.c - wires the modules together and runs the loop. Owns nothing but
 * the process lifecycle: parse options, create store, expiry, replication,
 * the command core, each protocol and the listeners; on SIGTERM/SIGINT shut
 * down in order (stop accepting, finish replies, publish the outbox, save
 * the snapshot) and exit 0. With --snapshot the store is loaded from it
 * before anything serves or joins replication.
 */
#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <xxhash.h>

#include "auth.h"
#include "exec.h"
#include "expiry.h"
#include "hlc.h"
#include "log.h"
#include "mc_serve.h"
#include "metrics.h"
#include "net.h"
#include "options.h"
#include "proto.h"
#include "reply.h"
#include "repl.h"
#include "resp_serve.h"
#include "serve.h"
#include "snapshot.h"
#include "stats.h"
#include "store.h"
#include "vt_serve.h"

#define SHUTDOWN_TIMEOUT_S 5.0   /* for clients to take their replies */
#define REPL_DRAIN_TIMEOUT_S 10.0 /* for the broker to take the outbox */

struct server {
    struct ev_loop *loop;
    struct options opts;
    struct store *store;
    struct expiry *expiry;
    struct net *net;
    struct repl *repl; /* NULL when standalone */
    struct snapshot *snap; /* NULL without --snapshot */
    struct hlc hlc;
    struct auth auth;
    struct exec *exec;
    struct vt_serve *vt;
    struct serve_proto vt_proto;
    struct mc_serve *mc;         /* NULL when --memcache_port is 0 */
    struct serve_proto mc_proto;
    struct resp_serve *resp; /* NULL without --redis_port */
    struct serve_proto resp_proto;
    struct metrics *metrics; /* NULL without --metrics_port */
    struct serve_proto metrics_proto;
    struct stats_sources stats;
    ev_signal sigterm, sigint, sighup;
    int argc;
    char **argv;
};

static void stats_body(void *arg, struct reply_queue *q, int64_t now_ms)
{
    struct server *s = arg;
    stats_compose(&s->stats, q, "\n", now_ms);
}

static void on_confirmed(void *arg, uint64_t seq)
{
    struct server *s = arg;
    net_confirmed(s->net, seq);
}

static void on_synced(void *arg)
{
    struct server *s = arg;
    if (s->opts.sync_before_serve) {
        log_info("first state transfer over: accepting clients");
        net_start(s->net);
    }
}

static void on_replicated_write(void *arg, int64_t expire_ms)
{
    struct server *s = arg;
    expiry_note(s->expiry, expire_ms);
}

static void on_shutdown_done(void *arg)
{
    struct server *s = arg;
    ev_break(s->loop, EVBREAK_ALL);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    struct server *s = w->data;
    log_info("signal %d: shutting down", w->signum);
    net_shutdown(s->net, SHUTDOWN_TIMEOUT_S, on_shutdown_done, s);
}

struct reload {
    struct server *s;
    const struct options *fresh;
};

static void on_changed(void *arg, const char *name, bool live)
{
    struct reload *rl = arg;
    struct server *s = rl->s;
    const struct options *n = rl->fresh;
    if (!live) {
        log_warn("reload: '%s' changed; it takes effect at the next restart", name);
        return;
    }
    if (!strcmp(name, "log_level")) {
        log_set_level(n->log_level);
        s->opts.log_level = n->log_level;
        log_info("reload: 'log_level' changed to %s", log_level_name(n->log_level));
        return;
    } else if (!strcmp(name, "password") || !strcmp(name, "password_file")) {
        if (!auth_set(&s->auth, n->password)) {
            log_warn("reload: the new password is too long; the old one stays");
            return;
        }
    } else if (!strcmp(name, "idle_timeout") || !strcmp(name, "max_connections")) {
        s->opts.idle_timeout = n->idle_timeout;
        s->opts.max_connections = n->max_connections;
        net_set_limits(s->net, n->max_connections, n->idle_timeout);
    }
    log_info("reload: '%s' changed", name);
}

/* SIGHUP: read the settings again (file and command line) and apply what
 * can change live; say what cannot. */
static void on_sighup(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    struct server *s = w->data;
    struct options fresh;
    log_info("signal %d: reloading %s", w->signum, s->opts.config ? s->opts.config : "the settings");
    if (options_parse(&fresh, s->argc, s->argv) != OPTIONS_RUN) {
        log_warn("reload: the settings are not valid (see above); nothing changed");
    } else {
        struct reload rl = {s, &fresh};
        options_diff(&s->opts, &fresh, on_changed, &rl);
    }
    options_free(&fresh);
}

/* Let the process hold max_connections sockets plus its own descriptors. */
static void raise_fd_limit(uint32_t max_connections)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    rlim_t want = (rlim_t)max_connections + 64;
    if (rl.rlim_cur >= want) return;
    rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
        log_warn("file descriptor limit %llu is below --max_connections %u + 64",
                 (unsigned long long)rl.rlim_cur, max_connections);
}

int main(int argc, char **argv)
{
    static struct server s;
    s.argc = argc;
    s.argv = argv;
    switch (options_parse(&s.opts, argc, argv)) {
    case OPTIONS_RUN: break;
    case OPTIONS_EXIT_OK: return 0;
    case OPTIONS_EXIT_USAGE: return 2;
    }
    log_set_level(s.opts.log_level);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit(s.opts.max_connections);

    s.loop = ev_default_loop(EVFLAG_AUTO);
    int64_t now_ms = (int64_t)(ev_now(s.loop) * 1000.0);
    struct store_config sc = {
        .memory_limit = s.opts.memory_mib << 20,
        .eviction = s.opts.eviction,
        .tombstone_ttl_ms = s.opts.rabbitmq_host ? (int64_t)s.opts.tombstone_ttl * 1000 : 0,
        .range_digests = s.opts.rabbitmq_host != NULL,
    };
    s.store = store_create(&sc);
    if (!s.store) {
        log_error("cannot reserve the address space for %zu MiB of items (twice --memory): "
                  "out of memory or address space at startup", s.opts.memory_mib);
        return 1;
    }
    s.expiry = expiry_create(s.loop, s.store);
    if (!s.expiry) {
        log_error("out of memory at startup");
        return 1;
    }
    uint32_t origin = (uint32_t)XXH3_64bits(s.opts.node_id, strlen(s.opts.node_id));
    if (s.opts.snapshot_path) { /* warm restart: before serving or joining */
        struct snapshot_config snc = {
            .path = s.opts.snapshot_path,
            .node_id = s.opts.node_id,
            .interval_s = s.opts.snapshot_interval,
            .tombstone_ttl_ms = sc.tombstone_ttl_ms,
        };
        s.snap = snapshot_create(s.loop, &snc, s.store);
        if (!s.snap) {
            log_error("out of memory at startup");
            return 1;
        }
        if (snapshot_load(s.snap, &s.hlc, now_ms)) expiry_note(s.expiry, store_next_expiry(s.store));
    }
    if (s.opts.rabbitmq_host) {
        struct repl_config rc = {
            .nbrokers = s.opts.nbrokers,
            .heartbeat_s = s.opts.rabbitmq_heartbeat,
            .confirm_timeout_s = s.opts.rabbitmq_confirm_timeout,
            .classic_queue = s.opts.rabbitmq_queue_type == OPTIONS_QUEUE_CLASSIC,
            .queue_ttl_s = s.opts.rabbitmq_queue_ttl,
            .queue_max_bytes = s.opts.rabbitmq_queue_mib << 20,
            .anti_entropy_s = s.opts.anti_entropy_interval,
            .user = s.opts.rabbitmq_user,
            .password = s.opts.rabbitmq_password,
            .vhost = s.opts.rabbitmq_vhost,
            .exchange = s.opts.rabbitmq_exchange,
            .node_id = s.opts.node_id,
            .origin_tag = origin,
            .outbox_bytes = s.opts.outbox_mib << 20,
            .confirm = s.opts.replication_ack == OPTIONS_ACK_CONFIRM,
            .tls = s.opts.rabbitmq_tls,
            .cacert = s.opts.rabbitmq_cacert,
            .cert = s.opts.rabbitmq_cert,
            .key = s.opts.rabbitmq_key,
            .tls_verify = s.opts.rabbitmq_tls_verify,
            .applied_hook = on_replicated_write,
            .applied_hook_arg = &s,
            .confirmed_hook = on_confirmed,
            .confirmed_hook_arg = &s,
            .synced_hook = on_synced,
            .synced_hook_arg = &s,
        };
        for (size_t i = 0; i < s.opts.nbrokers; i++)
            rc.brokers[i] = (struct repl_broker){s.opts.brokers[i].host, s.opts.brokers[i].port};
        s.repl = repl_create(s.loop, &rc, s.store, &s.hlc);
        if (!s.repl) return 1;
    }
    auth_set(&s.auth, s.opts.password);
    struct exec_config xc = {
        .store = s.store,
        .hlc = &s.hlc,
        .repl = s.repl,
        .expiry = s.expiry,
        .origin = origin,
        .confirm = s.repl && s.opts.replication_ack == OPTIONS_ACK_CONFIRM,
        .max_value_len = s.opts.max_value_size,
    };
    s.exec = exec_create(&xc);
    struct vt_serve_config vc = {
        .exec = s.exec,
        .auth = &s.auth,
        .limits = {.max_value_len = s.opts.max_value_size},
        .max_line = 4 * (s.opts.max_value_size + PROTO_MAX_KEY_LEN) + 64,
        .stats_fn = stats_body,
        .stats_arg = &s,
    };
    s.vt = s.exec ? vt_serve_create(&vc) : NULL;
    if (!s.vt) {
        log_error("out of memory at startup");
        return 1;
    }
    vt_serve_proto(s.vt, &s.vt_proto);
    struct net_config nc = {
        .host = s.opts.host,
        .listeners = {{s.opts.port, &s.vt_proto}},
        .nlisteners = 1,
        .max_connections = s.opts.max_connections,
        .idle_timeout = s.opts.idle_timeout,
        .max_client_memory = s.opts.max_client_memory_mib << 20,
    };
    if (s.opts.memcache_port) {
        struct mc_serve_config mc = {
            .exec = s.exec,
            .auth = &s.auth,
            .max_value_len = s.opts.max_value_size,
            .port = s.opts.memcache_port,
            .stats = &s.stats,
        };
        if (!(s.mc = mc_serve_create(&mc))) {
            log_error("out of memory at startup");
            return 1;
        }
        mc_serve_proto(s.mc, &s.mc_proto);
        nc.listeners[nc.nlisteners++] = (struct net_listener){s.opts.memcache_port, &s.mc_proto};
    }
    s.stats = (struct stats_sources){.exec = s.exec, .vt = s.vt, .mc = s.mc, .store = s.store,
                                     .expiry = s.expiry, .opts = &s.opts, .repl = s.repl, .snapshot = s.snap,
                                     .start_ms = now_ms};
    if (s.opts.redis_port) {
        struct resp_serve_config rc = {
            .exec = s.exec,
            .auth = &s.auth,
            .sources = &s.stats,
            .max_value_size = s.opts.max_value_size,
            .port = s.opts.redis_port,
        };
        s.resp = resp_serve_create(&rc);
        if (!s.resp) {
            log_error("out of memory at startup");
            return 1;
        }
        resp_serve_proto(s.resp, &s.resp_proto);
        s.stats.resp = s.resp;
        nc.listeners[nc.nlisteners++] = (struct net_listener){s.opts.redis_port, &s.resp_proto};
    }
    if (s.opts.metrics_port) { /* Prometheus: GET /metrics (metrics.h) */
        struct metrics_config mx = {.src = &s.stats, .idle_timeout_s = &s.opts.idle_timeout};
        s.metrics = metrics_create(&mx);
        if (!s.metrics) {
            log_error("out of memory at startup");
            return 1;
        }
        metrics_proto(s.metrics, &s.metrics_proto);
        s.stats.metrics = s.metrics;
        nc.listeners[nc.nlisteners++] = (struct net_listener){s.opts.metrics_port, &s.metrics_proto};
    }
    s.net = net_create(s.loop, &nc, s.store);
    if (!s.net) return 1;
    s.stats.net = s.net;
    if (!(s.repl && s.opts.sync_before_serve)) net_start(s.net);

    ev_signal_init(&s.sigterm, on_signal, SIGTERM);
    ev_signal_init(&s.sigint, on_signal, SIGINT);
    ev_signal_init(&s.sighup, on_sighup, SIGHUP);
    s.sigterm.data = s.sigint.data = s.sighup.data = &s;
    ev_signal_start(s.loop, &s.sigterm);
    ev_signal_start(s.loop, &s.sigint);
    ev_signal_start(s.loop, &s.sighup);

    if (s.resp) log_info("Redis protocol (RESP2/RESP3) on %s:%u", s.opts.host, s.opts.redis_port);
    log_info("vitamin %s listening on %s:%u (node %s, memory %zu MiB, eviction %s, %s)",
             VITAMIN_VERSION, s.opts.host, s.opts.port, s.opts.node_id,
             s.opts.memory_mib, s.opts.eviction == STORE_EVICT_LRU ? "lru"
             : s.opts.eviction == STORE_EVICT_TTL ? "ttl" : "noeviction",
             s.opts.rabbitmq_host ? "replicated" : "standalone");
    if (s.mc) log_info("memcached protocol on %s:%u", s.opts.host, s.opts.memcache_port);
    ev_run(s.loop, 0);

    if (s.repl) {
        repl_shutdown(s.repl, REPL_DRAIN_TIMEOUT_S);
        repl_destroy(s.repl);
    }
    if (s.snap) {
        ev_now_update(s.loop);
        snapshot_save(s.snap, (int64_t)(ev_now(s.loop) * 1000.0));
        snapshot_destroy(s.snap);
    }
    net_destroy(s.net);
    mc_serve_destroy(s.mc);
    resp_serve_destroy(s.resp);
    metrics_destroy(s.metrics);
    vt_serve_destroy(s.vt);
    exec_destroy(s.exec);
    expiry_destroy(s.expiry);
    store_destroy(s.store);
    ev_loop_destroy(s.loop);
    options_free(&s.opts);
    log_info("shutdown complete");
    return 0;
}
