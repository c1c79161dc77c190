"""End-to-end tests of the memcached protocol port (--memcache_port, SPEC 7,
7.1, 7.3).

  * a real client library written by others: Debian's python3-pymemcache
  * raw sockets for every reply and error line, classic and meta; the
    goldens in GOLDENS are memcached 1.6.18's own replies, and
    test_goldens_are_memcached_replies checks them against a real memcached
    when one is installed (skipped otherwise)
  * garbage, binary-protocol bytes, split and dribbled input, refused data
    blocks arriving in pieces
  * text-protocol authentication (memcached -Y style) with --password
  * cross-protocol: memcached <-> Vitamin protocol on one store
  * pools (marked replication and slow): a private RabbitMQ broker and two
    nodes, cas across nodes, flush_all, touch on a lagging node

Run: VITAMIN_BIN=$PWD/build/vitamin /usr/bin/python3 -m pytest -q tests/e2e/test_memcache.py
"""

import base64
import os
import random
import re
import shutil
import socket
import subprocess
import threading
import time

import pytest

from conftest import HOST, MIB, Client, Server, free_port, poll, read_stat_lines

pymemcache = pytest.importorskip("pymemcache")
from pymemcache import serde  # noqa: E402
from pymemcache.client.base import Client as PyClient  # noqa: E402
from pymemcache.exceptions import (MemcacheClientError,  # noqa: E402
                                   MemcacheServerError)

MEMCACHED = shutil.which("memcached")


# --------------------------------------------------------------------------
# helpers

class MC:
    """One raw connection to a memcached-protocol port."""

    def __init__(self, port, timeout=10.0):
        self.port = port
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = bytearray()
        self.closed = False

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        try:
            chunk = self.sock.recv(1 << 20)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.closed = True
            raise EOFError("closed by server; buffered %r" % bytes(self.buf[:200]))
        self.buf += chunk

    def line(self):
        """The next line, without its \\r\\n."""
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                out = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return out
            self._fill()

    def exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def cmd(self, data):
        """Send data, return the next line."""
        self.send(data)
        return self.line()

    def transcript(self, data):
        """Send data then "mn\\r\\n"; return every reply byte before the MN
        (or up to the close, followed by b"<closed>")."""
        self.send(data + b"mn\r\n")
        while not self.buf.endswith(b"MN\r\n"):
            try:
                self._fill()
            except EOFError:
                out = bytes(self.buf)
                self.buf.clear()
                return out + b"<closed>"
        out = bytes(self.buf[:-4])
        self.buf.clear()
        return out

    def value(self, key, cmd=b"get"):
        """(flags, value[, cas]) of a get/gets, or None on a miss."""
        self.send(cmd + b" " + key + b"\r\n")
        head = self.line()
        if head == b"END":
            return None
        parts = head.split(b" ")
        assert parts[0] == b"VALUE" and parts[1] == key, head
        data = self.exact(int(parts[3]) + 2)[:-2]
        assert self.line() == b"END"
        out = (int(parts[2]), data)
        return out + (int(parts[4]),) if len(parts) > 4 else out

    def is_closed(self, timeout=3.0):
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(1 << 16)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        finally:
            self.sock.settimeout(self.timeout)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


CAS_IN_VALUE = re.compile(rb"(VALUE \S+ \d+ \d+) \d+")
CAS_FLAG = re.compile(rb"(?<= )c\d+")


def norm(b):
    """Replace cas uniques (they differ between servers) by <cas>."""
    return CAS_FLAG.sub(b"c<cas>", CAS_IN_VALUE.sub(rb"\1 <cas>", b))


@pytest.fixture
def mc(server):
    """Factory: mc(*flags) starts vitamin with a memcache port; returns the
    Server with .mport set."""
    def start(*args):
        mport = free_port()
        s = server("--memcache_port", mport, *args)
        s.mport = mport
        return s
    return start


@pytest.fixture
def one(mc):
    """A server with a memcache port (no extra flags)."""
    return mc()


def py(srv, **kw):
    kw.setdefault("connect_timeout", 5)
    kw.setdefault("timeout", 10)
    kw.setdefault("default_noreply", False)  # pymemcache's default is True
    return PyClient((HOST, srv.mport), **kw)


def stats_of(conn):
    conn.send(b"stats\r\n")
    out = {}
    while True:
        line = conn.line()
        if line == b"END":
            return out
        _, name, value = line.split(b" ", 2)
        out[name.decode()] = value.decode()


# --------------------------------------------------------------------------
# 1. a real client: pymemcache

def test_pymemcache_basics(one):
    c = py(one)
    assert c.set("k", b"v")
    assert c.get("k") == b"v"
    assert c.get("nope") is None
    assert c.add("k", b"x") is False
    assert c.add("k2", b"x") is True
    assert c.replace("nope", b"x") is False
    assert c.replace("k2", b"y") is True
    assert c.append("k", b"-tail") is True
    assert c.prepend("k", b"head-") is True
    assert c.get("k") == b"head-v-tail"
    assert c.append("nope", b"x") is False
    value, cas = c.gets("k")
    assert value == b"head-v-tail" and int(cas) > 0
    assert c.cas("k", b"new", cas) is True
    assert c.cas("k", b"newer", cas) is False          # EXISTS
    assert c.cas("nope", b"x", cas) is None            # NOT_FOUND
    assert c.get("k") == b"new"
    _, cas2 = c.gets("k")
    assert cas2 != cas
    assert c.set("n", b"10")
    assert c.incr("n", 5) == 15
    assert c.decr("n", 100) == 0
    assert c.incr("n", 2 ** 64 - 1) == 2 ** 64 - 1
    assert c.incr("n", 2) == 1                         # wraps at 2^64
    assert c.incr("nope", 1) is None
    with pytest.raises(MemcacheClientError, match="non-numeric"):
        c.incr("k", 1)
    assert c.touch("k", 100) is True
    assert c.touch("nope", 100) is False
    assert c.set_many({"a": b"1", "b": b"2", "c": b"3"}) == []
    assert c.get_many(["a", "b", "c", "nope"]) == {"a": b"1", "b": b"2", "c": b"3"}
    got = c.gets_many(["a", "b"])
    assert set(got) == {"a", "b"} and all(int(v[1]) > 0 for v in got.values())
    assert c.delete("a") is True
    assert c.delete("a") is False
    assert c.get("a") is None
    assert c.version().startswith(b"1.6.18-vitamin-")
    st = c.stats()
    for name in ("pid", "uptime", "time", "version", "curr_connections",
                 "total_connections", "cmd_get", "cmd_set", "cmd_touch",
                 "get_hits", "get_misses", "get_expired", "delete_hits",
                 "delete_misses", "incr_hits", "incr_misses", "decr_hits",
                 "decr_misses", "cas_hits", "cas_misses", "cas_badval",
                 "curr_items", "total_items", "bytes", "limit_maxbytes",
                 "evictions", "expired_unfetched"):
        assert name.encode() in st, name
    assert st[b"cas_hits"] == 1 and st[b"cas_badval"] == 1 and st[b"cas_misses"] == 1
    assert st[b"incr_misses"] == 1 and st[b"delete_hits"] == 1
    assert c.flush_all() is True
    assert c.get_many(["b", "c", "k"]) == {}
    assert c.stats("settings")[b"item_size_max"] == MIB
    c.quit()


def test_pymemcache_serde_flags(one):
    c = py(one, serde=serde.pickle_serde)
    values = {"s": "text é", "i": 42, "l": 2 ** 70, "d": {"a": [1, 2]}, "b": b"raw"}
    for k, v in values.items():
        assert c.set(k, v)
    for k, v in values.items():
        assert c.get(k) == v
    raw = MC(one.mport)
    assert raw.value(b"i")[0] == serde.FLAG_INTEGER
    assert raw.value(b"s")[0] == serde.FLAG_TEXT
    assert raw.value(b"d")[0] == serde.FLAG_PICKLE
    assert raw.value(b"b")[0] == serde.FLAG_BYTES
    # flags are 32-bit and opaque; append keeps the first set's flags
    plain = py(one)
    assert plain.set("f", b"x", flags=0xFFFFFFFF)
    assert plain.append("f", b"y", flags=7)
    assert raw.value(b"f") == (0xFFFFFFFF, b"xy")


def test_pymemcache_noreply(one):
    c = py(one, default_noreply=True)
    assert c.set("k", b"v") is True
    assert c.add("k", b"x") is True          # no reply: the client cannot know
    c.set_many({"a": b"1", "b": b"2"})
    c.delete("b")
    c.touch("a", 100)
    c.flush_all(delay=0, noreply=False)
    assert c.get_many(["k", "a", "b"]) == {}
    c.set("k", b"v")
    assert c.incr("k", 1, noreply=True) is None
    assert c.get("k") == b"v"                # incr of non-numeric, silently


def test_exptime_forms(one):
    c = py(one)
    raw = MC(one.mport)
    now = int(time.time())
    assert c.set("never", b"v", expire=0)
    assert c.set("rel", b"v", expire=100)
    assert c.set("rel30d", b"v", expire=2592000)             # still relative
    assert c.set("abs", b"v", expire=now + 1000)              # absolute
    assert c.set("abs_past", b"v", expire=2592001)            # 1970: past
    assert c.set("neg", b"v", expire=-1)
    assert c.set("far", b"v", expire=4000000000)              # year 2096
    assert c.set("short", b"v", expire=1)
    assert c.set("unread", b"v", expire=1)
    ttl = {}
    for k in (b"never", b"rel", b"rel30d", b"abs", b"far"):
        line = raw.cmd(b"mg " + k + b" t\r\n")
        ttl[k] = int(line.split(b" t")[1])
    assert ttl[b"never"] == -1
    assert 99 <= ttl[b"rel"] <= 100
    assert 2591999 <= ttl[b"rel30d"] <= 2592000
    assert 998 <= ttl[b"abs"] <= 1000
    assert ttl[b"far"] > 2000000000
    assert c.get("abs_past") is None and c.get("neg") is None
    # a negative exptime is still a write: it deletes the old value
    assert c.set("gone", b"v") and c.set("gone", b"w", expire=-1)
    assert c.get("gone") is None
    # touch and gat with the same rules
    assert c.touch("rel", -1) is True and c.get("rel") is None
    assert raw.transcript(b"gat 50 abs\r\n") == b"VALUE abs 0 1\r\nv\r\nEND\r\n"
    assert int(raw.cmd(b"mg abs t\r\n").split(b" t")[1]) == 50
    assert raw.transcript(b"gats -1 abs\r\n").startswith(b"VALUE abs 0 1 ")  # once
    assert c.get("abs") is None
    poll(lambda: c.get("short") is None, timeout=3, what="1 s exptime to pass")
    poll(lambda: c.stats()[b"expired_unfetched"] >= 1, timeout=3,
         what="the never-read item counted as expired_unfetched")


def test_large_and_binary_values(one):
    c = py(one)
    big = random.Random(1).randbytes(MIB)
    assert c.set("big", big)
    assert c.get("big") == big
    assert c.get_many(["big", "big2"]) == {"big": big}
    with pytest.raises(MemcacheServerError, match="object too large for cache"):
        c.set("big", big + b"x")
    assert c.get("big") is None              # memcached drops the old value
    every = bytes(range(256)) * 4 + b"\r\nEND\r\n\x00"
    assert c.set("bin", every)
    assert c.get("bin") == every
    assert c.set("empty", b"")
    assert c.get("empty") == b""
    # append/prepend cannot build a value over the limit either
    assert c.set("half", b"x" * (MIB // 2 + 1))
    with pytest.raises(MemcacheServerError, match="too large"):
        c.append("half", b"y" * (MIB // 2))
    assert len(c.get("half")) == MIB // 2 + 1


def test_many_keys_and_connections(one):
    clients = [py(one) for _ in range(8)]
    for i, c in enumerate(clients):
        c.set_many({"c%d:%d" % (i, j): b"%d" % j for j in range(200)})
    for i, c in enumerate(clients):
        got = c.get_many(["c%d:%d" % (i, j) for j in range(200)])
        assert len(got) == 200 and got["c%d:7" % i] == b"7"


# --------------------------------------------------------------------------
# 2. exact replies, classic and meta (memcached 1.6.18's own bytes)

# (name, request, reply). Each runs on its own connection with its own
# keys (every key starts with the case's name), then "mn" is sent to find
# the end of the replies. "<cas>" stands for any cas unique.
GOLDENS = [
    # storage and retrieval
    ("set", b"set set 5 0 2\r\nhi\r\nget set\r\n", b"STORED\r\nVALUE set 5 2\r\nhi\r\nEND\r\n"),
    ("multi", b"set multi1 1 0 1\r\na\r\nset multi2 2 0 1\r\nb\r\nget multi1 multix multi2 multi1\r\n",
     b"STORED\r\nSTORED\r\nVALUE multi1 1 1\r\na\r\nVALUE multi2 2 1\r\nb\r\n"
     b"VALUE multi1 1 1\r\na\r\nEND\r\n"),
    ("gets", b"set gets 0 0 1\r\nx\r\ngets gets getsx\r\n",
     b"STORED\r\nVALUE gets 0 1 <cas>\r\nx\r\nEND\r\n"),
    ("add", b"add add 0 0 1\r\nx\r\nadd add 0 0 1\r\ny\r\nget add\r\n",
     b"STORED\r\nNOT_STORED\r\nVALUE add 0 1\r\nx\r\nEND\r\n"),
    ("replace", b"replace replace 0 0 1\r\nx\r\nset replace 0 0 1\r\nx\r\n"
                b"replace replace 3 0 1\r\ny\r\nget replace\r\n",
     b"NOT_STORED\r\nSTORED\r\nSTORED\r\nVALUE replace 3 1\r\ny\r\nEND\r\n"),
    ("concat", b"append concat 0 0 1\r\nx\r\nprepend concat 0 0 1\r\nx\r\n"
               b"set concat 7 0 3\r\nabc\r\nappend concat 9 0 2\r\nde\r\n"
               b"prepend concat 9 0 2\r\nxy\r\nget concat\r\n",
     b"NOT_STORED\r\nNOT_STORED\r\nSTORED\r\nSTORED\r\nSTORED\r\n"
     b"VALUE concat 7 7\r\nxyabcde\r\nEND\r\n"),
    ("cas", b"cas cas 0 0 1 5\r\nx\r\nset cas 0 0 1\r\nx\r\n"
            b"cas cas 0 0 1 18446744073709551615\r\ny\r\nget cas\r\n",
     b"NOT_FOUND\r\nSTORED\r\nEXISTS\r\nVALUE cas 0 1\r\nx\r\nEND\r\n"),
    ("noreply", b"set noreply 1 0 1 noreply\r\nx\r\nadd noreply 0 0 1 noreply\r\ny\r\n"
                b"append noreply 0 0 1 noreply\r\nz\r\ncas noreply 0 0 1 1 noreply\r\nq\r\n"
                b"get noreply\r\n",
     b"VALUE noreply 1 2\r\nxz\r\nEND\r\n"),
    ("expired", b"set expired 0 -1 1\r\nx\r\nget expired\r\n", b"STORED\r\nEND\r\n"),
    ("flags_max", b"set flags_max 4294967295 0 1\r\nx\r\nget flags_max\r\n",
     b"STORED\r\nVALUE flags_max 4294967295 1\r\nx\r\nEND\r\n"),
    ("empty", b"set empty 0 0 0\r\n\r\nget empty\r\n", b"STORED\r\nVALUE empty 0 0\r\n\r\nEND\r\n"),
    ("gat", b"set gat 0 0 1\r\nx\r\ngat 100 gat gatx\r\ngats 100 gat\r\n",
     b"STORED\r\nVALUE gat 0 1\r\nx\r\nEND\r\nVALUE gat 0 1 <cas>\r\nx\r\nEND\r\n"),
    ("gat_neg", b"set gat_neg 0 0 1\r\nx\r\ngat -1 gat_neg\r\nget gat_neg\r\n",
     b"STORED\r\nVALUE gat_neg 0 1\r\nx\r\nEND\r\nEND\r\n"),
    ("touch", b"set touch 0 0 1\r\nx\r\ntouch touch 10\r\ntouch touchx 10\r\n"
              b"touch touch 10 noreply\r\ntouch touch -1\r\nget touch\r\n",
     b"STORED\r\nTOUCHED\r\nNOT_FOUND\r\nTOUCHED\r\nEND\r\n"),
    ("delete", b"set delete 0 0 1\r\nx\r\ndelete delete\r\ndelete delete\r\n"
               b"delete delete 0\r\ndelete delete noreply\r\ndelete delete 0 noreply\r\n",
     b"STORED\r\nDELETED\r\nNOT_FOUND\r\nNOT_FOUND\r\n"),
    ("incr", b"incr incr 1\r\nset incr 0 0 2\r\n10\r\nincr incr 5\r\ndecr incr 100\r\n"
             b"incr incr 18446744073709551615\r\nincr incr 2\r\nincr incr 1 noreply\r\n"
             b"decr incrx 1\r\n",
     b"NOT_FOUND\r\nSTORED\r\n15\r\n0\r\n18446744073709551615\r\n1\r\nNOT_FOUND\r\n"),
    ("incr_rules", b"set incr_rules1 0 0 6\r\n12 abc\r\nincr incr_rules1 1\r\n"
                   b"set incr_rules2 0 0 3\r\n+12\r\nincr incr_rules2 1\r\n"
                   b"set incr_rules3 0 0 3\r\n\t12\r\nincr incr_rules3 1\r\n"
                   b"set incr_rules4 0 0 2\r\n-0\r\nincr incr_rules4 1\r\n"
                   b"set incr_rules5 0 0 2\r\n-1\r\nincr incr_rules5 1\r\n"
                   b"set incr_rules6 0 0 3\r\n12a\r\nincr incr_rules6 1\r\n"
                   b"set incr_rules7 0 0 0\r\n\r\nincr incr_rules7 1\r\n"
                   b"set incr_rules8 0 0 20\r\n99999999999999999999\r\nincr incr_rules8 1\r\n",
     b"STORED\r\n13\r\nSTORED\r\n13\r\nSTORED\r\n13\r\nSTORED\r\n1\r\n"
     + b"STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n" * 4),
    ("version_verbosity", b"verbosity 1\r\nverbosity 1 noreply\r\nverbosity\r\nverbosity x\r\n",
     b"OK\r\nERROR\r\nCLIENT_ERROR bad command line format\r\n"),
    # errors and re-synchronisation
    ("unknown", b"bogus\r\nGET x\r\n\r\nget\r\n", b"ERROR\r\nERROR\r\nERROR\r\nERROR\r\n"),
    ("bad_chunk", b"set bad_chunk 0 0 3\r\nabcdefg\r\nget bad_chunk\r\n",
     b"CLIENT_ERROR bad data chunk\r\nERROR\r\nEND\r\n"),
    ("bad_chunk_cmd", b"set bad_chunk_cmd 0 0 3\r\nabcset bad_chunk_cmd2 0 0 1\r\nx\r\n"
                      b"get bad_chunk_cmd2\r\n",  # exactly bytes + 2 are dropped
     b"CLIENT_ERROR bad data chunk\r\nERROR\r\nERROR\r\nEND\r\n"),
    ("bad_chunk_nr", b"set bad_chunk_nr 0 0 3 noreply\r\nabcdefg\r\nget bad_chunk_nr\r\n",
     b"ERROR\r\nEND\r\n"),
    ("bad_format", b"set bad_format 0 0 x\r\nabc\r\nset bad_format x 0 3\r\nabc\r\n"
                   b"set bad_format 0 0 -1\r\nset bad_format 0 0\r\n"
                   b"set bad_format 0 0 1 2 3 4\r\n",
     b"CLIENT_ERROR bad command line format\r\nERROR\r\n"
     b"CLIENT_ERROR bad command line format\r\nERROR\r\n"
     b"CLIENT_ERROR bad command line format\r\nERROR\r\nERROR\r\n"),
    ("long_key_set", b"set " + b"k" * 251 + b" 0 0 1\r\nx\r\n",
     b"CLIENT_ERROR bad command line format\r\nERROR\r\n"),
    ("long_key_get", b"get " + b"k" * 251 + b"\r\n", b"CLIENT_ERROR bad command line format\r\n"),
    ("long_key_ok", b"get " + b"k" * 250 + b"\r\n", b"END\r\n"),
    ("delete_usage", b"delete\r\ndelete x 1\r\ndelete x 0 1\r\ndelete x noreply extra\r\n",
     b"ERROR\r\nCLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
     b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
     b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"),
    ("incr_errors", b"incr\r\nincr x\r\nincr x y\r\nincr x -1\r\n"
                    b"incr x 18446744073709551616\r\nincr x 1 2 3\r\n",
     b"ERROR\r\nERROR\r\nCLIENT_ERROR invalid numeric delta argument\r\n"
     b"CLIENT_ERROR invalid numeric delta argument\r\n"
     b"CLIENT_ERROR invalid numeric delta argument\r\nERROR\r\n"),
    ("exptime_errors", b"touch x\r\ntouch x y\r\ngat\r\ngat 10\r\ngat y x\r\nflush_all y\r\n"
                       b"flush_all 1 2 3\r\n",
     b"ERROR\r\nCLIENT_ERROR invalid exptime argument\r\nERROR\r\nEND\r\n"
     b"CLIENT_ERROR invalid exptime argument\r\nCLIENT_ERROR invalid exptime argument\r\n"
     b"ERROR\r\n"),
    ("stats_sub", b"stats bogus\r\n", b"ERROR\r\n"),
    ("quit", b"quit\r\nget x\r\n", b"<closed>"),
    # meta
    ("mg_miss", b"mg mg_miss v\r\nmg mg_miss q v\r\nmg mg_miss k O12\r\nmg mg_miss k O12 q\r\n",
     b"EN\r\nEN kmg_miss O12\r\n"),
    ("mg_hit", b"ms mg_hit 2 F7 T100\r\nhi\r\nmg mg_hit\r\nmg mg_hit v\r\n"
               b"mg mg_hit s v f t k O9 c q\r\n",
     b"HD\r\nHD\r\nVA 2\r\nhi\r\nVA 2 s2 f7 t100 kmg_hit O9 c<cas>\r\nhi\r\n"),
    ("mg_hl", b"ms mg_hl 1\r\nx\r\nmg mg_hl h l t\r\nmg mg_hl h l\r\nmg mg_hl u h\r\n",
     b"HD\r\nHD h0 l0 t-1\r\nHD h1 l0\r\nHD h1\r\n"),
    ("mg_touch", b"ms mg_touch 1 T100\r\nx\r\nmg mg_touch t T20\r\nmg mg_touch t\r\n",
     b"HD\r\nHD t100\r\nHD t20\r\n"),  # t: the TTL before T
    ("mg_vivify", b"mg mg_vivify v N30 t\r\nmg mg_vivify v N30 t\r\nmg mg_vivify t\r\n"
                  b"ms mg_vivify 2\r\nhi\r\nmg mg_vivify v\r\n",
     b"VA 0 t30 W\r\n\r\nVA 0 t30 Z\r\n\r\nHD t30 Z\r\nHD\r\nVA 2\r\nhi\r\n"),
    ("mg_recache", b"ms mg_recache 2 T60\r\nhi\r\nmg mg_recache v R30 t\r\n"
                   b"mg mg_recache v R70 t\r\nmg mg_recache v R70 t\r\nmg mg_recache\r\n",
     b"HD\r\nVA 2 t60\r\nhi\r\nVA 2 t60 W\r\nhi\r\nVA 2 t60 Z\r\nhi\r\nHD Z\r\n"),
    ("md_stale", b"ms md_stale 2 T60\r\nhi\r\nmd md_stale I T30\r\nmg md_stale v t\r\n"
                 b"mg md_stale v t\r\nmd md_stale I\r\nmg md_stale t\r\n"
                 b"ms md_stale 2\r\nho\r\nmg md_stale v t\r\n",
     b"HD\r\nHD\r\nVA 2 t30 X W\r\nhi\r\nVA 2 t30 Z X\r\nhi\r\nHD\r\nHD t30 X W\r\n"
     b"HD\r\nVA 2 t-1\r\nho\r\n"),
    ("ms_modes", b"ms ms_modes 2 ME\r\nhi\r\nms ms_modes 2 ME\r\nho\r\nms ms_modes 2 MA\r\n!!\r\n"
                 b"ms ms_modes 2 MP\r\n<<\r\nms ms_modes 2 MS\r\nab\r\nms ms_modes 2 MR\r\ncd\r\n"
                 b"mg ms_modes v\r\nms ms_modesx 2 MR\r\nhi\r\nms ms_modesx 2 MA\r\nhi\r\n"
                 b"ms ms_modesx 2 MP q\r\nhi\r\nms ms_modesx 2 q\r\nhi\r\n",
     b"HD\r\nNS\r\nHD\r\nHD\r\nHD\r\nHD\r\nVA 2\r\ncd\r\nNS\r\nNS\r\nNS\r\n"),
    ("ms_flags", b"ms ms_flags 2 F7 T100 c k O1\r\nhi\r\nmg ms_flags v s f t\r\n",
     b"HD c<cas> kms_flags O1\r\nVA 2 s2 f7 t100\r\nhi\r\n"),
    ("ms_cas", b"ms ms_cas 2 C99\r\nhi\r\nms ms_cas 2\r\nhi\r\nms ms_cas 2 C18446744073709551615\r\n"
               b"ho\r\nms ms_cas 2 MA C18446744073709551615\r\n!!\r\nms ms_casx 2 MA C5\r\nhi\r\n"
               b"mg ms_cas v\r\n",
     b"NF\r\nHD\r\nEX\r\nEX\r\nNS\r\nVA 2\r\nhi\r\n"),
    ("ms_errors", b"ms ms_errors\r\nms ms_errors x\r\nms ms_errors 2 MZ\r\nhi\r\n"
                  b"ms ms_errors 2 Tx\r\nhi\r\nms ms_errors 2 q q\r\nhi\r\n"
                  b"ms ms_errors 2 !\r\nhi\r\nms ms_errors 2 M\r\nhi\r\n",
     b"CLIENT_ERROR bad command line format\r\nCLIENT_ERROR bad command line format\r\n"
     b"CLIENT_ERROR invalid mode for ms M token\r\n"
     b"CLIENT_ERROR bad token in command line format\r\nCLIENT_ERROR duplicate flag\r\n"
     b"CLIENT_ERROR invalid flag\r\nCLIENT_ERROR incorrect length for M token\r\n"),
    ("md", b"md md\r\nms md 1\r\nx\r\nmd md q\r\nmd md q\r\nmd md k O5\r\n"
           b"ms md 1\r\nx\r\nmd md C18446744073709551615\r\nmg md v\r\n",
     b"NF\r\nHD\r\nNF\r\nNF kmd O5\r\nHD\r\nEX\r\nVA 1\r\nx\r\n"),
    ("ma", b"ma ma\r\nma ma q\r\nma ma N0 J5 v\r\nma ma v\r\nma ma MD D100 v\r\nma ma q D2\r\n"
           b"ma ma M- v\r\nma ma M+ D10 v t\r\nma ma MI v k O1\r\nma ma C18446744073709551615\r\n",
     b"NF\r\nNF\r\nVA 1\r\n5\r\nVA 1\r\n6\r\nVA 1\r\n0\r\nVA 1\r\n1\r\nVA 2 t-1\r\n11\r\n"
     b"VA 2 kma O1\r\n12\r\nEX\r\n"),
    ("ma_vivify", b"ma ma_vivify N60 J10 v t\r\nma ma_vivify t\r\n",
     b"VA 2 t60\r\n10\r\nHD t60\r\n"),
    ("ma_quiet", b"set ma_quiet 0 0 1\r\n5\r\nma ma_quiet v q\r\nma ma_quiet q\r\n"
                 b"ma ma_quiet q C1\r\nma ma_quietx q\r\nmg ma_quiet v\r\n",
     b"STORED\r\nEX\r\nNF\r\nVA 1\r\n7\r\n"),
    ("ma_errors", b"ms ma_errors 1\r\nx\r\nma ma_errors\r\nma ma_errors q\r\nma ma_errors MX\r\n"
                  b"ma ma_errors Dx\r\nma ma_errors Jx\r\nma ma_errors !\r\n",
     b"HD\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
     b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
     b"CLIENT_ERROR invalid mode for ma M token\r\nCLIENT_ERROR invalid or duplicate flag\r\n"
     b"CLIENT_ERROR invalid or duplicate flag\r\nCLIENT_ERROR invalid or duplicate flag\r\n"),
    ("mg_errors", b"mg\r\nmg x a\r\nmg x v v\r\nmg x Tx\r\nmg x O" + b"o" * 32 + b"\r\n"
                  b"mg x s s s s s s s s s s s s s s s s s s\r\n",
     b"ERROR\r\nCLIENT_ERROR invalid flag\r\nCLIENT_ERROR duplicate flag\r\n"
     b"CLIENT_ERROR bad token in command line format\r\nCLIENT_ERROR opaque token too long\r\n"
     b"CLIENT_ERROR options flags are too long\r\n"),
    ("base64", b"ms YjY0 2 b k\r\nhi\r\nmg YjY0 b k v\r\nmg b64 v\r\nmg YQ b\r\nmd YjY0 b k q\r\n"
               b"md YjY0 b k\r\n",
     b"HD kYjY0 b\r\nVA 2 kYjY0 b\r\nhi\r\nVA 2\r\nhi\r\nCLIENT_ERROR error decoding key\r\n"
     b"NF kYjY0 b\r\n"),
]


@pytest.mark.parametrize("name,request_,reply", GOLDENS, ids=[g[0] for g in GOLDENS])
def test_golden_replies(one, name, request_, reply):
    c = MC(one.mport)
    try:
        assert norm(c.transcript(request_)) == reply
    finally:
        c.close()


@pytest.mark.skipif(not MEMCACHED, reason="memcached is not installed")
def test_goldens_are_memcached_replies(tmp_path):
    """The table above holds memcached 1.6.18's replies: check it against
    the real thing when it is installed (each case on its own connection)."""
    port = free_port()
    cmd = [MEMCACHED, "-t", "1", "-p", str(port), "-U", "0", "-l", HOST]
    if os.geteuid() == 0:
        cmd += ["-u", "root"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        poll(lambda: _accepts(port), timeout=5, what="memcached up")
        version = MC(port).cmd(b"version\r\n")
        if version != b"VERSION 1.6.18":
            pytest.skip("goldens are for memcached 1.6.18, not %r" % version)
        bad = []
        for name, request_, reply in GOLDENS:
            c = MC(port, timeout=5)
            got = norm(c.transcript(request_))
            c.close()
            if got != reply:
                bad.append("%s: memcached says %r" % (name, got))
        assert not bad, "\n".join(bad)
    finally:
        p.terminate()
        p.wait(10)


def _accepts(port):
    try:
        socket.create_connection((HOST, port), timeout=1).close()
        return True
    except OSError:
        return False


def test_deliberate_differences(one):
    """What we answer where memcached differs on purpose (docs/protocol.md)."""
    c = MC(one.mport)
    # keys with control bytes are refused (memcached stores them)
    assert c.transcript(b"set a\x01b 0 0 1\r\nx\r\nget a\tb\r\n") == (
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n"
        b"CLIENT_ERROR bad command line format\r\n")
    # exptimes are not truncated to 32 bits (memcached: 2^31 and up wrap)
    assert c.transcript(b"set far 0 4000000000 1\r\nx\r\nget far\r\n") == (
        b"STORED\r\nVALUE far 0 1\r\nx\r\nEND\r\n")
    # decr never pads with spaces: the value is the number's digits
    assert c.transcript(b"set n 0 0 2\r\n10\r\ndecr n 1\r\nget n\r\n") == (
        b"STORED\r\n9\r\nVALUE n 0 1\r\n9\r\nEND\r\n")
    # version: the protocol level, then Vitamin's
    assert re.fullmatch(rb"VERSION 1\.6\.18-vitamin-\d+\.\d+\.\d+", c.cmd(b"version\r\n"))
    # stats subcommands with nothing to show (stats slabs: test_stats_slabs)
    assert c.transcript(b"stats items\r\nstats sizes\r\nstats conns\r\n") == (
        b"END\r\n" * 3)
    # flags over 32 bits are refused (memcached keeps the low 32 bits)
    assert c.transcript(b"set big 4294967296 0 1\r\nx\r\n") == (
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n")
    # ms s returns the size (newer memcached)
    assert c.transcript(b"ms s 2 s\r\nhi\r\n") == b"HD s2\r\n"
    # ma T sets the TTL on success, and t says the TTL after it
    assert c.transcript(b"ma ttl N60 J10\r\nma ttl T0 t\r\nma ttl T90 t v\r\n") == (
        b"HD\r\nHD t-1\r\nVA 2 t90\r\n12\r\n")
    # E (a client-chosen cas) is accepted and ignored
    r = c.transcript(b"ms e 1 E5 c\r\nx\r\n")
    assert r.startswith(b"HD c") and r != b"HD c5\r\n"
    # md x (newer memcached): the value goes, the item and its flags stay
    assert c.transcript(b"ms x 2 F3 T100\r\nhi\r\nmd x x\r\nmg x s v f t\r\n") == (
        b"HD\r\nHD\r\nVA 0 s0 f3 t100\r\n\r\n")
    # binary protocol magic closes at once (memcached waits for a header)
    d = MC(one.mport)
    d.send(b"\x80\x01\x00\x00")
    assert d.is_closed()


# --------------------------------------------------------------------------
# 3. stats, counters, connections

def test_stats_settings_and_reset(one):
    c = MC(one.mport)
    c.transcript(b"set a 0 0 1\r\nx\r\nget a\r\nget b\r\n")
    st = stats_of(c)
    assert st["version"].startswith("1.6.18-vitamin-")
    assert int(st["get_hits"]) == 1 and int(st["get_misses"]) == 1
    assert int(st["curr_items"]) == 1 and int(st["threads"]) == 1
    assert int(st["limit_maxbytes"]) == 200 * MIB
    assert int(st["cmd_meta"]) >= 1          # the transcript's mn
    assert c.transcript(b"stats reset\r\n") == b"RESET\r\n"
    st = stats_of(c)
    assert int(st["get_hits"]) == 0 and int(st["cmd_get"]) == 0
    assert int(st["curr_items"]) == 1        # not a counter: not reset
    c.send(b"stats settings\r\n")
    settings = {}
    while True:
        line = c.line()
        if line == b"END":
            break
        _, k, v = line.split(b" ", 2)
        settings[k] = v
    assert settings[b"tcpport"] == str(one.mport).encode()
    assert settings[b"item_size_max"] == str(MIB).encode()
    assert settings[b"cas_enabled"] == b"yes"
    assert settings[b"evictions"] == b"on"
    # Vitamin's own stats() shows the memcache port's counters
    v = Client(one.port)
    vs = v.stats()
    assert int(vs["mc_curr_connections"]) == 1
    assert int(vs["mc_total_connections"]) >= 1
    assert int(vs["mc_commands"]) >= 6
    assert int(vs["mc_protocol_errors"]) == 0
    c.transcript(b"bogus\r\n")
    assert int(v.stats()["mc_protocol_errors"]) == 1
    c.close()
    poll(lambda: int(v.stats()["mc_curr_connections"]) == 0, what="mc connection count")


def read_stats(c):
    return {k: int(v) for k, v in read_stat_lines(c.line).items()}


def test_stats_slabs(one):
    """memcached's `stats slabs` shows the store's own size classes: what
    memcached-tool reads, consistent with itself and with the items set."""
    c = MC(one.mport)
    c.send(b"stats slabs\r\n")
    empty = read_stats(c)
    assert empty == {"active_slabs": 0, "total_malloced": 0}
    n = 3000
    c.transcript(b"".join(b"set s%05d 0 0 100\r\n%s\r\n" % (i, b"v" * 100) for i in range(n)))
    c.transcript(b"".join(b"set l%05d 0 0 2000\r\n%s\r\n" % (i, b"w" * 2000) for i in range(50)))
    c.transcript(b"".join(b"delete s%05d\r\n" % i for i in range(0, n, 2)))
    c.send(b"stats slabs\r\n")
    st = read_stats(c)
    ids = sorted({int(k.split(":")[0]) for k in st if ":" in k})
    assert len(ids) == st["active_slabs"] == 2
    pages = 0
    for i in ids:
        f = {k.split(":")[1]: v for k, v in st.items() if k.startswith("%d:" % i)}
        assert set(f) == {"chunk_size", "chunks_per_page", "total_pages", "total_chunks",
                          "used_chunks", "free_chunks", "free_chunks_end"}
        assert f["total_chunks"] == f["total_pages"] * f["chunks_per_page"]
        assert f["used_chunks"] + f["free_chunks"] + f["free_chunks_end"] == f["total_chunks"]
        assert f["chunks_per_page"] == 65536 // f["chunk_size"]
        pages += f["total_pages"]
        if f["chunk_size"] < 1000:   # the 100 B values: half deleted, their chunks free
            assert 40 + 6 + 100 <= f["chunk_size"] < 300  # header, key, value
            assert f["used_chunks"] == n // 2
            assert f["free_chunks"] >= n // 2
        else:
            assert f["used_chunks"] == 50
    assert st["total_malloced"] == pages * 65536
    assert ids == sorted(ids) and ids[0] >= 1
    # pymemcache reads it too
    assert py(one).stats("slabs")[b"active_slabs"] == 2


def test_stats_vitamin_has_every_stats_field(one):
    c = MC(one.mport)
    c.transcript(b"set a 0 0 1\r\nx\r\nset b 0 100 2\r\nyy\r\nget a\r\nget zzz\r\n")
    c.send(b"stats vitamin\r\n")
    st = {}
    while True:
        line = c.line()                     # CRLF-terminated, as memcached's
        assert b"\r" not in line and b"\n" not in line, line
        if line == b"END":
            break
        m = re.fullmatch(rb"STAT (\S+) (.*)", line)
        assert m, line
        st[m.group(1).decode()] = m.group(2).decode()
    # from every part of stats(): process, network, commands, this port,
    # store, expiry, snapshots, replication
    for name in ("pid", "rusage_user", "curr_connections", "cmd_get", "mc_commands",
                 "mc_curr_connections", "curr_items", "items_digest", "expiry_turn_max_us",
                 "expiry_turn_cpu_max_us", "snapshot_saves", "repl_state", "node_id"):
        assert name in st, name
    assert st["curr_items"] == "2" and st["get_hits"] == "1" and st["repl_state"] == "off"
    assert re.fullmatch(r"\d+\.\d{6}", st["rusage_user"])
    # every stats() field, in stats() order, with stats()'s values
    vs = Client(one.port).stats()
    assert list(st) == list(vs)
    for name in ("curr_items", "bytes", "limit_maxbytes", "total_items", "cmd_set", "get_hits",
                 "get_misses", "version", "node_id", "items_digest", "eviction", "repl_state"):
        assert st[name] == vs[name], name
    # `stats reset` restarts memcached's `stats` only
    assert c.transcript(b"stats reset\r\n") == b"RESET\r\n"
    assert int(stats_of(c)["get_hits"]) == 0
    p = py(one)
    ps = p.stats("vitamin")
    assert ps[b"get_hits"] == 1 and ps[b"curr_items"] == 2
    assert [k.decode() for k in ps] == list(vs)
    p.close()


def test_too_many_connections(mc):
    srv = mc("--max_connections", 1)
    # the fixture's start-up probe holds the one slot until the server has
    # seen it close: connect until the slot is free
    def admitted():
        c = MC(srv.mport)
        try:
            if c.cmd(b"version\r\n").startswith(b"VERSION"):
                return c
        except (EOFError, OSError):
            pass
        c.sock.close()
        return None
    first = poll(admitted, timeout=5, what="the one slot free")
    second = MC(srv.mport)
    assert second.line() == b"ERROR Too many open connections"
    assert second.is_closed()
    assert first.cmd(b"mn\r\n") == b"MN"


def test_idle_timeout(mc):
    srv = mc("--idle_timeout", 1)
    c = MC(srv.mport)
    assert c.cmd(b"mn\r\n") == b"MN"
    assert c.is_closed(timeout=5)


# --------------------------------------------------------------------------
# 4. framing: split input, refused blocks, garbage

PIPELINE = (b"delete s2 noreply\r\nset s1 3 0 5\r\nhello\r\nget s1 s2\r\nms s2 2 T0 F1\r\nhi\r\n"
            b"mg s2 v f k\r\nset s3 0 0 3\r\nabcdef\r\nincr s1 1\r\nverbosity 0\r\n"
            b"delete s1 noreply\r\ngets s1\r\n")


def test_every_split_point_gives_the_same_replies(one):
    whole = MC(one.mport).transcript(PIPELINE)
    assert whole.startswith(b"STORED\r\nVALUE s1 3 5\r\nhello\r\nEND\r\nHD\r\n")
    assert b"CLIENT_ERROR bad data chunk\r\nERROR\r\n" in whole
    for cut in range(1, len(PIPELINE), 3):
        c = MC(one.mport)
        c.send(PIPELINE[:cut])
        time.sleep(0.002)
        assert c.transcript(PIPELINE[cut:]) == whole, "cut at %d" % cut
        c.close()
    c = MC(one.mport)                        # dribbled, one byte a send
    for i in range(len(PIPELINE)):
        c.send(PIPELINE[i:i + 1])
    assert c.transcript(b"") == whole


def test_refused_blocks_are_swallowed_as_they_arrive(one):
    c = MC(one.mport)
    assert c.transcript(b"set old 0 0 1\r\nx\r\n") == b"STORED\r\n"
    size = 2 * MIB
    c.send(b"set old 0 0 %d\r\n" % size)
    assert c.line() == b"SERVER_ERROR object too large for cache"  # at once
    block = b"get old\r\n" * (size // 9) + b"x" * (size % 9) + b"\r\n"
    for i in range(0, len(block), 65536):
        c.send(block[i:i + 65536])
        time.sleep(0.001)
    # the block was dropped unparsed; memcached unlinked the old value
    assert c.transcript(b"get old\r\n") == b"END\r\n"
    # noreply: silent; add/append keep the old value; ms drops it
    assert c.transcript(b"set keep 0 0 1\r\nx\r\nset keep 0 0 %d noreply\r\n%s\r\n"
                        b"add keep 0 0 %d\r\n%s\r\nget keep\r\n"
                        % (size, b"z" * size, size, b"z" * size)) == (
        b"STORED\r\nSERVER_ERROR object too large for cache\r\nEND\r\n")
    assert c.transcript(b"set keep 0 0 1\r\nx\r\nappend keep 0 0 %d\r\n%s\r\nget keep\r\n"
                        b"ms keep %d MA\r\n%s\r\nget keep\r\n"
                        % (size, b"z" * size, size, b"z" * size)) == (
        b"STORED\r\nSERVER_ERROR object too large for cache\r\nVALUE keep 0 1\r\nx\r\nEND\r\n"
        b"SERVER_ERROR object too large for cache\r\nEND\r\n")


def test_long_lines(one):
    c = MC(one.mport)
    # a long line without '\n' that is not a get: closed, as memcached
    c.send(b"x" * 4000)
    assert c.is_closed()
    # a get line may be long: 1000 keys of 200 bytes
    d = MC(one.mport)
    keys = [b"%04d" % i + b"k" * 196 for i in range(1000)]
    d.transcript(b"set " + keys[7] + b" 0 0 1\r\nx\r\n")
    assert d.transcript(b"get " + b" ".join(keys) + b"\r\n") == (
        b"VALUE " + keys[7] + b" 0 1\r\nx\r\nEND\r\n")
    # past the get line limit (1 MiB): an error, then a close
    e = MC(one.mport)
    e.send(b"get " + b"k " * (MIB // 2 + 10))
    assert e.line() == b"CLIENT_ERROR line too long"
    assert e.is_closed()


def test_garbage_never_hurts_other_clients(one):
    rng = random.Random(7)
    good = MC(one.mport)
    assert good.transcript(b"set good 0 0 4\r\nfine\r\n") == b"STORED\r\n"
    blobs = [bytes(rng.getrandbits(8) for _ in range(rng.choice([10, 500, 5000])))
             for _ in range(30)]
    blobs += [b"\x80" + bytes(23), b"\x81\x00\x00\x00", b"\r\n" * 1000, b"\x00" * 3000,
              b"set x 0 0 99999999999\r\n", b"get " + b"\xff" * 300 + b"\r\n",
              b"ms k 5 " + b"T" * 5000 + b"\r\n", b"mg " + b"k " * 100 + b"\r\n"]
    for blob in blobs:
        bad = MC(one.mport)
        try:
            bad.send(blob)
        except OSError:
            pass
        bad.close()
        assert good.transcript(b"get good\r\n") == b"VALUE good 0 4\r\nfine\r\nEND\r\n"
    assert one.alive()
    assert Client(one.port).ping() == b"pong"


def test_confirm_holds_are_harmless_standalone(mc):
    # no broker: confirm mode has nothing to wait for; replies flow
    srv = mc("--replication_ack", "confirm")
    assert MC(srv.mport).transcript(b"set a 0 0 1\r\nx\r\nget a\r\n") == (
        b"STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n")


# --------------------------------------------------------------------------
# 5. authentication (memcached -Y style, --password)

def test_authentication(mc):
    srv = mc("--password", "s3cret")
    c = MC(srv.mport)
    assert c.cmd(b"get k\r\n") == b"CLIENT_ERROR unauthenticated"
    assert c.cmd(b"mn\r\n") == b"CLIENT_ERROR unauthenticated"
    assert c.cmd(b"quit\r\n") == b"CLIENT_ERROR unauthenticated"
    assert c.cmd(b"set a 0 0 11\r\nalice wrong\r\n") == b"CLIENT_ERROR authentication failure"
    assert c.cmd(b"set a 0 0 5\r\nalice\r\n") == b"CLIENT_ERROR bad authentication token format"
    assert c.cmd(b"set a 0 0 5\r\nalicexx") == b"CLIENT_ERROR bad command line termination"
    assert c.cmd(b"get k\r\n") == b"CLIENT_ERROR unauthenticated"
    # any user name; noreply does not silence the answer (as memcached)
    assert c.cmd(b"set a 0 0 13 noreply\r\nanyone s3cret\r\n") == b"STORED"
    assert c.transcript(b"set k 0 0 1\r\nx\r\nget k\r\n") == (
        b"STORED\r\nVALUE k 0 1\r\nx\r\nEND\r\n")
    # each connection authenticates for itself
    d = MC(srv.mport)
    assert d.cmd(b"get k\r\n") == b"CLIENT_ERROR unauthenticated"
    st = stats_of(c)
    assert int(st["auth_cmds"]) == 4 and int(st["auth_errors"]) == 3
    v = Client(srv.port)
    assert v.cmd(b'auth("s3cret")') == b"OK"
    assert int(v.stats()["mc_auth_failures"]) == 3
    # a long junk line before authenticating: closed
    e = MC(srv.mport)
    e.send(b"y" * 5000)
    assert e.is_closed()


# --------------------------------------------------------------------------
# 6. one store for both protocols

def test_cross_protocol(one):
    c = py(one)
    v = Client(one.port)
    assert c.set("m2v", b"from memcached\r\n", flags=9, expire=100)
    assert v.call("get", b"m2v") == b"from memcached\\r\\n"
    ttl = int(v.call("ttl", b"m2v"))
    assert 99 <= ttl <= 100
    assert v.call("set", b"v2m", b"from vitamin", 50) == b"from vitamin"
    raw = MC(one.mport)
    assert raw.value(b"v2m") == (0, b"from vitamin")          # flags 0
    assert 49 <= int(raw.cmd(b"mg v2m t\r\n").split(b" t")[1]) <= 50
    assert v.call("del", b"m2v") == b"OK"
    assert c.get("m2v") is None
    assert c.delete("v2m") is True
    assert v.call("get", b"v2m") == b"Error: Record not found"
    # a key of the Vitamin protocol that memcached cannot name is simply unseen
    v.call("set", b"has space", b"x")
    assert raw.transcript(b"get has space\r\n") == b"END\r\n"
    # a memcached incr is a plain write that the other protocol reads
    c.set("cnt", b"41")
    assert c.incr("cnt", 1) == 42
    assert v.call("get", b"cnt") == b"42"


# --------------------------------------------------------------------------
# 7. pools: two nodes on a private broker

@pytest.fixture
def pool(broker, request):
    """Factory: pool(proxy_for_b=False, extra=()) -> (A, B, proxy): two
    nodes with a memcache port each (node.mport) and the extra flags, on a
    fresh exchange; B may reach the broker through a TcpProxy that can be
    cut. Every node must exit 0."""
    import faults_util
    import rabbit
    made = []

    def make(proxy_for_b=False, extra=()):
        exchange = "vt.mc.%d.%s" % (os.getpid(), re.sub(r"\W+", "-", request.node.name)[:40])
        proxy = faults_util.TcpProxy(broker.port) if proxy_for_b else None
        nodes = []
        for name, port in (("nodeA", broker.port), ("nodeB", proxy.port if proxy else broker.port)):
            mport = free_port()
            nd = rabbit.Node(name, port, exchange, extra=["--memcache_port", mport] + list(extra))
            nd.mport = mport
            made.append(nd)
            nodes.append(nd.start())
        faults_util.wait_up(nodes, timeout=30)
        made.append(proxy)
        return nodes[0], nodes[1], proxy

    yield make
    problems = []
    for nd in made:
        if nd is None:
            continue
        if hasattr(nd, "heal"):
            nd.close()
            continue
        rc = nd.stop()
        if rc not in (0, None):
            problems.append("%s exited %r:\n%s" % (nd.node_id, rc, nd.log_text(3000)))
    assert not problems, "\n".join(problems)


def wait_mc(node, key, want, timeout=15.0):
    """Poll a get of key on node until it returns want ((flags, value) or None)."""
    c = MC(node.mport)
    try:
        return poll(lambda: c.value(key) == want or None, timeout=timeout,
                    what="%s: get %r == %r (last %r)" % (node.node_id, key, want, c.value(key)))
    finally:
        c.close()


@pytest.mark.slow
@pytest.mark.replication
def test_pool_flags_cas_and_flush(pool):
    a, b, _ = pool()
    ma, mb = MC(a.mport), MC(b.mport)
    # a memcached set on A reaches B with its flags and expiry
    assert ma.transcript(b"set k 42 100 5\r\nhello\r\n") == b"STORED\r\n"
    wait_mc(b, b"k", (42, b"hello"))
    assert 99 <= int(mb.cmd(b"mg k t\r\n").split(b" t")[1]) <= 100
    # gets on A, cas on B: the cas unique is the same on both nodes
    _, _, cas_a = ma.value(b"k", b"gets")
    assert mb.value(b"k", b"gets")[2] == cas_a
    assert mb.transcript(b"cas k 7 0 3 %d\r\nnew\r\n" % cas_a) == b"STORED\r\n"
    wait_mc(a, b"k", (7, b"new"))
    _, _, cas2 = ma.value(b"k", b"gets")
    assert cas2 != cas_a
    wait_mc(b, b"k", (7, b"new"))
    assert ma.transcript(b"set k 7 0 5\r\nnewer\r\n") == b"STORED\r\n"  # a newer write
    wait_mc(b, b"k", (7, b"newer"))
    assert mb.transcript(b"cas k 7 0 4 %d\r\nlost\r\n" % cas2) == b"EXISTS\r\n"
    # incr on one node replicates its result
    assert ma.transcript(b"set n 0 0 1\r\n1\r\nincr n 41\r\n") == b"STORED\r\n42\r\n"
    wait_mc(b, b"n", (0, b"42"))
    # flush_all on A empties B, but writes made after the flush survive
    for i in range(20):
        ma.transcript(b"set f%d 0 0 1\r\nx\r\n" % i)
    wait_mc(b, b"f19", (0, b"x"))
    assert ma.transcript(b"flush_all\r\nset after 1 0 2\r\nA!\r\n") == b"OK\r\nSTORED\r\n"
    # "after" is by the clock: a write on B within the same millisecond as
    # the flush, before B heard of it, is concurrent and may go either way
    time.sleep(0.05)
    assert mb.transcript(b"set afterb 2 0 2\r\nB!\r\n") == b"STORED\r\n"
    for nd in (a, b):
        wait_mc(nd, b"after", (1, b"A!"))
        wait_mc(nd, b"afterb", (2, b"B!"))
        wait_mc(nd, b"f0", None)
        wait_mc(nd, b"k", None)
    assert mb.transcript(b"set late 0 0 1\r\nL\r\n") == b"STORED\r\n"  # B has the flush
    wait_mc(a, b"late", (0, b"L"))
    poll(lambda: a.stat("items_digest") == b.stat("items_digest"), timeout=15,
         what="equal digests")
    assert a.stat("curr_items") == 3


@pytest.mark.slow
@pytest.mark.replication
def test_pool_touch_on_lagging_node_keeps_newer_set(pool):
    a, b, proxy = pool(proxy_for_b=True)
    ma, mb = MC(a.mport), MC(b.mport)
    assert ma.transcript(b"set k 1 0 3\r\nold\r\n") == b"STORED\r\n"
    wait_mc(b, b"k", (1, b"old"))
    proxy.cut()                                   # B stops hearing the pool
    poll(lambda: b.stat("repl_state") != "up", timeout=10, what="B's link down")
    assert ma.transcript(b"set k 2 0 3\r\nnew\r\n") == b"STORED\r\n"
    time.sleep(0.2)
    # B still holds the old value; touch and gat there only move the expiry
    assert mb.transcript(b"touch k 300\r\n") == b"TOUCHED\r\n"
    assert mb.transcript(b"gat 500 k\r\n") == b"VALUE k 1 3\r\nold\r\nEND\r\n"
    proxy.heal()
    poll(lambda: b.stat("repl_state") == "up", timeout=30, what="B's link up")
    for nd in (a, b):
        wait_mc(nd, b"k", (2, b"new"), timeout=30)
    poll(lambda: a.stat("items_digest") == b.stat("items_digest"), timeout=30,
         what="equal digests")
    ttls = [int(MC(nd.mport).cmd(b"mg k t\r\n").split(b" t")[1]) for nd in (a, b)]
    assert all(490 <= t <= 500 for t in ttls), ttls   # the gat's expiry, everywhere


@pytest.mark.slow
@pytest.mark.replication
def test_pool_confirm_mode_replies_in_order(pool):
    """--replication_ack=confirm: every write's reply waits for the broker's
    confirm; replies still come back complete and in request order."""
    a, b, _ = pool(extra=("--replication_ack", "confirm"))
    ma = MC(a.mport)
    script = (b"set c1 5 0 1\r\nx\r\nget c1\r\nincr c1 1\r\nms c2 2 q\r\nhi\r\n"
              b"md nope q\r\nma c3 N0 J7 v\r\ntouch c2 100\r\ndelete c1\r\n"
              b"mg c2 v\r\n")
    assert ma.transcript(script) == (
        b"STORED\r\nVALUE c1 5 1\r\nx\r\nEND\r\n"
        b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
        b"NF\r\nVA 1\r\n7\r\nTOUCHED\r\nDELETED\r\nVA 2\r\nhi\r\n")
    assert int(a.stat("replies_held")) >= 1
    wait_mc(b, b"c3", (0, b"7"))
    wait_mc(b, b"c1", None)
