"""Vitamin snapshot files (--snapshot), in pure Python (stdlib only).

Written from docs/operations.md ("Warm restart", the file format) and the
record layout of docs/replication.md (wire format version 2), as an
independent implementation: the e2e tests read what Vitamin saved with it,
and tests/fuzz/make_corpus.py writes seed files with it.

  decode_file(data) -> dict(node_id, written_ms, records=[dict(op, key,
      value, flags, expire_ms, version, origin, exp_version, exp_origin,
      collect_ms)], total, checksum)
      raises ValueError; the XXH3 checksum is returned, not verified (the
      standard library has no XXH3).
  encode_file(node_id, written_ms, chunks, checksum=0) -> bytes; chunks is
      a list of lists of record dicts (as decode_file returns them; missing
      fields are 0 / b"").
"""

import struct

MAGIC = b"VTMSNAP\0"
VERSION = 1

OP_SET, OP_DEL, OP_EXPIRE, OP_FLUSH, OP_EXPIRED = 1, 2, 3, 4, 5
TOMB_OPS = (OP_DEL, OP_EXPIRED)

_HEAD = struct.Struct("<8sIqH")          # magic, version, written_ms, N
_BATCH1 = struct.Struct("<4sBBH")        # magic, version, kind, origin length
_BATCH2 = struct.Struct("<QQQQQH")       # incarnation, seq, aux, base, total, T
_RECORD = struct.Struct("<BHIIqQIQI")    # op K V flags expire_ms version tag exp_version exp_tag
assert _RECORD.size == 43 and _HEAD.size == 22


def _rec_bytes(r):
    key, value = r.get("key", b""), r.get("value", b"")
    return _RECORD.pack(r["op"], len(key), len(value), r.get("flags", 0),
                        r.get("expire_ms", 0), r.get("version", 0),
                        r.get("origin", 0), r.get("exp_version", 0),
                        r.get("exp_origin", 0)) + key + value


def encode_batch(origin, seq, records):
    """A wire-format v2 WRITES batch as snapshots use it."""
    out = _BATCH1.pack(b"VTMB", 2, 1, len(origin)) + origin
    out += _BATCH2.pack(0, seq, 0, 0, 0, 0)
    out += struct.pack("<I", len(records))
    return out + b"".join(_rec_bytes(r) for r in records)


def encode_file(node_id, written_ms, chunks, checksum=0, version=VERSION):
    if isinstance(node_id, str):
        node_id = node_id.encode()
    out = _HEAD.pack(MAGIC, version, written_ms, len(node_id)) + node_id
    total = 0
    for seq, recs in enumerate(chunks, 1):
        batch = encode_batch(node_id, seq, recs)
        times = [r.get("collect_ms", 0) for r in recs if r["op"] in TOMB_OPS]
        out += struct.pack("<I", len(batch)) + batch
        out += struct.pack("<I", len(times)) + b"".join(struct.pack("<q", t) for t in times)
        total += len(recs)
    return out + struct.pack("<IQQ", 0, total, checksum)


class _Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        if n > len(self.data) - self.pos:
            raise ValueError("truncated at byte %d" % len(self.data))
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def unpack(self, st):
        return st.unpack(self.take(st.size))


def _decode_batch(body, node_id, seq):
    rd = _Reader(body)
    magic, version, kind, n = rd.unpack(_BATCH1)
    if magic != b"VTMB" or version != 2 or kind != 1:
        raise ValueError("batch %d: not a v2 WRITES batch" % seq)
    if rd.take(n) != node_id:
        raise ValueError("batch %d: origin is not the file's node id" % seq)
    inc, bseq, aux, base, total, t = rd.unpack(_BATCH2)
    if (inc, bseq, aux, base, total, t) != (0, seq, 0, 0, 0, 0):
        raise ValueError("batch %d: header fields" % seq)
    count, = struct.unpack("<I", rd.take(4))
    recs = []
    for _ in range(count):
        op, k, v, flags, exp, ver, tag, ever, etag = rd.unpack(_RECORD)
        key, value = rd.take(k), rd.take(v)
        recs.append(dict(op=op, key=key, value=value, flags=flags,
                         expire_ms=exp, version=ver, origin=tag,
                         exp_version=ever, exp_origin=etag, collect_ms=0))
    if rd.pos != len(body):
        raise ValueError("batch %d: trailing bytes" % seq)
    return recs


def decode_file(data):
    rd = _Reader(data)
    magic, version, written_ms, n = rd.unpack(_HEAD)
    if magic != MAGIC:
        raise ValueError("not a Vitamin snapshot")
    if version != VERSION:
        raise ValueError("format version %d" % version)
    node_id = rd.take(n)
    records, seq = [], 0
    while True:
        length, = struct.unpack("<I", rd.take(4))
        if length == 0:
            break
        seq += 1
        recs = _decode_batch(rd.take(length), node_id, seq)
        t, = struct.unpack("<I", rd.take(4))
        tombs = [r for r in recs if r["op"] in TOMB_OPS]
        if t != len(tombs):
            raise ValueError("batch %d: %d times for %d tombstones" % (seq, t, len(tombs)))
        for r in tombs:
            r["collect_ms"], = struct.unpack("<q", rd.take(8))
        records += recs
    total, checksum = struct.unpack("<QQ", rd.take(16))
    if total != len(records):
        raise ValueError("record total %d, found %d" % (total, len(records)))
    if rd.pos != len(data):
        raise ValueError("trailing bytes")
    return dict(node_id=node_id, written_ms=written_ms, records=records,
                total=total, checksum=checksum)
