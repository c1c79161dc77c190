/*
 * opts.c - vitamin-benchmark's command line (opts.h).
 *
 * Owns: the usage text, the number parsers and the option table.
 */
#include "opts.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TTL_MAX 315360000u

static void usage(FILE *f)
{
    fprintf(f,
        "usage: vitamin-benchmark [options]\n"
        "  -h, --host HOST        server address (127.0.0.1)\n"
        "  -p, --port PORT        server port (8080)\n"
        "  -c, --connections N    parallel connections (50)\n"
        "  -P, --pipeline N       requests in flight per connection (1)\n"
        "  -n, --requests N       requests to make (100000; 0 with --prefill: prefill only)\n"
        "  -t, --time SECONDS     run for this long instead of -n requests\n"
        "  -d, --data-size N      value size in bytes (32)\n"
        "  -r, --keyspace N       uniform random keys key:%%012d in [0, N) (100000)\n"
        "      --ratio S:G        sets to gets (1:9)\n"
        "      --ttl SECONDS      TTL of every set (0 = none)\n"
        "      --prefill          set every key once before the measured run\n"
        "      --seed N           random seed (1)\n"
        "      --protocol NAME    vitamin | memcache | redis (vitamin)\n"
        "      --csv, --json      machine-readable summary on stdout\n"
        "      --timeout SECONDS  fail after this long without any reply (10)\n"
        "      --rate N           open loop: offer N requests/s over all connections\n"
        "      --series MS        print the interval's ops and latency every MS ms\n"
        "      --zipf S           Zipf key popularity with exponent S (0 = uniform)\n"
        "      --set-on-miss      set a key after its get missed (hit-ratio runs)\n"
        "      --key-offset N     keys are key:%%012d of N + k: another key range (0)\n"
        "      --help\n");
}

static bool parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!s || *s < '0' || *s > '9') return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max) return false;
    *out = v;
    return true;
}

static bool parse_secs(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s || !(v > 0) || v > 1e6) return false;
    *out = v;
    return true;
}

static void die_opt(const char *name, const char *val)
{
    fprintf(stderr, "vitamin-benchmark: bad value for %s: '%s'\n", name, val ? val : "");
    exit(2);
}

void bench_parse_options(int argc, char **argv, struct options *o)
{
    enum { O_RATIO = 256, O_TTL, O_PREFILL, O_SEED, O_PROTO, O_CSV, O_JSON,
           O_TIMEOUT, O_RATE, O_SERIES, O_ZIPF, O_SET_ON_MISS, O_KEY_OFFSET, O_HELP };
    static const struct option longs[] = {
        {"host", required_argument, 0, 'h'},
        {"port", required_argument, 0, 'p'},
        {"connections", required_argument, 0, 'c'},
        {"pipeline", required_argument, 0, 'P'},
        {"requests", required_argument, 0, 'n'},
        {"time", required_argument, 0, 't'},
        {"data-size", required_argument, 0, 'd'},
        {"keyspace", required_argument, 0, 'r'},
        {"ratio", required_argument, 0, O_RATIO},
        {"ttl", required_argument, 0, O_TTL},
        {"prefill", no_argument, 0, O_PREFILL},
        {"seed", required_argument, 0, O_SEED},
        {"protocol", required_argument, 0, O_PROTO},
        {"csv", no_argument, 0, O_CSV},
        {"json", no_argument, 0, O_JSON},
        {"timeout", required_argument, 0, O_TIMEOUT},
        {"rate", required_argument, 0, O_RATE},
        {"series", required_argument, 0, O_SERIES},
        {"zipf", required_argument, 0, O_ZIPF},
        {"set-on-miss", no_argument, 0, O_SET_ON_MISS},
        {"key-offset", required_argument, 0, O_KEY_OFFSET},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    *o = (struct options){.host = "127.0.0.1", .port = "8080", .conns = 50,
                          .pipeline = 1, .requests = 100000, .value_size = 32,
                          .keyspace = 100000, .set_w = 1, .get_w = 9,
                          .seed = 1, .proto = WIRE_VITAMIN, .timeout = 10};
    uint64_t v;
    int ch;
    while ((ch = getopt_long(argc, argv, "h:p:c:P:n:t:d:r:", longs, NULL)) != -1) {
        switch (ch) {
        case 'h': o->host = optarg; break;
        case 'p':
            if (!parse_u64(optarg, 1, 65535, &v)) die_opt("-p", optarg);
            o->port = optarg;
            break;
        case 'c':
            if (!parse_u64(optarg, 1, 10000, &v)) die_opt("-c", optarg);
            o->conns = (unsigned)v;
            break;
        case 'P':
            if (!parse_u64(optarg, 1, 65536, &v)) die_opt("-P", optarg);
            o->pipeline = (unsigned)v;
            break;
        case 'n':
            if (!parse_u64(optarg, 0, UINT64_MAX / 2, &o->requests)) die_opt("-n", optarg);
            break;
        case 't':
            if (!parse_secs(optarg, &o->seconds)) die_opt("-t", optarg);
            break;
        case 'd':
            if (!parse_u64(optarg, 1, 64u << 20, &v)) die_opt("-d", optarg);
            o->value_size = (size_t)v;
            break;
        case 'r':
            if (!parse_u64(optarg, 1, KEYSPACE_MAX, &o->keyspace)) die_opt("-r", optarg);
            break;
        case O_RATIO: {
            const char *colon = strchr(optarg, ':');
            char sbuf[16];
            uint64_t s, g;
            if (!colon || (size_t)(colon - optarg) >= sizeof sbuf) die_opt("--ratio", optarg);
            memcpy(sbuf, optarg, (size_t)(colon - optarg));
            sbuf[colon - optarg] = '\0';
            if (!parse_u64(sbuf, 0, 1000000, &s) || !parse_u64(colon + 1, 0, 1000000, &g) ||
                s + g == 0)
                die_opt("--ratio", optarg);
            o->set_w = (unsigned)s;
            o->get_w = (unsigned)g;
            break;
        }
        case O_TTL:
            if (!parse_u64(optarg, 0, TTL_MAX, &v)) die_opt("--ttl", optarg);
            o->ttl = (unsigned)v;
            break;
        case O_PREFILL: o->prefill = true; break;
        case O_SEED:
            if (!parse_u64(optarg, 0, UINT64_MAX, &o->seed)) die_opt("--seed", optarg);
            break;
        case O_PROTO:
            if (wire_protocol_parse(optarg, &o->proto) != 0) die_opt("--protocol", optarg);
            break;
        case O_CSV: o->csv = true; break;
        case O_JSON: o->json = true; break;
        case O_TIMEOUT:
            if (!parse_secs(optarg, &o->timeout)) die_opt("--timeout", optarg);
            break;
        case O_RATE:
            if (!parse_u64(optarg, 1, 1000000000, &v)) die_opt("--rate", optarg);
            o->rate = (double)v;
            break;
        case O_SERIES:
            if (!parse_secs(optarg, &o->series_ms) || o->series_ms < 1)
                die_opt("--series", optarg);
            break;
        case O_ZIPF:
            if (!parse_secs(optarg, &o->zipf) || o->zipf > 10) die_opt("--zipf", optarg);
            break;
        case O_SET_ON_MISS: o->set_on_miss = true; break;
        case O_KEY_OFFSET:
            if (!parse_u64(optarg, 0, KEYSPACE_MAX, &o->key_offset)) die_opt("--key-offset", optarg);
            break;
        case O_HELP: usage(stdout); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    if (optind < argc) die_opt("argument", argv[optind]);
    if (o->zipf > 0 && o->keyspace > 100000000) die_opt("-r (with --zipf: at most 1e8)", "");
    if (o->key_offset + o->keyspace > KEYSPACE_MAX) die_opt("--key-offset + -r (at most 1e12)", "");
    if (o->requests == 0 && !o->prefill && o->seconds == 0) die_opt("-n", "0");
}

