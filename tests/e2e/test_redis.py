"""SPEC section 7.2: the Redis protocol (RESP2 and RESP3) on --redis_port.

Clients: redis-py (Debian's python3-redis 4.3, which speaks RESP2 only, so
RESP3 is checked on the wire with a raw socket client), redis-cli and
redis-benchmark (redis-tools). When redis-server is installed, a
differential test sends the same commands to it and to Vitamin and wants
byte-identical replies (the wording of every error line included).

Pool tests (marked `replication`) start a private RabbitMQ broker, as
test_replication.py does.
"""

import itertools
import os
import pty
import random
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest
import redis

from conftest import HOST, MIB, SANITIZED, Client, free_port, poll

REDIS_CLI = shutil.which("redis-cli")
REDIS_BENCHMARK = shutil.which("redis-benchmark")
REDIS_SERVER = shutil.which("redis-server")


# --------------------------------------------------------------------------
# helpers

def start(server, *flags):
    """A vitamin with --redis_port on a free port; returns (server, port)."""
    rport = free_port()
    srv = server("--redis_port", rport, *flags)
    poll(lambda: _accepts(rport), what="redis port %d accepting" % rport)
    return srv, rport


def _accepts(port):
    try:
        socket.create_connection((HOST, port), timeout=1).close()
        return True
    except OSError:
        return False


def encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, int):
            a = str(a)
        if isinstance(a, str):
            a = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Resp:
    """A raw RESP client: replies come back as the exact bytes on the wire
    (one whole reply, nested aggregates included)."""

    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.buf = bytearray()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise EOFError("closed (buffered %r)" % bytes(self.buf[:100]))
        self.buf += chunk

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i + 2])
                del self.buf[:i + 2]
                return line
            self._fill()

    def _exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read(self):
        line = self._line()
        t = line[:1]
        if t in b"+-:_,#(":
            return line
        n = int(line[1:-2])
        if t in b"$=!":
            return line if n < 0 else line + self._exact(n + 2)
        if t in b"*~%>|":
            if n < 0:
                return line
            n = n * 2 if t in b"%|" else n
            return line + b"".join(self.read() for _ in range(n))
        raise AssertionError("bad reply line %r" % line)

    def call(self, *args):
        self.send(encode(*args))
        return self.read()

    def closed(self, timeout=3.0):
        """True if the server closes the connection (after what it sent)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()


def value(raw):
    """Decode one raw RESP reply into Python (bulk -> bytes, null -> None,
    map -> dict, set -> set, error -> RespError)."""
    v, rest = _decode(raw)
    assert rest == b"", "trailing bytes %r" % rest
    return v


class RespError(str):
    pass


def _decode(b):
    t, i = b[:1], b.index(b"\r\n")
    head, rest = b[1:i], b[i + 2:]
    if t == b"+":
        return head.decode(), rest
    if t == b"-":
        return RespError(head.decode()), rest
    if t == b":":
        return int(head), rest
    if t == b"_":
        return None, rest
    if t == b"#":
        return head == b"t", rest
    if t == b",":
        return float(head), rest
    if t in (b"$", b"="):
        n = int(head)
        if n < 0:
            return None, rest
        return rest[:n], rest[n + 2:]
    n = int(head)
    if n < 0:
        return None, rest
    items = []
    for _ in range(n * 2 if t == b"%" else n):
        v, rest = _decode(rest)
        items.append(v)
    if t == b"%":
        return dict(zip(items[::2], items[1::2])), rest
    if t == b"~":
        return set(items), rest
    return items, rest


@pytest.fixture
def node(server):
    srv, rport = start(server)
    r = redis.Redis(host=HOST, port=rport, socket_timeout=10)
    yield srv, rport, r
    r.close()


# --------------------------------------------------------------------------
# strings

def test_get_set_and_their_options(node):
    _, _, r = node
    assert r.get("k") is None
    assert r.set("k", "v") is True
    assert r.get("k") == b"v"
    assert r.set("k", "w", nx=True) is None
    assert r.set("new", "w", xx=True) is None
    assert r.get("new") is None
    assert r.set("k", "x", xx=True) is True
    assert r.set("k", "y", get=True) == b"x"
    assert r.set("absent", "y", get=True) is None
    assert r.get("absent") == b"y"
    assert r.set("k", "z", nx=True, get=True) == b"y"   # not set: old value
    assert r.get("k") == b"y"
    assert r.set("k", "e", ex=100) is True
    assert 99 <= r.ttl("k") <= 100
    assert r.set("k", "p", px=50000) is True
    assert 49000 <= r.pttl("k") <= 50000
    at = int(time.time()) + 1000
    assert r.set("k", "a", exat=at) is True
    assert r.execute_command("EXPIRETIME", "k") == at
    assert r.set("k", "pa", pxat=at * 1000 + 5) is True
    assert r.execute_command("PEXPIRETIME", "k") == at * 1000 + 5
    assert r.set("k", "kt", keepttl=True) is True
    assert r.execute_command("PEXPIRETIME", "k") == at * 1000 + 5
    assert r.get("k") == b"kt"
    assert r.set("k", "plain") is True                  # SET drops the TTL
    assert r.ttl("k") == -1
    assert r.set("kt-new", "v", keepttl=True) is True   # a new key: no TTL
    assert r.ttl("kt-new") == -1
    assert r.set("past", "v", exat=1) is True           # already expired
    assert r.get("past") is None
    assert r.execute_command("SET", "k", "v", "EX", "10", "EX", "20") is True
    assert 19 <= r.ttl("k") <= 20


def test_set_family(node):
    _, _, r = node
    assert r.setnx("a", "1") is True
    assert r.setnx("a", "2") is False
    assert r.get("a") == b"1"
    assert r.setex("b", 100, "v") is True
    assert 99 <= r.ttl("b") <= 100
    assert r.psetex("c", 100000, "v") is True
    assert 99000 <= r.pttl("c") <= 100000
    assert r.getset("a", "3") == b"1"
    assert r.getset("nope", "x") is None
    assert r.get("nope") == b"x"
    r.set("t", "v", ex=100)
    assert r.getset("t", "w") == b"v"
    assert r.ttl("t") == -1
    assert r.getdel("a") == b"3"
    assert r.getdel("a") is None
    assert r.exists("a") == 0


def test_getex(node):
    _, _, r = node
    assert r.getex("none", ex=10) is None
    r.set("k", "v")
    assert r.getex("k") == b"v"
    assert r.ttl("k") == -1
    assert r.getex("k", ex=100) == b"v"
    assert 99 <= r.ttl("k") <= 100
    assert r.getex("k", px=200000) == b"v"
    assert 199 <= r.ttl("k") <= 200
    at = int(time.time()) + 500
    assert r.getex("k", exat=at) == b"v"
    assert r.execute_command("EXPIRETIME", "k") == at
    assert r.getex("k", pxat=at * 1000) == b"v"
    assert r.getex("k", persist=True) == b"v"
    assert r.ttl("k") == -1
    assert r.getex("k", exat=1) == b"v"  # in the past: the key goes
    assert r.exists("k") == 0


def test_multi_key(node):
    _, _, r = node
    assert r.mset({"a": "1", "b": "2", "c": "3"}) is True
    assert r.mget("a", "x", "b", "c") == [b"1", None, b"2", b"3"]
    assert r.msetnx({"a": "9", "d": "4"}) is False
    assert r.get("d") is None
    assert r.msetnx({"d": "4", "e": "5"}) is True
    assert r.mget("d", "e") == [b"4", b"5"]
    assert r.exists("a", "b", "x", "a") == 3
    assert r.delete("a", "b", "x") == 2
    assert r.unlink("c", "d", "x") == 2
    assert r.exists("a", "b", "c", "d") == 0
    r.set("ex", "v", ex=100)
    assert r.mset({"ex": "w"}) is True
    assert r.ttl("ex") == -1


def test_counters(node):
    _, _, r = node
    assert r.incr("n") == 1
    assert r.incr("n") == 2
    assert r.decr("n") == 1
    assert r.incrby("n", 10) == 11
    assert r.decrby("n", 20) == -9
    assert r.decr("fresh") == -1
    r.set("t", "5", ex=100)
    assert r.incr("t") == 6
    assert 99 <= r.ttl("t") <= 100      # INCR keeps the TTL
    r.set("big", str(2 ** 63 - 1))
    with pytest.raises(redis.ResponseError, match="increment or decrement would overflow"):
        r.incr("big")
    r.set("s", "abc")
    with pytest.raises(redis.ResponseError, match="value is not an integer or out of range"):
        r.incr("s")
    for bad in (" 1", "1 ", "01", "+1", "-0", "1.0", ""):
        r.set("s", bad)
        with pytest.raises(redis.ResponseError, match="not an integer"):
            r.incr("s")


def test_incrbyfloat_formatting(node):
    _, rport, r = node
    c = Resp(rport)
    assert c.call("INCRBYFLOAT", "f", "10.50") == b"$4\r\n10.5\r\n"
    assert c.call("INCRBYFLOAT", "f", "0.1") == b"$4\r\n10.6\r\n"
    assert c.call("INCRBYFLOAT", "f", "-5") == b"$3\r\n5.6\r\n"
    assert c.call("SET", "g", "5.0e3") == b"+OK\r\n"
    assert c.call("INCRBYFLOAT", "g", "2.0e2") == b"$4\r\n5200\r\n"
    assert c.call("SET", "h", "3") == b"+OK\r\n"
    assert c.call("INCRBYFLOAT", "h", "0.1") == b"$3\r\n3.1\r\n"
    assert c.call("INCRBYFLOAT", "z", "1e-20") == b"$1\r\n0\r\n"
    assert c.call("INCRBYFLOAT", "h", "x") == b"-ERR value is not a valid float\r\n"
    assert c.call("INCRBYFLOAT", "h", "inf") == \
        b"-ERR increment would produce NaN or Infinity\r\n"
    c.call("SET", "s", "abc")
    assert c.call("INCRBYFLOAT", "s", "1") == b"-ERR value is not a valid float\r\n"
    c.call("SET", "t", "1", "EX", "100")
    c.call("INCRBYFLOAT", "t", "1")
    assert 99 <= r.ttl("t") <= 100
    c.close()


def test_append_strlen_ranges(node):
    _, _, r = node
    assert r.append("a", "Hello") == 5
    assert r.append("a", " World") == 11
    assert r.strlen("a") == 11
    assert r.strlen("none") == 0
    assert r.getrange("a", 0, 4) == b"Hello"
    assert r.getrange("a", -5, -1) == b"World"
    assert r.getrange("a", -1, -5) == b""
    assert r.getrange("a", 0, -100) == b"H"
    assert r.getrange("a", 5, 3) == b""
    assert r.getrange("a", 100, 200) == b""
    assert r.getrange("a", -100, 100) == b"Hello World"
    assert r.getrange("none", 0, 10) == b""
    assert r.execute_command("SUBSTR", "a", 0, 1) == b"He"
    assert r.setrange("a", 6, "Redis") == 11
    assert r.get("a") == b"Hello Redis"
    assert r.setrange("pad", 5, "x") == 6
    assert r.get("pad") == b"\0\0\0\0\0x"
    assert r.setrange("none", 3, "") == 0
    assert r.exists("none") == 0
    assert r.setrange("a", 0, "") == 11
    r.set("t", "abc", ex=100)
    r.setrange("t", 1, "Z")
    r.append("t", "d")
    assert r.get("t") == b"aZcd"
    assert 99 <= r.ttl("t") <= 100


def test_value_size_limits(server):
    _, rport = start(server, "--max_value_size", 1000)
    c = Resp(rport)
    assert c.call("SET", "k", b"x" * 1000) == b"+OK\r\n"
    size_err = b"-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n"
    assert c.call("APPEND", "k", "y") == size_err
    assert c.call("SETRANGE", "k", 1000, "y") == size_err
    assert c.call("SETRANGE", "k", 999, "y") == b":1000\r\n"
    assert c.call("SETRANGE", "k", 2 ** 62, "y") == size_err
    assert c.call("STRLEN", "k") == b":1000\r\n"
    # a key is a bulk too: 1024 bytes pass the parser even here
    assert c.call("SET", b"K" * 1024, "v") == b"+OK\r\n"
    # a bulk over the limit: Redis's protocol error, then the close
    c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1025\r\n")
    assert c.read() == b"-ERR Protocol error: invalid bulk length\r\n"
    assert c.closed()


def test_one_mib_values_and_binary_safety(node):
    _, rport, r = node
    big = random.Random(1).randbytes(MIB)
    assert r.set("big", big) is True
    assert r.get("big") == big
    assert r.strlen("big") == MIB
    assert r.getrange("big", MIB - 3, -1) == big[-3:]
    every = bytes(range(256)) * 4
    key = b"k\0\r\n \"'\xff"
    assert r.set(key, every) is True
    assert r.get(key) == every
    assert r.keys(b"k\0*") == [key]
    assert r.mget(key, "big")[0] == every
    assert r.get(b"") is None
    assert r.set(b"", b"empty key") is True   # Redis allows it, so do we
    assert r.get(b"") == b"empty key"
    # over 1 MiB (the default --max_value_size): refused by the parser
    c = Resp(rport)
    c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n" % (MIB + 1))
    assert c.read() == b"-ERR Protocol error: invalid bulk length\r\n"
    assert c.closed()


def test_key_length_limit(node):
    _, rport, r = node
    c = Resp(rport)
    ok, long = b"k" * 1024, b"k" * 1025
    err = b"-ERR key exceeds maximum allowed size (1024 bytes)\r\n"
    assert c.call("SET", ok, "v") == b"+OK\r\n"
    for args in (("SET", long, "v"), ("GET", long), ("DEL", "a", long),
                 ("MSET", "a", "1", long, "2"), ("EXPIRE", long, 10),
                 ("EXISTS", long)):
        assert c.call(*args) == err, args
    assert c.call("MSET", "a", long) == b"+OK\r\n"  # a long value is fine
    assert r.get("a") == long
    assert c.call("DBSIZE") == b":2\r\n"
    c.close()


# --------------------------------------------------------------------------
# keys and expiry

def test_generic_keys(node):
    _, _, r = node
    r.set("a", "1")
    assert r.type("a") == b"string"
    assert r.type("none") == b"none"
    assert r.ttl("a") == -1 and r.pttl("a") == -1
    assert r.ttl("none") == -2 and r.pttl("none") == -2
    assert r.execute_command("EXPIRETIME", "a") == -1
    assert r.execute_command("EXPIRETIME", "none") == -2
    assert r.persist("a") is False
    assert r.expire("a", 100) is True
    assert r.persist("a") is True
    assert r.ttl("a") == -1
    assert r.expire("none", 100) is False
    assert r.pexpire("a", 100000) is True
    assert 99000 <= r.pttl("a") <= 100000
    at = int(time.time()) + 300
    assert r.expireat("a", at) is True
    assert r.execute_command("EXPIRETIME", "a") == at
    assert r.pexpireat("a", at * 1000 + 7) is True
    assert r.execute_command("PEXPIRETIME", "a") == at * 1000 + 7
    assert r.expire("a", -1) is True           # in the past: deleted
    assert r.exists("a") == 0
    r.set("b", "1")
    assert r.pexpire("b", 150) is True
    time.sleep(0.3)
    assert r.get("b") is None and r.ttl("b") == -2


def test_expire_conditions(node):
    _, _, r = node
    r.set("k", "v")
    assert r.expire("k", 100, xx=True) is False   # no TTL yet
    assert r.expire("k", 100, gt=True) is False   # none counts as infinite
    assert r.expire("k", 100, lt=True) is True
    assert r.expire("k", 100, nx=True) is False
    assert r.expire("k", 50, gt=True) is False
    assert r.expire("k", 200, gt=True) is True
    assert r.expire("k", 300, lt=True) is False
    assert r.expire("k", 150, lt=True) is True
    assert r.expire("k", 160, xx=True) is True
    assert 159 <= r.ttl("k") <= 160
    r.set("n", "v")
    assert r.expire("n", 100, nx=True) is True
    # XX and GT together: both must hold (a later millisecond with the same
    # seconds would be greater, as in Redis, so compare with a clear margin)
    assert r.execute_command("EXPIRE", "n", 50, "XX", "GT") is False
    assert r.execute_command("EXPIRE", "n", 500, "XX", "GT") is True
    assert r.execute_command("EXPIRE", "m", 500, "XX", "GT") is False


def test_keys_randomkey_dbsize_flush(node):
    _, _, r = node
    assert r.randomkey() is None
    assert r.dbsize() == 0
    names = ["hello", "hallo", "hxllo", "hllo", "heeeello", "world", "h[e]llo"]
    for k in names:
        r.set(k, "v")
    assert sorted(r.keys("*")) == sorted(k.encode() for k in names)
    assert sorted(r.keys("h?llo")) == [b"hallo", b"hello", b"hxllo"]
    assert sorted(r.keys("h*llo")) == sorted(k.encode() for k in names if k[0] == "h")
    assert sorted(r.keys("h[ae]llo")) == [b"hallo", b"hello"]
    assert sorted(r.keys("h[^e]llo")) == [b"hallo", b"hxllo"]
    assert r.keys("h\\[e\\]llo") == [b"h[e]llo"]
    assert r.keys("nothing*") == []
    assert r.randomkey() in [k.encode() for k in names]
    assert r.dbsize() == len(names)
    assert r.flushdb() is True
    assert r.dbsize() == 0
    r.set("x", "1")
    assert r.flushall(asynchronous=True) is True
    assert r.execute_command("FLUSHALL", "SYNC") is True
    assert r.execute_command("FLUSHDB", "ASYNC") is True
    assert r.dbsize() == 0 and r.get("x") is None


def test_scan_options(node):
    _, rport, r = node
    keys = {("key:%d" % i).encode() for i in range(500)} | {b"other:1", b"other:2"}
    for k in keys:
        r.set(k, "v")
    r.set("gone", "v", px=100)
    time.sleep(0.2)                                 # expired: never returned
    assert set(r.scan_iter()) == keys
    assert set(r.scan_iter(match="other:*")) == {b"other:1", b"other:2"}
    assert set(r.scan_iter(count=1000)) == keys
    assert set(r.scan_iter(_type="string")) == keys
    assert set(r.scan_iter(_type="STRING")) == keys
    assert list(r.scan_iter(_type="hash")) == []
    # COUNT is a hint: with 500 keys and COUNT 10 it takes many calls, each
    # returning a bounded number of keys
    cursor, calls, most = 0, 0, 0
    while True:
        cursor, batch = r.scan(cursor, count=10)
        calls += 1
        most = max(most, len(batch))
        if cursor == 0:
            break
    assert calls >= 20 and most <= 40
    c = Resp(rport)
    assert c.call("SCAN", "x") == b"-ERR invalid cursor\r\n"
    assert c.call("SCAN", " 1") == b"-ERR invalid cursor\r\n"
    assert c.call("SCAN", "0", "COUNT", "0") == b"-ERR syntax error\r\n"
    assert c.call("SCAN", "0", "COUNT", "x") == \
        b"-ERR value is not an integer or out of range\r\n"
    assert c.call("SCAN", "0", "MATCH") == b"-ERR syntax error\r\n"
    assert c.call("SCAN", "0", "FOO", "bar") == b"-ERR syntax error\r\n"
    reply = value(c.call("SCAN", "0", "COUNT", "100000"))
    assert reply[0] == b"0" and set(reply[1]) == keys
    c.close()


@pytest.mark.slow
def test_scan_complete_while_10k_keys_come_and_go(node):
    """A key present for the whole iteration is returned at least once,
    while other clients insert and delete 10k keys (the table grows and
    shrinks, deletes shift keys)."""
    _, rport, r = node
    stable = {("stable:%d" % i).encode() for i in range(3000)}
    p = r.pipeline(transaction=False)
    for k in stable:
        p.set(k, "v")
    p.execute()
    stop = threading.Event()
    errors = []

    def churn(seed):
        rr = redis.Redis(host=HOST, port=rport, socket_timeout=10)
        rng = random.Random(seed)
        try:
            while not stop.is_set():
                p = rr.pipeline(transaction=False)
                base = rng.randrange(10000)
                for i in range(200):
                    p.set("churn:%d" % ((base + i) % 10000), "x" * rng.randrange(50))
                p.execute()
                p = rr.pipeline(transaction=False)
                for i in range(200):
                    p.delete("churn:%d" % rng.randrange(10000))
                p.execute()
        except Exception as e:  # reported below
            errors.append(e)
        finally:
            rr.close()

    threads = [threading.Thread(target=churn, args=(s,)) for s in (1, 2)]
    for t in threads:
        t.start()
    try:
        for rnd in range(3):
            seen = set()
            cursor = 0
            while True:
                cursor, batch = r.scan(cursor, count=random.choice((5, 10, 50)))
                seen.update(batch)
                if cursor == 0:
                    break
            missing = stable - seen
            assert not missing, "round %d: %d stable keys never returned, e.g. %r" % (
                rnd, len(missing), sorted(missing)[:5])
            assert all(k in stable or k.startswith(b"churn:") for k in seen)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not errors, errors


# --------------------------------------------------------------------------
# connection and server commands

def test_ping_echo_select_time_quit(node):
    _, rport, r = node
    assert r.ping() is True
    assert r.echo("héllo") == "héllo".encode()
    c = Resp(rport)
    assert c.call("PING", "msg") == b"$3\r\nmsg\r\n"
    assert c.call("SELECT", "0") == b"+OK\r\n"
    assert c.call("SELECT", "1") == b"-ERR DB index is out of range\r\n"
    t = value(c.call("TIME"))
    assert abs(int(t[0]) - time.time()) < 5 and 0 <= int(t[1]) < 1000000
    assert c.call("QUIT") == b"+OK\r\n"
    assert c.closed()


def test_client_commands(node):
    _, rport, r = node
    a, b = Resp(rport), Resp(rport)
    ida = value(a.call("CLIENT", "ID"))
    idb = value(b.call("CLIENT", "ID"))
    assert ida != idb
    assert a.call("CLIENT", "GETNAME") == b"$-1\r\n"
    assert a.call("CLIENT", "SETNAME", "alpha") == b"+OK\r\n"
    assert a.call("CLIENT", "GETNAME") == b"$5\r\nalpha\r\n"
    assert a.call("CLIENT", "SETNAME", "a b") == \
        b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
    assert a.call("CLIENT", "SETINFO", "LIB-NAME", "mylib") == b"+OK\r\n"
    assert a.call("CLIENT", "SETINFO", "lib-ver", "1.2") == b"+OK\r\n"
    assert a.call("CLIENT", "SETINFO", "foo", "x") == b"-ERR Unrecognized option 'foo'\r\n"
    info = value(a.call("CLIENT", "INFO")).decode()
    assert info.endswith("\n")
    fields = dict(kv.split("=", 1) for kv in info.split())
    assert fields["id"] == str(ida) and fields["name"] == "alpha"
    assert fields["lib-name"] == "mylib" and fields["lib-ver"] == "1.2"
    assert fields["cmd"] == "client|info" and fields["resp"] == "2"
    assert re.fullmatch(r"127\.0\.0\.1:\d+", fields["addr"])
    assert fields["laddr"] == "127.0.0.1:%d" % rport
    lines = value(b.call("CLIENT", "LIST")).decode().splitlines()
    ids = {int(dict(kv.split("=", 1) for kv in l.split())["id"]) for l in lines}
    assert {ida, idb} <= ids
    one = value(b.call("CLIENT", "LIST", "ID", str(idb))).decode().splitlines()
    assert len(one) == 1 and one[0].startswith("id=%d " % idb)
    assert value(b.call("CLIENT", "LIST", "TYPE", "pubsub")) == b""
    assert b.call("CLIENT", "LIST", "TYPE", "x") == b"-ERR Unknown client type 'x'\r\n"
    assert b.call("CLIENT", "LIST", "ID", "x") == b"-ERR Invalid client ID\r\n"
    a.close()
    poll(lambda: all(int(e["id"]) != ida for e in r.client_list()),
         what="a closed client leaves CLIENT LIST")
    # redis-py's own view
    r.client_setname("py")
    assert r.client_getname() == "py"
    assert isinstance(r.client_id(), int)
    assert any(c["name"] == "py" for c in r.client_list())
    b.close()


def test_config_get(node):
    _, rport, r = node
    cfg = r.config_get("*")
    assert cfg["maxmemory"] == str(200 * MIB)
    assert cfg["maxmemory-policy"] == "allkeys-lru"
    assert cfg["save"] == "" and cfg["appendonly"] == "no" and cfg["databases"] == "1"
    assert cfg["proto-max-bulk-len"] == str(MIB)
    assert cfg["port"] == str(rport)
    assert r.config_get("max*").keys() == {"maxmemory", "maxmemory-policy", "maxclients"}
    assert r.config_get("MAXMEMORY") == {"maxmemory": str(200 * MIB)}
    assert r.config_get("nothing") == {}
    c = Resp(rport)
    assert c.call("CONFIG", "GET", "save", "appendonly") == \
        b"*4\r\n$4\r\nsave\r\n$0\r\n\r\n$10\r\nappendonly\r\n$2\r\nno\r\n"
    assert c.call("CONFIG", "SET", "save", "") == \
        b"-ERR unknown subcommand 'SET'. Try CONFIG HELP.\r\n"
    help_lines = value(c.call("CONFIG", "HELP"))
    assert help_lines[0].startswith("CONFIG <subcommand>")
    c.close()


def test_config_policies(server):
    for flag, name in (("ttl", "volatile-ttl"), ("noeviction", "noeviction")):
        _, rport = start(server, "--eviction", flag, "--memory", 16)
        r = redis.Redis(host=HOST, port=rport)
        assert r.config_get("maxmemory*") == {"maxmemory": str(16 * MIB),
                                              "maxmemory-policy": name}
        assert r.info("memory")["maxmemory_policy"] == name
        r.close()


def two_keys_a_hit_a_miss(r):
    """a (no expiry) and b (100 s); one read that hits, one that misses."""
    r.set("a", "1")
    r.set("b", "2", ex=100)
    r.get("a")
    r.get("zzz")


def test_info_sections(node):
    srv, rport, r = node
    two_keys_a_hit_a_miss(r)
    info = r.info("everything")
    assert info["redis_version"] == "7.0.15"
    assert info["redis_mode"] == "standalone"
    assert info["tcp_port"] == rport
    assert info["process_id"] == srv.pid
    assert info["connected_clients"] >= 1
    assert info["maxmemory"] == 200 * MIB
    assert info["used_memory"] > 0
    assert info["role"] == "master"
    assert info["repl_state"] == "off"
    assert info["db0"] == {"keys": 2, "expires": 1, "avg_ttl": 0}
    assert info["keyspace_hits"] >= 1 and info["keyspace_misses"] >= 1
    assert info["total_commands_processed"] >= 4
    assert info["loading"] == 0
    assert set(r.info("keyspace")) == {"db0"}
    assert "redis_version" in r.info("server") and "db0" not in r.info("server")
    c = Resp(rport)
    raw = value(c.call("INFO", "clients", "KEYSPACE"))
    assert raw.startswith(b"# Clients\r\n") and b"\r\n\r\n# Keyspace\r\n" in raw
    assert raw.endswith(b"db0:keys=2,expires=1,avg_ttl=0\r\n")
    assert c.call("INFO", "nosuch") == b"$0\r\n\r\n"
    r.flushall()
    assert c.call("INFO", "keyspace") == b"$12\r\n# Keyspace\r\n\r\n"
    c.close()


def test_info_counts_errors_and_commands(node):
    _, rport, r = node
    before = r.info("stats")
    c = Resp(rport)
    c.call("NOSUCH")
    c.call("GET")
    c.call("SET", "a", "b")
    c.close()
    after = r.info("stats")
    assert after["total_error_replies"] - before["total_error_replies"] == 2
    assert after["resp_unknown_commands"] - before["resp_unknown_commands"] == 1
    assert after["total_commands_processed"] - before["total_commands_processed"] >= 2


def info_fields(raw):
    """INFO's `name:value` lines as an ordered {name: value bytes}; every
    line must end in CRLF and hold no other CR or LF."""
    assert raw.endswith(b"\r\n")
    fields = {}
    for line in raw[:-2].split(b"\r\n"):
        assert b"\r" not in line and b"\n" not in line, line
        if line and not line.startswith(b"#"):
            name, _, v = line.partition(b":")
            fields[name.decode()] = v
    return fields


# Fields that do not change while the test reads them on two ports.
STABLE = ("curr_items", "tombstones", "bytes", "limit_maxbytes", "eviction", "total_items",
          "cmd_set", "cmd_get", "get_hits", "get_misses", "max_connections", "version",
          "node_id", "items_digest", "repl_state", "snapshot_saves")


def test_info_vitamin_has_every_stats_field(node):
    srv, rport, r = node
    two_keys_a_hit_a_miss(r)
    c = Resp(rport)
    raw = value(c.call("INFO", "vitamin"))
    assert raw.startswith(b"# Vitamin\r\n") and raw.count(b"\r\n#") == 0
    info = info_fields(raw)
    # from every part of stats(): process, network, commands, this port,
    # store, expiry, snapshots, replication
    for name in ("pid", "rusage_user", "curr_connections", "cmd_get", "resp_commands",
                 "curr_items", "items_digest", "expiry_turn_max_us", "expiry_turn_cpu_max_us",
                 "snapshot_saves", "snapshot_load_ms", "repl_state", "node_id"):
        assert name in info, name
    assert info["curr_items"] == b"2" and info["get_hits"] == b"1"
    assert info["repl_state"] == b"off" and info["pid"] == b"%d" % srv.pid
    assert info["limit_maxbytes"] == b"%d" % (200 * MIB)
    # numbers as stats() prints them
    assert re.fullmatch(rb"\d+\.\d{6}", info["rusage_user"])
    assert re.fullmatch(rb"[0-9a-f]{16}", info["items_digest"])
    # every stats() field, in stats() order, with stats()'s values
    vs = Client(srv.port).stats()
    assert list(info) == list(vs)
    for name in STABLE:
        assert info[name].decode() == vs[name], name
    # redis-py reads it; the section name is case-blind like Redis's
    assert r.info("vitamin")["curr_items"] == 2
    assert value(c.call("INFO", "VITAMIN")).startswith(b"# Vitamin\r\n")
    # like a module's section: not in default or all, last in everything
    for args in ((), ("default",), ("all",), ("server", "all")):
        assert b"# Vitamin" not in value(c.call("INFO", *args)), args
    heads = [l for l in value(c.call("INFO", "everything")).split(b"\r\n") if l.startswith(b"#")]
    assert heads[-2:] == [b"# Keyspace", b"# Vitamin"] and len(heads) == 9
    both = value(c.call("INFO", "default", "vitamin"))
    assert both.startswith(b"# Server\r\n") and b"\r\n\r\n# Vitamin\r\n" in both
    c.close()


def test_vitamin_stats_show_the_redis_port(node):
    srv, rport, r = node
    v = Client(srv.port)
    r.set("a", "b")
    Resp(rport).call("NOSUCH")
    vs = v.stats()
    assert int(vs["resp_total_connections"]) >= 2
    assert int(vs["resp_commands"]) >= 1
    assert int(vs["resp_error_replies"]) == 1
    assert int(vs["resp_auth_failures"]) == 0
    s = socket.create_connection((HOST, rport))
    s.sendall(b"*1\r\n$x\r\n")            # not a bulk length: closed
    s.recv(100)
    s.close()
    poll(lambda: int(v.stats()["resp_protocol_errors"]) == 1, what="resp protocol error counted")


def test_command_command(node):
    _, rport, r = node
    c = Resp(rport)
    n = value(c.call("COMMAND", "COUNT"))
    assert n >= 50
    info = value(c.call("COMMAND", "INFO", "get", "SET", "nosuch", "client|list"))
    assert info[0][:6] == [b"get", 2, {"readonly", "fast"}, 1, 1, 1] or \
        info[0][:2] == [b"get", 2]
    assert info[1][:2] == [b"set", -3]
    assert info[2] is None
    assert info[3][:2] == [b"client|list", -2]
    everything = value(c.call("COMMAND"))
    assert len(everything) == n
    names = {e[0] for e in everything}
    assert {b"get", b"set", b"scan", b"client", b"config", b"hello"} <= names
    assert b"lpush" not in names
    listed = value(c.call("COMMAND", "LIST"))
    assert b"client|setname" in listed and b"get" in listed
    assert value(c.call("COMMAND", "LIST", "FILTERBY", "PATTERN", "get*")) == \
        [b"get", b"getset", b"getdel", b"getex", b"getrange"] or \
        set(value(c.call("COMMAND", "LIST", "FILTERBY", "PATTERN", "get*"))) == \
        {b"get", b"getset", b"getdel", b"getex", b"getrange"}
    docs = value(c.call("COMMAND", "DOCS", "set", "nosuch"))
    assert len(docs) == 2 and docs[0] == b"set"
    d = dict(zip(docs[1][::2], docs[1][1::2]))
    assert d[b"group"] == b"string" and d[b"since"] == b"1.0.0"
    args = [dict(zip(a[::2], a[1::2])) for a in d[b"arguments"]]
    assert [a[b"name"] for a in args] == [b"key", b"value", b"condition", b"get", b"expiration"]
    assert args[0][b"type"] == b"key" and args[2][b"type"] == b"oneof"
    assert c.call("COMMAND", "DOCS", "nosuch") == b"*0\r\n"
    alldocs = value(c.call("COMMAND", "DOCS"))
    assert len(alldocs) == 2 * n
    # RESP3: maps and sets
    c.call("HELLO", "3")
    assert c.call("COMMAND", "DOCS", "nosuch") == b"%0\r\n"
    d3 = value(c.call("COMMAND", "DOCS", "get"))
    assert d3[b"get"][b"summary"].startswith(b"Returns the string value")
    i3 = value(c.call("COMMAND", "INFO", "get"))
    assert i3[0][2] == {"readonly", "fast"}
    c.close()


# --------------------------------------------------------------------------
# RESP3 on the wire

def test_resp3_replies_on_the_wire(node):
    _, rport, _ = node
    c = Resp(rport)
    hello = c.call("HELLO", "3")
    cid = value(c.call("CLIENT", "ID"))
    assert hello == (b"%%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n"
                     b"$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:%d\r\n$4\r\nmode\r\n$10\r\nstandalone"
                     b"\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n" % cid)
    assert c.call("GET", "nokey") == b"_\r\n"
    assert c.call("SET", "a", "1", "NX") == b"+OK\r\n"
    assert c.call("SET", "a", "1", "NX") == b"_\r\n"
    assert c.call("SET", "a", "2", "GET") == b"$1\r\n1\r\n"
    assert c.call("MGET", "a", "nokey") == b"*2\r\n$1\r\n2\r\n_\r\n"
    assert c.call("GETDEL", "nokey") == b"_\r\n"
    assert c.call("GETEX", "nokey") == b"_\r\n"
    assert c.call("CLIENT", "GETNAME") == b"_\r\n"
    assert c.call("CONFIG", "GET", "save") == b"%1\r\n$4\r\nsave\r\n$0\r\n\r\n"
    assert c.call("INCRBYFLOAT", "f", "1.5") == b"$3\r\n1.5\r\n"
    assert c.call("EXISTS", "a") == b":1\r\n"
    assert c.call("SCAN", "0", "MATCH", "zz*") == b"*2\r\n$1\r\n0\r\n*0\r\n"
    info = c.call("INFO", "keyspace")
    body = b"# Keyspace\r\ndb0:keys=2,expires=0,avg_ttl=0\r\n"
    assert info == b"=%d\r\ntxt:%s\r\n" % (len(body) + 4, body)
    cinfo = c.call("CLIENT", "INFO")
    assert cinfo.startswith(b"=") and b"\r\ntxt:id=%d " % cid in cinfo and b" resp=3 " in cinfo
    assert c.call("FLUSHALL") == b"+OK\r\n"
    assert c.call("RANDOMKEY") == b"_\r\n"
    # HELLO with no version keeps it; HELLO 2 goes back
    assert value(c.call("HELLO"))[b"proto"] == 3
    assert c.call("HELLO", "2").startswith(b"*14\r\n")
    assert c.call("GET", "nokey") == b"$-1\r\n"
    # HELLO 3 SETNAME; RESET forgets name and protocol
    assert value(c.call("HELLO", "3", "SETNAME", "n3"))[b"proto"] == 3
    assert c.call("CLIENT", "GETNAME") == b"$2\r\nn3\r\n"
    assert c.call("RESET") == b"+RESET\r\n"
    assert c.call("CLIENT", "GETNAME") == b"$-1\r\n"
    c.close()


# --------------------------------------------------------------------------
# errors, exactly as Redis words them

ERRORS = [
    (("NOSUCH",), b"-ERR unknown command 'NOSUCH', with args beginning with: \r\n"),
    (("foo", "a b", "c"), b"-ERR unknown command 'foo', with args beginning with: 'a b' 'c' \r\n"),
    (("LPUSH", "l", "x"), b"-ERR unknown command 'LPUSH', with args beginning with: 'l' 'x' \r\n"),
    (("MULTI",), b"-ERR unknown command 'MULTI', with args beginning with: \r\n"),
    (("GET",), b"-ERR wrong number of arguments for 'get' command\r\n"),
    (("set", "k"), b"-ERR wrong number of arguments for 'set' command\r\n"),
    (("MSET", "a", "1", "b"), b"-ERR wrong number of arguments for 'mset' command\r\n"),
    (("PING", "a", "b"), b"-ERR wrong number of arguments for 'ping' command\r\n"),
    (("CLIENT",), b"-ERR wrong number of arguments for 'client' command\r\n"),
    (("CLIENT", "SETNAME"), b"-ERR wrong number of arguments for 'client|setname' command\r\n"),
    (("client", "kill", "x"), b"-ERR unknown subcommand 'kill'. Try CLIENT HELP.\r\n"),
    (("COMMAND", "nope"), b"-ERR unknown subcommand 'nope'. Try COMMAND HELP.\r\n"),
    (("SET", "k", "v", "NX", "XX"), b"-ERR syntax error\r\n"),
    (("SET", "k", "v", "EX", "1", "PX", "1"), b"-ERR syntax error\r\n"),
    (("SET", "k", "v", "KEEPTTL", "EX", "1"), b"-ERR syntax error\r\n"),
    (("SET", "k", "v", "EX"), b"-ERR syntax error\r\n"),
    (("SET", "k", "v", "EX", "x"), b"-ERR value is not an integer or out of range\r\n"),
    (("SET", "k", "v", "EX", "0"), b"-ERR invalid expire time in 'set' command\r\n"),
    (("SET", "k", "v", "PX", "-5"), b"-ERR invalid expire time in 'set' command\r\n"),
    (("SET", "k", "v", "EX", "9223372036854775"), b"-ERR invalid expire time in 'set' command\r\n"),
    (("SETEX", "k", "0", "v"), b"-ERR invalid expire time in 'setex' command\r\n"),
    (("PSETEX", "k", "-1", "v"), b"-ERR invalid expire time in 'psetex' command\r\n"),
    (("GETEX", "k", "PERSIST", "EX", "1"), b"-ERR syntax error\r\n"),
    (("GETEX", "nokey", "EX", "0"), b"$-1\r\n"),  # checked only for a key that exists
    (("EXPIRE", "k", "10", "NX", "XX"),
     b"-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"),
    (("EXPIRE", "k", "10", "GT", "LT"),
     b"-ERR GT and LT options at the same time are not compatible\r\n"),
    (("EXPIRE", "k", "10", "FOO"), b"-ERR Unsupported option FOO\r\n"),
    (("EXPIRE", "k", "x"), b"-ERR value is not an integer or out of range\r\n"),
    (("EXPIRE", "k", "9223372036854775807"), b"-ERR invalid expire time in 'expire' command\r\n"),
    (("PEXPIREAT", "k", "9223372036854775807"), b":0\r\n"),
    (("INCRBY", "n", "1.5"), b"-ERR value is not an integer or out of range\r\n"),
    (("DECRBY", "n", "-9223372036854775808"), b"-ERR decrement would overflow\r\n"),
    (("INCRBYFLOAT", "n", "abc"), b"-ERR value is not a valid float\r\n"),
    (("SETRANGE", "k", "-1", "v"), b"-ERR offset is out of range\r\n"),
    (("SETRANGE", "k", "536870912", "v"),
     b"-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n"),
    (("GETRANGE", "k", "a", "1"), b"-ERR value is not an integer or out of range\r\n"),
    (("SELECT", "x"), b"-ERR value is not an integer or out of range\r\n"),
    (("SELECT", "5"), b"-ERR DB index is out of range\r\n"),
    (("FLUSHALL", "LATER"), b"-ERR syntax error\r\n"),
    (("SCAN", "abc"), b"-ERR invalid cursor\r\n"),
    (("AUTH", "x"), b"-ERR AUTH <password> called without any password configured for the "
                    b"default user. Are you sure your configuration is correct?\r\n"),
    (("AUTH", "a", "b", "c"), b"-ERR syntax error\r\n"),
    (("AUTH", "bob", "x"), b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"),
    (("HELLO", "4"), b"-NOPROTO unsupported protocol version\r\n"),
    (("HELLO", "x"), b"-ERR Protocol version is not an integer or out of range\r\n"),
    (("HELLO", "3", "FOO"), b"-ERR Syntax error in HELLO option 'FOO'\r\n"),
    (("HELLO", "2", "AUTH", "u"), b"-ERR Syntax error in HELLO option 'AUTH'\r\n"),
]


def test_every_error_line(node):
    _, rport, r = node
    c = Resp(rport)
    for args, want in ERRORS:
        assert c.call(*args) == want, args
    r.set("s", "abc")
    assert c.call("GETEX", "s", "EX", "0") == b"-ERR invalid expire time in 'getex' command\r\n"
    assert c.call("INCR", "s") == b"-ERR value is not an integer or out of range\r\n"
    r.set("m", str(2 ** 63 - 1))
    assert c.call("INCR", "m") == b"-ERR increment or decrement would overflow\r\n"
    # a long unknown command and arguments are cut as Redis cuts them
    name, arg = "x" * 300, "y" * 300
    want = b"-ERR unknown command '%s', with args beginning with: '%s' \r\n" % (
        b"x" * 128, b"y" * 128)
    assert c.call(name, arg, "z") == want
    # the connection survived every one of them
    assert c.call("PING") == b"+PONG\r\n"
    c.close()


def test_protocol_errors_close_like_redis(node):
    _, rport, r = node
    cases = [
        (b"*abc\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
        (b"*1\r\nx\r\n", b"-ERR Protocol error: expected '$', got 'x'\r\n"),
        (b"*1\r\n$-5\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
        (b"*2000000\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
        (b"SET a \"b\r\n", b"-ERR Protocol error: unbalanced quotes in request\r\n"),
        (b"x" * 70000, b"-ERR Protocol error: too big inline request\r\n"),
    ]
    bystander = Resp(rport)
    bystander.call("SET", "safe", "1")
    for data, want in cases:
        c = Resp(rport)
        assert c.call("PING") == b"+PONG\r\n"
        # the request before the bad one is answered first, then the close
        c.send(encode("SET", "before", "1") + data)
        assert c.read() == b"+OK\r\n"
        assert c.read() == want, data[:20]
        assert c.closed(), data[:20]
        assert bystander.call("GET", "safe") == b"$1\r\n1\r\n"
    assert r.info("stats")["resp_protocol_errors"] >= len(cases)
    bystander.close()


def test_inline_commands(node):
    _, rport, r = node
    c = Resp(rport)
    c.send(b"SET inl \"a b\\x41\"\r\nGET inl\r\nPING\n\r\nEXISTS inl 'x'\r\n")
    assert c.read() == b"+OK\r\n"
    assert c.read() == b"$4\r\na bA\r\n"
    assert c.read() == b"+PONG\r\n"
    assert c.read() == b":1\r\n"
    c.close()


def test_garbage_does_not_hurt_others(node):
    _, rport, r = node
    rng = random.Random(7)
    for _ in range(50):
        g = Resp(rport, timeout=2)
        try:
            g.send(bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 400))) + b"\r\n")
            g.closed(0.05)
        except OSError:
            pass
        g.close()
    assert r.ping() is True
    r.set("after", "garbage")
    assert r.get("after") == b"garbage"


def test_pipeline_of_1000(node):
    _, rport, r = node
    p = r.pipeline(transaction=False)
    for i in range(1000):
        p.set("p%d" % i, "v%d" % i)
        p.get("p%d" % i)
        p.incr("counter")
    res = p.execute()
    assert res[0::3] == [True] * 1000
    assert res[1::3] == [b"v%d" % i for i in range(1000)]
    assert res[2::3] == list(range(1, 1001))
    # the same on the wire, in one write, mixed with inline requests
    c = Resp(rport)
    c.send(b"".join(encode("GET", "p%d" % i) if i % 2 else b"GET p%d\r\n" % i
                    for i in range(1000)))
    for i in range(1000):
        assert c.read() == b"$%d\r\nv%d\r\n" % (len(str(i)) + 1, i)
    c.close()


# --------------------------------------------------------------------------
# authentication

def test_auth_with_password(server):
    _, rport = start(server, "--password", "s3cret")
    c = Resp(rport)
    assert c.call("GET", "a") == b"-NOAUTH Authentication required.\r\n"
    assert c.call("PING") == b"-NOAUTH Authentication required.\r\n"
    assert c.call("CLIENT", "SETNAME", "x") == b"-NOAUTH Authentication required.\r\n"
    assert c.call("GET") == b"-ERR wrong number of arguments for 'get' command\r\n"
    assert c.call("HELLO", "3").startswith(
        b"-NOAUTH HELLO must be called with the client already authenticated")
    wrong = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    assert c.call("AUTH", "nope") == wrong
    assert c.call("AUTH", "bob", "s3cret") == wrong
    assert c.call("HELLO", "3", "AUTH", "default", "nope") == wrong
    assert c.call("AUTH", "s3cret") == b"+OK\r\n"
    assert c.call("SET", "a", "1") == b"+OK\r\n"
    assert c.call("RESET") == b"+RESET\r\n"
    assert c.call("GET", "a") == b"-NOAUTH Authentication required.\r\n"
    assert value(c.call("HELLO", "3", "AUTH", "default", "s3cret"))[b"proto"] == 3
    assert c.call("GET", "a") == b"$1\r\n1\r\n"
    # unauthenticated clients get Redis's tight parser limits
    u = Resp(rport)
    u.send(b"*20\r\n")
    assert u.read() == b"-ERR Protocol error: unauthenticated multibulk length\r\n"
    assert u.closed()
    u = Resp(rport)
    u.send(b"*2\r\n$100000\r\n")
    assert u.read() == b"-ERR Protocol error: unauthenticated bulk length\r\n"
    assert u.closed()
    u = Resp(rport)
    assert u.call("QUIT") == b"+OK\r\n"
    assert u.closed()
    # redis-py and redis-cli with a password
    r = redis.Redis(host=HOST, port=rport, password="s3cret")
    assert r.get("a") == b"1"
    r.close()
    with pytest.raises(redis.RedisError, match="WRONGPASS"):
        redis.Redis(host=HOST, port=rport, password="bad").ping()
    if REDIS_CLI:
        out = subprocess.run([REDIS_CLI, "-p", str(rport), "--no-auth-warning", "-a", "s3cret",
                              "GET", "a"], capture_output=True, timeout=10)
        assert out.stdout == b"1\n"
    c.close()


# --------------------------------------------------------------------------
# the same store through the other protocol

def test_cross_protocol_same_node(node):
    srv, rport, r = node
    vt = Client(srv.port)
    r.set("from-resp", "hello world", ex=100)
    assert vt.call("get", "from-resp") == b"hello world"
    assert 99 <= int(vt.call("ttl", "from-resp")) <= 100
    assert vt.call("set", "from-vt", "bytes\x01\x02", 50) == b"bytes\\x01\\x02"
    assert r.get("from-vt") == b"bytes\x01\x02"
    assert 49 <= r.ttl("from-vt") <= 50
    assert r.delete("from-vt") == 1
    assert vt.call("get", "from-vt") == b"Error: Record not found"
    assert vt.call("expire", "from-resp", 0) == b"OK"
    assert r.ttl("from-resp") == -1
    r.incr("n")
    assert vt.call("get", "n") == b"1"
    vt.close()


# --------------------------------------------------------------------------
# redis-cli and redis-benchmark

def _cli(rport, *args, stdin=None, timeout=30):
    p = subprocess.run([REDIS_CLI, "-p", str(rport)] + [str(a) for a in args], input=stdin,
                       capture_output=True, timeout=timeout)
    assert p.returncode == 0, p.stderr
    return p.stdout


@pytest.mark.skipif(not REDIS_CLI, reason="redis-cli (redis-tools) is not installed")
def test_redis_cli_commands_scan_and_pipe(node):
    _, rport, r = node
    assert _cli(rport, "SET", "cli", "value one") == b"OK\n"
    assert _cli(rport, "GET", "cli") == b"value one\n"
    assert _cli(rport, "--raw", "INCRBYFLOAT", "f", "2.5") == b"2.5\n"
    assert _cli(rport, "EXISTS", "cli", "nope") == b"(integer) 1\n" or \
        _cli(rport, "EXISTS", "cli", "nope") == b"1\n"
    assert _cli(rport, "NOSUCH").startswith(b"ERR unknown command 'NOSUCH'")
    # --pipe mass insertion, RESP and inline mixed
    n = 20000
    data = b"".join(encode("SET", "mass:%d" % i, "v%d" % i) if i % 2 else
                    b"SET mass:%d v%d\r\n" % (i, i) for i in range(n))
    out = _cli(rport, "--pipe", stdin=data, timeout=60)
    assert b"errors: 0, replies: %d" % n in out, out
    assert r.dbsize() == n + 2
    assert r.get("mass:12345") == b"v12345"
    # --scan with a pattern
    got = _cli(rport, "--scan", "--pattern", "mass:1*").split()
    assert sorted(got) == sorted(b"mass:%d" % i for i in range(n) if str(i).startswith("1"))
    assert len(_cli(rport, "--scan").split()) == n + 2


def _interactive(rport, lines, timeout=20.0):
    """Drive redis-cli's interactive mode through a pseudo-terminal."""
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "dumb"
        os.execv(REDIS_CLI, [REDIS_CLI, "-p", str(rport)])
    out = bytearray()

    def drain(until=None, wait=5.0):
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if until is not None and until in out:
                return
            r, _, _ = select.select([fd], [], [], 0.05)
            if r:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    return
                if not chunk:
                    return
                out.extend(chunk)

    try:
        prompt = b"127.0.0.1:%d> " % rport
        drain(prompt)
        for line in lines:
            start_len = len(out)
            os.write(fd, line.encode() + b"\r")
            deadline = time.monotonic() + timeout
            while out.count(prompt, start_len) < 1 and time.monotonic() < deadline:
                drain(wait=0.2)
        os.write(fd, b"quit\r")
        drain(wait=2.0)
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        os.waitpid(pid, 0)
        os.close(fd)
    return re.sub(rb"\x1b\[[0-9;]*m", b"", bytes(out)).decode(errors="replace")


@pytest.mark.skipif(not REDIS_CLI, reason="redis-cli (redis-tools) is not installed")
def test_redis_cli_interactive(node):
    """redis-cli 7 asks COMMAND DOCS when its interactive mode starts and
    builds `help` from the reply."""
    _, rport, r = node
    text = _interactive(rport, ["set greeting hello", "get greeting", "help set",
                                "help getex", "help client setname", "scan 0", "nosuch x"])
    assert '"hello"' in text
    assert "SET key value [NX|XX] [GET] [EX seconds|PX milliseconds|" \
           "EXAT unix-time-seconds|PXAT unix-time-milliseconds|KEEPTTL]" in text, text
    assert "GETEX key [EX seconds|PX milliseconds|EXAT unix-time-seconds|" \
           "PXAT unix-time-milliseconds|PERSIST]" in text, text
    assert "CLIENT SETNAME connection-name" in text, text
    assert "group: string" in text
    assert "(error) ERR unknown command 'nosuch'" in text
    assert r.get("greeting") == b"hello"


@pytest.mark.skipif(not REDIS_BENCHMARK, reason="redis-benchmark is not installed")
def test_redis_benchmark_runs(node):
    _, rport, r = node
    p = subprocess.run([REDIS_BENCHMARK, "-p", str(rport), "-t", "set,get", "-P", "16",
                        "-q", "-n", "20000", "-c", "8"], capture_output=True, timeout=120)
    out = p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")
    assert p.returncode == 0, out
    assert "WARNING" not in out and "ERR" not in out, out
    assert re.search(r"SET: [\d.]+ requests per second", out), out
    assert re.search(r"GET: [\d.]+ requests per second", out), out
    assert r.get("key:__rand_int__") is not None


# --------------------------------------------------------------------------
# byte for byte against redis-server, when it is installed

DIFFERENTIAL = r"""
set k v
get k
set k v2 get
set k v3 nx get
set k2 v3 xx get
set k2 v3 xx
set k2 v4 nx
set k2 v5 keepttl
set k v ex 5 ex 6
set k v nx nx
set k v px 5 ex 6
set k v exat 1
get k
setnx k2 x
getset g 1
getset g 2
getdel g
getdel g
getex g
setex s 100 v
ttl s
pttl nokey
expire s 100 xx
expire s 100 nx
expire s 50 gt
expire s 200 gt
expire s 300 lt
expire s 150 lt
ttl s
persist s
persist s
expire s -1
exists s
set s "Hello World"
getrange s 0 4
getrange s -5 -1
getrange s -1 -5
getrange s 0 -100
getrange s 5 3
getrange s 100 200
getrange s -100 100
getrange s -3 -100
getrange nokey 0 1
substr s 0 2
setrange sr 5 abc
get sr
setrange sr 1 ZZ
get sr
setrange sr 0 ""
setrange none 2 ""
append s "!!"
append newkey abc
strlen s
strlen nokey
set n 10.50
incrbyfloat n 0.1
incrbyfloat n -5.0e3
incrbyfloat n 2.0e2
incrbyfloat n 1e-20
incrbyfloat n 3.0e-17
set n 5
incrbyfloat n 1.5
incrbyfloat n inf
incrbyfloat n "1 "
incrbyfloat n " 1"
incrbyfloat n 0x10
set n 5
incrby n 9223372036854775807
decrby n 5
incr n
decr n
incrby n x
incr s
set n 01
incr n
incr fresh
decrby fresh -9223372036854775807
decrby fresh2 -9223372036854775808
mset a 1 b 2 c 3
mget a b nokey c
msetnx a 1 d 4
msetnx d 4 e 5
mget d e
exists a b nokey a
del a b nokey
unlink c d
type e
type nokey
keys nomatch*
scan 0 match nomatch* count 1000
flushall
dbsize
randomkey
set only 1
keys *
keys o?ly
keys o[a-z]ly
echo "hello \x00 world"
ping
ping hi
select 0
select 99999999999
client getname
client setname abc
client getname
client setname ""
client getname
client setname "a b"
client setname
client foo
client list type foo
config foo
command foo
nosuch
nosuch a "b c"
GET
MSET a
MSET a b c
set k v foo
set k v ex
set k v EX 0
set k v EX -1
set k v EX x
set k v EX 9223372036854775
set k v PX 9223372036854775807
set k v keepttl ex 5
expire k 10 nx xx
expire k 10 gt lt
expire k 10 foo
expire k x
expire k 9223372036854775807
pexpire k 9223372036854775807
expireat k 9223372036854775807
expire nokey 10
getex k foo
getex k ex 0
getex k ex 1 px 1
getex k persist ex 1
getex nokey ex 10
setrange k -1 v
setrange k 536870912 v
getrange k a b
scan x
scan " 1"
scan 0 count 0
scan 0 count x
scan 0 match
scan 0 foo bar
flushall foo
flushdb x
auth x
auth a b c
auth default x
auth bob x
hello 4
hello x
hello 3 foo
hello 2 auth
hello 2 setname "a b"
hello 3 setname
ping a b
echo
quit extra
"""


@pytest.fixture(scope="module")
def real_redis():
    if not REDIS_SERVER:
        pytest.skip("redis-server is not installed")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="vt-redis-ref-")
    p = subprocess.Popen([REDIS_SERVER, "--port", str(port), "--bind", HOST, "--save", "",
                          "--appendonly", "no", "--dir", workdir, "--daemonize", "no",
                          "--loglevel", "warning"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        poll(lambda: _accepts(port), what="redis-server up")
        yield port
    finally:
        p.terminate()
        p.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def test_same_bytes_as_redis_server(node, real_redis):
    _, rport, _ = node
    ours, theirs = Resp(rport), Resp(real_redis)
    theirs.call("FLUSHALL")
    diffs = []
    for line in DIFFERENTIAL.strip().splitlines():
        args = [a.encode("latin-1").decode("unicode_escape").encode("latin-1")
                for a in shlex.split(line)]
        a = b = None
        try:
            a = theirs.call(*args)
        except EOFError:
            a = b"<closed>"
        try:
            b = ours.call(*args)
        except EOFError:
            b = b"<closed>"
        if a != b:
            diffs.append("%s\n    redis:   %r\n    vitamin: %r" % (line, a[:200], b[:200]))
    assert not diffs, "%d replies differ:\n%s" % (len(diffs), "\n".join(diffs))
    ours.close()
    theirs.close()


# --------------------------------------------------------------------------
# pools: replication through a private broker

_exchanges = itertools.count(1)


@pytest.fixture
def rpool(broker, request):
    """Factory: rpool(n) starts node1..nodeN, each with a --redis_port;
    returns (cluster, [redis.Redis per node])."""
    import rabbit
    made = []

    def make(n, extra=()):
        name = "vt.redis.%d.%d.%s" % (os.getpid(), next(_exchanges),
                                      re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)[:40])
        c = rabbit.Cluster(broker, n, name, extra=extra)
        ports = []
        for nd in c:
            ports.append(free_port())
            nd.args += ["--redis_port", str(ports[-1])]
        made.append(c)
        c.start()
        clients = [redis.Redis(host=HOST, port=p, socket_timeout=10) for p in ports]
        return c, clients

    yield make
    problems = []
    for c in made:
        codes = c.stop()
        for node_id, rc in codes.items():
            if rc not in (0, None):
                problems.append("%s exited %r\n%s" % (node_id, rc, c.logs()))
    assert not problems, "\n".join(problems)


@pytest.mark.replication
def test_pool_set_via_resp_read_via_vitamin(rpool):
    # confirm mode: every RESP write's reply waits for the broker's confirm
    c, (ra, rb) = rpool(2, extra=("--replication_ack", "confirm"))
    ra.set("k", "from A", ex=100)
    ra.mset({"m1": "1", "m2": "2"})
    ra.incrbyfloat("f", 2.5)
    poll(lambda: c[1].c.call("get", "k") == "from A", what="k on node2")
    assert 99 <= int(c[1].c.call("ttl", "k")) <= 100
    assert rb.get("m2") == b"2" or poll(lambda: rb.get("m2") == b"2", what="m2 on B")
    poll(lambda: rb.get("f") == b"2.5", what="f on B")
    ea = ra.execute_command("PEXPIRETIME", "k")
    assert rb.execute_command("PEXPIRETIME", "k") == ea   # the same absolute expiry
    rb.expire("k", 500)
    poll(lambda: ra.ttl("k") > 400, what="EXPIRE from B on A")
    rb.delete("m1")
    poll(lambda: ra.get("m1") is None, what="DEL from B on A")
    c.wait_converged()


@pytest.mark.replication
def test_pool_flushall_and_newer_write(rpool):
    c, (ra, rb) = rpool(2)
    p = ra.pipeline(transaction=False)
    for i in range(200):
        p.set("old:%d" % i, "v")
    p.execute()
    poll(lambda: rb.dbsize() == 200, what="200 keys on B")
    assert ra.flushall() is True
    time.sleep(0.01)             # a later HLC stamp than the flush's
    rb.set("new", "after the flush")
    poll(lambda: ra.get("new") == b"after the flush", what="the new key on A")
    poll(lambda: rb.dbsize() == 1 and ra.dbsize() == 1, what="only the new key left")
    assert rb.keys() == [b"new"]
    c.wait_converged()


@pytest.mark.replication
def test_pool_info_vitamin_shows_replication_and_sync(rpool):
    c, (ra, rb) = rpool(2)
    ra.set("k", "v")
    poll(lambda: rb.get("k") == b"v", what="k on B")
    raw = Resp(ra.connection_pool.connection_kwargs["port"])
    info = info_fields(value(raw.call("INFO", "vitamin")))
    raw.close()
    for name in ("repl_state", "repl_broker", "repl_published", "repl_failovers",
                 "sync_started", "sync_completed", "sync_retried", "sync_failed",
                 "sync_items_sent", "sync_summaries_sent", "sync_wants_sent"):
        assert name in info, name
    assert info["repl_state"] == b"up"
    vs = c[0].stats()
    assert list(info) == list(vs)
    for name in ("repl_state", "repl_broker", "node_id", "repl_failovers", "sync_started",
                 "sync_failed"):
        assert info[name].decode() == vs[name], name
    c.wait_converged()


def _all_stopped(pid):
    """Has every thread of pid stopped (state T) after a SIGSTOP?"""
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
        states = []
        for t in tasks:
            with open("/proc/%d/task/%s/stat" % (pid, t)) as f:
                states.append(f.read().rsplit(")", 1)[1].split()[0])
    except OSError:
        return False
    return all(st == "T" for st in states)


@pytest.mark.replication
def test_pool_expire_on_lagging_node_keeps_newer_set(rpool, broker):
    """B has not seen A's newer SET when it runs EXPIRE on the old value:
    the SET's value survives everywhere; the later EXPIRE's TTL applies."""
    c, (ra, rb) = rpool(2)
    ra.set("k", "old")
    poll(lambda: rb.get("k") == b"old", what="old value on B")
    broker.sigstop()             # nothing moves between the nodes now
    try:
        poll(lambda: _all_stopped(broker.beam_pid()), what="the broker frozen")
        ra.set("k", "new")       # the newer value, stuck in A's outbox
        time.sleep(0.01)
        assert rb.get("k") == b"old"
        assert rb.expire("k", 300) is True   # made on the old value
    finally:
        broker.sigcont()
    poll(lambda: rb.get("k") == b"new", timeout=30, what="the newer SET on B")
    poll(lambda: ra.ttl("k") > 0, timeout=30, what="the EXPIRE on A")
    c.wait_converged(timeout=30)
    assert ra.get("k") == rb.get("k") == b"new"
    assert 290 <= ra.ttl("k") <= 300 and 290 <= rb.ttl("k") <= 300
