"""End-to-end test harness for Vitamin.

Starts the real binary (env VITAMIN_BIN, default /work/main/build/vitamin) on a
free loopback port and talks to it over TCP. Only the standard library and
pytest are used.

Helpers exported to the test modules (``from conftest import ...``):
  Server      one running vitamin process (start/stop/rss/client)
  Client      a line-oriented TCP client with pipelining
  req()       build a request line: req("set", b"k", b"v", 60) -> b'set("k","v",60)'
  quote(), quote_hex()   quote a byte string for a request
  encode_value(), decode_value()   the SPEC's reply encoding, both directions
  poll()      wait for an eventual condition

Fixtures: server (a factory of Servers, stopped at teardown) and broker (a
private RabbitMQ broker from rabbit.py, one per test module; modules that
need another kind define their own).
"""

import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

BIN = os.environ.get("VITAMIN_BIN", "/work/main/build/vitamin")
# Sanitizers inflate RSS; `make san` builds into build-san/.
SANITIZED = (os.environ.get("VITAMIN_SANITIZED") == "1"
             or "build-san" in BIN)
HOST = "127.0.0.1"
MIB = 1 << 20


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than ~3 s")


# --------------------------------------------------------------------------
# small utilities

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def poll(fn, timeout=5.0, interval=0.05, what="condition"):
    """Call fn() until it returns a truthy value; return that value.
    Fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() > deadline:
            pytest.fail("timed out after %.1f s waiting for %s (last: %r)"
                        % (timeout, what, last))
        time.sleep(interval)


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for pid %d" % pid)


# --------------------------------------------------------------------------
# request building and the reply encoding of SPEC section 2

def quote(b):
    """Quote a byte string, escaping only what must be escaped
    (\\ and "), plus LF and CR so the line stays one line. All other bytes
    go raw."""
    if isinstance(b, str):
        b = b.encode()
    out = bytearray(b'"')
    for ch in b:
        if ch == 0x5C:
            out += b"\\\\"
        elif ch == 0x22:
            out += b'\\"'
        elif ch == 0x0A:
            out += b"\\n"
        elif ch == 0x0D:
            out += b"\\r"
        else:
            out.append(ch)
    out += b'"'
    return bytes(out)


def quote_hex(b):
    """Quote a byte string writing every byte as \\xHH."""
    if isinstance(b, str):
        b = b.encode()
    return b'"' + b"".join(b"\\x%02x" % ch for ch in b) + b'"'


def req(name, *args):
    """req("set", b"k", b"v", 60) -> b'set("k","v",60)' (no newline).
    bytes/str args are quoted with quote(); pre-quoted args can be passed as
    Raw(b'"..."'); ints are written in decimal."""
    parts = []
    for a in args:
        if isinstance(a, Raw):
            parts.append(a.b)
        elif isinstance(a, int):
            parts.append(b"%d" % a)
        else:
            parts.append(quote(a))
    return name.encode() + b"(" + b",".join(parts) + b")"


class Raw:
    def __init__(self, b):
        self.b = b


def encode_value(v):
    """Expected reply encoding of value v (lowercase hex)."""
    out = bytearray()
    for ch in v:
        if ch == 0x5C:
            out += b"\\\\"
        elif ch == 0x0D:
            out += b"\\r"
        elif ch == 0x0A:
            out += b"\\n"
        elif ch == 0x09:
            out += b"\\t"
        elif ch < 0x20 or ch == 0x7F:
            out += b"\\x%02x" % ch
        else:
            out.append(ch)
    if out.startswith(b"Error: "):
        out[0:1] = b"\\x45"
    return bytes(out)


_HEX = re.compile(rb"\\x([0-9A-Fa-f]{2})")


def normalize_hex(line):
    """Lower-case the hex digits of \\xHH escapes (SPEC does not fix the case)."""
    return _HEX.sub(lambda m: b"\\x" + m.group(1).lower(), line)


def decode_value(line):
    """Decode a reply line (without '\\n') per SPEC. Raises AssertionError if
    it is not a valid encoding (unknown escape, raw control byte)."""
    out = bytearray()
    i, n = 0, len(line)
    while i < n:
        ch = line[i]
        if ch == 0x5C:
            assert i + 1 < n, "dangling backslash in reply %r" % line[:80]
            e = line[i + 1]
            if e == 0x5C:
                out.append(0x5C)
                i += 2
            elif e == ord("r"):
                out.append(0x0D)
                i += 2
            elif e == ord("n"):
                out.append(0x0A)
                i += 2
            elif e == ord("t"):
                out.append(0x09)
                i += 2
            elif e == ord("x"):
                h = line[i + 2:i + 4]
                assert re.fullmatch(rb"[0-9A-Fa-f]{2}", h), \
                    "bad \\x escape in reply at %d: %r" % (i, line[i:i + 4])
                out.append(int(h, 16))
                i += 4
            else:
                raise AssertionError("unknown escape \\%c in reply at %d"
                                     % (e, i))
        else:
            assert ch >= 0x20 and ch != 0x7F, \
                "raw control byte 0x%02x in reply at %d" % (ch, i)
            out.append(ch)
            i += 1
    return bytes(out)


# --------------------------------------------------------------------------
# client

class Closed(Exception):
    pass



def read_stat_lines(next_line):
    """`STAT name value` lines up to END (next_line() returns each without
    its ending), as {name: value} strings in their order."""
    st = {}
    while True:
        line = next_line()
        if line == b"END":
            return st
        m = re.fullmatch(rb"STAT (\S+) (.*)", line)
        assert m, "bad stats line %r" % line
        st[m.group(1).decode()] = m.group(2).decode()

class Client:
    def __init__(self, port, timeout=10.0, connect=True):
        self.port = port
        self.timeout = timeout
        self.buf = bytearray()
        self.sock = None
        if connect:
            self.sock = socket.create_connection((HOST, port), timeout=timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # raw I/O -------------------------------------------------------------
    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        try:
            chunk = self.sock.recv(1 << 20)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise Closed("connection closed by server (buffered: %r)"
                         % bytes(self.buf[:200]))
        self.buf += chunk

    def recv_raw_line(self, timeout=None):
        """Next line including its '\\n'."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            start = 0
            while True:
                i = self.buf.find(b"\n", start)
                if i >= 0:
                    line = bytes(self.buf[:i + 1])
                    del self.buf[:i + 1]
                    return line
                start = len(self.buf)
                self._fill()
        finally:
            if timeout is not None:
                self.sock.settimeout(self.timeout)

    def recv_line(self, timeout=None):
        """Next line without its '\\n'."""
        return self.recv_raw_line(timeout)[:-1]

    def assert_no_data(self, wait=0.2):
        """Assert the server sends nothing more within `wait` seconds."""
        assert not self.buf, "unexpected data: %r" % bytes(self.buf[:200])
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            data = None
        finally:
            self.sock.settimeout(self.timeout)
        assert data is None, "unexpected data from server: %r" % data

    def is_closed(self, timeout=5.0):
        """True if the server closes the connection within timeout (any
        pending data is discarded into self.buf)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(1 << 16)
            except socket.timeout:
                break
            except (ConnectionResetError, BrokenPipeError):
                chunk = b""
            if not chunk:
                self.sock.settimeout(self.timeout)
                return True
            self.buf += chunk
        self.sock.settimeout(self.timeout)
        return False

    # requests ------------------------------------------------------------
    def cmd(self, line, timeout=None):
        """Send one request line (bytes or str, without newline) and return
        its reply line without '\\n'."""
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\n")
        return self.recv_line(timeout)

    def call(self, name, *args):
        return self.cmd(req(name, *args))

    def ping(self):
        return self.cmd(b"ping()")

    def stats(self):
        self.send(b"stats()\n")
        return read_stat_lines(self.recv_line)

    def stat(self, name):
        st = self.stats()
        assert name in st, "stats() has no %s: %r" % (name, sorted(st))
        return int(st[name])

    def pipeline(self, lines, timeout=30.0):
        """Send every request (a list of bytes lines without '\\n') while
        reading replies concurrently (so back-pressure cannot deadlock us);
        return the list of reply lines (without '\\n')."""
        payload = b"".join(l + b"\n" for l in lines)
        err = []

        def sender():
            try:
                self.sock.sendall(payload)
            except Exception as e:  # reported below
                err.append(e)

        t = threading.Thread(target=sender, daemon=True)
        t.start()
        replies = []
        self.sock.settimeout(timeout)
        try:
            for _ in lines:
                replies.append(self.recv_line())
        finally:
            self.sock.settimeout(self.timeout)
        t.join(timeout)
        assert not t.is_alive(), "sender thread stuck"
        assert not err, "send failed: %r" % err
        return replies

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None


# --------------------------------------------------------------------------
# server

class Server:
    def __init__(self, args=(), port=None, add_defaults=True, env=None):
        self.port = port if port is not None else free_port()
        self.args = [BIN]
        if add_defaults:
            self.args += ["--host", HOST, "--port", str(self.port),
                          "--log_level", "warn"]
        self.args += [str(a) for a in args]
        self.env = env
        self.proc = None
        self.clients = []
        self.errf = tempfile.TemporaryFile()
        self.returncode = None

    def start(self, timeout=5.0):
        if not os.path.exists(BIN):
            pytest.fail("vitamin binary not found at %s (set VITAMIN_BIN)" % BIN)
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                     stdout=self.errf, stderr=self.errf,
                                     env=env)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                pytest.fail("server exited with %s at start: %s\n%s"
                            % (self.proc.returncode, self.args, self.stderr()))
            try:
                s = socket.create_connection((HOST, self.port), timeout=1)
                s.close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.proc.kill()
                    self.proc.wait()
                    pytest.fail("server did not accept on port %d within %.0f s"
                                "\n%s" % (self.port, timeout, self.stderr()))
                time.sleep(0.02)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def client(self, **kw):
        c = Client(self.port, **kw)
        self.clients.append(c)
        return c

    def rss(self):
        return rss_bytes(self.proc.pid)

    def alive(self):
        return self.proc.poll() is None

    def stderr(self):
        self.errf.seek(0)
        data = self.errf.read()
        self.errf.seek(0, 2)
        return data.decode(errors="replace")[-4000:]

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Signal the server and return its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                pytest.fail("server did not exit within %.0f s of signal %s"
                            % (timeout, sig))
        self.returncode = self.proc.returncode
        return self.returncode

    def close_clients(self):
        for c in self.clients:
            c.close()
        self.clients = []


@pytest.fixture
def server():
    """Factory: server(*flags, **kw) starts vitamin with --host 127.0.0.1,
    a free --port and --log_level warn plus the given flags. At teardown
    every server still running gets SIGTERM and must exit 0."""
    started = []

    def start(*args, **kw):
        s = Server(args, **kw)
        started.append(s)
        return s.start()

    yield start
    problems = []
    for s in started:
        if s.proc is None:
            continue
        was_running = s.proc.poll() is None
        rc = s.stop()
        s.close_clients()
        if was_running and rc != 0:
            problems.append("server %s exited %s on SIGTERM\n%s"
                            % (s.args, rc, s.stderr()))
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def broker():
    """A private rabbitmq-server (rabbit.Broker) for the module's tests;
    skips them when RabbitMQ is not installed."""
    import rabbit  # rabbit.py imports this module: not at the top
    if not os.path.exists(rabbit.RABBITMQ_SERVER):
        pytest.skip("rabbitmq-server is not installed")
    b = rabbit.Broker()  # removed at exit even if it fails to start
    yield b
    b.cleanup()


def run_cli(args, timeout=5.0, env=None):
    """Run the binary to completion (for flags that must exit). Returns
    (returncode, stdout, stderr) as text. If it is still running after
    `timeout` it is killed and the test fails."""
    if not os.path.exists(BIN):
        pytest.fail("vitamin binary not found at %s (set VITAMIN_BIN)" % BIN)
    e = dict(os.environ)
    if env:
        e.update(env)
    p = subprocess.Popen([BIN] + [str(a) for a in args],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=e)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        pytest.fail("%s did not exit within %.0f s (it should have); "
                    "stderr: %s" % (args, timeout, err.decode(errors="replace")))
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace")
