"""--metrics_port (SPEC section 12): the Prometheus exposition at GET /metrics
checked by `promtool check metrics` and scraped by a real Prometheus server;
every stats() number has its metric; latency histograms per protocol and
command; and the HTTP side treated like any hostile client: huge heads,
slowloris, garbage and pipelining get an answer or a close, and nothing
else changes."""

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from conftest import HOST, free_port, poll

PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
needs_promtool = pytest.mark.skipif(not PROMTOOL, reason="promtool not installed "
                                    "(Debian package prometheus; make test-deps)")


def http(port, raw, timeout=5.0):
    """Send raw bytes on a new connection, read until the server closes;
    return what it sent."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(raw)
        return read_all(s)


def read_all(s):
    out = b""
    while True:
        try:
            d = s.recv(65536)
        except ConnectionResetError:
            break
        if not d:
            break
        out += d
    return out


def responses(data):
    """Split a byte stream of HTTP responses (each with Content-Length)."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, "incomplete response head: %r" % data[:200]
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
        n = int(hdrs["content-length"])
        out.append((status, hdrs, rest[:n]))
        data = rest[n:]
    return out


def get_metrics(port, path="/metrics"):
    raw = http(port, b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode())
    (status, hdrs, body), = responses(raw)
    return status, hdrs, body.decode()


def parse_samples(text):
    """{metric{labels}: value} of an exposition (labels as written)."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, value = line.rsplit(" ", 1)
        out[name] = float(value)
    return out


def families(text):
    """{name: type} from the # TYPE lines."""
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))


@pytest.fixture
def mserver(server):
    def start(*args, **kw):
        mport = free_port()
        s = server("--metrics_port", mport, *args, **kw)
        s.mport = mport
        return s
    return start


@needs_promtool
def test_exposition_passes_promtool(mserver):
    s = mserver()
    c = s.client()
    assert c.call("set", "k", "v") == b"v"
    assert c.call("get", "k") == b"v"
    assert c.call("get", "nope") == b"Error: Record not found"
    status, hdrs, body = get_metrics(s.mport)
    assert status == 200
    assert hdrs["content-type"].startswith("text/plain; version=0.0.4")
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=body.encode(),
                       capture_output=True, timeout=30)
    assert p.returncode == 0 and not p.stdout and not p.stderr, \
        (p.stdout + p.stderr).decode()[-3000:]


def test_every_stat_is_a_metric(mserver):
    """Each numeric stats() line has one family (the digest excepted), and
    their values agree (units converted)."""
    s = mserver()
    c = s.client()
    for i in range(5):
        c.call("set", "k%d" % i, "v" * 100)
    c.call("get", "k1")
    c.call("get", "zzz")
    st = c.stats()
    _, _, body = get_metrics(s.mport)
    fams = families(body)
    sm = parse_samples(body)
    stat_fams = [f for f in fams if not f.startswith("vitamin_request_duration")
                 and not f.startswith("vitamin_command_duration")]
    # every STAT line but items_digest is one family
    assert len(stat_fams) == len(st) - 1, (sorted(stat_fams), sorted(st))
    for f, t in fams.items():
        assert f.startswith("vitamin_")
        if t == "counter":
            assert f.endswith("_total"), f
        elif f.endswith("_total"):
            pytest.fail("gauge %s ends in _total" % f)
    expect = {"cmd_set": "vitamin_cmd_set_total", "cmd_get": "vitamin_cmd_get_total",
              "get_hits": "vitamin_get_hits_total", "get_misses": "vitamin_get_misses_total",
              "curr_items": "vitamin_items", "limit_maxbytes": "vitamin_memory_limit_bytes",
              "total_items": "vitamin_items_stored_total", "max_connections":
              "vitamin_max_connections", "pid": "vitamin_pid"}
    for stat, metric in expect.items():
        assert sm[metric] == int(st[stat]), (stat, metric)
    assert sm["vitamin_max_rss_bytes"] >= int(st["max_rss_kb"]) * 1024
    assert sm['vitamin_build_info{version="%s"}' % st["version"]] == 1
    assert sm['vitamin_eviction_info{policy="lru"}'] == 1
    assert sm['vitamin_repl_state{state="off"}'] == 1
    assert sm['vitamin_repl_state{state="up"}'] == 0
    assert sm['vitamin_node_info{node_id="%s"}' % st["node_id"]] == 1
    assert int(st["metrics_scrapes"]) == 0
    assert sm["vitamin_metrics_scrapes_total"] == 1  # the scrape counts itself


def test_latency_histograms(mserver):
    s = mserver()
    c = s.client()
    c.pipeline([b'set("a","b")'] * 50 + [b'get("a")'] * 30 + [b"ping()", b"nonsense"])
    _, _, body = get_metrics(s.mport)
    sm = parse_samples(body)
    fams = families(body)
    assert fams["vitamin_request_duration_seconds"] == "histogram"
    assert fams["vitamin_command_duration_seconds"] == "histogram"
    cnt = 'vitamin_command_duration_seconds_count{protocol="vitamin",command="%s"}'
    assert sm[cnt % "set"] == 50
    assert sm[cnt % "get"] == 30
    assert sm[cnt % "ping"] == 1
    assert (cnt % "del") not in sm  # only commands served
    # the protocol's histogram counts every request, the bad line too
    total = sm['vitamin_request_duration_seconds_count{protocol="vitamin"}']
    assert total == 82
    buckets = [(float(m.group(1)) if m.group(1) != "+Inf" else float("inf"), v)
               for k, v in sm.items()
               for m in [re.match(r'vitamin_command_duration_seconds_bucket\{protocol="vitamin",'
                                  r'command="set",le="([^"]+)"\}', k)] if m]
    buckets.sort()
    assert len(buckets) == 21 and buckets[-1] == (float("inf"), 50)
    assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:]))  # cumulative
    assert sm['vitamin_command_duration_seconds_sum{protocol="vitamin",command="set"}'] > 0


def test_latency_by_command_on_the_memcache_and_redis_ports(mserver):
    mport, rport = free_port(), free_port()
    s = mserver("--memcache_port", mport, "--redis_port", rport)
    poll(lambda: _accepts(mport) and _accepts(rport), what="memcache and redis ports")
    m = socket.create_connection((HOST, mport))
    m.sendall(b"set a 0 0 1\r\nx\r\n" * 4 + b"get a\r\n" * 3 + b"mn\r\nbogus\r\n")
    want = b"STORED\r\n" * 4 + b"VALUE a 0 1\r\nx\r\nEND\r\n" * 3 + b"MN\r\nERROR\r\n"
    got = b""
    while len(got) < len(want):
        got += m.recv(4096)
    assert got == want
    m.close()
    r = socket.create_connection((HOST, rport))
    r.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\ny\r\n" * 2
              + b"*2\r\n$3\r\nget\r\n$1\r\nb\r\n"
              + b"*2\r\n$6\r\nCLIENT\r\n$7\r\nGETNAME\r\n")
    want = b"+OK\r\n+OK\r\n$1\r\ny\r\n$-1\r\n"
    got = b""
    while len(got) < len(want):
        got += r.recv(4096)
    assert got == want
    r.close()
    sm = parse_samples(get_metrics(s.mport)[2])
    cnt = 'vitamin_command_duration_seconds_count{protocol="%s",command="%s"}'
    assert sm[cnt % ("memcache", "set")] == 4
    assert sm[cnt % ("memcache", "get")] == 3
    assert sm[cnt % ("memcache", "mn")] == 1
    assert sm['vitamin_request_duration_seconds_count{protocol="memcache"}'] == 9
    assert sm[cnt % ("redis", "set")] == 2
    assert sm[cnt % ("redis", "get")] == 1
    assert sm[cnt % ("redis", "client")] == 1    # a subcommand counts as its container
    assert (cnt % ("redis", "del")) not in sm


def _accepts(port):
    try:
        socket.create_connection((HOST, port), timeout=1).close()
        return True
    except OSError:
        return False


def test_replication_state_and_broker_labels(mserver):
    """With a broker set (here one that is not there), the state is a
    labelled gauge and the broker in use is a label of an info metric."""
    dead = free_port()
    s = mserver("--rabbitmq_host", "%s:%d" % (HOST, dead), "--node_id", "n1")
    _, _, body = get_metrics(s.mport)
    sm = parse_samples(body)
    states = {k: v for k, v in sm.items() if k.startswith("vitamin_repl_state{")}
    assert len(states) == 5 and sum(states.values()) == 1
    assert states['vitamin_repl_state{state="connecting"}'] == 1 or \
        states['vitamin_repl_state{state="down"}'] == 1
    assert sm['vitamin_repl_broker_info{broker="%s:%d"}' % (HOST, dead)] == 1
    assert sm['vitamin_node_info{node_id="n1"}'] == 1
    for m in ("vitamin_repl_lag_last_seconds", "vitamin_repl_outbox_dropped_total",
              "vitamin_sync_failed_total", "vitamin_repl_outbox_bytes"):
        assert m in sm, m


@pytest.mark.slow
@pytest.mark.skipif(not PROMETHEUS, reason="prometheus not installed (make test-deps)")
def test_prometheus_scrapes_it(mserver, tmp_path):
    """A real Prometheus on loopback scrapes the node every 200 ms; its HTTP
    API then reports a counter this test just moved."""
    s = mserver()
    pport = free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 200ms\n  scrape_timeout: 150ms\n"
        "scrape_configs:\n  - job_name: vitamin\n    static_configs:\n"
        "      - targets: ['%s:%d']\n" % (HOST, s.mport))
    log = open(tmp_path / "prometheus.log", "wb")
    prom = subprocess.Popen(
        [PROMETHEUS, "--config.file", str(tmp_path / "prometheus.yml"),
         "--storage.tsdb.path", str(tmp_path / "data"),
         "--web.listen-address", "%s:%d" % (HOST, pport), "--log.level", "warn"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=str(tmp_path))
    try:
        def query(q):
            url = "http://%s:%d/api/v1/query?%s" % (HOST, pport, urllib.parse.urlencode({"query": q}))
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    res = json.load(r)
            except OSError:
                return None
            assert res["status"] == "success", res
            return res["data"]["result"]

        def value(q):
            r = query(q)
            return float(r[0]["value"][1]) if r else None

        poll(lambda: value('up{job="vitamin"}') == 1, timeout=30,
             what="Prometheus to scrape the node (log: %s)" % (tmp_path / "prometheus.log"))
        c = s.client()
        c.pipeline([b'set("moved","1")'] * 37)
        poll(lambda: value("vitamin_cmd_set_total") == 37, timeout=15,
             what="vitamin_cmd_set_total == 37 in Prometheus")
        poll(lambda: value('vitamin_command_duration_seconds_count{command="set"}') == 37,
             timeout=15, what="the set histogram in Prometheus")
        assert value('vitamin_repl_state{state="off"}') == 1
        # what Prometheus thinks of the scrape itself
        assert value('scrape_samples_scraped{job="vitamin"}') > 100
    finally:
        prom.terminate()
        try:
            prom.wait(20)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait()
        log.close()


# ---------------------------------------------------------------------------
# the HTTP side, treated like any other client

def test_routes_methods_and_keep_alive(mserver):
    s = mserver()
    raw = http(s.mport, b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n"
                        b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n"
                        b"POST /metrics HTTP/1.1\r\nHost: a\r\n\r\n"
                        b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
                        b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n")  # after close: ignored
    rs = responses(raw)
    assert [r[0] for r in rs] == [200, 404, 405, 200]
    assert rs[2][1]["allow"] == "GET, HEAD"
    assert rs[3][1]["connection"] == "close"
    assert "vitamin_cmd_get_total" in rs[0][2].decode()
    # HEAD: the length of the body, no body; HTTP/1.0 closes by default
    with socket.create_connection((HOST, s.mport), timeout=5) as so:
        so.sendall(b"HEAD /metrics HTTP/1.0\r\n\r\n")
        data = read_all(so)
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and rest == b""
    assert int(re.search(rb"Content-Length: (\d+)", head).group(1)) > 1000
    # a keep-alive connection serves request after request
    with socket.create_connection((HOST, s.mport), timeout=5) as so:
        for _ in range(3):
            so.sendall(b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n")
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += so.recv(65536)
            n = int(re.search(rb"Content-Length: (\d+)", buf).group(1))
            while len(buf) < buf.index(b"\r\n\r\n") + 4 + n:
                buf += so.recv(65536)
            assert buf.startswith(b"HTTP/1.1 200 OK")


def snapshot_of_data(c):
    """The stats that hostile HTTP must not move."""
    st = c.stats()
    keep = ("curr_items", "total_items", "cmd_get", "cmd_set", "protocol_errors",
            "items_digest", "bytes", "evicted", "expired", "lines_too_long")
    return {k: st[k] for k in keep}


def test_hostile_http_gets_an_error_or_a_close(mserver):
    s = mserver("--idle_timeout", "2")
    c = s.client()
    assert c.call("set", "k", "v") == b"v"
    before = snapshot_of_data(c)
    before["cmd_get"] = str(int(before["cmd_get"]) + 1)  # the get() at the end
    # a head over 8 KiB: 431, then closed (the rest is not read)
    raw = http(s.mport, b"GET /metrics HTTP/1.1\r\nHost: a\r\nX: " + b"a" * 20000 + b"\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 431 "), raw[:100]
    # garbage: 400, then closed
    for junk in (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n",
                 b"hello world\r\n\r\n", b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
                 b'set("k","hacked")\n\n', b"GET /metrics HTTP/1.1\r\n\r\n"):
        raw = http(s.mport, junk)
        assert raw.startswith(b"HTTP/1.1 400 "), (junk, raw[:100])
    raw = http(s.mport, b"GET /metrics HTTP/2.0\r\nHost: a\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 505 ")
    # a request with a body is answered, then the connection is closed
    raw = http(s.mport, b"POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
                        b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n")
    assert [r[0] for r in responses(raw)] == [405]
    # slowloris: a head dribbled a byte at a time is cut off after the
    # head timeout (here --idle_timeout, 2 s) with 408
    with socket.create_connection((HOST, s.mport), timeout=10) as so:
        t0 = time.monotonic()
        closed = b""
        for ch in b"GET /metrics HTTP/1.1\r\nHost: a\r\nX-Slow: " + b"z" * 200:
            try:
                so.sendall(bytes([ch]))
            except (BrokenPipeError, ConnectionResetError):
                break
            so.settimeout(0.1)
            try:
                closed = so.recv(4096)
            except socket.timeout:
                continue
            break
        took = time.monotonic() - t0
        assert closed.startswith(b"HTTP/1.1 408 "), closed[:100]
        assert 1.5 < took < 8, took
    # a client that sends nothing is closed by --idle_timeout
    with socket.create_connection((HOST, s.mport), timeout=10) as so:
        t0 = time.monotonic()
        assert read_all(so) == b""
        assert time.monotonic() - t0 < 6
    # the cache kept serving (a new client: the first one idled out too);
    # only the connection and metrics counters moved
    c = s.client()
    assert c.call("get", "k") == b"v"
    assert snapshot_of_data(c) == before
    st = c.stats()
    assert int(st["metrics_bad_requests"]) == 7
    assert int(st["metrics_timeouts"]) == 1
    assert int(st["metrics_not_found"]) == 1
    _, _, body = get_metrics(s.mport)
    assert parse_samples(body)["vitamin_metrics_bad_requests_total"] == 7


def test_pipelined_scrapes_are_bounded_by_back_pressure(mserver):
    """Many pipelined requests that the client does not read: the server
    stops reading it (output above 1 MiB) instead of queueing every answer,
    and still serves everyone else."""
    s = mserver()
    c = s.client()
    so = socket.create_connection((HOST, s.mport), timeout=5)
    so.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    req = b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n"
    so.setblocking(False)
    sent, blocked = 0, False
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            sent += so.send(req * 64)
        except BlockingIOError:
            blocked = True
            time.sleep(0.05)
            continue
    # the server stopped reading: what was sent sits in the kernel buffers
    assert blocked and sent < 64 << 20, sent
    poll(lambda: c.stat("reads_paused") >= 1, what="the metrics client paused")
    assert c.stat("client_memory") < 64 << 20
    assert c.ping() == b"pong"
    so.close()


def test_metrics_port_flag_errors(server):
    from conftest import run_cli
    rc, _, err = run_cli(["--metrics_port", "8080", "--port", "8080"])
    assert rc == 2 and "--metrics_port equals --port" in err, err
    rc, _, err = run_cli(["--metrics_port", "70000"])
    assert rc == 2 and "metrics_port" in err, err


@needs_promtool
def test_alert_rules():
    """docs/alerts.yml is valid and fires on what it is about
    (tests/e2e/alerts_test.yml: lag, outbox drops, broker state, failed
    transfers; evictions at 0 do not fire)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p = subprocess.run([PROMTOOL, "check", "rules", os.path.join(root, "docs", "alerts.yml")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    here = os.path.dirname(os.path.abspath(__file__))
    p = subprocess.run([PROMTOOL, "test", "rules", "alerts_test.yml"], cwd=here,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    # every metric an alert names is one that a replicated node exposes
    rules = open(os.path.join(root, "docs", "alerts.yml")).read()
    named = set(re.findall(r"\b(vitamin_[a-z_]+?)(?:_bucket)?\b", rules))
    known = known_metrics()
    assert named <= known, named - known


def known_metrics():
    """Every family of a replicated node's exposition (broker absent)."""
    from conftest import Server
    mport = free_port()
    s = Server(["--metrics_port", mport, "--rabbitmq_host", "%s:%d" % (HOST, free_port())])
    s.start()
    try:
        _, _, body = get_metrics(mport)
    finally:
        s.stop()
    return set(families(body))
