#!/usr/bin/env python3
"""What the latency histograms cost: two vitamin binaries, one without them
(BASE, e.g. a build of the commit before they were added) and one with
(TEST, default build/vitamin), under the same vitamin-benchmark load, in
alternating rounds (B T B T ...). Server pinned to BENCH_SERVER_CPU (0),
client to BENCH_CLIENT_CPU (1), as `make bench` does.

    python3 bench/bench_latency_cost.py BASE_BIN [TEST_BIN]

Per run: ops/s and the server's CPU per request (utime + stime ticks of
/proc/PID/stat over the run / ops). Prints the medians and the difference
in ns of server CPU per request. Environment: BENCH_LC_ROUNDS (7),
BENCH_LC_SECONDS (4), BENCH_LC_ARGS (the load: "-c 50 -P 16 --ratio 1:9").
Not part of `make test`: docs/performance.md quotes it.
"""

import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench as B  # noqa: E402  (free_port, proc_ticks, median, CPU pins, log)

ROUNDS = int(os.environ.get("BENCH_LC_ROUNDS", "7"))
SECONDS = float(os.environ.get("BENCH_LC_SECONDS", "4"))
ARGS = os.environ.get("BENCH_LC_ARGS", "-c 50 -P 16 --ratio 1:9").split()


def run(binary, workdir):
    srv = B.Server("vitamin", workdir)
    srv.cmd[srv.cmd.index(B.VITAMIN)] = binary
    srv.start()
    try:
        args = ["-t", str(SECONDS), "--prefill"] + ARGS
        res = B.benchmark(srv, args)
    finally:
        srv.stop()
    ops = res["ops"] if "ops" in res else res["ops_per_sec"] * SECONDS
    return {"ops_s": res["ops_per_sec"],
            "cpu_ns": res["server_ticks"] / B.CLK_TCK / ops * 1e9,
            "other": res["other_cpu_pct"]}


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    base, test = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else B.VITAMIN
    rows = {"base": [], "test": []}
    with tempfile.TemporaryDirectory() as wd:
        for rnd in range(ROUNDS):
            for kind, binary in (("base", base), ("test", test)):
                r = run(binary, wd)
                rows[kind].append(r)
                B.log("round %d %-4s %10.0f ops/s  %6.1f ns CPU/request  (others %3.0f%%)"
                      % (rnd + 1, kind, r["ops_s"], r["cpu_ns"], r["other"]))
                time.sleep(0.5)
    med = {k: {m: B.median([r[m] for r in v]) for m in ("ops_s", "cpu_ns")}
           for k, v in rows.items()}
    B.log("median base %.0f ops/s %.1f ns/request; test %.0f ops/s %.1f ns/request"
          % (med["base"]["ops_s"], med["base"]["cpu_ns"], med["test"]["ops_s"],
             med["test"]["cpu_ns"]))
    B.log("difference: %+.1f ns of server CPU per request (%+.1f%%), throughput %+.1f%%"
          % (med["test"]["cpu_ns"] - med["base"]["cpu_ns"],
             100 * (med["test"]["cpu_ns"] / med["base"]["cpu_ns"] - 1),
             100 * (med["test"]["ops_s"] / med["base"]["ops_s"] - 1)))


if __name__ == "__main__":
    main()
