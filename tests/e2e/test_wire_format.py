"""Self-check of tests/e2e/vitamin_wire.py against the worked examples of
docs/replication.md. The same golden hex is pinned in
tests/unit/test_repl_codec.c, so the C codec and this one agree byte for
byte on the documented format. Needs no server."""

import pytest

import vitamin_wire as vw

GOLDEN_WRITES = bytes.fromhex(
    "56544d42 01 01 0200 6e31 0807060504030201 2a00000000000000"
    " 0000000000000000 0000 03000000"
    " 01 0600 02000000 0000000000000000 01000068e5cf8b01 0d0c0b0a"
    " 757365723a31 6869"
    " 02 0100 00000000 0000000000000000 02000068e5cf8b01 0d0c0b0a 6b"
    " 03 0200 01000000 6052e6cf8b010000 03000068e5cf8b01 0d0c0b0a 6b32 76")

GOLDEN_SYNC = bytes.fromhex(
    "56544d42 01 02 0200 6e32 8877665544332211 0000000000000000"
    " 0302010000000000 0200 6e31 00000000")

T0 = 1700000000000 << 16
TAG = 0x0A0B0C0D
RECORDS = [
    dict(op=vw.OP_SET, key=b"user:1", value=b"hi", expire_ms=0,
         version=T0 | 1, origin_tag=TAG),
    dict(op=vw.OP_DEL, key=b"k", value=b"", expire_ms=0,
         version=T0 | 2, origin_tag=TAG),
    dict(op=vw.OP_EXPIRE, key=b"k2", value=b"v", expire_ms=1700000060000,
         version=T0 | 3, origin_tag=TAG),
]


def test_golden_writes():
    enc = vw.encode_batch(vw.KIND_WRITES, b"n1", 0x0102030405060708, 42,
                          RECORDS)
    assert len(enc) == 133
    assert enc == GOLDEN_WRITES
    assert vw.decode_batch(GOLDEN_WRITES) == dict(
        kind=vw.KIND_WRITES, origin=b"n1", incarnation=0x0102030405060708,
        seq=42, aux=0, target=b"", records=RECORDS)


def test_golden_sync_request():
    enc = vw.encode_batch(vw.KIND_SYNC_REQUEST, "n2", 0x1122334455667788, 0,
                          [], aux=0x010203, target="n1")
    assert enc == GOLDEN_SYNC
    got = vw.decode_batch(GOLDEN_SYNC)
    assert (got["kind"], got["target"], got["aux"], got["records"]) == \
        (vw.KIND_SYNC_REQUEST, b"n1", 0x010203, [])


def test_round_trip_binary_and_limits():
    recs = [dict(op=vw.OP_SET, key=bytes(range(256)) * 4,
                 value=b"\x00\xff" * 3000, expire_ms=-1,
                 version=2**64 - 1, origin_tag=2**32 - 1),
            dict(op=vw.OP_EXPIRE, key=b"\x00", value=b"", expire_ms=-2**63,
                 version=0, origin_tag=0)]
    enc = vw.encode_batch(vw.KIND_SYNC_DATA, b"o" * 255, 2**64 - 1, 0, recs,
                          aux=2**64 - 1, target=b"\xff" * 255)
    assert vw.decode_batch(enc)["records"] == recs


@pytest.mark.parametrize("body, status", [
    (b"", "truncated"),
    (b"{}", "bad_magic"),
    (b"VTMX" + GOLDEN_WRITES[4:], "bad_magic"),
    (GOLDEN_WRITES[:4] + b"\x02" + GOLDEN_WRITES[5:], "bad_version"),
    (GOLDEN_WRITES[:5] + b"\x05" + GOLDEN_WRITES[6:], "out_of_range"),
    (GOLDEN_WRITES + b"\x00", "trailing_bytes"),
    (GOLDEN_WRITES[:36] + b"\x04\0\0\0" + GOLDEN_WRITES[40:], "truncated"),
    (GOLDEN_WRITES[:36] + b"\x02\0\0\0" + GOLDEN_WRITES[40:],
     "trailing_bytes"),
    (GOLDEN_WRITES[:43] + b"\xff\xff\xff\xff" + GOLDEN_WRITES[47:],
     "truncated"),
    (vw.encode_batch(1, b"n", 1, 1, [dict(op=vw.OP_DEL, key=b"k",
                                          value=b"v")], check=False),
     "out_of_range"),
    (vw.encode_batch(1, b"n", 1, 1, [dict(op=vw.OP_SET, key=b"")],
                     check=False), "out_of_range"),
    (vw.encode_batch(1, b"n", 1, 1, [dict(op=vw.OP_SET, key=b"k" * 1025)],
                     check=False), "out_of_range"),
])
def test_malformed(body, status):
    with pytest.raises(ValueError, match="^" + status):
        vw.decode_batch(body)


def test_truncated_at_every_offset():
    for cut in range(len(GOLDEN_WRITES)):
        with pytest.raises(ValueError, match="^truncated"):
            vw.decode_batch(GOLDEN_WRITES[:cut])


def test_encoder_refuses_bad_input():
    for kw in (dict(kind=0), dict(origin=b""), dict(target=b"t" * 256)):
        args = dict(kind=1, origin=b"n", incarnation=1, seq=1, records=[])
        args.update(kw)
        with pytest.raises(ValueError):
            vw.encode_batch(**args)
    with pytest.raises(ValueError):
        vw.encode_batch(1, b"n", 1, 1, [dict(op=vw.OP_DEL, key=b"k",
                                             value=b"v")])
    with pytest.raises(ValueError):  # does not fit the u16 field
        vw.encode_batch(1, b"n" * 70000, 1, 1, [], check=False)
