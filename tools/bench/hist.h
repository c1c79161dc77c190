/*
 * hist.h - a small HDR-style latency histogram for vitamin-benchmark.
 *
 * Log-linear buckets: values below 64 each have their own bucket; above,
 * every power of two [2^k, 2^(k+1)) is cut into HIST_SUB = 32 equal
 * sub-buckets, so a recorded value is known to within 1/32 (~3 %) at any
 * magnitude, and the whole uint64 range fits in 1920 counters (15 KiB).
 *
 *   value:   0 1 ... 63 | 64 66 ... 126 | 128 132 ... 252 | ...
 *   bucket:  0 1 ... 63 | 64 65 ...  95 |  96  97 ... 127 | ...
 *
 * Units are the caller's (vitamin-benchmark records microseconds).
 */
#ifndef VITAMIN_BENCH_HIST_H
#define VITAMIN_BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 5
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS ((64 - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
    uint64_t count[HIST_BUCKETS]; /* samples per bucket */
    uint64_t total;               /* samples */
    uint64_t sum;                 /* of the samples, for the mean */
    uint64_t max;                 /* largest sample, exact */
};

/* Count one sample. */
void hist_record(struct hist *h, uint64_t v);

/* The highest value of the first bucket at which at least q (0..1) of the
 * samples are at or below, capped at the exact max; 0 when empty. */
uint64_t hist_quantile(const struct hist *h, double q);

/* Mean of the samples; 0 when empty. */
double hist_mean(const struct hist *h);

#endif
