/*
 * latency.h - a fixed log-scale histogram of request service times, cheap
 * enough to stay on for every request: recording is a clock read (the
 * caller's), one count-leading-zeros and two adds; no sample is kept.
 *
 * Buckets: bucket i counts the times in (2^(i-1), 2^i] microseconds
 * (bucket 0: up to 1 us), i < LATENCY_BUCKETS, so the last bound is
 * 2^19 us (~0.52 s); counts[LATENCY_BUCKETS] holds the longer ones. The
 * counts are per bucket, not cumulative (the exposition sums them).
 *
 *   ns:     0..1000 | ..2000 | ..4000 | ... | ..524288000 | more
 *   bucket: 0       | 1      | 2      | ... | 19          | 20 (+Inf)
 */
#ifndef VITAMIN_LATENCY_H
#define VITAMIN_LATENCY_H

#include <stdint.h>

#define LATENCY_BUCKETS 20

struct latency_hist {
    uint64_t counts[LATENCY_BUCKETS + 1]; /* per bucket; the last one: over 2^19 us */
    uint64_t sum_ns;                      /* total of every time recorded */
};

/* The bucket of a time of ns nanoseconds. */
static inline unsigned latency_bucket(uint64_t ns)
{
    uint64_t us = (ns + 999) / 1000; /* rounded up: ns <= 1000 * 2^i iff us <= 2^i */
    if (us <= 1) return 0;
    unsigned i = 64u - (unsigned)__builtin_clzll(us - 1);
    return i < LATENCY_BUCKETS ? i : LATENCY_BUCKETS;
}

static inline void latency_record(struct latency_hist *h, uint64_t ns)
{
    h->counts[latency_bucket(ns)]++;
    h->sum_ns += ns;
}

/* The upper bound of bucket i < LATENCY_BUCKETS, in seconds. */
static inline double latency_bound_s(unsigned i)
{
    return (double)(1u << i) * 1e-6;
}

#endif
