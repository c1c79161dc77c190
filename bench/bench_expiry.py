#!/usr/bin/env python3
"""Expiry-wave benchmark: 1M keys expiring within the same second while a
client runs gets.

Run through `make bench-expiry` (it installs the packages and builds). Per
round, on a fresh `vitamin --memory 1024` pinned to CPU BENCH_SERVER_CPU (0),
everything else on BENCH_CLIENT_CPU (1):

  1. load: vitamin-benchmark --prefill of BENCH_EXPIRY_KEYS (1,000,000) keys
     key:%012d with 32 B values and no TTL (-c 50 -P 16);
  2. baseline: vitamin-benchmark -c 1 -P 1, 100% gets over those keys, for
     as long as the wave run below, with no wave: the latency floor of this
     machine at that moment;
  3. expire pass: one pipelined connection sends expire("key:...",T) for
     every key, in chunks of 10,000. TTLs are whole seconds relative to the
     server's clock, so each chunk gets T = round(target - now), which puts
     every key's expiry within +-0.5 s of one target instant, about
     BENCH_EXPIRY_LEAD (4) s after the pass starts, however long the pass
     takes (it must end before the target; the report says how it went);
  4. wave: from 1 s before the target, vitamin-benchmark -c 1 -P 1 runs gets
     over the same keys (hits turn into misses as keys expire) with a
     latency line every 50 ms (--series 50), while this script samples
     stats() every 10 ms (curr_items, expired) on another connection, until
     curr_items is 0 plus 1 s.

Reported per round: the get client's worst latency and p99 over the wave
run, the worst 50 ms interval (its p99 and max) and when it was relative to
the wave, the baseline's max and p99, the wave's start (first sample with
fewer items) and how long until curr_items reached 0, items expired, the
server's CPU and RSS, and the server's own account of its longest expiry
timer turn (stats expiry_turn_max_us, wall clock, and
expiry_turn_cpu_max_us, its CPU time: the part other processes on the
core cannot inflate), read before the expire pass and after the wave. The
summary takes medians over BENCH_EXPIRY_ROUNDS (3).

Environment: BENCH_EXPIRY_ROUNDS (3), BENCH_EXPIRY_KEYS (1000000),
BENCH_EXPIRY_LEAD (4), BENCH_QUICK=1 (1 round of 200,000 keys),
BENCH_SERVER_CPU, BENCH_CLIENT_CPU, VITAMIN_BIN / BENCH_BIN. Writes
bench/results/expiry_{runs,series,items}.csv, expiry_summary.md,
expiry_env.txt and expiry_commands.txt.
"""

import json
import math
import os
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench as B  # noqa: E402  (bench/bench.py: CPU accounting, quiet wait)

QUICK = os.environ.get("BENCH_QUICK") == "1"
ROUNDS = int(os.environ.get("BENCH_EXPIRY_ROUNDS", "1" if QUICK else "3"))
KEYS = int(os.environ.get("BENCH_EXPIRY_KEYS", "200000" if QUICK else "1000000"))
LEAD = float(os.environ.get("BENCH_EXPIRY_LEAD", "4"))
VITAMIN = os.environ.get("VITAMIN_BIN", B.VITAMIN)
BENCH = os.environ.get("BENCH_BIN", B.BENCH)
SERVER_CPU = B.SERVER_CPU
CLIENT_CPU = B.CLIENT_CPU
HOST = "127.0.0.1"
CHUNK = 10000
SERIES_S = 0.05  # the get client's latency line interval
TARGET_MS = 5.0  # issue 5: no client request waits more than 5 ms
RESULTS = B.RESULTS
COMMANDS = []
log = B.log


def median(xs):
    return B.median(xs, empty=None)


Line = B.Line  # the shared line client (bench/bench.py)


def expire_pass(port, target):
    """Pipeline expire("key:...",T) for every key, T chosen per chunk so that
    now + T is as close to target (time.time()) as whole seconds allow.
    Returns (seconds taken, earliest and latest planned expiry relative to
    target, replies that were not OK)."""
    sock = socket.create_connection((HOST, port), timeout=60)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    want = KEYS * 3  # every reply is "OK\n"
    got = [0, 0]     # bytes, "OK\n" count

    def reader():
        tail = b""
        while got[0] < want:
            d = sock.recv(1 << 20)
            if not d:
                break
            got[0] += len(d)
            d = tail + d
            got[1] += d.count(b"OK\n")
            tail = d[-2:]
    th = threading.Thread(target=reader, daemon=True)
    th.start()
    planned = []
    t0 = time.time()
    for lo in range(0, KEYS, CHUNK):
        now = time.time()
        ttl = max(1, int(round(target - now)))
        planned.append(now + ttl - target)
        sock.sendall(b"".join(b'expire("key:%012d",%d)\n' % (k, ttl)
                              for k in range(lo, min(KEYS, lo + CHUNK))))
    th.join(120)
    took = time.time() - t0
    sock.close()
    return took, min(planned), max(planned), KEYS - got[1]


class Sampler(threading.Thread):
    def __init__(self, port):
        super().__init__(daemon=True)
        self.c = Line(port)
        self.samples = []  # (unix time, curr_items, expired)
        self.stop_ev = threading.Event()

    def run(self):
        while not self.stop_ev.is_set():
            st = self.c.stats()
            self.samples.append((time.time(), int(st["curr_items"]),
                                 int(st["expired"])))
            time.sleep(0.01)

    def stop(self):
        self.stop_ev.set()
        self.join()
        self.c.close()


def get_client(port, seconds):
    """vitamin-benchmark -c 1 -P 1, gets only, with 50 ms series lines."""
    cmd = ["taskset", "-c", CLIENT_CPU, BENCH, "-h", HOST, "-p", str(port),
           "--json", "-c", 1, "-P", 1, "--ratio", "0:1", "-r", KEYS,
           "-t", "%.1f" % seconds, "--series", int(SERIES_S * 1000)]
    cmd = [str(x) for x in cmd]
    COMMANDS.append(" ".join(cmd))
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def finish_client(p):
    out, err = p.communicate(timeout=600)
    lines = [json.loads(x) for x in out.decode().strip().splitlines() if x]
    if not lines or p.returncode != 0:
        raise RuntimeError("vitamin-benchmark failed (%s): %s"
                           % (p.returncode, err.decode()[-1000:]))
    return lines[-1], [x for x in lines[:-1] if x.get("series")]


def one_round(rnd, workdir, series_rows, item_rows):
    B.SERVER_CPU = SERVER_CPU
    srv = B.Server("vitamin", workdir).start()
    try:
        rss0 = B.rss_bytes(srv.pid)
        r = B.benchmark(srv, ["--prefill", "-n", 0, "-c", 50, "-P", 16, "-d", 32,
                              "-r", KEYS])
        COMMANDS.append(B.COMMANDS[-1])
        c = Line(srv.port)
        st = c.stats()
        assert int(st["curr_items"]) == KEYS, st["curr_items"]
        rss1 = B.rss_bytes(srv.pid)
        run_secs = LEAD + 3.0  # 1 s before the target until ~2 s after
        B.wait_quiet()
        # baseline: the same get client, no wave
        t = B.proc_ticks(srv.pid)
        base, _ = finish_client(get_client(srv.port, run_secs))
        base_cpu = 100.0 * (B.proc_ticks(srv.pid) - t) / B.CLK_TCK / run_secs
        # the server's own longest expiry turn so far (load, rehash, idle)
        st0 = c.stats()
        # the expire pass
        B.wait_quiet()
        start = time.time()
        target = start + LEAD
        took, early, late, bad = expire_pass(srv.port, target)
        log("  round %d: expire pass of %d keys took %.2f s (%.0f/s); expiries "
            "planned %+.2f .. %+.2f s around the target, %.2f s after the pass; "
            "%d replies not OK" % (rnd, KEYS, took, KEYS / took, early, late,
                                   target - (start + took), bad))
        # the wave: gets from 1 s before the target
        smp = Sampler(srv.port)
        smp.start()
        wait = target - 1.0 - time.time()
        if wait > 0:
            time.sleep(wait)
        t0_ticks, b0 = B.proc_ticks(srv.pid), B.machine_busy_ticks()
        cw = B.children_cpu_ticks()
        w0 = time.time()
        p = get_client(srv.port, run_secs)
        # until curr_items is 0 (and 1 s more), at most 60 s
        deadline = time.time() + 60
        while time.time() < deadline:
            if smp.samples and smp.samples[-1][1] == 0:
                break
            time.sleep(0.05)
        zero_at = time.time()
        time.sleep(1.0)
        summ, series = finish_client(p)
        wall = time.time() - w0
        srv_ticks = B.proc_ticks(srv.pid) - t0_ticks
        other = (B.machine_busy_ticks() - b0 - srv_ticks
                 - (B.children_cpu_ticks() - cw))
        smp.stop()
        st = c.stats()
        rss2 = B.rss_bytes(srv.pid)
        c.close()
        s = smp.samples
        first = next((x for x in s if x[1] < KEYS), None)
        last = next((x for x in s if x[1] == 0), None)
        for x in s:
            item_rows.append({"round": rnd, "t_from_target": round(x[0] - target, 3),
                              "curr_items": x[1], "expired": x[2]})
        for x in series:
            series_rows.append({"round": rnd,
                                "t_from_target": round(x["time"] - target, 3),
                                "ops": x["ops"], "p50_us": x["lat_p50_us"],
                                "p99_us": x["lat_p99_us"], "max_us": x["lat_max_us"]})
        worst = max(series, key=lambda x: x["lat_max_us"]) if series else None
        # the intervals that overlap the wave (first fewer items .. zero)
        if first and last:
            inw = [x for x in series if x["time"] >= first[0] - 0.02
                   and x["time"] - SERIES_S <= last[0] + 0.02]
        else:
            inw = []
        outw = [x for x in series if x not in inw]
        row = {
            "round": rnd, "keys": KEYS, "load_secs": r["prefill_secs"],
            "pass_secs": round(took, 2), "planned_early_s": round(early, 2),
            "planned_late_s": round(late, 2),
            "wave_start_s": round(first[0] - target, 3) if first else None,
            "wave_secs": round(last[0] - first[0], 3) if first and last else None,
            "items_left": s[-1][1] if s else None,
            "expired": int(st["expired"]),
            "get_ops_per_sec": summ["ops_per_sec"],
            "get_p50_us": summ["lat_p50_us"], "get_p99_us": summ["lat_p99_us"],
            "get_p999_us": summ["lat_p999_us"], "get_max_us": summ["lat_max_us"],
            "intervals_over_5ms": sum(1 for x in series
                                      if x["lat_max_us"] > TARGET_MS * 1000),
            "wave_intervals_over_5ms": sum(1 for x in inw
                                           if x["lat_max_us"] > TARGET_MS * 1000),
            "wave_max_us": max((x["lat_max_us"] for x in inw), default=None),
            "wave_worst_p99_us": max((x["lat_p99_us"] for x in inw), default=None),
            "wave_gets": sum(x["ops"] for x in inw),
            # intervals wholly inside the wave (None if it is shorter)
            "wave_gets_per_sec": median(
                [x["ops"] / SERIES_S for x in inw
                 if x["time"] - SERIES_S >= first[0] and x["time"] <= last[0]]
                or [None]),
            "wave_p50_us": median([x["lat_p50_us"] for x in inw]) if inw else None,
            "outside_max_us": max((x["lat_max_us"] for x in outw), default=None),
            "worst_interval_s": round(worst["time"] - target, 2) if worst else None,
            "worst_interval_p99_us": worst["lat_p99_us"] if worst else None,
            "base_p99_us": base["lat_p99_us"], "base_p999_us": base["lat_p999_us"],
            "base_max_us": base["lat_max_us"],
            "server_cpu_pct_wave": round(100.0 * srv_ticks / B.CLK_TCK / wall, 1),
            "server_cpu_pct_base": round(base_cpu, 1),
            "other_cpu_pct": round(max(0.0, 100.0 * other / B.CLK_TCK / wall), 1),
            "rss_mib_empty": round(rss0 / 2**20, 1),
            "rss_mib_loaded": round(rss1 / 2**20, 1),
            "rss_mib_after": round(rss2 / 2**20, 1),
            "zero_seen_s": round(zero_at - target, 2),
            # the expiry timer's longest loop turn (server side, since
            # start): before the wave, and after it, wall and CPU
            "turn_max_us_before": int(st0["expiry_turn_max_us"]),
            "turn_max_us": int(st["expiry_turn_max_us"]),
            "turn_cpu_max_us": int(st["expiry_turn_cpu_max_us"]),
        }
        log("  round %d: wave from %+.3f s (target = 0), curr_items 0 after %s s; "
            "%d expired; gets %.0f/s, p50 %d us, p99 %d us, p99.9 %d us, max %d us "
            "(worst 50 ms at %+.2f s: p99 %d us); within the wave: max %s us, worst "
            "p99 %s us, p50 %s us, %s gets/s; outside it max %s us; baseline p99 %d us, max %d us; "
            "server CPU %.0f%% (baseline %.0f%%); others %.0f%%; RSS %.0f -> %.0f -> "
            "%.0f MiB; longest expiry turn %d us (CPU %d us; %d us before the wave)"
            % (rnd, row["wave_start_s"] if first else float("nan"), row["wave_secs"],
               row["expired"], row["get_ops_per_sec"], row["get_p50_us"],
               row["get_p99_us"], row["get_p999_us"], row["get_max_us"],
               row["worst_interval_s"] or 0, row["worst_interval_p99_us"] or 0,
               row["wave_max_us"], row["wave_worst_p99_us"], row["wave_p50_us"],
               row["wave_gets_per_sec"],
               row["outside_max_us"],
               row["base_p99_us"], row["base_max_us"], row["server_cpu_pct_wave"],
               row["server_cpu_pct_base"], row["other_cpu_pct"],
               row["rss_mib_empty"], row["rss_mib_loaded"], row["rss_mib_after"],
               row["turn_max_us"], row["turn_cpu_max_us"], row["turn_max_us_before"]))
        return row
    finally:
        srv.stop()


def summary_md(rows, env):
    def m(k, d=0):
        v = median([r[k] for r in rows])
        return "n/a" if v is None else ("{:,.%df}" % d).format(v)

    def each(k, d=0):
        return ", ".join("n/a" if r[k] is None else ("{:,.%df}" % d).format(r[k])
                         for r in rows)
    out = ["| metric | median | runs |", "|---|---:|---|"]
    for label, k, d in [
            ("keys", "keys", 0),
            ("expire pass, s", "pass_secs", 2),
            ("planned expiries, earliest vs target, s", "planned_early_s", 2),
            ("planned expiries, latest vs target, s", "planned_late_s", 2),
            ("wave start vs target, s", "wave_start_s", 3),
            ("wave: first fewer items -> curr_items 0, s", "wave_secs", 3),
            ("items expired (stats expired)", "expired", 0),
            ("within the wave: worst get latency, µs", "wave_max_us", 0),
            ("within the wave: worst 50 ms interval's p99, µs", "wave_worst_p99_us", 0),
            ("within the wave: gets answered", "wave_gets", 0),
            ("within the wave: gets/s (one connection, P=1; median of the 50 ms intervals inside it)", "wave_gets_per_sec", 0),
            ("within the wave: median of the 50 ms intervals' p50, µs", "wave_p50_us", 0),
            ("within the wave: 50 ms intervals with a get over 5 ms", "wave_intervals_over_5ms", 0),
            ("outside the wave (same run): worst get latency, µs", "outside_max_us", 0),
            ("whole run (1 s before .. 6 s after the target): worst get, µs", "get_max_us", 0),
            ("whole run: p99.9, µs", "get_p999_us", 0),
            ("whole run: p99, µs", "get_p99_us", 0),
            ("whole run: p50, µs", "get_p50_us", 0),
            ("whole run: gets/s", "get_ops_per_sec", 0),
            ("whole run: 50 ms intervals with a get over 5 ms", "intervals_over_5ms", 0),
            ("whole run: worst 50 ms interval, s vs target", "worst_interval_s", 2),
            ("baseline (no wave): max, µs", "base_max_us", 0),
            ("baseline (no wave): p99.9, µs", "base_p999_us", 0),
            ("baseline (no wave): p99, µs", "base_p99_us", 0),
            ("server CPU during the wave run, %", "server_cpu_pct_wave", 0),
            ("server CPU during the baseline, %", "server_cpu_pct_base", 0),
            ("other processes' CPU during the wave run, %", "other_cpu_pct", 0),
            ("RSS empty, MiB", "rss_mib_empty", 0),
            ("RSS loaded, MiB", "rss_mib_loaded", 0),
            ("RSS after the wave, MiB", "rss_mib_after", 0),
            ("server: longest expiry timer turn (wall), µs", "turn_max_us", 0),
            ("server: most CPU in one expiry timer turn, µs", "turn_cpu_max_us", 0),
            ("server: longest expiry timer turn before the wave (load, baseline), µs",
             "turn_max_us_before", 0)]:
        out.append("| %s | %s | %s |" % (label, m(k, d), each(k, d)))
    out.append("")
    out.append("Vitamin %s; %s; server on CPU %s, clients on CPU %s; %d round(s); "
               "target: no get waits more than %.0f ms."
               % (env["commit"], env["vitamin"], SERVER_CPU, CLIENT_CPU, len(rows),
                  TARGET_MS))
    return "\n".join(out) + "\n"


def main():
    for f in (VITAMIN, BENCH):
        if not os.path.exists(f):
            sys.exit("bench_expiry: %s is missing; run `make` first" % f)
    os.makedirs(RESULTS, exist_ok=True)
    B.VITAMIN, B.BENCH = VITAMIN, BENCH
    os.sched_setaffinity(0, {int(CLIENT_CPU)})
    env = B.machine()
    for k in ("redis", "memcached", "connections", "keyspace", "seconds"):
        env.pop(k, None)
    env.update(rounds=ROUNDS, keys=KEYS, lead_s=LEAD)
    log("bench-expiry: %d round(s) of %d keys; %s; %s"
        % (ROUNDS, KEYS, env["vitamin"], env["pinning"]))
    workdir = B.tempfile.mkdtemp(prefix="vitamin-bench-expiry-")
    rows, series, items = [], [], []
    try:
        for rnd in range(1, ROUNDS + 1):
            rows.append(one_round(rnd, workdir, series, items))
    finally:
        B.shutil.rmtree(workdir, ignore_errors=True)
    B.write_csv(os.path.join(RESULTS, "expiry_runs.csv"), rows)
    B.write_csv(os.path.join(RESULTS, "expiry_series.csv"), series)
    B.write_csv(os.path.join(RESULTS, "expiry_items.csv"), items)
    with open(os.path.join(RESULTS, "expiry_env.txt"), "w") as f:
        for k, v in env.items():
            f.write("%s: %s\n" % (k, v))
    with open(os.path.join(RESULTS, "expiry_commands.txt"), "w") as f:
        f.write("\n".join(COMMANDS) + "\n")
    text = summary_md(rows, env)
    with open(os.path.join(RESULTS, "expiry_summary.md"), "w") as f:
        f.write(text)
    log("")
    log(text)
    log("results: bench/results/expiry_{runs,series,items}.csv, expiry_summary.md")


if __name__ == "__main__":
    main()
