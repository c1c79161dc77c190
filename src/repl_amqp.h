/*
 * repl_amqp.h - what both broker threads (repl_link.c) use to reach a
 * broker: open and close an AMQP connection to one node of the broker list
 * (TCP or TLS, login, channel 1, the exchange), move along the list with
 * backoff, and let the loop's watchdog unstick a call to a frozen broker.
 *
 * Owns: no state of its own: it works on the shared struct repl_bus
 * (repl_internal.h) under the rules written there.
 */
#ifndef VITAMIN_REPL_AMQP_H
#define VITAMIN_REPL_AMQP_H

#include <amqp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repl_internal.h"

#define REPL_AMQP_BACKOFF_MIN_MS 100
#define REPL_AMQP_BACKOFF_MAX_MS 3000

/* Connect to broker `at` of the list, log in, open channel 1, declare the
 * exchange. NULL on failure with *why set (a thread-local string). */
amqp_connection_state_t repl_amqp_open(struct repl_bus *r, size_t at, const char **why);
/* polite: close the channel and the connection first (the broker is
 * answering); else just free it. NULL is a no-op. */
void repl_amqp_close(amqp_connection_state_t conn, bool polite);

/* A thread starts (on) or ends a library call that may block: the loop's
 * repl_watchdog() shuts down the socket of a call stuck too long. */
void repl_amqp_busy(_Atomic int64_t *since, bool on);
/* A thread's socket for the watchdog: conn's, or none (NULL) just before
 * conn is destroyed. */
void repl_amqp_watch_fd(struct repl_bus *r, int *slot, amqp_connection_state_t conn);

/* Monotonic clock, milliseconds. */
int64_t repl_amqp_now_ms(void);

bool repl_amqp_stopping(struct repl_bus *r);
/* Sleep ms, or less if stop is raised. */
void repl_amqp_nap(struct repl_bus *r, unsigned ms);
/* Double cur up to REPL_AMQP_BACKOFF_MAX_MS, with jitter: [n/2, n]. */
unsigned repl_amqp_next_backoff(unsigned cur);
/* The next broker of the list after a failure on *at (a no-op with one). */
void repl_amqp_failover(struct repl_bus *r, _Atomic size_t *at);
/* "host:port" of broker `at`, and an AMQP reply explained (thread-local). */
const char *repl_amqp_broker_name(const struct repl_bus *r, size_t at);
const char *repl_amqp_reply_error(amqp_rpc_reply_t rep);

#endif
