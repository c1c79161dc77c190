"""Vitamin replication wire format, version 1, in pure Python (stdlib only).

Written from docs/replication.md alone, as an independent implementation:
interop tests use it to read what Vitamin publishes and to publish batches
of their own, including deliberately malformed ones.

  decode_batch(body) -> dict(kind, origin, incarnation, seq, aux, target,
                             records=[dict(op, key, value, expire_ms,
                                           version, origin_tag)])
      raises ValueError (message starts with the status name Vitamin would
      count: bad_magic, bad_version, truncated, out_of_range, trailing_bytes)
  encode_batch(kind, origin, incarnation, seq, records, aux=0, target=b"")
      -> bytes; record dicts may omit value (b""), expire_ms, version and
      origin_tag (0).

For crafting bad input, encode_batch(..., check=False) skips the range
checks (key length 0, DEL with a value, op 9, ...) and count=... writes a
count that differs from the records given. Lengths that do not fit their
field still raise.
"""

import struct

MAGIC = b"VTMB"
VERSION = 1

KIND_WRITES = 1
KIND_SYNC_REQUEST = 2
KIND_SYNC_DATA = 3
KIND_SYNC_DONE = 4
KINDS = (KIND_WRITES, KIND_SYNC_REQUEST, KIND_SYNC_DATA, KIND_SYNC_DONE)

OP_SET = 1
OP_DEL = 2
OP_EXPIRE = 3
OPS = (OP_SET, OP_DEL, OP_EXPIRE)

MAX_ID_LEN = 255
MAX_KEY_LEN = 1024

# "<" = little-endian, no padding.
_HEAD1 = struct.Struct("<4sBBH")     # magic, version, kind, origin length
_HEAD2 = struct.Struct("<QQQH")      # incarnation, seq, aux, target length
_COUNT = struct.Struct("<I")
_RECORD = struct.Struct("<BHIqQI")   # op, K, V, expire_ms, version, tag
RECORD_FIXED = _RECORD.size          # 27

assert _HEAD1.size == 8 and _HEAD2.size == 26 and RECORD_FIXED == 27


def _bytes(x):
    return x.encode() if isinstance(x, str) else bytes(x)


class _Reader:
    """Bounds-checked reads over a body; every short read is 'truncated'."""

    def __init__(self, body):
        self.body = body
        self.pos = 0

    def left(self):
        return len(self.body) - self.pos

    def take(self, n, what):
        if n > self.left():
            raise ValueError("truncated: %s needs %d bytes at offset %d, "
                             "%d left" % (what, n, self.pos, self.left()))
        out = self.body[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, st, what):
        return st.unpack(self.take(st.size, what))


def decode_batch(body):
    """Validate the whole batch, then return it as a dict (see module doc)."""
    body = bytes(body)
    rd = _Reader(body)

    head = body[:4]
    if head != MAGIC[:len(head)]:
        raise ValueError("bad_magic: body starts with %r" % head)
    rd.take(4, "magic")
    (version,) = rd.unpack(struct.Struct("<B"), "version")
    if version != VERSION:
        raise ValueError("bad_version: %d" % version)
    (kind,) = rd.unpack(struct.Struct("<B"), "kind")
    if kind not in KINDS:
        raise ValueError("out_of_range: kind %d" % kind)
    (n,) = rd.unpack(struct.Struct("<H"), "origin length")
    if not 1 <= n <= MAX_ID_LEN:
        raise ValueError("out_of_range: origin length %d" % n)
    origin = rd.take(n, "origin id")
    incarnation, seq, aux, t = rd.unpack(_HEAD2, "incarnation/seq/aux/T")
    if t > MAX_ID_LEN:
        raise ValueError("out_of_range: target length %d" % t)
    target = rd.take(t, "target id")
    (count,) = rd.unpack(_COUNT, "count")
    if count > rd.left() // RECORD_FIXED:
        raise ValueError("truncated: count %d cannot fit in %d bytes"
                         % (count, rd.left()))

    records = []
    for i in range(count):
        op, klen, vlen, expire_ms, ver, tag = rd.unpack(_RECORD,
                                                        "record %d" % i)
        if op not in OPS:
            raise ValueError("out_of_range: record %d op %d" % (i, op))
        if not 1 <= klen <= MAX_KEY_LEN:
            raise ValueError("out_of_range: record %d key length %d"
                             % (i, klen))
        if op == OP_DEL and vlen != 0:
            raise ValueError("out_of_range: record %d DEL with value length %d"
                             % (i, vlen))
        key = rd.take(klen, "record %d key" % i)
        value = rd.take(vlen, "record %d value" % i)
        records.append(dict(op=op, key=key, value=value, expire_ms=expire_ms,
                            version=ver, origin_tag=tag))
    if rd.left():
        raise ValueError("trailing_bytes: %d after record %d"
                         % (rd.left(), count))
    return dict(kind=kind, origin=origin, incarnation=incarnation, seq=seq,
                aux=aux, target=target, records=records)


def _check(ok, msg):
    if not ok:
        raise ValueError(msg)


def encode_batch(kind, origin, incarnation, seq, records, aux=0, target=b"",
                 count=None, check=True):
    """Encode one batch; see the module doc for count= and check=."""
    try:
        return _encode(kind, origin, incarnation, seq, records, aux, target,
                       count, check)
    except struct.error as e:  # a number or length too big for its field
        raise ValueError(str(e)) from None


def _encode(kind, origin, incarnation, seq, records, aux, target, count,
            check):
    origin = _bytes(origin)
    target = _bytes(target)
    if check:
        _check(kind in KINDS, "kind %r" % (kind,))
        _check(1 <= len(origin) <= MAX_ID_LEN, "origin length %d"
               % len(origin))
        _check(len(target) <= MAX_ID_LEN, "target length %d" % len(target))
    out = [_HEAD1.pack(MAGIC, VERSION, kind, len(origin)), origin,
           _HEAD2.pack(incarnation, seq, aux, len(target)), target,
           _COUNT.pack(len(records) if count is None else count)]
    for r in records:
        op = r["op"]
        key = _bytes(r["key"])
        value = _bytes(r.get("value", b""))
        if check:
            _check(op in OPS, "op %r" % (op,))
            _check(1 <= len(key) <= MAX_KEY_LEN, "key length %d" % len(key))
            _check(op != OP_DEL or not value, "DEL with a value")
        out.append(_RECORD.pack(op, len(key), len(value),
                                r.get("expire_ms", 0), r.get("version", 0),
                                r.get("origin_tag", 0)))
        out.append(key)
        out.append(value)
    return b"".join(out)
