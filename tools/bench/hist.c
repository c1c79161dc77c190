/*
 * hist.c - log-linear histogram (see hist.h for the bucket layout).
 */
#include "hist.h"

/* Values below 2 * HIST_SUB map to themselves; above, the power of two
 * picks a group of HIST_SUB buckets and the next HIST_SUB_BITS bits the
 * bucket inside it. */
static unsigned hist_index(uint64_t v)
{
    if (v < 2 * HIST_SUB) return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - HIST_SUB_BITS;
    return (shift + 1) * HIST_SUB + (unsigned)((v >> shift) - HIST_SUB);
}

/* Highest value that lands in bucket i. */
static uint64_t hist_high(unsigned i)
{
    if (i < 2 * HIST_SUB) return i;
    unsigned shift = i / HIST_SUB - 1;
    uint64_t low = (uint64_t)(HIST_SUB + i % HIST_SUB) << shift;
    return low + ((UINT64_C(1) << shift) - 1);
}

void hist_record(struct hist *h, uint64_t v)
{
    h->count[hist_index(v)]++;
    h->total++;
    h->sum += v;
    if (v > h->max) h->max = v;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
    if (h->total == 0) return 0;
    uint64_t want = (uint64_t)(q * (double)h->total + 0.999999);
    if (want == 0) want = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->count[i];
        if (seen >= want) return hist_high(i) < h->max ? hist_high(i) : h->max;
    }
    return h->max;
}

double hist_mean(const struct hist *h)
{
    return h->total ? (double)h->sum / (double)h->total : 0.0;
}
