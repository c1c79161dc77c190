"""TLS to the broker (issue 6): --rabbitmq_tls and friends.

The module makes, with `openssl`, a throw-away CA, a server certificate for
"localhost" (SAN DNS:localhost, IP:127.0.0.1) signed by it, a client
certificate signed by it, and a second, unrelated CA. It starts one private
broker (rabbit.Broker, plus a rabbitmq.conf with a TLS listener on
127.0.0.1 next to the plain one) and checks that:
  - two nodes replicate over TLS with peer and host name verification on;
  - a node that trusts the wrong CA never comes up, and says why (TLS);
    so does one whose --rabbitmq_host is not in the certificate, and one
    talking TLS to the plain port;
  - --rabbitmq_tls_verify=no connects without a CA (and says it is unsafe);
  - a client certificate + key is presented and accepted, and one from
    another CA is refused by the broker;
  - the flag checks exit 2 naming the flag.

Run: cd /work/main && /usr/bin/python3 -m pytest -q tests/e2e/test_tls.py
"""

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time

import pytest

import rabbit
from rabbit import poll

pytestmark = [pytest.mark.slow, pytest.mark.replication]

_seq = itertools.count(1)
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"


# --------------------------------------------------------------------------
# certificates

_CA_CNF = """\
[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_ca
[dn]
CN = %s
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
"""

_LEAF_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = %s
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
"""


def _openssl(*args, cwd):
    r = subprocess.run([OPENSSL] + list(args), cwd=cwd, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, "openssl %s failed:\n%s%s" % (
        " ".join(args), r.stdout, r.stderr)


def _make_ca(d, name, cn):
    cnf = os.path.join(d, name + ".cnf")
    with open(cnf, "w") as f:
        f.write(_CA_CNF % cn)
    _openssl("req", "-x509", "-config", cnf, "-newkey", "ec",
             "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", name + ".key", "-out", name + ".pem", "-days", "30",
             cwd=d)


def _make_leaf(d, name, cn, ca, ext, serial):
    cnf = os.path.join(d, name + ".cnf")
    with open(cnf, "w") as f:
        f.write(_LEAF_CNF % cn)
    _openssl("req", "-new", "-config", cnf, "-newkey", "ec",
             "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", name + ".key", "-out", name + ".csr", cwd=d)
    _openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem",
             "-CAkey", ca + ".key", "-set_serial", str(serial), "-days", "30",
             "-extfile", cnf, "-extensions", ext, "-out", name + ".pem",
             cwd=d)


class Certs:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="vitamin-tls-")
        os.chmod(self.dir, 0o755)
        d = self.dir
        _make_ca(d, "ca", "Vitamin test CA")
        _make_ca(d, "otherca", "Unrelated test CA")
        _make_leaf(d, "server", "localhost", "ca", "server", 1001)
        _make_leaf(d, "client", "vitamin-client", "ca", "client", 1002)
        _make_leaf(d, "badclient", "stranger", "otherca", "client", 1003)

    def path(self, name):
        return os.path.join(self.dir, name)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------
# a broker with a TLS listener

class TLSBroker(rabbit.Broker):
    """rabbit.Broker plus a TLS listener on 127.0.0.1:tls_port, configured
    by a rabbitmq.conf in the broker's folder (RABBITMQ_CONFIG_FILE). The
    broker checks a client certificate when one is offered (verify_peer)
    but does not require one."""

    def __init__(self, certs, timeout=60.0):
        super().__init__(start=False)
        self.tls_port = rabbit.free_port(20000, 30000)
        while self.tls_port in (self.port, self.dist_port):
            self.tls_port = rabbit.free_port(20000, 30000)
        ssl_dir = os.path.join(self.dir, "ssl")
        os.mkdir(ssl_dir)
        for n in ("ca.pem", "server.pem", "server.key"):
            shutil.copy(certs.path(n), os.path.join(ssl_dir, n))
        self.conf = os.path.join(self.dir, "rabbitmq.conf")
        with open(self.conf, "w") as f:
            f.write("listeners.ssl.default = %s:%d\n"
                    "ssl_options.cacertfile = %s\n"
                    "ssl_options.certfile = %s\n"
                    "ssl_options.keyfile = %s\n"
                    "ssl_options.verify = verify_peer\n"
                    "ssl_options.fail_if_no_peer_cert = false\n"
                    % (rabbit.HOST, self.tls_port,
                       os.path.join(ssl_dir, "ca.pem"),
                       os.path.join(ssl_dir, "server.pem"),
                       os.path.join(ssl_dir, "server.key")))
        if os.geteuid() == 0:
            pw = pwd.getpwnam("rabbitmq")
            for p in (ssl_dir, self.conf) + tuple(
                    os.path.join(ssl_dir, n) for n in os.listdir(ssl_dir)):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        os.chmod(os.path.join(ssl_dir, "server.key"), 0o600)
        self.start(timeout)
        poll(lambda: rabbit.port_accepts(self.tls_port), timeout=20,
             what="TLS listener on %d (broker log:\n%s)"
             % (self.tls_port, self.log_tail()))

    def env(self):
        e = super().env()
        e["RABBITMQ_CONFIG_FILE"] = self.conf
        return e


@pytest.fixture(scope="module")
def certs():
    if not os.path.exists(OPENSSL):
        pytest.skip("openssl is not installed")
    c = Certs()
    yield c
    c.cleanup()


@pytest.fixture(scope="module")
def broker(certs):
    if not os.path.exists(rabbit.RABBITMQ_SERVER):
        pytest.skip("rabbitmq-server is not installed")
    b = None
    try:
        b = TLSBroker(certs)
        yield b
    finally:
        if b is not None:
            b.cleanup()


@pytest.fixture
def nodes(broker, certs, request):
    """Factory: nodes(n, extra) -> n started TLS nodes on a fresh exchange.
    extra is added after the TLS flags (so it can override them). Every
    node gets SIGTERM at teardown and must exit 0."""
    started = []
    exchange = "vt.tls.%d.%d" % (os.getpid(), next(_seq))

    def make(n, extra=(), tls=True):
        out = []
        for _ in range(n):
            nid = "tls%d" % (len(started) + 1)
            args = ["--rabbitmq_host", "localhost",
                    "--rabbitmq_port", broker.tls_port]
            if tls:
                args += ["--rabbitmq_tls",
                         "--rabbitmq_cacert", certs.path("ca.pem")]
            nd = rabbit.Node(nid, None, exchange, extra=args + list(extra))
            started.append(nd)
            nd.start()
            out.append(nd)
        return out

    yield make
    # in parallel: a node that never reached the broker takes its full
    # drain timeout to exit
    codes = {}
    threads = [threading.Thread(target=lambda n=nd: codes.__setitem__(
        n.node_id, n.stop())) for nd in started]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    problems = []
    for nd in started:
        rc = codes.get(nd.node_id)
        print("----- %s log -----\n%s" % (nd.node_id, nd.log_text()))
        if rc not in (0, None):
            problems.append("%s exited %r on SIGTERM" % (nd.node_id, rc))
    assert not problems, "; ".join(problems)


def _wait_up(nd, timeout=10.0):
    poll(lambda: nd.stat("repl_state") == "up", timeout=timeout,
         what="%s repl_state up (log:\n%s)" % (nd.node_id, nd.log_text(3000)))


def _run(args, timeout=10):
    return subprocess.run([rabbit.BIN] + [str(a) for a in args],
                          stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout)


# --------------------------------------------------------------------------
# tests

def test_replication_over_tls(nodes):
    a, b = nodes(2)
    _wait_up(a)
    _wait_up(b)
    assert "over TLS" in a.log_text()
    assert a.c.set("tls-key", "over-tls") == "over-tls"
    poll(lambda: b.c.get("tls-key") == "over-tls", timeout=10,
         what="the set on %s to reach %s over TLS" % (a.node_id, b.node_id))
    assert b.c.set("tls-back", "both-ways") == "both-ways"
    poll(lambda: a.c.get("tls-back") == "both-ways", timeout=10,
         what="the set on %s to reach %s over TLS" % (b.node_id, a.node_id))


def test_wrong_ca_is_refused_with_a_clear_log_line(nodes, certs):
    (nd,) = nodes(1, extra=["--rabbitmq_cacert", certs.path("otherca.pem")])
    line = poll(lambda: next((l for l in nd.log_text().splitlines()
                              if "cannot reach broker" in l and "TLS" in l),
                             None),
                timeout=10, what="a log line naming the TLS failure")
    assert "verif" in line or "handshake" in line, line
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        assert nd.stat("repl_state") != "up", nd.log_text()
        time.sleep(0.2)
    # logged once per state change, not on every retry
    n = sum(1 for l in nd.log_text().splitlines() if "TLS" in l and
            "cannot reach broker" in l)
    assert n <= 2, nd.log_text()  # one from the publisher, one from the consumer


def test_verify_off_connects_without_a_ca(nodes):
    (nd,) = nodes(1, extra=["--rabbitmq_tls", "--rabbitmq_tls_verify=no"],
                  tls=False)
    _wait_up(nd)
    assert "not checked" in nd.log_text(), nd.log_text()


def test_client_certificate(nodes, certs, broker):
    (nd,) = nodes(1, extra=["--rabbitmq_cert", certs.path("client.pem"),
                            "--rabbitmq_key", certs.path("client.key")])
    _wait_up(nd)
    # the broker saw (and, with verify_peer, checked) our certificate
    r = broker.ctl("list_connections", "-q", "--no-table-headers",
                   "peer_cert_subject", "ssl_protocol")
    assert "CN=vitamin-client" in r.stdout, (r.stdout, r.stderr)
    # at least TLS 1.2 is asked for; this OpenSSL and Erlang agree on 1.3
    assert "tlsv1.3" in r.stdout or "tlsv1.2" in r.stdout, r.stdout


def _tls_line(nd, words):
    return next((l for l in nd.log_text().splitlines()
                 if "cannot reach broker" in l and "TLS" in l and
                 all(w in l for w in words)), None)


def test_host_name_mismatch_plain_port_and_bad_client_cert_are_refused(
        nodes, broker, certs):
    # rabbitmq-c 0.11 matches --rabbitmq_host against the certificate's DNS
    # names only: an IP literal fails host name verification
    (by_ip,) = nodes(1, extra=["--rabbitmq_host", "127.0.0.1"])
    # TLS spoken to the plain AMQP port: the handshake fails
    (plain,) = nodes(1, extra=["--rabbitmq_port", broker.port])
    # a client certificate from a CA the broker does not trust (verify_peer)
    (stranger,) = nodes(1, extra=["--rabbitmq_cert",
                                  certs.path("badclient.pem"),
                                  "--rabbitmq_key",
                                  certs.path("badclient.key")])
    poll(lambda: _tls_line(by_ip, ["host name"]), timeout=10,
         what="a TLS host name log line (log:\n%s)" % by_ip.log_text())
    poll(lambda: _tls_line(plain, ["handshake"]), timeout=10,
         what="a TLS handshake log line (log:\n%s)" % plain.log_text())
    poll(lambda: _tls_line(stranger, ["--rabbitmq_cert"]), timeout=10,
         what="a TLS client certificate log line (log:\n%s)"
         % stranger.log_text())
    for nd in (by_ip, plain, stranger):
        assert nd.stat("repl_state") != "up", nd.log_text()


def test_flag_checks_exit_2(certs):
    ca = certs.path("ca.pem")
    base = ["--port", rabbit.free_port(), "--rabbitmq_host", "localhost"]
    cases = [
        (["--rabbitmq_tls"], "--rabbitmq_cacert"),
        (["--rabbitmq_tls", "--rabbitmq_cacert", ca,
          "--rabbitmq_cert", certs.path("client.pem")], "--rabbitmq_key"),
        (["--rabbitmq_tls", "--rabbitmq_cacert", ca,
          "--rabbitmq_key", certs.path("client.key")], "--rabbitmq_cert"),
        (["--rabbitmq_cacert", ca], "--rabbitmq_tls"),
        (["--rabbitmq_tls", "--rabbitmq_cacert", certs.path("missing.pem")],
         "--rabbitmq_cacert"),
        (["--rabbitmq_tls", "--rabbitmq_cacert", ca,
          "--rabbitmq_tls_verify", "maybe"], "--rabbitmq_tls_verify"),
    ]
    for extra, flag in cases:
        r = _run(base + extra)
        assert r.returncode == 2, (extra, r.returncode, r.stderr)
        first = r.stderr.splitlines()[0]
        assert flag in first, (extra, r.stderr)
    h = _run(["--help"])
    assert h.returncode == 0
    for flag in ("--rabbitmq_tls ", "--rabbitmq_cacert=PATH",
                 "--rabbitmq_cert=PATH", "--rabbitmq_key=PATH",
                 "--rabbitmq_tls_verify=yes|no"):
        assert flag in h.stdout, h.stdout
