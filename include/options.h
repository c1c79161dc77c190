/*
 * options.h - command line and environment configuration.
 *
 * Owns: struct options, its defaults, parsing (getopt_long: `--flag=value`
 * and `--flag value`), validation and the --help text. Nothing else reads
 * argv or the VITAMIN_* environment.
 */
#ifndef VITAMIN_OPTIONS_H
#define VITAMIN_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "store.h"

#define VITAMIN_VERSION "0.2.0"

/* The longest name the broker takes (an AMQP short string): host, user,
 * password, vhost, exchange, node id, and the queue "<exchange>.<node id>". */
#define OPTIONS_MAX_NAME 255
#define OPTIONS_MAX_BROKERS 16

/* One entry of --rabbitmq_host. */
struct options_broker {
    char host[OPTIONS_MAX_NAME + 1];
    uint16_t port;                  /* resolved: the entry's, or --rabbitmq_port */
};

enum options_queue_type { OPTIONS_QUEUE_QUORUM = 0, OPTIONS_QUEUE_CLASSIC };

#define OPTIONS_MAX_FLAGS 64

enum options_replication_ack { OPTIONS_ACK_ASYNC = 0, OPTIONS_ACK_CONFIRM };

struct options {
    const char *host;               /* listen address */
    uint16_t port;                  /* listen port, Vitamin's protocol */
    uint16_t memcache_port;         /* memcached protocol; 0 = off */
    uint16_t redis_port;            /* RESP; 0 = off */
    uint16_t metrics_port;          /* Prometheus GET /metrics; 0 = off */
    size_t memory_mib;              /* memory cap for data and index */
    enum store_eviction eviction;   /* policy when the cap is reached */
    size_t max_value_size;          /* bytes */
    uint32_t max_connections;       /* concurrent clients */
    uint32_t idle_timeout;          /* seconds; 0 = never close idle clients */
    size_t max_client_memory_mib;   /* all clients' buffers together */
    enum log_level log_level;
    const char *node_id;            /* unique within a pool */
    uint32_t tombstone_ttl;         /* seconds a delete marker is kept */
    const char *snapshot_path;      /* --snapshot FILE; NULL = no warm restart */
    uint32_t snapshot_interval;     /* seconds between background saves; 0 = none */

    const char *rabbitmq_host;      /* the list as given; NULL = standalone */
    struct options_broker brokers[OPTIONS_MAX_BROKERS]; /* parsed from it */
    size_t nbrokers;
    uint16_t rabbitmq_port;         /* default port of entries without one */
    uint32_t rabbitmq_heartbeat;    /* seconds; a silent broker is left after 2-3 */
    uint32_t rabbitmq_confirm_timeout; /* seconds a publish may wait for its
                                          confirm or nack before the link counts
                                          as lost */
    enum options_queue_type rabbitmq_queue_type;
    uint32_t rabbitmq_queue_ttl;    /* seconds a node's queue outlives the node */
    size_t rabbitmq_queue_mib;      /* bound of a node's queue */
    uint32_t anti_entropy_interval; /* seconds between digest rounds; 0 = off */
    const char *rabbitmq_user;
    const char *rabbitmq_password;
    const char *rabbitmq_exchange;
    const char *rabbitmq_vhost;
    size_t outbox_mib;              /* bound of writes waiting for the broker */
    enum options_replication_ack replication_ack;
    int sync_before_serve;          /* accept clients only once synced */
    int rabbitmq_tls;               /* TLS to the broker */
    const char *rabbitmq_cacert;    /* CA file (PEM) the broker is checked against */
    const char *rabbitmq_cert;      /* client certificate (PEM), NULL = none */
    const char *rabbitmq_key;       /* client private key (PEM), NULL = none */
    int rabbitmq_tls_verify;        /* check the broker's certificate and name */
    const char *password;           /* clients must auth() first; NULL = open */

    const char *config;             /* --config FILE, or NULL */

    char node_id_buf[320];          /* storage for the default node id */
    char password_buf[1024];        /* storage for --password_file */
    char *config_text;              /* the config file's settings (owned) */
    /* each setting as last given (file, then command line), by flag;
     * NULL = default. What a reload compares. */
    const char *given[OPTIONS_MAX_FLAGS];
};

enum options_result {
    OPTIONS_RUN = 0,    /* start the server */
    OPTIONS_EXIT_OK,    /* --help or --version was printed: exit 0 */
    OPTIONS_EXIT_USAGE, /* an error was printed: exit 2 */
};

/* Fill o from defaults, environment, the --config file (if given) and
 * argv, in that order (the command line wins). Prints help, version or the
 * error itself (a file's error as FILE:LINE). */
enum options_result options_parse(struct options *o, int argc, char **argv);
/* Free what options_parse allocated. */
void options_free(struct options *o);

/* Settings that differ between two parses (a reload): fn(name, live) for
 * each, live = it can change without a restart (log_level, password,
 * password_file, idle_timeout, max_connections). */
void options_diff(const struct options *a, const struct options *b,
                  void (*fn)(void *arg, const char *name, bool live), void *arg);

#endif
