#!/usr/bin/env python3
"""Snapshot benchmark (--snapshot, --snapshot_interval): save and load time
of 1M keys of 32 B values, and client latency during background saves.

Run through `make bench-snapshot` (it installs the packages and builds). Per
round, with the server pinned to BENCH_SERVER_CPU (0) unless said otherwise
and the client to BENCH_CLIENT_CPU (1):

  1. fill: a fresh `vitamin --memory 1024 --snapshot FILE` gets
     BENCH_SNAPSHOT_KEYS (1,000,000) keys key:%012d with 32 B values
     (vitamin-benchmark --prefill -c 50 -P 16);
  2. save: SIGTERM; the save's own time and the file size come from the
     node's log line ("saved N items ... in X ms": walk, encode, write,
     fsync, rename, fsync of the folder), plus the wall time from the
     signal to the exit;
  3. load: a new process on the same file; snapshot_load_ms (read,
     validate, apply) and the wall time from exec to accepting clients;
  4. latency: for each pinning in BENCH_SNAPSHOT_PINS ("0" and "0,1": the
     writer thread shares the loop's core, or has its own), two runs of
     vitamin-benchmark -c 1 -P 1 (gets and sets 9:1 over the keys, closed
     loop, BENCH_SNAPSHOT_SECONDS = 10 s, 50 ms series): a baseline on a
     node with no background save, then a node with --snapshot_interval 2
     (a save starts every 2 s and runs under the load). Reported: the
     client's worst latency, p99 and p99.9, the saves done during the run
     and the last one's duration, and the node's own
     snapshot_save_slice_max_us (the longest loop turn spent encoding the
     save, wall clock: on a busy machine it includes preemption by other
     processes). The 1-minute load average is recorded with every row.

The summary takes medians over BENCH_SNAPSHOT_ROUNDS (3). Goals (issue 14):
save and load of 1M keys each <= 2 s on this machine; a background save
must not stall the loop for more than a few ms.

Environment: BENCH_SNAPSHOT_ROUNDS (3), BENCH_SNAPSHOT_KEYS (1000000),
BENCH_SNAPSHOT_SECONDS (10), BENCH_SNAPSHOT_PINS ("0 0,1"), BENCH_QUICK=1
(1 round, 200,000 keys, 4 s), BENCH_SERVER_CPU, BENCH_CLIENT_CPU,
BENCH_SNAPSHOT_DIR (folder of the file; default a temp folder under /tmp),
VITAMIN_BIN / BENCH_BIN. Writes bench/results/snapshot_runs.csv,
snapshot_summary.md, snapshot_env.txt and snapshot_commands.txt.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench as B  # noqa: E402  (bench/bench.py: machine info, CSV, quiet wait)

QUICK = os.environ.get("BENCH_QUICK") == "1"
ROUNDS = int(os.environ.get("BENCH_SNAPSHOT_ROUNDS", "1" if QUICK else "3"))
KEYS = int(os.environ.get("BENCH_SNAPSHOT_KEYS", "200000" if QUICK else "1000000"))
SECONDS = float(os.environ.get("BENCH_SNAPSHOT_SECONDS", "4" if QUICK else "10"))
PINS = os.environ.get("BENCH_SNAPSHOT_PINS", "0 0,1").split()
INTERVAL = 2
VITAMIN = os.environ.get("VITAMIN_BIN", B.VITAMIN)
BENCH = os.environ.get("BENCH_BIN", B.BENCH)
CLIENT_CPU = B.CLIENT_CPU
SERVER_CPU = B.SERVER_CPU
HOST = "127.0.0.1"
RESULTS = B.RESULTS
GOAL_MS = 2000
COMMANDS = []
log = B.log


class Node:
    """One vitamin process with --snapshot, its log in a file."""

    def __init__(self, path, workdir, cpus, extra=()):
        self.port = B.free_port()
        self.cmd = ["taskset", "-c", cpus, VITAMIN, "--host", HOST, "--port", str(self.port),
                    "--memory", "1024", "--log_level", "info", "--snapshot", path] + list(extra)
        self.logpath = os.path.join(workdir, "vitamin-%d.log" % self.port)

    def start(self):
        COMMANDS.append(" ".join(self.cmd))
        self.logf = open(self.logpath, "wb")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=self.logf)
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("vitamin exited at start; see %s" % self.logpath)
            try:
                socket.create_connection((HOST, self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() - t0 > 60:
                    raise RuntimeError("vitamin does not accept; see %s" % self.logpath)
                time.sleep(0.005)
        self.start_s = time.monotonic() - t0
        return self

    @property
    def pid(self):
        return self.proc.pid

    def stats(self):
        c = B.Line(self.port, timeout=30)
        try:
            return c.stats()
        finally:
            c.close()

    def stop(self):
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(120)
        took = time.monotonic() - t0
        self.logf.close()
        return took, self.proc.returncode

    def saved(self):
        """(items, bytes, ms) of the last "saved" line of its log."""
        with open(self.logpath) as f:
            hits = re.findall(r"saved (\d+) items and \d+ tombstones to .* \((\d+) bytes\) "
                              r"in (\d+) ms", f.read())
        if not hits:
            raise RuntimeError("no save in %s" % self.logpath)
        return tuple(int(x) for x in hits[-1])


def bench_client(port, args):
    cmd = ["taskset", "-c", CLIENT_CPU, BENCH, "-h", HOST, "-p", str(port), "--json"]
    cmd = [str(x) for x in cmd + list(args)]
    COMMANDS.append(" ".join(cmd))
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=600)
    lines = [json.loads(x) for x in p.stdout.decode().strip().splitlines() if x]
    if p.returncode != 0 or not lines:
        raise RuntimeError("vitamin-benchmark failed (%s): %s"
                           % (p.returncode, p.stderr.decode()[-1000:]))
    return lines[-1], [x for x in lines[:-1] if x.get("series")]


def latency_run(path, workdir, cpus, interval):
    extra = ["--snapshot_interval", str(interval)] if interval else []
    nd = Node(path, workdir, cpus, extra).start()
    B.wait_quiet()
    saves0 = int(nd.stats()["snapshot_saves"])
    res, series = bench_client(nd.port, ["-c", 1, "-P", 1, "--ratio", "1:9", "-r", KEYS,
                                         "-d", 32, "-t", SECONDS, "--series", 50])
    load1 = os.getloadavg()[0]
    st = nd.stats()
    took, rc = nd.stop()
    if rc != 0:
        raise RuntimeError("vitamin exited %s; see %s" % (rc, nd.logpath))
    worst = max(series, key=lambda s: s["lat_max_us"]) if series else {}
    return dict(
        lat_max_us=res["lat_max_us"], lat_p99_us=res["lat_p99_us"],
        lat_p999_us=res["lat_p999_us"], ops_per_sec=res["ops_per_sec"],
        saves=int(st["snapshot_saves"]) - saves0, save_ms=int(st["snapshot_save_ms"]),
        slice_max_us=int(st["snapshot_save_slice_max_us"]),
        failures=int(st["snapshot_failures"]),
        worst_interval_p99_us=worst.get("lat_p99_us"), loadavg=round(load1, 2))


def one_round(rnd, workdir, folder):
    path = os.path.join(folder, "bench-%d.snap" % rnd)
    nd = Node(path, workdir, SERVER_CPU).start()
    res, _ = bench_client(nd.port, ["--prefill", "-n", 0, "-c", 50, "-P", 16, "-d", 32,
                                    "-r", KEYS])
    st = nd.stats()
    assert int(st["curr_items"]) == KEYS, st["curr_items"]
    B.wait_quiet()
    stop_s, rc = nd.stop()
    assert rc == 0, "exit %s" % rc
    items, size, save_ms = nd.saved()
    assert items == KEYS, items

    B.wait_quiet()
    nd = Node(path, workdir, SERVER_CPU).start()
    st = nd.stats()
    assert int(st["snapshot_loaded_items"]) == KEYS, st
    load_ms, start_s = int(st["snapshot_load_ms"]), nd.start_s
    nd.stop()
    row = dict(round=rnd, loadavg=round(os.getloadavg()[0], 2), keys=KEYS, file_bytes=size,
               save_ms=save_ms,
               sigterm_to_exit_ms=round(stop_s * 1000), load_ms=load_ms,
               exec_to_serving_ms=round(start_s * 1000))
    log("round %d: save %d ms (%.1f MB; SIGTERM to exit %d ms), load %d ms (exec to "
        "serving %d ms)" % (rnd, save_ms, size / 1e6, row["sigterm_to_exit_ms"], load_ms,
                           row["exec_to_serving_ms"]))
    for cpus in PINS:
        tag = cpus.replace(",", "+")
        for name, interval in (("base", 0), ("bg", INTERVAL)):
            r = latency_run(path, workdir, cpus, interval)
            for k, v in r.items():
                row["cpu%s_%s_%s" % (tag, name, k)] = v
            log("  server on cpu %s, %s: client max %d us, p99 %d us, p99.9 %d us; "
                "%d saves of %d ms, longest loop turn on a save %d us"
                % (cpus, "background saves every %d s" % interval if interval else
                   "no save", r["lat_max_us"], r["lat_p99_us"], r["lat_p999_us"],
                   r["saves"], r["save_ms"], r["slice_max_us"]))
    os.unlink(path)
    return row


def median(rows, key):
    return B.median([r.get(key) for r in rows], empty=None)


def summary_md(rows, env):
    m = lambda k: median(rows, k)  # noqa: E731
    out = ["# Snapshot benchmark (`make bench-snapshot`)", "",
           "%d keys of 32 B values, median of %d round(s); %s, %d cores; file on %s; "
           "1-minute load average during the rounds %s (other processes share the machine)." % (
               KEYS, len(rows), env["cpu"], env["nproc"], env["folder_fs"],
               " ".join("%.1f" % r["loadavg"] for r in rows)), "",
           "| what | median | goal |", "|---|---|---|",
           "| save (walk, encode, write, fsync, rename) | %d ms | <= %d ms |" % (m("save_ms"), GOAL_MS),
           "| SIGTERM to exit (incl. the save) | %d ms | |" % m("sigterm_to_exit_ms"),
           "| load (read, validate, apply) | %d ms | <= %d ms |" % (m("load_ms"), GOAL_MS),
           "| exec to serving (incl. the load) | %d ms | |" % m("exec_to_serving_ms"),
           "| file size | %.1f MB | |" % (m("file_bytes") / 1e6), "",
           "Client latency (vitamin-benchmark -c 1 -P 1, gets:sets 9:1, %g s) without and "
           "with a background save every %d s:" % (SECONDS, INTERVAL), "",
           "| server cpus | saves | save ms | longest loop turn on a save | client max | "
           "client p99.9 | client p99 | baseline max | baseline p99.9 | baseline p99 |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for cpus in PINS:
        t = "cpu%s_" % cpus.replace(",", "+")
        out.append("| %s | %s | %s | %s us | %s us | %s us | %s us | %s us | %s us | %s us |" % (
            cpus, m(t + "bg_saves"), m(t + "bg_save_ms"), m(t + "bg_slice_max_us"),
            m(t + "bg_lat_max_us"), m(t + "bg_lat_p999_us"), m(t + "bg_lat_p99_us"),
            m(t + "base_lat_max_us"), m(t + "base_lat_p999_us"), m(t + "base_lat_p99_us")))
    return "\n".join(out) + "\n"


def main():
    for f in (VITAMIN, BENCH):
        if not os.path.exists(f):
            sys.exit("bench_snapshot: %s is missing; run `make` first" % f)
    os.makedirs(RESULTS, exist_ok=True)
    B.VITAMIN, B.BENCH = VITAMIN, BENCH
    os.sched_setaffinity(0, {int(CLIENT_CPU)})
    workdir = tempfile.mkdtemp(prefix="vitamin-bench-snapshot-")
    folder = os.environ.get("BENCH_SNAPSHOT_DIR", workdir)
    env = B.machine()
    for k in ("redis", "memcached", "connections", "keyspace", "seconds"):
        env.pop(k, None)
    fs = subprocess.run(["df", "-T", folder], capture_output=True, text=True).stdout.split("\n")
    env.update(rounds=ROUNDS, keys=KEYS, seconds=SECONDS, pins=" ".join(PINS),
               folder=folder, folder_fs=" ".join(fs[1].split()[:2]) if len(fs) > 1 else "?")
    log("bench-snapshot: %d round(s) of %d keys, file in %s (%s)"
        % (ROUNDS, KEYS, folder, env["folder_fs"]))
    rows = []
    try:
        for rnd in range(1, ROUNDS + 1):
            rows.append(one_round(rnd, workdir, folder))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    B.write_csv(os.path.join(RESULTS, "snapshot_runs.csv"), rows)
    with open(os.path.join(RESULTS, "snapshot_env.txt"), "w") as f:
        for k, v in env.items():
            f.write("%s: %s\n" % (k, v))
    with open(os.path.join(RESULTS, "snapshot_commands.txt"), "w") as f:
        f.write("\n".join(COMMANDS) + "\n")
    text = summary_md(rows, env)
    with open(os.path.join(RESULTS, "snapshot_summary.md"), "w") as f:
        f.write(text)
    log("")
    log(text)
    log("results: bench/results/snapshot_runs.csv, snapshot_summary.md")


if __name__ == "__main__":
    main()
