"""vitamin-benchmark against the real server: a quick smoke run (seconds, not
a benchmark). The load generator lives in tools/vitamin-benchmark.c and is
built next to the server binary."""

import json
import os
import re
import socket
import subprocess
import threading

import pytest

from conftest import BIN, HOST

BENCH = os.path.join(os.path.dirname(BIN), "vitamin-benchmark")


def run_bench(port, *args):
    if not os.path.exists(BENCH):
        pytest.fail("vitamin-benchmark not found at %s (run make)" % BENCH)
    p = subprocess.run([BENCH, "-h", HOST, "-p", str(port), "--json"]
                       + [str(a) for a in args],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == 0, "exit %d: %s" % (p.returncode,
                                              p.stderr.decode(errors="replace"))
    lines = p.stdout.decode().strip().splitlines()
    assert lines, "no output; stderr: %s" % p.stderr.decode(errors="replace")
    return json.loads(lines[-1])


def commands(client):
    st = client.stats()
    return int(st["cmd_get"]) + int(st["cmd_set"])


def test_benchmark_smoke(server):
    s = server()
    c = s.client()
    before = commands(c)
    res = run_bench(s.port, "-n", 2000, "-c", 4, "-P", 4)
    assert res["ops"] > 0
    assert res["ops"] == 2000
    assert res["errors"] == 0
    assert res["gets"] + res["sets"] == res["ops"]
    assert res["hits"] + res["misses"] == res["gets"]
    assert 0 < res["lat_p50_us"] <= res["lat_p99_us"] <= res["lat_max_us"]
    assert commands(c) - before >= 2000


def test_benchmark_prefill_makes_every_get_hit(server):
    s = server()
    c = s.client()
    res = run_bench(s.port, "-n", 1000, "-c", 3, "-P", 8, "-r", 200,
                    "--prefill", "--ttl", 600, "-d", 100)
    assert res["errors"] == 0 and res["prefill_errors"] == 0
    assert res["ops"] == 1000
    assert res["misses"] == 0 and res["hits"] == res["gets"] > 0
    assert int(c.stats()["curr_items"]) == 200


# --------------------------------------------------------------------------
# The memcache and redis parsers, without those servers: a tiny fake server
# answers in each protocol and sends every reply one byte per send(), so
# vitamin-benchmark sees replies cut at (nearly) every point.

SET_VITAMIN = re.compile(rb'set\("([^"]*)","([^"]*)"(?:,\d+)?\)')
GET_VITAMIN = re.compile(rb'get\("([^"]*)"\)')


def serve_fake(sock, proto, store):
    f = sock.makefile("rb")

    def reply(data):
        for i in range(len(data)):
            sock.sendall(data[i:i + 1])

    try:
        while True:
            if proto == "redis":
                head = f.readline()
                if not head:
                    return
                args = []
                for _ in range(int(head[1:])):
                    n = int(f.readline()[1:])
                    args.append(f.read(n + 2)[:-2])
                if args[0] == b"SET":
                    store[args[1]] = args[2]
                    reply(b"+OK\r\n")
                else:
                    v = store.get(args[1])
                    reply(b"$-1\r\n" if v is None
                          else b"$%d\r\n%s\r\n" % (len(v), v))
            elif proto == "memcache":
                line = f.readline()
                if not line:
                    return
                parts = line.split()
                if parts[0] == b"set":
                    store[parts[1]] = f.read(int(parts[4]) + 2)[:-2]
                    reply(b"STORED\r\n")
                else:
                    v = store.get(parts[1])
                    reply(b"END\r\n" if v is None else
                          b"VALUE %s 0 %d\r\n%s\r\nEND\r\n" % (parts[1], len(v), v))
            else:
                line = f.readline()
                if not line:
                    return
                m = SET_VITAMIN.match(line)
                if m:
                    store[m.group(1)] = m.group(2)
                    reply(m.group(2) + b"\n")
                else:
                    v = store.get(GET_VITAMIN.match(line).group(1))
                    reply(b"Error: Record not found\n" if v is None else v + b"\n")
    except (OSError, ValueError, AttributeError):
        return
    finally:
        sock.close()


@pytest.fixture
def fake_server():
    socks = []

    def start(proto):
        ls = socket.socket()
        ls.bind((HOST, 0))
        ls.listen(16)
        socks.append(ls)
        store = {}

        def accept_loop():
            while True:
                try:
                    s, _ = ls.accept()
                except OSError:
                    return
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                threading.Thread(target=serve_fake, args=(s, proto, store),
                                 daemon=True).start()

        threading.Thread(target=accept_loop, daemon=True).start()
        return ls.getsockname()[1]

    yield start
    for s in socks:
        s.close()


@pytest.mark.parametrize("proto", ["vitamin", "memcache", "redis"])
def test_benchmark_parses_replies_cut_anywhere(fake_server, proto):
    port = fake_server(proto)
    res = run_bench(port, "--protocol", proto, "-n", 300, "-c", 2, "-P", 3,
                    "-r", 40, "-d", 50, "--ttl", 60, "--ratio", "1:1")
    assert res["errors"] == 0 and res["ops"] == 300
    assert res["hits"] + res["misses"] == res["gets"] > 0
    assert res["hits"] > 0 and res["sets"] > 0
    res = run_bench(port, "--protocol", proto, "-n", 200, "-c", 2, "-P", 5,
                    "-r", 30, "-d", 700, "--prefill")
    assert res["errors"] == 0 and res["prefill_errors"] == 0
    assert res["misses"] == 0 and res["hits"] == res["gets"] > 0
