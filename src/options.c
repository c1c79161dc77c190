/*
 * options.c - defaults, getopt_long parsing and validation of every flag.
 *
 * Each flag is one row of the table below (name, default shown by --help,
 * help text); parse_one() converts and range-checks its value. The same
 * names work in a config file (config.h: `name = value`; a flag without a
 * value takes yes/no there), read before the command line so that flags
 * given there win. A bad flag or value prints one line naming it (FILE:LINE
 * for the file), then a usage hint, and the caller exits 2. Secrets may
 * come from the environment so they need not show in `ps`:
 * VITAMIN_RABBITMQ_PASSWORD, VITAMIN_PASSWORD.
 */
#include "options.h"

#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum opt_id {
    OPT_HOST = 1000, OPT_PORT, OPT_MEMORY, OPT_EVICTION, OPT_MAX_VALUE_SIZE,
    OPT_MAX_CONNECTIONS, OPT_MAX_CLIENT_MEMORY, OPT_IDLE_TIMEOUT, OPT_LOG_LEVEL, OPT_NODE_ID,
    OPT_TOMBSTONE_TTL, OPT_RMQ_HOST, OPT_RMQ_PORT, OPT_RMQ_USER,
    OPT_RMQ_PASSWORD, OPT_RMQ_EXCHANGE, OPT_RMQ_VHOST, OPT_OUTBOX_SIZE,
    OPT_REPLICATION_ACK, OPT_SYNC_BEFORE_SERVE, OPT_PASSWORD, OPT_PASSWORD_FILE, OPT_HELP, OPT_VERSION,
    OPT_RMQ_TLS, OPT_RMQ_CACERT, OPT_RMQ_CERT, OPT_RMQ_KEY, OPT_RMQ_TLS_VERIFY,
    OPT_MEMCACHE_PORT, OPT_REDIS_PORT, OPT_RMQ_HEARTBEAT, OPT_RMQ_CONFIRM_TIMEOUT, OPT_RMQ_QUEUE_TYPE,
    OPT_RMQ_QUEUE_TTL, OPT_RMQ_QUEUE_SIZE, OPT_ANTI_ENTROPY, OPT_CONFIG,
    OPT_SNAPSHOT, OPT_SNAPSHOT_INTERVAL, OPT_METRICS_PORT, OPT_PRINT_CONFIG,
};

struct opt_doc {
    enum opt_id id;
    const char *name;
    const char *arg;  /* NULL for a flag without value */
    const char *dflt; /* shown by --help */
    const char *help;
};

static const struct opt_doc docs[] = {
    {OPT_HOST, "host", "ADDR", "127.0.0.1", "address to listen on (0.0.0.0 for a pool)"},
    {OPT_PORT, "port", "PORT", "8080", "TCP port of Vitamin's own protocol"},
    {OPT_MEMCACHE_PORT, "memcache_port", "PORT", "0 = off", "TCP port speaking memcached's text and meta protocol"},
    {OPT_REDIS_PORT, "redis_port", "PORT", "0 = off", "TCP port speaking Redis's RESP2/RESP3"},
    {OPT_METRICS_PORT, "metrics_port", "PORT", "0 = off", "TCP port serving Prometheus metrics at GET /metrics"},
    {OPT_MEMORY, "memory", "MIB", "200", "memory cap for data and index, in MiB"},
    {OPT_EVICTION, "eviction", "POLICY", "lru", "when full: lru | ttl | noeviction"},
    {OPT_MAX_VALUE_SIZE, "max_value_size", "BYTES", "1048576", "largest value accepted"},
    {OPT_MAX_CONNECTIONS, "max_connections", "N", "10000", "concurrent clients accepted"},
    {OPT_MAX_CLIENT_MEMORY, "max_client_memory", "MIB", "256", "input and output buffers of all clients together"},
    {OPT_IDLE_TIMEOUT, "idle_timeout", "SECONDS", "300", "close a client idle this long (0 = never)"},
    {OPT_LOG_LEVEL, "log_level", "LEVEL", "info", "error | warn | info | debug"},
    {OPT_NODE_ID, "node_id", "ID", "hostname:port", "this node's unique name in a pool"},
    {OPT_SNAPSHOT, "snapshot", "FILE", "unset", "save the data to FILE at shutdown and load it at start (warm restart)"},
    {OPT_SNAPSHOT_INTERVAL, "snapshot_interval", "SECONDS", "0 = only at shutdown", "also save FILE in the background this often"},
    {OPT_TOMBSTONE_TTL, "tombstone_ttl", "SECONDS", "300", "how long a replicated delete is remembered"},
    {OPT_RMQ_HOST, "rabbitmq_host", "HOST[:PORT],...", "unset", "broker (or brokers of a cluster); replication is on when set"},
    {OPT_RMQ_PORT, "rabbitmq_port", "PORT", "5672, 5671 with --rabbitmq_tls", "broker port of entries without one"},
    {OPT_RMQ_HEARTBEAT, "rabbitmq_heartbeat", "SECONDS", "5", "AMQP heartbeat; a silent broker is left after 2-3 of them"},
    {OPT_RMQ_CONFIRM_TIMEOUT, "rabbitmq_confirm_timeout", "SECONDS", "30", "leave a broker that neither confirms nor nacks a publish this long"},
    {OPT_RMQ_QUEUE_TYPE, "rabbitmq_queue_type", "TYPE", "quorum", "quorum | classic: the type of each node's queue"},
    {OPT_RMQ_QUEUE_TTL, "rabbitmq_queue_ttl", "SECONDS", "3600", "a node's queue outlives the node this long"},
    {OPT_RMQ_QUEUE_SIZE, "rabbitmq_queue_size", "MIB", "1024", "bound of a node's queue (oldest dropped first)"},
    {OPT_RMQ_USER, "rabbitmq_user", "USER", "guest", "broker user"},
    {OPT_RMQ_PASSWORD, "rabbitmq_password", "PASS", "guest", "broker password (or env VITAMIN_RABBITMQ_PASSWORD)"},
    {OPT_RMQ_EXCHANGE, "rabbitmq_exchange", "NAME", "vitamin", "fanout exchange shared by the pool"},
    {OPT_RMQ_VHOST, "rabbitmq_vhost", "VHOST", "/", "broker virtual host"},
    {OPT_RMQ_TLS, "rabbitmq_tls", NULL, "off", "connect to the broker over TLS"},
    {OPT_RMQ_CACERT, "rabbitmq_cacert", "PATH", "none", "CA certificates (PEM) the broker's certificate must chain to"},
    {OPT_RMQ_CERT, "rabbitmq_cert", "PATH", "none", "client certificate (PEM) for the broker; needs --rabbitmq_key"},
    {OPT_RMQ_KEY, "rabbitmq_key", "PATH", "none", "client private key (PEM, unencrypted); needs --rabbitmq_cert"},
    {OPT_RMQ_TLS_VERIFY, "rabbitmq_tls_verify", "yes|no", "yes", "check the broker's certificate and host name"},
    {OPT_ANTI_ENTROPY, "anti_entropy_interval", "SECONDS", "30", "compare digests with peers this often when idle (0 = off)"},
    {OPT_OUTBOX_SIZE, "outbox_size", "MIB", "64", "writes kept while the broker is away"},
    {OPT_REPLICATION_ACK, "replication_ack", "MODE", "async", "async | confirm (reply after the broker confirms)"},
    {OPT_PASSWORD, "password", "PASS", "unset", "require auth(\"PASS\") from clients (or env VITAMIN_PASSWORD)"},
    {OPT_PASSWORD_FILE, "password_file", "PATH", "unset", "read the client password from a file"},
    {OPT_SYNC_BEFORE_SERVE, "sync_before_serve", NULL, NULL, "accept clients only after the first state transfer"},
    {OPT_CONFIG, "config", "FILE", "none", "read settings from FILE (name = value lines); flags given here win"},
    {OPT_PRINT_CONFIG, "print_config", NULL, NULL, "print the settings in effect as a config file and exit"},
    {OPT_HELP, "help", NULL, NULL, "print this help and exit"},
    {OPT_VERSION, "version", NULL, NULL, "print the version and exit"},
};
#define NDOCS (sizeof docs / sizeof docs[0])
_Static_assert(NDOCS <= OPTIONS_MAX_FLAGS, "raise OPTIONS_MAX_FLAGS");

/* Settings that a reload (SIGHUP) applies without a restart. */
static bool live_flag(enum opt_id id)
{
    return id == OPT_LOG_LEVEL || id == OPT_PASSWORD || id == OPT_PASSWORD_FILE ||
           id == OPT_IDLE_TIMEOUT || id == OPT_MAX_CONNECTIONS;
}

static void print_usage(FILE *f, const char *prog)
{
    fprintf(f, "Usage: %s [options]\n\nVitamin %s: a fast in-memory key-value cache "
               "with master-master replication.\n\nOptions:\n", prog, VITAMIN_VERSION);
    for (size_t i = 0; i < NDOCS; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", docs[i].name,
                 docs[i].arg ? "=" : "", docs[i].arg ? docs[i].arg : "");
        fprintf(f, "  %-30s %s", left, docs[i].help);
        if (docs[i].dflt) fprintf(f, " (default: %s)", docs[i].dflt);
        fputc('\n', f);
    }
}

static void defaults(struct options *o)
{
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->port = 8080;
    o->memory_mib = 200;
    o->eviction = STORE_EVICT_LRU;
    o->max_value_size = 1048576;
    o->max_connections = 10000;
    o->idle_timeout = 300;
    o->max_client_memory_mib = 256;
    o->log_level = LOG_INFO;
    o->tombstone_ttl = 300;
    o->rabbitmq_port = 5672;
    o->rabbitmq_heartbeat = 5;
    o->rabbitmq_confirm_timeout = 30;
    o->rabbitmq_queue_type = OPTIONS_QUEUE_QUORUM;
    o->rabbitmq_queue_ttl = 3600;
    o->rabbitmq_queue_mib = 1024;
    o->anti_entropy_interval = 30;
    o->rabbitmq_user = "guest";
    o->rabbitmq_password = "guest";
    o->rabbitmq_exchange = "vitamin";
    o->rabbitmq_vhost = "/";
    o->outbox_mib = 64;
    o->replication_ack = OPTIONS_ACK_ASYNC;
    o->rabbitmq_tls_verify = 1;
}

/* Parse an unsigned decimal in [min, max]. Returns 0 or -1. */
static int parse_uint(const char *s, unsigned long long min,
                      unsigned long long max, unsigned long long *out)
{
    if (*s < '0' || *s > '9') return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max) return -1;
    *out = v;
    return 0;
}

/* A name the broker can take: at most OPTIONS_MAX_NAME bytes. */
static bool name_ok(const char *v, size_t min)
{
    return strlen(v) >= min && strlen(v) <= OPTIONS_MAX_NAME;
}

/* --rabbitmq_host: "host[:port],host[:port],..." into o->brokers (ports
 * resolved later, once --rabbitmq_port is known). An IPv6 address goes in
 * brackets: "[::1]:5672". Returns 0 or -1. */
static int parse_brokers(struct options *o, const char *v)
{
    o->nbrokers = 0;
    const char *p = v;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0 || o->nbrokers == OPTIONS_MAX_BROKERS) return -1;
        struct options_broker *b = &o->brokers[o->nbrokers++];
        const char *host = p, *colon = NULL;
        size_t hlen = len;
        if (p[0] == '[') { /* [v6]:port */
            const char *close = memchr(p, ']', len);
            if (!close) return -1;
            host = p + 1;
            hlen = (size_t)(close - host);
            if ((size_t)(close + 1 - p) < len) {
                if (close[1] != ':') return -1;
                colon = close + 1;
            }
        } else {
            colon = memchr(p, ':', len);
            if (colon && memchr(colon + 1, ':', len - (size_t)(colon + 1 - p))) colon = NULL;
            if (colon) hlen = (size_t)(colon - p);
        }
        if (hlen == 0 || hlen > OPTIONS_MAX_NAME) return -1;
        memcpy(b->host, host, hlen);
        b->host[hlen] = '\0';
        b->port = 0;
        if (colon) {
            char port[8];
            size_t plen = len - (size_t)(colon + 1 - p);
            unsigned long long n;
            if (plen == 0 || plen >= sizeof port) return -1;
            memcpy(port, colon + 1, plen);
            port[plen] = '\0';
            if (parse_uint(port, 1, 65535, &n)) return -1;
            b->port = (uint16_t)n;
        }
        if (!end) return 0;
        p = end + 1;
    }
}

/* The first line of path, without its newline, becomes the password. */
static int read_password_file(struct options *o, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(o->password_buf, 1, sizeof o->password_buf - 1, f);
    fclose(f);
    o->password_buf[n] = '\0';
    o->password_buf[strcspn(o->password_buf, "\r\n")] = '\0';
    if (!o->password_buf[0]) return -1;
    o->password = o->password_buf;
    return 0;
}

/* --snapshot: FILE can be created next to it (FILE.tmp, then a rename) and
 * is not a folder. Returns 0 or -1. */
static int snapshot_path_ok(const char *v)
{
    if (!*v || strlen(v) >= PATH_MAX - 8) return -1;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", v);
    struct stat st;
    if (stat(v, &st) == 0 && S_ISDIR(st.st_mode)) return -1;
    const char *d = dirname(dir);
    if (stat(d, &st) != 0 || !S_ISDIR(st.st_mode)) return -1;
    return access(d, W_OK | X_OK) == 0 ? 0 : -1;
}

static const char *opt_name(enum opt_id id)
{
    for (size_t i = 0; i < NDOCS; i++)
        if (docs[i].id == id) return docs[i].name;
    return "?";
}

/* Apply one flag. Returns 0, or -1 with *why set to what is expected. */
static int parse_one(struct options *o, enum opt_id id, const char *v,
                     const char **why)
{
    unsigned long long n;
    switch (id) {
    case OPT_HOST: o->host = v; return *v ? 0 : (*why = "an address", -1);
    case OPT_PORT:
    case OPT_RMQ_PORT:
        *why = "a port number 1..65535";
        if (parse_uint(v, 1, 65535, &n)) return -1;
        if (id == OPT_PORT) o->port = (uint16_t)n; else o->rabbitmq_port = (uint16_t)n;
        return 0;
    case OPT_MEMCACHE_PORT:
    case OPT_REDIS_PORT:
    case OPT_METRICS_PORT:
        *why = "a port number 1..65535, or 0 for none";
        if (parse_uint(v, 0, 65535, &n)) return -1;
        if (id == OPT_MEMCACHE_PORT) o->memcache_port = (uint16_t)n;
        else if (id == OPT_REDIS_PORT) o->redis_port = (uint16_t)n;
        else o->metrics_port = (uint16_t)n;
        return 0;
    case OPT_MEMORY:
        /* a node's items live in one 32 GiB address range (slab.h), which
         * holds at least twice the cap whatever the sizes; shard past it */
        *why = "a size in MiB, 1..16384";
        if (parse_uint(v, 1, 16384, &n)) return -1;
        o->memory_mib = (size_t)n;
        return 0;
    case OPT_EVICTION:
        *why = "lru, ttl or noeviction";
        if (!strcmp(v, "lru")) o->eviction = STORE_EVICT_LRU;
        else if (!strcmp(v, "ttl")) o->eviction = STORE_EVICT_TTL;
        else if (!strcmp(v, "noeviction")) o->eviction = STORE_EVICT_NONE;
        else return -1;
        return 0;
    case OPT_MAX_VALUE_SIZE:
        *why = "a size in bytes, 1..536870912";
        if (parse_uint(v, 1, 536870912, &n)) return -1;
        o->max_value_size = (size_t)n;
        return 0;
    case OPT_MAX_CONNECTIONS:
        *why = "a count, 1..1000000";
        if (parse_uint(v, 1, 1000000, &n)) return -1;
        o->max_connections = (uint32_t)n;
        return 0;
    case OPT_MAX_CLIENT_MEMORY:
        *why = "a size in MiB, 1..1048576";
        if (parse_uint(v, 1, 1048576, &n)) return -1;
        o->max_client_memory_mib = (size_t)n;
        return 0;
    case OPT_IDLE_TIMEOUT:
    case OPT_TOMBSTONE_TTL:
        *why = "seconds, 0..315360000";
        if (parse_uint(v, 0, 315360000, &n)) return -1;
        if (id == OPT_IDLE_TIMEOUT) o->idle_timeout = (uint32_t)n;
        else o->tombstone_ttl = (uint32_t)n;
        return 0;
    case OPT_LOG_LEVEL:
        *why = "error, warn, info or debug";
        return log_parse_level(v, &o->log_level);
    case OPT_NODE_ID:
        *why = "1..255 printable bytes";
        if (!name_ok(v, 1)) return -1;
        o->node_id = v;
        return 0;
    case OPT_RMQ_HOST:
        *why = "HOST[:PORT] entries (1..16, comma-separated, host 1..255 bytes, port 1..65535)";
        o->rabbitmq_host = v;
        return parse_brokers(o, v);
    case OPT_RMQ_USER:
    case OPT_RMQ_PASSWORD:
    case OPT_RMQ_VHOST:
        *why = "at most 255 bytes";
        if (!name_ok(v, 0)) return -1;
        if (id == OPT_RMQ_USER) o->rabbitmq_user = v;
        else if (id == OPT_RMQ_PASSWORD) o->rabbitmq_password = v;
        else o->rabbitmq_vhost = v;
        return 0;
    case OPT_RMQ_EXCHANGE:
        *why = "an exchange name of 1..255 bytes";
        if (!name_ok(v, 1)) return -1;
        o->rabbitmq_exchange = v;
        return 0;
    case OPT_RMQ_HEARTBEAT:
        *why = "seconds, 1..600";
        if (parse_uint(v, 1, 600, &n)) return -1;
        o->rabbitmq_heartbeat = (uint32_t)n;
        return 0;
    case OPT_RMQ_CONFIRM_TIMEOUT:
        *why = "seconds, 1..3600";
        if (parse_uint(v, 1, 3600, &n)) return -1;
        o->rabbitmq_confirm_timeout = (uint32_t)n;
        return 0;
    case OPT_RMQ_QUEUE_TYPE:
        *why = "quorum or classic";
        if (!strcmp(v, "quorum")) o->rabbitmq_queue_type = OPTIONS_QUEUE_QUORUM;
        else if (!strcmp(v, "classic")) o->rabbitmq_queue_type = OPTIONS_QUEUE_CLASSIC;
        else return -1;
        return 0;
    case OPT_RMQ_QUEUE_TTL:
        *why = "seconds, 1..2147483 (the broker's limit)";
        if (parse_uint(v, 1, 2147483, &n)) return -1;
        o->rabbitmq_queue_ttl = (uint32_t)n;
        return 0;
    case OPT_ANTI_ENTROPY:
        *why = "seconds, 0..86400";
        if (parse_uint(v, 0, 86400, &n)) return -1;
        o->anti_entropy_interval = (uint32_t)n;
        return 0;
    case OPT_RMQ_QUEUE_SIZE:
        *why = "a size in MiB, 1..1048576";
        if (parse_uint(v, 1, 1048576, &n)) return -1;
        o->rabbitmq_queue_mib = (size_t)n;
        return 0;
    case OPT_OUTBOX_SIZE:
        *why = "a size in MiB, 1..65536";
        if (parse_uint(v, 1, 65536, &n)) return -1;
        o->outbox_mib = (size_t)n;
        return 0;
    case OPT_REPLICATION_ACK:
        *why = "async or confirm";
        if (!strcmp(v, "async")) o->replication_ack = OPTIONS_ACK_ASYNC;
        else if (!strcmp(v, "confirm")) o->replication_ack = OPTIONS_ACK_CONFIRM;
        else return -1;
        return 0;
    case OPT_SNAPSHOT:
        *why = "a file path in an existing, writable folder (not a folder itself)";
        if (snapshot_path_ok(v) != 0) return -1;
        o->snapshot_path = v;
        return 0;
    case OPT_SNAPSHOT_INTERVAL:
        *why = "seconds, 0..315360000";
        if (parse_uint(v, 0, 315360000, &n)) return -1;
        o->snapshot_interval = (uint32_t)n;
        return 0;
    case OPT_SYNC_BEFORE_SERVE:
        o->sync_before_serve = 1;
        return 0;
    case OPT_RMQ_TLS:
        o->rabbitmq_tls = 1;
        return 0;
    case OPT_RMQ_CACERT:
    case OPT_RMQ_CERT:
    case OPT_RMQ_KEY:
        *why = "the path of a readable file";
        if (!*v || strlen(v) >= 4096 || access(v, R_OK) != 0) return -1;
        if (id == OPT_RMQ_CACERT) o->rabbitmq_cacert = v;
        else if (id == OPT_RMQ_CERT) o->rabbitmq_cert = v;
        else o->rabbitmq_key = v;
        return 0;
    case OPT_RMQ_TLS_VERIFY:
        *why = "yes or no";
        if (!strcmp(v, "yes")) o->rabbitmq_tls_verify = 1;
        else if (!strcmp(v, "no")) o->rabbitmq_tls_verify = 0;
        else return -1;
        return 0;
    case OPT_PASSWORD:
        *why = "a non-empty password";
        if (!*v) return -1;
        o->password = v;
        return 0;
    case OPT_PASSWORD_FILE:
        *why = "a readable file holding a non-empty password";
        return read_password_file(o, v);
    case OPT_CONFIG:
        o->config = v;
        return 0;
    case OPT_HELP:
    case OPT_VERSION:
    case OPT_PRINT_CONFIG:
        return 0;
    }
    return -1;
}

/* Cross-checks of the broker TLS flags. Returns 0, or -1 after printing one
 * line naming the flag at fault. A TLS file given without --rabbitmq_tls is
 * refused rather than ignored: the operator meant TLS and would not get it. */
static int check_tls(struct options *o, int port_given)
{
    const char *err = NULL;
    if (!o->rabbitmq_tls) {
        if (o->rabbitmq_cacert) err = "--rabbitmq_cacert needs --rabbitmq_tls";
        else if (o->rabbitmq_cert) err = "--rabbitmq_cert needs --rabbitmq_tls";
        else if (o->rabbitmq_key) err = "--rabbitmq_key needs --rabbitmq_tls";
    } else if (!o->rabbitmq_cert != !o->rabbitmq_key) {
        err = o->rabbitmq_cert ? "--rabbitmq_cert needs --rabbitmq_key (give both or neither)"
                               : "--rabbitmq_key needs --rabbitmq_cert (give both or neither)";
    } else if (o->rabbitmq_tls_verify && !o->rabbitmq_cacert) {
        err = "--rabbitmq_tls needs --rabbitmq_cacert (the CA of the broker's certificate), "
              "or --rabbitmq_tls_verify=no";
    }
    if (err) {
        fprintf(stderr, "vitamin: %s\n", err);
        return -1;
    }
    if (o->rabbitmq_tls && !port_given) o->rabbitmq_port = 5671;
    return 0;
}

/* Names that only fit together: the queue is "<exchange>.<node id>". */
static int check_names(const struct options *o)
{
    if (!o->rabbitmq_host) return 0;
    if (strlen(o->rabbitmq_exchange) + 1 + strlen(o->node_id) <= OPTIONS_MAX_NAME) return 0;
    fprintf(stderr, "vitamin: --rabbitmq_exchange and --node_id too long together: the node's "
                    "queue '<exchange>.<node id>' must fit %d bytes\n", OPTIONS_MAX_NAME);
    return -1;
}

/* Two listeners on one port: "--a equals --b", or NULL. */
static const char *port_clash(const struct options *o)
{
    static char msg[64];
    const struct { const char *name; uint16_t port; } ports[] = {
        {"port", o->port}, {"memcache_port", o->memcache_port},
        {"redis_port", o->redis_port}, {"metrics_port", o->metrics_port},
    };
    const size_t n = sizeof ports / sizeof ports[0];
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (ports[i].port && ports[i].port == ports[j].port) {
                snprintf(msg, sizeof msg, "--%s equals --%s", ports[j].name, ports[i].name);
                return msg;
            }
    return NULL;
}

static int doc_index(enum opt_id id)
{
    for (size_t i = 0; i < NDOCS; i++)
        if (docs[i].id == id) return (int)i;
    return -1;
}

/* Apply one flag and remember it as given. */
static int apply(struct options *o, enum opt_id id, const char *v, const char **why)
{
    if (parse_one(o, id, v, why) != 0) return -1;
    int i = doc_index(id);
    if (i >= 0) o->given[i] = v;
    return 0;
}

/* A flag without a value, set from a config file: yes/no. */
static int apply_switch(struct options *o, enum opt_id id, const char *v, const char **why)
{
    bool on;
    if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "on") || !strcmp(v, "1")) on = true;
    else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "off") || !strcmp(v, "0"))
        on = false;
    else return *why = "yes or no", -1;
    if (id == OPT_SYNC_BEFORE_SERVE) o->sync_before_serve = on;
    else if (id == OPT_RMQ_TLS) o->rabbitmq_tls = on;
    o->given[doc_index(id)] = on ? "yes" : NULL;
    return 0;
}

static int file_setting(void *arg, const char *name, const char *value, const char **why)
{
    struct options *o = arg;
    for (size_t i = 0; i < NDOCS; i++) {
        if (strcmp(docs[i].name, name) != 0) continue;
        enum opt_id id = docs[i].id;
        if (id == OPT_HELP || id == OPT_VERSION || id == OPT_CONFIG || id == OPT_PRINT_CONFIG)
            return *why = "a setting (help, version, config and print_config belong on the "
                          "command line)", -1;
        if (!docs[i].arg) return apply_switch(o, id, value, why);
        static char expected[160];
        const char *what = "a valid value";
        if (apply(o, id, value, &what) == 0) return 0;
        snprintf(expected, sizeof expected, "%s for %s", what, name);
        *why = expected;
        return -1;
    }
    return *why = "a known setting name (see vitamin --help)", -1;
}

#define CONFIG_MAX_BYTES (1u << 20)

/* Read and apply the config file. Returns 0, or -1 after printing
 * "vitamin: FILE:LINE: ..." (or why it cannot be read). */
static int load_config(struct options *o, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "vitamin: cannot read --config %s: %s\n", path, strerror(errno));
        return -1;
    }
    char *text = malloc(CONFIG_MAX_BYTES + 1);
    size_t n = text ? fread(text, 1, CONFIG_MAX_BYTES + 1, f) : 0;
    bool err = ferror(f);
    fclose(f);
    if (!text || err || n > CONFIG_MAX_BYTES) {
        fprintf(stderr, "vitamin: cannot read --config %s: %s\n", path,
                !text ? "out of memory" : err ? "read error" : "larger than 1 MiB");
        free(text);
        return -1;
    }
    o->config_text = text;
    unsigned line = 0;
    const char *why = "?";
    if (config_parse(text, n, file_setting, o, &line, &why) != 0) {
        fprintf(stderr, "vitamin: %s:%u: expected %s\n", path, line, why);
        return -1;
    }
    return 0;
}

/* --config's value, if argv has one (read before the other flags). */
static const char *config_arg(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) break;
        if (!strncmp(argv[i], "--config=", 9)) path = argv[i] + 9;
        else if (!strcmp(argv[i], "--config") && i + 1 < argc) path = argv[++i];
    }
    return path;
}

void options_free(struct options *o)
{
    free(o->config_text);
    o->config_text = NULL;
}

void options_diff(const struct options *a, const struct options *b,
                  void (*fn)(void *arg, const char *name, bool live), void *arg)
{
    for (size_t i = 0; i < NDOCS; i++) {
        const char *x = a->given[i], *y = b->given[i];
        if (x == y || (x && y && !strcmp(x, y))) continue;
        fn(arg, docs[i].name, live_flag(docs[i].id));
    }
}

static const char *eviction_text(enum store_eviction e)
{
    return e == STORE_EVICT_LRU ? "lru" : e == STORE_EVICT_TTL ? "ttl" : "noeviction";
}

/* A setting's value in effect, as a config file writes it (buf may be
 * used); NULL when it is not set. Secrets are the caller's business. */
static const char *setting_text(const struct options *o, enum opt_id id, char *buf, size_t cap)
{
    unsigned long long n;
    switch (id) {
    case OPT_HOST: return o->host;
    case OPT_NODE_ID: return o->node_id;
    case OPT_RMQ_HOST: return o->rabbitmq_host;
    case OPT_RMQ_USER: return o->rabbitmq_user;
    case OPT_RMQ_PASSWORD: return o->rabbitmq_password;
    case OPT_RMQ_EXCHANGE: return o->rabbitmq_exchange;
    case OPT_RMQ_VHOST: return o->rabbitmq_vhost;
    case OPT_RMQ_CACERT: return o->rabbitmq_cacert;
    case OPT_RMQ_CERT: return o->rabbitmq_cert;
    case OPT_RMQ_KEY: return o->rabbitmq_key;
    case OPT_PASSWORD: return o->password;
    case OPT_PASSWORD_FILE: return o->given[doc_index(id)];
    case OPT_SNAPSHOT: return o->snapshot_path;
    case OPT_EVICTION: return eviction_text(o->eviction);
    case OPT_LOG_LEVEL: return log_level_name(o->log_level);
    case OPT_RMQ_QUEUE_TYPE:
        return o->rabbitmq_queue_type == OPTIONS_QUEUE_CLASSIC ? "classic" : "quorum";
    case OPT_REPLICATION_ACK:
        return o->replication_ack == OPTIONS_ACK_CONFIRM ? "confirm" : "async";
    case OPT_RMQ_TLS: return o->rabbitmq_tls ? "yes" : "no";
    case OPT_RMQ_TLS_VERIFY: return o->rabbitmq_tls_verify ? "yes" : "no";
    case OPT_SYNC_BEFORE_SERVE: return o->sync_before_serve ? "yes" : "no";
    case OPT_PORT: n = o->port; break;
    case OPT_MEMCACHE_PORT: n = o->memcache_port; break;
    case OPT_REDIS_PORT: n = o->redis_port; break;
    case OPT_METRICS_PORT: n = o->metrics_port; break;
    case OPT_MEMORY: n = o->memory_mib; break;
    case OPT_MAX_VALUE_SIZE: n = o->max_value_size; break;
    case OPT_MAX_CONNECTIONS: n = o->max_connections; break;
    case OPT_MAX_CLIENT_MEMORY: n = o->max_client_memory_mib; break;
    case OPT_IDLE_TIMEOUT: n = o->idle_timeout; break;
    case OPT_TOMBSTONE_TTL: n = o->tombstone_ttl; break;
    case OPT_SNAPSHOT_INTERVAL: n = o->snapshot_interval; break;
    case OPT_RMQ_PORT: n = o->rabbitmq_port; break;
    case OPT_RMQ_HEARTBEAT: n = o->rabbitmq_heartbeat; break;
    case OPT_RMQ_CONFIRM_TIMEOUT: n = o->rabbitmq_confirm_timeout; break;
    case OPT_RMQ_QUEUE_TTL: n = o->rabbitmq_queue_ttl; break;
    case OPT_RMQ_QUEUE_SIZE: n = o->rabbitmq_queue_mib; break;
    case OPT_ANTI_ENTROPY: n = o->anti_entropy_interval; break;
    case OPT_OUTBOX_SIZE: n = o->outbox_mib; break;
    default: return NULL;
    }
    snprintf(buf, cap, "%llu", n);
    return buf;
}

/* --print_config: every setting in effect as `name = value` lines that
 * --config reads back; secrets and unset ones as comments. */
static void print_config(const struct options *o, FILE *f)
{
    fprintf(f, "# vitamin %s: the settings in effect (vitamin --print_config)\n", VITAMIN_VERSION);
    for (size_t i = 0; i < NDOCS; i++) {
        enum opt_id id = docs[i].id;
        if (id == OPT_HELP || id == OPT_VERSION || id == OPT_CONFIG || id == OPT_PRINT_CONFIG)
            continue;
        char buf[32];
        const char *v = setting_text(o, id, buf, sizeof buf);
        if (!v) {
            fprintf(f, "# %s is not set\n", docs[i].name);
        } else if (id == OPT_PASSWORD || id == OPT_RMQ_PASSWORD) {
            fprintf(f, "# %s is set (not shown)\n", docs[i].name);
        } else if (*v && !strpbrk(v, "#\"\\") && v[0] != ' ' && v[0] != '\t' &&
                   v[strlen(v) - 1] != ' ' && v[strlen(v) - 1] != '\t') {
            fprintf(f, "%s = %s\n", docs[i].name, v);
        } else { /* quoted: '"' and '\\' escaped */
            fprintf(f, "%s = \"", docs[i].name);
            for (; *v; v++) fprintf(f, *v == '"' || *v == '\\' ? "\\%c" : "%c", *v);
            fprintf(f, "\"\n");
        }
    }
}

enum options_result options_parse(struct options *o, int argc, char **argv)
{
    const char *prog = argc > 0 ? argv[0] : "vitamin";
    defaults(o);
    const char *env_client_pw = getenv("VITAMIN_PASSWORD");
    if (env_client_pw && *env_client_pw) o->password = env_client_pw;
    const char *env_pw = getenv("VITAMIN_RABBITMQ_PASSWORD");
    if (env_pw && *env_pw) o->rabbitmq_password = env_pw;
    const char *config = config_arg(argc, argv);
    if (config && load_config(o, config) != 0) {
        fprintf(stderr, "Try '%s --help' for the list of options.\n", prog);
        return OPTIONS_EXIT_USAGE;
    }

    struct option longopts[NDOCS + 1];
    for (size_t i = 0; i < NDOCS; i++) {
        longopts[i] = (struct option){docs[i].name,
                                      docs[i].arg ? required_argument : no_argument,
                                      NULL, (int)docs[i].id};
    }
    longopts[NDOCS] = (struct option){0, 0, 0, 0};

    opterr = 0;
    optind = 1;
    int c, rmq_port_given = 0;
    bool print = false;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        if (c == '?' || c == ':') {
            const char *bad = argv[optind - 1];
            if (c == '?')
                fprintf(stderr, "vitamin: unknown option '%s'\n", bad);
            else
                fprintf(stderr, "vitamin: option '%s' needs a value\n", bad);
            fprintf(stderr, "Try '%s --help' for the list of options.\n", prog);
            return OPTIONS_EXIT_USAGE;
        }
        if (c == OPT_HELP) {
            print_usage(stdout, prog);
            return OPTIONS_EXIT_OK;
        }
        if (c == OPT_VERSION) {
            printf("vitamin %s\n", VITAMIN_VERSION);
            return OPTIONS_EXIT_OK;
        }
        if (c == OPT_RMQ_PORT) rmq_port_given = 1;
        if (c == OPT_PRINT_CONFIG) print = true;
        const char *why = "a valid value";
        if (apply(o, (enum opt_id)c, optarg ? optarg : "yes", &why) != 0) {
            fprintf(stderr, "vitamin: invalid value '%s' for --%s: expected %s\n",
                    optarg, opt_name((enum opt_id)c), why);
            fprintf(stderr, "Try '%s --help' for the list of options.\n", prog);
            return OPTIONS_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vitamin: unexpected argument '%s'\n", argv[optind]);
        fprintf(stderr, "Try '%s --help' for the list of options.\n", prog);
        return OPTIONS_EXIT_USAGE;
    }
    const char *clash = port_clash(o);
    if (clash) {
        fprintf(stderr, "vitamin: %s: each protocol needs its own port\n", clash);
        fprintf(stderr, "Try '%s --help' for the list of options.\n", prog);
        return OPTIONS_EXIT_USAGE;
    }
    if (o->snapshot_interval && !o->snapshot_path) {
        fprintf(stderr, "vitamin: --snapshot_interval needs --snapshot\n");
        fprintf(stderr, "Try '%s --help' for the list of options.\n", prog);
        return OPTIONS_EXIT_USAGE;
    }
    if (check_tls(o, rmq_port_given || o->given[doc_index(OPT_RMQ_PORT)]) != 0) {
        fprintf(stderr, "Try '%s --help' for the list of options.\n", prog);
        return OPTIONS_EXIT_USAGE;
    }
    if (!o->node_id) {
        char hn[256];
        if (gethostname(hn, sizeof hn) != 0) strcpy(hn, "localhost");
        hn[sizeof hn - 1] = '\0';
        snprintf(o->node_id_buf, sizeof o->node_id_buf, "%s:%u", hn, o->port);
        o->node_id = o->node_id_buf;
    }
    for (size_t i = 0; i < o->nbrokers; i++)
        if (!o->brokers[i].port) o->brokers[i].port = o->rabbitmq_port;
    if (check_names(o) != 0) {
        fprintf(stderr, "Try '%s --help' for the list of options.\n", prog);
        return OPTIONS_EXIT_USAGE;
    }
    if (print) {
        print_config(o, stdout);
        return OPTIONS_EXIT_OK;
    }
    return OPTIONS_RUN;
}
