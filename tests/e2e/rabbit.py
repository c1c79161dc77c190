"""Helpers for the replication end-to-end tests.

  Broker   a private rabbitmq-server in a temporary folder on free loopback
           ports (see /work/shared/MACHINE-NOTES.md); start/stop/kill/
           sigstop/sigcont/restart on the same data folder; cleanup() removes
           everything, and is also registered with atexit. start() is
           launch() + wait_ready(), so several brokers can boot in parallel
           (cluster.py does). Every beam it starts carries its owner's pid in
           VITAMIN_TEST_OWNER; reap_orphan_brokers() kills the beams whose
           owner is gone (a test run killed before its cleanup ran).
  Node     one vitamin process with replication on (or off), log captured.
  Cluster  N Nodes on one broker and one exchange (node1 .. nodeN).
  LineClient  a tiny line client for the text protocol.
  Tap      a pika consumer with its own exclusive queue bound to an exchange.
  poll()   wait for an eventual condition.

Only the standard library is needed, plus pika for Tap / publish().
Everything listens and connects on 127.0.0.1 only.
"""

import atexit
import itertools
import os
import pwd
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

HOST = "127.0.0.1"
BIN = os.environ.get("VITAMIN_BIN", "/work/main/build/vitamin")
RABBITMQ_SERVER = "/usr/sbin/rabbitmq-server"
RABBITMQCTL = "/usr/sbin/rabbitmqctl"
RABBITMQ_CLI_DIR = "/usr/sbin"   # rabbitmqctl, rabbitmq-queues, -diagnostics
OWNER_VAR = "VITAMIN_TEST_OWNER"

_counter = itertools.count(1)


class Timeout(AssertionError):
    pass


def poll(fn, timeout=10.0, interval=0.05, what="condition"):
    """Call fn() until it returns a truthy value and return that value;
    raise Timeout (an AssertionError) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() > deadline:
            raise Timeout("timed out after %.1f s waiting for %s (last: %r)"
                          % (timeout, what, last))
        time.sleep(interval)


def port_is_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_script_broker_port():
    """An AMQP port for a broker that scripts/lib/pool-lib.sh starts: its
    Erlang distribution port is the AMQP port + 10000 (pl_dist_port), so
    both must be free. Both below the kernel's ephemeral range (32768 and
    up), where a client connection cannot take the second meanwhile."""
    while True:
        p = free_port(20000, 22700)
        if port_is_free(p + 10000):
            return p


def free_port(lo=None, hi=None):
    """A free loopback TCP port: from the kernel, or (with lo/hi) a random
    one in [lo, hi) that is bindable now."""
    if lo is None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            return s.getsockname()[1]
    for _ in range(1000):
        p = random.randrange(lo, hi)
        if port_is_free(p):
            return p
    raise RuntimeError("no free port in [%d, %d)" % (lo, hi))


def port_accepts(port, timeout=0.5):
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def _proc_stat(pid):
    """The fields of /proc/PID/stat after the command name (state first),
    or None if there is no such process."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rindex(b")") + 2:].split()


def proc_state(pid):
    """'R', 'S', 'T' (stopped, e.g. by SIGSTOP), 'Z'... or None."""
    fields = _proc_stat(pid)
    return fields[0].decode() if fields else None


def _proc_start_time(pid):
    """Start time of pid in clock ticks since boot (field 22 of
    /proc/PID/stat), or None if there is no such process (or only its
    zombie)."""
    fields = _proc_stat(pid)
    if not fields or fields[0] in (b"Z", b"X"):
        return None
    return fields[19].decode()


def _owner_tag():
    """pid:starttime of this process, so that a recycled pid is not taken
    for the owner."""
    return "%d:%s" % (os.getpid(), _proc_start_time(os.getpid()))


def _beam_env(pid):
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def _all_beam_pids():
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv0 = f.read().split(b"\0", 1)[0]
        except OSError:
            continue
        if argv0.endswith(b"beam.smp"):
            pids.append(int(d))
    return pids


def reap_orphan_brokers():
    """SIGKILL every beam.smp started by these helpers (it has
    VITAMIN_TEST_OWNER=pid:starttime in its environment) whose owner
    process is gone, e.g. a pytest killed by a timeout before its cleanup
    ran. Beams of live test runs, and beams not started by these helpers,
    are left alone. Returns the pids killed."""
    killed, folders = [], set()
    prefix = OWNER_VAR.encode() + b"="
    for pid in _all_beam_pids():
        env = _beam_env(pid)
        tag = next((e[len(prefix):].decode() for e in env
                    if e.startswith(prefix)), None)
        if not tag or ":" not in tag:
            continue
        opid, ostart = tag.split(":", 1)
        if _proc_start_time(int(opid)) == ostart:
            continue    # the owner is alive
        try:
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except ProcessLookupError:
            continue
        # its folder (and a cluster's folder around it), if it is ours
        for e in env:
            if e.startswith(b"RABBITMQ_MNESIA_BASE="):
                d = os.path.dirname(e.split(b"=", 1)[1].decode())
                if os.path.basename(d).startswith("vitamin-rabbit-"):
                    folders.add(d)
                    up = os.path.dirname(d)
                    if os.path.basename(up).startswith("vitamin-rcluster-"):
                        folders.add(up)
    if killed:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(
                os.path.exists("/proc/%d" % p) for p in killed):
            time.sleep(0.05)
        for d in sorted(folders, key=len, reverse=True):
            shutil.rmtree(d, ignore_errors=True)
    return killed


def chown_rabbitmq(*paths):
    """Give paths (recursively for folders) to the rabbitmq user, which
    rabbitmq-server drops to when started as root."""
    if os.geteuid() != 0:
        return
    pw = pwd.getpwnam("rabbitmq")
    for top in paths:
        todo = [top]
        if os.path.isdir(top):
            for root, dirs, files in os.walk(top):
                todo += [os.path.join(root, x) for x in dirs + files]
        for n in todo:
            os.chown(n, pw.pw_uid, pw.pw_gid)


def _beam_pids(patterns):
    """pids of beam.smp processes whose command line, or one of whose
    RABBITMQ_* environment variables, contains any of the given strings
    (rabbitmq 3.10 passes the node name in the environment only). CLI
    tools (rabbitmqctl & co. run by ctl() with the same environment) are
    beams too, and are left out."""
    pids = []
    for d in _all_beam_pids():
        try:
            with open("/proc/%d/cmdline" % d, "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if b"\0-escript\0" in cmd:
            continue
        env = _beam_env(d)
        if any(p.encode() in cmd for p in patterns) or any(
                e.startswith(b"RABBITMQ_") and
                any(p.encode() in e for p in patterns) for e in env):
            pids.append(d)
    return pids


# --------------------------------------------------------------------------
# broker

class Broker:
    """A private RabbitMQ broker. All state lives in self.dir, which
    rabbitmq owns; restart() boots it again on the same folder and ports.
    parent: the folder to create self.dir in (default: the system's temp
    folder). Subclasses add settings by overriding env() (see
    write_file() for files the broker must read)."""

    def __init__(self, name=None, start=True, timeout=60.0, parent=None):
        self.name = name or "vtest%dx%d" % (os.getpid(), next(_counter))
        self.nodename = "%s@localhost" % self.name
        self.dir = tempfile.mkdtemp(prefix="vitamin-rabbit-", dir=parent)
        os.chmod(self.dir, 0o755)
        for sub in ("mnesia", "log"):
            os.mkdir(os.path.join(self.dir, sub))
        with open(os.path.join(self.dir, "enabled_plugins"), "w") as f:
            f.write("[].\n")
        chown_rabbitmq(self.dir)
        # Below the usual ephemeral range (32768+), so that outgoing
        # connections do not take them while the broker is down.
        self.port = free_port(20000, 30000)
        self.dist_port = free_port(20000, 30000)
        while self.dist_port == self.port:
            self.dist_port = free_port(20000, 30000)
        self.proc = None
        self.out = None
        self._cleaned = False
        atexit.register(self.cleanup)
        if start:
            self.start(timeout)

    # environment shared by rabbitmq-server and rabbitmqctl
    def env(self):
        e = dict(os.environ)
        d = self.dir
        e.update(
            RABBITMQ_NODENAME=self.nodename,
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_NODE_IP_ADDRESS=HOST,
            RABBITMQ_MNESIA_BASE=os.path.join(d, "mnesia"),
            RABBITMQ_LOG_BASE=os.path.join(d, "log"),
            RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(d, "enabled_plugins"),
            RABBITMQ_FEATURE_FLAGS_FILE=os.path.join(d, "feature_flags"),
            RABBITMQ_PID_FILE=os.path.join(d, "pid"),
        )
        e[OWNER_VAR] = _owner_tag()
        return e

    def write_file(self, name, text, mode=0o644):
        """Write self.dir/name (owned by rabbitmq); returns its path."""
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        chown_rabbitmq(path)
        return path

    def url(self):
        return "amqp://guest:guest@%s:%d/%%2F" % (HOST, self.port)

    def start(self, timeout=60.0):
        """Boot and wait until it accepts AMQP and has fully started."""
        self.launch()
        return self.wait_ready(timeout)

    def launch(self):
        """Start rabbitmq-server and return at once (see wait_ready)."""
        reap_orphan_brokers()
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("broker already started")
        if self.beam_pids():
            raise RuntimeError("a beam.smp of %s is still running: %s"
                               % (self.nodename, self.beam_pids()))
        if not os.path.exists(RABBITMQ_SERVER):
            raise RuntimeError("%s not installed" % RABBITMQ_SERVER)
        self.out = open(os.path.join(self.dir, "out.log"), "ab")
        self.proc = subprocess.Popen([RABBITMQ_SERVER], env=self.env(),
                                     stdin=subprocess.DEVNULL,
                                     stdout=self.out, stderr=self.out,
                                     start_new_session=True)
        return self

    def wait_ready(self, timeout=60.0):
        """After launch(): wait until the AMQP port accepts and
        `rabbitmqctl await_startup` succeeds; on failure kill the broker
        and raise RuntimeError with the end of its logs."""
        deadline = time.monotonic() + timeout
        while not port_accepts(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError("rabbitmq-server exited with %s at boot:\n%s"
                                   % (self.proc.returncode, self.log_tail()))
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError("broker did not accept on %d within %.0f s"
                                   ":\n%s" % (self.port, timeout,
                                              self.log_tail()))
            time.sleep(0.1)
        left = max(5.0, deadline - time.monotonic())
        r = self.ctl("await_startup", timeout=left)
        if r.returncode != 0:
            self.kill()
            raise RuntimeError("rabbitmqctl await_startup failed (%s): %s %s\n%s"
                               % (r.returncode, r.stdout, r.stderr,
                                  self.log_tail()))
        return self

    def ctl(self, *args, timeout=30.0):
        """Run rabbitmqctl -n NODE args...; returns a CompletedProcess
        (text). Never raises on a non-zero exit or timeout."""
        return self.cli("rabbitmqctl", *args, timeout=timeout)

    def cli(self, tool, *args, timeout=30.0):
        """Run a RabbitMQ CLI tool (rabbitmqctl, rabbitmq-queues,
        rabbitmq-diagnostics...) as `tool -n NODE args...`, like ctl()."""
        path = RABBITMQCTL if tool == "rabbitmqctl" else \
            os.path.join(RABBITMQ_CLI_DIR, tool)
        try:
            return subprocess.run([path, "-n", self.nodename] +
                                  list(args), env=self.env(),
                                  stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired as e:
            return subprocess.CompletedProcess(e.cmd, 124,
                                               str(e.stdout or ""),
                                               "timeout after %.0f s" % timeout)

    def list_queues(self, *cols):
        """[(col values...)] of rabbitmqctl list_queues name cols..."""
        r = self.ctl("list_queues", "-q", "--no-table-headers", "name", *cols)
        assert r.returncode == 0, "list_queues failed: %s %s" % (r.stdout,
                                                                  r.stderr)
        return [tuple(l.split("\t")) for l in r.stdout.splitlines() if l]

    def list_exchanges(self, *cols):
        r = self.ctl("list_exchanges", "-q", "--no-table-headers", "name",
                     *cols)
        assert r.returncode == 0, "list_exchanges failed: %s %s" % (r.stdout,
                                                                     r.stderr)
        return [tuple(l.split("\t")) for l in r.stdout.splitlines() if l]

    def beam_pids(self):
        return _beam_pids([self.nodename, self.dir])

    def beam_pid(self):
        pids = self.beam_pids()
        assert len(pids) == 1, "expected one beam.smp for %s, found %r" % (
            self.nodename, pids)
        return pids[0]

    def running(self):
        return bool(self.beam_pids())

    def frozen(self):
        """Is the beam stopped (SIGSTOP)?"""
        return any(proc_state(p) in ("T", "t") for p in self.beam_pids())

    def _reap(self, timeout=10.0):
        if self.proc is not None:
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                self.proc.wait(5)
        if self.out is not None:
            self.out.close()
            self.out = None

    def stop(self, timeout=30.0):
        """Clean shutdown (rabbitmqctl stop), with SIGKILL as a fallback."""
        if not self.running():
            self._reap()
            return
        self.ctl("stop", timeout=timeout)
        deadline = time.monotonic() + timeout
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.running():
            self.kill()
        self._reap()

    def kill(self):
        """SIGKILL the broker (a crash). restart() boots it again."""
        for pid in self.beam_pids():
            try:
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        poll(lambda: not self.beam_pids(), timeout=10, what="beam.smp gone")
        self._reap()

    def sigstop(self):
        """Freeze the broker (TCP connections stay open, nothing answers)."""
        os.kill(self.beam_pid(), signal.SIGSTOP)

    def sigcont(self):
        os.kill(self.beam_pid(), signal.SIGCONT)

    def restart(self, timeout=60.0, clean=True):
        if clean:
            self.stop()
        else:
            self.kill()
        return self.start(timeout)

    def log_tail(self, n=4000):
        out = []
        logdir = os.path.join(self.dir, "log")
        files = [os.path.join(self.dir, "out.log")]
        if os.path.isdir(logdir):
            files += [os.path.join(logdir, f) for f in sorted(os.listdir(logdir))]
        for p in files:
            try:
                with open(p, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            out.append("== %s\n%s" % (p, data[-n:].decode(errors="replace")))
        return "\n".join(out)

    def cleanup(self):
        """Stop the broker (kill if needed), kill leftover beam.smp of this
        node and remove the folder. Safe to call more than once."""
        if self._cleaned:
            return
        self._cleaned = True
        try:
            if self.running():
                # a stopped beam cannot shut down cleanly
                for pid in self.beam_pids():
                    try:
                        os.kill(pid, signal.SIGCONT)
                    except ProcessLookupError:
                        pass
                self.stop(timeout=15)
        finally:
            for pid in self.beam_pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if self.proc is not None and self.proc.poll() is None:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass
            if self.out is not None:
                self.out.close()
                self.out = None
            shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------
# text protocol client

# Request quoting and the reply encoding live in conftest.py; this module
# returns str where conftest returns bytes.
import conftest
from conftest import quote, req  # noqa: F401  (re-exported for the tests)


def encode_value(v):
    """The SPEC's reply encoding of value v (bytes or str), as str."""
    if isinstance(v, str):
        v = v.encode()
    return conftest.encode_value(v).decode("utf-8", errors="surrogateescape")


NOT_FOUND = "Error: Record not found"


class LineClient:
    """One TCP connection; replies are returned as str (utf-8, with
    surrogateescape), without the newline."""

    def __init__(self, port, timeout=10.0):
        self.port = port
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def _line(self):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 1]
                return line.decode("utf-8", errors="surrogateescape")
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("server closed the connection "
                                      "(port %d)" % self.port)
            self.buf += chunk

    def cmd(self, line):
        if isinstance(line, str):
            line = line.encode()
        self.sock.sendall(line + b"\n")
        return self._line()

    def pipeline(self, lines):
        """Send all lines (no newline) at once, return all replies. Keep
        batches small (<= a few hundred short lines)."""
        self.sock.sendall(b"".join(l + b"\n" for l in lines))
        return [self._line() for _ in lines]

    def call(self, name, *args):
        return self.cmd(req(name, *args))

    def set(self, k, v, ttl=None):
        return self.call("set", k, v) if ttl is None else \
            self.call("set", k, v, ttl)

    def get(self, k):
        return self.call("get", k)

    def delete(self, k):
        return self.call("del", k)

    def expire(self, k, ttl):
        return self.call("expire", k, ttl)

    def ttl(self, k):
        return self.call("ttl", k)

    def ping(self):
        return self.cmd(b"ping()")

    def stats(self):
        self.sock.sendall(b"stats()\n")
        st = {}
        while True:
            line = self._line()
            if line == "END":
                return st
            m = re.fullmatch(r"STAT (\S+) (.*)", line)
            if not m:
                raise AssertionError("bad stats line %r" % line)
            st[m.group(1)] = m.group(2)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# --------------------------------------------------------------------------
# vitamin nodes

_live_nodes = []


@atexit.register
def _kill_leftover_nodes():
    for nd in list(_live_nodes):
        if nd.alive():
            try:
                os.kill(nd.proc.pid, signal.SIGCONT)
                nd.proc.kill()
                nd.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass


class Node:
    def __init__(self, node_id=None, broker_port=None, exchange=None,
                 port=None, extra=(), log_level="info"):
        self.node_id = node_id
        self.port = port or free_port()
        self.args = [BIN, "--host", HOST, "--port", str(self.port),
                     "--log_level", log_level]
        if broker_port is not None:
            self.args += ["--rabbitmq_host", HOST,
                          "--rabbitmq_port", str(broker_port)]
        if exchange is not None:
            self.args += ["--rabbitmq_exchange", exchange]
        if node_id is not None:
            self.args += ["--node_id", node_id]
        self.args += [str(a) for a in extra]
        self.log = tempfile.TemporaryFile()
        self.proc = None
        self._client = None

    def start(self, timeout=10.0):
        if not os.path.exists(BIN):
            raise AssertionError("vitamin binary not found at %s "
                                 "(set VITAMIN_BIN)" % BIN)
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log)
        _live_nodes.append(self)
        deadline = time.monotonic() + timeout
        while not port_accepts(self.port):
            if self.proc.poll() is not None:
                raise AssertionError("%s exited with %s at start:\n%s" % (
                    self.args, self.proc.returncode, self.log_text()))
            if time.monotonic() > deadline:
                raise AssertionError("%s did not accept on %d in %.0f s\n%s"
                                     % (self.node_id, self.port, timeout,
                                        self.log_text()))
            time.sleep(0.02)
        return self

    @property
    def c(self):
        """A shared client connection (created on first use)."""
        if self._client is None:
            self._client = LineClient(self.port)
        return self._client

    def client(self):
        return LineClient(self.port)

    def stats(self):
        return self.c.stats()

    def stat(self, name):
        st = self.stats()
        assert name in st, "%s: stats() has no %s: %r" % (self.node_id, name,
                                                          sorted(st))
        v = st[name]
        try:
            return int(v)
        except ValueError:
            return v

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self, n=6000):
        self.log.seek(0)
        data = self.log.read()
        self.log.seek(0, 2)
        return data.decode(errors="replace")[-n:]

    def sigstop(self):
        os.kill(self.proc.pid, signal.SIGSTOP)

    def sigcont(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return "timeout"
        if self in _live_nodes:
            _live_nodes.remove(self)
        return self.proc.returncode


class Cluster:
    """Nodes node1..nodeN on one exchange of one broker."""

    def __init__(self, broker, n, exchange, extra=()):
        self.broker = broker
        self.exchange = exchange
        self.nodes = [Node("node%d" % (i + 1), broker.port, exchange,
                           extra=extra) for i in range(n)]

    def start(self, up_timeout=20.0):
        for nd in self.nodes:
            nd.start()
        self.wait_up(up_timeout)
        return self

    def __getitem__(self, i):
        return self.nodes[i]

    def __iter__(self):
        return iter(self.nodes)

    def __len__(self):
        return len(self.nodes)

    def wait_up(self, timeout=20.0):
        for nd in self.nodes:
            poll(lambda: nd.stat("repl_state") == "up", timeout=timeout,
                 what="%s repl_state up (log:\n%s)" % (nd.node_id,
                                                       nd.log_text(2000)))

    def digests(self):
        return [nd.stat("items_digest") for nd in self.nodes]

    def wait_converged(self, timeout=10.0):
        def same():
            d = self.digests()
            return d if len(set(d)) == 1 else None
        try:
            return poll(same, timeout=timeout, interval=0.1,
                        what="equal items_digest on every node")
        except Timeout as e:
            raise Timeout("%s\n%s" % (e, self.describe()))

    def describe(self, keys=("repl_state", "repl_published",
                             "repl_batches_published", "repl_received",
                             "repl_applied", "repl_stale", "repl_malformed",
                             "repl_self_skipped", "repl_gaps", "repl_queue",
                             "repl_outbox_bytes", "repl_outbox_dropped",
                             "repl_reconnects", "curr_items", "items_digest")):
        out = []
        for nd in self.nodes:
            try:
                st = nd.stats()
                out.append("%s: %s" % (nd.node_id, " ".join(
                    "%s=%s" % (k, st.get(k)) for k in keys if k in st)))
            except Exception as e:  # diagnostics only
                out.append("%s: stats failed: %r" % (nd.node_id, e))
        return "\n".join(out)

    def logs(self):
        return "\n".join("----- %s log -----\n%s" % (nd.node_id, nd.log_text())
                         for nd in self.nodes)

    def stop(self):
        """SIGTERM every node; returns {node_id: exit code}."""
        return {nd.node_id: nd.stop() for nd in self.nodes}


# --------------------------------------------------------------------------
# pika side

def _pika():
    import pika  # python3-pika
    return pika


def connect(broker):
    pika = _pika()
    params = pika.ConnectionParameters(
        host=HOST, port=broker.port,
        credentials=pika.PlainCredentials("guest", "guest"),
        connection_attempts=3, retry_delay=0.5, socket_timeout=5,
        blocked_connection_timeout=10)
    return pika.BlockingConnection(params)


def publish(broker, exchange, bodies):
    """Publish each body (bytes) as one message to the fanout exchange,
    with publisher confirms."""
    conn = connect(broker)
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        for b in bodies:
            ch.basic_publish(exchange=exchange, routing_key="", body=b)
    finally:
        conn.close()


class Tap:
    """An exclusive, auto-deleted queue bound to the exchange: sees every
    message published there after it was created."""

    def __init__(self, broker, exchange):
        self.conn = connect(broker)
        self.ch = self.conn.channel()
        self.ch.exchange_declare(exchange=exchange, exchange_type="fanout",
                                 durable=True)
        r = self.ch.queue_declare(queue="", exclusive=True, auto_delete=True)
        self.queue = r.method.queue
        self.ch.queue_bind(queue=self.queue, exchange=exchange)

    def get_all(self):
        """Every message waiting now (bodies)."""
        out = []
        while True:
            method, _props, body = self.ch.basic_get(self.queue, auto_ack=True)
            if method is None:
                return out
            out.append(body)

    def collect(self, seconds):
        """Messages arriving during the next `seconds`."""
        out = []
        deadline = time.monotonic() + seconds
        while True:
            out += self.get_all()
            left = deadline - time.monotonic()
            if left <= 0:
                return out
            self.conn.sleep(min(0.05, left))

    def wait_for(self, n, timeout=10.0):
        """Collect until at least n messages arrived (or timeout)."""
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < deadline:
            out += self.get_all()
            if len(out) < n:
                self.conn.sleep(0.05)
        return out

    def wait_quiet(self, quiet=1.0, timeout=15.0):
        """Drain until no message arrived for `quiet` seconds; returns the
        drained bodies."""
        out = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.collect(quiet)
            if not got:
                return out
            out += got
        raise Timeout("exchange never went quiet for %.1f s within %.0f s "
                      "(%d messages)" % (quiet, timeout, len(out)))

    def close(self):
        try:
            self.conn.close()
        except Exception:
            pass
