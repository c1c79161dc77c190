"""Client authentication: --password / VITAMIN_PASSWORD / --password_file."""
import os
import tempfile

from conftest import run_cli


def test_without_password_auth_is_not_enabled(server):
    c = server().client()
    assert c.cmd('auth("x")') == b"Error: Authentication is not enabled"
    assert c.cmd('set("k","v")') == b"v"


def test_commands_need_auth_except_ping_quit(server):
    s = server("--password", "s3cret")
    c = s.client()
    assert c.cmd("ping()") == b"pong"  # HAProxy's health check keeps working
    for line in ('get("k")', 'set("k","v")', 'del("k")', 'ttl("k")',
                 'expire("k",5)', "stats()"):
        assert c.cmd(line) == b"Error: Authentication required"
    assert c.cmd('auth("wrong")') == b"Error: Invalid password"
    assert c.cmd('get("k")') == b"Error: Authentication required"
    assert c.cmd('auth("s3cret")') == b"OK"
    assert c.cmd('set("k","v")') == b"v"
    assert c.cmd('get("k")') == b"v"
    st = c.stats()
    assert int(st["auth_failures"]) == 1
    assert int(st["auth_required"]) == 7
    # authentication is per connection
    other = s.client()
    assert other.cmd('get("k")') == b"Error: Authentication required"
    other.send(b"quit()\n")
    assert other.is_closed()


def test_password_prefix_and_longer_guess_fail(server):
    c = server("--password", "s3cret").client()
    for guess in ("s3cre", "s3crett", "", "S3CRET"):
        assert c.cmd('auth("%s")' % guess) == b"Error: Invalid password"
    assert c.cmd('auth("s3cret")') == b"OK"


def test_password_from_env_and_file(server):
    c = server(env={"VITAMIN_PASSWORD": "fromenv"}).client()
    assert c.cmd('get("k")') == b"Error: Authentication required"
    assert c.cmd('auth("fromenv")') == b"OK"
    with tempfile.NamedTemporaryFile("w", delete=False) as f:
        f.write("fromfile\n")
    try:
        c2 = server("--password_file", f.name).client()
        assert c2.cmd('auth("fromfile")') == b"OK"
        # the password never shows on the command line of the process
        rc, out, err = run_cli(["--password_file", "/nonexistent/pw"])
        assert rc == 2 and "password_file" in err
    finally:
        os.unlink(f.name)
