#!/usr/bin/env python3
"""State transfer benchmark: a full transfer vs an incremental one.

Run through `make bench-resync` (it installs the packages and builds). A
private RabbitMQ broker and node A holding 1M keys of 32 B values
(vitamin-benchmark --prefill, keys key:%012d). Each round (BENCH_RESYNC_ROUNDS,
3; the figures reported are the medians):

  full         a fresh node B joins through a TCP proxy: its state transfer
               is a full one (its store is empty). Measured: B's
               sync_last_ms (first request to completion, including the 1 s
               wait after the echo), the wall time from B's start until its
               items_digest equals A's, and sync_bytes_received.
  incremental  B is cut off (proxy cut, its queue deleted with rabbitmqctl,
               as the broker does when a queue outlives its TTL) while 1% of
               the keys (10000: every 100th, a new 32 B value) change on A;
               then the proxy heals and B, finding its queue gone, asks for
               an incremental transfer. Measured: the same figures, plus
               what the bytes were: DIGESTS (NODE records of 16 children's
               digests, counted by A's sync_digests_sent) vs item records
               (the rest; A's sync_items_sent counts them), and what B sent
               A (its sync_bytes_sent: its key summaries of the leaves that
               differ, sync_summaries_sent, and its push of the keys A
               asked back, sync_wants_sent / B's sync_items_sent).

Goal (issue 14): incremental bytes <= 5% of the full transfer's, <= 5 s.
With 2^16 leaves and 1M keys a leaf holds ~15 keys, and 1% of the keys
changed touch ~14% of the leaves (65536 x (1 - e^(-10000/65536))); below
the leaves, key summaries (32 B per key of B's in those leaves, B to A)
let A send only the changed keys. The summary shows the split, and the
bytes through the broker both ways.

Environment: BENCH_RESYNC_ROUNDS (3), BENCH_RESYNC_KEYS (1000000),
BENCH_RESYNC_CHANGED (0.01), BENCH_QUICK=1 (1 round), VITAMIN_BIN / BENCH_BIN
(binaries; default build/). Writes bench/results/resync_runs.csv,
resync_summary.md, resync_env.txt and resync_commands.txt.

Helpers are shared, not copied: bench/bench.py (machine description, quiet
wait, CSV, median), bench/bench_repl.py (running vitamin-benchmark) and
tests/e2e (rabbit.Broker/Node, faults_util.TcpProxy/load_keys).
"""

import math
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

import bench as B  # noqa: E402  (machine(), wait_quiet(), write_csv(), median())

QUICK = os.environ.get("BENCH_QUICK") == "1"
ROUNDS = int(os.environ.get("BENCH_RESYNC_ROUNDS", "1" if QUICK else "3"))
KEYS = int(os.environ.get("BENCH_RESYNC_KEYS", "1000000"))
CHANGED = float(os.environ.get("BENCH_RESYNC_CHANGED", "0.01"))
VALUE_BYTES = 32
VITAMIN = os.environ.get("VITAMIN_BIN", B.VITAMIN)
BENCH = os.environ.get("BENCH_BIN", B.BENCH)
os.environ["VITAMIN_BIN"] = VITAMIN  # rabbit.py's default binary
EXCHANGE = "vresync"
NODE_ARGS = ("--memory", "1024", "--anti_entropy_interval", "0")
LEAVES = 65536
NODE_RECORD = 43 + 5 + 128   # a NODE record with 16 children's digests
TIMEOUT = 300.0

import bench_repl as R  # noqa: E402  (benchmark(): runs vitamin-benchmark)
import rabbit  # noqa: E402
from faults_util import TcpProxy, load_keys  # noqa: E402

log = B.log
COMMANDS = R.COMMANDS


def stats(nd):
    return {k: int(v) if re.fullmatch(r"-?\d+", v) else v
            for k, v in nd.stats().items()}


def wait_equal(a, b, done, what):
    """Poll until done(b's stats) and equal digests; returns (seconds, the
    first time b's repl_state was not "down", b's stats)."""
    t0 = time.monotonic()
    t_link = None
    while True:
        sb = stats(b)
        now = time.monotonic()
        if t_link is None and sb.get("repl_state") != "down":
            t_link = now
        if done(sb) and sb["items_digest"] == stats(a)["items_digest"]:
            return now - t0, (t_link or now) - t0, sb
        if now - t0 > TIMEOUT:
            raise RuntimeError("%s: not converged after %.0f s\n%s"
                               % (what, TIMEOUT, b.log_text(3000)))
        time.sleep(0.05)


def one_round(rnd, broker, a):
    bid = "rb%d" % rnd
    proxy = TcpProxy(broker.port)
    b = rabbit.Node(bid, proxy.port, EXCHANGE, extra=NODE_ARGS)
    queue = "%s.%s" % (EXCHANGE, bid)
    try:
        B.wait_quiet()
        sa0 = stats(a)
        b.start()
        full_wall, _, sb1 = wait_equal(a, b, lambda s: s["sync_completed"] >= 1,
                                       "full transfer")
        sa1 = stats(a)
        assert sb1["sync_full"] == 1 and sb1["curr_items"] == KEYS, sb1

        proxy.cut()
        rabbit.poll(lambda: stats(b)["repl_state"] == "down", timeout=15,
                    what="B notices the cut")
        r = broker.ctl("delete_queue", queue)
        assert r.returncode == 0, r.stderr
        step = int(round(1 / CHANGED))
        changed = ["key:%012d" % i for i in range(rnd % step, KEYS, step)]
        load_keys(a.port, ((k, ("r%d-" % rnd + k).ljust(VALUE_BYTES, "x"))
                           for k in changed))
        rabbit.poll(lambda: stats(a)["repl_queue"] == 0, timeout=30,
                    what="A's outbox empty")
        B.wait_quiet()
        sa2, sb_cut = stats(a), stats(b)
        proxy.heal()
        incr_wall, reconnect, _ = wait_equal(
            a, b, lambda s: s["sync_completed"] >= 2 and s["repl_state"] == "up",
            "incremental transfer")
        time.sleep(0.5)  # the push B sends A
        sa3, sb3 = stats(a), stats(b)
        assert sb3["sync_full"] == 1 and sb3["sync_incremental"] >= 1, sb3

        full_bytes = sb1["sync_bytes_received"]
        incr_bytes = sb3["sync_bytes_received"] - full_bytes
        digests = sa3["sync_digests_sent"] - sa2["sync_digests_sent"]
        digest_bytes = digests * NODE_RECORD
        items = sa3["sync_items_sent"] - sa2["sync_items_sent"]
        pushed = sb3["sync_items_sent"] - sb_cut["sync_items_sent"]
        b_sent = sb3["sync_bytes_sent"] - sb_cut["sync_bytes_sent"]
        expect_leaves = LEAVES * (1 - math.exp(-len(changed) / LEAVES))
        row = {
            "round": rnd, "keys": KEYS, "changed": len(changed),
            "full_ms": sb1["sync_last_ms"], "full_wall_s": round(full_wall, 2),
            "full_bytes": full_bytes,
            "full_a_bytes_sent": sa1["sync_bytes_sent"] - sa0["sync_bytes_sent"],
            "full_retried": sb1["sync_retried"],
            "incr_ms": sb3["sync_last_ms"],
            "incr_wall_s": round(incr_wall - reconnect, 2),
            "incr_reconnect_s": round(reconnect, 2),
            "incr_bytes": incr_bytes,
            "incr_pct": round(100.0 * incr_bytes / full_bytes, 2),
            "incr_transfers": sb3["sync_incremental"] - sb1["sync_incremental"],
            "incr_retried": sb3["sync_retried"] - sb1["sync_retried"],
            "leaves_requested": sb3["sync_leaves_requested"],
            "leaves_expected": round(expect_leaves),
            "ranges_compared": sb3["sync_ranges_compared"],
            "digests_sent": digests,
            "digest_bytes": digest_bytes,
            "item_bytes": incr_bytes - digest_bytes,
            "items_received": items,
            "keys_per_leaf": round(KEYS / LEAVES, 2),
            "items_per_leaf": round(items / max(1, sb3["sync_leaves_requested"]), 2),
            "b_summaries": sb3["sync_summaries_sent"] - sb_cut["sync_summaries_sent"],
            "a_wants": sa3["sync_wants_sent"] - sa2["sync_wants_sent"],
            "b_pushed_items": pushed,
            "b_sent_bytes": b_sent,
            "both_ways_bytes": incr_bytes + b_sent,
            "both_ways_pct": round(100.0 * (incr_bytes + b_sent) / full_bytes, 2),
        }
        log("  round %d: full %d bytes, %d ms (%.1f s to equal digests); "
            "incremental %d bytes = %.2f%% of full, %d ms (%.1f s to equal "
            "digests after the link was back, %.1f s to reconnect); "
            "%d leaves requested (%d expected), %d digests (%d bytes), "
            "%d items received (%.1f per leaf); B sent %d key summaries, "
            "pushed %d items (A wanted %d), %d bytes; both ways %d bytes = "
            "%.2f%% of full"
            % (rnd, full_bytes, row["full_ms"], full_wall, incr_bytes,
               row["incr_pct"], row["incr_ms"], row["incr_wall_s"], reconnect,
               row["leaves_requested"], expect_leaves, digests, digest_bytes,
               items, row["items_per_leaf"], row["b_summaries"], pushed,
               row["a_wants"], b_sent, row["both_ways_bytes"],
               row["both_ways_pct"]))
        return row
    finally:
        b.stop()
        proxy.close()
        broker.ctl("delete_queue", queue)


def summary_md(rows, env):
    med = {k: B.median([r[k] for r in rows]) for k in rows[0] if k != "round"}
    out = ["# State transfer: full vs incremental (`make bench-resync`)", "",
           "%d keys of %d B values on node A; node B joins (full transfer), "
           "then is cut off while %d keys (%.0f%%) change, and catches up "
           "(incremental). Medians of %d round(s)."
           % (KEYS, VALUE_BYTES, med["changed"], 100.0 * CHANGED, len(rows)), "",
           "| | full | incremental | goal |", "|---|---|---|---|",
           "| bytes received | %d | %d (%.2f%% of full) | <= 5%% |"
           % (med["full_bytes"], med["incr_bytes"], med["incr_pct"]),
           "| sync_last_ms (request to completion, incl. 1 s wait after the echo) "
           "| %d | %d | <= 5000 |" % (med["full_ms"], med["incr_ms"]),
           "| wall time to equal digests | %.2f s (from start) | %.2f s (from "
           "the link back; reconnect took %.2f s more) | |"
           % (med["full_wall_s"], med["incr_wall_s"], med["incr_reconnect_s"]),
           "| attempts retried (all rounds) | %d | %d | |"
           % (sum(r["full_retried"] for r in rows),
              sum(r["incr_retried"] for r in rows)),
           "| incremental transfers per catch-up (a gap seen during the first "
           "asks for a second) | | %s | |"
           % " ".join(str(r["incr_transfers"]) for r in rows),
           "", "Where the incremental bytes go:", "",
           "| | |", "|---|---|",
           "| leaves requested | %d of %d (%d expected for %d random keys) |"
           % (med["leaves_requested"], LEAVES, med["leaves_expected"],
              med["changed"]),
           "| DIGESTS | %d NODE records x %d B = %d B (%.1f%% of the incremental bytes) |"
           % (med["digests_sent"], NODE_RECORD, med["digest_bytes"],
              100.0 * med["digest_bytes"] / med["incr_bytes"]),
           "| item records (and a few message headers) | %d items, %.1f per leaf "
           "requested (%.1f keys per leaf on average): %d B (%.1f%%) |"
           % (med["items_received"], med["items_per_leaf"], med["keys_per_leaf"],
              med["item_bytes"], 100.0 * med["item_bytes"] / med["incr_bytes"]),
           "| B to A (not in the bytes received): key summaries, then its push "
           "of the keys A asked back | %d summaries, %d keys asked back, %d "
           "items pushed: %d B |"
           % (med["b_summaries"], med["a_wants"], med["b_pushed_items"],
              med["b_sent_bytes"]),
           "| both ways through the broker | %d B (%.2f%% of the full "
           "transfer) |" % (med["both_ways_bytes"], med["both_ways_pct"]),
           "",
           "Vitamin %s; %s; RabbitMQ %s; %d CPUs (%s); nothing pinned."
           % (env["commit"], env["vitamin"], env["rabbitmq"], env["nproc"],
              env["cpu"])]
    return "\n".join(out) + "\n"


def main():
    for f in (VITAMIN, BENCH):
        if not os.path.exists(f):
            sys.exit("bench_resync: %s is missing; run `make` first" % f)
    os.makedirs(B.RESULTS, exist_ok=True)
    B.VITAMIN = VITAMIN
    env = B.machine()
    env["rabbitmq"] = R.rabbit_version()
    env.update(rounds=ROUNDS, keys=KEYS, changed=CHANGED,
               value_bytes=VALUE_BYTES,
               pinning="none (A, B, the broker and the client share the CPUs)")
    for k in ("redis", "memcached", "connections", "keyspace", "noise",
              "seconds"):
        env.pop(k, None)
    log("bench-resync: %d round(s), %d keys, %.1f%% changed; %s; rabbitmq %s"
        % (ROUNDS, KEYS, 100 * CHANGED, env["vitamin"], env["rabbitmq"]))
    t = time.monotonic()
    broker = rabbit.Broker(name="vresync%d" % os.getpid())
    log("broker up on port %d in %.1f s" % (broker.port, time.monotonic() - t))
    a = rabbit.Node("ra", broker.port, EXCHANGE, extra=NODE_ARGS)
    rows = []
    try:
        a.start()
        rabbit.poll(lambda: stats(a)["repl_state"] == "up", timeout=30,
                    what="A up")
        t = time.monotonic()
        res = R.benchmark(a.port, ["-c", 50, "-P", 16, "-r", KEYS, "-d",
                                   VALUE_BYTES, "--prefill", "-n", 0],
                          TIMEOUT)
        assert stats(a)["curr_items"] == KEYS, stats(a)
        log("A holds %d keys (loaded in %.1f s, %d errors)"
            % (KEYS, time.monotonic() - t, res.get("prefill_errors", 0)))
        rabbit.poll(lambda: stats(a)["repl_queue"] == 0, timeout=TIMEOUT,
                    what="A's outbox empty")
        for rnd in range(1, ROUNDS + 1):
            rows.append(one_round(rnd, broker, a))
    finally:
        a.stop()
        broker.cleanup()
    B.write_csv(os.path.join(B.RESULTS, "resync_runs.csv"), rows)
    with open(os.path.join(B.RESULTS, "resync_env.txt"), "w") as f:
        for k, v in env.items():
            f.write("%s: %s\n" % (k, v))
    with open(os.path.join(B.RESULTS, "resync_commands.txt"), "w") as f:
        f.write("\n".join(COMMANDS) + "\n")
    text = summary_md(rows, env)
    with open(os.path.join(B.RESULTS, "resync_summary.md"), "w") as f:
        f.write(text)
    log("")
    log(text)
    log("results: bench/results/resync_runs.csv, resync_summary.md")


if __name__ == "__main__":
    main()
