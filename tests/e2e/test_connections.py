"""Connections: many clients, the connection limit, slow readers
(back-pressure), idle timeout and SIGTERM."""

import resource
import select
import signal
import socket
import threading
import time

import pytest

from conftest import (HOST, MIB, SANITIZED, Client, Closed, encode_value,
                      poll, req)

TOO_MANY = b"Error: Too many connections"


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return
        except (ValueError, OSError):
            pytest.skip("RLIMIT_NOFILE hard limit %d < %d" % (hard, want))
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def test_1000_concurrent_connections(server):
    raise_nofile(4096)       # inherited by the server started below
    s = server()
    ctl = s.client()
    n = 1000
    clients = [Client(s.port) for _ in range(n)]
    try:
        for i, c in enumerate(clients):
            c.send(req("set", b"conn:%d" % i, b"value of %d" % i) + b"\n")
        for i, c in enumerate(clients):
            assert c.recv_line() == b"value of %d" % i
        for i, c in enumerate(clients):
            c.send(req("get", b"conn:%d" % i) + b"\n")
        for i, c in enumerate(clients):
            assert c.recv_line() == b"value of %d" % i
        poll(lambda: ctl.stat("curr_connections") == n + 1, timeout=5,
             what="curr_connections == %d" % (n + 1))
        st = ctl.stats()
        assert int(st["total_connections"]) >= n + 1
        assert int(st["curr_items"]) == n
        assert int(st["rejected_connections"]) == 0
    finally:
        for c in clients:
            c.close()
    poll(lambda: ctl.stat("curr_connections") == 1, timeout=5,
         what="curr_connections back to 1")
    assert ctl.ping() == b"pong"


def test_max_connections(server):
    s = server("--max_connections", "10")
    first = s.client()
    assert first.ping() == b"pong"
    # make sure the start-up probe connection is gone
    poll(lambda: first.stat("curr_connections") == 1, timeout=5,
         what="only one connection")
    clients = [first] + [s.client() for _ in range(9)]
    for c in clients:
        assert c.ping() == b"pong"
    extra = Client(s.port)
    try:
        try:
            line = extra.recv_line(timeout=5)
        except Closed:
            pytest.fail("11th connection closed without "
                        "'Error: Too many connections'")
        assert line == TOO_MANY
        assert extra.is_closed(5), "11th connection not closed"
    finally:
        extra.close()
    for c in clients:
        assert c.ping() == b"pong"
    st = first.stats()
    assert int(st["rejected_connections"]) == 1
    assert int(st["curr_connections"]) == 10
    # a freed slot can be used again
    clients[-1].close()
    poll(lambda: first.stat("curr_connections") == 9, timeout=5,
         what="curr_connections == 9 after a close")
    again = s.client()
    assert again.ping() == b"pong"


def _reader_thread(client, count, expect, result):
    try:
        for i in range(count):
            line = client.recv_line(timeout=60)
            if line != expect:
                result.append("reply %d: %r" % (i, line[:60]))
                return
        result.append("ok")
    except Exception as e:  # reported by the test
        result.append(repr(e))


@pytest.mark.slow
def test_slow_reader_gets_backpressure(server):
    """A client pipelines many gets of a 512 KiB value and does not read.
    Another client is still served, and the server does not buffer the
    whole answer (RSS stays bounded)."""
    s = server("--memory", "16")
    a = s.client()
    b = s.client()
    # tabs make the reply need escaping (no zero-copy of the stored value)
    big = (b"ab\tcd" * (512 * 1024 // 5 + 1))[:512 * 1024]
    enc = encode_value(big)
    assert a.pipeline([req("set", b"big", big)]) == [enc]
    n = 300                                   # ~200 MiB of replies
    a.send(b'get("big")\n' * n)
    rss_max = 0
    for i in range(20):
        assert b.cmd(b"ping()", timeout=5) == b"pong"
        assert b.call("set", b"b%d" % i, b"x") == b"x"
        rss_max = max(rss_max, s.rss())
        time.sleep(0.1)
    if not SANITIZED:
        assert rss_max < (16 + 40) * MIB, \
            "RSS %.1f MiB with a slow reader" % (rss_max / MIB)
    # now read everything: nothing was lost or reordered
    for i in range(n):
        line = a.recv_line(timeout=30)
        assert line == enc, "reply %d differs" % i
    assert a.ping() == b"pong"


@pytest.mark.slow
def test_writer_that_never_reads_is_paused(server):
    """A client sends sets without reading any reply: the server stops
    reading from it (its send blocks), stays small and keeps serving
    others; nothing is lost once it reads again."""
    s = server("--memory", "16")
    a = s.client()
    b = s.client()
    val = b"w" * 4096
    line = req("set", b"same", val) + b"\n"
    chunk = line * 64
    cap = 256 * MIB
    a.sock.setblocking(False)
    sent = 0
    pos = 0          # offset inside chunk
    blocked = False
    checked = 0
    while sent < cap:
        r, w, _ = select.select([], [a.sock], [], 1.0)
        if not w:
            blocked = True
            break
        try:
            k = a.sock.send(chunk[pos:])
        except BlockingIOError:
            continue
        sent += k
        pos = (pos + k) % len(chunk)
        if sent - checked > 16 * MIB:
            checked = sent
            if not SANITIZED:
                assert s.rss() < (16 + 40) * MIB, \
                    "RSS %.1f MiB after %d MiB sent by a non-reader" % (
                        s.rss() / MIB, sent // MIB)
    a.sock.setblocking(True)
    a.sock.settimeout(a.timeout)
    assert blocked, "server read %d MiB from a client that never reads" % (
        sent // MIB)
    if not SANITIZED:
        assert s.rss() < (16 + 40) * MIB
    assert b.cmd(b"ping()", timeout=5) == b"pong"
    assert b.call("get", b"same") == val
    # finish the partial line, then read every reply
    partial = pos % len(line)
    nlines = sent // len(line) + (1 if partial else 0)
    result = []
    t = threading.Thread(target=_reader_thread,
                         args=(a, nlines, val, result), daemon=True)
    t.start()
    if partial:
        a.sock.sendall(line[partial:])
    t.join(120)
    assert result == ["ok"], result
    a.send(b"ping()\n")
    assert a.recv_line() == b"pong"


def test_idle_timeout(server):
    s = server("--idle_timeout", "1")
    idle = s.client()
    busy = s.client()
    assert idle.ping() == b"pong"
    t0 = time.monotonic()
    while time.monotonic() - t0 < 2.2:
        assert busy.ping() == b"pong"
        time.sleep(0.25)
    assert idle.is_closed(3), "idle client not closed with --idle_timeout 1"
    assert busy.ping() == b"pong"


def test_no_idle_timeout_by_default(server):
    c = server().client()
    assert c.ping() == b"pong"
    time.sleep(1.5)
    assert c.ping() == b"pong"


def test_sigterm_with_idle_client(server):
    s = server()
    c = s.client()
    assert c.cmd(b'set("k","v")') == b"v"
    assert s.stop() == 0
    assert c.is_closed(5)


def test_sigterm_with_busy_clients(server):
    s = server()
    clients = [s.client() for _ in range(5)]
    for i, c in enumerate(clients):
        assert c.call("set", b"k%d" % i, b"v") == b"v"
    stop = threading.Event()

    def hammer(c):
        try:
            while not stop.is_set():
                c.send(b"ping()\n" * 50)
                for _ in range(50):
                    c.recv_line(timeout=5)
        except (OSError, Closed):
            pass
    ts = [threading.Thread(target=hammer, args=(c,), daemon=True)
          for c in clients]
    for t in ts:
        t.start()
    time.sleep(0.3)
    rc = s.stop()
    stop.set()
    for t in ts:
        t.join(10)
    assert rc == 0, s.stderr()


def test_sigterm_flushes_replies_and_stops_accepting(server):
    s = server()
    c = s.client()
    val = b"f" * 65536
    assert c.pipeline([req("set", b"f", val)]) == [val]
    n = 200  # 12.8 MB of replies: more than the socket buffers hold
    c.send(b'get("f")\n' * n)
    assert c.recv_line() == val          # the server is working on them
    s.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    # new connections are no longer served
    try:
        late = socket.create_connection((HOST, s.port), timeout=2)
    except OSError:
        late = None
    if late is not None:
        try:
            late.sendall(b"ping()\n")
            late.settimeout(1.0)
            try:
                data = late.recv(100)
            except (socket.timeout, ConnectionResetError):
                data = b""
            assert b"pong" not in data, "served a connection after SIGTERM"
        finally:
            late.close()
    # every reply that arrives is whole
    got = 1
    while True:
        try:
            line = c.recv_line(timeout=10)
        except Closed:
            break
        assert line == val, "reply %d truncated/corrupt" % got
        got += 1
    assert bytes(c.buf) == b"", "partial reply at shutdown (%d bytes)" % len(
        c.buf)
    # every request received before SIGTERM is answered, also those that
    # waited behind the client's full output buffer
    assert got == n, "only %d of %d received requests answered" % (got, n)
    rc = s.proc.wait(10)
    assert rc == 0, s.stderr()


def test_abrupt_disconnects_leave_server_healthy(server):
    """Clients that vanish mid-line, or reset the connection while the
    server still has replies queued for them, do not disturb the others."""
    import struct
    s = server()
    ctl = s.client()
    big = b"r" * 200000
    assert ctl.pipeline([req("set", b"big", big)]) == [big]
    for i in range(20):
        c = Client(s.port)
        if i % 2:
            c.send(b'set("half","' + b"y" * 5000)      # no end of line
        else:
            c.send(b'get("big")\n' * 50)              # replies pile up
        if i % 4 < 2:
            # RST instead of FIN
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                              struct.pack("ii", 1, 0))
        c.close()
    assert ctl.ping() == b"pong"
    assert ctl.call("get", b"half") == b"Error: Record not found"
    poll(lambda: ctl.stat("curr_connections") == 1, timeout=5,
         what="dead connections reaped")
    assert ctl.call("get", b"big") == big
