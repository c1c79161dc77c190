"""Hostile clients: connection floods, slowloris, pipelining without
reading, endless lines, binary garbage, and clients that vanish mid-request
or mid-reply.

Every scenario ends with the same check (assert_healthy): the process is
alive, a fresh connection gets `pong`, and a key written before the attack
still reads back unchanged. The server fixture then sends SIGTERM and
requires exit status 0, so under `make san` (ASan + LeakSanitizer) a leak
introduced by any of these paths fails the test as well.

RSS bounds are skipped when the server is built with sanitizers
(VITAMIN_SANITIZED=1 or a build-san binary): shadow memory and quarantine
make them meaningless there.
"""

import os
import random
import resource
import socket
import struct
import sys
import threading
import time

import pytest

from conftest import (HOST, MIB, SANITIZED, Client, Server, encode_value,
                      poll, req)

TOO_MANY = b"Error: Too many connections\n"
LINE_TOO_LONG = b"Error: Line too long"

SENTINEL_KEY = b"hostile:sentinel"
SENTINEL_VALUE = b"still here \x00\x01\xff\\ \"quoted\""


# --------------------------------------------------------------------------
# helpers

def raise_nofile(want):
    """Raise this process's RLIMIT_NOFILE soft limit (the server started
    afterwards inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want:
        pytest.skip("RLIMIT_NOFILE hard limit %d < %d" % (hard, want))
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def seed(s):
    """Write the sentinel key that must survive every scenario."""
    c = Client(s.port)
    try:
        assert c.call("set", SENTINEL_KEY, SENTINEL_VALUE) == \
            encode_value(SENTINEL_VALUE)
    finally:
        c.close()


def assert_healthy(s):
    assert s.alive(), "server died: exit %s\n%s" % (s.proc.returncode,
                                                    s.stderr())
    c = Client(s.port, timeout=10)
    try:
        assert c.ping() == b"pong"
        assert c.call("get", SENTINEL_KEY) == encode_value(SENTINEL_VALUE)
    finally:
        c.close()


def stats(s):
    """stats() over a fresh connection (long-lived ones may be idle-closed)."""
    c = Client(s.port)
    try:
        return {k: (int(v) if v.lstrip("-").isdigit() else v)
                for k, v in c.stats().items()}
    finally:
        c.close()


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def fd_baseline(s, ctl):
    """The server's fd count once only ctl is connected (closes of earlier
    clients are asynchronous: wait for them first)."""
    poll(lambda: ctl.stat("curr_connections") == 1, timeout=10,
         what="only the control connection")
    return open_fds(s.pid)


def assert_fds_back(s, ctl, base):
    """After the attackers are gone, the fd count returns to base."""
    poll(lambda: ctl.stat("curr_connections") == 1, timeout=10,
         what="attacking connections to be closed")
    poll(lambda: open_fds(s.pid) == base, timeout=5,
         what="server fd count back to %d (now %d)" % (base, open_fds(s.pid)))


def raw_connect(port, rst=True, timeout=10.0):
    """A plain socket; rst=True makes close() send RST (SO_LINGER 0), so
    thousands of them leave no TIME_WAIT behind on the client side."""
    sk = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rst:
        sk.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                      struct.pack("ii", 1, 0))
    sk.settimeout(timeout)
    sk.connect((HOST, port))
    return sk


def recv_nowait(sk):
    """Bytes already received on sk: None if none yet, b"" on EOF."""
    timeout = sk.gettimeout()
    sk.setblocking(False)
    try:
        return sk.recv(4096)
    except BlockingIOError:
        return None
    except ConnectionResetError:
        return b""
    finally:
        sk.settimeout(timeout)


class Reader(threading.Thread):
    """Reads lines from a socket into a list until EOF, an error, or a line
    equal to `stop_at`."""

    def __init__(self, sk, stop_at=None):
        super().__init__(daemon=True)
        self.sk = sk
        self.stop_at = stop_at
        self.lines = []
        self.error = None

    def run(self):
        buf = bytearray()
        try:
            while True:
                chunk = self.sk.recv(1 << 20)
                if not chunk:
                    return
                buf += chunk
                while True:
                    i = buf.find(b"\n")
                    if i < 0:
                        break
                    line = bytes(buf[:i])
                    del buf[:i + 1]
                    self.lines.append(line)
                    if line == self.stop_at:
                        return
        except OSError as e:
            self.error = e


def expected_replies(payload):
    """Replies the server owes for payload (complete lines only): one per
    line that is not made of blanks and CRs only."""
    lines = payload.split(b"\n")[:-1]
    return sum(1 for l in lines if l.strip(b" \t\r"))


# --------------------------------------------------------------------------
# connection floods

@pytest.mark.slow
def test_20k_connection_attempts_against_max_connections(server):
    """20 000 connection attempts in waves of 1 250 against
    --max_connections 1000: each wave fills the server to exactly 1000,
    the rest are told `Too many connections` and closed, the controlling
    client is served throughout, and the fd count returns to baseline."""
    raise_nofile(4096)
    limit, wave, total = 1000, 1250, 20000
    s = server("--max_connections", limit, "--idle_timeout", "0")
    seed(s)
    ctl = s.client()
    fd_base = fd_baseline(s, ctl)
    st0 = ctl.stats()
    handled0 = int(st0["total_connections"]) + int(st0["rejected_connections"])
    rejected0 = int(st0["rejected_connections"])

    attempts = accepted = rejected = 0
    for w in range(total // wave):
        socks = []
        try:
            for i in range(wave):
                # one in ten closes gracefully, the rest reset
                socks.append(raw_connect(s.port, rst=(i % 10 != 0)))
            attempts += wave

            def settled():
                st = ctl.stats()
                return (int(st["total_connections"])
                        + int(st["rejected_connections"])
                        - handled0 == attempts) and st
            st = poll(settled, timeout=20,
                      what="server to accept or reject wave %d" % w)
            curr = int(st["curr_connections"])
            assert curr == limit, "wave %d: curr_connections %d" % (w, curr)
            fds = open_fds(s.pid)
            assert fds <= fd_base + limit - 1, \
                "wave %d: %d fds open (baseline %d)" % (w, fds, fd_base)

            # client side: who got in, who was turned away
            got_in = []
            for sk in socks:
                data = recv_nowait(sk)
                if data is None:
                    got_in.append(sk)
                    continue
                # a rejected socket holds the message then EOF
                while not data.endswith(b"\n"):
                    more = sk.recv(4096)
                    if not more:
                        break
                    data += more
                assert data == TOO_MANY, "wave %d: unexpected %r" % (w, data)
                rejected += 1
            assert len(got_in) == limit - 1, \
                "wave %d: %d sockets accepted" % (w, len(got_in))
            accepted += len(got_in)
            # the others keep being served: the control client and a few
            # of the sockets that got in
            assert ctl.ping() == b"pong"
            for sk in random.sample(got_in, 3):
                sk.sendall(b"ping()\n")
                assert sk.recv(64) == b"pong\n"
        finally:
            for sk in socks:
                sk.close()
        poll(lambda: ctl.stat("curr_connections") == 1, timeout=10,
             what="wave %d connections to be closed" % w)

    st = ctl.stats()
    assert int(st["rejected_connections"]) - rejected0 == rejected
    assert accepted + rejected == total
    assert rejected == total - (limit - 1) * (total // wave)
    assert_fds_back(s, ctl, fd_base)
    assert_healthy(s)


@pytest.mark.slow
def test_accept_under_fd_exhaustion():
    """The process runs out of file descriptors (RLIMIT_NOFILE 48) before
    --max_connections: accept() fails with EMFILE, the server pauses
    accepting, keeps serving the clients it has, and serves the waiting
    ones as soon as descriptors are freed."""
    s = Server(["--max_connections", "1000", "--idle_timeout", "0"])
    wrapper = ("import os, resource, sys; "
               "resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48)); "
               "os.execv(sys.argv[1], sys.argv[1:])")
    s.args = [sys.executable, "-c", wrapper] + s.args
    s.start()
    try:
        seed(s)
        ctl = s.client()
        fd_base = fd_baseline(s, ctl)
        socks = [raw_connect(s.port) for _ in range(100)]
        try:
            # those that got a descriptor are served; the rest wait
            served, waiting = [], []
            for sk in socks:
                sk.sendall(b"ping()\n")
            time.sleep(0.5)
            for sk in socks:
                data = recv_nowait(sk)
                assert data in (None, b"pong\n"), data
                (served if data else waiting).append(sk)
            print("fd exhaustion: %d served, %d waiting" % (len(served),
                                                            len(waiting)))
            assert 20 <= len(served) < 48, len(served)
            assert s.alive()
            for sk in served[:3]:
                sk.sendall(b"ping()\n")
                assert sk.recv(64) == b"pong\n"
            # free descriptors: every waiting client is eventually served
            # (each one closed once served, making room for the next)
            for sk in served:
                sk.close()
            for i, sk in enumerate(waiting):
                sk.settimeout(5)
                try:
                    data = sk.recv(64)
                except socket.timeout:
                    data = None
                assert data == b"pong\n", \
                    "waiting client %d of %d: %r" % (i, len(waiting), data)
                sk.close()
        finally:
            for sk in socks:
                sk.close()
        assert_fds_back(s, ctl, fd_base)
        assert_healthy(s)
        # a state change is logged once, not once per retry (10 a second)
        warns = s.stderr().count("pausing accepts")
        assert 1 <= warns <= 2, "%d 'pausing accepts' lines" % warns
    finally:
        rc = s.stop()
        s.close_clients()
    assert rc == 0, s.stderr()


# --------------------------------------------------------------------------
# slowloris

@pytest.mark.slow
def test_slowloris_closed_by_idle_timeout(server):
    s = server("--idle_timeout", "2")
    seed(s)
    idle0 = stats(s)["idle_closed"]
    n = 100
    socks = [raw_connect(s.port) for _ in range(n)]
    try:
        t0 = time.monotonic()
        for sk in socks:
            sk.sendall(b'set("slow","half a')
        time.sleep(0.5)
        # still open after half the timeout
        assert stats(s)["curr_connections"] >= n + 1
        assert all(recv_nowait(sk) is None for sk in socks)
        for sk in socks:
            sk.settimeout(max(0.1, t0 + 6 - time.monotonic()))
            try:
                data = sk.recv(64)
            except socket.timeout:
                pytest.fail("half-line connection still open %.1f s after "
                            "its last byte with --idle_timeout 2"
                            % (time.monotonic() - t0))
            except ConnectionResetError:
                data = b""
            assert data == b"", "unexpected data %r" % data
        elapsed = time.monotonic() - t0
        assert elapsed >= 1.5, "closed after %.1f s, before the timeout" % (
            elapsed)
    finally:
        for sk in socks:
            sk.close()
    st = stats(s)
    assert st["idle_closed"] - idle0 >= n
    assert st["curr_connections"] == 1
    c = Client(s.port)
    assert c.call("get", b"slow") == b"Error: Record not found"
    c.close()
    assert_healthy(s)


@pytest.mark.slow
def test_slowloris_kept_with_idle_timeout_0(server):
    s = server("--idle_timeout", "0")
    seed(s)
    n = 50
    socks = [raw_connect(s.port) for _ in range(n)]
    try:
        for sk in socks:
            sk.sendall(b'set("slow","half a')
        time.sleep(3.5)
        assert all(recv_nowait(sk) is None for sk in socks), \
            "a half-line connection was closed with --idle_timeout 0"
        st = stats(s)
        assert st["curr_connections"] >= n + 1
        assert st["idle_closed"] == 0
        # the half line was kept: finishing it completes the request
        socks[0].sendall(b' line")\n')
        assert socks[0].recv(64) == b"half a line\n"
    finally:
        for sk in socks:
            sk.close()
    assert_healthy(s)


# --------------------------------------------------------------------------
# pipelining without reading

@pytest.mark.slow
def test_pipelined_gets_without_reading(server):
    """A client sends up to 200 MB of get("k") (1 KiB value) and never
    reads. Back-pressure stops the server reading it, RSS stays bounded,
    another client keeps being served, and --idle_timeout 3 eventually
    closes the stalled client."""
    s = server("--idle_timeout", "3")
    value = bytes(random.Random(1).choice(b"abcdefgh") for _ in range(1024))
    c = Client(s.port)
    assert c.call("set", b"k", value) == value
    c.close()
    seed(s)
    st0 = stats(s)
    rss0 = s.rss()

    hog = raw_connect(s.port, rst=False, timeout=60)
    hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    chunk = b'get("k")\n' * 7282                    # ~64 KiB
    goal = 200 * 1000 * 1000
    sent = [0]
    err = []

    def flood():
        try:
            while sent[0] < goal:
                hog.sendall(chunk)
                sent[0] += len(chunk)
        except OSError as e:
            err.append(e)

    t = threading.Thread(target=flood, daemon=True)
    t.start()
    other = Client(s.port)
    rss_max = rss0
    worst_ping = 0.0
    deadline = time.monotonic() + 40
    while t.is_alive() and time.monotonic() < deadline:
        t1 = time.monotonic()
        assert other.cmd(b"ping()", timeout=5) == b"pong"
        worst_ping = max(worst_ping, time.monotonic() - t1)
        rss_max = max(rss_max, s.rss())
        time.sleep(0.2)
    t.join(1)
    assert not t.is_alive(), \
        "stalled client not closed within 40 s (sent %d MB)" % (
            sent[0] // 1000000)
    assert err, "the server read all 200 MB from a client that never reads"
    assert worst_ping < 3.0, "ping took %.1f s during the flood" % worst_ping
    st = stats(s)
    assert st["idle_closed"] - st0["idle_closed"] >= 1
    assert st["reads_paused"] > st0["reads_paused"]
    assert sent[0] < 100 * 1000 * 1000, \
        "server accepted %d MB from a non-reader" % (sent[0] // 1000000)
    if not SANITIZED:
        assert rss_max - rss0 < 64 * MIB, \
            "RSS grew %.1f MiB during the flood" % ((rss_max - rss0) / MIB)
    print("pipelined gets: %.1f MB sent before the stall, RSS +%.1f MiB, "
          "worst ping %.3f s" % (sent[0] / 1e6, (rss_max - rss0) / MIB,
                                 worst_ping))
    hog.close()
    other.close()
    assert_healthy(s)


# --------------------------------------------------------------------------
# endless line

def test_100mb_line_without_newline(server):
    """A 100 MB line with no newline: `Line too long` arrives while the
    client is still sending, the rest is discarded without buffering it,
    and after a newline the same connection is served normally."""
    s = server()
    seed(s)
    st0 = stats(s)
    rss0 = s.rss()
    c = Client(s.port, timeout=30)
    reader = Reader(c.sock, stop_at=b"pong")
    reader.start()
    chunk = b"x" * MIB
    total = 100 * MIB
    sent = 0
    sent_at_error = None
    rss_max = rss0
    c.send(b'set("endless","')
    while sent < total:
        c.send(chunk)
        sent += len(chunk)
        if sent_at_error is None and reader.lines:
            sent_at_error = sent
        if sent % (8 * MIB) == 0:
            rss_max = max(rss_max, s.rss())
    c.send(b'")\nping()\n')
    reader.join(30)
    assert not reader.is_alive(), "no pong after the line (%r)" % (
        reader.lines[:3],)
    assert reader.lines == [LINE_TOO_LONG, b"pong"], reader.lines[:5]
    assert sent_at_error is not None and sent_at_error < 50 * MIB, \
        "Line too long only arrived after %s bytes" % sent_at_error
    assert c.call("get", b"endless") == b"Error: Record not found"
    assert c.ping() == b"pong"
    print("endless line: error after %.1f MiB sent, RSS +%.1f MiB"
          % (sent_at_error / MIB, (rss_max - rss0) / MIB))
    st = stats(s)
    assert st["lines_too_long"] - st0["lines_too_long"] == 1
    assert st["bytes_read"] - st0["bytes_read"] > total
    if not SANITIZED:
        assert rss_max - rss0 < 32 * MIB, \
            "RSS grew %.1f MiB on an endless line" % ((rss_max - rss0) / MIB)
    c.close()
    assert_healthy(s)


def test_line_length_limit_is_exact(server):
    """max_line = 4 * (max_value_size + 1024) + 64: a line of exactly that
    many bytes is parsed, one byte more is `Line too long`."""
    max_value = 1000
    max_line = 4 * (max_value + 1024) + 64
    s = server("--max_value_size", max_value)
    seed(s)
    c = s.client()
    head = b'get("'
    ok = head + b"k" * (max_line - len(head) - 2) + b'")'
    assert len(ok) == max_line
    assert c.cmd(ok) == b"Error: Key too long"
    assert c.cmd(ok[:3] + b"k" + ok[3:]) == LINE_TOO_LONG
    # a maximal value written entirely as \xHH escapes fits
    val = bytes(range(256)) * 3 + bytes(range(max_value - 768))
    line = b'set("kk","' + b"".join(b"\\x%02x" % b for b in val) + b'")'
    assert len(line) <= max_line
    assert c.cmd(line) == encode_value(val)
    assert c.ping() == b"pong"
    assert_healthy(s)


# --------------------------------------------------------------------------
# binary garbage

END_OF_FLOOD = b"end of flood 7f3a"


def _flood_and_count(port, payload, only_errors):
    """Send payload, then a set whose reply marks the end, on a fresh
    connection while reading; check one reply per non-blank line (all of
    them errors if only_errors)."""
    sk = raw_connect(port, rst=False, timeout=30)
    reader = Reader(sk, stop_at=END_OF_FLOOD)
    reader.start()
    sk.sendall(payload + b"\n" + req("set", b"flood:end", END_OF_FLOOD)
               + b"\n")
    reader.join(60)
    try:
        assert not reader.is_alive(), "no end marker after the flood"
        assert reader.error is None, reader.error
        replies = reader.lines[:-1]
        assert reader.lines[-1:] == [END_OF_FLOOD]
        want = expected_replies(payload + b"\n")
        assert len(replies) == want, \
            "%d replies for %d request lines" % (len(replies), want)
        if only_errors:
            bad = [r for r in replies if not r.startswith(b"Error: ")]
            assert not bad, "non-error replies to garbage: %r" % bad[:5]
    finally:
        sk.close()
    return len(replies)


def _random_lines(rng, size):
    """size random bytes with extra newlines every 1..300 bytes."""
    out = bytearray()
    while len(out) < size:
        out += os.urandom(rng.randint(1, 300))
        out += b"\n"
    return bytes(out)


def test_random_binary_floods(server):
    s = server()
    seed(s)
    rng = random.Random(0x5EED)
    # 1) pure os.urandom: only the newlines it happens to contain
    n = _flood_and_count(s.port, os.urandom(4 * MIB), only_errors=True)
    assert n > 10000
    # 2) several clients at once, random bytes cut into short lines, while
    # a well-behaved client keeps working
    payloads = [_random_lines(rng, 2 * MIB) for _ in range(3)]
    errors = []

    def run(p):
        try:
            _flood_and_count(s.port, p, only_errors=True)
        except BaseException as e:  # reported below
            errors.append(e)
    ts = [threading.Thread(target=run, args=(p,), daemon=True)
          for p in payloads]
    for t in ts:
        t.start()
    good = s.client()
    i = 0
    while any(t.is_alive() for t in ts):
        assert good.call("set", b"good:%d" % i, b"v%d" % i) == b"v%d" % i
        i += 1
    for t in ts:
        t.join(60)
    assert not errors, errors
    for j in range(i):
        assert good.call("get", b"good:%d" % j) == b"v%d" % j
    # 3) protocol-shaped garbage: grammar tokens glued with random bytes
    # (may form real requests; each line still gets exactly one reply)
    tokens = [b"set(", b"get(", b"del(", b"ttl(", b"expire(", b"ping(",
              b'"', b"\\", b"\\x", b"\\x4", b",", b")", b"(", b" ", b"\t",
              b"\r", b"\x00", b"\xff", b"1", b"315360001", b"Error: "]
    out = bytearray()
    while len(out) < 2 * MIB:
        for _ in range(rng.randint(1, 12)):
            out += (rng.choice(tokens) if rng.random() < 0.8
                    else os.urandom(rng.randint(1, 8)).replace(b"\n", b""))
        out += b"\n"
    _flood_and_count(s.port, bytes(out), only_errors=False)
    st = stats(s)
    assert st["protocol_errors"] > 10000
    assert_healthy(s)


# --------------------------------------------------------------------------
# clients that vanish

def test_disconnect_mid_request(server):
    """Half a line then close (FIN or RST): the partial request is never
    executed. A complete line followed by an immediate FIN is executed."""
    s = server()
    seed(s)
    ctl = s.client()
    fd_base = fd_baseline(s, ctl)
    for i in range(200):
        sk = raw_connect(s.port, rst=(i % 2 == 0))
        sk.sendall(b'set("half:%d","' % i + b"x" * (i * 500))
        sk.close()
    for i in range(50):
        sk = raw_connect(s.port, rst=False)
        sk.sendall(b'set("done:%d","yes")\n' % i)
        sk.shutdown(socket.SHUT_WR)
        sk.close()
    assert_fds_back(s, ctl, fd_base)
    for i in range(200):
        assert ctl.call("get", b"half:%d" % i) == b"Error: Record not found"
    for i in range(50):
        assert ctl.call("get", b"done:%d" % i) == b"yes"
    assert_healthy(s)


def test_disconnect_mid_reply(server):
    """Clients ask for a 512 KiB value 200 times (100 MiB of replies) and
    close without reading, with FIN or RST, some all at once: the server
    drops their queued replies and keeps serving."""
    s = server()
    seed(s)
    big = os.urandom(512 * 1024)
    c = s.client()
    assert c.pipeline([req("set", b"big", big)]) == [encode_value(big)]
    fd_base = fd_baseline(s, c)
    rss0 = s.rss()
    socks = []
    for i in range(20):
        sk = raw_connect(s.port, rst=(i % 2 == 0))
        sk.sendall(b'get("big")\n' * 200)
        socks.append(sk)
        if i % 4 == 3:                     # close some in a burst
            for x in socks:
                x.close()
            socks = []
        assert c.ping() == b"pong"
    for x in socks:
        x.close()
    # one more that reads a little of the reply first
    sk = raw_connect(s.port)
    sk.sendall(b'get("big")\n' * 200)
    assert len(sk.recv(100000)) > 0
    sk.close()
    assert_fds_back(s, c, fd_base)
    assert c.call("get", b"big") == encode_value(big)
    if not SANITIZED:
        assert s.rss() - rss0 < 64 * MIB
    assert_healthy(s)


# --------------------------------------------------------------------------
# unauthenticated attacker

def test_unauthenticated_client_cannot_touch_data(server):
    """With --password, a client that never authenticates pipelines every
    write, stats(), wrong passwords and protocol-shaped garbage: it gets
    only error lines (and pong), the data is unchanged, every wrong guess is
    counted, and ping() stays open for health checks."""
    password = b"correct horse battery staple"
    s = server("--password", password.decode())
    admin = s.client()
    assert admin.call("auth", password) == b"OK"
    assert admin.call("set", SENTINEL_KEY, SENTINEL_VALUE) == \
        encode_value(SENTINEL_VALUE)
    before = admin.stats()

    guesses = ([b"", password[:-1], password + b"\x00", password.upper(),
                b" " + password] + [b"guess %d" % i for i in range(2000)])
    lines = [req("set", SENTINEL_KEY, b"pwned"),
             req("set", SENTINEL_KEY, b"pwned", 1),
             req("del", SENTINEL_KEY),
             req("expire", SENTINEL_KEY, 1),
             req("get", SENTINEL_KEY),
             req("ttl", SENTINEL_KEY),
             b"stats()",
             b"STATS ( )"]
    lines += [req("auth", g) for g in guesses]
    rng = random.Random(7)
    tokens = [b"set(", b"get(", b"del(", b"expire(", b"ttl(", b"stats(",
              b'"', b"\\x", b",", b")", b" ", b"1",
              b'"' + SENTINEL_KEY + b'"']
    for _ in range(5000):
        line = b"".join(rng.choice(tokens) for _ in range(rng.randint(1, 8)))
        lines.append(line)
    sk = raw_connect(s.port, rst=False, timeout=30)
    reader = Reader(sk, stop_at=b"pong")
    reader.start()
    sk.sendall(b"".join(l + b"\n" for l in lines) + b"ping()\n")
    reader.join(60)
    assert not reader.is_alive(), "no pong after the unauthenticated flood"
    replies = reader.lines
    sk.close()
    # (the garbage cannot spell ping(): the only pong is the last reply)
    want = sum(1 for l in lines if l.strip(b" \t\r")) + 1
    assert len(replies) == want, "%d replies for %d lines" % (len(replies),
                                                              want)
    bad = [r for r in replies[:-1] if not r.startswith(b"Error: ")]
    assert not bad, "unauthenticated client got %r" % bad[:5]
    assert replies[:6] == [b"Error: Authentication required"] * 6
    assert replies[6:8] == [b"Error: Authentication required"] * 2
    assert set(replies[8:8 + len(guesses)]) == {b"Error: Invalid password"}

    after = admin.stats()
    assert int(after["auth_failures"]) - int(before["auth_failures"]) == \
        len(guesses)
    assert admin.call("get", SENTINEL_KEY) == encode_value(SENTINEL_VALUE)
    assert admin.call("ttl", SENTINEL_KEY) == b"-1"
    c = Client(s.port)
    assert c.ping() == b"pong"
    assert c.call("get", SENTINEL_KEY) == b"Error: Authentication required"
    c.close()


def test_client_buffers_capped_by_max_client_memory(server):
    """100 clients each holding a 4 MiB partial line: their buffers together
    stay under --max_client_memory; clients that would pass it are closed
    and counted, and everyone else is still served."""
    raise_nofile(4096)
    s = server("--memory", "16", "--max_client_memory", "32")
    seed(s)
    base_rss = s.rss()
    chunk = b'set("k","' + b"x" * (4 * MIB)
    socks = []
    for _ in range(100):
        sk = raw_connect(s.port, rst=True)
        sk.setblocking(False)
        socks.append([sk, 0])
    # push the partial lines without blocking on any one client
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(0 <= off < len(chunk) for _, off in socks):
        for entry in socks:
            sk, off = entry
            if off >= len(chunk) or off < 0:
                continue
            try:
                entry[1] += sk.send(chunk[off:off + 256 * 1024])
            except BlockingIOError:
                pass
            except OSError:
                entry[1] = -1  # closed by the server
        time.sleep(0.001)
    st = stats(s)
    # the cap bounds growth; each client's first 8 KiB read buffer is
    # bounded by --max_connections instead
    assert int(st["client_memory"]) <= 32 * MIB + 100 * 8192, st["client_memory"]
    assert int(st["client_memory_closed"]) > 0
    if not SANITIZED:
        assert s.rss() - base_rss < 64 * MIB, "RSS grew %d MiB" % (
            (s.rss() - base_rss) // MIB)
    assert_healthy(s)
    for sk, _ in socks:
        sk.close()
