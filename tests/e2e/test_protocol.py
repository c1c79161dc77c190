"""SPEC sections 1 and 2: the text protocol, byte for byte."""

import math
import re
import time

import pytest

from conftest import (MIB, Raw, decode_value, encode_value, normalize_hex,
                      poll, quote_hex, req)

NOT_FOUND = b"Error: Record not found"
UNRECOGNIZED = b"Error: Unrecognized command"
TTL_NOT_INT = b"Error: TTL is not an integer"
TTL_RANGE = b"Error: TTL out of range (0..315360000)"
KEY_TOO_LONG = b"Error: Key too long"
VALUE_TOO_LARGE = b"Error: Value too large"
LINE_TOO_LONG = b"Error: Line too long"
MEMORY = b"Error: Memory overusage"
SYNTAX = re.compile(rb"Error: Syntax error: \S.*")


def line_limit(max_value_size):
    return 4 * (max_value_size + 1024) + 64


# --------------------------------------------------------------------------
# SPEC section 1

def test_spec_session_byte_for_byte(server):
    s = server()
    c = s.client()
    c.send(b'set("test_key","test value",60)\n')
    assert c.recv_raw_line() == b"test value\n"
    c.send(b'get("test_key")\n')
    assert c.recv_raw_line() == b"test value\n"
    c.assert_no_data()


# --------------------------------------------------------------------------
# every command

def test_set_get_overwrite(server):
    c = server().client()
    assert c.cmd(b'set("k","v1",60)') == b"v1"
    assert c.cmd(b'get("k")') == b"v1"
    assert c.cmd(b'set("k","v2")') == b"v2"
    assert c.cmd(b'get("k")') == b"v2"
    # a set without ttl on a key that had one never expires
    assert c.cmd(b'ttl("k")') == b"-1"
    assert c.ping() == b"pong"


def test_set_two_args_never_expires(server):
    c = server().client()
    assert c.cmd(b'set("forever","x")') == b"x"
    assert c.cmd(b'ttl("forever")') == b"-1"


def test_set_ttl_zero_never_expires(server):
    c = server().client()
    assert c.cmd(b'set("z","x",0)') == b"x"
    assert c.cmd(b'ttl("z")') == b"-1"
    assert c.cmd(b'get("z")') == b"x"


def test_set_overwrite_replaces_ttl(server):
    c = server().client()
    assert c.cmd(b'set("k","a")') == b"a"
    assert c.cmd(b'set("k","b",100)') == b"b"
    assert c.cmd(b'ttl("k")') == b"100"
    assert c.cmd(b'set("k","c")') == b"c"
    assert c.cmd(b'ttl("k")') == b"-1"


def test_set_max_ttl_accepted(server):
    c = server().client()
    assert c.cmd(b'set("k","v",315360000)') == b"v"
    assert c.cmd(b'ttl("k")') == b"315360000"
    assert c.cmd(b'expire("k",315360000)') == b"OK"
    assert c.cmd(b'ttl("k")') == b"315360000"


def test_ttl_counts_down_and_rounds_up(server):
    c = server().client()
    t0 = time.monotonic()
    assert c.cmd(b'set("k","v",10)') == b"v"
    # right after the set: 9.99.. s left, rounded up -> 10
    assert c.cmd(b'ttl("k")') == b"10"
    time.sleep(1.3)
    t_send = time.monotonic()
    got = int(c.cmd(b'ttl("k")'))
    t_recv = time.monotonic()
    # the true remaining time lies in [10-(t_recv-t0), 10-(t_send-t0)+slack]
    lo = math.ceil(10 - (t_recv - t0)) if t_recv - t0 < 10 else 0
    hi = math.ceil(10 - (t_send - t0) + 0.01)
    assert lo <= got <= hi, (got, lo, hi)
    assert got < 10, "ttl did not count down after 1.3 s: %d" % got


def test_get_missing(server):
    c = server().client()
    assert c.cmd(b'get("nope")') == NOT_FOUND
    assert c.ping() == b"pong"


def test_del_twice(server):
    c = server().client()
    assert c.cmd(b'set("k","v")') == b"v"
    assert c.cmd(b'del("k")') == b"OK"
    assert c.cmd(b'get("k")') == NOT_FOUND
    assert c.cmd(b'del("k")') == NOT_FOUND
    assert c.cmd(b'ttl("k")') == NOT_FOUND
    assert c.ping() == b"pong"


def test_ttl_missing(server):
    c = server().client()
    assert c.cmd(b'ttl("nope")') == NOT_FOUND
    assert c.ping() == b"pong"


def test_expire(server):
    c = server().client()
    assert c.cmd(b'set("k","v")') == b"v"
    assert c.cmd(b'ttl("k")') == b"-1"
    assert c.cmd(b'expire("k",50)') == b"OK"
    assert c.cmd(b'ttl("k")') == b"50"
    assert c.cmd(b'get("k")') == b"v"
    # 0 removes the expiry
    assert c.cmd(b'expire("k",0)') == b"OK"
    assert c.cmd(b'ttl("k")') == b"-1"
    assert c.cmd(b'get("k")') == b"v"


def test_expire_missing_key(server):
    c = server().client()
    assert c.cmd(b'expire("nope",10)') == NOT_FOUND
    assert c.cmd(b'expire("nope",0)') == NOT_FOUND
    assert c.cmd(b'get("nope")') == NOT_FOUND
    assert c.ping() == b"pong"


def test_ping(server):
    c = server().client()
    c.send(b"ping()\n")
    assert c.recv_raw_line() == b"pong\n"


def test_quit_closes_without_reply(server):
    s = server()
    c = s.client()
    c.send(b'set("q","1")\nquit()\nping()\n')
    assert c.recv_line() == b"1"
    assert c.is_closed(5), "server did not close after quit()"
    assert bytes(c.buf) == b"", "reply after quit(): %r" % bytes(c.buf)
    # the server is fine and kept the write
    d = s.client()
    assert d.cmd(b'get("q")') == b"1"


def test_stats_format_and_counters(server):
    s = server("--memory", "16")
    c = s.client()
    st = c.stats()
    names = ("version uptime pid curr_connections total_connections "
             "rejected_connections curr_items bytes limit_maxbytes cmd_get "
             "cmd_set cmd_del cmd_ttl cmd_expire get_hits get_misses expired "
             "evicted items_digest protocol_errors").split()
    missing = [n for n in names if n not in st]
    assert not missing, "stats() lacks %s" % missing
    for n in names:
        if n not in ("version", "items_digest"):
            assert re.fullmatch(r"\d+", st[n]), "STAT %s %r" % (n, st[n])
    assert st["version"], "empty version"
    assert int(st["pid"]) == s.pid
    assert int(st["limit_maxbytes"]) == 16 * MIB
    assert int(st["bytes"]) <= int(st["limit_maxbytes"])
    assert int(st["curr_connections"]) >= 1
    assert int(st["curr_items"]) == 0

    c.cmd(b'set("a","1")')
    c.cmd(b'set("b","2",100)')
    c.cmd(b'get("a")')
    c.cmd(b'get("a")')
    c.cmd(b'get("missing")')
    c.cmd(b'del("b")')
    c.cmd(b'del("b")')
    c.cmd(b'ttl("a")')
    c.cmd(b'expire("a",100)')
    c.cmd(b'nonsense(')
    c.cmd(b'get("unterminated)')
    st2 = c.stats()

    def d(n):
        return int(st2[n]) - int(st[n])
    assert d("cmd_set") == 2
    assert d("cmd_get") == 3
    assert d("get_hits") == 2
    assert d("get_misses") == 1
    assert d("cmd_del") == 2
    assert d("cmd_ttl") == 1
    assert d("cmd_expire") == 1
    assert int(st2["curr_items"]) == 1
    assert int(st2["bytes"]) > int(st["bytes"])
    assert d("protocol_errors") >= 1


def test_stats_connection_counters(server):
    s = server()
    c = s.client()
    # the start-up probe connection may not be reaped yet
    poll(lambda: c.stat("curr_connections") == 1, timeout=5,
         what="curr_connections == 1")
    base = c.stats()
    others = [s.client() for _ in range(3)]
    for o in others:
        assert o.ping() == b"pong"
    st = c.stats()
    assert int(st["curr_connections"]) == int(base["curr_connections"]) + 3
    assert int(st["total_connections"]) >= int(base["total_connections"]) + 3
    for o in others:
        o.close()
    poll(lambda: c.stat("curr_connections") == 1, timeout=5,
         what="curr_connections back to 1 after closes")


def test_stats_pipelined(server):
    c = server().client()
    c.send(b"stats()\nping()\n")
    lines = []
    while True:
        line = c.recv_line()
        lines.append(line)
        if line == b"END":
            break
    assert all(l.startswith(b"STAT ") for l in lines[:-1])
    assert c.recv_line() == b"pong"


# --------------------------------------------------------------------------
# items_digest

def _digest(c):
    return c.stats()["items_digest"]


def test_items_digest_order_independent(server):
    a = server().client()
    b = server().client()
    empty = _digest(a)
    assert _digest(b) == empty
    kv = [(b"k%d" % i, b"value %d" % i) for i in range(50)]
    for k, v in kv:
        assert a.call("set", k, v) == v
    for k, v in reversed(kv):
        assert b.call("set", k, v) == v
    da = _digest(a)
    assert da != empty
    assert _digest(b) == da
    # a different value makes a different digest
    assert b.call("set", b"k7", b"other") == b"other"
    assert _digest(b) != da
    assert b.call("set", b"k7", b"value 7") == b"value 7"
    assert _digest(b) == da
    # the digest covers the expiry time too
    assert b.call("set", b"k7", b"value 7", 1000) == b"value 7"
    assert _digest(b) != da
    assert b.call("set", b"k7", b"value 7") == b"value 7"
    assert _digest(b) == da
    # deleting everything brings back the empty digest
    for k, _ in kv:
        assert a.call("del", k) == b"OK"
    assert _digest(a) == empty


# --------------------------------------------------------------------------
# errors: exact messages; the connection stays usable after each

EXACT_ERRORS = [
    (b'nosuch("k")', UNRECOGNIZED),
    (b'frobnicate()', UNRECOGNIZED),
    (b'hello', UNRECOGNIZED),
    (b'ping', UNRECOGNIZED),
    (b'"get"("k")', UNRECOGNIZED),
    (b'get("missing")', NOT_FOUND),
    (b'del("missing")', NOT_FOUND),
    (b'ttl("missing")', NOT_FOUND),
    (b'expire("missing",5)', NOT_FOUND),
    (b'set("k","v","60")', TTL_NOT_INT),
    (b'expire("k","60")', TTL_NOT_INT),
    (b'set("k","v",315360001)', TTL_RANGE),
    (b'expire("k",315360001)', TTL_RANGE),
    (b'set("k","v",99999999999999999999999999)', TTL_RANGE),
    (b'set("k","v",abc)', TTL_NOT_INT),
    (b'set("k","v",1.5)', TTL_NOT_INT),
    (b'expire("k",ten)', TTL_NOT_INT),
    (b'get("")', KEY_TOO_LONG),
    (b'set("","v")', KEY_TOO_LONG),
    (b'del("")', KEY_TOO_LONG),
    (req("get", b"k" * 1025), KEY_TOO_LONG),
    (req("set", b"k" * 1025, b"v"), KEY_TOO_LONG),
    (req("set", Raw(quote_hex(b"\x01" * 1025)), b"v", 5), KEY_TOO_LONG),
]


@pytest.mark.parametrize("request_line,expected", EXACT_ERRORS,
                         ids=[r[:40].decode(errors="replace")
                              for r, _ in EXACT_ERRORS])
def test_error_exact(server, request_line, expected):
    c = server().client()
    assert c.cmd(request_line) == expected
    assert c.ping() == b"pong"
    # and pipelined: the error and the next reply keep their order
    c.send(request_line + b"\nping()\n")
    assert c.recv_line() == expected
    assert c.recv_line() == b"pong"


SYNTAX_ERRORS = [
    b'get("k)',                 # unterminated string
    b'get("k',                  # unterminated string, no paren
    b'set("k","v)',
    b'get("\\q")',              # bad escape
    b'get("\\x4")',             # short hex escape
    b'get("\\xzz")',            # bad hex escape
    b'get("k\\")',              # escaped quote leaves string unterminated
    b'get("a","b")',            # wrong number of arguments
    b'get()',
    b'set("k")',
    b'set("k","v",1,2)',
    b'del()',
    b'ttl("a","b")',
    b'expire("k")',
    b'ping("x")',
    b'get("k") x',              # trailing garbage
    b'get("k"))',
    b'get("k");',
    b'set("k" "v")',            # missing comma
    b'set("k",,"v")',
    b'get("k",)',
]


@pytest.mark.parametrize("request_line", SYNTAX_ERRORS,
                         ids=[r.decode() for r in SYNTAX_ERRORS])
def test_error_syntax(server, request_line):
    c = server().client()
    reply = c.cmd(request_line)
    assert SYNTAX.fullmatch(reply), "%r -> %r" % (request_line, reply)
    assert c.ping() == b"pong"
    # nothing was stored by a malformed set
    assert c.cmd(b'get("k")') == NOT_FOUND


# Cases where the SPEC names no single message: any error line, and the
# connection stays usable.
LOOSE_ERRORS = [
    (b'set("k","v",-1)', b"Error: TTL"),
    (b'expire("k",-5)', b"Error: TTL"),
    (b'get(123)', b"Error: "),
    (b'get(k)', b"Error: "),
    (b'get("k"', b"Error: "),
    (b'get "k"', b"Error: "),
    (b'(', b"Error: "),
    (b')', b"Error: "),
    (b'\x00\x01\xff', b"Error: "),
    (b'get_x("k")', b"Error: "),
]


@pytest.mark.parametrize("request_line,prefix", LOOSE_ERRORS,
                         ids=[r.decode(errors="replace") for r, _ in LOOSE_ERRORS])
def test_error_loose(server, request_line, prefix):
    c = server().client()
    reply = c.cmd(request_line)
    assert reply.startswith(prefix), "%r -> %r" % (request_line, reply)
    assert c.ping() == b"pong"
    assert c.cmd(b'get("k")') == NOT_FOUND


def test_key_length_limit_exact(server):
    c = server().client()
    k = b"K" * 1024
    assert c.call("set", k, b"v") == b"v"
    assert c.call("get", k) == b"v"
    # 1024 bytes after unescaping, written as 4096 bytes of \xHH
    k2 = bytes(range(256)) * 4
    assert c.cmd(req("set", Raw(quote_hex(k2)), b"w")) == b"w"
    assert c.cmd(req("get", Raw(quote_hex(k2)))) == b"w"
    assert c.call("get", b"K" * 1025) == KEY_TOO_LONG
    assert c.ping() == b"pong"


def test_value_too_large(server):
    c = server("--max_value_size", "100").client()
    assert c.call("set", b"k", b"a" * 100) == b"a" * 100
    assert c.call("set", b"k2", b"a" * 101) == VALUE_TOO_LARGE
    assert c.call("get", b"k2") == NOT_FOUND
    # the limit is on bytes after unescaping
    assert c.cmd(req("set", b"k3", Raw(quote_hex(b"\x00" * 100)))) \
        == b"\\x00" * 100
    assert c.cmd(req("set", b"k3", Raw(quote_hex(b"\x00" * 101)))) \
        == VALUE_TOO_LARGE
    assert c.ping() == b"pong"
    assert c.call("get", b"k") == b"a" * 100


def test_value_too_large_default_limit(server):
    c = server().client()
    big = b"b" * (1 << 20)
    assert c.pipeline([req("set", b"big", big)]) == [big]
    r = c.pipeline([req("set", b"big2", big + b"b"), b"ping()"])
    assert r == [VALUE_TOO_LARGE, b"pong"]
    assert c.call("get", b"big2") == NOT_FOUND


def test_max_value_fully_escaped_fits_line(server):
    """A value of exactly max_value_size written entirely as \\xHH plus a
    1024-byte \\xHH key is a legal request: it must fit the line limit."""
    c = server().client()
    value = bytes(range(256)) * 4096  # 1 MiB
    key = bytes(range(256)) * 4
    line = req("set", Raw(quote_hex(key)), Raw(quote_hex(value)), 60)
    assert len(line) < line_limit(1 << 20)
    r = c.pipeline([line, b"ping()"], timeout=60)
    assert decode_value(r[0]) == value
    assert r[1] == b"pong"
    r = c.pipeline([req("get", Raw(quote_hex(key)))], timeout=60)
    assert decode_value(r[0]) == value


def test_line_too_long(server):
    mvs = 100
    limit = line_limit(mvs)
    c = server("--max_value_size", str(mvs)).client()
    # exactly the limit (blanks are ignored; '\n' not counted): served
    ok = b'set("k","v")'
    ok = ok + b" " * (limit - len(ok))
    assert len(ok) == limit
    assert c.cmd(ok) == b"v"
    # one byte more: too long
    assert c.cmd(ok.replace(b'"v"', b'"w"') + b" ") == LINE_TOO_LONG
    assert c.cmd(b'get("k")') == b"v"
    # over the limit
    assert c.cmd(b'set("k","' + b"x" * (limit + 10) + b'")') == LINE_TOO_LONG
    assert c.ping() == b"pong"
    assert c.cmd(b'get("k")') == b"v"
    # two long lines in a row, then a normal one: one error each
    c.send(b"y" * (limit + 1000) + b"\n" + b"z" * (3 * limit) + b"\nping()\n")
    assert c.recv_line() == LINE_TOO_LONG
    assert c.recv_line() == LINE_TOO_LONG
    assert c.recv_line() == b"pong"
    c.assert_no_data()


def test_line_too_long_reported_before_newline(server):
    mvs = 100
    limit = line_limit(mvs)
    c = server("--max_value_size", str(mvs)).client()
    # cross the limit without sending '\n': the error comes at once
    c.send(b'set("k","' + b"x" * (limit + 100))
    assert c.recv_line(timeout=5) == LINE_TOO_LONG
    # the rest of that line is discarded, however long, up to '\n'
    for _ in range(5):
        c.send(b'x")\nping()\n'.replace(b"\n", b"") * 1000)
    c.send(b'")\nping()\n')
    assert c.recv_line() == b"pong"
    assert c.cmd(b'get("k")') == NOT_FOUND
    c.assert_no_data()


def test_line_too_long_default_limit(server):
    c = server().client()
    limit = line_limit(1 << 20)
    r = c.pipeline([b"a" * (limit + 1), b"ping()"], timeout=60)
    assert r == [LINE_TOO_LONG, b"pong"]


def test_item_larger_than_memory_cap(server):
    c = server("--memory", "1", "--max_value_size", str(3 * MIB)).client()
    big = b"m" * (2 * MIB)
    r = c.pipeline([req("set", b"big", big), b"ping()"])
    assert r == [MEMORY, b"pong"]
    assert c.call("get", b"big") == NOT_FOUND
    assert c.call("set", b"small", b"s") == b"s"


# --------------------------------------------------------------------------
# framing

def test_pipeline_1000_in_one_send(server):
    c = server().client()
    lines, expected = [], []
    for i in range(198):
        if i % 20 == 0:
            lines.append(b"ping()")
            expected.append(b"pong")
        k, v = b"p%d" % i, b"val %d" % i
        lines += [req("set", k, v), req("get", k), req("ttl", k),
                  req("del", k), req("get", k)]
        expected += [v, v, b"-1", b"OK", NOT_FOUND]
    assert len(lines) == 1000
    c.send(b"".join(l + b"\n" for l in lines))
    got = [c.recv_line() for _ in lines]
    for i, (g, e) in enumerate(zip(got, expected)):
        assert g == e, "reply %d to %r: %r != %r" % (i, lines[i], g, e)
    c.assert_no_data()


def test_dribble_one_byte_per_send(server):
    c = server().client()
    data = (b'set("drib\\x62le","a \\"quoted\\" value",60)\r\n'
            b'get("dribble")\n\n  \nping()\n')
    for i in range(len(data)):
        c.sock.send(data[i:i + 1])
        time.sleep(0.001)
    assert c.recv_line() == b'a "quoted" value'
    assert c.recv_line() == b'a "quoted" value'
    assert c.recv_line() == b"pong"
    c.assert_no_data()


def test_blank_lines_get_no_reply(server):
    c = server().client()
    c.send(b"\n\n   \n\t\n\r\n \t \r\nping()\n")
    assert c.recv_line() == b"pong"
    c.assert_no_data()


def test_blanks_around_tokens(server):
    c = server().client()
    assert c.cmd(b'  set( "k" , "v w" , 60 )  ') == b"v w"
    assert c.cmd(b'\tget(\t"k"\t)\t') == b"v w"
    assert c.cmd(b' ttl ( "k" ) ') == b"60"
    assert c.cmd(b'expire(  "k"  ,   0  )') == b"OK"
    assert c.cmd(b' ping( ) ') == b"pong"
    assert c.cmd(b'set(  "k2",  "x"  )') == b"x"
    assert c.cmd(b'  del( "k" )') == b"OK"


def test_command_names_case_insensitive(server):
    s = server()
    c = s.client()
    assert c.cmd(b'SET("k","v",60)') == b"v"
    assert c.cmd(b'Get("k")') == b"v"
    assert c.cmd(b'TTL("k")') == b"60"
    assert c.cmd(b'eXpIrE("k",0)') == b"OK"
    assert c.cmd(b'PING()') == b"pong"
    assert c.cmd(b'DEL("k")') == b"OK"
    c.send(b"STATS()\n")
    line = c.recv_line()
    assert line.startswith(b"STAT ")
    while line != b"END":
        line = c.recv_line()
    c.send(b"QUIT()\n")
    assert c.is_closed(5)
    assert bytes(c.buf) == b""


def test_crlf_line_endings(server):
    c = server().client()
    c.send(b'set("crlf","v",60)\r\nget("crlf")\r\nttl("crlf")\r\nping()\r\n')
    assert c.recv_raw_line() == b"v\n"
    assert c.recv_raw_line() == b"v\n"
    assert c.recv_raw_line() == b"60\n"
    assert c.recv_raw_line() == b"pong\n"
    # the stored value has no stray \r
    c.send(b'get("crlf")\n')
    assert c.recv_raw_line() == b"v\n"


# --------------------------------------------------------------------------
# binary safety and the reply encoding

def _check_reply(reply, value):
    assert normalize_hex(reply) == encode_value(value), \
        "reply %r for value %r" % (reply[:120], value[:40])
    assert decode_value(reply) == value


def test_all_byte_values_roundtrip_hex_escaped(server):
    c = server().client()
    value = bytes(range(256))
    key = bytes(range(256))
    r = c.cmd(req("set", Raw(quote_hex(key)), Raw(quote_hex(value)), 60))
    _check_reply(r, value)
    r = c.cmd(req("get", Raw(quote_hex(key))))
    _check_reply(r, value)
    assert c.cmd(req("ttl", Raw(quote_hex(key)))) == b"60"
    assert c.cmd(req("del", Raw(quote_hex(key)))) == b"OK"


def test_all_byte_values_roundtrip_raw(server):
    """Inside quotes any byte may appear raw except " and \\ (and LF, which
    ends the line)."""
    c = server().client()
    value = bytes(range(256)) * 3
    r = c.cmd(req("set", b"raw", value))       # quote() leaves bytes raw
    _check_reply(r, value)
    _check_reply(c.cmd(b'get("raw")'), value)


def test_request_escapes(server):
    c = server().client()
    r = c.cmd(b'set("e","a\\\\b\\"c\\nd\\re\\tf\\0g\\x41\\x7f\\xff")')
    value = b'a\\b"c\nd\re\tf\x00gA\x7f\xff'
    _check_reply(r, value)
    _check_reply(c.cmd(b'get("e")'), value)
    # upper-case hex digits are accepted too
    assert c.cmd(b'set("h","\\x4A\\x4b\\xFF")') == b"JK\xff"
    # exact bytes: \t stays \t, 0x00 is \x00, 0xff is raw, " is raw
    assert normalize_hex(r) == b'a\\\\b"c\\nd\\re\\tf\\x00gA\\x7f\xff'


def test_nul_in_key_is_binary_safe(server):
    c = server().client()
    assert c.cmd(b'set("a\\0b","1")') == b"1"
    assert c.cmd(b'set("a\\0c","2")') == b"2"
    assert c.cmd(b'set("a","3")') == b"3"
    assert c.cmd(b'get("a\\x00b")') == b"1"
    assert c.cmd(b'get("a\\0c")') == b"2"
    assert c.cmd(b'get("a")') == b"3"


def test_utf8_goes_raw(server):
    c = server().client()
    v = "héllo wörld ✓ 日本".encode()
    assert c.call("set", "ключ".encode(), v) == v
    assert c.call("get", "ключ".encode()) == v


def test_value_starting_with_error_prefix(server):
    c = server().client()
    v = b"Error: Record not found"
    r = c.call("set", b"trap", v)
    assert not r.startswith(b"Error: ")
    assert normalize_hex(r) == b"\\x45rror: Record not found"
    assert decode_value(r) == v
    r = c.call("get", b"trap")
    assert normalize_hex(r) == b"\\x45rror: Record not found"
    # only the exact prefix "Error: " is disguised
    assert c.call("set", b"t2", b"Error:x") == b"Error:x"
    assert c.call("set", b"t3", b"error: x") == b"error: x"


def test_empty_value(server):
    c = server().client()
    c.send(b'set("empty","")\nget("empty")\nping()\n')
    assert c.recv_raw_line() == b"\n"
    assert c.recv_raw_line() == b"\n"
    assert c.recv_line() == b"pong"


def test_connection_survives_many_errors(server):
    c = server().client()
    bad = [b'x', b'get(', b'set("k","v",-1)', b'get("\\q")', b'get("")',
           b'(((', b'set("k","v",315360001)']
    c.send(b"".join(b + b"\n" for b in bad * 50) + b"ping()\n")
    for _ in range(len(bad) * 50):
        assert c.recv_line().startswith(b"Error: ")
    assert c.recv_line() == b"pong"
