#!/usr/bin/env python3
"""Hit ratio at a memory cap: Vitamin (each eviction policy) vs memcached
and Redis (allkeys-lru), same client, same workload, same run.

Workload (vitamin-benchmark): BENCH_HITS_KEYS (1000000) keys of 16 B with
32 B values, Zipf-distributed popularity with exponent S for each S in
BENCH_HITS_SKEWS (0.99,0.8), 90% gets / 10% sets, and every get that misses
followed by a set of its key (a cache filled on demand). Every server gets
the same cap, BENCH_HITS_MIB (10 MiB: about a tenth of the keyspace at
~100 B an item), and a warm-up run of BENCH_HITS_WARM seconds (20) before a
measured run of BENCH_HITS_SECONDS (20; both 5 with BENCH_QUICK=1). The
ttl policy needs expiries: its sets carry a TTL of one hour (identical
for every key, so it evicts in insertion order, a FIFO). Reported: hit ratio = hits / gets of the measured
run, and ops/s.

Scan resistance: after the measured run, BENCH_HITS_PROBE (100000)
requests of the same workload (fixed seed) measure the hit ratio "before";
then a one-off scan writes BENCH_HITS_SCAN (200000, about twice what the
cap holds) keys that the workload never asks for (--key-offset past the
keyspace: a batch job, a cache warm-up of other data); then the same
probe again measures "after". A policy that keeps the hot set loses little
between the two; one that a scan flushes (plain LRU) starts over from
empty.

Run through `make bench-hits` (and `make bench`). Writes bench/results/hits.csv and prints a
table with the ratios against memcached and Redis.
"""

import csv
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402  (its Server, benchmark() and log())

KEYS = int(os.environ.get("BENCH_HITS_KEYS", "1000000"))
SKEWS = [float(s) for s in os.environ.get("BENCH_HITS_SKEWS", "0.99,0.8").split(",")]
CAP_MIB = int(os.environ.get("BENCH_HITS_MIB", "10"))
WARM = int(os.environ.get("BENCH_HITS_WARM", "5" if bench.QUICK else "20"))
SECONDS = int(os.environ.get("BENCH_HITS_SECONDS", "5" if bench.QUICK else "20"))
PROBE = int(os.environ.get("BENCH_HITS_PROBE", "100000"))
SCAN = int(os.environ.get("BENCH_HITS_SCAN", "200000"))
KINDS = os.environ.get("BENCH_HITS_KINDS",
                       "vitamin_lru,vitamin_ttl,memcached,redis").split(",")


def server(kind, workdir):
    """A bench.Server with the cap; vitamin_<policy> is the memcache port
    of Vitamin with --eviction <policy>."""
    bench.MEMORY_MIB = CAP_MIB
    policy = None
    if kind.startswith("vitamin_"):
        policy = kind.split("_", 1)[1]
        s = bench.Server("vitamin_mc", workdir)
        s.cmd += ["--eviction", policy]
    else:
        s = bench.Server(kind, workdir)
    s.kind = kind
    s.policy = policy
    return s


def run(kind, skew, workdir):
    s = server(kind, workdir).start()
    try:
        args = ["-r", KEYS, "--zipf", skew, "--set-on-miss", "--ratio", "1:9",
                "-d", 32, "-c", 8, "-P", 16]
        if s.policy == "ttl":
            args += ["--ttl", 3600]
        bench.benchmark(s, args + ["-t", WARM])
        res = bench.benchmark(s, args + ["-t", SECONDS, "--seed", 2])
        gets = max(1, res["gets"])
        before = bench.benchmark(s, args + ["-n", PROBE, "--seed", 3])
        scan = ["--prefill", "-n", 0, "-r", SCAN, "--key-offset", KEYS,
                "-d", 32, "-c", 8, "-P", 16]
        bench.benchmark(s, scan + (["--ttl", 3600] if s.policy == "ttl" else []))
        after = bench.benchmark(s, args + ["-n", PROBE, "--seed", 3])
        return {"kind": kind, "skew": skew, "hit_ratio": res["hits"] / gets,
                "ops_per_sec": res["ops_per_sec"], "gets": res["gets"],
                "hits": res["hits"], "errors": res["errors"],
                "before_scan": before["hits"] / max(1, before["gets"]),
                "after_scan": after["hits"] / max(1, after["gets"])}
    finally:
        s.stop()


def main():
    workdir = tempfile.mkdtemp(prefix="vitamin-bench-hits-")
    rows = []
    for skew in SKEWS:
        for kind in KINDS:
            bench.log("hit ratio: %s, zipf %.2f, %d MiB, %d keys" % (kind, skew, CAP_MIB, KEYS))
            row = run(kind, skew, workdir)
            bench.log("  %.4f hits/gets, %.0f ops/s; scan of %d cold keys: %.4f before, %.4f after"
                      % (row["hit_ratio"], row["ops_per_sec"], SCAN,
                         row["before_scan"], row["after_scan"]))
            rows.append(row)
    out = os.path.join(HERE, "results")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "hits.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print("\n| zipf | server | hit ratio | vs memcached | vs redis | ops/s "
          "| before scan | after scan |")
    print("|---|---|---|---|---|---|---|---|")
    for skew in SKEWS:
        by = {r["kind"]: r for r in rows if r["skew"] == skew}
        for kind in KINDS:
            r = by[kind]
            mc = by.get("memcached", {}).get("hit_ratio")
            rd = by.get("redis", {}).get("hit_ratio")
            print("| %.2f | %s | %.4f | %s | %s | %.0f | %.4f | %.4f |" % (
                skew, kind, r["hit_ratio"],
                "%+.4f" % (r["hit_ratio"] - mc) if mc is not None else "-",
                "%+.4f" % (r["hit_ratio"] - rd) if rd is not None else "-",
                r["ops_per_sec"], r["before_scan"], r["after_scan"]))


if __name__ == "__main__":
    main()
