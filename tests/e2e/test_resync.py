"""Incremental state transfer and anti-entropy (issue 14; SPEC section 10;
docs/replication.md, "State transfer" and "Anti-entropy"): a real private
RabbitMQ broker, real vitamin processes, a TCP proxy of the test's own to
cut a node off, and the broker's own tools to delete its queue.

A node is *cut off* here the way a real one loses data: its broker link is
cut (faults_util.TcpProxy) and, while it is away, its queue is deleted with
rabbitmqctl (as the broker does when a queue outlives --rabbitmq_queue_ttl,
or loses it). When the link heals, the node finds its queue gone and asks
for a state transfer; holding data, it asks for an incremental one.

  1 (slow) 100k keys: a fresh node joins (full transfer, its bytes measured),
    is cut off while 1% of the keys change, and catches up by an incremental
    transfer that receives a small fraction of the full transfer's bytes:
    the changed keys' records and the digests, not whole leaves (the items
    sent are counted); the digests converge
  2 a fresh (empty) node gets a full transfer, not an incremental one
  3 both sides newer on different keys: what the cut-off node holds newer
    (even what only it ever saw) reaches its peer, and the reverse; each
    side sends exactly the keys it holds newer, not the leaves around them
  4 tombstones travel: a key deleted while the node was cut off is gone on
    it afterwards, and a delayed older set cannot bring it back
  5 a flush made while the node was cut off reaches it by the transfer (the
    FLUSH watermark travels), and the pool converges
  6 anti-entropy: a write applied on one node only, behind replication's
    back (published straight into its queue), heals within a few rounds,
    and the repair is counted
  7 (slow) anti-entropy: a quiet healthy pool compares digests and repairs
    nothing
  8 two nodes that sync with each other at the same moment both complete
    at the first attempt (each one's push to the other does not cut short
    its answer to the other's request)
  9 below the leaves, message by message (the test plays the requester over
    pika): a requester from before key summaries gets every item of the
    leaves that differ; one that sends its key summaries gets only the
    items it lacks or holds older, and is asked back exactly the keys it
    holds newer or the node lacks
 10 key summaries with a hole in their numbers: the node falls back to the
    whole leaves, and asks back every item of them

Every test uses its own exchange; whatever it started is killed at
teardown, where the nodes' stats and logs are printed.

Run: VITAMIN_BIN=$PWD/build/vitamin /usr/bin/python3 -m pytest -q \
         tests/e2e/test_resync.py
"""

import ctypes
import itertools
import os
import random
import re
import time

import pytest

import rabbit
import vitamin_wire as vw
from rabbit import NOT_FOUND, poll
from faults_util import (TcpProxy, describe, kill_node, load_keys, new_node,
                         node_logs, read_keys, safe_stats, wait_converged,
                         wait_up)

pytestmark = pytest.mark.replication

CONVERGE_TIMEOUT = 60.0
# Off unless a test is about it: a round could otherwise repair what the
# transfer under test should carry.
AE_OFF = ("--anti_entropy_interval", "0")
AE_FAST = ("--anti_entropy_interval", "1")

_seq = itertools.count(1)


# --------------------------------------------------------------------------
# fixtures and helpers

class Env:
    """What one test started (nodes, proxies); torn down in reverse."""

    def __init__(self, request, broker):
        base = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)[:50]
        self.broker = broker
        self.exchange = "vt.resync.%d.%d.%s" % (os.getpid(), next(_seq), base)
        self.nodes = []
        self.things = []

    def node(self, node_id, via=None, extra=AE_OFF):
        """A node on the broker, or through proxy `via`."""
        port = via.port if via is not None else self.broker.port
        nd = new_node(port, self.exchange, node_id, extra=extra)
        self.nodes.append(nd)
        nd.start()
        return nd

    def proxy(self):
        p = TcpProxy(self.broker.port)
        self.things.append(p)
        return p

    def queue(self, nd):
        return "%s.%s" % (self.exchange, nd.node_id)

    def teardown(self):
        live = [nd for nd in self.nodes if nd.alive()]
        if live:
            print(describe(live))
            for nd in live:
                st = safe_stats(nd) or {}
                print("%s: %s" % (nd.node_id, " ".join(
                    "%s=%s" % (k, v) for k, v in sorted(st.items())
                    if k.startswith(("sync_", "anti_entropy_")))))
        for t in reversed(self.things):
            try:
                t.close()
            except Exception as e:  # teardown must go on
                print("teardown of %r failed: %r" % (t, e))
        print(node_logs(self.nodes, 6000))
        for nd in self.nodes:
            try:
                kill_node(nd)
            except Exception as e:
                print("kill of %s failed: %r" % (nd.node_id, e))


@pytest.fixture
def env(request, broker):
    e = Env(request, broker)
    try:
        yield e
    finally:
        e.teardown()


def stats(nd):
    st = safe_stats(nd)
    assert st is not None, "%s does not answer stats()\n%s" % (
        nd.node_id, nd.log_text(3000))
    return {k: int(v) if re.fullmatch(r"-?\d+", v) else v
            for k, v in st.items()}


def wait_synced(nd, completed, timeout=30.0):
    """Until nd has completed `completed` transfers and none is under way."""
    def ok():
        st = safe_stats(nd) or {}
        return (int(st.get("sync_completed", 0)) >= completed and
                st.get("repl_state") == "up") and st
    return poll(ok, timeout=timeout, interval=0.1,
                what="%s: %d transfers completed\n%s" % (
                    nd.node_id, completed, nd.log_text(3000)))


def cut_off(env, nd, proxy):
    """Cut nd's broker link and delete its queue while it is away: what
    the pool publishes meanwhile is lost for it. Returns nd's stats from
    just before the cut."""
    before = stats(nd)
    killed = proxy.cut()
    assert killed >= 2, "the proxy had %d connections to cut" % killed
    poll(lambda: (safe_stats(nd) or {}).get("repl_state") == "down",
         timeout=10, what="%s notices the cut" % nd.node_id)
    q = env.queue(nd)
    r = env.broker.ctl("delete_queue", q)
    assert r.returncode == 0, "delete_queue %s: %s %s" % (q, r.stdout,
                                                         r.stderr)
    names = [row[0] for row in env.broker.list_queues()]
    assert q not in names, "queue %s still there: %r" % (q, names)
    return before


def assert_caught_up_incrementally(before, after):
    """nd caught up by incremental transfers only (a retry of its joining
    transfer may have counted two full ones before)."""
    assert after["sync_incremental"] > before["sync_incremental"], after
    assert after["sync_full"] == before["sync_full"], \
        "a full transfer after all: %r" % after


def heal(env, nd, proxy, completed):
    """Heal the link; wait until nd found its queue lost and completed its
    transfer number `completed`."""
    proxy.heal()
    return wait_synced(nd, completed, timeout=40.0)


def publish_to_queue(broker, queue, bodies):
    """Publish straight into one node's queue (the default exchange, the
    queue's name as routing key): that node alone gets the bodies."""
    conn = rabbit.connect(broker)
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        for b in bodies:
            ch.basic_publish(exchange="", routing_key=queue, body=b)
    finally:
        conn.close()


def stamp(ms):
    """An HLC version at unix time ms."""
    return ms << 16


def now_ms():
    return int(time.time() * 1000)


def ghost_writes(origin, records):
    """A WRITES batch from a node that does not exist: its first batch
    (seq 1), so no receiver sees a sequence gap."""
    return vw.encode_batch(vw.KIND_WRITES, origin, 0x5EED, 1, records)


def values(nd, keys):
    return read_keys(nd.port, keys)


def _val(i, gen):
    return "v%d-%06d-%s" % (gen, i, "x" * 24)


def delta(after, before, name):
    return after[name] - before[name]


_xxh3 = []


def key_hash(key):
    """XXH3-64 of a key, seed 0, as Vitamin names keys in key summaries
    (libxxhash, which the build links too)."""
    if not _xxh3:
        f = ctypes.CDLL("libxxhash.so.0").XXH3_64bits
        f.restype = ctypes.c_uint64
        f.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        _xxh3.append(f)
    key = key.encode() if isinstance(key, str) else key
    return _xxh3[0](key, len(key))


class FakeRequester:
    """A requester played by the test: its own queue <exchange>.<id> (not
    bound to the fanout, so only what is sent to it by name arrives), the
    SYNC_REQUEST, RANGES and SUMMARY messages it sends, and the answer
    stream it reads back, whose numbering it checks."""

    def __init__(self, env, node_id):
        self.id = node_id.encode()
        self.exchange = env.exchange
        self.session = random.getrandbits(63) | 1
        self.next_seq = 1
        self.conn = rabbit.connect(env.broker)
        self.ch = self.conn.channel()
        self.ch.queue_declare(queue="%s.%s" % (env.exchange, node_id),
                              exclusive=True, auto_delete=True)
        self.queue = "%s.%s" % (env.exchange, node_id)
        env.things.append(self)

    def send(self, kind, records=(), to=None, **kw):
        """Publish to the pool, or (to: a node) to that node's queue."""
        body = vw.encode_batch(kind, self.id, 0x5EED, kw.pop("seq", 0),
                               list(records), aux=self.session,
                               target=to.node_id.encode() if to else b"",
                               **kw)
        self.ch.basic_publish(
            exchange="" if to else self.exchange,
            routing_key="%s.%s" % (self.exchange, to.node_id) if to else "",
            body=body)

    def next(self, timeout=20.0):
        """The answer stream's next message, decoded; in order."""
        deadline = time.monotonic() + timeout
        while True:
            method, _props, body = self.ch.basic_get(self.queue,
                                                     auto_ack=True)
            if method is not None:
                d = vw.decode_batch(body)
                assert d["aux"] == self.session and d["target"] == self.id, d
                assert d["seq"] == self.next_seq, (d["seq"], self.next_seq)
                self.next_seq += 1
                return d
            assert time.monotonic() < deadline, "no answer from the node"
            self.conn.sleep(0.05)

    def descend(self, peer):
        """Ask peer for an incremental transfer and walk its digests down
        as a node holding nothing would (a child differs when its digest is
        not 0). Returns the leaves that differ and the first DIGESTS'
        total (1: peer takes key summaries)."""
        self.send(vw.KIND_SYNC_REQUEST, base=1)
        d = self.next()
        features = d["total"]
        while True:
            assert d["kind"] == vw.KIND_DIGESTS, d
            diff = []
            for r in d["records"]:
                level, index = vw.node_of(r["key"])
                diff += [(level + 1, index * 16 + c)
                         for c, dg in enumerate(vw.digests_of(r["value"]))
                         if dg]
            if diff[0][0] == vw.NODE_LEVELS - 1:
                return [i for _l, i in diff], features
            self.send(vw.KIND_RANGES, [vw.node_record(l, i) for l, i in diff],
                      to=peer)
            d = self.next()

    def rest(self):
        """The answer's messages up to its SYNC_DONE: the item records,
        the key hashes asked back, whether a WANTS asked for every item
        of the leaves, and the SYNC_DONE."""
        items, wanted, want_all, data_records = [], [], False, 0
        while True:
            d = self.next()
            if d["kind"] == vw.KIND_SYNC_DONE:
                assert d["total"] == data_records, (d, data_records)
                return items, wanted, want_all, d
            if d["kind"] == vw.KIND_WANTS:
                want_all |= d["total"] == 1
                for r in d["records"]:
                    wanted += vw.hashes_of(r["value"])
                continue
            assert d["kind"] == vw.KIND_SYNC_DATA, d
            data_records += len(d["records"])
            items += [r for r in d["records"] if r["op"] != vw.OP_FLUSH]

    def close(self):
        try:
            self.conn.close()
        except Exception:
            pass


# --------------------------------------------------------------------------
# 1. a cut-off node catches up incrementally (100k keys, 1% changed)

@pytest.mark.slow
def test_cut_off_node_catches_up_incrementally(env):
    """Issue 14: node b joins a pool holding 100k keys (a full transfer:
    its bytes are the yardstick), then is cut off - link cut, queue
    deleted - while 1% of the keys change on node a. After the heal, b
    catches up by an incremental transfer (sync_incremental grew, sync_full
    did not) that receives a small fraction of the full transfer's bytes,
    and the digests converge."""
    n = 100000
    a = env.node("a")
    t0 = time.monotonic()
    load_keys(a.port, (("k:%06d" % i, _val(i, 0)) for i in range(n)))
    t_load = time.monotonic() - t0
    assert stats(a)["curr_items"] == n

    proxy = env.proxy()
    b = env.node("b", via=proxy)
    wait_synced(b, 1, timeout=60.0)
    wait_converged([a, b], CONVERGE_TIMEOUT)
    sb0 = stats(b)
    assert sb0["sync_full"] >= 1 and sb0["sync_incremental"] == 0, sb0
    assert sb0["curr_items"] == n
    full_bytes, full_ms = sb0["sync_bytes_received"], sb0["sync_last_ms"]
    assert full_bytes > n * 60, "a full transfer of %d keys took %d bytes" % (
        n, full_bytes)

    sb_cut = cut_off(env, b, proxy)
    changed = ["k:%06d" % i for i in range(0, n, 100)]      # 1%
    load_keys(a.port, ((k, _val(int(k[2:]), 1)) for k in changed))
    sa1 = stats(a)
    heal(env, b, proxy, 2)
    wait_converged([a, b], CONVERGE_TIMEOUT)
    sb1 = stats(b)
    sa2 = stats(a)

    assert_caught_up_incrementally(sb_cut, sb1)
    incr_bytes = sb1["sync_bytes_received"] - full_bytes
    ratio = incr_bytes / full_bytes
    print("100k keys, 1%% changed: full transfer %d bytes in %d ms; "
          "incremental %d bytes in %d ms (%.1f%% of the full); leaves "
          "requested %d, digests compared %d, digests a sent %d; load %.1f s"
          % (full_bytes, full_ms, incr_bytes, sb1["sync_last_ms"],
             100.0 * ratio, sb1["sync_leaves_requested"],
             sb1["sync_ranges_compared"],
             stats(a)["sync_digests_sent"], t_load))
    assert 0 < incr_bytes < 0.05 * full_bytes, (incr_bytes, full_bytes)
    # ~1000 changed keys fall in ~1000 of the 65536 leaves
    assert 900 <= sb1["sync_leaves_requested"] <= 1100, sb1
    assert sb1["sync_ranges_compared"] > 0
    assert sa2["sync_digests_sent"] > sa1["sync_digests_sent"]
    # Below the leaves only the changed keys travel, not every key of the
    # leaves holding them (~1.5 keys a leaf here: 2.5k items for 1k
    # changes). a sends b exactly the changed keys (once per attempt); b
    # holds nothing newer, so a asks nothing back and b pushes nothing; b
    # sent a key summary of each of its keys in those leaves.
    attempts = delta(sb1, sb_cut, "sync_incremental")
    a_items = delta(sa2, sa1, "sync_items_sent")
    assert len(changed) <= a_items <= len(changed) * attempts, (a_items,
                                                                attempts)
    assert delta(sa2, sa1, "sync_wants_sent") == 0, sa2
    assert delta(sb1, sb_cut, "sync_items_sent") == 0, sb1
    assert delta(sb1, sb_cut, "sync_summaries_sent") >= len(changed), sb1
    # and the bytes: the digests, then one record (~85 B) per changed key
    digest_bytes = delta(sa2, sa1, "sync_digests_sent") * (43 + 5 + 128)
    assert incr_bytes <= digest_bytes + attempts * (len(changed) * 100 +
                                                    20000), (
        incr_bytes, digest_bytes, attempts)
    got = values(b, changed)
    bad = [k for k in changed if got[k] != _val(int(k[2:]), 1)]
    assert not bad, "b missed %d changes, e.g. %r" % (len(bad), bad[:5])
    assert stats(b)["curr_items"] == n


# --------------------------------------------------------------------------
# 2. an empty node still gets a full transfer

def test_fresh_node_gets_a_full_transfer(env):
    """A node that joins with an empty store asks for a full transfer: no
    digests are exchanged, and it gets every key and tombstone."""
    a = env.node("a")
    # a has joined (alone) before b starts: otherwise b, asking while a is
    # still connecting, gets a's writes live and its retry is rightly
    # incremental
    wait_up([a])
    load_keys(a.port, (("f:%d" % i, "val-%d" % i) for i in range(2000)))
    assert a.c.delete("f:7") == "OK"
    b = env.node("b")
    wait_synced(b, 1)
    wait_converged([a, b], 20)
    sb, sa = stats(b), stats(a)
    assert sb["sync_full"] >= 1 and sb["sync_incremental"] == 0, sb
    assert sb["sync_leaves_requested"] == 0 and sb["sync_ranges_compared"] == 0
    assert sb["sync_bytes_received"] > 2000 * 50, sb
    assert sa["sync_served"] >= 1 and sa["sync_digests_sent"] == 0, sa
    assert sa["sync_bytes_sent"] >= sb["sync_bytes_received"], (sa, sb)
    assert sb["curr_items"] == 1999 and sb["tombstones"] >= 1, sb
    assert b.c.get("f:7") == NOT_FOUND


# --------------------------------------------------------------------------
# 3. both sides newer on different keys

def test_both_sides_newer_converge_both_ways(env):
    """While b is cut off, a changes keys A*, b changes keys B*; of keys W1,
    b changes them first and a later (a must win), of W2 the reverse. b
    also holds newer versions of keys X that only it ever saw (published
    straight into its queue before the cut): only the transfer's push of
    b's differing ranges can bring those to a. After the heal, both nodes
    hold the newest of every key."""
    proxy = env.proxy()
    a = env.node("a")
    b = env.node("b", via=proxy)
    wait_up([a, b])
    keys = ["w:%d" % i for i in range(3000)]
    load_keys(a.port, ((k, "base") for k in keys))
    wait_converged([a, b], 20)
    xs, as_, bs = keys[0:100], keys[100:200], keys[200:300]
    w1, w2 = keys[300:350], keys[350:400]

    t = now_ms()
    publish_to_queue(env.broker, env.queue(b), [ghost_writes(b"ghost", [
        dict(op=vw.OP_SET, key=k.encode(), value=b"x-new",
             version=stamp(t) + i, origin_tag=77)
        for i, k in enumerate(xs)])])
    poll(lambda: b.c.get(xs[-1]) == "x-new", timeout=10,
         what="b applied the batch published into its queue")
    assert a.c.get(xs[-1]) == "base"
    time.sleep(2.5)   # a does not get it by replication, ever
    assert a.c.get(xs[0]) == "base"

    sb_cut = cut_off(env, b, proxy)
    sa0 = stats(a)
    ca, cb = a.client(), b.client()
    try:
        for k in w2:
            assert ca.set(k, "a-then-b") == "a-then-b"
        for k in w1:
            assert cb.set(k, "b-then-a") == "b-then-a"
        time.sleep(0.05)
        for k in as_:
            assert ca.set(k, "a-new") == "a-new"
        for k in bs:
            assert cb.set(k, "b-new") == "b-new"
        for k in w1:
            assert ca.set(k, "a-last") == "a-last"
        for k in w2:
            assert cb.set(k, "b-last") == "b-last"
    finally:
        ca.close()
        cb.close()
    heal(env, b, proxy, 2)
    wait_converged([a, b], 30)
    want = dict([(k, "x-new") for k in xs] + [(k, "a-new") for k in as_] +
                [(k, "b-new") for k in bs] + [(k, "a-last") for k in w1] +
                [(k, "b-last") for k in w2])
    for nd in (a, b):
        got = values(nd, sorted(want))
        bad = {k: (got[k], v) for k, v in want.items() if got[k] != v}
        assert not bad, "%s: %d keys not the newest: %r" % (
            nd.node_id, len(bad), sorted(bad.items())[:8])
    sa, sb = stats(a), stats(b)
    assert_caught_up_incrementally(sb_cut, sb)
    # X reached a only as transfer data pushed by b
    assert sa["sync_items"] - sa0["sync_items"] >= len(xs), (sa0, sa)
    assert sa["anti_entropy_repairs"] == sb["anti_entropy_repairs"] == 0
    # Only the keys that differ travelled, each from the side that holds it
    # newer, not the leaves around them: a sent b A* and W1 (once per
    # attempt; a later attempt finds them equal), not its older X, B*, W2;
    # b pushed a X (only b ever had them) and at most B* and W2 (which its
    # outbox may have brought a first), not its older A*, W1.
    attempts = delta(sb, sb_cut, "sync_incremental")
    a_items = delta(sa, sa0, "sync_items_sent")
    b_items = delta(sb, sb_cut, "sync_items_sent")
    assert len(as_) + len(w1) <= a_items <= (len(as_) + len(w1)) * attempts, (
        a_items, attempts)
    assert len(xs) <= b_items <= (len(xs) + len(bs) + len(w2)) * attempts, (
        b_items, attempts)
    assert delta(sa, sa0, "sync_wants_sent") >= len(xs), sa
    assert delta(sb, sb_cut, "sync_summaries_sent") >= len(xs) + len(bs), sb


# --------------------------------------------------------------------------
# 4. tombstones travel

def test_tombstones_travel(env):
    """Keys deleted on a while b is cut off are gone on b after its
    incremental transfer (the ranges holding them differ, and a sends its
    tombstones with them); a set made before the delete and delivered late
    to b stays dead."""
    proxy = env.proxy()
    a = env.node("a")
    b = env.node("b", via=proxy)
    wait_up([a, b])
    keys = ["t:%d" % i for i in range(2000)]
    load_keys(a.port, ((k, "alive") for k in keys))
    wait_converged([a, b], 20)
    gone = keys[::40]
    sb_cut = cut_off(env, b, proxy)
    t_before = now_ms()
    time.sleep(0.01)
    c = a.client()
    try:
        for k in gone:
            assert c.delete(k) == "OK"
    finally:
        c.close()
    assert b.c.get(gone[0]) == "alive"
    heal(env, b, proxy, 2)
    wait_converged([a, b], 30)
    got = values(b, gone)
    assert all(v == NOT_FOUND for v in got.values()), got
    sb = stats(b)
    assert sb["tombstones"] >= len(gone), sb
    assert_caught_up_incrementally(sb_cut, sb)

    # a set made before the deletes, delivered late (to b only)
    stale0 = sb["repl_stale"]
    publish_to_queue(env.broker, env.queue(b), [ghost_writes(b"late", [
        dict(op=vw.OP_SET, key=k.encode(), value=b"undead",
             version=stamp(t_before), origin_tag=99) for k in gone])])
    poll(lambda: stats(b)["repl_stale"] >= stale0 + len(gone), timeout=10,
         what="b refused the delayed sets")
    got = values(b, gone)
    assert all(v == NOT_FOUND for v in got.values()), got
    assert stats(a)["items_digest"] == stats(b)["items_digest"]


# --------------------------------------------------------------------------
# 5. a flush travels

def test_flush_reaches_cut_off_node(env):
    """A flush made while b is cut off (a FLUSH record published to the
    pool, as a node's flush_all is; a applies it, b's queue is gone): b's
    incremental transfer carries a's flush watermark (every transfer ends
    with it), so b drops every item written before the flush, keeps what a
    wrote after it, and the pool converges."""
    proxy = env.proxy()
    a = env.node("a")
    b = env.node("b", via=proxy)
    wait_up([a, b])
    old = ["o:%d" % i for i in range(500)]
    load_keys(a.port, ((k, "old") for k in old))
    wait_converged([a, b], 20)
    sb_cut = cut_off(env, b, proxy)
    time.sleep(0.01)
    rabbit.publish(env.broker, env.exchange, [ghost_writes(b"flusher", [
        dict(op=vw.OP_FLUSH, version=stamp(now_ms()), origin_tag=3)])])
    poll(lambda: stats(a)["curr_items"] == 0, timeout=10,
         what="a applied the flush")
    time.sleep(0.01)
    new = ["n:%d" % i for i in range(20)]
    load_keys(a.port, ((k, "new") for k in new))
    assert stats(a)["curr_items"] == len(new)
    assert stats(b)["curr_items"] == len(old)
    flushes0 = stats(b)["repl_flushes"]
    heal(env, b, proxy, 2)
    wait_converged([a, b], 30)
    sb = stats(b)
    assert sb["curr_items"] == len(new), sb
    assert sb["repl_flushes"] == flushes0 + 1, sb
    assert_caught_up_incrementally(sb_cut, sb)
    got = values(b, old[:50] + new)
    assert all(got[k] == NOT_FOUND for k in old[:50]), got
    assert all(got[k] == "new" for k in new), got
    # b's push of its (flushed) items changed nothing on a
    assert stats(a)["curr_items"] == len(new)


# --------------------------------------------------------------------------
# 6. anti-entropy heals a divergence nobody saw

def test_anti_entropy_heals_a_silent_divergence(env):
    """A WRITES batch of a node that does not exist, published straight
    into node b's queue: b applies it, a and c never see it, and no
    sequence gap tells anyone. With --anti_entropy_interval=1 the nodes
    compare root digests while idle; after two differing rounds a repair
    (an incremental transfer) runs, and the pool converges within a few
    intervals."""
    a = env.node("a", extra=AE_FAST)
    b = env.node("b", extra=AE_FAST)
    c = env.node("c", extra=AE_FAST)
    nodes = [a, b, c]
    wait_up(nodes)
    load_keys(a.port, (("ae:%d" % i, "v%d" % i) for i in range(1000)))
    wait_converged(nodes, 20)
    s0 = {nd.node_id: stats(nd) for nd in nodes}
    t = now_ms()
    publish_to_queue(env.broker, env.queue(b), [ghost_writes(b"ghost", [
        dict(op=vw.OP_SET, key=b"ae:secret", value=b"only-b",
             version=stamp(t), origin_tag=5),
        dict(op=vw.OP_SET, key=b"ae:7", value=b"newer-on-b",
             version=stamp(t) + 1, origin_tag=5)])])
    poll(lambda: b.c.get("ae:secret") == "only-b", timeout=10,
         what="b applied the batch published into its queue")
    t_div = time.monotonic()
    assert a.c.get("ae:secret") == NOT_FOUND
    # idle after 2 s, then two differing rounds of 1 s, then the repair
    wait_converged(nodes, 20)
    healed_s = time.monotonic() - t_div
    for nd in nodes:
        assert nd.c.get("ae:secret") == "only-b", nd.node_id
        assert nd.c.get("ae:7") == "newer-on-b", nd.node_id
    s1 = {nd.node_id: stats(nd) for nd in nodes}
    repairs = {k: s1[k]["anti_entropy_repairs"] - s0[k]["anti_entropy_repairs"]
               for k in s1}
    print("healed in %.1f s; repairs %r" % (healed_s, repairs))
    assert sum(repairs.values()) >= 1, repairs
    assert all(s1[k]["anti_entropy_rounds"] > s0[k]["anti_entropy_rounds"]
               for k in s1), (s0, s1)
    assert all(s1[k]["repl_gaps"] == s0[k]["repl_gaps"] for k in s1)
    assert all(s1[k]["sync_full"] == s0[k]["sync_full"] for k in s1)
    assert healed_s < 12, healed_s
    assert "anti-entropy" in b.log_text(20000) + a.log_text(20000)


# --------------------------------------------------------------------------
# 7. a quiet healthy pool repairs nothing

@pytest.mark.slow
def test_quiet_pool_repairs_nothing(env):
    """Three nodes, --anti_entropy_interval=1, some data and then ~10 s of
    quiet: every node compares its root digest every second (the rounds
    are counted), finds it equal to its peers', and starts no transfer."""
    nodes = [env.node(n, extra=AE_FAST) for n in ("a", "b", "c")]
    wait_up(nodes)
    load_keys(nodes[0].port, (("q:%d" % i, "v%d" % i) for i in range(1000)))
    wait_converged(nodes, 20)
    c = nodes[1].client()
    try:
        for i in range(0, 1000, 10):
            assert c.delete("q:%d" % i) == "OK"
    finally:
        c.close()
    wait_converged(nodes, 20)
    s0 = {nd.node_id: stats(nd) for nd in nodes}
    time.sleep(10)
    s1 = {nd.node_id: stats(nd) for nd in nodes}
    for k in s1:
        rounds = s1[k]["anti_entropy_rounds"] - s0[k]["anti_entropy_rounds"]
        assert rounds >= 5, (k, s0[k], s1[k])
        assert s1[k]["anti_entropy_repairs"] == 0, (k, s1[k])
        assert s1[k]["sync_started"] == s0[k]["sync_started"], (k, s1[k])
        assert s1[k]["sync_served"] == s0[k]["sync_served"], (k, s1[k])
    wait_converged(nodes, 1)


# --------------------------------------------------------------------------
# 8. two nodes resyncing with each other at once

def test_two_nodes_resync_with_each_other_at_once(env):
    """a and b each hold a write the other never saw (published straight
    into one queue each), then both see the same sequence gap (a batch of
    a new origin numbered 2, published to the pool) and ask for a transfer
    at the same moment: each serves the other's incremental request while
    pushing its own differing ranges to the other. Both transfers complete
    at the first attempt (a push to a node must not replace the stream that
    answers that node's own request), and the pool converges."""
    a = env.node("a")
    b = env.node("b")
    wait_up([a, b])
    keys = ["s:%d" % i for i in range(2000)]
    load_keys(a.port, ((k, "base") for k in keys))
    wait_converged([a, b], 20)
    t = now_ms()
    publish_to_queue(env.broker, env.queue(a), [ghost_writes(b"g1", [
        dict(op=vw.OP_SET, key=b"only-a", value=b"1", version=stamp(t),
             origin_tag=11)])])
    publish_to_queue(env.broker, env.queue(b), [ghost_writes(b"g2", [
        dict(op=vw.OP_SET, key=b"only-b", value=b"2", version=stamp(t),
             origin_tag=12)])])
    poll(lambda: a.c.get("only-a") == "1" and b.c.get("only-b") == "2",
         what="each node applied its own batch")
    s0 = {nd.node_id: stats(nd) for nd in (a, b)}
    rabbit.publish(env.broker, env.exchange, [vw.encode_batch(
        vw.KIND_WRITES, b"g3", 0x5EED, 2, [])])
    for nd in (a, b):
        wait_synced(nd, s0[nd.node_id]["sync_completed"] + 1, timeout=40)
    wait_converged([a, b], 30)
    for nd in (a, b):
        assert nd.c.get("only-a") == "1" and nd.c.get("only-b") == "2"
        st = stats(nd)
        k = nd.node_id
        assert st["repl_gaps"] == s0[k]["repl_gaps"] + 1, st
        assert st["sync_incremental"] > s0[k]["sync_incremental"], st
        assert st["sync_retried"] == s0[k]["sync_retried"], \
            "%s had to retry its transfer: %r" % (k, st)
        assert st["sync_failed"] == s0[k]["sync_failed"], st


# --------------------------------------------------------------------------
# 9. below the leaves, message by message

def _leaf(key):
    return key_hash(key) >> 48


def test_requesters_with_and_without_key_summaries(env):
    """The test plays two requesters of node a (30 keys in ~30 leaves) over
    pika, walking a's digests down as empty nodes would. a's DIGESTS say it
    takes key summaries (total 1). The first requester names the leaves
    with total 0, as a node from before key summaries does: a sends every
    item of them, and no WANTS. The second names them with total 1 and
    sends its key summaries in two SUMMARY messages: of some keys the same
    stamps as a's (nothing travels), older ones (a sends them), newer value
    or expiry stamps (a asks them back), a newer value with an older expiry
    (both), a key a never had (asked back); a sends exactly the items the
    requester lacks or holds older and asks back exactly the others."""
    a = env.node("a")
    wait_up([a])
    keys = ["lv:%02d" % i for i in range(30)]
    load_keys(a.port, ((k, "val-" + k) for k in keys))
    sa0 = stats(a)

    old = FakeRequester(env, "old")
    leaves, features = old.descend(a)
    assert features == 1
    assert sorted(leaves) == sorted({_leaf(k) for k in keys})
    old.send(vw.KIND_RANGES, [vw.node_record(4, l) for l in leaves], to=a)
    items, wanted, want_all, _done = old.rest()
    assert sorted(r["key"].decode() for r in items) == keys
    assert not wanted and not want_all
    held = {r["key"].decode(): r for r in items}   # a's stamps
    sa1 = stats(a)
    assert delta(sa1, sa0, "sync_items_sent") == len(keys)
    assert delta(sa1, sa0, "sync_wants_sent") == 0

    def summary(k, dv=0, de=0):
        r = held[k]
        return dict(hash=key_hash(k), version=r["version"] + dv,
                    origin_tag=r["origin_tag"],
                    exp_version=r["exp_version"] + de,
                    exp_origin_tag=r["exp_origin_tag"])
    same, older, newer = keys[0:10], keys[10:15], keys[15:20]
    newer_exp, mixed, lacking = keys[20], keys[21], keys[22:]
    stranger = key_hash("not-on-a")
    sums = ([summary(k) for k in same] + [summary(k, dv=-1) for k in older] +
            [summary(k, dv=+1) for k in newer] + [summary(newer_exp, de=+1)] +
            [summary(mixed, dv=+1, de=-1)] +
            [dict(hash=stranger, version=1, origin_tag=1)])
    new = FakeRequester(env, "new")
    leaves2, _ = new.descend(a)
    assert sorted(leaves2) == sorted(leaves)
    new.send(vw.KIND_RANGES, [vw.node_record(4, l) for l in leaves2], to=a,
             total=1)
    new.send(vw.KIND_SUMMARY, [vw.sums_record(sums[:9])], to=a, seq=1)
    new.send(vw.KIND_SUMMARY, [vw.sums_record(sums[9:])], to=a, seq=2,
             base=1)
    items, wanted, want_all, _done = new.rest()
    assert sorted(r["key"].decode() for r in items) == sorted(
        older + [mixed] + lacking)
    assert not want_all
    assert sorted(wanted) == sorted([key_hash(k) for k in newer] +
                                    [key_hash(newer_exp), key_hash(mixed),
                                     stranger])
    sa2 = stats(a)
    assert delta(sa2, sa1, "sync_items_sent") == len(older) + 1 + len(lacking)
    assert delta(sa2, sa1, "sync_wants_sent") == len(newer) + 3


# --------------------------------------------------------------------------
# 10. key summaries cut short

def test_summaries_with_a_hole_fall_back_to_whole_leaves(env):
    """A requester's SUMMARY messages arrive numbered 1, then 3: a cannot
    trust the summaries it has, so it sends every item of the leaves named
    and a WANTS with total 1 (every item of the requester's, back), logs
    why, and ignores the later summaries."""
    a = env.node("a")
    wait_up([a])
    keys = ["hl:%02d" % i for i in range(20)]
    load_keys(a.port, ((k, "v-" + k) for k in keys))
    x = FakeRequester(env, "holey")
    leaves, _ = x.descend(a)
    x.send(vw.KIND_RANGES, [vw.node_record(4, l) for l in leaves], to=a,
           total=1)
    x.send(vw.KIND_SUMMARY, [vw.sums_record([dict(hash=key_hash(k),
                                                  version=2**63)
                                             for k in keys[:5]])],
           to=a, seq=1)
    x.send(vw.KIND_SUMMARY, [vw.sums_record([dict(hash=key_hash(keys[5]),
                                                  version=2**63)])],
           to=a, seq=3, base=1)
    items, wanted, want_all, _done = x.rest()
    assert sorted(r["key"].decode() for r in items) == keys
    assert want_all and not wanted
    assert "key summaries of holey lost messages" in a.log_text(20000)
