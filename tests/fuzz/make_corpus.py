#!/usr/bin/env python3
"""Write the seed corpora of the fuzz targets (deterministic; the generated
files are committed, rerun this only to change the seeds).

  tests/fuzz/corpus/proto/  one request line per file (no '\\n'): every
                            command form, blanks, case, every escape, and
                            every error the parser reports.
  tests/fuzz/corpus/codec/  replication batches encoded with the independent
                            Python codec of the e2e tests (vitamin_wire.py):
                            wire format version 2 (every kind and op, FLUSH
                            and EXPIRED included, client flags, distinct
                            expiry stamps, base/total), version 1 batches
                            as an old node writes them, empty and full-size
                            fields, negative expiry, large counts of small
                            records, and one seed per rejection path.

Regression inputs (crashers found by fuzzing) live next to the seeds with a
name starting with "crash-"; this script never deletes anything.

Usage: python3 tests/fuzz/make_corpus.py
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

import vitamin_wire as vw  # noqa: E402

PROTO = {
    # well-formed, every command
    "set": b'set("k","v")',
    "set_ttl": b'set("key","value",60)',
    "set_ttl0": b'set("k","v",0)',
    "set_ttl_max": b'set("k","v",315360000)',
    "set_empty_value": b'set("k","")',
    "get": b'get("k")',
    "del": b'del("k")',
    "ttl": b'ttl("k")',
    "expire": b'expire("k",30)',
    "ping": b"ping()",
    "stats": b"stats()",
    "quit": b"quit()",
    "auth": b'auth("s3cret")',
    "auth_empty": b'auth("")',
    # blanks, case, CR
    "blanks": b' \tset( "k" ,\t"v" , 60 )\t ',
    "upper": b'GET("k")',
    "mixed_case": b'ExPiRe("k",1)',
    "crlf": b"ping()\r",
    "blank_line": b" \t \r",
    "empty": b"",
    # escapes
    "escapes": b'set("a\\\\b\\"c","\\n\\r\\t\\0")',
    "escape_hex": b'set("\\x00\\xff\\x7F","\\x45rror: x")',
    "raw_bytes": b'set("\xc3\xa9t\xc3\xa9","\x01\x7f\xfe")',
    "error_prefix_value": b'set("k","Error: not an error")',
    "long_key": b'get("' + b"k" * 1024 + b'")',
    # errors
    "err_unknown": b'fetch("k")',
    "err_no_paren": b"ping",
    "err_missing_close": b'get("k"',
    "err_unterminated": b'get("k)',
    "err_bad_escape": b'get("\\q")',
    "err_bad_hex": b'get("\\xg0")',
    "err_short_hex": b'get("\\x4")',
    "err_backslash_end": b'get("k\\',
    "err_arity": b'get("a","b")',
    "err_arity_few": b'set("k")',
    "err_need_string": b"get(k)",
    "err_need_sep": b'set("k" "v")',
    "err_arg_before": b'get(,"k")',
    "err_arg_after": b'set("k",)',
    "err_trailing": b"ping() x",
    "err_ttl_neg": b'set("k","v",-5)',
    "err_ttl_float": b'expire("k",1.5)',
    "err_ttl_string": b'expire("k","60")',
    "err_ttl_range": b'set("k","v",315360001)',
    "err_ttl_huge": b'expire("k",99999999999999999999999)',
    "err_empty_key": b'get("")',
    "err_key_too_long": b'get("' + b"k" * 1025 + b'")',
    "err_name_too_long": b'expirexx("k",1)',
}


def codec_seeds():
    W, SR, SD, DONE = (vw.KIND_WRITES, vw.KIND_SYNC_REQUEST,
                       vw.KIND_SYNC_DATA, vw.KIND_SYNC_DONE)
    S, D, E, F, X = (vw.OP_SET, vw.OP_DEL, vw.OP_EXPIRE, vw.OP_FLUSH,
                     vw.OP_EXPIRED)
    v = 1700000000000 << 16
    ops = (S, D, E, F, X)

    def many(i):
        op = ops[i % 5]
        r = dict(op=op, version=v + i, origin_tag=i,
                 exp_version=v + 2 * i, exp_origin_tag=i + 1)
        if op != F:
            r["key"] = b"key%d" % i
        if op in (S, E):
            r["value"] = b"x" * (i % 17)
            r["client_flags"] = i * 977
        return r

    return {
        # version 2: every kind and op
        "writes_one_set": vw.encode_batch(W, b"node-a:8080", 0x1122334455667788, 1, [
            dict(op=S, key=b"k", value=b"v", version=v + 1, origin_tag=7)]),
        "writes_mixed": vw.encode_batch(W, b"node-a:8080", 42, 2, [
            dict(op=S, key=b"user:1", value=b"alice", client_flags=42,
                 expire_ms=1700000060000, version=v + 2, origin_tag=7),
            dict(op=D, key=b"user:2", version=v + 3, origin_tag=7),
            dict(op=E, key=b"user:1", value=b"alice", client_flags=42,
                 expire_ms=1700000120000, version=v + 2, origin_tag=7,
                 exp_version=v + 4, exp_origin_tag=9)]),
        "writes_flush": vw.encode_batch(W, b"node-a:8080", 42, 3, [
            dict(op=S, key=b"a", value=b"1", version=v + 5, origin_tag=7),
            dict(op=F, version=v + 6, origin_tag=7)]),
        "writes_empty": vw.encode_batch(W, b"n", 1, 3, []),
        "writes_binary": vw.encode_batch(W, bytes(range(1, 256)), 2**64 - 1,
                                         2**64 - 1, [
            dict(op=S, key=bytes(range(256)) * 4, value=bytes(range(256)),
                 client_flags=2**32 - 1, expire_ms=-1, version=2**64 - 1,
                 origin_tag=2**32 - 1, exp_version=0, exp_origin_tag=0)],
            base=2**64 - 1, total=2**64 - 1),
        "writes_many": vw.encode_batch(W, b"b", 9, 4,
                                       [many(i) for i in range(40)]),
        "sync_request": vw.encode_batch(SR, b"node-b:8081", 77, 0, [],
                                        aux=123456789),
        "sync_data": vw.encode_batch(SD, b"node-a:8080", 42, 1, [
            dict(op=S, key=b"a", value=b"1", version=v, origin_tag=1),
            dict(op=S, key=b"b", value=b"", expire_ms=1800000000000,
                 version=v + 5, origin_tag=2, exp_version=v + 9),
            dict(op=D, key=b"c", version=v + 6, origin_tag=2),
            dict(op=X, key=b"d", expire_ms=1700000000001, version=v + 7,
                 origin_tag=3)],
            aux=123456789, target=b"node-b:8081", base=41),
        "sync_done": vw.encode_batch(DONE, b"node-a:8080", 42, 2, [],
                                     aux=123456789, target=b"node-b:8081",
                                     base=41, total=4),
        # version 1, as an old node writes it (still read)
        "v1_writes": vw.encode_batch(W, b"node-a:8080", 42, 2, [
            dict(op=S, key=b"user:1", value=b"alice",
                 expire_ms=1700000060000, version=v + 2, origin_tag=7),
            dict(op=D, key=b"user:2", version=v + 3, origin_tag=7),
            dict(op=E, key=b"user:1", value=b"alice",
                 expire_ms=1700000120000, version=v + 4, origin_tag=7)],
            version=1),
        "v1_sync_request": vw.encode_batch(SR, b"node-b:8081", 77, 0, [],
                                           aux=123456789,
                                           target=b"node-a:8080", version=1),
        "v1_sync_data": vw.encode_batch(SD, b"node-a:8080", 42, 0, [
            dict(op=S, key=b"a", value=b"1", version=v, origin_tag=1)],
            aux=123456789, target=b"node-b:8081", version=1),
        # a few invalid ones, so each rejection path is seeded too
        "bad_magic": b"AMQP" + vw.encode_batch(W, b"n", 1, 1, [])[4:],
        "bad_version": b"VTMB\x03" + vw.encode_batch(W, b"n", 1, 1, [])[5:],
        "bad_truncated": vw.encode_batch(W, b"n", 1, 1, [
            dict(op=S, key=b"k", value=b"value")])[:-2],
        "bad_trailing": vw.encode_batch(W, b"n", 1, 1, []) + b"\x00",
        "bad_del_value": vw.encode_batch(W, b"n", 1, 1, [
            dict(op=D, key=b"k", value=b"v")], check=False),
        "bad_del_flags": vw.encode_batch(W, b"n", 1, 1, [
            dict(op=D, key=b"k", client_flags=1)], check=False),
        "bad_flush_key": vw.encode_batch(W, b"n", 1, 1, [
            dict(op=F, key=b"k")], check=False),
        "bad_expired_value": vw.encode_batch(W, b"n", 1, 1, [
            dict(op=X, key=b"k", value=b"v")], check=False),
        "bad_v1_flush": vw.encode_batch(W, b"n", 1, 1, [
            dict(op=F, key=b"k")], version=1, check=False),
    }


def write_all(directory, files):
    os.makedirs(directory, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)


def main():
    write_all(os.path.join(HERE, "corpus", "proto"), PROTO)
    seeds = codec_seeds()
    for name, body in seeds.items():  # the valid ones must decode
        if not name.startswith("bad_"):
            vw.decode_batch(body)
            continue
        try:                                # and the bad ones must not
            vw.decode_batch(body)
        except ValueError:
            continue
        raise SystemExit("seed %s decodes" % name)
    write_all(os.path.join(HERE, "corpus", "codec"), seeds)
    print("proto: %d seeds, codec: %d seeds" % (len(PROTO), len(seeds)))


if __name__ == "__main__":
    main()
