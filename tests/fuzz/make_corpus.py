#!/usr/bin/env python3
"""Write the seed corpora of the fuzz targets (deterministic; the generated
files are committed, rerun this only to change the seeds).

  tests/fuzz/corpus/proto/  one request line per file (no '\\n'): every
                            command form, blanks, case, every escape, and
                            every error the parser reports.
  tests/fuzz/corpus/resp/   Redis request streams: multibulk and inline
                            requests (alone and pipelined), every quoting
                            form, numbers and glob patterns, and every
                            protocol error of resp.h's table.
  tests/fuzz/corpus/mc_proto/ memcached text-protocol byte streams: every
                            classic and meta command, noreply and quiet
                            forms, pipelines, every error memcached answers
                            (bad numbers, keys, flags, data chunks, too-large
                            values, long lines) and partial requests.
  tests/fuzz/corpus/codec/  replication batches encoded with the independent
                            Python codec of the e2e tests (vitamin_wire.py):
                            wire format version 2 (every kind and op, FLUSH
                            and EXPIRED included, client flags, distinct
                            expiry stamps, base/total, the range-digest
                            kinds with NODE records), version 1 batches
                            as an old node writes them, empty and full-size
                            fields, negative expiry, large counts of small
                            records, and one seed per rejection path.
  tests/fuzz/corpus/snapshot/ snapshot files encoded with the independent
                            Python reader/writer of the e2e tests
                            (vitamin_snapshot.py): empty store, every op,
                            tombstone times, several chunks, binary and
                            large values, the limits of ids and keys, and a
                            few defects. Their checksums are 0 (Python has
                            no XXH3); fuzz_snapshot also parses each input
                            with the right checksum put in.

Regression inputs (crashers found by fuzzing) live next to the seeds with a
name starting with "crash-"; this script never deletes anything.

Usage: python3 tests/fuzz/make_corpus.py
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

import vitamin_wire as vw  # noqa: E402
import vitamin_snapshot as vs  # noqa: E402

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


def mb(*args):
    """A multibulk request."""
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


RESP = {
    # multibulk, well-formed
    "mb_ping": mb(b"PING"),
    "mb_set": mb(b"SET", b"key", b"value", b"EX", b"60"),
    "mb_binary": mb(b"SET", bytes(range(256)), b"\r\n\x00"),
    "mb_empty_arg": mb(b"ECHO", b""),
    "mb_zero": b"*0\r\n",
    "mb_negative": b"*-1\r\n",
    "mb_sloppy_crlf": b"*1\r\n$4\r\nPINGxy*1\rx$4\rxPING\r\n",
    "mb_many_args": mb(b"MSET", *[b"k%d" % i for i in range(40)]),
    "mb_pipeline": mb(b"SET", b"a", b"1") + mb(b"GET", b"a") + b"PING\r\n" +
                   mb(b"INCRBYFLOAT", b"f", b"1.5") + mb(b"KEYS", b"a*[b-c]?"),
    # inline, well-formed
    "in_ping": b"PING\r\n",
    "in_lf": b"SET k v\n",
    "in_empty_lines": b"\r\n\n   \r\nPING\r\n",
    "in_quotes": b'SET "a\\x41\\n\\t\\b\\a\\"q" \'it\\\'s\' x"y z"\r\n',
    "in_escapes": b'ECHO "\\x4" "\\xzz" "\\q" "" \'\' "\\\\"\r\n',
    "in_blanks": b"\x0b ECHO\tfoo\x0b bar \x0c\r\r\n",
    "in_binary": b"ECHO a\x00b \xc3\xa9\r\n",
    # numbers and patterns (also fed to the number and glob properties)
    "num_ll": b"-9223372036854775808",
    "num_ld": b"3.14159265358979323846",
    "num_hex_float": b"0x1p3",
    "num_exp": b"1e300",
    "glob_class": b"\x05a*[^b-d]?\\*xaXbYc*",
    "glob_stars": b"\x11" + b"a*" * 8 + b"b" + b"a" * 20,
    # every protocol error
    "err_mbulk": b"*-0\r\n",
    "err_mbulk_big": b"*1048577\r\n",
    "err_mbulk_plus": b"*+1\r\n",
    "err_dollar": b"*1\r\nfoo\r\n",
    "err_dollar_cr": b"*1\r\n\r\n",
    "err_bulk_neg": b"*1\r\n$-1\r\n",
    "err_bulk_big": b"*1\r\n$536870913\r\n",
    "err_quotes": b'ECHO "a"b\r\n',
    "err_quotes_open": b"ECHO 'a\r\n",
    "err_inline_big": b"A" * 65537,
    "err_mbulk_count_big": b"*" + b"1" * 65536,
    "err_bulk_count_big": b"*1\r\n$" + b"1" * 65536,
    # incomplete
    "part_header": b"*3\r\n$3\r\nSET\r\n$1",
    "part_bulk": b"*1\r\n$10\r\n01234",
    "part_inline": b"GET some",
}


K250 = b"k" * 250

MC_PROTO = {
    # classic storage
    "set": b"set k 0 0 5\r\nhello\r\n",
    "set_noreply": b"set k 7 60 1 noreply\r\nx\r\n",
    "set_empty": b"set k 0 0 0\r\n\r\n",
    "set_crlf_data": b"set k 0 0 4\r\n\r\n\r\n\r\n",
    "set_lf_only": b"set k 0 0 1\nx\r\n",
    "set_long_key": b"set " + K250 + b" 0 0 1\r\nx\r\n",
    "set_key_too_long": b"set " + K250 + b"k 0 0 1\r\nx\r\n",
    "set_numbers": b"set k +4294967295 -9223372036854775808 1\t\r\nx\r\n",
    "set_bad_flags": b"set k -1 0 1\r\nx\r\n",
    "set_bad_len": b"set k 0 0 2147483648\r\n",
    "set_bad_chunk": b"set k 0 0 1\r\nabcdef\r\n",
    "set_too_large": b"set k 0 0 2000000\r\n" + b"x" * 64,
    "set_partial": b"set k 0 0 10\r\nhel",
    "add": b"add k 0 0 1\r\nx\r\n",
    "replace": b"replace k 0 0 1\r\nx\r\n",
    "append": b"append k 0 0 1\r\nx\r\n",
    "prepend": b"prepend k 0 0 1\r\nx\r\n",
    "cas": b"cas k 0 0 1 18446744073709551615 noreply\r\nx\r\n",
    "cas_arity": b"cas k 0 0 1\r\nx\r\n",
    # retrieval
    "get": b"get k\r\n",
    "get_many": b"get a b  c   d\r\n",
    "gets": b"gets " + b" ".join(b"key%d" % i for i in range(50)) + b"\r\n",
    "gat": b"gat 60 a b\r\n",
    "gats_nokeys": b"gats -1\r\n",
    "get_bad_key": b"get a " + K250 + b"k\r\n",
    "get_long": b"get " + b"k " * 1200 + b"\r\n",
    # other classic
    "incr": b"incr k 18446744073709551615\r\n",
    "decr_noreply": b"decr k 1 noreply\r\n",
    "incr_bad": b"incr k -1\r\n",
    "touch": b"touch k 10 noreply\r\n",
    "touch_bad": b"touch k abc\r\n",
    "delete": b"delete k 0 noreply\r\n",
    "delete_usage": b"delete k 1\r\n",
    "flush_all": b"flush_all 10 noreply\r\n",
    "flush_bad": b"flush_all x\r\n",
    "verbosity": b"verbosity 1\r\n",
    "version": b"version\r\n",
    "stats": b"stats detail dump\r\n",
    "quit": b"quit\r\n",
    "unknown": b"foo bar\r\n",
    "empty_line": b"\r\n",
    "binary_magic": b"\x80\x00\x00\x00\x00\x00\x00\x00",
    "long_junk": b"x" * 2100,
    # meta
    "mn": b"mn\r\n",
    "mg": b"mg k v\r\n",
    "mg_all_flags": b"mg k s v t c f h l k O123 q u T30 N10 R5 E9\r\n",
    "mg_base64": b"mg YWJj b k v\r\n",
    "mg_bad_base64": b"mg YW=j b\r\n",
    "mg_dup": b"mg k v v\r\n",
    "mg_invalid": b"mg k Z\r\n",
    "mg_bad_token": b"mg k Tx Dx Fx\r\n",
    "mg_opaque_long": b"mg k O" + b"9" * 40 + b"\r\n",
    "mg_too_many": b"mg k " + b" ".join(b"%d" % i for i in range(18)) + b"\r\n",
    "ms": b"ms k 5 T60 F7 c k O1 s I\r\nhello\r\n",
    "ms_modes": b"ms k 1 ME\r\nx\r\nms k 1 MA C5\r\nx\r\nms k 1 MR C5\r\nx\r\n",
    "ms_quiet": b"ms k 1 q\r\nx\r\nms j 1 q\r\ny\r\nmn\r\n",
    "ms_bad_mode": b"ms k 1 MZ\r\nx\r\n",
    "ms_bad_flag": b"ms k 1 Z\r\nx\r\n",
    "ms_too_large": b"ms k 99 b\r\n" + b"x" * 20,
    "ms_base64": b"ms YWJj 1 b k\r\nx\r\n",
    "md": b"md k q k O5 C9 I T30 x E4\r\n",
    "md_bad": b"md k C\r\n",
    "ma": b"ma k MD D5 J10 N60 T30 C3 v t c k O1\r\n",
    "ma_bad_mode": b"ma k MZ\r\n",
    # authentication exchange (mc_parse_auth, memcached -Y)
    "auth": b"set k 0 0 12\r\nalice s3cret\r\nget k\r\n",
    "auth_bad_end": b"set k 0 0 12\r\nalice s3cretXY",
    # pipelines
    "pipeline": b"get a\r\nset k 0 0 1\r\nx\r\nmg a v q\r\nmg b v q\r\nmn\r\n",
    "pipeline_resync": b"set k 0 0 1\r\naxxget k\r\nset j 0 0 1 noreply\r\nab\r\nmn\r\n",
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
        # range digests: DIGESTS, RANGES (nodes, and "everything"), ROOT
        "digests": vw.encode_batch(vw.KIND_DIGESTS, b"node-a:8080", 42, 1, [
            vw.node_record(0, 0, vw.children_value(list(range(16)))),
            vw.node_record(3, 4095, vw.children_value([2**64 - 1] * 16))],
            aux=123456789, target=b"node-b:8081", base=41),
        "ranges": vw.encode_batch(vw.KIND_RANGES, b"node-b:8081", 77, 0, [
            vw.node_record(1, 15), vw.node_record(2, 255),
            vw.node_record(4, 65535)], aux=123456789,
            target=b"node-a:8080"),
        "ranges_everything": vw.encode_batch(vw.KIND_RANGES, b"node-b:8081",
                                             77, 0, [], aux=123456789,
                                             target=b"node-a:8080", base=1),
        "root": vw.encode_batch(vw.KIND_ROOT, b"node-a:8080", 42, 0, [
            vw.node_record(0, 0, vw.digest_value(0x0123456789ABCDEF))],
            aux=1),
        # key summaries: SUMMARY (SUMS records), WANTS (HASHES records)
        "summary": vw.encode_batch(vw.KIND_SUMMARY, b"node-b:8081", 77, 1, [
            vw.sums_record([dict(hash=0x3B577AFD7FED9501, version=v + 1,
                                 origin_tag=7),
                            dict(hash=2**64 - 1, version=v + 2, origin_tag=7,
                                 exp_version=v + 3, exp_origin_tag=9)]),
            vw.sums_record([dict(hash=0, version=v, origin_tag=1)])],
            aux=123456789, target=b"node-a:8080", base=1),
        "summary_empty": vw.encode_batch(vw.KIND_SUMMARY, b"node-b:8081", 77,
                                         2, [], aux=123456789,
                                         target=b"node-a:8080"),
        "wants": vw.encode_batch(vw.KIND_WANTS, b"node-a:8080", 42, 5, [
            vw.hashes_record([0x3B577AFD7FED9501, 1, 2**64 - 1])],
            aux=123456789, target=b"node-b:8081", base=41),
        "wants_all": vw.encode_batch(vw.KIND_WANTS, b"node-a:8080", 42, 5, [],
                                     aux=123456789, target=b"node-b:8081",
                                     base=41, total=1),
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
        "bad_node_in_writes": vw.encode_batch(W, b"n", 1, 1, [
            vw.node_record(1, 2)], check=False),
        "bad_set_in_ranges": vw.encode_batch(vw.KIND_RANGES, b"n", 1, 0, [
            dict(op=S, key=b"k", value=b"v")], check=False),
        "bad_node_index": vw.encode_batch(vw.KIND_RANGES, b"n", 1, 0, [
            vw.node_record(1, 16)], check=False),
        "bad_node_value": vw.encode_batch(vw.KIND_ROOT, b"n", 1, 0, [
            vw.node_record(0, 0, b"x" * 9)], check=False),
        "bad_sums_partial": vw.encode_batch(vw.KIND_SUMMARY, b"n", 1, 1, [
            dict(op=vw.OP_SUMS, value=b"x" * 33)], check=False),
        "bad_hashes_in_summary": vw.encode_batch(vw.KIND_SUMMARY, b"n", 1, 1,
                                                 [vw.hashes_record([1])],
                                                 check=False),
        "bad_sums_in_data": vw.encode_batch(SD, b"n", 1, 1, [
            vw.sums_record([dict(hash=1)])], check=False),
        "bad_hashes_stamped": vw.encode_batch(vw.KIND_WANTS, b"n", 1, 1, [
            dict(vw.hashes_record([1]), version=1)], check=False),
    }


def snapshot_seeds():
    t = 1700000000000
    v = t << 16

    def rec(op, key=b"", value=b"", **kw):
        r = dict(op=op, key=key, value=value)
        r.update(kw)
        return r
    live = rec(vs.OP_SET, b"key", b"value", flags=42, expire_ms=t + 60000,
               version=v, origin=7, exp_version=v + 1, exp_origin=8)
    dead = rec(vs.OP_DEL, b"gone", version=v + 2, origin=7, exp_version=v + 2,
               exp_origin=7, collect_ms=t + 300000)
    expired = rec(vs.OP_EXPIRED, b"old", expire_ms=t - 1, version=v - 5,
                  origin=3, exp_version=v - 4, exp_origin=3, collect_ms=t + 299999)
    flush = rec(vs.OP_FLUSH, version=v - 100, origin=9, exp_version=v - 100,
                exp_origin=9)
    many = [rec(vs.OP_SET, b"k%d" % i, b"v" * (i % 40), version=v + i, origin=1,
                exp_version=v + i, exp_origin=1) for i in range(64)]
    seeds = {
        "empty_store": vs.encode_file(b"node1", t, []),
        "one_set": vs.encode_file(b"node1", t, [[live]]),
        "every_op": vs.encode_file(b"node1", t, [[flush, live, dead, expired]]),
        "chunks": vs.encode_file(b"n", t, [[flush, live], [dead], [expired, live]]),
        "many": vs.encode_file(b"node-a", t, [many[:32], many[32:]]),
        "binary": vs.encode_file(b"bin", t, [[rec(vs.OP_SET, bytes(range(256))[:200],
                                                  bytes(range(256)) * 3, flags=0xffffffff,
                                                  expire_ms=-1, version=2**64 - 1,
                                                  origin=2**32 - 1)]]),
        "limits": vs.encode_file(b"i" * 255, -1, [[rec(vs.OP_SET, b"K" * 1024, b"",
                                                       version=1)]]),
        "big_value": vs.encode_file(b"node1", t, [[rec(vs.OP_SET, b"big", b"x" * 70000,
                                                       version=v)]]),
    }
    good = seeds["every_op"]
    seeds["bad_truncated"] = good[:len(good) // 2]
    seeds["bad_magic"] = b"VTMSNAQ\0" + good[8:]
    seeds["bad_version"] = good[:8] + b"\x02" + good[9:]
    seeds["bad_trailing"] = good + b"\0"
    seeds["bad_total"] = vs.encode_file(b"node1", t, [[live]])[:-20] + b"\0" * 20
    return seeds


def write_all(directory, files):
    os.makedirs(directory, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)


def main():
    write_all(os.path.join(HERE, "corpus", "proto"), PROTO)
    write_all(os.path.join(HERE, "corpus", "mc_proto"), MC_PROTO)
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
    write_all(os.path.join(HERE, "corpus", "resp"), RESP)
    snaps = snapshot_seeds()
    for name, body in snaps.items():  # the valid ones must decode
        if not name.startswith("bad_"):
            vs.decode_file(body)
    write_all(os.path.join(HERE, "corpus", "snapshot"), snaps)
    print("proto: %d seeds, mc_proto: %d seeds, codec: %d seeds, resp: %d seeds, "
          "snapshot: %d seeds" % (len(PROTO), len(MC_PROTO), len(seeds), len(RESP), len(snaps)))


if __name__ == "__main__":
    main()
