"""End-to-end replication tests (SPEC section 5) against a private RabbitMQ.

One broker for the whole module (started in ~5 s); every test uses its own
--rabbitmq_exchange, so tests do not see each other's messages. Nodes are
started with --node_id nodeK --log_level info; their logs are printed when a
test fails (pytest shows captured output of failing tests).

Run: cd /work/main && /usr/bin/python3 -m pytest -q tests/e2e/test_replication.py
"""

import itertools
import os
import random
import re
import threading
import time

import pytest

import rabbit
from rabbit import NOT_FOUND, poll, encode_value

pytestmark = pytest.mark.replication

_exchange_seq = itertools.count(1)


# --------------------------------------------------------------------------
# fixtures

def _exchange_name(request):
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)[:60]
    return "vt.%d.%d.%s" % (os.getpid(), next(_exchange_seq), base)


@pytest.fixture
def pool(broker, request):
    """Factory: pool(n, extra=()) starts node1..nodeN on a fresh exchange
    and waits until every node reports repl_state up. At teardown every
    node gets SIGTERM and must exit 0 (SPEC 5.8)."""
    clusters = []

    def make(n, extra=(), up_timeout=20.0):
        c = rabbit.Cluster(broker, n, _exchange_name(request), extra=extra)
        clusters.append(c)
        c.start(up_timeout)
        return c

    yield make
    problems = []
    for c in clusters:
        try:
            print(c.describe())
        except Exception:
            pass
        codes = c.stop()
        print(c.logs())
        for node_id, rc in codes.items():
            if rc not in (0, None):
                problems.append("%s exited %r on SIGTERM" % (node_id, rc))
    assert not problems, "; ".join(problems)


def _fail(cluster, msg):
    pytest.fail("%s\n%s" % (msg, cluster.describe()))


def wait_value(node, key, want, timeout=10.0):
    """Poll get(key) on node until it equals want (an encoded reply)."""
    c = node.client()
    try:
        last = [None]

        def ok():
            last[0] = c.get(key)
            return last[0] == want
        try:
            poll(ok, timeout=timeout, interval=0.02)
        except rabbit.Timeout:
            pytest.fail("%s: get(%r) stayed %r, expected %r within %.0f s"
                        % (node.node_id, key, last[0], want, timeout))
    finally:
        c.close()


def counters(node):
    st = node.stats()
    return {k: int(v) for k, v in st.items()
            if k.startswith("repl_") and re.fullmatch(r"-?\d+", v)}


# --------------------------------------------------------------------------
# 1. every write replicates

@pytest.mark.parametrize("n", [2, 3])
def test_every_write_replicates(pool, n):
    cl = pool(n)
    a, others = cl[0], cl.nodes[1:]
    for nd in cl:
        st = nd.stats()
        assert st.get("node_id") == nd.node_id, st
        assert st.get("repl_state") == "up", st

    # set on A, readable everywhere
    assert a.c.set("k1", "v1") == "v1"
    for nd in others:
        wait_value(nd, "k1", "v1")

    # binary-safe values travel byte-exact
    val = b"a\x00b\n\r\t\"q\\ \x7f\xff\xc3\xa9 Error: x"
    assert a.c.set("bin", val) == encode_value(val)
    for nd in others:
        wait_value(nd, "bin", encode_value(val))
    assert encode_value(b"Error: x") == "\\x45rror: x"
    assert a.c.set("errval", "Error: x") == "\\x45rror: x"
    for nd in others:
        wait_value(nd, "errval", "\\x45rror: x")

    # writes on every node reach every other node
    for i, nd in enumerate(cl):
        assert nd.c.set("from-%s" % nd.node_id, "val-%d" % i) == "val-%d" % i
    for i, src in enumerate(cl):
        for nd in cl:
            wait_value(nd, "from-%s" % src.node_id, "val-%d" % i)

    # an overwrite on another node wins everywhere (writes are sequential:
    # the second one is made after the first has been seen)
    last = cl[-1]
    assert last.c.set("k1", "v2") == "v2"
    for nd in cl:
        wait_value(nd, "k1", "v2")

    # set with a TTL carries its expiry
    assert a.c.set("ttlkey", "tv", 50) == "tv"
    for nd in others:
        wait_value(nd, "ttlkey", "tv")
        t = int(nd.c.ttl("ttlkey"))
        assert 48 <= t <= 50, "%s: ttl(ttlkey) = %d" % (nd.node_id, t)

    # expire replicates (set on A, expire on the last node)
    assert last.c.expire("k1", 100) == "OK"
    for nd in cl:
        poll(lambda: nd.c.ttl("k1") != "-1", timeout=10,
             what="%s: ttl(k1) changed by a remote expire" % nd.node_id)
        t = int(nd.c.ttl("k1"))
        assert 98 <= t <= 100, "%s: ttl(k1) = %d" % (nd.node_id, t)
        assert nd.c.get("k1") == "v2"
    # expire 0 removes the expiry everywhere
    assert a.c.expire("k1", 0) == "OK"
    for nd in cl:
        poll(lambda: nd.c.ttl("k1") == "-1", timeout=10,
             what="%s: ttl(k1) == -1 after a remote expire 0" % nd.node_id)
        assert nd.c.get("k1") == "v2"

    # del replicates
    assert others[0].c.delete("k1") == "OK"
    for nd in cl:
        wait_value(nd, "k1", NOT_FOUND)
        assert nd.c.ttl("k1") == NOT_FOUND
        assert nd.c.delete("k1") == NOT_FOUND

    # a key deleted and set again comes back everywhere
    assert a.c.set("k1", "v3") == "v3"
    for nd in cl:
        wait_value(nd, "k1", "v3")

    cl.wait_converged()
    for nd in cl:
        s = counters(nd)
        assert s["repl_malformed"] == 0, (nd.node_id, s)
        assert s["repl_gaps"] == 0, (nd.node_id, s)
        assert s["repl_outbox_dropped"] == 0, (nd.node_id, s)


# --------------------------------------------------------------------------
# 2. expiry is absolute

def _gone_times(nodes, key, t0, until):
    """Poll get(key) on every node until it is gone on all of them; return
    {node_id: seconds after t0 when it was first seen gone}."""
    gone = {}
    clients = {nd.node_id: nd.client() for nd in nodes}
    try:
        while len(gone) < len(nodes) and time.monotonic() - t0 < until:
            for nd in nodes:
                if nd.node_id in gone:
                    continue
                r = clients[nd.node_id].get(key)
                if r == NOT_FOUND:
                    gone[nd.node_id] = time.monotonic() - t0
                else:
                    assert r == "tv", "%s: get(%r) = %r" % (nd.node_id, key, r)
            time.sleep(0.01)
    finally:
        for c in clients.values():
            c.close()
    return gone


def _check_gone(gone, ttl, t_set, diff=0.5, slack=0.6):
    """gone: from _gone_times (relative to t0 = just before the set);
    t_set: seconds from t0 until the set's reply arrived."""
    assert set(gone) == {"node1", "node2"}, \
        "key still there %.0f s after a set with ttl %d: gone=%r" % (
            ttl + 4, ttl, gone)
    for node_id, t in gone.items():
        assert ttl - 0.1 <= t <= ttl + t_set + slack, \
            "%s: key disappeared %.2f s after a set with ttl %d (reply " \
            "after %.2f s)" % (node_id, t, ttl, t_set)
    assert abs(gone["node1"] - gone["node2"]) < diff, \
        "nodes expired the key at different moments: %r" % gone


def test_ttl_expires_at_same_moment(pool):
    cl = pool(2)
    a, b = cl
    t0 = time.monotonic()
    assert a.c.set("tk", "tv", 2) == "tv"
    t_set = time.monotonic() - t0
    wait_value(b, "tk", "tv", timeout=1.5)
    ta, tb = int(a.c.ttl("tk")), int(b.c.ttl("tk"))
    assert 1 <= tb <= 2, "B's ttl(tk) = %d, expected <= 2" % tb
    assert abs(ta - tb) <= 1, "ttl on A %d, on B %d" % (ta, tb)

    time.sleep(max(0.0, t0 + 1.5 - time.monotonic()))
    gone = _gone_times(cl.nodes, "tk", t0, until=6.0)
    _check_gone(gone, 2, t_set)

    # ~2.5 s after the set, both say Record not found, by every command
    time.sleep(max(0.0, t0 + t_set + 2.5 - time.monotonic()))
    for nd in cl:
        assert nd.c.get("tk") == NOT_FOUND
        assert nd.c.ttl("tk") == NOT_FOUND
        assert nd.c.delete("tk") == NOT_FOUND
    cl.wait_converged()


def test_expiry_is_absolute_when_delivery_is_late(pool):
    """B is frozen while A writes a key with ttl 3; B receives it 1.5 s
    late. With an absolute expiry, B reports at most 2 s left and drops the
    key at the same moment as A (a TTL re-applied on arrival would keep it
    ~1.5 s longer)."""
    cl = pool(2)
    a, b = cl
    b.sigstop()
    try:
        t0 = time.monotonic()
        assert a.c.set("late", "tv", 3) == "tv"
        t_set = time.monotonic() - t0
        time.sleep(1.5)
    finally:
        b.sigcont()
    wait_value(b, "late", "tv", timeout=1.4)
    tb = int(b.c.ttl("late"))
    assert 1 <= tb <= 2, "B's ttl(late) = %d 1.5 s after set(ttl 3) on A: " \
        "the expiry was not carried as an absolute time" % tb
    gone = _gone_times(cl.nodes, "late", t0, until=8.0)
    _check_gone(gone, 3, t_set)
    cl.wait_up()
    cl.wait_converged()


# --------------------------------------------------------------------------
# 3. convergence under concurrent conflicting writes

def test_convergence_concurrent_writers(pool):
    cl = pool(3)
    keys = ["hot:%03d" % i for i in range(100)]
    written = {k: set() for k in keys}
    lock = threading.Lock()
    errors = []
    stop_at = time.monotonic() + 5.0
    nops = [0] * 4

    def writer(cid):
        rnd = random.Random(1000 + cid)
        node = cl[cid % len(cl)]
        c = node.client()
        n = 0
        try:
            while time.monotonic() < stop_at:
                lines, expect = [], []
                for _ in range(20):
                    k = rnd.choice(keys)
                    r = rnd.random()
                    if r < 0.70:
                        n += 1
                        v = "c%d-%d" % (cid, n)
                        with lock:
                            written[k].add(v)
                        lines.append(rabbit.req("set", k, v))
                        expect.append((v,))
                    elif r < 0.90:
                        lines.append(rabbit.req("del", k))
                        expect.append(("OK", NOT_FOUND))
                    else:
                        lines.append(rabbit.req("expire", k,
                                                rnd.randrange(100, 1000)))
                        expect.append(("OK", NOT_FOUND))
                replies = c.pipeline(lines)
                for line, rep, exp in zip(lines, replies, expect):
                    if rep not in exp:
                        errors.append("%s on %s: %r -> %r" % (
                            "c%d" % cid, node.node_id, line, rep))
                nops[cid] += len(lines)
        except Exception as e:
            errors.append("client %d: %r" % (cid, e))
        finally:
            c.close()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads), "writer threads stuck"
    assert not errors, "unexpected replies:\n" + "\n".join(errors[:20])
    print("ops per client:", nops)

    clients = [nd.client() for nd in cl]
    try:
        try:
            digest = cl.wait_converged(timeout=20.0)
        except rabbit.Timeout as e:
            diff = []
            for k in keys:
                got = [c.get(k) for c in clients]
                if len(set(got)) != 1:
                    diff.append("%s: %s" % (k, " | ".join(
                        "%s=%s ttl=%s" % (nd.node_id, g, c.ttl(k))
                        for nd, g, c in zip(cl, got, clients))))
            pytest.fail("%s\n%d of %d keys differ, e.g.:\n%s" % (
                e, len(diff), len(keys), "\n".join(diff[:10])))
        print("converged, digest", digest[0])
        mismatches, unknown = [], []
        for k in keys:
            got = [c.get(k) for c in clients]
            if len(set(got)) != 1:
                mismatches.append((k, got))
                continue
            v = got[0]
            if v != NOT_FOUND and v not in written[k]:
                unknown.append((k, v))
            ttls = [c.ttl(k) for c in clients]
            if ttls[0] in ("-1", NOT_FOUND):
                if len(set(ttls)) != 1:
                    mismatches.append((k, ttls))
            elif max(map(int, ttls)) - min(map(int, ttls)) > 1:
                mismatches.append((k, ttls))
        assert not mismatches, "digests are equal but the data differs: %r" \
            % mismatches[:10]
        assert not unknown, "values no client wrote: %r" % unknown[:10]
    finally:
        for c in clients:
            c.close()

    for nd in cl:
        s = counters(nd)
        assert s["repl_malformed"] == 0, (nd.node_id, s)
        assert s["repl_gaps"] == 0, (nd.node_id, s)
        assert s["repl_outbox_dropped"] == 0, (nd.node_id, s)
        assert s["repl_applied"] > 0, (nd.node_id, s)
        assert s["repl_self_skipped"] > 0, (nd.node_id, s)


_foreign_incarnations = {}


def _foreign_batch(vw, origin, seq, records, inc=None, version=2):
    """A WRITES batch of another program (a foreign node `origin`). Each
    origin keeps one incarnation for the module, so that its batches
    numbered 1, 2, ... are one sequence without a gap (a new incarnation
    whose first batch is not seq 1 is a gap, and asks for a transfer)."""
    if inc is None:
        inc = _foreign_incarnations.setdefault(
            origin, random.getrandbits(63) | 1)
    return vw.encode_batch(vw.KIND_WRITES, origin, inc, seq, records,
                           version=version)


def test_lww_order_independent_and_deletes_stick(pool, broker):
    """Deterministic LWW checks with batches of a foreign writer: the
    outcome does not depend on arrival order, equal versions are settled by
    the origin tag, and an older, late SET cannot undo a delete."""
    import vitamin_wire as vw
    cl = pool(2)
    now = int(time.time() * 1000)
    rec = lambda k, v, ms, tag=5: dict(op=vw.OP_SET, key=k, value=v,
                                       version=ms << 16, origin_tag=tag)
    # newer first, older second: the newer value stays
    rabbit.publish(broker, cl.exchange, [
        _foreign_batch(vw, b"peerX", 1, [rec(b"lww", b"new", now)]),
        _foreign_batch(vw, b"peerY", 1, [rec(b"lww", b"old", now - 50)])])
    # equal versions: the greater origin tag wins, in either order
    rabbit.publish(broker, cl.exchange, [
        _foreign_batch(vw, b"peerX", 2, [rec(b"tie", b"tag9", now, 9)]),
        _foreign_batch(vw, b"peerY", 2, [rec(b"tie", b"tag3", now, 3)])])
    for nd in cl:
        wait_value(nd, "lww", "new")
        wait_value(nd, "tie", "tag9")

    # deletes stick: delete on node1, then a SET stamped before the delete
    # arrives late from a peer
    a = cl[0]
    assert a.c.set("gone", "v") == "v"
    for nd in cl:
        wait_value(nd, "gone", "v")
    t_before = int(time.time() * 1000)
    time.sleep(0.05)
    assert a.c.delete("gone") == "OK"
    for nd in cl:
        wait_value(nd, "gone", NOT_FOUND)
    stale0 = [counters(nd)["repl_stale"] for nd in cl]
    rabbit.publish(broker, cl.exchange, [
        _foreign_batch(vw, b"peerZ", 1, [rec(b"gone", b"zombie", t_before)])])
    poll(lambda: all(counters(nd)["repl_stale"] > s0
                     for nd, s0 in zip(cl, stale0)),
         what="the late SET counted as stale on every node")
    for nd in cl:
        assert nd.c.get("gone") == NOT_FOUND, \
            "%s: a late, older SET undid a delete" % nd.node_id
    cl.wait_converged()


def test_failed_del_does_not_change_replicated_state(pool, broker):
    """del() of a key that is already gone answers Record not found and
    publishes nothing, so it must not change what LWW decides on that node
    (otherwise the node silently diverges from its peers)."""
    import vitamin_wire as vw
    cl = pool(2)
    a, b = cl
    assert a.c.set("k", "v1") == "v1"
    wait_value(b, "k", "v1")
    assert a.c.delete("k") == "OK"
    wait_value(b, "k", NOT_FOUND)
    time.sleep(0.3)
    t_mid = int(time.time() * 1000)     # after A's delete ...
    time.sleep(0.3)
    assert b.c.delete("k") == NOT_FOUND  # ... before this no-op on B
    assert b.c.delete("never-existed") == NOT_FOUND
    time.sleep(0.3)
    # a peer's SET stamped at t_mid: newer than the only replicated delete
    rabbit.publish(broker, cl.exchange, [_foreign_batch(vw, b"peer3", 1, [
        dict(op=vw.OP_SET, key=b"k", value=b"from-peer3",
             version=t_mid << 16, origin_tag=5),
        dict(op=vw.OP_SET, key=b"never-existed", value=b"from-peer3",
             version=t_mid << 16, origin_tag=5)])])
    wait_value(a, "k", "from-peer3")
    wait_value(a, "never-existed", "from-peer3")
    try:
        cl.wait_converged(timeout=5)
    except rabbit.Timeout:
        _fail(cl, "pool diverged after a no-op del on node2: node1 "
              "get(k)=%r get(never-existed)=%r, node2 get(k)=%r "
              "get(never-existed)=%r" % (a.c.get("k"),
                                         a.c.get("never-existed"),
                                         b.c.get("k"),
                                         b.c.get("never-existed")))
    assert b.c.get("k") == "from-peer3"
    assert b.c.get("never-existed") == "from-peer3"


def test_v1_batch_from_an_old_node_is_applied(pool, broker):
    """Mixed-version pool during an upgrade: a batch in wire format
    version 1, as a node of the previous release publishes it, is read and
    merged (client flags 0, the expiry stamped like its value)."""
    import vitamin_wire as vw
    cl = pool(2)
    m0 = [counters(nd) for nd in cl]
    now = int(time.time() * 1000)
    st = lambda dt: (now + dt) << 16  # noqa: E731
    b1 = _foreign_batch(vw, b"old-node", 1, [
        dict(op=vw.OP_SET, key=b"v1:a", value=b"from-v1", version=st(0),
             origin_tag=3),
        dict(op=vw.OP_SET, key=b"v1:b", value=b"bee",
             expire_ms=now + 600000, version=st(1), origin_tag=3),
        dict(op=vw.OP_SET, key=b"v1:c", value=b"doomed", version=st(2),
             origin_tag=3)], version=1)
    # version 1's EXPIRE re-stamped the value (one stamp for both)
    b2 = _foreign_batch(vw, b"old-node", 2, [
        dict(op=vw.OP_DEL, key=b"v1:c", version=st(3), origin_tag=3),
        dict(op=vw.OP_EXPIRE, key=b"v1:b", value=b"bee",
             expire_ms=now + 300000, version=st(4), origin_tag=3)],
        version=1)
    assert b1[4] == 1 and b2[4] == 1
    assert vw.decode_batch(b2)["records"][1]["exp_version"] == st(4)
    rabbit.publish(broker, cl.exchange, [b1, b2])
    for nd in cl:
        wait_value(nd, "v1:a", "from-v1")
        wait_value(nd, "v1:c", NOT_FOUND)
        assert nd.c.get("v1:b") == "bee"
        assert 290 <= int(nd.c.ttl("v1:b")) <= 300, nd.c.ttl("v1:b")
    for nd, c0 in zip(cl, m0):
        c = counters(nd)
        assert c["repl_malformed"] == c0["repl_malformed"], (nd.node_id, c)
        assert c["repl_gaps"] == c0["repl_gaps"], (nd.node_id, c)
        assert c["repl_applied"] >= c0["repl_applied"] + 5, (nd.node_id, c)
    # the pool's own (version 2) replication still works on top
    assert cl[0].c.set("v1:a", "now-v2") == "now-v2"
    wait_value(cl[1], "v1:a", "now-v2")
    cl.wait_converged()


def test_v2_records_merge_over_the_wire(pool, broker):
    """Records of wire format version 2 published by another program merge
    as docs/replication.md says: an EXPIRE made on an older value changes
    the expiry but not the newer value; a FLUSH kills every value stamped
    below it and nothing newer; an expiry's tombstone (EXPIRED) comes back
    to life with the same value and a newer expiry."""
    import vitamin_wire as vw
    cl = pool(2)
    a, b = cl
    now = int(time.time() * 1000)
    st = lambda dt: (now + dt) << 16  # noqa: E731
    peer = b"peer-v2"

    # EXPIRE made on a node that held the older value: the newer value stays
    rabbit.publish(broker, cl.exchange, [_foreign_batch(vw, peer, 1, [
        dict(op=vw.OP_SET, key=b"x:k", value=b"old", version=st(-20),
             origin_tag=4),
        dict(op=vw.OP_SET, key=b"x:k", value=b"new", version=st(-10),
             origin_tag=4),
        dict(op=vw.OP_EXPIRE, key=b"x:k", value=b"old",
             expire_ms=now + 100000, version=st(-20), origin_tag=4,
             exp_version=st(-5), exp_origin_tag=5)])])
    for nd in cl:
        wait_value(nd, "x:k", "new")
        assert 90 <= int(nd.c.ttl("x:k")) <= 100, nd.c.ttl("x:k")

    # an expiry's tombstone, then the same value with a newer expiry
    rabbit.publish(broker, cl.exchange, [_foreign_batch(vw, peer, 2, [
        dict(op=vw.OP_EXPIRED, key=b"x:e", expire_ms=now - 1000,
             version=st(-30), origin_tag=4)])])
    for nd in cl:
        poll(lambda: counters(nd)["repl_applied"] >= 4,
             what="%s applied the EXPIRED record" % nd.node_id)
        assert nd.c.get("x:e") == NOT_FOUND
    rabbit.publish(broker, cl.exchange, [_foreign_batch(vw, peer, 3, [
        dict(op=vw.OP_EXPIRE, key=b"x:e", value=b"back",
             expire_ms=now + 200000, version=st(-30), origin_tag=4,
             exp_version=st(-2), exp_origin_tag=4)])])
    for nd in cl:
        wait_value(nd, "x:e", "back")

    # FLUSH: the pool's own writes before it die, a write stamped above it
    # (in the same batch) and writes made after it live
    assert a.c.set("f:before", "1") == "1"
    wait_value(b, "f:before", "1")
    time.sleep(0.01)
    w = int(time.time() * 1000) << 16
    rabbit.publish(broker, cl.exchange, [_foreign_batch(vw, peer, 4, [
        dict(op=vw.OP_FLUSH, version=w, origin_tag=4),
        dict(op=vw.OP_SET, key=b"f:newer", value=b"2", version=w + 1,
             origin_tag=4)])])
    for nd in cl:
        wait_value(nd, "f:before", NOT_FOUND)
        wait_value(nd, "f:newer", "2")
        assert nd.c.get("x:k") == NOT_FOUND  # older than the flush too
        assert int(nd.stats()["repl_flushes"]) == 1
    time.sleep(0.01)
    assert b.c.set("f:after", "3") == "3"
    wait_value(a, "f:after", "3")
    for nd in cl:
        c = counters(nd)
        assert c["repl_malformed"] == 0 and c["repl_gaps"] == 0, \
            (nd.node_id, c)
    cl.wait_converged()


def test_state_transfer_carries_the_flush_watermark(pool, broker):
    """A node that joins after a FLUSH (here a delayed one, still pending)
    learns the watermark from its state transfer: the items the transfer
    brings it die at the watermark's time as they do on the node that
    served them, and the pool converges."""
    import vitamin_wire as vw
    c = pool(1)
    a = c[0]
    for i in range(50):
        assert a.c.set("fw:%d" % i, "v%d" % i) == "v%d" % i
    time.sleep(0.01)
    delay_ms = 4000
    w = (int(time.time() * 1000) + delay_ms) << 16
    rabbit.publish(broker, c.exchange, [_foreign_batch(vw, b"flusher", 1, [
        dict(op=vw.OP_FLUSH, version=w, origin_tag=4)])])
    poll(lambda: int(a.stats()["repl_flushes"]) == 1,
         what="node1 applied the delayed FLUSH")
    assert a.c.get("fw:7") == "v7"  # not yet

    b = rabbit.Node("node2", broker.port, c.exchange)
    c.nodes.append(b)  # stopped (and checked for exit 0) with the pool
    b.start(timeout=30)
    poll(lambda: int(b.stats()["sync_completed"]) >= 1, timeout=20,
         what="node2's state transfer")
    assert b.c.get("fw:7") == "v7"  # before the watermark's time: alive
    # the watermark's time passes: gone on both nodes
    while int(time.time() * 1000) <= (w >> 16) + 50:
        time.sleep(0.05)
    for nd in c.nodes:
        wait_value(nd, "fw:7", NOT_FOUND, timeout=5)
    try:
        c.wait_converged(timeout=5)
    except rabbit.Timeout:
        _fail(c, "node2 kept flushed items: node1 curr_items=%s, node2 "
              "curr_items=%s" % (a.stat("curr_items"), b.stat("curr_items")))
    assert int(b.stat("curr_items")) == 0


# --------------------------------------------------------------------------
# 4. no loops

# Counters a beacon (an empty WRITES batch: after a burst, a reconnect, or
# while a transfer waits) does not move: beacons are counted apart, in
# repl_beacons_sent and repl_beacons_received.
LOOP_COUNTERS = ("repl_published", "repl_received",
                 "repl_applied", "repl_stale", "repl_self_skipped",
                 "repl_malformed", "repl_gaps")


def _wait_no_writes(tap, vw, quiet=1.0, timeout=15.0):
    """Drain the tap until `quiet` seconds pass with nothing but beacons;
    returns the drained bodies."""
    out = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = tap.collect(quiet)
        out += got
        if all(vw.is_beacon(vw.decode_batch(m)) for m in got):
            return out
    raise rabbit.Timeout("the exchange carried more than beacons for %.0f s"
                         % timeout)


def test_no_replication_loops(pool, broker):
    import vitamin_wire as vw
    cl = pool(3)
    a, b, c = cl
    tap = rabbit.Tap(broker, cl.exchange)
    try:
        startup = _wait_no_writes(tap, vw)
        print("messages before the test write:", len(startup))
        before = {nd.node_id: counters(nd) for nd in cl}

        assert a.c.set("loop", "once") == "once"
        for nd in (b, c):
            wait_value(nd, "loop", "once")

        def grew(nd, name, by):
            return counters(nd)[name] >= before[nd.node_id][name] + by
        poll(lambda: grew(a, "repl_published", 1), what="A repl_published+1")
        poll(lambda: grew(a, "repl_self_skipped", 1),
             what="A repl_self_skipped+1 (its own batch came back)")
        for nd in (b, c):
            poll(lambda: grew(nd, "repl_applied", 1) and
                 grew(nd, "repl_received", 1),
                 what="%s repl_applied+1, repl_received+1" % nd.node_id)

        msgs = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and all(
                vw.is_beacon(vw.decode_batch(m)) for m in msgs):
            msgs += tap.collect(0.05)
        mid = {nd.node_id: counters(nd) for nd in cl}
        # the next 2 s: nothing moves, nothing but beacons is published
        msgs += tap.collect(2.0)
        after = {nd.node_id: counters(nd) for nd in cl}
        msgs += tap.get_all()

        decoded, beacons = [], []
        for m in msgs:
            try:
                d = vw.decode_batch(m)
            except ValueError as e:
                decoded.append(("undecodable", str(e)))
                continue
            if vw.is_beacon(d):
                beacons.append(d)
                continue
            decoded.append((d["kind"], d["origin"], d["seq"],
                            [(r["op"], r["key"]) for r in d["records"]]))
        assert len(decoded) == 1, "expected exactly 1 message but beacons " \
            "on the exchange for one set, got %d: %r" % (len(decoded),
                                                        decoded)
        kind, origin, _seq, recs = decoded[0]
        assert (kind, origin, recs) == (vw.KIND_WRITES, b"node1",
                                        [(vw.OP_SET, b"loop")]), decoded
        # beacons come from the nodes themselves, never more than about
        # one a second each (2 s watched, plus the wait for the write)
        assert {d["origin"] for d in beacons} <= {b"node1", b"node2",
                                                   b"node3"}, beacons
        assert len(beacons) <= 3 * 5, "%d beacons" % len(beacons)

        for nd in cl:
            for name in LOOP_COUNTERS:
                assert after[nd.node_id][name] == mid[nd.node_id][name], \
                    "%s: %s kept growing after the write was replicated: " \
                    "%d -> %d" % (nd.node_id, name, mid[nd.node_id][name],
                                  after[nd.node_id][name])

        def delta(nd, name):
            return after[nd.node_id][name] - before[nd.node_id][name]
        assert delta(a, "repl_published") == 1
        assert delta(a, "repl_batches_published") == \
            1 + delta(a, "repl_beacons_sent")
        assert delta(a, "repl_self_skipped") == 1
        assert delta(a, "repl_applied") == 0, \
            "A re-applied its own write"
        for nd in (b, c):
            assert delta(nd, "repl_published") == 0, \
                "%s re-published a replicated write" % nd.node_id
            assert delta(nd, "repl_batches_published") == \
                delta(nd, "repl_beacons_sent")
            assert delta(nd, "repl_received") == 1, nd.node_id
            assert delta(nd, "repl_applied") == 1, nd.node_id
        for nd in cl:
            assert delta(nd, "repl_stale") == 0, nd.node_id
            assert delta(nd, "repl_malformed") == 0, nd.node_id
        cl.wait_converged()
    finally:
        tap.close()


# --------------------------------------------------------------------------
# 5. malformed and foreign messages

def test_bad_messages_are_dropped_and_counted(pool, broker):
    import vitamin_wire as vw
    cl = pool(2)
    a, b = cl
    for i in range(20):
        assert a.c.set("keep:%d" % i, "a%d" % i) == "a%d" % i
        assert b.c.set("keepb:%d" % i, "b%d" % i, 300) == "b%d" % i
    for nd in cl:
        wait_value(nd, "keep:19", "a19")
        wait_value(nd, "keepb:19", "b19")
    digest = cl.wait_converged()[0]
    malformed0 = [counters(nd)["repl_malformed"] for nd in cl]

    now_ms = int(time.time() * 1000)
    recs = [dict(op=vw.OP_SET, key=b"foreign:k1", value=b"fv1",
                 version=now_ms << 16, origin_tag=7),
            dict(op=vw.OP_SET, key=b"foreign:k2", value=b"fv2",
                 expire_ms=now_ms + 600000, version=(now_ms << 16) + 1,
                 origin_tag=7)]
    inc = random.getrandbits(63) | 1
    valid = vw.encode_batch(vw.KIND_WRITES, b"pytest-peer", inc, 1, recs)
    assert vw.decode_batch(valid)["records"][1]["value"] == b"fv2"
    hdr = vw.header_size(len(b"pytest-peer"), 0)          # 54 + N + T
    fixed = vw.RECORD_FIXED                               # 43
    rec0 = vw.record_size(len(b"foreign:k1"), len(b"fv1"))
    assert hdr == 65 and rec0 == 56

    # K = 0xFFFF claimed, only 10 key bytes present
    short_k = bytearray(valid)
    short_k[hdr + 1:hdr + 3] = (0xFFFF).to_bytes(2, "little")
    bad_version = bytearray(valid)
    bad_version[4] = 3
    # version-2 bytes labelled version 1 (read with the old layout)
    as_v1 = bytearray(valid)
    as_v1[4] = 1
    rnd = random.Random(5)
    garbage = [bytes(rnd.getrandbits(8) for _ in range(n))
               for n in (1, 7, 64, 1000)]
    garbage = [g if not g.startswith(b"V") else b"X" + g[1:] for g in garbage]

    bad = {
        "garbage": garbage,
        "hello": [b"hello"],
        "truncated": [valid[:n] for n in
                      (0, 3, 4, 5, 8, 20, hdr - 1, hdr, hdr + 1,
                       hdr + fixed - 1, hdr + fixed, hdr + rec0 - 1,
                       hdr + rec0, hdr + rec0 + 5, len(valid) - 1)],
        "count too large": [vw.encode_batch(vw.KIND_WRITES, b"pytest-peer",
                                            inc, 2, recs, count=3),
                            vw.encode_batch(vw.KIND_WRITES, b"pytest-peer",
                                            inc, 3, recs, count=0xFFFFFFFF)],
        "count too small": [vw.encode_batch(vw.KIND_WRITES, b"pytest-peer",
                                            inc, 4, recs, count=1),
                            vw.encode_batch(vw.KIND_WRITES, b"pytest-peer",
                                            inc, 5, recs, count=0)],
        "key length 0xFFFF": [
            vw.encode_batch(vw.KIND_WRITES, b"pytest-peer", inc, 6,
                            [dict(op=vw.OP_SET, key=b"x" * 0xFFFF,
                                  value=b"v", version=now_ms << 16)],
                            check=False),
            bytes(short_k)],
        "trailing byte": [valid + b"\x00"],
        "bad version": [bytes(bad_version), bytes(as_v1)],
        "key length 0": [vw.encode_batch(vw.KIND_WRITES, b"pytest-peer", inc,
                                         7, [dict(op=vw.OP_SET, key=b"",
                                                  value=b"v")], check=False)],
        "bad op": [vw.encode_batch(vw.KIND_WRITES, b"pytest-peer", inc, 8,
                                   [dict(op=9, key=b"foreign:k1",
                                         value=b"v")], check=False)],
        "DEL with value": [vw.encode_batch(
            vw.KIND_WRITES, b"pytest-peer", inc, 9,
            [dict(op=vw.OP_DEL, key=b"keep:1", value=b"v",
                  version=(now_ms + 60000) << 16)], check=False)],
        "value length 2^32-1": [vw.encode_batch(
            vw.KIND_WRITES, b"pytest-peer", inc, 10, recs)[:hdr + 3] +
            b"\xff\xff\xff\xff" + valid[hdr + 7:]],
        # version 2's own constraints
        "DEL with client flags": [vw.encode_batch(
            vw.KIND_WRITES, b"pytest-peer", inc, 11,
            [dict(op=vw.OP_DEL, key=b"keep:1", client_flags=1,
                  version=(now_ms + 60000) << 16)], check=False)],
        "FLUSH with a key": [vw.encode_batch(
            vw.KIND_WRITES, b"pytest-peer", inc, 12,
            [dict(op=vw.OP_FLUSH, key=b"keep:1",
                  version=(now_ms + 60000) << 16)], check=False)],
        "EXPIRED with a value": [vw.encode_batch(
            vw.KIND_WRITES, b"pytest-peer", inc, 13,
            [dict(op=vw.OP_EXPIRED, key=b"keep:1", value=b"v",
                  version=(now_ms + 60000) << 16)], check=False)],
        # version 1 has no FLUSH
        "FLUSH in version 1": [vw.encode_batch(
            vw.KIND_WRITES, b"pytest-peer", inc, 14,
            [dict(op=vw.OP_FLUSH, key=b"keep:1",
                  version=(now_ms + 60000) << 16)], check=False, version=1)],
    }
    for name, bodies in bad.items():
        for body in bodies:
            try:
                vw.decode_batch(body)
            except ValueError:
                continue
            raise AssertionError("test bug: %s body decodes" % name)
    bodies = [x for v in bad.values() for x in v]
    rabbit.publish(broker, cl.exchange, bodies)

    def counted():
        return all(counters(nd)["repl_malformed"] >= m0 + len(bodies)
                   for nd, m0 in zip(cl, malformed0))
    try:
        poll(counted, timeout=10, what="repl_malformed to count %d bodies"
             % len(bodies))
    except rabbit.Timeout as e:
        _fail(cl, str(e))
    time.sleep(0.5)
    for nd, m0 in zip(cl, malformed0):
        assert nd.alive(), "%s died:\n%s" % (nd.node_id, nd.log_text())
        assert nd.c.ping() == "pong"
        got = counters(nd)["repl_malformed"] - m0
        assert got == len(bodies), "%s: repl_malformed grew by %d for %d " \
            "bad messages" % (nd.node_id, got, len(bodies))
        assert nd.stat("items_digest") == digest, \
            "%s: data changed by malformed messages" % nd.node_id
        assert nd.c.get("foreign:k1") == NOT_FOUND
        assert nd.c.get("keep:1") == "a1"
        assert nd.c.get("keepb:7") == "b7"
        assert nd.stat("repl_state") == "up"

    # the pool still replicates, and a well-formed batch from another
    # program (the same records the bad ones were made of) is applied
    assert a.c.set("after", "bad") == "bad"
    wait_value(b, "after", "bad")
    rabbit.publish(broker, cl.exchange, [valid])
    for nd in cl:
        wait_value(nd, "foreign:k1", "fv1")
        wait_value(nd, "foreign:k2", "fv2")
        t = int(nd.c.ttl("foreign:k2"))
        assert 590 <= t <= 600, (nd.node_id, t)
    cl.wait_converged()


# --------------------------------------------------------------------------
# 6. interop: another program reads what a node publishes

def test_pika_consumer_decodes_published_batches(pool, broker):
    import vitamin_wire as vw
    cl = pool(2)
    a, b = cl
    tap = rabbit.Tap(broker, cl.exchange)
    try:
        _wait_no_writes(tap, vw, quiet=0.5)
        last_seq = {}  # origin -> (incarnation, seq) of its last batch

        def next_records(origin, key, timeout=10.0):
            """Wait for a WRITES batch from origin with a record for key.
            Every WRITES batch of a node, beacons included, must take the
            next number of its sequence."""
            deadline = time.monotonic() + timeout
            seen = []
            while time.monotonic() < deadline:
                for m in tap.collect(0.05):
                    d = vw.decode_batch(m)
                    assert d["version"] == 2, d
                    seen.append((d["kind"], d["origin"], len(d["records"])))
                    if d["kind"] != vw.KIND_WRITES:
                        continue
                    prev = last_seq.get(d["origin"])
                    if prev and prev[0] == d["incarnation"]:
                        assert d["seq"] == prev[1] + 1, (prev, d["seq"])
                    last_seq[d["origin"]] = (d["incarnation"], d["seq"])
                    if d["origin"] == origin:
                        rs = [r for r in d["records"] if r["key"] == key]
                        if rs:
                            return d, rs
            pytest.fail("no WRITES batch from %r with key %r; saw %r"
                        % (origin, key, seen))

        val = b"v\x00\n\xff interop"
        t_ms = int(time.time() * 1000)
        assert b.c.set(b"interop:k", val, 60) == encode_value(val)
        d, rs = next_records(b"node2", b"interop:k")
        assert len(rs) == 1
        r = rs[0]
        assert d["origin"] == b"node2"
        assert d["aux"] == 0 and d["target"] == b""
        assert d["seq"] >= 1
        assert r["op"] == vw.OP_SET
        assert r["value"] == val
        assert abs(r["expire_ms"] - (t_ms + 60000)) < 2000, \
            "expire_ms %d is not an absolute time close to now+60 s (%d)" \
            % (r["expire_ms"], t_ms + 60000)
        assert abs((r["version"] >> 16) - t_ms) < 2000, \
            "version %#x: physical part is not close to now" % r["version"]
        # a set stamps both registers alike; the Vitamin protocol has no
        # client flags
        assert (r["exp_version"], r["exp_origin_tag"]) == \
            (r["version"], r["origin_tag"]), r
        assert r["client_flags"] == 0
        seq1, inc, set_rec = d["seq"], d["incarnation"], r

        t_ms = int(time.time() * 1000)
        assert b.c.expire(b"interop:k", 120) == "OK"
        d, rs = next_records(b"node2", b"interop:k")
        r = rs[-1]
        assert r["op"] == vw.OP_EXPIRE
        assert r["value"] == val, "EXPIRE must carry the value"
        assert abs(r["expire_ms"] - (t_ms + 120000)) < 2000, r
        # the value keeps its own stamp; only the expiry gets a new one
        assert (r["version"], r["origin_tag"]) == \
            (set_rec["version"], set_rec["origin_tag"]), (r, set_rec)
        assert r["exp_version"] > set_rec["version"], r
        assert d["incarnation"] == inc
        assert d["seq"] > seq1, "seq %d after %d" % (d["seq"], seq1)

        assert b.c.delete(b"interop:k") == "OK"
        d, rs = next_records(b"node2", b"interop:k")
        r = rs[-1]
        assert r["op"] == vw.OP_DEL and r["value"] == b""
        assert r["client_flags"] == 0 and r["expire_ms"] == 0
        assert r["version"] > set_rec["version"]
        assert d["seq"] > seq1 + 1

        # a write without TTL carries expire_ms 0; node1's batches are
        # tagged node1
        assert a.c.set("interop:a", "x") == "x"
        d, rs = next_records(b"node1", b"interop:a")
        assert rs[0]["op"] == vw.OP_SET and rs[0]["expire_ms"] == 0
        wait_value(b, "interop:a", "x")
    finally:
        tap.close()


def test_topology(pool, broker):
    cl = pool(2)
    ex = dict((e[0], e[1:]) for e in broker.list_exchanges("type", "durable"))
    assert ex.get(cl.exchange) == ("fanout", "true"), ex.get(cl.exchange)
    queues = dict((q[0], q[1:]) for q in broker.list_queues("durable"))
    r = broker.ctl("list_bindings", "-q", "--no-table-headers",
                   "source_name", "destination_name")
    assert r.returncode == 0, r.stderr
    bindings = {tuple(l.split("\t")) for l in r.stdout.splitlines() if l}
    for nd in cl:
        qn = "%s.%s" % (cl.exchange, nd.node_id)
        assert queues.get(qn) == ("true",), \
            "queue %s: %r (all: %r)" % (qn, queues.get(qn), sorted(queues))
        assert (cl.exchange, qn) in bindings, sorted(bindings)


# --------------------------------------------------------------------------
# 7. standalone

def test_standalone_without_broker():
    nd = rabbit.Node("solo").start()
    try:
        st = nd.stats()
        assert st.get("repl_state") == "off", st
        assert nd.c.ping() == "pong"
        assert nd.c.set("k", "v", 60) == "v"
        assert nd.c.get("k") == "v"
        assert 59 <= int(nd.c.ttl("k")) <= 60
        assert nd.c.delete("k") == "OK"
        assert nd.c.get("k") == NOT_FOUND
        st = nd.stats()
        assert st.get("repl_state") == "off", st
        for name in ("repl_published", "repl_received", "repl_applied"):
            if name in st:
                assert st[name] == "0", (name, st[name])
    finally:
        rc = nd.stop()
    assert rc == 0, "standalone node exited %r on SIGTERM\n%s" % (
        rc, nd.log_text())


def test_sync_before_serve_refuses_clients_until_synced(pool, broker):
    """--sync_before_serve: a joining node refuses connections until its
    first state transfer is over, so its very first answer already has the
    pool's data (without the flag it accepts at once, with 0 items)."""
    c = pool(1)
    a = c[0]
    n = 100000
    lc = a.client()
    for i in range(0, n, 5000):
        lc.pipeline([rabbit.req("set", "sb:%d" % k, "v%d" % k)
                     for k in range(i, i + 5000)])
    lc.close()
    want = a.stat("items_digest")
    b = rabbit.Node("node2", broker.port, c.exchange,
                    extra=("--sync_before_serve",))
    c.nodes.append(b)  # stopped (and checked for exit 0) with the pool
    b.start(timeout=60)
    # the first connection that is accepted sees the whole pool
    st = b.stats()
    assert int(st["curr_items"]) == n, st
    assert st["items_digest"] == want
    assert b.c.get("sb:77") == "v77"
