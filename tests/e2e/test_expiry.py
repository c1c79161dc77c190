"""SPEC section 4: expiry (lazy and active through the TTL heap)."""

import time

import pytest

from conftest import poll, req

NOT_FOUND = b"Error: Record not found"


def test_short_ttl_expires(server):
    c = server().client()
    expired0 = c.stat("expired")
    t_set = time.monotonic()
    assert c.cmd(b'set("short","v",1)') == b"v"
    t_get = time.monotonic()
    r = c.cmd(b'get("short")')
    if t_get - t_set < 0.9:
        assert r == b"v", "expired too early"
    # not gone before ~1 s
    time.sleep(max(0.0, 0.6 - (time.monotonic() - t_set)))
    t_get = time.monotonic()
    r = c.cmd(b'get("short")')
    if t_get - t_set < 0.9:
        assert r == b"v", "gone after %.2f s with ttl 1" % (t_get - t_set)
    time.sleep(max(0.0, 1.2 - (time.monotonic() - t_set)))
    poll(lambda: c.cmd(b'get("short")') == NOT_FOUND, timeout=3,
         what="key with ttl 1 to expire")
    assert c.cmd(b'ttl("short")') == NOT_FOUND
    assert c.cmd(b'del("short")') == NOT_FOUND
    assert c.cmd(b'expire("short",100)') == NOT_FOUND
    assert c.stat("expired") >= expired0 + 1
    assert c.ping() == b"pong"


def test_active_expiry_without_access(server):
    """Nobody touches the keys: the heap must remove them (curr_items drops
    back, bytes come back, expired counts them)."""
    c = server().client()
    base = c.stats()
    for i in range(100):
        assert c.call("set", b"a%d" % i, b"x" * 1000, 1) == b"x" * 1000
    st = c.stats()
    assert int(st["curr_items"]) == 100
    assert int(st["bytes"]) > int(base["bytes"]) + 100 * 1000
    poll(lambda: c.stat("curr_items") == 0, timeout=4,
         what="curr_items to drop to 0 by active expiry")
    st2 = c.stats()
    assert int(st2["expired"]) >= int(base["expired"]) + 100
    assert int(st2["bytes"]) < int(st["bytes"]) - 100 * 1000
    assert st2["items_digest"] == base["items_digest"]


def test_expire_makes_key_expire(server):
    c = server().client()
    assert c.cmd(b'set("k","v")') == b"v"
    assert c.cmd(b'expire("k",1)') == b"OK"
    assert c.cmd(b'ttl("k")') == b"1"
    time.sleep(1.0)
    poll(lambda: c.cmd(b'get("k")') == NOT_FOUND, timeout=3,
         what="expire(k,1) to take effect")


def test_expire_zero_keeps_key(server):
    c = server().client()
    assert c.cmd(b'set("k","v",1)') == b"v"
    assert c.cmd(b'expire("k",0)') == b"OK"
    time.sleep(1.5)
    assert c.cmd(b'get("k")') == b"v"
    assert c.cmd(b'ttl("k")') == b"-1"


def test_set_without_ttl_clears_expiry(server):
    c = server().client()
    assert c.cmd(b'set("k","v",1)') == b"v"
    assert c.cmd(b'set("k","w")') == b"w"
    time.sleep(1.5)
    assert c.cmd(b'get("k")') == b"w"


def test_expired_key_can_be_set_again(server):
    c = server().client()
    assert c.cmd(b'set("k","old",1)') == b"old"
    time.sleep(1.1)
    poll(lambda: c.cmd(b'get("k")') == NOT_FOUND, timeout=3, what="expiry")
    assert c.cmd(b'set("k","new")') == b"new"
    assert c.cmd(b'get("k")') == b"new"
    assert c.cmd(b'ttl("k")') == b"-1"


@pytest.mark.slow
def test_expiry_wave(server):
    """20000 keys with ttl 1 expire; curr_items returns to 0, and the server
    keeps answering while the wave is removed."""
    s = server()
    c = s.client()
    other = s.client()
    n = 20000
    base = c.stats()
    lines = [req("set", b"wave:%d" % i, b"v%d" % i, 1) for i in range(n)]
    replies = c.pipeline(lines, timeout=60)
    bad = [(i, r) for i, r in enumerate(replies) if r != b"v%d" % i]
    assert not bad, "bad set replies: %r" % bad[:5]
    # a key without ttl survives the wave
    assert c.cmd(b'set("keeper","k")') == b"k"
    time.sleep(1.0)

    def drained():
        assert other.ping() == b"pong"
        return c.stat("curr_items") == 1
    poll(drained, timeout=10, interval=0.1,
         what="curr_items to drop to 1 after the wave")
    st = c.stats()
    assert int(st["expired"]) >= int(base["expired"]) + n
    assert c.cmd(b'get("keeper")') == b"k"
    assert c.cmd(b'get("wave:0")') == NOT_FOUND
    assert c.cmd(b'get("wave:19999")') == NOT_FOUND
