"""SPEC section 3: the command line."""

import re
import time

import pytest

from conftest import MIB, free_port, run_cli

FLAGS = ["host", "port", "memory", "eviction", "max_value_size",
         "max_connections", "log_level", "node_id", "tombstone_ttl",
         "idle_timeout", "rabbitmq_host", "rabbitmq_port", "rabbitmq_user",
         "rabbitmq_password", "rabbitmq_exchange", "rabbitmq_vhost",
         "version", "help"]

DEFAULTS = {
    "host": "127.0.0.1",
    "port": "8080",
    "memory": "200",
    "eviction": "lru",
    "max_value_size": "1048576",
    "max_connections": "10000",
    "idle_timeout": "0",
    "rabbitmq_port": "5672",
    "rabbitmq_user": "guest",
    "rabbitmq_exchange": "vitamin",
}


def _help_sections(text):
    """Map each flag to the help text from its first mention up to the next
    flag's line."""
    lines = text.splitlines()
    idx = {}
    for i, l in enumerate(lines):
        for f in re.findall(r"--([a-z_]+)", l):
            idx.setdefault(f, i)
    starts = sorted(idx.values())
    out = {}
    for f, i in idx.items():
        nxt = [s for s in starts if s > i]
        end = nxt[0] if nxt else len(lines)
        out[f] = "\n".join(lines[i:max(end, i + 1)])
    return out


def test_help_lists_every_flag_with_default():
    rc, out, err = run_cli(["--help"])
    assert rc == 0, err
    missing = [f for f in FLAGS if not re.search(r"--%s\b" % f, out)]
    assert not missing, "--help lacks %s:\n%s" % (missing, out)
    sections = _help_sections(out)
    for f, d in DEFAULTS.items():
        assert re.search(r"(?<![\w.])%s(?![\w.])" % re.escape(d),
                         sections[f]), \
            "--help shows no default %r for --%s:\n%s" % (d, f, sections[f])


def test_version():
    rc, out, err = run_cli(["--version"])
    assert rc == 0, err
    first = (out.strip() or err.strip()).splitlines()[0]
    assert "vitamin" in first.lower(), first
    assert re.search(r"\d+\.\d+", first), first


def test_version_matches_stats(server):
    rc, out, err = run_cli(["--version"])
    assert rc == 0
    c = server().client()
    v = c.stats()["version"]
    assert v in out + err, (v, out)


@pytest.mark.parametrize("args,name", [
    (["--nope"], "nope"),
    (["--nope=1"], "nope"),
    (["--Port", "1"], "Port"),
    (["-p", "1"], "-p"),
    (["stray"], "stray"),
])
def test_bad_flag_exits_2(args, name):
    rc, out, err = run_cli(args + ["--port", str(free_port())])
    assert rc == 2, (rc, out, err)
    lines = [l for l in err.splitlines() if l.strip()]
    assert lines, "nothing on stderr"
    assert name in lines[0], "first stderr line does not name %r: %r" % (
        name, err)


@pytest.mark.parametrize("args,name", [
    (["--port", "70000"], "port"),
    (["--port", "abc"], "port"),
    (["--port", "-1"], "port"),
    (["--port=65536"], "port"),
    (["--port"], "port"),
    (["--memory", "0"], "memory"),
    (["--memory", "abc"], "memory"),
    (["--memory=-5"], "memory"),
    (["--memory", "12x"], "memory"),
    (["--memory"], "memory"),
    (["--eviction", "foo"], "eviction"),
    (["--eviction="], "eviction"),
    (["--log_level", "loud"], "log_level"),
    (["--max_value_size", "abc"], "max_value_size"),
    (["--max_connections", "abc"], "max_connections"),
    (["--idle_timeout", "x"], "idle_timeout"),
    (["--tombstone_ttl", "x"], "tombstone_ttl"),
    (["--rabbitmq_port", "99999"], "rabbitmq_port"),
    (["--rabbitmq_confirm_timeout", "0"], "rabbitmq_confirm_timeout"),
    (["--rabbitmq_confirm_timeout", "3601"], "rabbitmq_confirm_timeout"),
])
def test_bad_value_exits_2(args, name):
    if name == "port":
        full = args
    else:
        # a port of our own, so a server that wrongly starts binds nothing
        # that matters
        full = ["--port", str(free_port())] + args
    rc, out, err = run_cli(full)
    assert rc == 2, (rc, out, err)
    lines = [l for l in err.splitlines() if l.strip()]
    assert lines, "nothing on stderr"
    assert name in lines[0], "first stderr line does not name %r: %r" % (
        name, err)


def test_port_equals_form(server):
    port = free_port()
    s = server("--host=127.0.0.1", "--port=%d" % port, "--log_level=warn",
               "--memory=16", port=port, add_defaults=False)
    c = s.client()
    assert c.ping() == b"pong"
    assert c.stat("limit_maxbytes") == 16 * MIB


def test_port_space_form(server):
    port = free_port()
    s = server("--host", "127.0.0.1", "--port", str(port), "--log_level",
               "warn", "--memory", "24", port=port, add_defaults=False)
    c = s.client()
    assert c.ping() == b"pong"
    assert c.stat("limit_maxbytes") == 24 * MIB


def test_default_memory_limit(server):
    c = server().client()
    assert c.stat("limit_maxbytes") == 200 * MIB


def test_max_value_size_equals_form(server):
    c = server("--max_value_size=10").client()
    assert c.call("set", b"k", b"0123456789") == b"0123456789"
    assert c.call("set", b"k", b"0123456789a") == b"Error: Value too large"


@pytest.mark.parametrize("flags", [
    ["--eviction", "lru"], ["--eviction", "ttl"], ["--eviction=noeviction"],
    ["--log_level", "error"], ["--log_level=debug"], ["--log_level", "info"],
    ["--node_id", "7"], ["--tombstone_ttl", "60"], ["--idle_timeout", "0"],
    ["--max_connections", "100"],
])
def test_valid_flags_accepted(server, flags):
    c = server(*flags).client()
    assert c.ping() == b"pong"


def test_standalone_without_broker(server):
    """No --rabbitmq_host: standalone, even with other rabbitmq flags and
    the password variable set, and no broker anywhere."""
    s = server("--rabbitmq_port", str(free_port()), "--rabbitmq_user", "u",
               "--rabbitmq_exchange", "x", "--rabbitmq_vhost", "/v",
               env={"VITAMIN_RABBITMQ_PASSWORD": "secret"})
    c = s.client()
    assert c.cmd(b'set("k","v")') == b"v"
    time.sleep(1.0)
    assert s.alive()
    assert c.cmd(b'get("k")') == b"v"
    assert c.ping() == b"pong"


def test_password_not_in_help_output_from_env():
    rc, out, err = run_cli(["--help"],
                           env={"VITAMIN_RABBITMQ_PASSWORD": "s3cr3t-xyz"})
    assert rc == 0
    assert "s3cr3t-xyz" not in out + err
