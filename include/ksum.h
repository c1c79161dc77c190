/*
 * ksum.h - a table of key summaries: what a node holds of each key, named
 * by the key's 64-bit hash (rdigest_key_hash) with the stamps of its two
 * registers, found by that hash.
 *
 * Owns: its entries. Pure: no I/O, no clock, no store. State transfer uses
 * it on both sides (docs/replication.md, "Key summaries"): the serving side
 * keeps the requester's summaries of the leaves that differ and marks each
 * one as its walk meets the key (repl_stream.c); the asking side keeps the
 * hashes a peer asked back (repl_sync.c), with stamps 0.
 *
 * Open addressing with linear probing on the hash itself (XXH3 is uniform),
 * at most 3/4 full, doubling as it fills. It never holds more than the
 * `max` entries it was created with, so a peer's messages cannot make it
 * grow without bound.
 */
#ifndef VITAMIN_KSUM_H
#define VITAMIN_KSUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ksum_entry {
    uint64_t hash;        /* XXH3-64 of the key */
    uint64_t version;     /* value register stamp ... */
    uint64_t exp_version; /* expiry register stamp ... */
    uint32_t origin;      /* ... and its origin tag */
    uint32_t exp_origin;  /* ... and its origin tag */
    uint8_t mark;         /* the user's; 0 when first put */
    bool used;            /* the table's: this slot holds an entry */
};

struct ksum;

/* An empty table for at most max entries, sized for about expect of them
 * (it grows past that as needed). Returns NULL on ENOMEM. */
struct ksum *ksum_create(size_t max, size_t expect);
void ksum_destroy(struct ksum *t);

/*
 * Add e (its mark and used are ignored). A hash already present keeps its
 * mark and takes, register by register, the newer stamp of the two: a key
 * summarised twice (a walk may meet a key twice) is its newest state.
 * Returns 0, or -1 (the table unchanged) when it holds max entries already
 * or memory ran out.
 */
int ksum_put(struct ksum *t, const struct ksum_entry *e);

/* The entry of hash, or NULL. */
struct ksum_entry *ksum_find(const struct ksum *t, uint64_t hash);

/* Entries held. */
size_t ksum_count(const struct ksum *t);

/*
 * Iterate in bounded slices: the next entry in slots *pos .. end - 1 (0 to
 * start), or NULL when there is none; *pos moves past it, or to end. So
 * `while ((e = ksum_next(t, &pos, pos + n)))` looks at n slots at most
 * (end is computed once); ksum_done tells when every slot was seen.
 * Nothing may be put during an iteration.
 */
struct ksum_entry *ksum_next(const struct ksum *t, size_t *pos, size_t end);

/* Has an iteration at *pos seen every slot? */
bool ksum_done(const struct ksum *t, size_t pos);

#endif
