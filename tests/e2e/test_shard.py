"""SPEC section 8, issue 12: several replicated pools sharded behind
twemproxy. Everything is real: the nutcracker binary (Debian's 0.5.0) on a
local copy of twemproxy/nutcracker.yml, one HAProxy per pool on a local
copy of haproxy/haproxy.cfg, one private RabbitMQ broker with one exchange
per pool, vitamin nodes; only the addresses are changed (by
scripts/lib/localcfg.py, as the demo does), and the retry timeout is
shortened to RETRY_MS so that a test does not wait 30 s for a dead pool to
be tried again.

  configuration  nutcracker -t accepts the shipped file; its settings are
                 the documented ones; HAProxy fronts the three protocols
                 with their own checks; both validate once localized
  ketama.py      adding a pool moves only that pool's share of the keys,
                 removing one moves only its keys
  scenario, per protocol (pymemcache through the memcached pool, redis-py
  through the Redis pool; the latter runs when the build serves
  --redis_port), 2 pools x 2 nodes:
    1 10,000 keys written through the proxy all read back
    2 every pool holds a share (none empty, none with all), every key on
      exactly the pool ketama.py predicts; both nodes of a pool have equal
      digests and that pool's keys
    3 SIGKILL the node carrying the proxy's connection to its pool: every
      key still served through the proxy, no error (HAProxy moved the
      connection); the node comes back and catches up
    4 SIGKILL a whole pool: at most server_failure_limit errors, then the
      pool is ejected: its keys are misses, the other pool's keys hits,
      no error; writes for its keys land on the other pool; while it stays
      dead each retry costs at most server_failure_limit errors
    5 the pool comes back (empty): within a retry timeout its keys map to it
      again, all 10,000 keys written and read back, each on its own pool
  shard.sh       up 2 2, a write through the proxy, status (4 nodes, equal
                 digests per pool, the proxy's addresses), down

Run: VITAMIN_BIN=$PWD/build/vitamin /usr/bin/python3 -m pytest -q -p no:xdist tests/e2e/test_shard.py
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

import rabbit
from rabbit import NOT_FOUND, poll
from faults_util import (HAProxy, kill_node, node_logs, read_keys,
                         wait_converged, wait_up)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts", "lib"))
sys.path.insert(0, os.path.join(ROOT, "twemproxy"))
import ketama  # noqa: E402
import localcfg  # noqa: E402

NUTCRACKER = shutil.which("nutcracker") or "/usr/sbin/nutcracker"
NUTCRACKER_YML = os.path.join(ROOT, "twemproxy", "nutcracker.yml")
HAPROXY_CFG = os.path.join(ROOT, "haproxy", "haproxy.cfg")
SHARD_SH = os.path.join(ROOT, "scripts", "shard.sh")
HOST = "127.0.0.1"

KEYS = 10000
POOLS = ("pool1", "pool2")
RETRY_MS = 3000        # server_retry_timeout in the tests (shipped: 30000)
FAILURE_LIMIT = 3      # server_failure_limit, as shipped
PROXY_POOL = {"memcache": "vitamin_memcache", "redis": "vitamin_redis"}

need_nutcracker = pytest.mark.skipif(not os.path.exists(NUTCRACKER),
                                     reason="nutcracker is not installed")


def keyname(i):
    return "shard:%05d" % i


ALL_KEYS = [keyname(i) for i in range(KEYS)]


# --------------------------------------------------------------------------
# the shipped configurations

def shipped_settings():
    """{server pool: {key: value}} and {server pool: [server lines]} of
    twemproxy/nutcracker.yml, read line by line (no YAML module needed)."""
    pools, servers, cur, in_servers = {}, {}, None, False
    for line in open(NUTCRACKER_YML):
        line = line.rstrip("\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = re.match(r"^(\w+):\s*$", line)
        if m:
            cur = m.group(1)
            pools[cur], servers[cur] = {}, []
            continue
        ms = re.match(r"^\s+-\s+(.*?)\s*(#.*)?$", line)
        if in_servers and ms:
            servers[cur].append(ms.group(1))
            continue
        mk = re.match(r"^\s+(\w+):\s*(.*?)\s*(#.*)?$", line)
        if mk:
            in_servers = mk.group(1) == "servers"
            pools[cur][mk.group(1)] = mk.group(2)
    return pools, servers


@need_nutcracker
def test_nutcracker_yml_is_valid_and_documented_settings():
    r = subprocess.run([NUTCRACKER, "-t", "-c", NUTCRACKER_YML],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "syntax is ok" in r.stdout + r.stderr
    pools, servers = shipped_settings()
    assert set(pools) == {"vitamin_memcache", "vitamin_redis"}
    assert pools["vitamin_redis"].get("redis") == "true"
    assert pools["vitamin_memcache"].get("redis", "false") == "false"
    for name, st in pools.items():
        assert st["distribution"] == "ketama", name
        assert st["hash"] == "murmur", name
        assert st["auto_eject_hosts"] == "true", name
        assert int(st["server_failure_limit"]) == FAILURE_LIMIT, name
        assert int(st["server_retry_timeout"]) == 30000, name
        # longer than HAProxy needs to mark a hung node down: the next
        # check (inter 500 ms), fall 2 checks timing out (timeout check 1 s)
        # fastinter 250 ms apart
        assert int(st["timeout"]) > 500 + 2 * 1000 + 250, name
        assert int(st["server_connections"]) == 1, name  # read your writes
    # the same pool names in the same order: a key maps to the same
    # Vitamin pool whichever protocol reaches it
    names = {p: [s.split()[1] for s in servers[p]] for p in servers}
    assert names["vitamin_memcache"] == names["vitamin_redis"] == ["pool1", "pool2"]
    assert all(s.split()[0].endswith(":11211:1") for s in servers["vitamin_memcache"])
    assert all(s.split()[0].endswith(":6379:1") for s in servers["vitamin_redis"])
    # localized as the demo and these tests run it: still valid
    d = tempfile.mkdtemp(prefix="vitamin-nc-")
    try:
        cfg = os.path.join(d, "n.yml")
        localcfg.main(["nutcracker", NUTCRACKER_YML, cfg,
                       "--listen", "vitamin_memcache=22121",
                       "--servers", "vitamin_memcache=pool1:19101,pool2:19201",
                       "--listen", "vitamin_redis=22122",
                       "--servers", "vitamin_redis=pool1:19102,pool2:19202",
                       "--set", "vitamin_redis.server_retry_timeout=%d" % RETRY_MS])
        r = subprocess.run([NUTCRACKER, "-t", "-c", cfg], capture_output=True,
                           text=True, timeout=20)
        assert r.returncode == 0, r.stdout + r.stderr
        text = open(cfg).read()
        assert "127.0.0.1:19201:1 pool2" in text and "192.168." not in text
        assert "server_retry_timeout: %d" % RETRY_MS in text
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_haproxy_cfg_fronts_every_protocol_with_its_check():
    r = subprocess.run(["haproxy", "-c", "-f", HAPROXY_CFG], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 0, r.stdout + r.stderr
    text = open(HAPROXY_CFG).read()
    sections = re.split(r"(?m)^(?=\S)", text)
    body = {s.split()[0] + " " + s.split()[1]: s for s in sections
            if s.startswith(("frontend", "backend"))}
    for proto, send, expect in (("vitamin", r'"ping()\r\n"', "pong"),
                                ("memcache", r'"version\r\n"', "VERSION"),
                                ("redis", r'"PING\r\n"', "+PONG")):
        assert "backend %s_nodes" % proto in body["frontend " + proto]
        b = body["backend %s_nodes" % proto]
        assert "balance roundrobin" in b
        assert "tcp-check send %s" % send in b, proto
        assert "tcp-check expect string %s" % expect in b, proto
    assert "on-marked-down shutdown-sessions" in text
    # one pool's HAProxy as scripts/shard.sh writes it: valid
    d = tempfile.mkdtemp(prefix="vitamin-hap-")
    try:
        cfg = os.path.join(d, "h.cfg")
        localcfg.main(["haproxy", HAPROXY_CFG, cfg,
                       "--front", "vitamin=19100", "--backend", "vitamin_nodes=n1:19110,n2:19120",
                       "--front", "memcache=19101", "--backend", "memcache_nodes=n1:19111,n2:19121",
                       "--front", "redis=19102", "--backend", "redis_nodes=n1:19112,n2:19122"])
        r = subprocess.run(["haproxy", "-c", "-f", cfg], capture_output=True,
                           text=True, timeout=20)
        assert r.returncode == 0, r.stdout + r.stderr
        out = open(cfg).read()
        assert out.count("bind 127.0.0.1:") == 3 and "192.168." not in out
        assert "server n2 127.0.0.1:19122 check" in out
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_ketama_moves_only_the_changed_pools_keys():
    keys = ["user:%d" % i for i in range(20000)]
    two = ketama.Ring([("pool1", 1), ("pool2", 1)], "murmur")
    three = ketama.Ring([("pool1", 1), ("pool2", 1), ("pool3", 1)], "murmur")
    before = {k: two.server_for(k) for k in keys}
    after = {k: three.server_for(k) for k in keys}
    moved = [k for k in keys if before[k] != after[k]]
    # adding pool3: only keys that now belong to pool3 move
    assert all(after[k] == "pool3" for k in moved)
    share3 = three.shares()["pool3"]
    assert abs(len(moved) / len(keys) - share3) < 0.02
    assert abs(ketama.moved_share(two, three) - share3) < 1e-9
    assert 0.2 < share3 < 0.5  # about 1/3
    # ejecting pool1 from three pools: only pool1's keys move
    no1 = ketama.Ring([("pool2", 1), ("pool3", 1)], "murmur")
    for k in keys:
        if after[k] != "pool1":
            assert no1.server_for(k) == after[k]
    # the shipped configuration is what ketama.py reads by default
    name, servers, h = ketama.read_config(NUTCRACKER_YML)
    assert (name, servers, h) == ("vitamin_memcache", [("pool1", 1), ("pool2", 1)], "murmur")


# --------------------------------------------------------------------------
# the topology: pools behind HAProxy behind nutcracker

_redis_served = None


def redis_served():
    """Does this build serve --redis_port? (The flag came before the
    listener; the Redis test switches itself on when it is there.)"""
    global _redis_served
    if _redis_served is None:
        port, rport = rabbit.free_port(), rabbit.free_port()
        p = subprocess.Popen([rabbit.BIN, "--host", HOST, "--port", str(port),
                              "--redis_port", str(rport), "--log_level", "error"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            ok = False
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and p.poll() is None:
                if rabbit.port_accepts(port):
                    time.sleep(0.1)
                    ok = rabbit.port_accepts(rport)
                    break
                time.sleep(0.02)
            _redis_served = ok
        finally:
            p.terminate()
            p.wait(10)
    return _redis_served


_ports_taken = set()


def _port():
    """A free port below the ephemeral range (a node restarts on it), never
    one this module handed out before."""
    while True:
        p = rabbit.free_port(20000, 30000)
        if p not in _ports_taken:
            _ports_taken.add(p)
            return p


class Pool:
    """Replicated nodes on one exchange, with their three ports, behind
    their own HAProxy."""

    def __init__(self, broker, name, exchange, n=2):
        self.broker = broker
        self.name = name
        self.exchange = exchange
        self.specs = []
        for i in range(1, n + 1):
            self.specs.append(("%s-node%d" % (name, i), _port(), _port(),
                               _port()))
        self.nodes = [None] * n
        self.hap = None

    def extra(self, i):
        _, _, mport, rport = self.specs[i]
        return ["--memcache_port", str(mport), "--redis_port", str(rport)]

    def start_node(self, i):
        nid, port, _, _ = self.specs[i]
        self.nodes[i] = rabbit.Node(nid, self.broker.port, self.exchange,
                                    port=port, extra=self.extra(i)).start()
        return self.nodes[i]

    def start(self):
        for i in range(len(self.specs)):
            self.start_node(i)
        self.hap = HAProxy([(s[0], s[1]) for s in self.specs],
                           extra={"memcache": [(s[0], s[2]) for s in self.specs],
                                  "redis": [(s[0], s[3]) for s in self.specs]})
        rc, out = self.hap.check()
        assert rc == 0, out
        self.hap.start()
        return self

    def wait_ready(self, proto):
        wait_up(self.nodes)
        self.hap.wait_servers({s[0]: "up" for s in self.specs},
                              backend=proto + "_nodes")

    def live(self):
        return [nd for nd in self.nodes if nd is not None and nd.alive()]

    def connected_node(self, proto):
        """The index of the node that HAProxy's <proto> backend has a
        session to (nutcracker's single connection), or None."""
        for line in self.hap.admin("show stat").splitlines():
            f = line.split(",")
            if len(f) > 4 and f[0] == proto + "_nodes" and f[4].isdigit() \
                    and int(f[4]) > 0:
                for i, s in enumerate(self.specs):
                    if s[0] == f[1]:
                        return i
        return None

    def stop(self):
        for nd in self.nodes:
            if nd is not None:
                nd.stop()
        if self.hap is not None:
            self.hap.cleanup()


class Nutcracker:
    """nutcracker on a local copy of twemproxy/nutcracker.yml: both server
    pools, each server one Pool's HAProxy frontend."""

    def __init__(self, pools, retry_ms=RETRY_MS):
        self.dir = tempfile.mkdtemp(prefix="vitamin-nutcracker-")
        self.ports = {"memcache": rabbit.free_port(), "redis": rabbit.free_port()}
        self.stats_port = rabbit.free_port()
        with open(NUTCRACKER_YML) as f:
            text = f.read()
        listens = {PROXY_POOL[p]: port for p, port in self.ports.items()}
        servers = {PROXY_POOL[p]: [(pl.name, pl.hap.ports[p]) for pl in pools]
                   for p in self.ports}
        settings = {pp: {"server_retry_timeout": retry_ms} for pp in listens}
        self.cfg = os.path.join(self.dir, "nutcracker.yml")
        with open(self.cfg, "w") as f:
            f.write(localcfg.nutcracker(text, listens, servers, settings))
        self.log_path = os.path.join(self.dir, "nutcracker.log")
        self.proc = None

    def start(self):
        r = subprocess.run([NUTCRACKER, "-t", "-c", self.cfg],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 0, r.stdout + r.stderr
        self.proc = subprocess.Popen(
            [NUTCRACKER, "-c", self.cfg, "-a", HOST, "-s", str(self.stats_port),
             "-i", "1000", "-o", self.log_path],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        for port in self.ports.values():
            poll(lambda: rabbit.port_accepts(port) or self.proc.poll() is not None,
                 timeout=10, what="nutcracker on %d" % port)
        assert self.proc.poll() is None, self.log_text()
        return self

    def stats(self):
        with socket.create_connection((HOST, self.stats_port), timeout=5) as s:
            data = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                data += d
        return json.loads(data)

    def log_text(self, n=4000):
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
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------
# one client interface over pymemcache and redis-py

class MemcacheClient:
    def __init__(self, port):
        from pymemcache.client.base import Client
        from pymemcache.exceptions import MemcacheError
        self.errors = (MemcacheError, OSError)
        self.c = Client((HOST, port), default_noreply=False,
                        connect_timeout=10, timeout=10)

    def set_many(self, items):
        failed = self.c.set_many(items, noreply=False)
        assert not failed, "not stored: %r" % failed[:5]

    def get_many(self, keys):
        return {k.decode() if isinstance(k, bytes) else k: v.decode()
                for k, v in self.c.get_many(keys).items()}

    def set(self, key, value):
        assert self.c.set(key, value, noreply=False) is True

    def get(self, key):
        """The value (str) or None; raises one of self.errors."""
        try:
            v = self.c.get(key)
        except self.errors:
            self.c.close()  # pymemcache reconnects on the next call
            raise
        return None if v is None else v.decode()

    def close(self):
        self.c.close()


class RedisClient:
    def __init__(self, port):
        import redis
        self.errors = (redis.exceptions.RedisError, OSError)
        self.c = redis.Redis(host=HOST, port=port, socket_timeout=10,
                             socket_connect_timeout=10)

    def set_many(self, items):
        p = self.c.pipeline(transaction=False)
        for k, v in items.items():
            p.set(k, v)
        assert all(r is True for r in p.execute())

    def get_many(self, keys):
        vals = self.c.mget(keys)
        return {k: v.decode() for k, v in zip(keys, vals) if v is not None}

    def set(self, key, value):
        assert self.c.set(key, value) is True

    def get(self, key):
        v = self.c.get(key)
        return None if v is None else v.decode()

    def close(self):
        self.c.close()


CLIENTS = {"memcache": MemcacheClient, "redis": RedisClient}


def write_all(cl, value_of, chunk=500):
    for i in range(0, KEYS, chunk):
        part = ALL_KEYS[i:i + chunk]
        cl.set_many({k: value_of(k) for k in part})


def read_all(cl, chunk=200):
    out = {}
    for i in range(0, KEYS, chunk):
        out.update(cl.get_many(ALL_KEYS[i:i + chunk]))
    return out


def holders(pool):
    """The keys of ALL_KEYS that the pool's first live node holds, with
    their values (Vitamin protocol, straight to the node)."""
    nd = pool.live()[0]
    got = read_keys(nd.port, ALL_KEYS)
    return {k: v for k, v in got.items() if v != NOT_FOUND}


# --------------------------------------------------------------------------
# the scenario

@pytest.fixture
def shard(broker, request):
    """2 pools x 2 nodes (one exchange each) behind their HAProxy, and
    nutcracker in front; everything is stopped at teardown."""
    tag = "shard%d-%s" % (os.getpid(), request.node.name[-20:].strip("[]"))
    pools = [Pool(broker, name, "%s.%s" % (tag, name)) for name in POOLS]
    nut = None
    try:
        for p in pools:
            p.start()
        nut = Nutcracker(pools)
        yield pools, nut
    finally:
        if nut is not None:
            nut.stop()
        for p in pools:
            p.stop()


def _diagnostics(pools, nut):
    out = []
    for p in pools:
        out.append("== %s: HAProxy states %r" % (p.name, p.hap.server_states()))
        out.append(node_logs([nd for nd in p.nodes if nd is not None], 1500))
    out.append("== nutcracker log\n" + nut.log_text())
    return "\n".join(out)


@need_nutcracker
@pytest.mark.slow
@pytest.mark.replication
@pytest.mark.parametrize("proto", ["memcache", "redis"])
def test_shard_through_nutcracker(request, proto):
    if proto == "redis":
        pytest.importorskip("redis")
        if not redis_served():
            pytest.skip("this build does not serve --redis_port yet")
    pools, nut = request.getfixturevalue("shard")
    try:
        _scenario(pools, nut, proto)
    except BaseException:
        print(_diagnostics(pools, nut))
        raise


def _scenario(pools, nut, proto):
    t_start = time.monotonic()
    for p in pools:
        p.wait_ready(proto)
    nut.start()
    cl = CLIENTS[proto](nut.ports[proto])
    p1, p2 = pools
    ring = ketama.Ring([(p.name, 1) for p in pools], "murmur")
    tag = "mc" if proto == "memcache" else "rd"

    # 1: 10k keys written through the proxy all read back
    write_all(cl, lambda k: "v-%s-%s" % (k, tag))
    got = read_all(cl)
    wrong = [k for k in ALL_KEYS if got.get(k) != "v-%s-%s" % (k, tag)]
    assert not wrong, "%d keys read back wrong, e.g. %r" % (
        len(wrong), [(k, got.get(k)) for k in wrong[:3]])

    # 2: every pool holds a share; each key on the pool ketama.py predicts;
    # both nodes of a pool agree
    share = {}
    for p in pools:
        digests = wait_converged(p.nodes, timeout=30)
        assert len(set(digests)) == 1
        share[p.name] = set(holders(p))
        counts = [nd.stat("curr_items") for nd in p.nodes]
        assert counts == [len(share[p.name])] * len(p.nodes), counts
    s1, s2 = share["pool1"], share["pool2"]
    assert s1 and s2 and not (s1 & s2) and len(s1 | s2) == KEYS, \
        (len(s1), len(s2), len(s1 & s2))
    for name, keys in share.items():
        assert 0.3 * KEYS < len(keys) < 0.7 * KEYS, (name, len(keys))
        misplaced = [k for k in keys if ring.server_for(k) != name]
        assert not misplaced, "%s holds keys ketama.py puts elsewhere: %r" % (
            name, misplaced[:5])
    if proto == "redis":
        # the same pool names in both server pools: what Redis wrote, the
        # memcached side of the proxy finds on the same pools
        mc = MemcacheClient(nut.ports["memcache"])
        assert read_all(mc) == got
        mc.close()
    t_placed = time.monotonic()

    # 3: kill the node of pool1 that carries the proxy's connection
    victim = p1.connected_node(proto)
    assert victim is not None, "no session from nutcracker on %s: %s" % (
        p1.name, p1.hap.admin("show stat"))
    kill_node(p1.nodes[victim])
    time.sleep(0.3)  # a request in flight at the kill itself may fail
    got = read_all(cl)
    assert len(got) == KEYS, "%d keys missing right after a node died" % (KEYS - len(got))
    p1.hap.wait_servers({p1.specs[victim][0]: "down"}, backend=proto + "_nodes")
    got = read_all(cl)
    assert len(got) == KEYS
    survivor = 1 - victim
    assert p1.connected_node(proto) == survivor
    ejects = nut.stats()[PROXY_POOL[proto]]["server_ejects"]
    assert ejects == 0, "a node failure ejected a whole pool"
    # it comes back and catches up (state transfer from its peer)
    p1.start_node(victim)
    wait_up(p1.nodes)
    wait_converged(p1.nodes, timeout=30)
    p1.wait_ready(proto)
    t_node = time.monotonic()

    # 4: kill the whole of pool1
    for nd in p1.nodes:
        kill_node(nd)
    p1_keys = sorted(s1)
    errors, n, t_kill = [], 0, time.monotonic()
    while True:  # one request at a time until pool1's keys miss
        key = p1_keys[n % len(p1_keys)]
        n += 1
        try:
            v = cl.get(key)
        except cl.errors as e:
            errors.append((round(time.monotonic() - t_kill, 3), key, repr(e)))
            continue
        assert v is None, "%s of a dead pool read %r" % (key, v)
        break
    assert len(errors) <= FAILURE_LIMIT, errors
    t_ejected = time.monotonic()
    assert t_ejected - t_kill < 8, "ejection took %.1f s" % (t_ejected - t_kill)
    # ejected: pool2's keys hit, pool1's miss, no error
    got = read_all(cl)
    assert set(got) == s2
    assert all(got[k] == "v-%s-%s" % (k, tag) for k in s2)
    # a write for a pool1 key lands on pool2 meanwhile
    moved = p1_keys[:20]
    cl.set_many({k: "moved" for k in moved})
    on_p2 = read_keys(p2.nodes[0].port, moved)
    assert all(v == "moved" for v in on_p2.values()), on_p2
    # while pool1 stays dead, each retry (every RETRY_MS) costs at most
    # FAILURE_LIMIT errors: watch for a bit more than one retry
    errors2, bursts, t0 = [], [], time.monotonic()
    while time.monotonic() - t0 < RETRY_MS / 1000.0 * 1.4:
        key = p1_keys[n % len(p1_keys)]
        n += 1
        try:
            v = cl.get(key)
        except cl.errors as e:
            now = time.monotonic()
            if not bursts or now - bursts[-1][-1] > 1.0:
                bursts.append([])
            bursts[-1].append(now)
            errors2.append(repr(e))
            continue
        assert v in (None, "moved"), (key, v)
        time.sleep(0.002)
    retries = 1 + int((time.monotonic() - t_ejected) * 1000 // RETRY_MS)
    assert len(bursts) <= retries and all(len(b) <= FAILURE_LIMIT for b in bursts), \
        (errors2, [len(b) for b in bursts])
    t_dead = time.monotonic()

    # 5: pool1 comes back, empty; within a retry timeout its keys map to it
    for i in range(len(p1.nodes)):
        p1.start_node(i)
    p1.wait_ready(proto)
    probe = p1_keys[-1]

    def back_on_pool1():
        try:
            cl.set(probe, "back")
        except cl.errors:
            return False
        return read_keys(p1.live()[0].port, [probe])[probe] == "back"
    poll(back_on_pool1, timeout=RETRY_MS / 1000.0 * 2 + 5, interval=0.1,
         what="pool1 back on the ring")
    # the keys written to pool2 meanwhile are not seen any more
    got = cl.get_many(moved[:5])
    assert all(got.get(k) is None for k in moved[:5]), got
    write_all(cl, lambda k: "w-%s-%s" % (k, tag))
    got = read_all(cl)
    assert len(got) == KEYS and all(got[k] == "w-%s-%s" % (k, tag) for k in ALL_KEYS)
    wait_converged(p1.nodes, timeout=30)
    back = holders(p1)
    assert set(back) == s1, "pool1 got %d keys back, had %d" % (len(back), len(s1))
    cl.close()
    t_end = time.monotonic()
    print("timings (s): placed %.1f, node kill %.1f, pool kill %.1f (ejected "
          "after %.2f s, %d errors), back %.1f"
          % (t_placed - t_start, t_node - t_placed, t_dead - t_node,
             t_ejected - t_kill, len(errors), t_end - t_dead))


# --------------------------------------------------------------------------
# the demo script

def _free_base():
    """A port base for shard.sh with 2 pools x 2 nodes: every port it
    uses is free now."""
    for _ in range(200):
        base = rabbit.free_port(20000, 30000) // 100 * 100
        ports = [base + 100 * p + k for p in (1, 2) for k in (0, 1, 2)] + \
                [base + 100 * p + 10 * n + k for p in (1, 2) for n in (1, 2)
                 for k in (0, 1, 2)]
        if all(rabbit.port_is_free(x) for x in ports):
            return base
    raise AssertionError("no free port range for shard.sh")


@need_nutcracker
@pytest.mark.slow
@pytest.mark.replication
def test_shard_script_up_status_down():
    d = tempfile.mkdtemp()
    os.rmdir(d)  # shard.sh creates it and refuses an existing folder
    base = _free_base()
    proxy = rabbit.free_port(20000, 30000)
    while not rabbit.port_is_free(proxy + 1):
        proxy = rabbit.free_port(20000, 30000)
    env = dict(os.environ, SHARD_DIR=d, SHARD_BASE_PORT=str(base),
               SHARD_PROXY_PORT=str(proxy),
               SHARD_STATS_PORT=str(rabbit.free_port(20000, 30000)),
               SHARD_BROKER_PORT=str(rabbit.free_script_broker_port()))
    try:
        up = subprocess.run([SHARD_SH, "up", "2", "2"], env=env, capture_output=True,
                            text=True, timeout=180)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "127.0.0.1:%d" % proxy in up.stdout
        cl = MemcacheClient(proxy)
        cl.set_many({"demo:%d" % i: "x" for i in range(200)})
        assert len(cl.get_many(["demo:%d" % i for i in range(200)])) == 200
        cl.close()

        def settled():
            st = subprocess.run([SHARD_SH, "status"], env=env, capture_output=True,
                                text=True, timeout=30)
            assert st.returncode == 0, st.stderr
            return st.stdout if (st.stdout.count("digests agree") == 2
                                 and st.stdout.count("repl_state=up") == 4
                                 and "all pools: 200 keys" in st.stdout) else None
        out = poll(settled, timeout=30, interval=0.5, what="shard.sh status settles")
        for p in (1, 2):
            assert "HAProxy 127.0.0.1:%d" % (base + 100 * p) in out
        assert "nutcracker: memcached 127.0.0.1:%d" % proxy in out
        counts = [int(x) for x in re.findall(r"^pool\d: (\d+) keys", out, re.M)]
        assert len(counts) == 2 and all(0 < c < 200 for c in counts), out
    finally:
        down = subprocess.run([SHARD_SH, "down"], env=env, capture_output=True,
                              text=True, timeout=60)
    assert down.returncode == 0, down.stderr
    assert not os.path.exists(d)
