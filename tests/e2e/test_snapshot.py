"""Warm restart (--snapshot FILE, --snapshot_interval; SPEC section 10).

Standalone nodes: a SIGTERM + restart keeps every key with its value,
absolute expiry and version (read back from the saved file with the
independent reader vitamin_snapshot.py), and items whose time passed while
the node was down are gone; a truncated, bit-flipped, zero-length, foreign
or other-version file is survived with exactly one log line and an empty
start; a periodic background save survives a crash (SIGKILL).
Pools (a private RabbitMQ broker): two nodes restarted at once, and one at
a time while the other keeps taking writes, keep and converge their data.

Client flags are not reachable through Vitamin's protocol on this branch;
the unit test (tests/unit/test_snapshot.c) checks them register by
register.
"""

import itertools
import os
import re
import signal
import time

import pytest

import rabbit
import vitamin_snapshot as vs
from conftest import decode_value, poll, req, run_cli

NOT_FOUND = b"Error: Record not found"


# --------------------------------------------------------------------------
# helpers

def value_of(i):
    """Values with every kind of byte the protocol carries."""
    if i % 10 == 0:
        return b"bin\x00\x01\xff\"\\\n\r\t-%d" % i
    return b"value-%d-%s" % (i, b"x" * (i % 32))


def ttl_of(i):
    return (0, 3600, 600)[i % 3]


def set_lines(keys):
    return [req("set", k, v, t) if t else req("set", k, v) for k, v, t in keys]


def pipeline(client, lines, chunk=20000):
    out = []
    for i in range(0, len(lines), chunk):
        out += client.pipeline(lines[i:i + chunk], timeout=60)
    return out


def records_by_key(path):
    f = vs.decode_file(open(path, "rb").read())
    return f, {r["key"]: r for r in f["records"] if r["op"] != vs.OP_FLUSH}


def snapshot_lines(text, path):
    return [l for l in text.splitlines() if "snapshot" in l and str(path) in l]


STAMP_FIELDS = ("op", "value", "flags", "expire_ms", "version", "origin",
                "exp_version", "exp_origin")


def same_record(a, b):
    return all(a[f] == b[f] for f in STAMP_FIELDS)


# --------------------------------------------------------------------------
# standalone

def test_flags_in_help_and_checked():
    rc, out, err = run_cli(["--help"])
    assert rc == 0
    assert "--snapshot=FILE" in out and "--snapshot_interval=SECONDS" in out, out
    rc, out, err = run_cli(["--snapshot_interval", "5"])
    assert rc == 2 and "--snapshot_interval needs --snapshot" in err, err
    for bad in ("/nonexistent-vitamin-folder/x.snap", "/tmp", ""):
        rc, out, err = run_cli(["--snapshot", bad])
        assert rc == 2 and "--snapshot" in err, (bad, err)
    rc, out, err = run_cli(["--snapshot", "/tmp/x.snap", "--snapshot_interval", "x"])
    assert rc == 2 and "--snapshot_interval" in err, err


def test_stats_without_snapshot(server):
    st = server().client().stats()
    for name in ("snapshot_saves", "snapshot_failures", "snapshot_saved_items",
                 "snapshot_loaded_items", "snapshot_save_ms", "snapshot_load_ms"):
        assert st.get(name) == "0", (name, st.get(name))


def test_missing_file_is_normal(server, tmp_path):
    path = tmp_path / "fresh.snap"
    s = server("--snapshot", path, "--log_level", "info")
    st = s.client().stats()
    assert st["curr_items"] == "0" and st["snapshot_failures"] == "0"
    lines = snapshot_lines(s.stderr(), path)
    assert len(lines) == 1 and "info" in lines[0] and "no file" in lines[0], s.stderr()
    assert s.stop() == 0
    f, recs = records_by_key(path)  # an empty store is saved too
    assert recs == {} and f["total"] == 0


def test_restart_keeps_keys_small(server, tmp_path):
    """The quick version of the 100k test below (runs under sanitizers)."""
    path = tmp_path / "small.snap"
    s = server("--snapshot", path)
    c = s.client()
    keys = [(b"k%d" % i, value_of(i), ttl_of(i)) for i in range(1000)]
    replies = pipeline(c, set_lines(keys))
    assert [decode_value(r) for r in replies] == [v for _, v, _ in keys]
    assert c.call("del", b"k1") == b"OK"
    digest = c.stats()["items_digest"]
    assert s.stop() == 0
    s = server("--snapshot", path)
    c = s.client()
    st = c.stats()
    assert st["items_digest"] == digest, st
    assert st["curr_items"] == "999" and st["snapshot_loaded_items"] == "999", st
    got = pipeline(c, [req("get", k) for k, _, _ in keys])
    for (k, v, _), line in zip(keys, got):
        if k == b"k1":
            assert line == NOT_FOUND
        else:
            assert decode_value(line) == v, (k, line)


@pytest.mark.slow
def test_restart_keeps_100k_keys(server, tmp_path):
    """SIGTERM + restart with 100k keys: every key keeps its value, absolute
    expiry and version; keys whose time passed while down are gone."""
    path = tmp_path / "big.snap"
    s = server("--snapshot", path, "--memory", "1024")
    c = s.client()
    keys = [(b"key:%d" % i, value_of(i), ttl_of(i)) for i in range(100000)]
    replies = pipeline(c, set_lines(keys))
    assert [decode_value(r) for r in replies] == [v for _, v, _ in keys]
    short = [(b"short:%d" % i, b"gone soon", 2) for i in range(500)]
    pipeline(c, set_lines(short))
    set_at = time.monotonic()
    assert c.stat("curr_items") == 100500
    t0 = time.monotonic()
    assert s.stop() == 0
    stop_s = time.monotonic() - t0

    f1, recs1 = records_by_key(path)
    assert len(recs1) == 100500 and f1["total"] == 100500
    now_ms = time.time() * 1000
    for k, v, t in keys:
        r = recs1[k]
        assert r["op"] == vs.OP_SET and r["value"] == v and r["flags"] == 0, r
        if t:
            assert abs(r["expire_ms"] - (now_ms + t * 1000)) < 120000, (k, r)
        else:
            assert r["expire_ms"] == 0, r
        assert r["version"] > 0 and r["exp_version"] == r["version"], r

    time.sleep(max(0.0, set_at + 2.3 - time.monotonic()))
    s = server("--snapshot", path, "--memory", "1024")
    c = s.client()
    st = c.stats()
    assert st["curr_items"] == "100000", st
    assert st["snapshot_loaded_items"] == "100000", st
    assert st["snapshot_load_dropped"] == "500", st
    assert st["snapshot_failures"] == "0", st
    got = pipeline(c, [req("get", k) for k, _, _ in keys])
    bad = [(k, line) for (k, v, _), line in zip(keys, got) if decode_value(line) != v]
    assert not bad, bad[:5]
    assert set(pipeline(c, [req("get", k) for k, _, _ in short])) == {NOT_FOUND}
    ttls = pipeline(c, [req("ttl", k) for k, _, _ in keys[:3000]])
    for (k, _, t), line in zip(keys[:3000], ttls):
        if t == 0:
            assert line == b"-1", (k, line)
        else:
            assert t - 30 <= int(line) <= t, (k, line)
    digest = st["items_digest"]
    assert s.stop() == 0

    # Saved again from what was loaded: the same stamps, key for key.
    f2, recs2 = records_by_key(path)
    assert len(recs2) == 100000
    diff = [k for k, _, _ in keys if not same_record(recs1[k], recs2[k])]
    assert not diff, (diff[:3], recs1[diff[0]], recs2[diff[0]])

    s = server("--snapshot", path, "--memory", "1024")
    st = s.client().stats()
    assert st["items_digest"] == digest and st["curr_items"] == "100000", st
    print("100k keys: SIGTERM to exit (with the save) %.2f s; load %s ms"
          % (stop_s, st["snapshot_load_ms"]))


def _good_file(server, path):
    s = server("--snapshot", path)
    c = s.client()
    pipeline(c, set_lines([(b"k%d" % i, value_of(i), 0) for i in range(200)]))
    assert s.stop() == 0
    return path.read_bytes()


def _flip(data):
    b = bytearray(data)
    b[len(b) // 2] ^= 0x04
    return bytes(b)


BAD_FILES = {
    "truncated": (lambda d: d[:len(d) // 2], "truncated"),
    "truncated_end": (lambda d: d[:-1], "truncated"),
    "bit_flip": (_flip, "checksum_mismatch"),
    "zero_length": (lambda d: b"", "empty"),
    "foreign": (lambda d: b"# not a snapshot\nkey=value\n", "not_a_snapshot"),
    "other_version": (lambda d: d[:8] + b"\x07" + d[9:], "unknown_version"),
    "appended": (lambda d: d + b"junk", "trailing_bytes"),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_file_one_line_empty_start(server, tmp_path, kind):
    path = tmp_path / ("%s.snap" % kind)
    data = _good_file(server, path)
    mangle, word = BAD_FILES[kind]
    path.write_bytes(mangle(data))
    s = server("--snapshot", path)
    c = s.client()
    st = c.stats()
    assert st["curr_items"] == "0" and st["snapshot_loaded_items"] == "0", st
    assert st["snapshot_failures"] == "1", st
    log = s.stderr().strip().splitlines()
    assert len(log) == 1, "expected one log line:\n%s" % "\n".join(log)
    assert "warn" in log[0] and str(path) in log[0] and word in log[0], log[0]
    assert c.ping() == b"pong"
    assert c.call("set", b"after", b"restart") == b"restart"
    assert s.stop() == 0
    f, recs = records_by_key(path)  # replaced by a good file at shutdown
    assert list(recs) == [b"after"]


def test_periodic_save_survives_a_crash(server, tmp_path):
    path = tmp_path / "periodic.snap"
    s = server("--snapshot", path, "--snapshot_interval", "1")
    c = s.client()
    pipeline(c, set_lines([(b"p%d" % i, value_of(i), 0) for i in range(2000)]))
    poll(lambda: c.stat("snapshot_saved_items") == 2000, timeout=10,
         what="a periodic save with every key")
    assert c.stat("snapshot_failures") == 0
    s.stop(sig=signal.SIGKILL)  # no shutdown save
    s = server("--snapshot", path)
    c = s.client()
    assert c.stat("snapshot_loaded_items") == 2000
    assert decode_value(c.call("get", b"p7")) == value_of(7)


# --------------------------------------------------------------------------
# pools

_exchange_seq = itertools.count(1)


@pytest.fixture
def snap_pool(broker, tmp_path, request):
    """Factory: snap_pool(n) -> nodes node1..nodeN on a fresh exchange, each
    with its own --snapshot file, started and up. Every node still running
    at teardown gets SIGTERM and must exit 0."""
    made = []

    def make(n):
        ex = "vt.snap.%d.%d.%s" % (os.getpid(), next(_exchange_seq),
                                   re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)[:40])
        nodes = [rabbit.Node("node%d" % (i + 1), broker.port, ex,
                             extra=["--snapshot", tmp_path / ("node%d.snap" % (i + 1))])
                 for i in range(n)]
        made.extend(nodes)
        for nd in nodes:
            start(nd)
        return nodes

    yield make
    problems = []
    for nd in made:
        was = nd.alive()
        rc = nd.stop()
        if was and rc != 0:
            problems.append("%s exited %r\n%s" % (nd.node_id, rc, nd.log_text()))
    assert not problems, "\n".join(problems)


def start(nd):
    nd.start()
    poll(lambda: nd.stat("repl_state") == "up", timeout=30,
         what="%s up\n%s" % (nd.node_id, nd.log_text(2000)))


def stop(nd):
    rc = nd.stop()
    assert rc == 0, "%s exited %r\n%s" % (nd.node_id, rc, nd.log_text())


def converge(nodes, timeout=30):
    def same():
        d = [nd.stat("items_digest") for nd in nodes]
        return d[0] if len(set(d)) == 1 else None
    return poll(same, timeout=timeout, interval=0.1,
                what="equal items_digest\n%s" % "\n".join(nd.log_text(1500) for nd in nodes))


def put(nd, keys):
    lines = set_lines(keys)
    c = nd.client()
    for i in range(0, len(lines), 200):
        c.pipeline(lines[i:i + 200])
    c.close()


def check_values(nd, expect):
    c = nd.client()
    items = sorted(expect.items())
    for i in range(0, len(items), 200):
        part = items[i:i + 200]
        got = c.pipeline([req("get", k) for k, _ in part])
        for (k, v), line in zip(part, got):
            line = line.encode("utf-8", "surrogateescape")
            if v is None:
                assert line == NOT_FOUND, (nd.node_id, k, line)
            else:
                assert decode_value(line) == v, (nd.node_id, k, line)
    c.close()


def files_agree(paths):
    """Both nodes saved the same registers for every key."""
    maps = [records_by_key(p)[1] for p in paths]
    assert set(maps[0]) == set(maps[1])
    diff = [k for k in maps[0] if not same_record(maps[0][k], maps[1][k])]
    assert not diff, (diff[:3], maps[0][diff[0]], maps[1][diff[0]])


@pytest.mark.replication
def test_pool_restarted_all_at_once_keeps_data(snap_pool, tmp_path):
    a, b = snap_pool(2)
    keys = [(b"a%d" % i, value_of(i), ttl_of(i)) for i in range(3000)]
    keys += [(b"b%d" % i, value_of(i), 0) for i in range(1000)]
    put(a, keys[:3000])
    put(b, keys[3000:])
    converge([a, b])
    cb = b.client()
    for i in range(0, 200):
        assert cb.cmd(req("del", b"a%d" % i)) == "OK"
    cb.close()
    expect = {k: v for k, v, _ in keys}
    for i in range(200):
        expect[b"a%d" % i] = None
    digest = converge([a, b])
    stop(a)
    stop(b)
    start(a)
    start(b)
    for nd in (a, b):
        st = nd.stats()
        assert st["snapshot_loaded_items"] == "3800", (nd.node_id, st)
        assert st["snapshot_loaded_tombstones"] == "200", (nd.node_id, st)
    assert converge([a, b]) == digest
    check_values(a, expect)
    check_values(b, expect)
    stop(a)
    stop(b)
    files_agree([tmp_path / "node1.snap", tmp_path / "node2.snap"])


@pytest.mark.replication
def test_pool_restarted_one_at_a_time_keeps_data(snap_pool, tmp_path):
    a, b = snap_pool(2)
    keys = [(b"k%d" % i, value_of(i), ttl_of(i)) for i in range(2000)]
    put(a, keys)
    expect = {k: v for k, v, _ in keys}
    converge([a, b])

    stop(a)  # b keeps taking writes meanwhile
    put(b, [(b"k%d" % i, b"new-b-%d" % i, 0) for i in range(100)])
    put(b, [(b"fresh%d" % i, b"f%d" % i, 0) for i in range(100)])
    cb = b.client()
    for i in range(100, 150):
        assert cb.cmd(req("del", b"k%d" % i)) == "OK"
    cb.close()
    expect.update({b"k%d" % i: b"new-b-%d" % i for i in range(100)})
    expect.update({b"fresh%d" % i: b"f%d" % i for i in range(100)})
    expect.update({b"k%d" % i: None for i in range(100, 150)})
    start(a)
    assert a.stat("snapshot_loaded_items") == 2000
    converge([a, b])
    check_values(a, expect)

    stop(b)
    put(a, [(b"k%d" % i, b"new-a-%d" % i, 0) for i in range(50, 100)])
    expect.update({b"k%d" % i: b"new-a-%d" % i for i in range(50, 100)})
    start(b)
    assert b.stat("snapshot_loaded_items") == 2050
    converge([a, b])
    check_values(b, expect)
    check_values(a, expect)
    stop(a)
    stop(b)
    files_agree([tmp_path / "node1.snap", tmp_path / "node2.snap"])
