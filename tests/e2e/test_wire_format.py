"""Self-check of tests/e2e/vitamin_wire.py against the worked examples of
docs/replication.md. The same golden hex is pinned in
tests/unit/test_repl_codec.c, so the C codec and this one agree byte for
byte on the documented format, version 2 and version 1; the last tests read
the examples out of docs/replication.md itself, so the document shows these
very bytes. Needs no server."""

import os
import re

import pytest

import vitamin_wire as vw

T0 = 1700000000000 << 16
TAG = 0x0A0B0C0D

# ---- version 2 -----------------------------------------------------------

GOLDEN_WRITES = bytes.fromhex(
    "56544d42 02 01 0200 6e31 0807060504030201 2a00000000000000"
    " 0000000000000000 0000000000000000 0000000000000000 0000 04000000"
    # SET "user:1" = "hi", flags 42, never expires
    " 01 0600 02000000 2a000000 0000000000000000"
    " 01000068e5cf8b01 0d0c0b0a 01000068e5cf8b01 0d0c0b0a 757365723a31 6869"
    # DEL "k"
    " 02 0100 00000000 00000000 0000000000000000"
    " 02000068e5cf8b01 0d0c0b0a 02000068e5cf8b01 0d0c0b0a 6b"
    # EXPIRE "user:1" at 1700000060000, made on the value stamped T0|1
    " 03 0600 02000000 2a000000 6052e6cf8b010000"
    " 01000068e5cf8b01 0d0c0b0a 03000068e5cf8b01 0d0c0b0a 757365723a31 6869"
    # FLUSH below T0|4
    " 04 0000 00000000 00000000 0000000000000000"
    " 04000068e5cf8b01 0d0c0b0a 04000068e5cf8b01 0d0c0b0a")

WRITES_RECORDS = [
    dict(op=vw.OP_SET, key=b"user:1", value=b"hi", client_flags=42,
         expire_ms=0, version=T0 | 1, origin_tag=TAG, exp_version=T0 | 1,
         exp_origin_tag=TAG),
    dict(op=vw.OP_DEL, key=b"k", value=b"", client_flags=0, expire_ms=0,
         version=T0 | 2, origin_tag=TAG, exp_version=T0 | 2,
         exp_origin_tag=TAG),
    dict(op=vw.OP_EXPIRE, key=b"user:1", value=b"hi", client_flags=42,
         expire_ms=1700000060000, version=T0 | 1, origin_tag=TAG,
         exp_version=T0 | 3, exp_origin_tag=TAG),
    dict(op=vw.OP_FLUSH, key=b"", value=b"", client_flags=0, expire_ms=0,
         version=T0 | 4, origin_tag=TAG, exp_version=T0 | 4,
         exp_origin_tag=TAG),
]

GOLDEN_SYNC_DATA = bytes.fromhex(
    "56544d42 02 03 0200 6e31 0807060504030201 0100000000000000"
    " 0302010000000000 2900000000000000 0000000000000000 0200 6e32 01000000"
    # EXPIRED "k3": expired at 1700000030000, bytes gone
    " 05 0200 00000000 00000000 30dde5cf8b010000"
    " 05000068e5cf8b01 0d0c0b0a 05000068e5cf8b01 0d0c0b0a 6b33")

SYNC_DATA_RECORDS = [
    dict(op=vw.OP_EXPIRED, key=b"k3", value=b"", client_flags=0,
         expire_ms=1700000030000, version=T0 | 5, origin_tag=TAG,
         exp_version=T0 | 5, exp_origin_tag=TAG),
]

GOLDEN_SYNC_DONE = bytes.fromhex(
    "56544d42 02 04 0200 6e31 0807060504030201 0200000000000000"
    " 0302010000000000 2900000000000000 0100000000000000 0200 6e32 00000000")

GOLDEN_SYNC_REQUEST = bytes.fromhex(
    "56544d42 02 02 0200 6e32 8877665544332211 0000000000000000"
    " 0302010000000000 0000000000000000 0000000000000000 0000 00000000")

# ---- version 1 (still read) ----------------------------------------------

GOLDEN_V1_WRITES = bytes.fromhex(
    "56544d42 01 01 0200 6e31 0807060504030201 2a00000000000000"
    " 0000000000000000 0000 03000000"
    " 01 0600 02000000 0000000000000000 01000068e5cf8b01 0d0c0b0a"
    " 757365723a31 6869"
    " 02 0100 00000000 0000000000000000 02000068e5cf8b01 0d0c0b0a 6b"
    " 03 0200 01000000 6052e6cf8b010000 03000068e5cf8b01 0d0c0b0a 6b32 76")

# what a version-2 reader makes of it: flags 0, expiry stamped like the value
V1_RECORDS = [
    dict(op=vw.OP_SET, key=b"user:1", value=b"hi", client_flags=0,
         expire_ms=0, version=T0 | 1, origin_tag=TAG, exp_version=T0 | 1,
         exp_origin_tag=TAG),
    dict(op=vw.OP_DEL, key=b"k", value=b"", client_flags=0, expire_ms=0,
         version=T0 | 2, origin_tag=TAG, exp_version=T0 | 2,
         exp_origin_tag=TAG),
    dict(op=vw.OP_EXPIRE, key=b"k2", value=b"v", client_flags=0,
         expire_ms=1700000060000, version=T0 | 3, origin_tag=TAG,
         exp_version=T0 | 3, exp_origin_tag=TAG),
]

GOLDEN_V1_SYNC_REQUEST = bytes.fromhex(
    "56544d42 01 02 0200 6e32 8877665544332211 0000000000000000"
    " 0302010000000000 0200 6e31 00000000")


def _header(**kw):
    h = dict(version=2, kind=vw.KIND_WRITES, origin=b"n1",
             incarnation=0x0102030405060708, seq=0, aux=0, base=0, total=0,
             target=b"")
    h.update(kw)
    return h


def test_golden_writes():
    enc = vw.encode_batch(vw.KIND_WRITES, b"n1", 0x0102030405060708, 42,
                          WRITES_RECORDS)
    assert len(enc) == 245
    assert enc == GOLDEN_WRITES
    assert vw.decode_batch(GOLDEN_WRITES) == dict(
        _header(seq=42), records=WRITES_RECORDS)


def test_golden_sync_data_and_done():
    enc = vw.encode_batch(vw.KIND_SYNC_DATA, b"n1", 0x0102030405060708, 1,
                          SYNC_DATA_RECORDS, aux=0x010203, target=b"n2",
                          base=41)
    assert len(enc) == 103
    assert enc == GOLDEN_SYNC_DATA
    assert vw.decode_batch(GOLDEN_SYNC_DATA) == dict(
        _header(kind=vw.KIND_SYNC_DATA, seq=1, aux=0x010203, base=41,
                target=b"n2"), records=SYNC_DATA_RECORDS)

    enc = vw.encode_batch(vw.KIND_SYNC_DONE, b"n1", 0x0102030405060708, 2,
                          [], aux=0x010203, target=b"n2", base=41, total=1)
    assert len(enc) == 58
    assert enc == GOLDEN_SYNC_DONE
    assert vw.decode_batch(GOLDEN_SYNC_DONE) == dict(
        _header(kind=vw.KIND_SYNC_DONE, seq=2, aux=0x010203, base=41,
                total=1, target=b"n2"), records=[])


def test_golden_sync_request():
    enc = vw.encode_batch(vw.KIND_SYNC_REQUEST, "n2", 0x1122334455667788, 0,
                          [], aux=0x010203)
    assert len(enc) == 56
    assert enc == GOLDEN_SYNC_REQUEST
    assert vw.decode_batch(GOLDEN_SYNC_REQUEST) == dict(
        _header(kind=vw.KIND_SYNC_REQUEST, origin=b"n2",
                incarnation=0x1122334455667788, aux=0x010203), records=[])


def test_golden_v1_writes_decodes_as_v2_reads_it():
    assert len(GOLDEN_V1_WRITES) == 133
    assert vw.decode_batch(GOLDEN_V1_WRITES) == dict(
        _header(version=1, seq=42), records=V1_RECORDS)
    # and the version-1 encoder (an old node, or a test acting as one)
    # writes exactly these bytes
    enc = vw.encode_batch(vw.KIND_WRITES, b"n1", 0x0102030405060708, 42,
                          V1_RECORDS, version=1)
    assert enc == GOLDEN_V1_WRITES


def test_golden_v1_sync_request():
    enc = vw.encode_batch(vw.KIND_SYNC_REQUEST, "n2", 0x1122334455667788, 0,
                          [], aux=0x010203, target="n1", version=1)
    assert enc == GOLDEN_V1_SYNC_REQUEST
    assert vw.decode_batch(GOLDEN_V1_SYNC_REQUEST) == dict(
        _header(version=1, kind=vw.KIND_SYNC_REQUEST, origin=b"n2",
                incarnation=0x1122334455667788, aux=0x010203, target=b"n1"),
        records=[])


def test_v1_and_v2_of_the_same_records():
    """A v1 batch is the v2 one without base/total (16 bytes) and without
    flags and expiry stamp (16 bytes a record)."""
    recs = [r for r in V1_RECORDS]
    v1 = vw.encode_batch(vw.KIND_WRITES, b"n1", 7, 3, recs, version=1)
    v2 = vw.encode_batch(vw.KIND_WRITES, b"n1", 7, 3, recs)
    assert len(v2) == len(v1) + 16 + 16 * len(recs)
    d1, d2 = vw.decode_batch(v1), vw.decode_batch(v2)
    assert (d1["version"], d2["version"]) == (1, 2)
    d1["version"] = 2
    assert d1 == d2


def test_round_trip_binary_and_limits():
    recs = [dict(op=vw.OP_SET, key=bytes(range(256)) * 4,
                 value=b"\x00\xff" * 3000, client_flags=2**32 - 1,
                 expire_ms=-1, version=2**64 - 1, origin_tag=2**32 - 1,
                 exp_version=0, exp_origin_tag=1),
            dict(op=vw.OP_EXPIRE, key=b"\x00", value=b"", client_flags=0,
                 expire_ms=-2**63, version=0, origin_tag=0,
                 exp_version=2**64 - 1, exp_origin_tag=2**32 - 1),
            dict(op=vw.OP_EXPIRED, key=b"\xff" * 1024, value=b"",
                 client_flags=0, expire_ms=2**63 - 1, version=1,
                 origin_tag=2, exp_version=3, exp_origin_tag=4),
            dict(op=vw.OP_FLUSH, key=b"", value=b"", client_flags=0,
                 expire_ms=0, version=2**64 - 1, origin_tag=2**32 - 1,
                 exp_version=2**64 - 1, exp_origin_tag=2**32 - 1)]
    enc = vw.encode_batch(vw.KIND_SYNC_DATA, b"o" * 255, 2**64 - 1,
                          2**64 - 1, recs, aux=2**64 - 1,
                          target=b"\xff" * 255, base=2**64 - 1,
                          total=2**64 - 1)
    d = vw.decode_batch(enc)
    assert d["records"] == recs
    assert (d["base"], d["total"]) == (2**64 - 1, 2**64 - 1)


def _patch(body, offset, data):
    return body[:offset] + data + body[offset + len(data):]


# offsets in GOLDEN_WRITES (header 56 bytes: N = 2, T = 0)
W_COUNT = 52
W_REC1, W_REC2, W_REC3, W_REC4 = 56, 107, 151, 202
_DEL_WITH_FLAGS = vw.encode_batch(
    vw.KIND_WRITES, b"n", 1, 1,
    [dict(op=vw.OP_DEL, key=b"k", client_flags=1)], check=False)

# offsets in GOLDEN_V1_WRITES (header 40 bytes)
V1_COUNT = 36
V1_REC1, V1_REC2, V1_REC3 = 40, 75, 103


@pytest.mark.parametrize("body, status", [
    (b"", "truncated"),
    (b"{}", "bad_magic"),
    (b"VTM", "truncated"),
    (b"VTMX" + GOLDEN_WRITES[4:], "bad_magic"),
    (_patch(GOLDEN_WRITES, 4, b"\x03"), "bad_version"),
    (_patch(GOLDEN_WRITES, 4, b"\x00"), "bad_version"),
    (_patch(GOLDEN_WRITES, 5, b"\x05"), "out_of_range"),
    (_patch(GOLDEN_WRITES, 5, b"\x00"), "out_of_range"),
    (_patch(GOLDEN_WRITES, 6, b"\x00\x00"), "out_of_range"),
    (_patch(GOLDEN_WRITES, 6, b"\x00\x01"), "out_of_range"),
    (_patch(GOLDEN_WRITES, 50, b"\x00\x01"), "out_of_range"),    # T 256
    (GOLDEN_WRITES + b"\x00", "trailing_bytes"),
    (_patch(GOLDEN_WRITES, W_COUNT, b"\x05\0\0\0"), "truncated"),
    (_patch(GOLDEN_WRITES, W_COUNT, b"\xff\xff\xff\xff"), "truncated"),
    (_patch(GOLDEN_WRITES, W_COUNT, b"\x03\0\0\0"), "trailing_bytes"),
    (_patch(GOLDEN_WRITES, W_COUNT, b"\x00\0\0\0"), "trailing_bytes"),
    (_patch(GOLDEN_WRITES, W_REC1 + 3, b"\xff\xff\xff\xff"), "truncated"),
    (_patch(GOLDEN_WRITES, W_REC1, b"\x00"), "out_of_range"),       # op 0
    (_patch(GOLDEN_WRITES, W_REC1, b"\x06"), "out_of_range"),       # op 6
    (_patch(GOLDEN_WRITES, W_REC1, b"\x02"), "out_of_range"),   # DEL + value
    (_patch(GOLDEN_WRITES, W_REC1, b"\x05"), "out_of_range"),   # EXPIRED + v
    (_patch(GOLDEN_WRITES, W_REC1 + 1, b"\x00\x00"), "out_of_range"),  # K 0
    (_patch(GOLDEN_WRITES, W_REC1 + 1, b"\x01\x04"), "out_of_range"),  # 1025
    (_patch(GOLDEN_WRITES, W_REC2 + 7, b"\x01"), "out_of_range"),  # DEL flags
    (_patch(GOLDEN_WRITES, W_REC4 + 7, b"\x01"), "out_of_range"),  # FLUSH fl.
    (_patch(GOLDEN_WRITES, W_REC4 + 1, b"\x01"), "out_of_range"),  # K 1
    (_patch(GOLDEN_WRITES + b"x", W_REC4 + 1, b"\x01"), "out_of_range"),
    (_patch(GOLDEN_WRITES, W_REC4 + 3, b"\x01"), "out_of_range"),  # V 1
    (_patch(GOLDEN_WRITES + b"x", W_REC4 + 3, b"\x01"), "out_of_range"),
    # flags on a DEL: out of range, but only once its key is known to be
    # there (the flags are checked last)
    (_DEL_WITH_FLAGS, "out_of_range"),
    (_DEL_WITH_FLAGS[:-1], "truncated"),
    # version 1: ops 4 and 5 do not exist, nor do base/total
    (_patch(GOLDEN_V1_WRITES, V1_REC2, b"\x04"), "out_of_range"),
    (_patch(GOLDEN_V1_WRITES, V1_REC2, b"\x05"), "out_of_range"),
    (_patch(GOLDEN_V1_WRITES, V1_REC1, b"\x02"), "out_of_range"),
    (_patch(GOLDEN_V1_WRITES, V1_COUNT, b"\x04\0\0\0"), "truncated"),
    (_patch(GOLDEN_V1_WRITES, V1_COUNT, b"\x02\0\0\0"), "trailing_bytes"),
    (GOLDEN_V1_WRITES + b"\x00", "trailing_bytes"),
    (_patch(GOLDEN_WRITES, 4, b"\x01"), "trailing_bytes"),  # v2 read as v1
    (vw.encode_batch(1, b"n", 1, 1, [dict(op=vw.OP_DEL, key=b"k",
                                          value=b"v")], check=False),
     "out_of_range"),
    (vw.encode_batch(1, b"n", 1, 1, [dict(op=vw.OP_SET, key=b"")],
                     check=False), "out_of_range"),
    (vw.encode_batch(1, b"n", 1, 1, [dict(op=vw.OP_SET, key=b"k" * 1025)],
                     check=False), "out_of_range"),
    (vw.encode_batch(1, b"n", 1, 1, [dict(op=vw.OP_FLUSH, key=b"k")],
                     check=False), "out_of_range"),
    (vw.encode_batch(1, b"n", 1, 1, [dict(op=vw.OP_EXPIRED, key=b"k",
                                          client_flags=1)], check=False),
     "out_of_range"),
    (vw.encode_batch(1, b"n", 1, 1, [dict(op=vw.OP_FLUSH, value=b"v")],
                     check=False), "out_of_range"),
    (vw.encode_batch(1, b"n", 1, 1, [dict(op=vw.OP_SET, key=b"k")],
                     version=1, check=False)[:-1], "truncated"),
])
def test_malformed(body, status):
    with pytest.raises(ValueError, match="^" + status):
        vw.decode_batch(body)


def test_v2_bytes_read_as_v1_is_rejected():
    """The version byte decides the layout: version-2 bytes labelled 1 are
    read with the old layout and rejected (here the first bytes of base
    read as T = 0 and count = 0, so everything after is trailing)."""
    with pytest.raises(ValueError, match="^trailing_bytes: 205 after"):
        vw.decode_batch(_patch(GOLDEN_WRITES, 4, b"\x01"))


def test_base_and_total_are_not_checked_by_the_format():
    for base, total in ((0, 2**64 - 1), (2**64 - 1, 0), (5, 3)):
        enc = vw.encode_batch(vw.KIND_WRITES, b"n", 1, 1, [], base=base,
                              total=total)
        d = vw.decode_batch(enc)
        assert (d["base"], d["total"]) == (base, total)


@pytest.mark.parametrize("golden", [GOLDEN_WRITES, GOLDEN_SYNC_DATA,
                                    GOLDEN_SYNC_DONE, GOLDEN_SYNC_REQUEST,
                                    GOLDEN_V1_WRITES,
                                    GOLDEN_V1_SYNC_REQUEST])
def test_truncated_at_every_offset(golden):
    for cut in range(len(golden)):
        with pytest.raises(ValueError, match="^truncated"):
            vw.decode_batch(golden[:cut])
    vw.decode_batch(golden)


def test_encoder_refuses_bad_input():
    for kw in (dict(kind=0), dict(kind=5), dict(origin=b""),
               dict(origin=b"o" * 256), dict(target=b"t" * 256)):
        args = dict(kind=1, origin=b"n", incarnation=1, seq=1, records=[])
        args.update(kw)
        with pytest.raises(ValueError):
            vw.encode_batch(**args)
    bad_records = [
        dict(op=0, key=b"k"),
        dict(op=6, key=b"k"),
        dict(op=vw.OP_SET, key=b""),
        dict(op=vw.OP_SET, key=b"k" * 1025),
        dict(op=vw.OP_DEL, key=b"k", value=b"v"),
        dict(op=vw.OP_DEL, key=b"k", client_flags=1),
        dict(op=vw.OP_EXPIRED, key=b"k", value=b"v"),
        dict(op=vw.OP_EXPIRED, key=b"k", client_flags=1),
        dict(op=vw.OP_FLUSH, key=b"k"),
        dict(op=vw.OP_FLUSH, value=b"v"),
        dict(op=vw.OP_FLUSH, client_flags=1),
    ]
    for r in bad_records:
        with pytest.raises(ValueError):
            vw.encode_batch(1, b"n", 1, 1, [r])
    # version 1: no FLUSH/EXPIRED, no flags, no base/total, one stamp
    for r in (dict(op=vw.OP_FLUSH), dict(op=vw.OP_EXPIRED, key=b"k"),
              dict(op=vw.OP_SET, key=b"k", client_flags=1),
              dict(op=vw.OP_SET, key=b"k", version=1, exp_version=2)):
        with pytest.raises(ValueError):
            vw.encode_batch(1, b"n", 1, 1, [r], version=1)
    with pytest.raises(ValueError):
        vw.encode_batch(3, b"n", 1, 0, [], version=1, base=1)
    with pytest.raises(ValueError):
        vw.encode_batch(1, b"n", 1, 1, [], version=3)
    with pytest.raises(ValueError):  # does not fit the u16 field
        vw.encode_batch(1, b"n" * 70000, 1, 1, [], check=False)
    with pytest.raises(ValueError):  # does not fit the u32 field
        vw.encode_batch(1, b"n", 1, 1, [dict(op=vw.OP_SET, key=b"k",
                                             client_flags=2**32)])


def test_is_beacon():
    assert vw.is_beacon(vw.decode_batch(
        vw.encode_batch(vw.KIND_WRITES, b"n", 1, 9, [])))
    assert not vw.is_beacon(vw.decode_batch(GOLDEN_WRITES))
    assert not vw.is_beacon(vw.decode_batch(GOLDEN_SYNC_REQUEST))


# ---- the worked examples of docs/replication.md are these bytes ---------

DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                   "docs", "replication.md")


def _doc_blocks():
    with open(DOC) as f:
        text = f.read()
    return re.findall(r"^```\n(.*?)^```", text, re.S | re.M)


def _hex_block(block):
    """A grouped-hex block: hex groups, then (after 3+ blanks) a comment."""
    out = b""
    for line in block.splitlines():
        line = re.split(r"\s{3,}", line.strip())[0]
        if line:
            out += bytes.fromhex(line)
    return out


def test_doc_offset_table_is_the_golden_writes():
    """The offset table of worked example 1: every offset is where the
    previous bytes end, and the bytes are GOLDEN_WRITES."""
    table = [b for b in _doc_blocks() if b.startswith("offset")]
    assert len(table) == 1
    body, end = b"", None
    for line in table[0].splitlines()[1:]:
        cols = re.split(r"\s{2,}", line.strip())
        if not cols[0].isdigit():
            continue                       # "-- record n --"
        assert int(cols[0]) == len(body), line
        if cols[1] == "(end)":
            end = int(cols[0])
            continue
        body += bytes.fromhex(cols[1])
    assert end == len(body) == 245
    assert body == GOLDEN_WRITES


def test_doc_hex_blocks_are_the_goldens():
    blocks = [_hex_block(b) for b in _doc_blocks()
              if b.startswith("56544d42")]
    assert blocks == [GOLDEN_WRITES, GOLDEN_SYNC_DATA, GOLDEN_SYNC_DONE,
                      GOLDEN_SYNC_REQUEST, GOLDEN_V1_WRITES]
