#!/usr/bin/env python3
"""Hit ratio at a memory cap: Vitamin (each eviction policy) vs memcached
and Redis (allkeys-lru), same client, same workload, same run.

Workload (vitamin-benchmark): BENCH_HITS_KEYS (1000000) keys of 16 B with
32 B values, Zipf-distributed popularity with exponent S for each S in
BENCH_HITS_SKEWS (0.99,0.8), 90% gets / 10% sets, and every get that misses
followed by a set of its key (a cache filled on demand). Every server gets
the same cap, BENCH_HITS_MIB (10 MiB: about a tenth of the keyspace at
~100 B an item), and a warm-up run of BENCH_HITS_WARM seconds (20) before a
measured run of BENCH_HITS_SECONDS (20). The ttl policy needs expiries:
its sets carry a TTL of one hour (identical for every key, so it evicts in
insertion order, a FIFO). Reported: hit ratio = hits / gets of the measured
run, and ops/s.

Run through `make bench-hits`. Writes bench/results/hits.csv and prints a
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
WARM = int(os.environ.get("BENCH_HITS_WARM", "20"))
SECONDS = int(os.environ.get("BENCH_HITS_SECONDS", "20"))
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
        return {"kind": kind, "skew": skew, "hit_ratio": res["hits"] / gets,
                "ops_per_sec": res["ops_per_sec"], "gets": res["gets"],
                "hits": res["hits"], "errors": res["errors"]}
    finally:
        s.stop()


def main():
    workdir = tempfile.mkdtemp(prefix="vitamin-bench-hits-")
    rows = []
    for skew in SKEWS:
        for kind in KINDS:
            bench.log("hit ratio: %s, zipf %.2f, %d MiB, %d keys" % (kind, skew, CAP_MIB, KEYS))
            row = run(kind, skew, workdir)
            bench.log("  %.4f hits/gets, %.0f ops/s" % (row["hit_ratio"], row["ops_per_sec"]))
            rows.append(row)
    out = os.path.join(HERE, "results")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "hits.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print("\n| zipf | server | hit ratio | vs memcached | vs redis | ops/s |")
    print("|---|---|---|---|---|---|")
    for skew in SKEWS:
        by = {r["kind"]: r for r in rows if r["skew"] == skew}
        for kind in KINDS:
            r = by[kind]
            mc = by.get("memcached", {}).get("hit_ratio")
            rd = by.get("redis", {}).get("hit_ratio")
            print("| %.2f | %s | %.4f | %s | %s | %.0f |" % (
                skew, kind, r["hit_ratio"],
                "%+.4f" % (r["hit_ratio"] - mc) if mc is not None else "-",
                "%+.4f" % (r["hit_ratio"] - rd) if rd is not None else "-",
                r["ops_per_sec"]))


if __name__ == "__main__":
    main()
