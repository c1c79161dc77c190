"""Helpers for the fault-tolerance tests (test_faults.py, issue 4).

  TcpProxy   a small threaded TCP proxy on 127.0.0.1 (node -> proxy -> broker)
             that can be cut (every open connection is closed on both sides
             at once and new ones are reset) and healed, or frozen (every
             connection stays open but nothing is forwarded either way) and
             thawed.
  HAProxy    a real haproxy process running a config derived from
             haproxy/haproxy.cfg: the same defaults, check and backend
             settings, with the bind and server lines rewritten to free
             127.0.0.1 ports and nothing that needs root paths.
  Writer     a client thread writing one request at a time to one node,
             logging every acknowledged write per key, with its own latency
             measurements.
  final_value_check()   the "no write lost that was not overwritten" rule.
  wait_converged(), describe(), restart_node()  pool helpers.

Everything listens and connects on 127.0.0.1 only. The broker, Node and
LineClient come from rabbit.py (owned by the replication tests; not edited
here).
"""

import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import rabbit
from rabbit import HOST, NOT_FOUND, LineClient, port_accepts, poll

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
HAPROXY_CFG = os.path.join(REPO, "haproxy", "haproxy.cfg")
HAPROXY_BIN = shutil.which("haproxy") or "/usr/sbin/haproxy"


# --------------------------------------------------------------------------
# TCP proxy that can be cut and healed

class _Pair:
    """One proxied connection: the accepted client socket and its upstream
    socket. kill() shuts both down (the pumps then see EOF and exit); the
    last pump to exit closes both sockets, so no fd is closed while another
    thread still reads it. An EOF in one direction is passed on as a FIN
    and the other direction goes on until its own EOF."""

    def __init__(self, a, b):
        self.a, self.b = a, b
        self.lock = threading.Lock()
        self.pumps = 2
        self.dead = False

    def kill(self, rst=False):
        with self.lock:
            self.dead = True
        for s in (self.a, self.b):
            if rst:
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 b"\x01\x00\x00\x00\x00\x00\x00\x00")
                except OSError:
                    pass
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def pump_done(self):
        """Called by each pump as it exits; the last one closes both
        sockets and returns True."""
        with self.lock:
            self.pumps -= 1
            last = self.pumps == 0
            self.dead = self.dead or last
        if last:
            for s in (self.a, self.b):
                try:
                    s.close()
                except OSError:
                    pass
        return last


class TcpProxy:
    """127.0.0.1:<self.port> -> 127.0.0.1:<target_port>.

    cut():  closes every open connection on both sides (FIN to the client and
            to the upstream, so both ends notice at once) and, until heal(),
            resets every new connection right after accepting it.
    heal(): forwards new connections again.
    freeze(): from now on nothing is forwarded, in either direction, on any
            connection (open ones and ones accepted while frozen), and no
            close is passed on: both ends see a link that is up and silent
            (their kernels still ACK, so TCP keeps the connection open; only
            the application-level heartbeat could notice, after 2 x 10 s).
            Bytes are HELD, not dropped: the pumps stop reading, so data
            waits in the kernel buffers (and at most one chunk per direction
            in the pump), and TCP flow control stops the sender when they
            are full. An EOF or a reset seen while frozen is held too.
    thaw(): delivers everything held, in order, then any held EOF/reset,
            and forwards normally again.
            Why hold and not drop: a TCP byte stream cannot lose bytes in
            the middle without corrupting the AMQP framing, so dropping would
            turn a freeze into a protocol error (a different fault, noticed
            at once on thaw), and any data the test sees lost would then be
            lost by the proxy, not by the system under test. Holding is what
            a stalled path does to TCP (retransmissions deliver later, in
            order); data lost meanwhile is lost by the broker or the nodes,
            which is what the tests are about.
    close(): stops everything."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # below the ephemeral range, like rabbit.Broker's ports
        self.port = rabbit.free_port(20000, 30000)
        self.lsock.bind((HOST, self.port))
        self.lsock.listen(128)
        self.lock = threading.Lock()
        self.pairs = set()
        self.is_cut = False
        self.closed = False
        self.frozen = False
        self.freezes = 0
        self.flow = threading.Condition(self.lock)
        self.accepted = 0
        self.refused = 0
        self.cuts = 0
        self.killed_on_cut = 0
        self.thread = threading.Thread(target=self._accept_loop, daemon=True,
                                       name="proxy-accept-%d" % self.port)
        self.thread.start()

    @staticmethod
    def _reset(s):
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass
        try:
            s.close()
        except OSError:
            pass

    def _accept_loop(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                if self.closed:
                    return
                time.sleep(0.01)
                continue
            with self.lock:
                refuse = self.is_cut or self.closed
            if refuse:
                self.refused += 1
                self._reset(c)
                continue
            try:
                u = socket.create_connection((HOST, self.target_port),
                                             timeout=2)
            except OSError:
                self._reset(c)
                continue
            for s in (c, u):
                s.settimeout(None)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = _Pair(c, u)
            with self.lock:
                if self.is_cut or self.closed:
                    refuse = True
                else:
                    self.pairs.add(pair)
                    self.accepted += 1
            if refuse:
                self.refused += 1
                self._reset(c)
                self._reset(u)
                continue
            for src, dst in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(pair, src, dst),
                                 daemon=True).start()

    def _hold(self, pair):
        """Block while the proxy is frozen (returns at once otherwise, or
        when the pair is killed or the proxy closed)."""
        with self.flow:
            while self.frozen and not pair.dead and not self.closed:
                self.flow.wait(0.2)

    def _pump(self, pair, src, dst):
        """Forward src -> dst. An EOF from src is passed on as a FIN to dst
        (shutdown for writing) and the other direction goes on until its own
        EOF, so that nothing read before the EOF is lost (this matters on
        thaw, when both directions deliver what they held at once); a reset
        or a failed send kills the pair (both sides closed at once)."""
        try:
            while True:
                self._hold(pair)           # frozen: do not even read
                if pair.dead:
                    break
                try:
                    data = src.recv(1 << 16)
                except OSError:
                    data = None            # a reset
                self._hold(pair)           # froze meanwhile: hold what we got
                if pair.dead:
                    break
                if data is None:
                    pair.kill()
                    break
                if not data:
                    try:
                        dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pair.kill()
                    break
                dst.sendall(data)
        except OSError:
            pair.kill()
        finally:
            if pair.pump_done():
                with self.lock:
                    self.pairs.discard(pair)

    def open_connections(self):
        with self.lock:
            return len(self.pairs)

    def cut(self):
        with self.lock:
            self.is_cut = True
            self.cuts += 1
            pairs = list(self.pairs)
            self.pairs.clear()
        self.killed_on_cut += len(pairs)
        for p in pairs:
            p.kill()
        with self.flow:
            self.flow.notify_all()     # frozen pumps of killed pairs exit
        return len(pairs)

    def heal(self):
        with self.lock:
            self.is_cut = False

    def freeze(self):
        """Stop forwarding on every connection, keeping them open; returns
        the number of open connections frozen."""
        with self.flow:
            self.frozen = True
            self.freezes += 1
            return len(self.pairs)

    def thaw(self):
        with self.flow:
            self.frozen = False
            self.flow.notify_all()

    def close(self):
        with self.lock:
            self.closed = True
            pairs = list(self.pairs)
            self.pairs.clear()
            self.flow.notify_all()
        for p in pairs:
            p.kill()
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)  # wakes accept()
        except OSError:
            pass
        try:
            self.lsock.close()
        except OSError:
            pass
        self.thread.join(2)


# --------------------------------------------------------------------------
# HAProxy

sys.path.insert(0, os.path.join(REPO, "scripts", "lib"))
import localcfg  # noqa: E402  (scripts/lib/localcfg.py, shared with the demos)


def haproxy_config(front_port, servers, src=HAPROXY_CFG, extra=None):
    """The text of haproxy/haproxy.cfg with the `vitamin` frontend bound to
    127.0.0.1:front_port, the `server` lines of its backend replaced by
    `servers` ([(name, port)] on 127.0.0.1, same options as the original
    lines), and global settings that need root or /run paths dropped.
    extra: {protocol: (front_port, servers)} also keeps that frontend
    (memcache, redis) and its backend <protocol>_nodes; the others are
    left out. Done by scripts/lib/localcfg.py, as for scripts/pool.sh."""
    with open(src) as f:
        text = f.read()
    fronts = {"vitamin": front_port}
    backends = {"vitamin_nodes": list(servers)}
    for proto, (port, srv) in (extra or {}).items():
        fronts[proto] = port
        backends[proto + "_nodes"] = list(srv)
    return localcfg.haproxy(text, fronts, backends, host=HOST)


class HAProxy:
    """haproxy -f <derived cfg> -db, on a free 127.0.0.1 port.
    A stats socket in the temporary folder answers `show servers state`."""

    def __init__(self, servers, src=HAPROXY_CFG, extra=None):
        """servers: [(name, port)] of the Vitamin-protocol backend; extra:
        {"memcache" or "redis": [(name, port)]} also fronts those ports
        (self.ports[protocol] is where), each with its own check."""
        self.dir = tempfile.mkdtemp(prefix="vitamin-haproxy-")
        self.port = rabbit.free_port()
        self.servers = list(servers)
        self.ports = {"vitamin": self.port}
        ex = {}
        for proto, srv in (extra or {}).items():
            self.ports[proto] = rabbit.free_port()
            ex[proto] = (self.ports[proto], srv)
        self.sock_path = os.path.join(self.dir, "admin.sock")
        text = haproxy_config(self.port, self.servers, src, ex)
        # a stats socket in our own folder (not /run) to read server states
        text = re.sub(r"(?m)^global\s*$",
                      "global\n    stats socket %s mode 600 level admin"
                      % self.sock_path, text, count=1)
        self.cfg = os.path.join(self.dir, "haproxy.cfg")
        with open(self.cfg, "w") as f:
            f.write(text)
        self.log_path = os.path.join(self.dir, "haproxy.log")
        self.proc = None

    def check(self):
        r = subprocess.run([HAPROXY_BIN, "-c", "-f", self.cfg],
                           capture_output=True, text=True, timeout=20)
        return r.returncode, r.stdout + r.stderr

    def start(self, timeout=10.0):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([HAPROXY_BIN, "-f", self.cfg, "-db"],
                                     stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while not port_accepts(self.port):
            if self.proc.poll() is not None:
                raise AssertionError("haproxy exited with %s:\n%s"
                                     % (self.proc.returncode, self.log_text()))
            if time.monotonic() > deadline:
                raise AssertionError("haproxy did not accept on %d:\n%s"
                                     % (self.port, self.log_text()))
            time.sleep(0.05)
        return self

    def admin(self, command):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(2)
        try:
            s.connect(self.sock_path)
            s.sendall(command.encode() + b"\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            return data.decode(errors="replace")
        finally:
            s.close()

    def server_states(self, backend=None):
        """{server name: operational state} (0 stopped, 2 running, ...),
        of one backend (e.g. memcache_nodes) or of all."""
        out = {}
        for line in self.admin("show servers state").splitlines():
            parts = line.split()
            if len(parts) > 5 and parts[0].isdigit() and \
                    (backend is None or parts[1] == backend):
                out[parts[3]] = int(parts[5])
        return out

    def wait_servers(self, want, timeout=15.0, backend=None):
        """Wait until every named server (of one backend, or of all) has
        the wanted state ({name: 'up'|'down'})."""
        code = {"up": 2, "down": 0}

        def ok():
            st = self.server_states(backend)
            return all(st.get(n) == code[w] for n, w in want.items()) and st
        return poll(ok, timeout=timeout, interval=0.1,
                    what="haproxy server states %r (log:\n%s)"
                    % (want, self.log_text(2000)))

    def log_text(self, n=6000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------
# nodes

def kill_node(nd, sig=signal.SIGKILL):
    """Send sig to a rabbit.Node (SIGCONT first), reap it if it is a kill,
    and drop its cached client connection."""
    if nd._client is not None:
        nd._client.close()
        nd._client = None
    if nd.proc is None or nd.proc.poll() is not None:
        return nd.proc.returncode if nd.proc else None
    try:
        os.kill(nd.proc.pid, signal.SIGCONT)
        os.kill(nd.proc.pid, sig)
    except ProcessLookupError:
        pass
    if sig == signal.SIGKILL:
        nd.proc.wait(10)
        return nd.proc.returncode
    return None


def new_node(broker_port, exchange, node_id, port=None, extra=()):
    return rabbit.Node(node_id, broker_port, exchange, port=port,
                       extra=extra, log_level="info")


def safe_stats(nd):
    try:
        if not nd.alive():
            return None
        return nd.stats()
    except Exception:
        nd._client = None
        return None


DESCRIBE_KEYS = ("repl_state", "repl_published", "repl_received",
                 "repl_applied", "repl_stale", "repl_gaps", "repl_queue",
                 "repl_outbox_bytes", "repl_outbox_dropped", "repl_reconnects",
                 "repl_confirmed_seq", "sync_started", "sync_completed",
                 "sync_items", "sync_served", "replies_held", "curr_items",
                 "items_digest")


def describe(nodes):
    out = []
    for nd in nodes:
        st = safe_stats(nd)
        if st is None:
            out.append("%s (port %d): not answering (alive=%s)"
                       % (nd.node_id, nd.port, nd.alive()))
            continue
        out.append("%s: %s" % (nd.node_id, " ".join(
            "%s=%s" % (k, st[k]) for k in DESCRIBE_KEYS if k in st)))
    return "\n".join(out)


def node_logs(nodes, n=6000):
    return "\n".join("----- %s (port %d) log -----\n%s"
                     % (nd.node_id, nd.port, nd.log_text(n)) for nd in nodes)


def wait_up(nodes, timeout=30.0):
    for nd in nodes:
        poll(lambda: (safe_stats(nd) or {}).get("repl_state") == "up",
             timeout=timeout, interval=0.1,
             what="%s repl_state up\n%s\n%s" % (nd.node_id, describe(nodes),
                                                nd.log_text(3000)))


def wait_converged(nodes, timeout=60.0):
    """Poll until every node answers and all items_digest are equal."""
    last = {}

    def same():
        ds = []
        for nd in nodes:
            st = safe_stats(nd)
            if st is None:
                return None
            ds.append(st.get("items_digest"))
        last["d"] = ds
        return ds if len(set(ds)) == 1 else None
    try:
        return poll(same, timeout=timeout, interval=0.2,
                    what="equal items_digest on %s"
                    % [nd.node_id for nd in nodes])
    except rabbit.Timeout as e:
        raise rabbit.Timeout("%s\n%s\n%s" % (e, describe(nodes),
                                             node_logs(nodes, 3000)))


# --------------------------------------------------------------------------
# clients

class Writer(threading.Thread):
    """Writes to one node, one request at a time, until stop() is called.

    Each step picks a key (own keys, or a shared key with probability
    `shared_p`), and sets it to a unique value "<name>:<n>" (or deletes it
    with probability `del_p` when it is a shared key). Each request's latency
    is measured with time.monotonic() around its send and receive. Every
    acknowledged write goes to `log`: {key: [(t_send, t_recv, value or None
    for a delete)]}. A del answered "Error: Record not found" changed nothing
    and is not logged. Any other unexpected reply or exception is an error
    (the thread stops at the first exception)."""

    def __init__(self, port, name, own_keys, shared_keys=(), shared_p=0.0,
                 del_p=0.0, pause=0.0, get_every=0, log=None, log_lock=None,
                 seed=None):
        super().__init__(daemon=True, name="writer-%s" % name)
        self.port = port
        self.wname = name
        self.own_keys = list(own_keys)
        self.shared_keys = list(shared_keys)
        self.shared_p = shared_p
        self.del_p = del_p
        self.pause = pause
        self.get_every = get_every
        self.log = log if log is not None else {}
        self.log_lock = log_lock or threading.Lock()
        self.rng = random.Random(seed if seed is not None else name)
        self._halt = threading.Event()
        self.errors = []
        self.latencies = []  # (t_send, seconds, request)
        self.requests = 0
        self.writes = 0
        self.last_value = {}  # key -> value of this writer's last ack'd write

    def stop(self):
        self._halt.set()

    def _timed(self, c, line):
        t0 = time.monotonic()
        reply = c.cmd(line)
        t1 = time.monotonic()
        self.latencies.append((t0, t1 - t0, line[:40]))
        self.requests += 1
        return t0, t1, reply

    def run(self):
        try:
            c = LineClient(self.port, timeout=20.0)
        except Exception as e:
            self.errors.append("connect: %r" % e)
            return
        n = 0
        try:
            while not self._halt.is_set():
                n += 1
                shared = self.shared_keys and self.rng.random() < self.shared_p
                key = self.rng.choice(self.shared_keys if shared
                                      else self.own_keys)
                if shared and self.rng.random() < self.del_p:
                    t0, t1, reply = self._timed(c, rabbit.req("del", key))
                    if reply == "OK":
                        self._record(key, t0, t1, None)
                    elif reply != NOT_FOUND:
                        self.errors.append("del(%s) -> %r" % (key, reply))
                else:
                    value = "%s:%d" % (self.wname, n)
                    t0, t1, reply = self._timed(c, rabbit.req("set", key,
                                                              value))
                    if reply == value:
                        self._record(key, t0, t1, value)
                    else:
                        self.errors.append("set(%s) -> %r" % (key, reply))
                if self.get_every and n % self.get_every == 0 and \
                        self.last_value:
                    # read back one of this writer's own keys (only it
                    # writes them, so the node must return its last value)
                    key = self.rng.choice(self.own_keys)
                    if key not in self.last_value:
                        key = next(iter(self.last_value))
                    _, _, reply = self._timed(c, rabbit.req("get", key))
                    want = self.last_value[key]
                    if not self.shared_keys and reply != want:
                        self.errors.append("get(%s) -> %r, wanted %r"
                                           % (key, reply, want))
                if self.pause:
                    time.sleep(self.pause)
        except Exception as e:
            self.errors.append("exception after %d requests: %r"
                               % (self.requests, e))
        finally:
            c.close()

    def _record(self, key, t0, t1, value):
        self.writes += 1
        self.last_value[key] = value if value is not None else NOT_FOUND
        with self.log_lock:
            self.log.setdefault(key, []).append((t0, t1, value))

    def slow(self, limit, since=None, until=None):
        return [(t, d, r) for (t, d, r) in self.latencies
                if d > limit and (since is None or t >= since)
                and (until is None or t <= until)]


def final_value_check(log, read, margin=0.005):
    """The rule of issue 4, test 4: no write lost that was not overwritten.

    log: {key: [(t_send, t_recv, value or None)]} from every client.
    read: {key: reply of get(key)} from one node.
    For each key, the final value must be that of a write no other write to
    the key started clearly after (t_send > t_recv + margin); writes whose
    intervals overlap are concurrent, and either may win. Returns a list of
    problems (empty when all is well)."""
    problems = []
    for key, writes in sorted(log.items()):
        candidates = []
        for w in writes:
            if not any(x is not w and x[0] > w[1] + margin for x in writes):
                candidates.append(w)
        allowed = set(NOT_FOUND if v is None else v for (_, _, v) in candidates)
        got = read.get(key)
        if got not in allowed:
            last = sorted(writes, key=lambda w: w[0])[-4:]
            problems.append("%s = %r, expected one of %r (last writes, "
                            "monotonic send/recv/value: %r)"
                            % (key, got, sorted(allowed), last))
    return problems


def read_keys(port, keys, chunk=500):
    """{key: get reply} over one connection, pipelined."""
    c = LineClient(port, timeout=20.0)
    try:
        out = {}
        keys = list(keys)
        for i in range(0, len(keys), chunk):
            part = keys[i:i + chunk]
            replies = c.pipeline([rabbit.req("get", k) for k in part])
            out.update(zip(part, replies))
        return out
    finally:
        c.close()


def load_keys(port, items, chunk=1000):
    """Set every (key, value) over one connection, pipelined; asserts every
    reply echoes its value."""
    c = LineClient(port, timeout=30.0)
    try:
        items = list(items)
        for i in range(0, len(items), chunk):
            part = items[i:i + chunk]
            replies = c.pipeline([rabbit.req("set", k, v) for k, v in part])
            bad = [(k, r) for (k, v), r in zip(part, replies) if r != v]
            assert not bad, "load: unexpected replies %r" % bad[:5]
    finally:
        c.close()
