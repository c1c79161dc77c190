"""--config FILE and SIGHUP (SPEC section 12): settings from a file, the
command line winning over it, FILE:LINE errors, and a reload that applies
what can change live (log level, password, idle timeout, max connections)
and names what needs a restart."""

import os
import signal
import time

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
    assert "'log_level' changed" in err
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
