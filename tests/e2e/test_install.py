"""make install / make uninstall (SPEC section 12): the layout under DESTDIR
and PREFIX, the example config installed only if absent and kept by
uninstall once edited, the man page rendering without warnings and naming
every flag, the example config naming every setting, and the systemd units
(sandboxing, reload, instances) checked by a parser of this test and by
`systemd-analyze verify` where it exists."""

import os
import re
import shutil
import stat
import subprocess

import pytest

from conftest import BIN, run_cli

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMMAND_LINE_ONLY = {"config", "print_config", "help", "version"}


def make(*args):
    p = subprocess.run(["make", "-s", "--no-print-directory", "-C", ROOT,
                        "INSTALL_BIN=" + BIN] + list(args),
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def files_under(d):
    return sorted(os.path.relpath(os.path.join(dp, f), d)
                  for dp, _, fs in os.walk(d) for f in fs)


def help_flags():
    rc, out, _ = run_cli(["--help"])
    assert rc == 0
    return re.findall(r"^  --([a-z0-9_]+)", out, re.M)


EXPECTED = ["etc/vitamin/vitamin.conf", "usr/local/bin/vitamin",
            "usr/local/lib/systemd/system/vitamin.service",
            "usr/local/lib/systemd/system/vitamin@.service",
            "usr/local/share/man/man1/vitamin.1"]


def test_install_layout_and_uninstall(tmp_path):
    dest = str(tmp_path / "root")
    make("install", "DESTDIR=" + dest)
    assert files_under(dest) == EXPECTED
    binary = os.path.join(dest, "usr/local/bin/vitamin")
    assert os.stat(binary).st_mode & stat.S_IXUSR
    assert subprocess.run([binary, "--version"], capture_output=True,
                          text=True).stdout.startswith("vitamin ")
    for u in ("vitamin.service", "vitamin@.service"):
        text = open(os.path.join(dest, "usr/local/lib/systemd/system", u)).read()
        assert "@BINDIR@" not in text and "@SYSCONFDIR@" not in text
        assert re.search(r"^ExecStart=/usr/local/bin/vitamin --config /etc/vitamin/", text, re.M)
    with open(os.path.join(ROOT, "etc/vitamin.conf")) as a, \
            open(os.path.join(dest, "etc/vitamin/vitamin.conf")) as b:
        assert a.read() == b.read()
    make("uninstall", "DESTDIR=" + dest)
    assert files_under(dest) == []


def test_config_is_installed_only_if_absent_and_kept_once_edited(tmp_path):
    dest = str(tmp_path / "root")
    make("install", "DESTDIR=" + dest)
    conf = os.path.join(dest, "etc/vitamin/vitamin.conf")
    with open(conf, "a") as f:
        f.write("memory = 1024\n")
    out = make("install", "DESTDIR=" + dest)
    assert "kept" in out
    assert open(conf).read().endswith("memory = 1024\n")
    out = make("uninstall", "DESTDIR=" + dest)
    assert "edited" in out
    assert files_under(dest) == ["etc/vitamin/vitamin.conf"]


def test_prefix(tmp_path):
    dest = str(tmp_path / "root")
    make("install", "DESTDIR=" + dest, "PREFIX=/usr")
    assert files_under(dest) == [p.replace("usr/local/", "usr/") for p in EXPECTED]
    text = open(os.path.join(dest, "usr/lib/systemd/system/vitamin.service")).read()
    assert "ExecStart=/usr/bin/vitamin " in text
    make("uninstall", "DESTDIR=" + dest, "PREFIX=/usr")
    assert files_under(dest) == []


# ---------------------------------------------------------------------------
# the man page

MAN = os.path.join(ROOT, "docs", "vitamin.1")


@pytest.mark.skipif(not shutil.which("groff"), reason="groff not installed (groff-base)")
def test_man_page_has_no_groff_warnings():
    p = subprocess.run(["groff", "-ww", "-man", "-z", MAN], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout == "" and p.stderr == "", p.stderr


@pytest.mark.skipif(not shutil.which("man"), reason="man not installed (man-db)")
def test_man_page_renders_and_names_everything():
    env = dict(os.environ, MANWIDTH="100", MAN_KEEP_FORMATTING="0")
    p = subprocess.run(["man", "--warnings", "-l", MAN], capture_output=True, text=True,
                       env=env, timeout=30)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    text = re.sub(r".\x08", "", p.stdout)
    for section in ("NAME", "SYNOPSIS", "OPTIONS", "PROTOCOLS", "CONFIGURATION FILE",
                    "SIGNALS", "ENVIRONMENT", "FILES", "EXIT STATUS"):
        assert re.search(r"^%s$" % section, text, re.M), section
    for flag in help_flags():
        assert "--" + flag in text, "vitamin(1) does not describe --%s" % flag
    for word in ("SIGTERM", "SIGINT", "SIGHUP", "VITAMIN_PASSWORD",
                 "VITAMIN_RABBITMQ_PASSWORD", "/etc/vitamin/vitamin.conf",
                 "vitamin@.service", "GET /metrics"):
        assert word in text, word
    exits = text[text.index("EXIT STATUS"):]
    for code in ("0", "1", "2"):
        assert re.search(r"^\s+%s\s" % code, exits, re.M), code


# ---------------------------------------------------------------------------
# the example config

def test_example_config_documents_every_setting_and_reads():
    path = os.path.join(ROOT, "etc", "vitamin.conf")
    text = open(path).read()
    for flag in help_flags():
        if flag in COMMAND_LINE_ONLY:
            continue
        assert re.search(r"^#?%s = " % flag, text, re.M), \
            "etc/vitamin.conf does not document %s" % flag
    rc, out, err = run_cli(["--config", path, "--print_config"])
    assert rc == 0, err
    rc, defaults, _ = run_cli(["--print_config"])
    assert out == defaults  # every line is a comment: the defaults stand
    # and each documented value is valid: uncommented (with the paths that
    # must exist taken out), the file still reads
    lines = [l[1:] if re.match(r"#[a-z_]+ = ", l) else l for l in text.splitlines()]
    lines = [l for l in lines if not re.match(r"(snapshot|snapshot_interval|rabbitmq_cacert|"
                                              r"rabbitmq_cert|rabbitmq_key|password_file|"
                                              r"rabbitmq_tls) = ", l)]
    conf = os.path.join(os.environ.get("TMPDIR", "/tmp"), "vitamin-example-%d.conf" % os.getpid())
    with open(conf, "w") as f:
        f.write("\n".join(lines) + "\n")
    try:
        rc, out, err = run_cli(["--config", conf, "--print_config"])
        assert rc == 0, err
    finally:
        os.unlink(conf)


# ---------------------------------------------------------------------------
# the systemd units

def parse_unit(text):
    """{section: {key: [values]}} of a unit file (systemd's syntax, no
    continuation lines)."""
    out, sec = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        m = re.fullmatch(r"\[([A-Za-z]+)\]", line)
        if m:
            sec = out.setdefault(m.group(1), {})
            continue
        assert sec is not None and "=" in line, "bad unit line %r" % line
        k, v = line.split("=", 1)
        sec.setdefault(k.strip(), []).append(v.strip())
    return out


@pytest.mark.parametrize("unit", ["vitamin.service", "vitamin@.service"])
def test_unit_files(unit):
    u = parse_unit(open(os.path.join(ROOT, "systemd", unit)).read())
    assert set(u) == {"Unit", "Service", "Install"}
    s = u["Service"]
    one = {k: v[-1] for k, v in s.items()}
    conf = "%i.conf" if "@" in unit else "vitamin.conf"
    assert one["ExecStart"] == "@BINDIR@/vitamin --config @SYSCONFDIR@/vitamin/" + conf
    assert one["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert one["KillSignal"] == "SIGTERM"
    assert one["Type"] == "simple"
    assert one["DynamicUser"] == "yes"
    assert one["StateDirectory"] == ("vitamin/%i" if "@" in unit else "vitamin")
    for k, v in (("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"),
                 ("PrivateTmp", "yes"), ("ProtectHome", "yes"), ("PrivateDevices", "yes"),
                 ("RestrictNamespaces", "yes"), ("MemoryDenyWriteExecute", "yes"),
                 ("CapabilityBoundingSet", ""), ("SystemCallArchitectures", "native")):
        assert one.get(k) == v, (k, one.get(k))
    # LimitNOFILE covers the default max_connections (10000) + 64
    assert int(one["LimitNOFILE"]) >= 10000 + 64
    assert "@system-service" in s["SystemCallFilter"]
    assert u["Install"]["WantedBy"] == ["multi-user.target"]
    assert "man:vitamin(1)" in u["Unit"]["Documentation"]


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(not SYSTEMD_ANALYZE, reason="systemd-analyze not installed: "
                    "the units are checked by test_unit_files only")
def test_units_pass_systemd_analyze_verify(tmp_path):
    dest = str(tmp_path / "root")
    make("install", "DESTDIR=" + dest)
    binary = os.path.join(dest, "usr/local/bin/vitamin")
    units = tmp_path / "units"
    units.mkdir()
    # the units as installed, pointing at the binary under DESTDIR (verify
    # checks that ExecStart exists); the template as one instance
    for src, name in (("vitamin.service", "vitamin.service"),
                      ("vitamin@.service", "vitamin@cache1.service")):
        text = open(os.path.join(dest, "usr/local/lib/systemd/system", src)).read()
        (units / name).write_text(text.replace("/usr/local/bin/vitamin", binary))
    for name in ("vitamin.service", "vitamin@cache1.service"):
        p = subprocess.run([SYSTEMD_ANALYZE, "verify", "--man=no", str(units / name)],
                           capture_output=True, text=True, timeout=60, cwd=str(units))
        assert p.returncode == 0 and "vitamin" not in p.stderr, p.stdout + p.stderr
