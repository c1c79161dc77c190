/*
 * hlc.h - hybrid logical clock for last-writer-wins versions.
 *
 * A version is (physical_ms << 16) | logical: it stays close to wall-clock
 * time, yet strictly increases on every local write and never falls behind
 * a version this node has seen from a peer. So a local write always beats
 * every write this node has already applied, and concurrent writes on
 * different nodes are ordered by time, then by the node tag (see store.h).
 * Owned by the event-loop thread only.
 */
#ifndef VITAMIN_HLC_H
#define VITAMIN_HLC_H

#include <stdbool.h>
#include <stdint.h>

#define HLC_LOGICAL_BITS 16

struct hlc {
    uint64_t last; /* greatest version issued or observed */
};

/* A new version for a local write at wall-clock time now_ms. */
static inline uint64_t hlc_tick(struct hlc *c, int64_t now_ms)
{
    uint64_t phys = (uint64_t)now_ms << HLC_LOGICAL_BITS;
    c->last = phys > c->last ? phys : c->last + 1;
    return c->last;
}

/* Fold in a version received from a peer. */
static inline void hlc_observe(struct hlc *c, uint64_t version)
{
    if (version > c->last) c->last = version;
}

/* Is stamp (v, o) newer than (cur_v, cur_o)? Versions first, then the
 * origin tags (last-writer-wins, store.h). */
static inline bool hlc_stamp_newer(uint64_t cur_v, uint32_t cur_o, uint64_t v, uint32_t o)
{
    return v > cur_v || (v == cur_v && o > cur_o);
}

static inline int64_t hlc_physical_ms(uint64_t version)
{
    return (int64_t)(version >> HLC_LOGICAL_BITS);
}

#endif
