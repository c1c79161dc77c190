#!/usr/bin/env python3
"""Replication benchmark: two Vitamin nodes and a private RabbitMQ broker
(parts a-c), or a private three-node RabbitMQ cluster (part d).

Run through `make bench-repl` (it installs the packages and builds). Four
parts, each repeated BENCH_REPL_ROUNDS times (3), the reported figure being
the median over the rounds:

  a) throughput: closed-loop 100% sets on node A (vitamin-benchmark -c 50
     -P 16, 1M keys, 32 B values) for BENCH_REPL_SECONDS (10 s). Reports A's
     ops/s, A's publish rate (repl_published), B's apply rate while the load
     runs (repl_applied sampled every 10 ms), whether and when B caught up
     (repl_queue on A back to 0, items_digest equal on A and B), and the
     end-to-end replicated rate: writes / (time from start to caught up).
  b) lag at fixed offered rates (BENCH_REPL_RATES, 10k 50k 100k 200k sets/s,
     open loop: vitamin-benchmark --rate). Two measurements at once:
       - stats: repl_lag_ms_last of B sampled every 10 ms (samples taken
         when B applied something since the previous sample), its p50/p99,
         plus B's own repl_lag_ms_max for the run (nodes are fresh per run);
       - probe: a separate process sets a unique key on A every 20 ms and
         polls B with get() every 0.2 ms until the key is there; lag = from
         sending the set to A to reading it on B (includes two client round
         trips, so it over-reads by ~0.1-0.5 ms).
  c) --replication_ack=confirm vs async: 100% sets on A (A and B fresh per
     run), -c 50 at P=1 and P=16 and -c 1 at P=1, BENCH_REPL_CSECONDS (5 s)
     each, async and confirm alternating in every round.

  d) a three-node RabbitMQ cluster (tests/e2e/cluster.py, booted once)
     with quorum queues against the single broker with classic queues, in
     the same run, the two setups alternating within each round: a)'s
     closed-loop throughput and b)'s lag at BENCH_REPL_D_RATE (50k sets/s),
     A and B being given every cluster node's address (--rabbitmq_host
     h1:p1,h2:p2,h3:p3). Then BENCH_REPL_FAIL_TRIALS (5) failover trials:
     A and B on the cluster, A under BENCH_REPL_FAIL_RATE (5000) sets/s,
     the broker node A's consumer uses (stats repl_broker) is SIGKILLed;
     right after, one set on A and one on B; replication has resumed when
     each is readable on the other node (polled every 2 ms). Also timed:
     when A reports another broker node. The node is booted again and the
     cluster waited healthy between trials (not timed).
     Only part d: BENCH_REPL_PARTS=d make bench-repl (~7 min here;
     BENCH_QUICK=1 for a ~2.5 min smoke run: 1 round of 3 s, 2 trials).

Nodes are started fresh for every run (same node ids, so the broker queues
are reused and stay two); the broker lives for the whole benchmark. Nothing
is pinned: A, B, the broker and the client share the two cores, as they
would on one small host; the CPU each of them used is recorded per run.

Environment: BENCH_REPL_ROUNDS (3), BENCH_REPL_SECONDS (10),
BENCH_REPL_CSECONDS (5), BENCH_REPL_RATES ("10000 50000 100000 200000"),
BENCH_REPL_PARTS ("a b c d"), BENCH_REPL_D_RATE (50000),
BENCH_REPL_FAIL_TRIALS (5; 2 quick), BENCH_REPL_FAIL_RATE (5000, 0 = no
load), BENCH_REPL_OUTBOX (outbox MiB, 64 = the
default), BENCH_QUICK=1 (1 round, short runs), VITAMIN_BIN / BENCH_BIN
(binaries; default build/). Writes bench/results/repl_{runs,lag,confirm}.csv,
repl_timeline.csv, repl_cluster_{throughput,lag}.csv, repl_failover.csv,
repl_summary.md, repl_env.txt and repl_commands.txt.
"""

import csv
import json
import os
import re
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

import bench as B  # noqa: E402  (bench/bench.py: CPU accounting, quiet wait)

QUICK = os.environ.get("BENCH_QUICK") == "1"
ROUNDS = int(os.environ.get("BENCH_REPL_ROUNDS", "1" if QUICK else "3"))
SECONDS = float(os.environ.get("BENCH_REPL_SECONDS", "3" if QUICK else "10"))
CSECONDS = float(os.environ.get("BENCH_REPL_CSECONDS", "2" if QUICK else "5"))
RATES = [int(x) for x in os.environ.get(
    "BENCH_REPL_RATES", "10000 50000 100000 200000").split()]
PARTS = os.environ.get("BENCH_REPL_PARTS", "a b c d").split()
# part d: cluster vs single broker, and failover
D_RATE = int(os.environ.get("BENCH_REPL_D_RATE", "50000"))
FAIL_TRIALS = int(os.environ.get("BENCH_REPL_FAIL_TRIALS", "2" if QUICK else "5"))
FAIL_RATE = int(os.environ.get("BENCH_REPL_FAIL_RATE", "5000"))
FAIL_SECONDS = 6
FAIL_POLL_S = 0.002
D_QUIET_WAIT = 5.0   # an idle RabbitMQ cluster is never quite quiet
OUTBOX = int(os.environ.get("BENCH_REPL_OUTBOX", "64"))
CATCHUP_MAX = float(os.environ.get("BENCH_REPL_CATCHUP_MAX", "180"))
VITAMIN = os.environ.get("VITAMIN_BIN", B.VITAMIN)
BENCH = os.environ.get("BENCH_BIN", B.BENCH)
os.environ["VITAMIN_BIN"] = VITAMIN  # for rabbit.py's defaults
HOST = "127.0.0.1"
KEYSPACE = 1000000
CONNS = 50
PIPELINE = 16
SAMPLE_S = 0.010
PROBE_EVERY_S = 0.020
PROBE_POLL_S = 0.0002
EXCHANGE = "vbench"
CLK_TCK = B.CLK_TCK
RESULTS = B.RESULTS
COMMANDS = []

log = B.log


median = B.median


def pct(xs, q):
    """Nearest-rank percentile (q in 0..100) of xs; nan when empty."""
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = max(0, min(len(xs) - 1, int(-(-q * len(xs) // 100)) - 1))
    return xs[k]


Line = B.Line  # the shared line client (bench/bench.py)


def ival(st, k):
    try:
        return int(st[k])
    except (KeyError, ValueError):
        return 0


# --------------------------------------------------------------------------
# nodes

class Bus:
    """Where a pair replicates: a single broker (rabbit.Broker) or a cluster
    (cluster.Cluster), with the flags its nodes get (queue type) and its
    own exchange (so that the queues of one setup are never redeclared
    with another setup's arguments)."""

    def __init__(self, name, broker=None, cluster=None, exchange=EXCHANGE,
                 flags=()):
        self.name = name
        self.broker, self.cluster = broker, cluster
        self.exchange = exchange
        self.flags = list(flags)

    def hosts(self):
        if self.cluster is not None:
            return self.cluster.hosts()
        return "%s:%d" % (HOST, self.broker.port)

    def pids(self):
        """{"broker": pid} or {"broker0": pid, "broker1": ...}."""
        if self.cluster is not None:
            return {"broker%d" % i: nd.beam_pid()
                    for i, nd in enumerate(self.cluster)}
        return {"broker": self.broker.beam_pid()}


class Node:
    def __init__(self, node_id, bus, workdir, extra=()):
        self.node_id = node_id
        self.port = B.free_port()
        self.cmd = [VITAMIN, "--host", HOST, "--port", str(self.port),
                    "--memory", "1024", "--log_level", "info",
                    "--node_id", node_id, "--rabbitmq_host", bus.hosts(),
                    "--rabbitmq_exchange", bus.exchange,
                    "--outbox_size", str(OUTBOX)] + bus.flags + \
            [str(x) for x in extra]
        self.logpath = os.path.join(workdir, "%s-%d.log" % (node_id, self.port))
        self.proc = None
        self.c = None

    def start(self):
        self.logf = open(self.logpath, "ab")
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=self.logf)
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited at start; see %s"
                                   % (self.node_id, self.logpath))
            try:
                self.c = Line(self.port)
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("%s does not accept" % self.node_id)
                time.sleep(0.02)

    @property
    def pid(self):
        return self.proc.pid

    def stats(self):
        return self.c.stats()

    def stop(self):
        if self.c:
            self.c.close()
            self.c = None
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.logf.close()

    def log_tail(self, n=3000):
        try:
            with open(self.logpath, "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""


def start_pair(broker, workdir, a_extra=()):
    """Fresh A and B replicating through broker (a Bus); returns once both have started their joining state
    transfer and report repl_state up (the transfer is over: both are
    empty, so it is quick)."""
    a = Node("bench-a", broker, workdir, a_extra).start()
    b = Node("bench-b", broker, workdir).start()
    deadline = time.monotonic() + 30
    for nd in (a, b):
        while True:
            st = nd.stats()
            if st.get("repl_state") == "up" and ival(st, "sync_started") >= 1:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("%s not up:\n%s" % (nd.node_id, nd.log_tail()))
            time.sleep(0.05)
    time.sleep(0.2)
    return a, b


def stop_pair(a, b):
    for nd in (a, b):
        nd.stop()


def wait_caught_up(a, b, t_end, timeout=CATCHUP_MAX):
    """After the load: wait until A's outbox is empty and the digests are
    equal. Returns (seconds after t_end when the queue emptied, seconds
    after t_end when the digests matched) (None for what never happened)."""
    q0 = dig = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sa = a.stats()
        now = time.monotonic()
        if q0 is None and ival(sa, "repl_queue") == 0:
            q0 = now - t_end
        if q0 is not None:
            sb = b.stats()
            if sa.get("items_digest") == sb.get("items_digest"):
                dig = time.monotonic() - t_end
                return q0, dig
        time.sleep(0.02)
    return q0, dig


# --------------------------------------------------------------------------
# sampling B (and A) during a run

class Sampler(threading.Thread):
    """Every SAMPLE_S: B's repl_applied and repl_lag_ms_last, A's
    repl_published, repl_queue and cmd_set. samples: (t, ...) tuples."""

    def __init__(self, a, b):
        super().__init__(daemon=True)
        self.ca = Line(a.port)
        self.cb = Line(b.port)
        self.samples = []
        self.stop_ev = threading.Event()

    def run(self):
        nxt = time.monotonic()
        while not self.stop_ev.is_set():
            sb = self.cb.stats()
            sa = self.ca.stats()
            self.samples.append((time.monotonic(), ival(sb, "repl_applied"),
                                 ival(sb, "repl_lag_ms_last"),
                                 ival(sa, "repl_published"),
                                 ival(sa, "repl_queue"), ival(sa, "cmd_set")))
            nxt += SAMPLE_S
            d = nxt - time.monotonic()
            if d > 0:
                time.sleep(d)
            else:
                nxt = time.monotonic()

    def stop(self):
        self.stop_ev.set()
        self.join()
        self.ca.close()
        self.cb.close()

    def lag_samples(self, t0, t1):
        """repl_lag_ms_last of samples in [t0, t1] where B applied
        something since the sample before."""
        out = []
        s = self.samples
        for i in range(1, len(s)):
            if t0 <= s[i][0] <= t1 and s[i][1] > s[i - 1][1]:
                out.append(s[i][2])
        return out

    def rate(self, t0, t1, col):
        """Increase of column col per second between the samples nearest
        to t0 and t1."""
        win = [x for x in self.samples if t0 <= x[0] <= t1]
        if len(win) < 2:
            return float("nan")
        return (win[-1][col] - win[0][col]) / (win[-1][0] - win[0][0])

    def per_second(self, t0, t1, col):
        """Rates of column col over each whole second in [t0, t1]."""
        out = []
        t = t0
        while t + 1.0 <= t1 + 1e-9:
            out.append(self.rate(t, t + 1.0, col))
            t += 1.0
        return out


def probe_main(argv):
    """`bench_repl.py probe A_PORT B_PORT SECONDS TAG`: set a unique key on A
    every PROBE_EVERY_S, poll B until it appears; print the lags (ms) as a
    JSON list. Runs as its own process so that the sampler's work (and the
    GIL) does not delay it."""
    pa, pb, secs, tag = int(argv[0]), int(argv[1]), float(argv[2]), argv[3]
    ca, cb = Line(pa), Line(pb)
    lags, lost = [], 0
    end = time.monotonic() + secs
    i = 0
    while time.monotonic() < end:
        key = b'probe:%s:%d' % (tag.encode(), i)
        i += 1
        t0 = time.monotonic()
        ca.cmd(b'set("%s","x")' % key)
        give_up = t0 + 10.0
        while True:
            r = cb.cmd(b'get("%s")' % key)
            if r == b"x":
                lags.append((time.monotonic() - t0) * 1000.0)
                break
            if time.monotonic() > give_up:
                lost += 1
                break
            time.sleep(PROBE_POLL_S)
        nxt = t0 + PROBE_EVERY_S
        d = nxt - time.monotonic()
        if d > 0:
            time.sleep(d)
    print(json.dumps({"lags_ms": lags, "lost": lost}))


# --------------------------------------------------------------------------
# CPU of the processes involved

class Cpu:
    def __init__(self, pids):
        self.pids = pids
        self.t0 = {k: B.proc_ticks(p) for k, p in pids.items()}
        self.b0 = B.machine_busy_ticks()
        self.c0 = B.children_cpu_ticks()
        self.w0 = time.monotonic()

    def done(self):
        wall = time.monotonic() - self.w0
        out = {}
        ours = 0
        for k, p in self.pids.items():
            try:
                d = B.proc_ticks(p) - self.t0[k]
            except OSError:
                d = 0
            ours += d
            out[k + "_cpu_pct"] = round(100.0 * d / CLK_TCK / wall, 1)
        if "broker_cpu_pct" not in out:   # a cluster: its nodes together
            out["broker_cpu_pct"] = round(sum(
                v for k, v in out.items()
                if re.fullmatch(r"broker\d+_cpu_pct", k)), 1)
        cl = B.children_cpu_ticks() - self.c0
        out["client_cpu_pct"] = round(100.0 * cl / CLK_TCK / wall, 1)
        other = B.machine_busy_ticks() - self.b0 - ours - cl
        out["other_cpu_pct"] = round(max(0.0, 100.0 * other / CLK_TCK / wall), 1)
        return out


def benchmark(port, args, timeout):
    cmd = [BENCH, "-h", HOST, "-p", str(port), "--json"] + [str(x) for x in args]
    COMMANDS.append(" ".join(cmd))
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    out = p.stdout.decode().strip().splitlines()
    if not out:
        raise RuntimeError("vitamin-benchmark printed nothing (exit %d): %s"
                           % (p.returncode, p.stderr.decode()[-2000:]))
    res = json.loads(out[-1])
    res["exit"] = p.returncode
    if p.returncode != 0 or res["errors"]:
        log("  WARNING: vitamin-benchmark exit %d, %d errors: %s"
            % (p.returncode, res["errors"], p.stderr.decode().strip()[-500:]))
    return res


def pids(broker, a, b, **more):
    """The processes whose CPU each run records; "harness" is this script
    (the 10 ms sampler)."""
    d = {"a": a.pid, "b": b.pid, "harness": os.getpid()}
    d.update(broker.pids())
    d.update(more)
    return d


# --------------------------------------------------------------------------
# a) the highest sustained replicated write rate

def part_a(broker, workdir, rnd, timeline, tag="a)"):
    B.wait_quiet()
    a, b = start_pair(broker, workdir)
    try:
        sa0, sb0 = a.stats(), b.stats()
        smp = Sampler(a, b)
        smp.start()
        time.sleep(0.2)
        cpu = Cpu(pids(broker, a, b))
        t0 = time.monotonic()
        r = benchmark(a.port, ["-c", CONNS, "-P", PIPELINE, "-r", KEYSPACE,
                               "-d", 32, "--ratio", "1:0", "-t", SECONDS,
                               "--seed", 100 + rnd], SECONDS + 120)
        t_end = time.monotonic()
        c = cpu.done()
        q0, dig = wait_caught_up(a, b, t_end)
        time.sleep(0.1)
        smp.stop()
        sa1, sb1 = a.stats(), b.stats()
        for x in smp.samples:
            timeline.append({"round": rnd, "t": round(x[0] - t0, 3),
                             "b_applied": x[1] - ival(sb0, "repl_applied"),
                             "b_lag_ms_last": x[2],
                             "a_published": x[3] - ival(sa0, "repl_published"),
                             "a_queue": x[4],
                             "a_cmd_set": x[5] - ival(sa0, "cmd_set")})
        writes = ival(sa1, "cmd_set") - ival(sa0, "cmd_set")
        applied = ival(sb1, "repl_applied") - ival(sb0, "repl_applied")
        batches = (ival(sa1, "repl_batches_published")
                   - ival(sa0, "repl_batches_published"))
        b_rates = smp.per_second(t0, t_end, 1)
        row = {
            "round": rnd, "seconds": r["seconds"],
            "a_ops_per_sec": r["ops_per_sec"], "a_p99_us": r["lat_p99_us"],
            "a_publish_per_sec": round(smp.rate(t0, t_end, 3)),
            "b_apply_per_sec_during": round(smp.rate(t0, t_end, 1)),
            "b_apply_per_sec_median_1s": round(median(b_rates)),
            "a_queue_at_end": [x[4] for x in smp.samples if x[0] <= t_end][-1],
            "queue_empty_after_s": None if q0 is None else round(q0, 2),
            "caught_up_after_s": None if dig is None else round(dig, 2),
            "writes": writes, "b_applied": applied,
            "a_batches_per_sec": round(batches / r["seconds"]) if r["seconds"] else 0,
            "writes_per_batch": round(writes / batches, 1) if batches else float("nan"),
            "replicated_per_sec": round(writes / (r["seconds"] + dig))
            if dig is not None else float("nan"),
            "b_lag_ms_max": ival(sb1, "repl_lag_ms_max"),
            "a_outbox_dropped": ival(sa1, "repl_outbox_dropped"),
            "b_gaps": ival(sb1, "repl_gaps"),
            "b_sync_started": ival(sb1, "sync_started") - ival(sb0, "sync_started"),
            "errors": r["errors"] + (0 if r["exit"] == 0 else 1),
        }
        row.update(c)
        log("  %s round %d: A %.0f sets/s (p99 %d us); A published %.0f/s; B applied "
            "%.0f/s during the load (median of 1 s windows %.0f/s); %d batches/s of "
            "%.1f writes; A queue %d at "
            "the end, empty after %s s, digests equal after %s s; %d writes / "
            "(load + catch-up) = %s/s; lag max %d ms; dropped %d, gaps %d; CPU %%: "
            "A %.0f B %.0f broker %.0f client %.0f others %.0f"
            % (tag, rnd, row["a_ops_per_sec"], row["a_p99_us"], row["a_publish_per_sec"],
               row["b_apply_per_sec_during"], row["b_apply_per_sec_median_1s"],
               row["a_batches_per_sec"], row["writes_per_batch"],
               row["a_queue_at_end"], row["queue_empty_after_s"],
               row["caught_up_after_s"], writes, row["replicated_per_sec"],
               row["b_lag_ms_max"], row["a_outbox_dropped"], row["b_gaps"],
               c["a_cpu_pct"], c["b_cpu_pct"], c["broker_cpu_pct"],
               c["client_cpu_pct"], c["other_cpu_pct"]))
        return row
    finally:
        stop_pair(a, b)


# --------------------------------------------------------------------------
# b) replication lag at fixed offered rates

def part_b(broker, workdir, rnd, rate, tag="b)"):
    B.wait_quiet()
    a, b = start_pair(broker, workdir)
    try:
        sa0, sb0 = a.stats(), b.stats()
        smp = Sampler(a, b)
        smp.start()
        probe = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "probe", str(a.port),
             str(b.port), str(SECONDS - 1.0), "%d-%d" % (rnd, rate)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        cpu = Cpu(pids(broker, a, b, probe=probe.pid))
        t0 = time.monotonic()
        r = benchmark(a.port, ["-c", CONNS, "-P", PIPELINE, "-r", KEYSPACE,
                               "-d", 32, "--ratio", "1:0", "-t", SECONDS,
                               "--rate", rate, "--seed", 200 + rnd], SECONDS + 120)
        t_end = time.monotonic()
        c = cpu.done()
        pout, perr = probe.communicate(timeout=60)
        pr = json.loads(pout.decode().strip().splitlines()[-1])
        q0, dig = wait_caught_up(a, b, t_end)
        smp.stop()
        sa1, sb1 = a.stats(), b.stats()
        batches = (ival(sa1, "repl_batches_published")
                   - ival(sa0, "repl_batches_published"))
        pubw = ival(sa1, "repl_published") - ival(sa0, "repl_published")
        # skip the first second (connections, first batches)
        lag = smp.lag_samples(t0 + 1.0, t_end)
        pl = pr["lags_ms"]
        row = {"round": rnd, "rate": rate, "a_ops_per_sec": r["ops_per_sec"],
               "a_p50_us": r["lat_p50_us"], "a_p99_us": r["lat_p99_us"],
               "behind_max_us": r.get("behind_max_us"),
               "b_apply_per_sec": round(smp.rate(t0 + 1.0, t_end, 1)),
               "a_batches_per_sec": round(batches / r["seconds"]) if r["seconds"] else 0,
               "writes_per_batch": round(pubw / batches, 1) if batches else float("nan"),
               "a_queue_max": max((x[4] for x in smp.samples if t0 <= x[0] <= t_end),
                                  default=0),
               "stats_samples": len(lag),
               "stats_lag_p50_ms": pct(lag, 50), "stats_lag_p99_ms": pct(lag, 99),
               "stats_lag_max_ms": max(lag) if lag else float("nan"),
               "b_lag_ms_max": ival(sb1, "repl_lag_ms_max"),
               "b_lag_ms_avg": ival(sb1, "repl_lag_ms_avg"),
               "probes": len(pl), "probes_lost": pr["lost"],
               "probe_p50_ms": round(pct(pl, 50), 2),
               "probe_p99_ms": round(pct(pl, 99), 2),
               "probe_max_ms": round(max(pl), 2) if pl else float("nan"),
               "caught_up_after_s": None if dig is None else round(dig, 2),
               "errors": r["errors"] + (0 if r["exit"] == 0 else 1)}
        row.update(c)
        log("  %s round %d, %6d/s offered: A %.0f/s, B applied %.0f/s; A published "
            "%d batches/s of %.1f writes, A queue up to %d; lag from "
            "stats p50 %s p99 %s max %s ms (%d samples; B's own max %d); probe "
            "p50 %.2f p99 %.2f max %.2f ms (%d probes, %d lost); CPU %%: A %.0f "
            "B %.0f broker %.0f client %.0f others %.0f"
            % (tag, rnd, rate, row["a_ops_per_sec"], row["b_apply_per_sec"],
               row["a_batches_per_sec"], row["writes_per_batch"], row["a_queue_max"],
               row["stats_lag_p50_ms"], row["stats_lag_p99_ms"],
               row["stats_lag_max_ms"], len(lag), row["b_lag_ms_max"],
               row["probe_p50_ms"], row["probe_p99_ms"], row["probe_max_ms"],
               len(pl), pr["lost"], c["a_cpu_pct"], c["b_cpu_pct"],
               c["broker_cpu_pct"], c["client_cpu_pct"], c["other_cpu_pct"]))
        return row
    finally:
        stop_pair(a, b)


# --------------------------------------------------------------------------
# c) the cost of --replication_ack=confirm

CONFIRM_LOADS = [("c50_p1", 50, 1), ("c50_p16", 50, 16), ("c1_p1", 1, 1)]


def part_c(broker, workdir, rnd, mode, load):
    name, conns, pipeline = load
    B.wait_quiet()
    a, b = start_pair(broker, workdir, ["--replication_ack", mode])
    try:
        sa0 = a.stats()
        cpu = Cpu(pids(broker, a, b))
        r = benchmark(a.port, ["-c", conns, "-P", pipeline, "-r", KEYSPACE,
                               "-d", 32, "--ratio", "1:0", "-t", CSECONDS,
                               "--seed", 300 + rnd], CSECONDS + 120)
        c = cpu.done()
        sa1 = a.stats()
        batches = (ival(sa1, "repl_batches_published")
                   - ival(sa0, "repl_batches_published"))
        row = {"round": rnd, "load": name, "mode": mode, "connections": conns,
               "pipeline": pipeline, "ops_per_sec": r["ops_per_sec"],
               "p50_us": r["lat_p50_us"], "p99_us": r["lat_p99_us"],
               "p999_us": r["lat_p999_us"], "max_us": r["lat_max_us"],
               "a_batches_per_sec": round(batches / r["seconds"]) if r["seconds"] else 0,
               "a_queue_at_end": ival(sa1, "repl_queue"),
               "errors": r["errors"] + (0 if r["exit"] == 0 else 1)}
        row.update(c)
        log("  c) round %d %-8s %-7s %9.0f sets/s  p50 %6d us  p99 %6d us  "
            "%d batches/s, A queue %d at the end; CPU %%: A %.0f B %.0f broker %.0f client %.0f others %.0f"
            % (rnd, name, mode, row["ops_per_sec"], row["p50_us"], row["p99_us"],
               row["a_batches_per_sec"], row["a_queue_at_end"],
               c["a_cpu_pct"], c["b_cpu_pct"], c["broker_cpu_pct"],
               c["client_cpu_pct"], c["other_cpu_pct"]))
        return row
    finally:
        stop_pair(a, b)


# --------------------------------------------------------------------------
# d) a three-node RabbitMQ cluster with quorum queues vs one broker with
#    classic queues; the time from a broker node's death to replication
#    resuming

def part_d(buses, workdir, rnd, timeline):
    """One round: for each setup (order alternating per round), the
    closed-loop throughput of part a and the lag of part b at D_RATE."""
    rows = []
    order = buses if rnd % 2 else list(reversed(buses))
    for bus in order:
        row = part_a(bus, workdir, rnd, timeline, tag="d) %-14s" % bus.name)
        row["setup"] = bus.name
        row["kind"] = "throughput"
        rows.append(row)
    for bus in order:
        row = part_b(bus, workdir, rnd, D_RATE, tag="d) %-14s" % bus.name)
        row["setup"] = bus.name
        row["kind"] = "lag"
        rows.append(row)
    return rows


def _probe_until_seen(src, dst, key, t_kill, timeout, out, name):
    """Set key on src (a fresh connection), then get it on dst every
    FAIL_POLL_S until it is there; out[name] = seconds since t_kill."""
    try:
        cs, cd = Line(src.port, timeout=timeout), Line(dst.port, timeout=timeout)
        try:
            cs.cmd(b'set("%s","x")' % key)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if cd.cmd(b'get("%s")' % key) == b"x":
                    out[name] = time.monotonic() - t_kill
                    return
                time.sleep(FAIL_POLL_S)
        finally:
            cs.close()
            cd.close()
    except (OSError, ConnectionError) as e:
        out[name + "_error"] = repr(e)


def part_d_failover(bus, workdir, trial):
    """A and B on the cluster (both given every node's address) under a
    paced load on A (FAIL_RATE sets/s, async); SIGKILL the broker node A's
    consumer uses (repl_broker); right after, one probe set on A and one on
    B: replication has resumed when each is readable on the other node.
    Also: when A reports another broker node. Then the node is booted again
    and the cluster waited healthy (not timed)."""
    cl = bus.cluster
    B.wait_quiet()
    a, b = start_pair(bus, workdir)
    load = None
    k = None
    try:
        sa = a.stats()
        ports = cl.ports()
        k = ports.index(int(sa["repl_broker"].rsplit(":", 1)[1]))
        b_on = ports.index(int(b.stats()["repl_broker"].rsplit(":", 1)[1]))
        if FAIL_RATE:
            cmd = [BENCH, "-h", HOST, "-p", str(a.port), "--json", "-c", 10,
                   "-P", 1, "-r", KEYSPACE, "-d", 32, "--ratio", "1:0",
                   "-t", FAIL_SECONDS, "--rate", FAIL_RATE, "--seed", 400 + trial]
            cmd = [str(x) for x in cmd]
            COMMANDS.append(" ".join(cmd))
            load = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            time.sleep(1.5)
        t_kill = time.monotonic()
        cl.kill(k)
        out = {}
        ths = [threading.Thread(target=_probe_until_seen, daemon=True, args=(
                   a, b, b"fail:%d:a" % trial, t_kill, 60, out, "a_to_b")),
               threading.Thread(target=_probe_until_seen, daemon=True, args=(
                   b, a, b"fail:%d:b" % trial, t_kill, 60, out, "b_to_a"))]
        for t in ths:
            t.start()
        moved = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and moved is None:
            st = a.stats()
            if st["repl_broker"] != sa["repl_broker"] and \
                    st.get("repl_state") in ("up", "syncing"):
                moved = time.monotonic() - t_kill
            time.sleep(0.01)
        for t in ths:
            t.join(65)
        if load is not None:
            load.wait(FAIL_SECONDS + 60)
        s1, sb1 = a.stats(), b.stats()
        resumed = max(out.get("a_to_b", float("nan")),
                      out.get("b_to_a", float("nan")))
        row = {"trial": trial, "killed_node": k, "b_on_killed": b_on == k,
               "a_moved_s": None if moved is None else round(moved, 3),
               "a_to_b_s": round(out.get("a_to_b", float("nan")), 3),
               "b_to_a_s": round(out.get("b_to_a", float("nan")), 3),
               "resumed_s": round(resumed, 3),
               "a_failovers": ival(s1, "repl_failovers"),
               "a_reconnects": ival(s1, "repl_reconnects"),
               "a_gaps": ival(s1, "repl_gaps"), "b_gaps": ival(sb1, "repl_gaps"),
               "a_sync_full": ival(s1, "sync_full") - ival(sa, "sync_full"),
               "load_rate": FAIL_RATE,
               "errors": "; ".join(v for k2, v in out.items()
                                   if k2.endswith("_error"))}
        log("  d) failover trial %d: killed broker node %d (A's%s); A on another "
            "node after %s s; A->B %.2f s, B->A %.2f s: resumed after %.2f s "
            "(A failovers %d, gaps A %d B %d)%s"
            % (trial, k, ", and B's" if row["b_on_killed"] else "",
               row["a_moved_s"], row["a_to_b_s"], row["b_to_a_s"],
               row["resumed_s"], row["a_failovers"], row["a_gaps"],
               row["b_gaps"], (" ERRORS " + row["errors"]) if row["errors"] else ""))
        return row
    finally:
        if load is not None and load.poll() is None:
            load.kill()
            load.wait()
        stop_pair(a, b)
        if k is not None:
            t = time.monotonic()
            cl.restart(k)
            cl.wait_healthy(timeout=150)
            log("     (broker node %d back, cluster healthy in %.1f s)"
                % (k, time.monotonic() - t))


# --------------------------------------------------------------------------
# report

def fmt(v, d=0):
    if v is None or v != v:
        return "n/a"
    if d == 0:
        return "{:,.0f}".format(v)
    return ("{:,.%df}" % d).format(v)


def summary_md(arows, brows, crows, env, drows=(), frows=()):
    out = []
    if arows:
        out += ["### a) Sustained replicated write rate",
                "",
                "100%% sets on A, -c %d -P %d, %s keys, 32 B values, %.0f s; "
                "median of %d run(s), each run's value in the last column."
                % (CONNS, PIPELINE, "{:,}".format(KEYSPACE), SECONDS, len(arows)),
                "",
                "| metric | median | runs |", "|---|---:|---|"]

        def line(label, key, d=0):
            vs = [r[key] for r in arows]
            out.append("| %s | %s | %s |" % (label, fmt(median(vs), d),
                                             ", ".join(fmt(v, d) for v in vs)))
        line("A sets/s (client)", "a_ops_per_sec")
        line("A published to the broker /s (during the load)", "a_publish_per_sec")
        line("B applied /s (during the load)", "b_apply_per_sec_during")
        line("B applied /s (median of 1 s windows)", "b_apply_per_sec_median_1s")
        line("A batches (AMQP messages) published /s", "a_batches_per_sec")
        line("writes per batch", "writes_per_batch", 1)
        line("A repl_queue at the end of the load (writes)", "a_queue_at_end")
        line("A queue empty, s after the load", "queue_empty_after_s", 2)
        line("digests equal, s after the load", "caught_up_after_s", 2)
        line("end to end: writes / (load + catch-up), /s", "replicated_per_sec")
        line("B repl_lag_ms_max", "b_lag_ms_max")
        line("A repl_outbox_dropped", "a_outbox_dropped")
        line("CPU % A", "a_cpu_pct")
        line("CPU % B", "b_cpu_pct")
        line("CPU % broker", "broker_cpu_pct")
        line("CPU % client", "client_cpu_pct")
        line("CPU % others", "other_cpu_pct")
        out.append("")
    if brows:
        out += ["### b) Replication lag at fixed offered rates", "",
                "Open loop (`--rate`), 100%% sets on A, -c %d -P %d, %.0f s per run; "
                "medians of %d run(s) per rate. *stats*: B's repl_lag_ms_last sampled "
                "every 10 ms (only samples after B applied something; the first "
                "second skipped). *probe*: a unique set on A every 20 ms, then "
                "get() on B every 0.2 ms until it is there." % (
                    CONNS, PIPELINE, SECONDS, ROUNDS), "",
                "| offered sets/s | A achieved | B applied/s | batches/s (writes each) | "
                "A queue max | lag p50 (stats) | "
                "lag p99 (stats) | B lag max | probe p50 | probe p99 | probe max | "
                "caught up after | CPU A / B / broker / client / others |",
                "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for rate in RATES:
            rs = [r for r in brows if r["rate"] == rate]
            if not rs:
                continue

            def m(k, d=0):
                return fmt(median([r[k] for r in rs]), d)
            out.append("| %s | %s | %s | %s (%s) | %s | %s ms | %s ms | %s ms | %s ms | "
                       "%s ms | %s ms | %s s | %s / %s / %s / %s / %s %% |"
                       % (fmt(rate), m("a_ops_per_sec"), m("b_apply_per_sec"),
                          m("a_batches_per_sec"), m("writes_per_batch", 1),
                          m("a_queue_max"),
                          m("stats_lag_p50_ms"), m("stats_lag_p99_ms"),
                          m("b_lag_ms_max"), m("probe_p50_ms", 2),
                          m("probe_p99_ms", 2), m("probe_max_ms", 1),
                          m("caught_up_after_s", 2), m("a_cpu_pct"),
                          m("b_cpu_pct"), m("broker_cpu_pct"),
                          m("client_cpu_pct"), m("other_cpu_pct")))
        out.append("")
    if crows:
        out += ["### c) --replication_ack=confirm vs async", "",
                "100%% sets on A (B replicating), %.0f s per run, modes "
                "alternating; medians of %d round(s)." % (CSECONDS, ROUNDS), "",
                "| load | mode | sets/s | p50 µs | p99 µs | p99.9 µs | confirm/async ops | "
                "confirm/async p99 | batches/s | CPU A / broker % |",
                "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        for name, conns, pipeline in CONFIRM_LOADS:
            med = {}
            for mode in ("async", "confirm"):
                rs = [r for r in crows if r["load"] == name and r["mode"] == mode]
                if not rs:
                    continue
                med[mode] = {k: median([r[k] for r in rs]) for k in
                             ("ops_per_sec", "p50_us", "p99_us", "p999_us",
                              "a_cpu_pct", "broker_cpu_pct", "a_batches_per_sec")}
            for mode in ("async", "confirm"):
                if mode not in med:
                    continue
                x = med[mode]
                rat = ("", "")
                if mode == "confirm" and "async" in med:
                    rat = ("%.2f×" % (x["ops_per_sec"] / med["async"]["ops_per_sec"]),
                           "%.2f×" % (x["p99_us"] / med["async"]["p99_us"]))
                out.append("| -c %d -P %d | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s |"
                           % (conns, pipeline, mode, fmt(x["ops_per_sec"]),
                              fmt(x["p50_us"]), fmt(x["p99_us"]), fmt(x["p999_us"]),
                              rat[0], rat[1], fmt(x["a_batches_per_sec"]),
                              fmt(x["a_cpu_pct"]),
                              fmt(x["broker_cpu_pct"])))
        out.append("")
    out += summary_d(drows, frows)
    out.append("Vitamin %s; %s; RabbitMQ %s; %d CPUs (%s); nothing pinned."
               % (env["commit"], env["vitamin"], env["rabbitmq"], env["nproc"],
                  env["cpu"]))
    return "\n".join(out) + "\n"


def summary_d(drows, frows):
    out = []
    setups = []
    for r in drows:
        if r["setup"] not in setups:
            setups.append(r["setup"])
    if drows:
        out += ["### d) Three-node RabbitMQ cluster, quorum queues, vs one broker, "
                "classic queues", "",
                "Same run, setups alternating within each round; A and B are "
                "given every node's address (cluster) or the one broker's. "
                "Throughput as in a) (closed loop, -c %d -P %d, %.0f s); lag as in "
                "b) at %s sets/s offered. Medians of %d round(s)."
                % (CONNS, PIPELINE, SECONDS, fmt(D_RATE), len({r["round"] for r in drows})),
                "",
                "| setup | A sets/s | B applied/s (during) | end to end /s | caught up after | "
                "lag p50 / p99 (stats) at %s/s | probe p50 / p99 / max | "
                "B lag max | CPU broker(s) %% |" % fmt(D_RATE),
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        med = {}
        for st in setups:
            th = [r for r in drows if r["setup"] == st and r["kind"] == "throughput"]
            lg = [r for r in drows if r["setup"] == st and r["kind"] == "lag"]

            def m(rows, k):
                return median([r.get(k) for r in rows])
            med[st] = {"ops": m(th, "a_ops_per_sec"), "e2e": m(th, "replicated_per_sec"),
                       "p99": m(lg, "stats_lag_p99_ms"), "probe99": m(lg, "probe_p99_ms")}
            out.append("| %s | %s | %s | %s | %s s | %s / %s ms | %s / %s / %s ms | %s ms | %s / %s |"
                       % (st, fmt(m(th, "a_ops_per_sec")),
                          fmt(m(th, "b_apply_per_sec_during")),
                          fmt(m(th, "replicated_per_sec")),
                          fmt(m(th, "caught_up_after_s"), 2),
                          fmt(m(lg, "stats_lag_p50_ms")), fmt(m(lg, "stats_lag_p99_ms")),
                          fmt(m(lg, "probe_p50_ms"), 2), fmt(m(lg, "probe_p99_ms"), 2),
                          fmt(m(lg, "probe_max_ms"), 1), fmt(m(lg, "b_lag_ms_max")),
                          fmt(m(th, "broker_cpu_pct")), fmt(m(lg, "broker_cpu_pct"))))
        if len(setups) == 2:
            c, s1 = med[setups[0]], med[setups[1]]
            out += ["", "Ratio %s / %s: end-to-end replicated rate %.2f, A's rate "
                    "%.2f, lag p99 %.2f (stats), %.2f (probe)."
                    % (setups[0], setups[1], c["e2e"] / s1["e2e"], c["ops"] / s1["ops"],
                       c["p99"] / s1["p99"] if s1["p99"] else float("nan"),
                       c["probe99"] / s1["probe99"] if s1["probe99"] else float("nan"))]
        out.append("")
    if frows:
        res = [r["resumed_s"] for r in frows]
        mov = [r["a_moved_s"] for r in frows if r["a_moved_s"] is not None]
        out += ["### d) Broker node killed: time to replication resuming", "",
                "A and B on the cluster, A under %s sets/s (async); the broker node "
                "A's consumer uses is SIGKILLed; right after, one set on A and one "
                "on B: resumed = both readable on the other node. %d trials."
                % (fmt(FAIL_RATE), len(frows)), "",
                "| | median | max | trials |", "|---|---:|---:|---|",
                "| replication resumed after | %s s | %s s | %s |"
                % (fmt(median(res), 2), fmt(max(res), 2),
                   ", ".join(fmt(v, 2) for v in res)),
                "| A on another broker node after | %s s | %s s | %s |"
                % (fmt(median(mov), 2), fmt(max(mov) if mov else None, 2),
                   ", ".join(fmt(v, 2) for v in mov)), ""]
    return out



def rabbit_version():
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "rabbitmq-server"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        return out.stdout.decode().strip() or "unknown"
    except OSError:
        return "unknown"


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "probe":
        return probe_main(sys.argv[2:])
    for f in (VITAMIN, BENCH):
        if not os.path.exists(f):
            sys.exit("bench_repl: %s is missing; run `make` first" % f)
    from rabbit import Broker  # tests/e2e/rabbit.py (needs python3-pytest)
    os.makedirs(RESULTS, exist_ok=True)
    B.VITAMIN = VITAMIN
    env = B.machine()
    env["rabbitmq"] = rabbit_version()
    env.update(rounds=ROUNDS, seconds=SECONDS, confirm_seconds=CSECONDS,
               rates=" ".join(map(str, RATES)), outbox_mib=OUTBOX,
               pinning="none (A, B, broker and client share the CPUs)")
    for k in ("redis", "memcached", "connections", "keyspace", "noise"):
        env.pop(k, None)
    log("bench-repl: %d round(s); %s; rabbitmq %s; parts %s"
        % (ROUNDS, env["vitamin"], env["rabbitmq"], " ".join(PARTS)))
    workdir = B.tempfile.mkdtemp(prefix="vitamin-bench-repl-")
    t = time.monotonic()
    broker = Broker(name="vbench%d" % os.getpid())
    log("broker up on port %d in %.1f s" % (broker.port, time.monotonic() - t))
    single = Bus("single", broker=broker)
    arows, brows, crows, timeline = [], [], [], []
    drows, dtimeline, frows = [], [], []
    rcl = None
    try:
        if "a" in PARTS:
            log("== a) sustained replicated write rate")
            for rnd in range(1, ROUNDS + 1):
                arows.append(part_a(single, workdir, rnd, timeline))
        if "b" in PARTS:
            log("== b) lag at fixed offered rates")
            for rnd in range(1, ROUNDS + 1):
                for rate in RATES:
                    brows.append(part_b(single, workdir, rnd, rate))
        if "c" in PARTS:
            log("== c) confirm vs async")
            for rnd in range(1, ROUNDS + 1):
                for load in CONFIRM_LOADS:
                    for mode in (("async", "confirm") if rnd % 2
                                 else ("confirm", "async")):
                        crows.append(part_c(single, workdir, rnd, mode, load))
        if "d" in PARTS:
            import cluster  # tests/e2e/cluster.py
            log("== d) three-node cluster (quorum queues) vs one broker (classic "
                "queues); broker node killed")
            t = time.monotonic()
            rcl = cluster.Cluster()
            log("cluster up on ports %s in %.1f s" % (rcl.ports(), time.monotonic() - t))
            buses = [Bus("cluster/quorum", cluster=rcl, exchange="vbench-quorum",
                         flags=["--rabbitmq_queue_type", "quorum"]),
                     Bus("single/classic", broker=broker, exchange="vbench-classic",
                         flags=["--rabbitmq_queue_type", "classic"])]
            quiet, B.QUIET_WAIT = B.QUIET_WAIT, min(B.QUIET_WAIT, D_QUIET_WAIT)
            try:
                for rnd in range(1, ROUNDS + 1):
                    drows += part_d(buses, workdir, rnd, dtimeline)
                for trial in range(1, FAIL_TRIALS + 1):
                    frows.append(part_d_failover(buses[0], workdir, trial))
            finally:
                B.QUIET_WAIT = quiet
    finally:
        if rcl is not None:
            rcl.cleanup()
        broker.cleanup()
        if os.environ.get("BENCH_KEEP_LOGS") != "1":
            B.shutil.rmtree(workdir, ignore_errors=True)
        else:
            log("node logs kept in %s" % workdir)
    B.write_csv(os.path.join(RESULTS, "repl_runs.csv"), arows)
    B.write_csv(os.path.join(RESULTS, "repl_timeline.csv"), timeline)
    B.write_csv(os.path.join(RESULTS, "repl_lag.csv"), brows)
    B.write_csv(os.path.join(RESULTS, "repl_confirm.csv"), crows)
    B.write_csv(os.path.join(RESULTS, "repl_cluster_throughput.csv"),
                [r for r in drows if r["kind"] == "throughput"])
    B.write_csv(os.path.join(RESULTS, "repl_cluster_lag.csv"),
                [r for r in drows if r["kind"] == "lag"])
    B.write_csv(os.path.join(RESULTS, "repl_failover.csv"), frows)
    with open(os.path.join(RESULTS, "repl_env.txt"), "w") as f:
        for k, v in env.items():
            f.write("%s: %s\n" % (k, v))
    with open(os.path.join(RESULTS, "repl_commands.txt"), "w") as f:
        f.write("\n".join(COMMANDS) + "\n")
    text = summary_md(arows, brows, crows, env, drows, frows)
    with open(os.path.join(RESULTS, "repl_summary.md"), "w") as f:
        f.write(text)
    log("")
    log(text)
    log("results: bench/results/repl_{runs,timeline,lag,confirm,cluster_throughput,"
        "cluster_lag,failover}.csv, repl_summary.md")


if __name__ == "__main__":
    main()
