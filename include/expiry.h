/*
 * expiry.h - the active expiry cycle: an ev_timer armed for the next expiry
 * in the store's TTL heap.
 *
 * Owns: the timer. Each firing removes due items in slices of EXPIRY_SLICE
 * and stops after EXPIRY_BUDGET_MS of work; if items are still due it fires
 * again on the next loop turn, after clients have been served. So a wave of
 * a million keys expiring together costs clients about one budget of
 * latency per turn. The same timer drives the store's incremental rehash.
 * It counts how long its longest turn held the loop (expiry_stats).
 */
#ifndef VITAMIN_EXPIRY_H
#define VITAMIN_EXPIRY_H

#include <stdint.h>

struct ev_loop;
struct store;
struct expiry;

#define EXPIRY_SLICE 256
#define EXPIRY_BUDGET_MS 1.0

struct expiry *expiry_create(struct ev_loop *loop, struct store *store);
void expiry_destroy(struct expiry *e);
/* A write set an expiry (or a tombstone) at expire_ms: re-arm if earlier. */
void expiry_note(struct expiry *e, int64_t expire_ms);

/* Since start: what the timer's longest turn cost the loop. A client ready
 * in that turn waited at least this long (wall), of which the server's own
 * work was the CPU figure (the rest: other processes on the core). */
struct expiry_stats {
    uint64_t turn_max_us;     /* longest turn, wall clock */
    uint64_t turn_cpu_max_us; /* most CPU time of this thread one turn used */
};
void expiry_get_stats(const struct expiry *e, struct expiry_stats *st);

#endif
