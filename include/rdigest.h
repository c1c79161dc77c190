/*
 * rdigest.h - the items digest split by key-hash range, as a tree of XORs,
 * so two nodes can find where their data differs without sending it.
 *
 * Owns: the digest of each node of the tree. Pure: no I/O, no clock; the
 * store feeds it every change of its digest (rdigest_xor with an item's
 * term, once when the item becomes live, once when it stops being live).
 *
 *   level 0:                  [root]                   1 node  = items_digest
 *   level 1:        [0] [1] ... [15]                   16 nodes
 *   level 2:   ...                                    256
 *   level 3:   ...                                   4096
 *   level 4:   leaves: key ranges                   65536
 *
 * A key's leaf is the top 16 bits of XXH3_64(key) (seed 0: the same on
 * every node, unlike the table's seeded hash); node i of level L covers
 * leaves [i << 4(4-L), (i+1) << 4(4-L)); the children of node i are
 * 16i .. 16i+15 of level L+1. Every node is the XOR of the terms of the
 * live items in its leaves, so an update costs five XORs.
 */
#ifndef VITAMIN_RDIGEST_H
#define VITAMIN_RDIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RDIGEST_LEVELS 5
#define RDIGEST_FANOUT 16
#define RDIGEST_LEAF_LEVEL (RDIGEST_LEVELS - 1)
#define RDIGEST_LEAVES (1u << 16)

struct rdigest {
    uint64_t *level[RDIGEST_LEVELS]; /* level[L] has 16^L nodes; NULL: off */
};

/* Allocate a zeroed tree. Returns 0, or -1 on ENOMEM. */
int rdigest_init(struct rdigest *d);
void rdigest_free(struct rdigest *d);
/* Bytes the tree holds (for memory accounting). */
size_t rdigest_bytes(void);

/* The 64-bit hash of a key that places it: XXH3_64, seed 0. State
 * transfer names keys by it (docs/replication.md, "Key summaries"). */
uint64_t rdigest_key_hash(const char *key, size_t key_len);

/* The leaf of a key hash: its top 16 bits. */
static inline uint32_t rdigest_leaf_of_hash(uint64_t hash)
{
    return (uint32_t)(hash >> 48);
}

/* The leaf of a key. */
uint32_t rdigest_leaf_of(const char *key, size_t key_len);

/* A set of leaves as a bitmap of RDIGEST_BITMAP_BYTES bytes. */
#define RDIGEST_BITMAP_BYTES (RDIGEST_LEAVES / 8)

static inline void rdigest_bitmap_add(uint8_t *bits, uint32_t leaf)
{
    bits[leaf >> 3] |= (uint8_t)(1u << (leaf & 7));
}

static inline bool rdigest_bitmap_has(const uint8_t *bits, uint32_t leaf)
{
    return bits[leaf >> 3] & (1u << (leaf & 7));
}

/* Nodes on level L. */
static inline uint32_t rdigest_width(unsigned level)
{
    return UINT32_C(1) << (4 * level);
}

/* Fold term into leaf and every node above it. */
static inline void rdigest_xor(struct rdigest *d, uint32_t leaf, uint64_t term)
{
    for (unsigned l = 0; l < RDIGEST_LEVELS; l++)
        d->level[l][leaf >> (4 * (RDIGEST_LEAF_LEVEL - l))] ^= term;
}

/* The digest of node index of level L (L < RDIGEST_LEVELS, index < width). */
static inline uint64_t rdigest_get(const struct rdigest *d, unsigned level, uint32_t index)
{
    return d->level[level][index];
}

#endif
