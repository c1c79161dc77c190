"""SPEC section 4: the memory cap and the eviction policies."""

import pytest

from conftest import MIB, SANITIZED, poll, req

MEMORY = b"Error: Memory overusage"
NOT_FOUND = b"Error: Record not found"
CAP_MIB = 8
RSS_LIMIT = (CAP_MIB + 40) * MIB
VSIZE = 1024
BATCH = 1024            # 1 MiB of values per batch


def value(i):
    v = b"%010d:" % i
    return v + b"x" * (VSIZE - len(v))


def check_limits(s, c, where):
    st = c.stats()
    assert int(st["limit_maxbytes"]) == CAP_MIB * MIB
    assert int(st["bytes"]) <= int(st["limit_maxbytes"]), \
        "bytes %s > limit_maxbytes %s %s" % (st["bytes"],
                                            st["limit_maxbytes"], where)
    if not SANITIZED:
        rss = s.rss()
        assert rss < RSS_LIMIT, "RSS %.1f MiB > %.1f MiB %s" % (
            rss / MIB, RSS_LIMIT / MIB, where)
    return st


def write_batch(c, prefix, start, count, ttl=None):
    lines = []
    for i in range(start, start + count):
        if ttl is None:
            lines.append(req("set", b"%s:%d" % (prefix, i), value(i)))
        else:
            lines.append(req("set", b"%s:%d" % (prefix, i), value(i), ttl))
    return c.pipeline(lines, timeout=60)


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["lru", "ttl"])
def test_eviction_keeps_within_cap(server, policy):
    s = server("--memory", CAP_MIB, "--eviction", policy)
    c = s.client()
    ttl = 3600 if policy == "ttl" else None
    total = 80          # MiB of values
    for b in range(total):
        replies = write_batch(c, b"k", b * BATCH, BATCH, ttl)
        for j, r in enumerate(replies):
            i = b * BATCH + j
            assert r == value(i), "set #%d under %s: %r" % (i, policy, r[:60])
        check_limits(s, c, "after %d MiB" % (b + 1))
    st = c.stats()
    assert int(st["evicted"]) > 0
    n = total * BATCH
    # the store holds a sensible share of the cap, not almost nothing
    assert int(st["curr_items"]) * VSIZE > CAP_MIB * MIB // 4, st["curr_items"]
    assert int(st["curr_items"]) < n
    # the most recent write is there, the first one was evicted
    last = n - 1
    assert c.call("get", b"k:%d" % last) == value(last)
    assert c.call("get", b"k:0") == NOT_FOUND
    assert c.ping() == b"pong"


@pytest.mark.slow
def test_noeviction_refuses_and_keeps_serving(server):
    s = server("--memory", CAP_MIB, "--eviction", "noeviction")
    c = s.client()
    stored = []
    refused = 0
    for b in range(80):
        replies = write_batch(c, b"k", b * BATCH, BATCH)
        for j, r in enumerate(replies):
            i = b * BATCH + j
            if r == value(i):
                stored.append(i)
            else:
                assert r == MEMORY, "set #%d: %r" % (i, r[:60])
                refused += 1
        check_limits(s, c, "after %d MiB" % (b + 1))
    st = c.stats()
    assert refused > 0
    assert len(stored) > 0
    assert int(st["evicted"]) == 0
    assert int(st["curr_items"]) == len(stored)
    # every acknowledged write is still there; refused ones are not
    for i in stored[:200] + stored[-200:]:
        assert c.call("get", b"k:%d" % i) == value(i)
    stored_set = set(stored)
    refused_key = next(i for i in range(80 * BATCH) if i not in stored_set)
    assert c.call("get", b"k:%d" % refused_key) == NOT_FOUND
    assert c.ping() == b"pong"
    # when full, overwriting with a smaller value and expire() still work
    small = [req("set", b"k:%d" % i, b"s") for i in stored[-100:]]
    assert c.pipeline(small) == [b"s"] * 100
    assert c.call("expire", b"k:%d" % stored[0], 1000) == b"OK"
    assert c.call("ttl", b"k:%d" % stored[0]) == b"1000"
    # freeing memory makes room again
    for i in stored[:2000]:
        assert c.call("del", b"k:%d" % i) == b"OK"
    assert c.call("set", b"fresh", value(1)) == value(1)
    assert c.call("get", b"fresh") == value(1)


@pytest.mark.slow
def test_ttl_policy_never_evicts_items_without_ttl(server):
    s = server("--memory", CAP_MIB, "--eviction", "ttl")
    c = s.client()
    keep = 2000                       # ~2 MiB that never expires
    replies = write_batch(c, b"keep", 0, keep)
    assert all(r == value(i) for i, r in enumerate(replies))
    for b in range(2 * CAP_MIB):
        replies = write_batch(c, b"t", b * BATCH, BATCH, ttl=500)
        assert all(r == value(b * BATCH + j) for j, r in enumerate(replies))
        check_limits(s, c, "after %d MiB" % (b + 1))
    assert c.stat("evicted") > 0
    got = c.pipeline([req("get", b"keep:%d" % i) for i in range(keep)])
    lost = [i for i, r in enumerate(got) if r != value(i)]
    assert not lost, "ttl policy evicted %d keys without TTL" % len(lost)


def test_ttl_policy_without_ttls_refuses(server):
    """--eviction ttl with no item carrying a TTL: nothing can be evicted,
    writes are refused with Error: Memory overusage."""
    s = server("--memory", CAP_MIB, "--eviction", "ttl")
    c = s.client()
    seen = False
    for b in range(3 * CAP_MIB):
        replies = write_batch(c, b"n", b * BATCH, BATCH)
        for j, r in enumerate(replies):
            assert r in (value(b * BATCH + j), MEMORY), r[:60]
        check_limits(s, c, "after %d MiB" % (b + 1))
        if MEMORY in replies:
            seen = True
            break
    assert seen, "never refused a write"
    assert c.stat("evicted") == 0
    assert c.call("get", b"n:0") == value(0)
    assert c.ping() == b"pong"


@pytest.mark.slow
def test_ttl_policy_evicts_closest_expiry_first(server):
    s = server("--memory", CAP_MIB, "--eviction", "ttl")
    c = s.client()
    # 500 long-lived keys, then far more short-lived ones than fit
    replies = write_batch(c, b"long", 0, 500, ttl=100000)
    assert all(r == value(i) for i, r in enumerate(replies))
    for b in range(3 * CAP_MIB):
        replies = write_batch(c, b"short", b * BATCH, BATCH, ttl=1000 + b)
        assert all(r == value(b * BATCH + j) for j, r in enumerate(replies))
        check_limits(s, c, "after %d MiB" % (b + 1))
    assert c.stat("evicted") > 0
    lines = [req("get", b"long:%d" % i) for i in range(500)]
    got = c.pipeline(lines)
    lost = [i for i, r in enumerate(got) if r != value(i)]
    assert not lost, "ttl policy evicted %d long-lived keys" % len(lost)
    assert c.call("get", b"short:0") == NOT_FOUND


@pytest.mark.slow
def test_lru_keeps_recently_read_keys(server):
    s = server("--memory", CAP_MIB, "--eviction", "lru")
    c = s.client()
    hot = 500
    replies = write_batch(c, b"hot", 0, hot)
    assert all(r == value(i) for i, r in enumerate(replies))
    cold_batch = 1000
    nbatches = 24
    get_hot = [req("get", b"hot:%d" % i) for i in range(hot)]
    for b in range(nbatches):
        replies = write_batch(c, b"cold", b * cold_batch, cold_batch)
        assert all(r == value(b * cold_batch + j)
                   for j, r in enumerate(replies))
        c.pipeline(get_hot)         # touch the hot keys
        check_limits(s, c, "after cold batch %d" % b)
    assert c.stat("evicted") > 0
    # measure survival; read cold keys first so reading does not bias it
    early = 5 * cold_batch
    cold = c.pipeline([req("get", b"cold:%d" % i) for i in range(early)])
    cold_alive = sum(1 for i, r in enumerate(cold) if r == value(i)) / early
    hot_r = c.pipeline(get_hot)
    hot_alive = sum(1 for i, r in enumerate(hot_r) if r == value(i)) / hot
    assert hot_alive >= 0.7, "only %.0f%% of hot keys survived" % (
        100 * hot_alive)
    assert hot_alive > cold_alive + 0.4, (hot_alive, cold_alive)


@pytest.mark.skipif(SANITIZED, reason="ASan's allocator keeps freed memory")
def test_rss_goes_back_after_mass_expiry(server):
    """SPEC section 11: memory freed by a mass expiry returns to the OS
    (and the expiry timer's longest turn is reported)."""
    s = server("--memory", 256)
    c = s.client()
    rss0 = s.rss()
    n, batch = 80000, 4000      # ~87 MiB of 1 KiB items, all due 10 s from now
    for b in range(0, n, batch):
        replies = c.pipeline([req("set", b"wave:%d" % i, value(i), 10)
                              for i in range(b, b + batch)], timeout=60)
        assert all(r == value(b + j) for j, r in enumerate(replies))
    rss1 = s.rss()
    slab1 = c.stat("slab_bytes")
    if c.stat("curr_items") == n:  # (not when writing took the machine 10 s)
        assert rss1 - rss0 > 64 * MIB, (rss0, rss1)
        assert slab1 >= n * VSIZE, slab1
    poll(lambda: c.stat("curr_items") == 0, timeout=40, what="the wave to expire")
    assert c.stat("expired") == n
    # the allocator gives the emptied pages back, a bounded number a turn
    poll(lambda: c.stat("slab_bytes") <= 4 * MIB, timeout=10,  # warm pages
         what="slab_bytes down from %d" % slab1)
    assert c.stat("slab_pages_released") * 64 * 1024 >= slab1 - 4 * MIB
    poll(lambda: s.rss() < rss0 + (rss1 - rss0) // 4, timeout=10,
         what="RSS back down from %.0f MiB (empty: %.0f MiB)" % (rss1 / MIB, rss0 / MIB))
    assert c.stat("expiry_turn_max_us") > 0
    assert c.stat("expiry_turn_cpu_max_us") > 0


def test_size_shift_gives_pages_back(server):
    """SPEC section 11: when value sizes shift at the cap, the pages of the
    old size class that evictions left sparse are compacted and given back:
    the allocator holds little more than the bytes it counts, and every key
    still present reads back whole."""
    s = server("--memory", CAP_MIB, "--eviction", "lru")
    c = s.client()
    small = lambda i: (b"%d:" % i + b"s" * 100)[:100]
    for b in range(0, 120000, 4000):    # ~13 MiB of 100 B values: past the cap
        c.pipeline([req("set", b"s:%d" % i, small(i)) for i in range(b, b + 4000)],
                   timeout=60)
    for b in range(0, 16 * BATCH, BATCH):  # then 16 MiB of 1 KiB values
        write_batch(c, b"l", b, BATCH)
    st = c.stats()
    assert int(st["bytes"]) <= CAP_MIB * MIB
    # the expiry timer compacts in bounded steps, a second apart when idle
    poll(lambda: c.stat("slab_bytes") <= c.stat("bytes") * 5 // 4 + MIB, timeout=20,
         what="slab_bytes %d near bytes %d" % (c.stat("slab_bytes"), c.stat("bytes")))
    got = c.pipeline([req("get", b"s:%d" % i) for i in range(120000)], timeout=60)
    present = [i for i, r in enumerate(got) if r != NOT_FOUND]
    assert present, "no small value left to check"
    assert all(got[i] == small(i) for i in present)
    got = c.pipeline([req("get", b"l:%d" % i) for i in range(16 * BATCH)], timeout=60)
    assert all(r == value(i) for i, r in enumerate(got) if r != NOT_FOUND)
    check_limits(s, c, "after the shift")
