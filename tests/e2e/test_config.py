"""--config FILE and SIGHUP (SPEC section 12): settings from a file, the
command line winning over it, FILE:LINE errors, and a reload that applies
what can change live (log level, password, idle timeout, max connections)
and names what needs a restart."""

import os
import re
import signal
import time
import urllib.request

from conftest import HOST, free_port, poll, run_cli


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def test_settings_from_file_and_command_line(server, tmp_path):
    port = free_port()
    conf = tmp_path / "vitamin.conf"
    write(conf, "# the node's settings\nport = %d\nhost = %s\nmax_value_size = 10\n"
          "log_level = warn\n" % (port + 1, HOST))
    # --port on the command line wins over the file's
    s = server("--config", str(conf), "--port", str(port), port=port,
               add_defaults=False)
    c = s.client()
    assert c.call("set", "k", "0123456789") == b"0123456789"
    assert c.call("set", "k", "0123456789x") == b"Error: Value too large"


def test_file_errors_name_file_and_line(tmp_path):
    conf = tmp_path / "bad.conf"
    write(conf, "port = 8080\n\nmemory = lots\n")
    rc, out, err = run_cli(["--config", str(conf)])
    assert rc == 2
    assert "%s:3:" % conf in err and "memory" in err, err
    write(conf, "no_such_setting = 1\n")
    rc, out, err = run_cli(["--config", str(conf)])
    assert rc == 2 and "%s:1:" % conf in err, err
    rc, out, err = run_cli(["--config", str(tmp_path / "missing.conf")])
    assert rc == 2 and "cannot read" in err, err


def test_sighup_applies_live_settings(server, tmp_path):
    port = free_port()
    conf = tmp_path / "vitamin.conf"
    write(conf, "password = first\nlog_level = warn\nidle_timeout = 300\n")
    s = server("--config", str(conf), "--host", HOST, "--port", str(port), port=port,
               add_defaults=False)
    c = s.client()
    assert c.call("get", "k") == b"Error: Authentication required"
    assert c.call("auth", "first") == b"OK"
    write(conf, "password = second\nlog_level = debug\nidle_timeout = 300\nmemory = 64\n")
    os.kill(s.pid, signal.SIGHUP)
    poll(lambda: "'password' changed" in s.stderr(), what="the reload logged")
    err = s.stderr()
    assert "'log_level' changed to debug" in err
    assert "'memory' changed; it takes effect at the next restart" in err
    # the new password for new authentications; the session stays
    assert c.call("set", "k", "v") == b"v"
    c2 = s.client()
    assert c2.call("auth", "first") == b"Error: Invalid password"
    assert c2.call("auth", "second") == b"OK"
    # debug logging is on: connection events show
    c3 = s.client()
    c3.ping()
    c3.close()
    poll(lambda: "closed" in s.stderr().split("'memory' changed")[-1],
         what="a debug line after the reload")
    # a broken file on reload changes nothing
    write(conf, "password = \n= oops\n")
    os.kill(s.pid, signal.SIGHUP)
    poll(lambda: "nothing changed" in s.stderr(), what="the failed reload logged")
    c4 = s.client()
    assert c4.call("auth", "second") == b"OK"


# --------------------------------------------------------------------------
# every flag round-trips through a config file

SECRETS = {"password", "rabbitmq_password"}
COMMAND_LINE_ONLY = {"config", "print_config", "help", "version"}


def help_flags():
    rc, out, _ = run_cli(["--help"])
    assert rc == 0
    return re.findall(r"^  --([a-z0-9_]+)", out, re.M)


def every_setting(tmp_path):
    """A value other than the default for every setting of --help."""
    for name in ("ca.pem", "cert.pem", "key.pem"):
        write(tmp_path / name, "-----BEGIN CERTIFICATE-----\n")
    write(tmp_path / "pw", "from-the-file\n")
    ports = set()
    while len(ports) < 5:  # distinct: equal ports are refused
        ports.add(str(free_port()))
    port, mc, redis, metrics, broker = sorted(ports)
    return {
        "host": HOST, "port": port, "memcache_port": mc,
        "redis_port": redis, "metrics_port": metrics,
        "memory": "64", "eviction": "ttl", "max_value_size": "4096",
        "max_connections": "77", "max_client_memory": "32", "idle_timeout": "123",
        "log_level": "warn", "node_id": 'node "one" #1',
        "snapshot": str(tmp_path / "node.snap"), "snapshot_interval": "3600",
        "tombstone_ttl": "600", "rabbitmq_host": "%s:%s" % (HOST, broker),
        "rabbitmq_port": "5673", "rabbitmq_heartbeat": "7",
        "rabbitmq_confirm_timeout": "9", "rabbitmq_queue_type": "classic",
        "rabbitmq_queue_ttl": "1200", "rabbitmq_queue_size": "16", "rabbitmq_user": "u",
        "rabbitmq_password": "broker secret", "rabbitmq_exchange": "ex",
        "rabbitmq_vhost": "/v", "rabbitmq_tls": "yes",
        "rabbitmq_cacert": str(tmp_path / "ca.pem"), "rabbitmq_cert": str(tmp_path / "cert.pem"),
        "rabbitmq_key": str(tmp_path / "key.pem"), "rabbitmq_tls_verify": "no",
        "anti_entropy_interval": "0", "outbox_size": "8", "replication_ack": "confirm",
        "password_file": str(tmp_path / "pw"), "password": "client secret",
        "sync_before_serve": "yes",
    }


def conf_text(settings):
    out = []
    for k, v in settings.items():
        if any(ch in v for ch in '#"\\') or v != v.strip():
            v = '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        out.append("%s = %s" % (k, v))
    return "\n".join(out) + "\n"


def printed(text):
    """{name: value} of --print_config's lines; secrets as 'SET'."""
    out = {}
    for line in text.splitlines():
        m = re.fullmatch(r"# (\w+) is set \(not shown\)", line)
        if m:
            out[m.group(1)] = "SET"
            continue
        if line.startswith("#"):
            continue
        k, v = [x.strip() for x in line.split("=", 1)]
        if v.startswith('"'):
            v = re.sub(r'\\(.)', r"\1", v[1:-1])
        out[k] = v
    return out


def test_every_flag_round_trips(tmp_path):
    settings = every_setting(tmp_path)
    flags = [f for f in help_flags() if f not in COMMAND_LINE_ONLY]
    assert sorted(flags) == sorted(settings), \
        "give the new flag a test value: %s" % sorted(set(flags) ^ set(settings))
    conf = tmp_path / "all.conf"
    write(conf, conf_text(settings))
    rc, out, err = run_cli(["--config", str(conf), "--print_config"])
    assert rc == 0, err
    got = printed(out)
    for k, v in settings.items():
        if k in SECRETS:
            assert got[k] == "SET", k
        else:
            assert got[k] == v, (k, got.get(k), v)
    # what it prints is a config file that reads back to the same settings
    again = tmp_path / "again.conf"
    write(again, out)
    rc, out2, err = run_cli(["--config", str(again), "--print_config"])
    assert rc == 0, err
    assert printed(out2) == got  # secrets: still set (password from password_file)
    # the command line wins, also over --print_config's view
    rc, out3, _ = run_cli(["--config", str(conf), "--memory", "99", "--print_config"])
    assert rc == 0 and printed(out3)["memory"] == "99"


def test_server_runs_with_every_setting(server, tmp_path):
    """The same file (less sync_before_serve, which would wait for a broker
    that is not there) starts a server that reports the settings."""
    settings = every_setting(tmp_path)
    del settings["sync_before_serve"]
    del settings["password_file"]
    conf = tmp_path / "all.conf"
    write(conf, conf_text(settings))
    port = int(settings["port"])
    s = server("--config", str(conf), port=port, add_defaults=False)
    c = s.client()
    assert c.call("get", "k") == b"Error: Authentication required"
    assert c.call("auth", "client secret") == b"OK"
    st = c.stats()
    assert st["max_connections"] == "77"
    assert st["limit_maxbytes"] == str(64 << 20)
    assert st["eviction"] == "ttl"
    assert st["node_id"] == settings["node_id"]
    assert st["repl_broker"] == settings["rabbitmq_host"]
    assert st["repl_queue_type"] == "classic"
    body = urllib.request.urlopen("http://%s:%s/metrics" % (HOST, settings["metrics_port"]),
                                  timeout=5).read().decode()
    assert "vitamin_max_connections 77" in body
    assert c.call("set", "k", "x" * 4097) == b"Error: Value too large"


def test_tls_port_default_follows_the_file(tmp_path):
    """rabbitmq_port given in the file is kept with rabbitmq_tls (only an
    unset port becomes 5671)."""
    write(tmp_path / "ca.pem", "x\n")
    conf = tmp_path / "tls.conf"
    write(conf, "rabbitmq_tls = yes\nrabbitmq_cacert = %s\nrabbitmq_port = 5673\n"
          % (tmp_path / "ca.pem"))
    rc, out, err = run_cli(["--config", str(conf), "--print_config"])
    assert rc == 0, err
    assert printed(out)["rabbitmq_port"] == "5673"
    write(conf, "rabbitmq_tls = yes\nrabbitmq_cacert = %s\n" % (tmp_path / "ca.pem"))
    rc, out, err = run_cli(["--config", str(conf), "--print_config"])
    assert printed(out)["rabbitmq_port"] == "5671"
