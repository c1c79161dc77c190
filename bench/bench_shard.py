#!/usr/bin/env python3
"""What the sharding proxy costs: throughput and latency through nutcracker
vs straight to a node, same client (build/vitamin-benchmark), same run.

One standalone vitamin node (no broker: replication costs the same on
every path, docs/performance.md measures it) serves the memcached port
(and the Redis port when the build serves it). The same load reaches it
four ways, in alternating rounds:

  direct               client -> node
  haproxy              client -> HAProxy (haproxy/haproxy.cfg) -> node
  nutcracker           client -> nutcracker -> node
  nutcracker+haproxy   client -> nutcracker -> HAProxy -> node   (the shipped
                       topology: twemproxy/nutcracker.yml, each server a
                       pool's HAProxy)

nutcracker runs the shipped configuration with two servers (pool1, pool2)
that both lead to this one node, so it hashes every key and splits
multi-key requests as in a real deployment, while every path has the same
server behind it. The node is pinned to CPU BENCH_SERVER_CPU (0); the
client, nutcracker and HAProxy share CPU BENCH_CLIENT_CPU (1), as they
would share an application host. For each run: ops/s, p50 and p99 from
vitamin-benchmark, and the CPU each process spent per request (utime +
stime from /proc, after - before, / requests): that is where the proxy's
cost goes.

Environment: BENCH_SHARD_ROUNDS (2), BENCH_SHARD_SECONDS (3), BENCH_QUICK=1
(1 round of 2 s), BENCH_CONNS (50), BENCH_KEYSPACE (100000).
Writes bench/results/shard.csv and shard.md. Run: make bench-shard (also
part of make bench).
"""

import csv
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "scripts", "lib"))
import bench  # noqa: E402  (helpers: proc_ticks, wait_quiet, machine info)
import localcfg  # noqa: E402

QUICK = os.environ.get("BENCH_QUICK") == "1"
ROUNDS = int(os.environ.get("BENCH_SHARD_ROUNDS", "1" if QUICK else "2"))
SECONDS = float(os.environ.get("BENCH_SHARD_SECONDS", "2" if QUICK else "3"))
CONNS = bench.CONNS
KEYSPACE = bench.KEYSPACE
HOST = "127.0.0.1"
NUTCRACKER = shutil.which("nutcracker") or "/usr/sbin/nutcracker"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
PATHS = ("direct", "haproxy", "nutcracker", "nutcracker+haproxy")
WORKLOADS = [  # name, label, set:get, pipeline
    ("get90_p1", "90% get, P=1, 32 B", "1:9", 1),
    ("get90_p16", "90% get, P=16, 32 B", "1:9", 16),
]
PROXY_POOL = {"memcache": "vitamin_memcache", "redis": "vitamin_redis"}
COMMANDS = []
NOISE = ("runs start when others use < %.0f%% of a core (waiting up to %.0f s); a run where "
         "others took > %.0f%% is repeated up to %d times, the quietest kept"
         % (bench.QUIET_PCT, bench.QUIET_WAIT, bench.NOISY_PCT, bench.RETRIES))


def log(msg):
    print(msg, flush=True)


def wait_port(port, proc, what, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError("%s exited at start (%s)" % (what, proc.returncode))
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("%s does not accept on %d" % (what, port))
            time.sleep(0.05)


class Topology:
    def __init__(self, workdir):
        self.dir = workdir
        self.procs = {}
        self.port = {"vitamin": bench.free_port(), "memcache": bench.free_port(),
                     "redis": bench.free_port()}

    def _start(self, name, cmd, cpu, port):
        logf = open(os.path.join(self.dir, name + ".log"), "wb")
        p = subprocess.Popen(["taskset", "-c", cpu] + cmd, stdin=subprocess.DEVNULL,
                             stdout=logf, stderr=logf)
        self.procs[name] = p
        wait_port(port, p, name)
        return p

    def start(self):
        self._start("vitamin", [bench.VITAMIN, "--host", HOST,
                                "--port", str(self.port["vitamin"]),
                                "--memcache_port", str(self.port["memcache"]),
                                "--redis_port", str(self.port["redis"]),
                                "--memory", str(bench.MEMORY_MIB), "--log_level", "warn"],
                    bench.SERVER_CPU, self.port["vitamin"])
        time.sleep(0.2)
        self.protos = ["memcache"]
        try:
            socket.create_connection((HOST, self.port["redis"]), timeout=1).close()
            self.protos.append("redis")
        except OSError:
            log("bench_shard: this build does not serve --redis_port yet: memcached only")
        # HAProxy: the shipped file, one node in each protocol's backend
        self.hport = {p: bench.free_port() for p in self.protos}
        with open(os.path.join(ROOT, "haproxy", "haproxy.cfg")) as f:
            text = f.read()
        hcfg = os.path.join(self.dir, "haproxy.cfg")
        with open(hcfg, "w") as f:
            f.write(localcfg.haproxy(
                text.replace("log stdout format raw local0 info", "log stdout format raw local0 warning"),
                {p: self.hport[p] for p in self.protos},
                {p + "_nodes": [("node", self.port[p])] for p in self.protos}))
        self._start("haproxy", [HAPROXY, "-f", hcfg, "-db"], bench.CLIENT_CPU,
                    self.hport["memcache"])
        # two nutcrackers on the shipped file: servers pool1 and pool2 both
        # at the node, or both at HAProxy
        with open(os.path.join(ROOT, "twemproxy", "nutcracker.yml")) as f:
            ytext = f.read()
        self.nport = {}
        for name, target in (("nutcracker", self.port), ("nutcracker+haproxy", self.hport)):
            listens = {PROXY_POOL[p]: bench.free_port() for p in self.protos}
            servers = {PROXY_POOL[p]: [("pool1", target[p]), ("pool2", target[p])]
                       for p in self.protos}
            cfg = os.path.join(self.dir, name + ".yml")
            with open(cfg, "w") as f:
                f.write(localcfg.nutcracker(ytext, listens, servers))
            self._start(name, [NUTCRACKER, "-c", cfg, "-a", HOST,
                               "-s", str(bench.free_port()), "-o",
                               os.path.join(self.dir, name + ".nc.log")],
                        bench.CLIENT_CPU, listens["vitamin_memcache"])
            for p in self.protos:
                self.nport[(name, p)] = listens[PROXY_POOL[p]]
        time.sleep(0.3)

    def port_of(self, path, proto):
        if path == "direct":
            return self.port[proto]
        if path == "haproxy":
            return self.hport[proto]
        return self.nport[(path, proto)]

    def ticks(self):
        return {n: bench.proc_ticks(p.pid) for n, p in self.procs.items()}

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def run_bench(port, proto, args):
    cmd = ["taskset", "-c", bench.CLIENT_CPU, bench.BENCH, "-h", HOST, "-p", str(port),
           "--protocol", proto, "--json"] + [str(a) for a in args]
    COMMANDS.append(" ".join(cmd))
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=SECONDS + 300)
    out = p.stdout.decode().strip().splitlines()
    if not out:
        raise RuntimeError("vitamin-benchmark printed nothing (exit %d): %s"
                           % (p.returncode, p.stderr.decode()[-2000:]))
    res = json.loads(out[-1])
    res["exit"] = p.returncode
    return res


def measured(topo, path, proto, args):
    """One run in a quiet moment (bench.wait_quiet), repeated up to
    bench.RETRIES times while other processes of the machine took more than
    bench.NOISY_PCT % of a core; the quietest attempt is kept. Returns
    (result, ticks before, ticks after) of our processes."""
    best = None
    for attempt in range(bench.RETRIES + 1):
        bench.wait_quiet()
        b0, c0, t0 = bench.machine_busy_ticks(), bench.children_cpu_ticks(), topo.ticks()
        w0 = time.monotonic()
        r = run_bench(topo.port_of(path, proto), proto, args)
        wall = time.monotonic() - w0
        t1 = topo.ticks()
        ours = sum(t1[n] - t0[n] for n in t0) + bench.children_cpu_ticks() - c0
        r["other_cpu_pct"] = max(0.0, 100.0 * (bench.machine_busy_ticks() - b0 - ours)
                                 / bench.CLK_TCK / wall)
        r["attempts"] = attempt + 1
        if best is None or r["other_cpu_pct"] < best[0]["other_cpu_pct"]:
            best = (r, t0, t1)
        if r["other_cpu_pct"] <= bench.NOISY_PCT:
            break
        log("  (%s: other processes took %.0f%% of a core; again)" % (path, r["other_cpu_pct"]))
    return best


def main():
    for b in (bench.VITAMIN, bench.BENCH):
        if not os.path.exists(b):
            sys.exit("bench_shard: %s is missing; run `make` first" % b)
    for tool in (NUTCRACKER, HAPROXY):
        if not os.path.exists(tool):
            sys.exit("bench_shard: %s is missing; run `make bench-shard`" % tool)
    os.makedirs(bench.RESULTS, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="vitamin-bench-shard-")
    topo = Topology(workdir)
    rows = []
    try:
        topo.start()
        log("bench_shard: %d round(s) of %.0f s, %d connections; node on CPU %s; "
            "client, nutcracker, HAProxy on CPU %s"
            % (ROUNDS, SECONDS, CONNS, bench.SERVER_CPU, bench.CLIENT_CPU))
        for proto in topo.protos:
            r = run_bench(topo.port["memcache" if proto == "memcache" else proto], proto,
                          ["--prefill", "-n", 0, "-c", CONNS, "-P", 16, "-d", 32,
                           "-r", KEYSPACE])
            for wi, (wname, label, ratio, pipeline) in enumerate(WORKLOADS):
                log("== %s, %s" % (proto, label))
                for rnd in range(ROUNDS):
                    for path in PATHS:
                        r, t0, t1 = measured(topo, path, proto,
                                             ["-c", CONNS, "-P", pipeline, "-d", 32,
                                              "-r", KEYSPACE, "--ratio", ratio,
                                              "-t", SECONDS, "--seed", 100 * wi + rnd + 1])
                        ops = max(1, r["ops"])
                        cpu = {n: (t1[n] - t0[n]) / bench.CLK_TCK * 1e6 / ops
                               for n in t0}
                        client_us = r["client_cpu_pct"] / 100.0 * r["seconds"] * 1e6 / ops
                        row = {"protocol": proto, "workload": wname, "round": rnd + 1,
                               "path": path, "ops_per_sec": r["ops_per_sec"],
                               "p50_us": r["lat_p50_us"], "p99_us": r["lat_p99_us"],
                               "errors": r["errors"] + (r["exit"] != 0),
                               "node_us": round(cpu["vitamin"], 2),
                               "haproxy_us": round(cpu["haproxy"], 2),
                               "nutcracker_us": round(cpu["nutcracker"] + cpu["nutcracker+haproxy"], 2),
                               "client_us": round(client_us, 2),
                               "other_cpu_pct": round(r["other_cpu_pct"], 1),
                               "attempts": r["attempts"]}
                        rows.append(row)
                        log("  round %d %-19s %9.0f ops/s  p50 %5d us  p99 %6d us  CPU us/req: "
                            "node %.2f haproxy %.2f nutcracker %.2f client %.2f  "
                            "others %.0f%% CPU  errors %d"
                            % (rnd + 1, path, row["ops_per_sec"], row["p50_us"], row["p99_us"],
                               row["node_us"], row["haproxy_us"], row["nutcracker_us"],
                               row["client_us"], row["other_cpu_pct"], row["errors"]))
    finally:
        topo.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    text = summary(rows)
    with open(os.path.join(bench.RESULTS, "shard.md"), "w") as f:
        f.write(text)
    if rows:
        with open(os.path.join(bench.RESULTS, "shard.csv"), "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
            w.writeheader()
            w.writerows(rows)
    with open(os.path.join(bench.RESULTS, "shard-commands.txt"), "w") as f:
        f.write("\n".join(COMMANDS) + "\n")
    log("")
    log(text)
    log("results: bench/results/shard.{csv,md}")


def summary(rows):
    def med(xs):
        return statistics.median(xs) if xs else float("nan")
    out = ["| protocol | workload | path | ops/s | vs direct | p50 µs | p99 µs | "
           "node CPU µs/req | HAProxy | nutcracker | client | others' CPU |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for proto in sorted({r["protocol"] for r in rows}, key=lambda p: p != "memcache"):
        for wname, label, _, _ in WORKLOADS:
            med_of = {}
            for path in PATHS:
                rs = [r for r in rows if r["protocol"] == proto and r["workload"] == wname
                      and r["path"] == path]
                if not rs:
                    continue
                med_of[path] = {k: med([r[k] for r in rs]) for k in
                                ("ops_per_sec", "p50_us", "p99_us", "node_us",
                                 "haproxy_us", "nutcracker_us", "client_us",
                                 "other_cpu_pct")}
                med_of[path]["errors"] = sum(r["errors"] for r in rs)
            for path, m in med_of.items():
                base = med_of.get("direct", {}).get("ops_per_sec")
                out.append("| %s | %s | %s | %s | %s | %.0f | %.0f | %.2f | %.2f | %.2f | %.2f | %.0f%% |"
                           % (proto, label, path, "{:,.0f}".format(m["ops_per_sec"]),
                              "%.2f" % (m["ops_per_sec"] / base) if base else "n/a",
                              m["p50_us"], m["p99_us"], m["node_us"], m["haproxy_us"],
                              m["nutcracker_us"], m["client_us"], m["other_cpu_pct"]))
    errs = sum(r["errors"] for r in rows)
    out.append("")
    out.append("Medians of %d round(s) of %.0f s, %d connections, %s keys, 32 B values; "
               "the node on CPU %s, client + nutcracker + HAProxy on CPU %s; %d errors. "
               "CPU columns: each process's CPU time per request; others' CPU: what other "
               "processes of the machine took meanwhile, in %% of a core (%s)." % (
                   ROUNDS, SECONDS, CONNS, "{:,}".format(KEYSPACE), bench.SERVER_CPU,
                   bench.CLIENT_CPU, errs, NOISE))
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
