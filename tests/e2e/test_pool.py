"""The ready HAProxy configuration and the one-command local pool
(scripts/pool.sh) that the README documents."""
import os
import re
import subprocess
import tempfile

import pytest

import rabbit
from conftest import Client, free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_pair():
    """A port p such that p and p + 1 are both free (pool.sh numbers nodes
    from POOL_NODE_PORT up)."""
    import socket
    for _ in range(100):
        p = free_port()
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", p + 1))
            return p
        except OSError:
            continue
    raise AssertionError("no two consecutive free ports")


def test_haproxy_cfg_is_valid_and_checks_with_ping():
    cfg = os.path.join(ROOT, "haproxy", "haproxy.cfg")
    r = subprocess.run(["haproxy", "-c", "-f", cfg], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    text = open(cfg).read()
    assert re.search(r"^\s*mode tcp", text, re.M)
    assert re.search(r"^\s*balance roundrobin", text, re.M)
    assert 'tcp-check send "ping()' in text and "tcp-check expect string pong" in text
    assert "on-marked-down shutdown-sessions" in text
    assert "option redispatch" in text


@pytest.mark.slow
def test_pool_script_up_status_down():
    d = tempfile.mkdtemp()
    os.rmdir(d)  # pool.sh creates it and refuses an existing folder
    env = dict(os.environ, POOL_DIR=d, POOL_BROKER_PORT=str(rabbit.free_script_broker_port()),
               POOL_NODE_PORT=str(free_pair()), POOL_FRONT_PORT=str(free_port()))
    node_port = int(env["POOL_NODE_PORT"])
    front = int(env["POOL_FRONT_PORT"])
    script = os.path.join(ROOT, "scripts", "pool.sh")
    try:
        up = subprocess.run([script, "up", "2"], env=env, capture_output=True,
                            text=True, timeout=180)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "127.0.0.1 %d" % front in up.stdout
        # a write through HAProxy is readable on both nodes
        c = Client(front)
        assert c.cmd(b'set("pool","works")') == b"works"
        c.close()
        for port in (node_port, node_port + 1):
            n = Client(port)
            for _ in range(100):
                if n.cmd(b'get("pool")') == b"works":
                    break
                import time
                time.sleep(0.1)
            assert n.cmd(b'get("pool")') == b"works"
            n.close()
        st = subprocess.run([script, "status"], env=env, capture_output=True,
                            text=True, timeout=30)
        assert st.returncode == 0, st.stderr
        assert st.stdout.count("repl_state=") == 2
        digests = set(re.findall(r"items_digest=(\w+)", st.stdout))
        assert len(digests) == 1, st.stdout
    finally:
        down = subprocess.run([script, "down"], env=env, capture_output=True,
                              text=True, timeout=60)
    assert down.returncode == 0, down.stderr
    assert not os.path.exists(d)
