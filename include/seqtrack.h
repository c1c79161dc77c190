/*
 * seqtrack.h - which batches of each peer were lost: the per-origin
 * sequence of WRITES batches, tracked across incarnations.
 *
 * Owns: per peer (incarnation, last seq, the first seq of a new incarnation
 * still to be covered by a state transfer) and the batches a jump skipped
 * that may still arrive late. Pure: no I/O, no clock (callers pass ev_now),
 * no logging; a loss is reported through the gap callback given at create,
 * with the peer's id and how many batches it lost.
 *
 * Rules (docs/replication.md, "Gaps"):
 * - within an incarnation seq grows by one per batch; a jump skips batches,
 *   which get `grace_s` to arrive late (a quorum queue redelivers a failed
 *   consumer's unacknowledged batches after newer ones); those that do not
 *   are lost (seqtrack_expire reports them);
 * - a new incarnation (or a new peer) must start at seq 1: if its first
 *   batch seen is later, the batches before were lost;
 * - while our own state transfer is under way, either kind of loss is
 *   "unverified": a complete transfer from that peer (seqtrack_covered with
 *   its base) covers it; seqtrack_transfer_ended reports what was not.
 */
#ifndef VITAMIN_SEQTRACK_H
#define VITAMIN_SEQTRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SEQTRACK_MAX_PEERS 64
#define SEQTRACK_LATE_MAX 65536 /* more skipped than this: lost at once */

struct seqtrack;

typedef void (*seqtrack_gap_fn)(void *arg, const char *peer, uint64_t lost);

struct seqtrack *seqtrack_create(double grace_s, seqtrack_gap_fn gap, void *arg);
void seqtrack_destroy(struct seqtrack *t);

/* A WRITES batch (a beacon included) of peer `id` arrived. `transfer_waiting`:
 * our state transfer is under way. Returns true when the batch was seen
 * before (redelivered or republished) or is a late one. Peers past
 * SEQTRACK_MAX_PEERS are not tracked. */
bool seqtrack_batch(struct seqtrack *t, const char *id, size_t len, uint64_t incarnation,
                    uint64_t seq, bool transfer_waiting, double now);

/* Skipped batches whose grace ended by `now` are lost. */
void seqtrack_expire(struct seqtrack *t, double now);

/* Some peer has a first batch the transfer under way must cover. */
bool seqtrack_unverified(const struct seqtrack *t);

/* A complete transfer from peer `id` held its batches up to `base`. */
void seqtrack_covered(struct seqtrack *t, const char *id, size_t len, uint64_t incarnation,
                      uint64_t base);

/* Our transfer ended: what it did not cover was lost. */
void seqtrack_transfer_ended(struct seqtrack *t);

#endif
