"""Shared fixtures and helpers of the overlapping-fault tests (issue 9):
test_repl_overlap.py (F1, F2, F3) and test_repl_random.py (the randomized
fault test).

  Env          what one test started (nodes, proxies, threads, taps), torn
               down in reverse order; node stats and logs are printed at
               teardown, so pytest shows them for a failing test.
  spawn()      start a rabbit.Node without waiting for its port (a node with
               --sync_before_serve does not listen until it is in sync).
  check_converged()  poll until every node answers, all items_digest are
               equal and full reads of the given keys are equal on every
               node (and equal to what the test expects, if it says);
               fails with a per-node summary otherwise.
  no_stuck_transfer()  after healing: no node reports `syncing` and no node
               has a transfer it started and never finished.

Everything listens and connects on 127.0.0.1 only.
"""

import itertools
import os
import re
import subprocess
import threading
import time

import pytest

import rabbit
from faults_util import describe, kill_node, new_node, node_logs, read_keys, \
    safe_stats

CONFIRM = ("--replication_ack", "confirm")
SYNC_BEFORE_SERVE = ("--sync_before_serve",)
# The faults of issue 9 are a single broker losing what it holds when it is
# killed: classic queues with transient messages. (A quorum queue keeps its
# messages on disk through a crash, so a killed broker loses nothing there:
# tests/e2e/test_cluster.py covers that setup.)
LOSSY_QUEUES = ("--rabbitmq_queue_type", "classic")

_seq = itertools.count(1)


def need_tools():
    if not os.path.exists(rabbit.RABBITMQ_SERVER):
        pytest.skip("rabbitmq-server is not installed")
    if not os.path.exists(rabbit.BIN):
        pytest.fail("vitamin binary not found at %s (set VITAMIN_BIN)"
                    % rabbit.BIN)


class Env:
    """What one test started; torn down in reverse order. Nodes are
    SIGKILLed at teardown (after their stats and logs are printed)."""

    def __init__(self, request):
        base = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)[:50]
        self.exchange = "vt.overlap.%d.%d.%s" % (os.getpid(), next(_seq),
                                                 base)
        self.nodes = []     # every rabbit.Node started (also dead ones)
        self.things = []    # proxies, taps, threads: anything to stop

    def node(self, broker_port, node_id, port=None, extra=(), start=True):
        nd = new_node(broker_port, self.exchange, node_id, port=port,
                      extra=LOSSY_QUEUES + tuple(extra))
        self.nodes.append(nd)
        if start:
            nd.start()
        return nd

    def add(self, thing):
        self.things.append(thing)
        return thing

    def teardown(self):
        live = [nd for nd in self.nodes if nd.alive()]
        if live:
            print(describe(live))
        for t in reversed(self.things):
            try:
                if isinstance(t, threading.Thread):
                    if hasattr(t, "stop"):
                        t.stop()
                    t.join(10)
                elif hasattr(t, "thaw"):     # a TcpProxy: thaw, then close
                    t.thaw()
                    t.close()
                elif hasattr(t, "cleanup"):
                    t.cleanup()
                elif hasattr(t, "close"):
                    t.close()
            except Exception as e:  # teardown must go on
                print("teardown of %r failed: %r" % (t, e))
        print(node_logs(self.nodes, 8000))
        for nd in self.nodes:
            try:
                kill_node(nd)
            except Exception as e:
                print("kill of %s failed: %r" % (nd.node_id, e))


def spawn(nd):
    """Start a rabbit.Node's process without waiting for its port."""
    if not os.path.exists(rabbit.BIN):
        raise AssertionError("vitamin binary not found at %s" % rabbit.BIN)
    nd.proc = subprocess.Popen(nd.args, stdin=subprocess.DEVNULL,
                               stdout=nd.log, stderr=nd.log)
    rabbit._live_nodes.append(nd)
    return nd


def stat(nd, name):
    st = safe_stats(nd)
    assert st is not None, "%s does not answer stats()\n%s" % (
        nd.node_id, nd.log_text(3000))
    assert name in st, "%s: stats() has no %s" % (nd.node_id, name)
    v = st[name]
    return int(v) if re.fullmatch(r"-?\d+", v) else v


def wait_state(nd, states, timeout=30.0, nodes=None):
    """Poll until nd reports repl_state in `states`."""
    if isinstance(states, str):
        states = (states,)
    rabbit.poll(lambda: (safe_stats(nd) or {}).get("repl_state") in states,
                timeout=timeout, interval=0.1,
                what="%s repl_state in %r\n%s\n%s" % (
                    nd.node_id, states, describe(nodes or [nd]),
                    nd.log_text(2000)))


def _summary(nodes, keys, want, reads):
    lines = [describe(nodes)]
    if reads:
        ref = reads.get(nodes[0].node_id, {})
        for nd in nodes:
            got = reads.get(nd.node_id)
            if got is None:
                lines.append("%s: not readable" % nd.node_id)
                continue
            if want is not None:
                bad = [k for k in keys if got.get(k) != want[k]]
                lines.append("%s: %d of %d keys differ from the expected "
                             "values, e.g. %r" % (
                                 nd.node_id, len(bad), len(keys),
                                 [(k, got.get(k), want[k]) for k in bad[:5]]))
            else:
                bad = [k for k in keys if got.get(k) != ref.get(k)]
                lines.append("%s: %d of %d keys differ from %s, e.g. %r" % (
                    nd.node_id, len(bad), len(keys), nodes[0].node_id,
                    [(k, got.get(k), ref.get(k)) for k in bad[:5]]))
    return "\n".join(lines)


def read_all(nodes, keys):
    """{node_id: {key: get reply}}, None for a node that does not answer."""
    out = {}
    for nd in nodes:
        try:
            out[nd.node_id] = read_keys(nd.port, keys)
        except Exception:
            out[nd.node_id] = None
    return out


def check_converged(nodes, keys, want=None, timeout=30.0, what="the pool"):
    """Poll until every node answers stats(), every items_digest is equal,
    and full reads of `keys` are equal on every node (and, if `want` is a
    {key: reply} dict, equal to it). Returns the common reads. On timeout,
    fails the test with a per-node summary (digests, counters, how many
    keys differ and how)."""
    keys = list(keys)
    deadline = time.monotonic() + timeout
    reads = {}
    while True:
        sts = [safe_stats(nd) for nd in nodes]
        if all(st is not None for st in sts) and \
                len(set(st.get("items_digest") for st in sts)) == 1:
            reads = read_all(nodes, keys)
            vals = list(reads.values())
            if all(v is not None for v in vals) and \
                    all(v == vals[0] for v in vals) and \
                    (want is None or vals[0] == {k: want[k] for k in keys}):
                return vals[0]
        if time.monotonic() > deadline:
            if not reads:
                reads = read_all(nodes, keys)
            pytest.fail("%s did not converge within %.0f s of healing "
                        "(equal items_digest and equal reads of %d keys%s):"
                        "\n%s" % (what, timeout, len(keys),
                                  "" if want is None else
                                  ", every acknowledged write kept",
                                  _summary(nodes, keys, want, reads)))
        time.sleep(0.25)


def sync_counters(nodes):
    """{id(node): (sync_started, sync_completed)} of the nodes answering."""
    out = {}
    for nd in nodes:
        st = safe_stats(nd)
        if st is not None:
            out[id(nd)] = (int(st.get("sync_started", 0)),
                           int(st.get("sync_completed", 0)))
    return out


def no_stuck_transfer(nodes, baseline=None, timeout=20.0, quiet=1.0):
    """After healing, checks that no node is stuck in (or silently gave up)
    a state transfer:
      - every node reports repl_state up (not syncing, down, connecting);
      - a node that started a transfer since `baseline` ({id(node):
        (sync_started, sync_completed)} taken when the pool was up, before
        the faults; a node process started later counts from (0, 0)) has
        also completed one since: a transfer that ended without its data
        (e.g. "found no peer to answer" while peers exist) is stuck;
      - sync_started and sync_completed do not move for `quiet` seconds
        (no transfer loop once the pool is healed).
    Polls up to `timeout` s, then fails with the counters."""
    baseline = baseline or {}
    last = {}

    def ok():
        now = {}
        for nd in nodes:
            st = safe_stats(nd)
            if st is None:
                last["why"] = "%s does not answer" % nd.node_id
                return False
            if st.get("repl_state") != "up":
                last["why"] = "%s repl_state %s" % (nd.node_id,
                                                     st.get("repl_state"))
                return False
            s, c = int(st.get("sync_started", 0)), int(st.get("sync_completed",
                                                               0))
            s0, c0 = baseline.get(id(nd), (0, 0))
            if s > s0 and c <= c0:
                last["why"] = ("%s started %d state transfer(s) since the "
                               "faults began and completed none (sync_started"
                               " %d->%d, sync_completed %d->%d)"
                               % (nd.node_id, s - s0, s0, s, c0, c))
                return False
            now[id(nd)] = (s, c)
        if last.get("counters") == now and \
                time.monotonic() - last["since"] >= quiet:
            return True
        if last.get("counters") != now:
            last["counters"] = now
            last["since"] = time.monotonic()
            last["why"] = "transfer counters still moving"
        return False
    try:
        rabbit.poll(ok, timeout=timeout, interval=0.2,
                    what="no stuck state transfer")
    except rabbit.Timeout:
        pytest.fail("stuck state transfer after healing: %s\n%s"
                    % (last.get("why"), describe(nodes)))
