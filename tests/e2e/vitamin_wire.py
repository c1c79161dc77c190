"""Vitamin replication wire format, version 2 (and version 1), in pure
Python (stdlib only).

Written from docs/replication.md alone, as an independent implementation:
interop tests use it to read what Vitamin publishes and to publish batches
of their own, including deliberately malformed ones and version-1 batches
of an old node.

  decode_batch(body) -> dict(version, kind, origin, incarnation, seq, aux,
                             base, total, target,
                             records=[dict(op, key, value, client_flags,
                                           expire_ms, version, origin_tag,
                                           exp_version, exp_origin_tag)])
      Reads version 2 and version 1. A version-1 batch is returned as
      version 2 reads it: base = total = 0, and every record has
      client_flags 0 and its expiry stamped like its value (exp_version =
      version, exp_origin_tag = origin_tag).
      Raises ValueError whose message starts with the status name Vitamin
      would count: bad_magic, bad_version, truncated, out_of_range,
      trailing_bytes (the same status Vitamin reports for the same bytes).
  encode_batch(kind, origin, incarnation, seq, records, aux=0, target=b"",
               base=0, total=0, version=2) -> bytes
      Record dicts may omit value (b""), client_flags, expire_ms, version
      and origin_tag (0); exp_version and exp_origin_tag default to the
      record's version and origin_tag (one stamp for both registers, as a
      set makes them). version=1 writes the old layout, as a version-1 node
      would; fields that layout cannot carry (base, total, client flags, an
      expiry stamp different from the value stamp) raise ValueError.

For crafting bad input, encode_batch(..., check=False) skips the range
checks (key length 0, DEL with a value, op 9, flags on a DEL, a NODE
record in a WRITES batch, ...) and count=... writes a count that differs
from the records given. Lengths and numbers that do not fit their field
still raise.

Range-digest messages (version 2 only): kinds DIGESTS, RANGES and ROOT
carry NODE records and nothing else, and NODE records appear in no other
kind. A NODE record names a node of the range-digest tree: its key is
node_key(level, index) (u8 level < 5, u32 index < 16**level), its value is
empty (RANGES), one digest (ROOT: digest_value(d), 8 bytes) or the 16
children's digests (DIGESTS: children_value([d0, ..., d15]), 128 bytes);
its client flags, expire_ms and stamps are 0. node_record(level, index,
value) builds one; node_of(key) and digests_of(value) read them back.

Key-summary messages (version 2 only): kind SUMMARY carries SUMS records
and kind WANTS HASHES records, and nothing else; those ops appear in no
other kind. Neither has a key; a SUMS record's value is n >= 1 entries of
32 bytes (key hash u64, version u64, origin tag u32, exp_version u64, exp
origin tag u32), a HASHES record's n >= 1 key hashes of 8 bytes; their
client flags, expire_ms and stamps are 0. sums_record(entries) and
hashes_record(hashes) build them (an entry is a dict with hash, version,
origin_tag, exp_version, exp_origin_tag); sums_of(value) and
hashes_of(value) read them back.
"""

import struct

MAGIC = b"VTMB"
VERSION = 2            # what encode_batch writes by default
VERSIONS = (1, 2)      # what decode_batch reads

KIND_WRITES = 1
KIND_SYNC_REQUEST = 2
KIND_SYNC_DATA = 3
KIND_SYNC_DONE = 4
KIND_DIGESTS = 5   # version 2 only: a peer's digests of the nodes asked for
KIND_RANGES = 6    # version 2 only: nodes asked for (children, or items)
KIND_ROOT = 7      # version 2 only: anti-entropy, a node's root digest
KIND_SUMMARY = 8   # version 2 only: a requester's key summaries
KIND_WANTS = 9     # version 2 only: keys asked back from the requester
KINDS_BY_VERSION = {
    1: (KIND_WRITES, KIND_SYNC_REQUEST, KIND_SYNC_DATA, KIND_SYNC_DONE),
    2: (KIND_WRITES, KIND_SYNC_REQUEST, KIND_SYNC_DATA, KIND_SYNC_DONE,
        KIND_DIGESTS, KIND_RANGES, KIND_ROOT, KIND_SUMMARY, KIND_WANTS)}
KINDS = KINDS_BY_VERSION[VERSION]
NODE_KINDS = (KIND_DIGESTS, KIND_RANGES, KIND_ROOT)  # NODE records only

OP_SET = 1
OP_DEL = 2
OP_EXPIRE = 3
OP_FLUSH = 4     # version 2 only
OP_EXPIRED = 5   # version 2 only
OP_NODE = 6      # version 2 only, and only in NODE_KINDS
OP_SUMS = 7      # version 2 only, and only in SUMMARY
OP_HASHES = 8    # version 2 only, and only in WANTS
OPS = {1: (OP_SET, OP_DEL, OP_EXPIRE),
       2: (OP_SET, OP_DEL, OP_EXPIRE, OP_FLUSH, OP_EXPIRED, OP_NODE,
           OP_SUMS, OP_HASHES)}
VALUE_OPS = (OP_SET, OP_EXPIRE)   # the ops that carry a value and flags
KEYLESS_OPS = (OP_FLUSH, OP_SUMS, OP_HASHES)
SIZED_OPS = (OP_NODE, OP_SUMS, OP_HASHES)  # own value sizes, zero stamps
SUM_SIZE = 32
HASH_SIZE = 8


def kind_op(kind):
    """The one op a kind's records must have, or None (any of SET ..
    EXPIRED)."""
    if kind in NODE_KINDS:
        return OP_NODE
    return {KIND_SUMMARY: OP_SUMS, KIND_WANTS: OP_HASHES}.get(kind)


def op_fits_kind(op, kind):
    want = kind_op(kind)
    return op == want if want is not None else op <= OP_EXPIRED

# the range-digest tree (include/rdigest.h): levels 0..4, 16**level nodes
NODE_KEY_LEN = 5                  # level u8 + index u32
NODE_LEVELS = 5
NODE_FANOUT = 16
NODE_VALUE_LENS = (0, 8, 128)     # RANGES, ROOT, DIGESTS

MAX_ID_LEN = 255
MAX_KEY_LEN = 1024

# "<" = little-endian, no padding.
_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_HEAD1 = struct.Struct("<4sBBH")     # magic, version, kind, origin length
_INC_SEQ_AUX = struct.Struct("<QQQ")
_BASE_TOTAL = struct.Struct("<QQ")   # version 2 only
_COUNT = struct.Struct("<I")
# op, K, V, client flags, expire_ms, version, origin tag, exp_version,
# exp origin tag
_RECORD2 = struct.Struct("<BHIIqQIQI")
# op, K, V, expire_ms, version, origin tag
_RECORD1 = struct.Struct("<BHIqQI")
RECORD_FIXED = _RECORD2.size          # 43
RECORD_FIXED_V1 = _RECORD1.size       # 27
_RECORD = {1: _RECORD1, 2: _RECORD2}

assert RECORD_FIXED == 43 and RECORD_FIXED_V1 == 27


def header_size(origin_len, target_len, version=VERSION):
    """Bytes before the first record."""
    return (54 if version == 2 else 38) + origin_len + target_len


def record_size(key_len, value_len, version=VERSION):
    return _RECORD[version].size + key_len + value_len


def _bytes(x):
    return x.encode() if isinstance(x, str) else bytes(x)


# ---- NODE records --------------------------------------------------------

_NODE_KEY = struct.Struct("<BI")


def node_key(level, index):
    """The 5-byte key of node `index` of tree level `level` (not checked:
    node_ok tells whether it is in the tree)."""
    return _NODE_KEY.pack(level, index)


def node_of(key):
    """(level, index) of a NODE record's key."""
    return _NODE_KEY.unpack(_bytes(key))


def node_ok(key, value_len):
    """Is this a NODE record's valid key and value length?"""
    if len(key) != NODE_KEY_LEN or value_len not in NODE_VALUE_LENS:
        return False
    level, index = node_of(key)
    return level < NODE_LEVELS and index < NODE_FANOUT ** level


def digest_value(d):
    """A ROOT record's value: one digest, u64 little-endian."""
    return struct.pack("<Q", d)


def children_value(digests):
    """A DIGESTS record's value: the 16 children's digests, in order."""
    if len(digests) != NODE_FANOUT:
        raise ValueError("%d children, not %d" % (len(digests), NODE_FANOUT))
    return struct.pack("<16Q", *digests)


def digests_of(value):
    """The digests in a NODE record's value (0, 1 or 16 of them)."""
    value = _bytes(value)
    return list(struct.unpack("<%dQ" % (len(value) // 8), value))


def node_record(level, index, value=b""):
    """A NODE record dict for encode_batch."""
    return dict(op=OP_NODE, key=node_key(level, index), value=_bytes(value))


# ---- SUMS and HASHES records ---------------------------------------------

_SUM = struct.Struct("<QQIQI")  # hash, version, origin, exp_version, exp origin
assert _SUM.size == SUM_SIZE


def sums_record(entries):
    """A SUMS record dict for encode_batch; each entry a dict with hash,
    version, origin_tag and (default: like the value's) exp_version,
    exp_origin_tag."""
    return dict(op=OP_SUMS, value=b"".join(
        _SUM.pack(e["hash"], e.get("version", 0), e.get("origin_tag", 0),
                  e.get("exp_version", e.get("version", 0)),
                  e.get("exp_origin_tag", e.get("origin_tag", 0)))
        for e in entries))


def sums_of(value):
    """The entries of a SUMS record's value, as dicts."""
    value = _bytes(value)
    return [dict(zip(("hash", "version", "origin_tag", "exp_version",
                      "exp_origin_tag"), _SUM.unpack_from(value, i)))
            for i in range(0, len(value), SUM_SIZE)]


def hashes_record(hashes):
    """A HASHES record dict for encode_batch."""
    return dict(op=OP_HASHES, value=struct.pack("<%dQ" % len(hashes),
                                                *hashes))


def hashes_of(value):
    """The key hashes of a HASHES record's value."""
    value = _bytes(value)
    return list(struct.unpack("<%dQ" % (len(value) // HASH_SIZE), value))


def sized_ok(op, key, value_len):
    """Is this a NODE, SUMS or HASHES record's valid key and value
    length?"""
    if op == OP_SUMS:
        return value_len > 0 and value_len % SUM_SIZE == 0
    if op == OP_HASHES:
        return value_len > 0 and value_len % HASH_SIZE == 0
    return node_ok(key, value_len)


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


def _decode_record(rd, version, kind, i):
    """One record, checked in the order of docs/replication.md."""
    if version == 1:
        op, klen, vlen, expire_ms, ver, tag = rd.unpack(_RECORD1,
                                                        "record %d" % i)
        flags, exp_ver, exp_tag = 0, ver, tag
    else:
        (op, klen, vlen, flags, expire_ms, ver, tag, exp_ver,
         exp_tag) = rd.unpack(_RECORD2, "record %d" % i)
    if op not in OPS[version]:
        raise ValueError("out_of_range: record %d op %d (version %d)"
                         % (i, op, version))
    if not op_fits_kind(op, kind):
        raise ValueError("out_of_range: record %d op %d in a batch of kind "
                         "%d" % (i, op, kind))
    if op in KEYLESS_OPS:
        if klen != 0:
            raise ValueError("out_of_range: record %d op %d with key "
                             "length %d" % (i, op, klen))
    elif not 1 <= klen <= MAX_KEY_LEN:
        raise ValueError("out_of_range: record %d key length %d" % (i, klen))
    if op not in VALUE_OPS and op not in SIZED_OPS and vlen != 0:
        raise ValueError("out_of_range: record %d op %d with value length %d"
                         % (i, op, vlen))
    key = rd.take(klen, "record %d key" % i)
    # a NODE, SUMS or HASHES record's key, value length and zero fields are
    # checked once its key is there, before its value is looked for
    if op in SIZED_OPS:
        if not sized_ok(op, key, vlen):
            raise ValueError("out_of_range: record %d op %d key %s with "
                             "value length %d" % (i, op, key.hex(), vlen))
        if expire_ms or ver or tag or exp_ver or exp_tag:
            raise ValueError("out_of_range: record %d op %d with an expiry "
                             "or a stamp" % (i, op))
    value = rd.take(vlen, "record %d value" % i)
    # checked after the key and value are known to be there (as Vitamin
    # does), although the field comes before them
    if op not in VALUE_OPS and flags != 0:
        raise ValueError("out_of_range: record %d op %d with client flags "
                         "%#x" % (i, op, flags))
    return dict(op=op, key=key, value=value, client_flags=flags,
                expire_ms=expire_ms, version=ver, origin_tag=tag,
                exp_version=exp_ver, exp_origin_tag=exp_tag)


def decode_batch(body):
    """Validate the whole batch, then return it as a dict (see module doc)."""
    body = bytes(body)
    rd = _Reader(body)

    head = body[:4]
    if head != MAGIC[:len(head)]:
        raise ValueError("bad_magic: body starts with %r" % head)
    rd.take(4, "magic")
    (version,) = rd.unpack(_U8, "version")
    if version not in VERSIONS:
        raise ValueError("bad_version: %d" % version)
    (kind,) = rd.unpack(_U8, "kind")
    if kind not in KINDS_BY_VERSION[version]:
        raise ValueError("out_of_range: kind %d (version %d)"
                         % (kind, version))
    (n,) = rd.unpack(_U16, "origin length")
    if not 1 <= n <= MAX_ID_LEN:
        raise ValueError("out_of_range: origin length %d" % n)
    origin = rd.take(n, "origin id")
    incarnation, seq, aux = rd.unpack(_INC_SEQ_AUX, "incarnation/seq/aux")
    base = total = 0
    if version == 2:
        base, total = rd.unpack(_BASE_TOTAL, "base/total")
    (t,) = rd.unpack(_U16, "target length")
    if t > MAX_ID_LEN:
        raise ValueError("out_of_range: target length %d" % t)
    target = rd.take(t, "target id")
    (count,) = rd.unpack(_COUNT, "count")
    if count > rd.left() // _RECORD[version].size:
        raise ValueError("truncated: count %d cannot fit in %d bytes"
                         % (count, rd.left()))

    records = [_decode_record(rd, version, kind, i) for i in range(count)]
    if rd.left():
        raise ValueError("trailing_bytes: %d after record %d"
                         % (rd.left(), count))
    return dict(version=version, kind=kind, origin=origin,
                incarnation=incarnation, seq=seq, aux=aux, base=base,
                total=total, target=target, records=records)


def _check(ok, msg):
    if not ok:
        raise ValueError(msg)


def encode_batch(kind, origin, incarnation, seq, records, aux=0, target=b"",
                 base=0, total=0, count=None, check=True, version=VERSION):
    """Encode one batch; see the module doc for count=, check= and
    version=."""
    try:
        return _encode(kind, origin, incarnation, seq, records, aux, target,
                       base, total, count, check, version)
    except struct.error as e:  # a number or length too big for its field
        raise ValueError(str(e)) from None


def _encode(kind, origin, incarnation, seq, records, aux, target, base,
            total, count, check, version):
    _check(version in VERSIONS, "cannot encode version %r" % (version,))
    origin = _bytes(origin)
    target = _bytes(target)
    if check:
        _check(kind in KINDS_BY_VERSION[version],
               "kind %r in version %d" % (kind, version))
        _check(1 <= len(origin) <= MAX_ID_LEN, "origin length %d"
               % len(origin))
        _check(len(target) <= MAX_ID_LEN, "target length %d" % len(target))
    out = [_HEAD1.pack(MAGIC, version, kind, len(origin)), origin,
           _INC_SEQ_AUX.pack(incarnation, seq, aux)]
    if version == 2:
        out.append(_BASE_TOTAL.pack(base, total))
    else:
        _check(base == 0 and total == 0,
               "version 1 has no base/total fields")
    out += [_U16.pack(len(target)), target,
            _COUNT.pack(len(records) if count is None else count)]
    for r in records:
        op = r["op"]
        key = _bytes(r.get("key", b""))
        value = _bytes(r.get("value", b""))
        flags = r.get("client_flags", 0)
        ver = r.get("version", 0)
        tag = r.get("origin_tag", 0)
        exp_ver = r.get("exp_version", ver)
        exp_tag = r.get("exp_origin_tag", tag)
        if check:
            _check(op in OPS[version], "op %r in version %d" % (op, version))
            _check(op_fits_kind(op, kind),
                   "op %r in a batch of kind %r" % (op, kind))
            if op in SIZED_OPS:
                _check(sized_ok(op, key, len(value)), "op %d key %s with a "
                       "value of %d bytes" % (op, key.hex(), len(value)))
                _check(not (flags or r.get("expire_ms", 0) or ver or tag or
                            exp_ver or exp_tag),
                       "op %d with flags, an expiry or a stamp" % op)
            if op in KEYLESS_OPS:
                _check(not key, "op %d with a key" % op)
            elif op != OP_NODE:
                _check(1 <= len(key) <= MAX_KEY_LEN,
                       "key length %d" % len(key))
            _check(op in VALUE_OPS or op in SIZED_OPS or not value,
                   "op %d with a value" % op)
            _check(op in VALUE_OPS or not flags,
                   "op %d with client flags" % op)
        if version == 1:
            _check(flags == 0, "version 1 has no client flags")
            _check((exp_ver, exp_tag) == (ver, tag),
                   "version 1 has no separate expiry stamp")
            out.append(_RECORD1.pack(op, len(key), len(value),
                                     r.get("expire_ms", 0), ver, tag))
        else:
            out.append(_RECORD2.pack(op, len(key), len(value), flags,
                                     r.get("expire_ms", 0), ver, tag,
                                     exp_ver, exp_tag))
        out.append(key)
        out.append(value)
    return b"".join(out)


def is_beacon(d):
    """A decoded batch that is a beacon: an empty WRITES batch, which only
    takes the next sequence number."""
    return d["kind"] == KIND_WRITES and not d["records"]
