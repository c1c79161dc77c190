#!/usr/bin/env python3
"""Which Vitamin pool a key lives on behind nutcracker, and how keys spread.

nutcracker's ketama, reproduced exactly (0.5.0, src/hashkit/nc_ketama.c):
each live server gets 160 points (40 MD5 digests of "NAME-i", i = 0..39,
4 points each, scaled by weight), the key is hashed with the pool's hash
(murmur: nutcracker's murmur2; fnv1a_64: nutcracker's version of it) and
goes to the first point at or after its hash, wrapping around. The NAME is
the server's name ("HOST:PORT:1 NAME"), or HOST:PORT without one (HOST
alone when the port is 11211).

  ketama.py [-c twemproxy/nutcracker.yml] [-p POOL]
      each server's share of the ring (= of a large random key set)
  ketama.py ... KEY...
      the server each key goes to
  ketama.py ... --add NAME [--add NAME2]
      the share of keys that move when these servers are added (their
      share of the new ring; nothing else moves)
  ketama.py ... --remove NAME
      the share that moves when NAME is removed or ejected (its share)
  ketama.py ... --compare 'user:%d' [-n 100000]
      fnv1a_64 vs murmur: the split of keys PATTERN % 0..n-1 against the
      ring shares

Only the standard library. tests/e2e/test_shard.py checks that it places
every key exactly where the real nutcracker does.
"""

import argparse
import bisect
import hashlib
import re
import struct
import sys

POINTS_PER_SERVER = 160
POINTS_PER_HASH = 4
M32 = 0xFFFFFFFF


def _f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


def hash_murmur(key):
    """nutcracker's hash_murmur (murmur2, seed 0xdeadbeef * length)."""
    m = 0x5BD1E995
    n = len(key)
    h = ((0xDEADBEEF * n) & M32) ^ n
    i = 0
    while n >= 4:
        k = int.from_bytes(key[i:i + 4], "little")
        k = (k * m) & M32
        k ^= k >> 24
        k = (k * m) & M32
        h = (h * m) & M32
        h ^= k
        i += 4
        n -= 4
    if n == 3:
        h ^= key[i + 2] << 16
    if n >= 2:
        h ^= key[i + 1] << 8
    if n >= 1:
        h ^= key[i]
        h = (h * m) & M32
    h ^= h >> 13
    h = (h * m) & M32
    h ^= h >> 15
    return h


def hash_fnv1a_64(key):
    """nutcracker's hash_fnv1a_64: 32-bit arithmetic, the 64-bit offset
    basis and prime truncated to 32 bits (so the prime is 0x1b3)."""
    h = 0xCBF29CE484222325 & M32
    for ch in key:
        h ^= ch
        h = (h * (0x100000001B3 & M32)) & M32
    return h


HASHES = {"murmur": hash_murmur, "fnv1a_64": hash_fnv1a_64}


class Ring:
    """servers: [(name, weight)] in configuration order; hash: a name in
    HASHES. Ejected servers are simply left out (that is what nutcracker
    does with auto_eject_hosts)."""

    def __init__(self, servers, hash="murmur"):
        self.servers = [(n, int(w)) for n, w in servers]
        self.hash = HASHES[hash]
        total = sum(w for _, w in self.servers)
        live = len(self.servers)
        points = []
        for idx, (name, weight) in enumerate(self.servers):
            pct = _f32(_f32(weight) / _f32(total))
            per_server = int(_f32(_f32(pct * POINTS_PER_SERVER / 4 * live)
                                  + 0.0000000001) // 1) * 4
            for p in range(per_server // POINTS_PER_HASH):
                d = hashlib.md5(("%s-%d" % (name, p)).encode()).digest()
                for a in range(POINTS_PER_HASH):
                    points.append((int.from_bytes(d[4 * a:4 * a + 4],
                                                  "little"), idx))
        points.sort(key=lambda t: t[0])  # stable, as qsort on equal values
        self.points = points
        self.values = [v for v, _ in points]

    def index_for_hash(self, h):
        i = bisect.bisect_left(self.values, h)
        if i == len(self.values):
            i = 0
        return self.points[i][1]

    def server_for(self, key):
        if isinstance(key, str):
            key = key.encode()
        if len(self.servers) == 1:
            return self.servers[0][0]
        return self.servers[self.index_for_hash(self.hash(key))][0]

    def owner_arcs(self):
        """[(start, end, name)]: hashes in (start, end] go to name
        (the first arc wraps: it also covers hashes above the last point)."""
        out = []
        prev = self.values[-1] - (1 << 32)
        for v, idx in self.points:
            out.append((prev, v, self.servers[idx][0]))
            prev = v
        return out

    def shares(self):
        """{name: share of the 32-bit hash space}."""
        share = {n: 0 for n, _ in self.servers}
        for a, b, n in self.owner_arcs():
            share[n] += b - a
        return {n: s / float(1 << 32) for n, s in share.items()}


def moved_share(old, new):
    """Share of the hash space whose server differs between two rings."""
    bounds = sorted(set(old.values) | set(new.values))
    moved = 0
    prev = bounds[-1] - (1 << 32)
    for b in bounds:
        # every hash in (prev, b] has the same owner in both rings
        if old.servers[old.index_for_hash(b)][0] != \
                new.servers[new.index_for_hash(b)][0]:
            moved += b - prev
        prev = b
    return moved / float(1 << 32)


def read_config(path, pool=None):
    """(pool name, [(server name, weight)], hash) from a nutcracker YAML
    file (the first pool unless one is named)."""
    pools = {}
    order = []
    cur = None
    in_servers = False
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            m = re.match(r"^([A-Za-z0-9_.-]+):\s*$", line)
            if m:
                cur = m.group(1)
                order.append(cur)
                pools[cur] = {"servers": [], "hash": "fnv1a_64"}
                in_servers = False
                continue
            if cur is None:
                continue
            ms = re.match(r"^\s+-\s+(\S+?)(?::(\d+))?(?:\s+(\S+))?\s*(#.*)?$",
                          line)
            if in_servers and ms:
                addr, weight, name = ms.group(1), ms.group(2), ms.group(3)
                if weight is None:  # "host:port" without a weight
                    weight = "1"
                if name is None:
                    host, _, port = addr.rpartition(":")
                    name = host if port == "11211" else addr
                pools[cur]["servers"].append((name, int(weight)))
                continue
            mk = re.match(r"^\s+([a-z_]+):\s*(.*?)\s*(#.*)?$", line)
            if mk:
                in_servers = mk.group(1) == "servers"
                if mk.group(1) == "hash":
                    pools[cur]["hash"] = mk.group(2)
    if not order:
        raise ValueError("%s: no server pool" % path)
    name = pool or order[0]
    if name not in pools:
        raise ValueError("%s: no server pool %r (there are: %s)"
                         % (path, name, ", ".join(order)))
    return name, pools[name]["servers"], pools[name]["hash"]


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Where keys live behind nutcracker (ketama).",
        epilog=__doc__.split("\n\n")[2])
    ap.add_argument("-c", "--config", default="twemproxy/nutcracker.yml")
    ap.add_argument("-p", "--pool", help="server pool (default: the first)")
    ap.add_argument("--add", action="append", default=[], metavar="NAME")
    ap.add_argument("--remove", action="append", default=[], metavar="NAME")
    ap.add_argument("--compare", metavar="PATTERN")
    ap.add_argument("-n", type=int, default=100000)
    ap.add_argument("keys", nargs="*")
    a = ap.parse_args(argv)
    pool, servers, hname = read_config(a.config, a.pool)
    if hname not in HASHES:
        sys.exit("ketama.py: hash %s is not reproduced (murmur, fnv1a_64)"
                 % hname)
    ring = Ring(servers, hname)
    print("%s: %d servers, ketama, hash %s" % (pool, len(servers), hname))
    if a.keys:
        for k in a.keys:
            print("%s -> %s" % (k, ring.server_for(k)))
        return
    for n, s in ring.shares().items():
        print("  %-12s %5.1f%% of the keys" % (n, 100 * s))
    if a.add or a.remove:
        names = [n for n, _ in servers]
        for r in a.remove:
            if r not in names:
                sys.exit("ketama.py: no server %r" % r)
        new_servers = [(n, w) for n, w in servers if n not in a.remove] + \
            [(n, 1) for n in a.add]
        new = Ring(new_servers, hname)
        what = ", ".join(["+" + n for n in a.add] + ["-" + n for n in a.remove])
        print("after %s:" % what)
        for n, s in new.shares().items():
            print("  %-12s %5.1f%% of the keys" % (n, 100 * s))
        print("keys that move: %.1f%%" % (100 * moved_share(ring, new)))
    if a.compare:
        keys = [(a.compare % i).encode() for i in range(a.n)]
        shares = ring.shares()
        print("keys %r, %d of them:" % (a.compare, a.n))
        for hn in ("fnv1a_64", "murmur"):
            r = Ring(servers, hn)
            count = {n: 0 for n, _ in servers}
            for k in keys:
                count[r.server_for(k)] += 1
            dev = max(abs(count[n] / a.n - shares[n]) for n in count)
            print("  %-8s %s  (worst: %.1f points off its ring share)"
                  % (hn, "  ".join("%s %.1f%%" % (n, 100 * c / a.n)
                                   for n, c in count.items()), 100 * dev))


if __name__ == "__main__":
    main()
