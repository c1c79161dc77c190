/*
 * repl_amqp.c - reaching a broker, for both broker threads (repl_amqp.h).
 *
 * Owns (code, no state): the connection set-up (TCP or TLS from the --rabbitmq_tls* flags,
 * heartbeats, login, channel 1, the fanout exchange), the backoff and the
 * walk along the broker list, and the watchdog: each thread marks when its
 * current library call began (link_busy) and repl_watchdog(), run by the
 * loop, shuts down the socket of a call stuck for longer than 2 heartbeats
 * + WATCHDOG_SLACK_MS (rabbitmq-c can block for ever inside a publish to a
 * frozen broker).
 */
#include "repl_amqp.h"

#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "log.h"

#define CONNECT_TIMEOUT_S 2
#define WATCHDOG_SLACK_MS 1000
#define RPC_TIMEOUT_S 5

int64_t repl_amqp_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A thread starts (or ends: ms 0) a library call that may block. */
void repl_amqp_busy(_Atomic int64_t *since, bool on)
{
    atomic_store(since, on ? repl_amqp_now_ms() : 0);
}

/* A thread's socket for the watchdog: conn's, or none (-1) just before
 * conn is destroyed. */
void repl_amqp_watch_fd(struct repl_bus *r, int *slot, amqp_connection_state_t conn)
{
    pthread_mutex_lock(&r->mu);
    *slot = conn ? amqp_get_sockfd(conn) : -1;
    pthread_mutex_unlock(&r->mu);
}

void repl_watchdog(struct repl_bus *r)
{
    int64_t limit = 2 * (int64_t)r->cfg.heartbeat_s * 1000 + WATCHDOG_SLACK_MS;
    int64_t now = repl_amqp_now_ms();
    struct { _Atomic int64_t *since; int *fd; const char *who; } t[2] = {
        {&r->pub_busy_ms, &r->pub_fd, "publisher"}, {&r->con_busy_ms, &r->con_fd, "consumer"}};
    for (int i = 0; i < 2; i++) {
        int64_t since = atomic_load(t[i].since);
        if (!since || now - since <= limit) continue;
        pthread_mutex_lock(&r->mu);
        int fd = *t[i].fd;
        if (fd >= 0) shutdown(fd, SHUT_RDWR); /* the stuck call fails; the thread reconnects */
        pthread_mutex_unlock(&r->mu);
        if (fd < 0) continue;
        atomic_store(t[i].since, 0);
        atomic_fetch_add(&r->watchdog_resets, 1);
        log_warn("replication: %s stuck in a broker call for %lld ms (broker frozen?): "
                 "dropping the link", t[i].who, (long long)(now - since));
    }
}

bool repl_amqp_stopping(struct repl_bus *r)
{
    pthread_mutex_lock(&r->mu);
    bool s = r->stop;
    pthread_mutex_unlock(&r->mu);
    return s;
}

/* Sleep ms, or less if stop is raised. */
void repl_amqp_nap(struct repl_bus *r, unsigned ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->mu);
    if (!r->stop) pthread_cond_timedwait(&r->outbox_cv, &r->mu, &ts);
    pthread_mutex_unlock(&r->mu);
}

unsigned repl_amqp_next_backoff(unsigned cur)
{
    unsigned n = cur * 2;
    if (n > REPL_AMQP_BACKOFF_MAX_MS) n = REPL_AMQP_BACKOFF_MAX_MS;
    return n / 2 + (unsigned)(rand() % (int)(n / 2 + 1)); /* jitter: [n/2, n] */
}

/* The next broker of the list after a failure on *at (a no-op with one). */
void repl_amqp_failover(struct repl_bus *r, _Atomic size_t *at)
{
    if (r->cfg.nbrokers < 2) return;
    atomic_store(at, (atomic_load(at) + 1) % r->cfg.nbrokers);
    atomic_fetch_add(&r->failovers, 1);
}

const char *repl_amqp_broker_name(const struct repl_bus *r, size_t at)
{
    static __thread char buf[RC_MAX_ID_LEN + 8];
    snprintf(buf, sizeof buf, "%s:%u", r->cfg.brokers[at].host, r->cfg.brokers[at].port);
    return buf;
}

const char *repl_amqp_reply_error(amqp_rpc_reply_t rep)
{
    static __thread char buf[128];
    switch (rep.reply_type) {
    case AMQP_RESPONSE_NORMAL: return "ok";
    case AMQP_RESPONSE_NONE: return "no reply";
    case AMQP_RESPONSE_LIBRARY_EXCEPTION: return amqp_error_string2(rep.library_error);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (rep.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_t *m = rep.reply.decoded;
            snprintf(buf, sizeof buf, "server closed connection: %u %.*s", m->reply_code,
                     (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        } else if (rep.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *m = rep.reply.decoded;
            snprintf(buf, sizeof buf, "server closed channel: %u %.*s", m->reply_code,
                     (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        } else {
            snprintf(buf, sizeof buf, "server exception 0x%08x", rep.reply.id);
        }
        return buf;
    }
    return "unknown";
}

void repl_amqp_close(amqp_connection_state_t conn, bool polite)
{
    if (!conn) return;
    if (polite) {
        amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
        amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(conn);
}

/* A TLS failure explained for the log: what failed, rabbitmq-c's words for
 * it, and what to check. Thread-local, like repl_amqp_reply_error's buffer. */
static const char *tls_error(int rc)
{
    static __thread char buf[320];
    const char *what, *hint;
    switch (rc) {
    case AMQP_STATUS_SSL_PEER_VERIFY_FAILED:
        what = "TLS verification of the broker's certificate failed";
        hint = "is it signed by the CA in --rabbitmq_cacert?";
        break;
    case AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED:
        what = "TLS verification of the broker's host name failed";
        hint = "does its certificate name --rabbitmq_host?";
        break;
    case AMQP_STATUS_SSL_CONNECTION_FAILED:
        what = "TLS handshake with the broker failed";
        hint = "is --rabbitmq_port a TLS listener, and does it accept our certificate?";
        break;
    case AMQP_STATUS_SSL_ERROR: /* e.g. a TLS 1.3 alert read during login */
        what = "TLS error on the broker link";
        hint = "did the broker refuse our --rabbitmq_cert? see the broker's log";
        break;
    default:
        what = "TLS error on the broker link";
        hint = "see the broker's log";
        break;
    }
    snprintf(buf, sizeof buf, "%s: %s; %s", what, amqp_error_string2(rc), hint);
    return buf;
}

/* The socket for a new connection: plain TCP, or TLS set up from the
 * --rabbitmq_tls* flags. NULL with *why set on failure (conn keeps
 * ownership of a socket it made). */
static amqp_socket_t *link_socket(struct repl_bus *r, amqp_connection_state_t conn,
                                  const char **why)
{
    if (!r->cfg.tls) {
        amqp_socket_t *sock = amqp_tcp_socket_new(conn);
        if (!sock) *why = amqp_error_string2(AMQP_STATUS_NO_MEMORY);
        return sock;
    }
    amqp_socket_t *sock = amqp_ssl_socket_new(conn);
    if (!sock) {
        *why = "TLS setup failed: cannot create a TLS socket";
        return NULL;
    }
    /* rabbitmq-c 0.11 checks the chain and the name after the handshake.
     * It only turns SSLv3 off by default: ask for TLS 1.2 or later (1.3
     * stays allowed: 0.11 never sets SSL_OP_NO_TLSv1_3). */
    amqp_ssl_socket_set_verify_peer(sock, r->cfg.tls_verify ? 1 : 0);
    amqp_ssl_socket_set_verify_hostname(sock, r->cfg.tls_verify ? 1 : 0);
    if (amqp_ssl_socket_set_ssl_versions(sock, AMQP_TLSv1_2, AMQP_TLSvLATEST) != AMQP_STATUS_OK) {
        *why = "TLS setup failed: cannot require TLS 1.2 or later";
        return NULL;
    }
    if (r->cacert[0] && amqp_ssl_socket_set_cacert(sock, r->cacert) != AMQP_STATUS_OK) {
        *why = "TLS setup failed: cannot load --rabbitmq_cacert (not PEM certificates?)";
        return NULL;
    }
    if (r->cert[0] && amqp_ssl_socket_set_key(sock, r->cert, r->key) != AMQP_STATUS_OK) {
        *why = "TLS setup failed: cannot load --rabbitmq_cert/--rabbitmq_key (not PEM, "
               "encrypted key, or key does not match the certificate?)";
        return NULL;
    }
    return sock;
}

/* Connect to broker `at` of the list, log in, open channel 1, declare the
 * exchange. NULL on failure with *why set. */
amqp_connection_state_t repl_amqp_open(struct repl_bus *r, size_t at, const char **why)
{
    const struct repl_broker *b = &r->cfg.brokers[at];
    amqp_connection_state_t conn = amqp_new_connection();
    if (!conn) {
        *why = "out of memory";
        return NULL;
    }
    amqp_socket_t *sock = link_socket(r, conn, why);
    if (!sock) {
        amqp_destroy_connection(conn);
        return NULL;
    }
    struct timeval ct = {CONNECT_TIMEOUT_S, 0}, rt = {RPC_TIMEOUT_S, 0};
    int rc = amqp_socket_open_noblock(sock, b->host, b->port, &ct);
    if (rc != AMQP_STATUS_OK) {
        bool tls_rc = rc <= AMQP_STATUS_SSL_ERROR && rc > _AMQP_STATUS_SSL_NEXT_VALUE;
        *why = r->cfg.tls && tls_rc ? tls_error(rc) : amqp_error_string2(rc);
        amqp_destroy_connection(conn);
        return NULL;
    }
    amqp_set_rpc_timeout(conn, &rt);
    amqp_set_handshake_timeout(conn, &rt);
    amqp_rpc_reply_t rep = amqp_login(conn, r->vhost, 0, 131072, (int)r->cfg.heartbeat_s,
                                      AMQP_SASL_METHOD_PLAIN, r->user, r->password);
    if (rep.reply_type != AMQP_RESPONSE_NORMAL) {
        /* with TLS 1.3 the broker may refuse our certificate only now */
        bool tls_rc = rep.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
                      rep.library_error <= AMQP_STATUS_SSL_ERROR &&
                      rep.library_error > _AMQP_STATUS_SSL_NEXT_VALUE;
        *why = r->cfg.tls && tls_rc ? tls_error(rep.library_error) : repl_amqp_reply_error(rep);
        amqp_destroy_connection(conn);
        return NULL;
    }
    amqp_channel_open(conn, 1);
    rep = amqp_get_rpc_reply(conn);
    if (rep.reply_type == AMQP_RESPONSE_NORMAL) {
        amqp_exchange_declare(conn, 1, amqp_cstring_bytes(r->exchange),
                              amqp_cstring_bytes("fanout"), 0, 1, 0, 0, amqp_empty_table);
        rep = amqp_get_rpc_reply(conn);
    }
    if (rep.reply_type != AMQP_RESPONSE_NORMAL) {
        *why = repl_amqp_reply_error(rep);
        amqp_destroy_connection(conn);
        return NULL;
    }
    return conn;
}

