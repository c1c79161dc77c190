/*
 * opts.h - vitamin-benchmark's command line: what a run is asked to do.
 *
 * Owns: struct options and its parsing (every option checked, ranges
 * included; a bad one prints usage and exits 2).
 */
#ifndef VITAMIN_BENCH_OPTS_H
#define VITAMIN_BENCH_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define KEYSPACE_MAX UINT64_C(1000000000000)

struct options {
    const char *host;
    const char *port;
    unsigned conns;         /* -c */
    unsigned pipeline;      /* -P: requests in flight per connection */
    uint64_t requests;      /* -n; 0 with --prefill = prefill only */
    double seconds;         /* -t; 0 = run -n requests */
    size_t value_size;      /* -d */
    uint64_t keyspace;      /* -r */
    uint64_t key_offset;    /* --key-offset: key k is sent as key:<offset + k> */
    unsigned set_w, get_w;  /* --ratio set:get */
    unsigned ttl;           /* --ttl seconds; 0 = none */
    bool prefill;
    uint64_t seed;
    enum wire_protocol proto;
    bool csv, json;
    double timeout;         /* give up after this long without a reply */
    double rate;            /* --rate: offered requests/s (open loop); 0 = closed loop */
    double series_ms;       /* --series: interval of the per-interval lines; 0 = none */
    double zipf;            /* --zipf: exponent of key popularity; 0 = uniform */
    bool set_on_miss;       /* --set-on-miss: a missed get is followed by a set */
};

/* Fill o from argv (defaults first); exits on a bad option or --help. */
void bench_parse_options(int argc, char **argv, struct options *o);

#endif
