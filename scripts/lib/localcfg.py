#!/usr/bin/env python3
"""Local copies of the shipped HAProxy and twemproxy configurations, for the
loopback demos (scripts/pool.sh, scripts/shard.sh), the tests and the
benchmarks: one implementation, so what runs locally is the shipped file
with only its addresses changed.

  haproxy SRC OUT --front NAME=PORT ... --backend NAME=SRV:PORT,SRV:PORT ...
      Copy haproxy/haproxy.cfg. Each named frontend keeps its settings and
      binds 127.0.0.1:PORT; each named backend keeps its settings and check
      and gets these servers on 127.0.0.1 (with the options of the
      original's first server line). Frontends and backends not named are
      left out, and so are global settings that need root or /run paths.

  nutcracker SRC OUT --listen POOL=PORT ... --servers POOL=NAME:PORT,...
                     [--set POOL.KEY=VALUE ...]
      Copy twemproxy/nutcracker.yml. Each named server pool listens on
      127.0.0.1:PORT and gets these servers ("127.0.0.1:PORT:1 NAME");
      --set replaces (or adds) one setting of a pool. Pools not named are
      left out.

Only the standard library; importable (tests/e2e, bench/) and runnable.
"""

import argparse
import re
import sys

HOST = "127.0.0.1"

_DROP_GLOBAL = re.compile(r"^\s*(chroot|user|group|uid|gid|pidfile|daemon|"
                          r"master-worker|stats\s+socket|nbproc)\b")
_SECTION = re.compile(r"^(global|defaults|frontend|backend|listen|peers|"
                      r"resolvers|userlist|program|cache|mailers|ring)\b"
                      r"\s*(\S*)")


def haproxy(text, fronts, backends, host=HOST):
    """fronts: {frontend name: port}; backends: {backend name: [(server
    name, port)]}. Returns the localized configuration text."""
    out = []
    section = name = None
    keep = True
    server_opts = {}
    placed = set()
    seen_fronts, seen_backends = set(), set()
    for line in text.splitlines():
        m = _SECTION.match(line)
        if m:
            section, name = m.group(1), m.group(2)
            keep = True
            if section == "frontend":
                keep = name in fronts
                seen_fronts.add(name)
            elif section == "backend":
                keep = name in backends
                seen_backends.add(name)
            elif section == "listen":
                keep = False
        if not keep:
            continue
        if section == "global" and _DROP_GLOBAL.match(line):
            continue
        if section == "frontend" and re.match(r"^\s*bind\s", line):
            out.append("    bind %s:%d" % (host, fronts[name]))
            continue
        ms = re.match(r"^\s*server\s+\S+\s+\S+(.*)$", line)
        if section == "backend" and ms:
            server_opts.setdefault(name, ms.group(1))
            if name not in placed:
                placed.add(name)
                for sname, port in backends[name]:
                    out.append("    server %s %s:%d%s"
                               % (sname, host, port, server_opts[name]))
            continue
        out.append(line)
    missing = (set(fronts) - seen_fronts) | (set(backends) - placed)
    if missing:
        raise ValueError("no such frontend, or backend with a server line: %s"
                         % ", ".join(sorted(missing)))
    return "\n".join(out) + "\n"


def nutcracker(text, listens, servers, settings=None, host=HOST):
    """listens: {pool: port}; servers: {pool: [(name, port)]};
    settings: {pool: {key: value}}. Returns the localized YAML text (the
    shipped file's comments stay)."""
    settings = settings or {}
    out = []
    pool = None
    keep = True
    in_servers = False
    done = {}
    seen = set()

    def flush_settings():
        # settings not present in the pool: added before its servers list
        for k, v in settings.get(pool, {}).items():
            if k not in done.setdefault(pool, set()):
                out.append("  %s: %s" % (k, v))
                done[pool].add(k)

    for line in text.splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+):\s*(#.*)?$", line)
        if m:
            pool = m.group(1)
            keep = pool in listens
            in_servers = False
            if keep:
                seen.add(pool)
        if not keep:
            continue
        if in_servers and re.match(r"^\s+-\s", line):
            continue  # the original servers: replaced
        if in_servers and line.strip() and not line.lstrip().startswith("#"):
            in_servers = False
        mk = re.match(r"^(\s+)([a-z_]+):\s*(.*?)\s*(#.*)?$", line)
        if mk and pool is not None and not m:
            key = mk.group(2)
            if key == "listen":
                out.append("%slisten: %s:%d" % (mk.group(1), host,
                                                listens[pool]))
                continue
            if key == "servers":
                flush_settings()
                out.append(line)
                for sname, port in servers[pool]:
                    out.append("%s  - %s:%d:1 %s" % (mk.group(1), host, port,
                                                     sname))
                in_servers = True
                continue
            if key in settings.get(pool, {}):
                out.append("%s%s: %s" % (mk.group(1), key,
                                         settings[pool][key]))
                done.setdefault(pool, set()).add(key)
                continue
        out.append(line)
    missing = set(listens) - seen
    if missing:
        raise ValueError("no such server pool: %s" % ", ".join(sorted(missing)))
    return "\n".join(out) + "\n"


def _pairs(specs, what):
    out = {}
    for s in specs or ():
        k, sep, v = s.partition("=")
        if not sep or not k or not v:
            sys.exit("localcfg: bad %s %r (want NAME=VALUE)" % (what, s))
        out[k] = v
    return out


def _server_list(v):
    out = []
    for item in v.split(","):
        n, _, p = item.rpartition(":")
        out.append((n, int(p)))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="kind", required=True)
    h = sub.add_parser("haproxy")
    h.add_argument("src")
    h.add_argument("out")
    h.add_argument("--front", action="append")
    h.add_argument("--backend", action="append")
    n = sub.add_parser("nutcracker")
    n.add_argument("src")
    n.add_argument("out")
    n.add_argument("--listen", action="append")
    n.add_argument("--servers", action="append")
    n.add_argument("--set", action="append")
    a = ap.parse_args(argv)
    with open(a.src) as f:
        text = f.read()
    if a.kind == "haproxy":
        fronts = {k: int(v) for k, v in _pairs(a.front, "--front").items()}
        backends = {k: _server_list(v)
                    for k, v in _pairs(a.backend, "--backend").items()}
        result = haproxy(text, fronts, backends)
    else:
        listens = {k: int(v) for k, v in _pairs(a.listen, "--listen").items()}
        servers = {k: _server_list(v)
                   for k, v in _pairs(a.servers, "--servers").items()}
        settings = {}
        for k, v in _pairs(a.set, "--set").items():
            p, _, key = k.partition(".")
            settings.setdefault(p, {})[key] = v
        result = nutcracker(text, listens, servers, settings)
    with open(a.out, "w") as f:
        f.write(result)


if __name__ == "__main__":
    main()
