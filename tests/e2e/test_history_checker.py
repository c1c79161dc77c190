"""The history checker of the randomized fault test (repl_history.py), on
synthetic histories: it must flag a lost acknowledged write, a resurrected
deleted value, an expire that reverted a newer value (issue 9, F3), and
accept every outcome that concurrent or unacknowledged writes allow. A
checker that cannot fail is worthless, so most cases here are failures.

Times are seconds of the client's monotonic clock; the margin is 5 ms.
"""

import pytest

from repl_history import NEVER, Op, check_history


def S(v, t0, t1, status="ok", key="k", exp=NEVER, who="c"):
    return Op(key, "set", t0, t1, status, value=v, expiry=exp, who=who)


def D(t0, t1, status="ok", key="k", who="c"):
    return Op(key, "del", t0, t1, status, who=who)


def X(exp, t0, t1, status="ok", key="k", who="c"):
    return Op(key, "expire", t0, t1, status, expiry=exp, who=who)


def check(ops, value, expiry=NEVER, key="k"):
    return check_history(ops, {key: (value, expiry)})


def assert_flags(ops, value, expiry=NEVER, word=None):
    problems = check(ops, value, expiry)
    assert problems, "checker accepted %r with final %r/%r" % (ops, value,
                                                               expiry)
    if word:
        assert any(word in p for p in problems), problems
    return problems


def assert_accepts(ops, value, expiry=NEVER):
    problems = check(ops, value, expiry)
    assert not problems, problems


# --------------------------------------------------------------------------
# failures it must flag

def test_flags_lost_write():
    ops = [S("a", 0.0, 0.1), S("b", 0.2, 0.3)]
    assert_flags(ops, "a", word="LOST acknowledged write")


def test_flags_lost_write_across_nodes_and_clients():
    # b acknowledged by another client on another node, well after a
    ops = [S("a", 0.0, 0.1, who="c1@node1"), S("b", 1.0, 1.1, who="c2@node2")]
    assert_flags(ops, "a", word="LOST")
    assert_accepts(ops, "b")


def test_flags_lost_write_when_key_is_absent():
    ops = [S("a", 0.0, 0.1)]
    assert_flags(ops, None, word="LOST acknowledged write")
    # also when an older delete exists: the set came after it
    ops = [D(0.0, 0.1), S("a", 0.2, 0.3)]
    assert_flags(ops, None, word="LOST")


def test_flags_resurrected_deleted_value():
    ops = [S("a", 0.0, 0.1), D(0.2, 0.3)]
    assert_flags(ops, "a", word="RESURRECTED")
    assert_accepts(ops, None)


def test_flags_resurrection_by_an_expire_after_the_delete():
    # node2 lags: it still holds "a" when the expire arrives, answers OK;
    # the expire must not bring the deleted value back
    ops = [S("a", 0.0, 0.1), D(0.2, 0.3, who="node1"),
           X(7, 0.4, 0.5, who="node2")]
    assert_flags(ops, "a", 7, word="RESURRECTED")
    assert_accepts(ops, None)


def test_flags_f3_expire_reverting_a_newer_value():
    # issue 9, F3: set old; set new (acknowledged); expire on a lagging node
    ops = [S("old", 0.0, 0.1), S("new", 0.2, 0.3, who="node1"),
           X(600, 0.4, 0.5, who="node2")]
    assert_flags(ops, "old", 600, word="LOST acknowledged write")
    assert_accepts(ops, "new", 600)
    # the newest expiry-setting operation is the expire: its expiry stays
    assert_flags(ops, "new", NEVER, word="E1")


def test_flags_a_value_nobody_wrote():
    assert_flags([S("a", 0.0, 0.1)], "zzz", word="V1")
    assert_flags([], "a", word="V1")
    # a value whose only set was refused with "Record not found"-like noop
    # cannot happen for sets; an unknown set may explain it, a noop cannot
    assert_flags([X(5, 0.0, 0.1, status="noop")], "a", word="V1")


def test_flags_expiry_older_than_the_value():
    # expire ended before the (acknowledged) set began: the set's expiry wins
    ops = [S("a", 0.0, 0.1), X(7, 0.2, 0.3), S("b", 0.4, 0.5)]
    assert_flags(ops, "b", 7, word="E1")
    assert_accepts(ops, "b", NEVER)
    # an expiry that no operation set
    assert_flags([S("a", 0.0, 0.1)], "a", 42, word="E1")


def test_flags_expiry_superseded_by_a_later_expire():
    ops = [S("a", 0.0, 0.1), X(7, 0.2, 0.3), X(NEVER, 0.4, 0.5)]
    assert_flags(ops, "a", 7, word="E1")
    assert_accepts(ops, "a", NEVER)


def test_flags_unknown_write_after_which_an_acked_one_came():
    # the unknown set's connection died at 0.3; whatever it did, it did it
    # before 0.3, and c was sent at 0.5 and acknowledged
    ops = [S("a", 0.0, 0.1), S("b", 0.2, 0.3, status="unknown"),
           S("c", 0.5, 0.6)]
    assert_flags(ops, "b", word="LOST")
    assert_accepts(ops, "c")


# --------------------------------------------------------------------------
# outcomes it must accept

def test_accepts_last_write():
    ops = [S("a", 0.0, 0.1), S("b", 0.2, 0.3), D(0.4, 0.5), S("c", 0.6, 0.7)]
    assert_accepts(ops, "c")
    for v in ("a", "b"):
        assert_flags(ops, v)
    assert_flags(ops, None)


@pytest.mark.parametrize("final", ["a", "b"])
def test_accepts_either_of_overlapping_sets(final):
    ops = [S("a", 0.0, 0.3, who="node1"), S("b", 0.1, 0.2, who="node2")]
    assert_accepts(ops, final)


@pytest.mark.parametrize("final", ["a", None])
def test_accepts_either_of_overlapping_set_and_del(final):
    ops = [S("x", 0.0, 0.05), S("a", 0.1, 0.3), D(0.2, 0.4)]
    assert_accepts(ops, final)
    assert_flags(ops, "x")


def test_margin_makes_near_simultaneous_writes_concurrent():
    # b sent 2 ms after a's reply: within the 5 ms margin, either may win
    ops = [S("a", 0.0, 0.100), S("b", 0.102, 0.2)]
    assert_accepts(ops, "a")
    assert_accepts(ops, "b")
    # 10 ms later: ordered
    ops = [S("a", 0.0, 0.100), S("b", 0.110, 0.2)]
    assert_flags(ops, "a")


def test_accepts_unknown_writes_either_way():
    ops = [S("a", 0.0, 0.1), S("b", 0.2, None, status="unknown")]
    assert_accepts(ops, "a")
    assert_accepts(ops, "b")     # t1 None: it may have landed any time
    assert_flags(ops, None)
    ops = [S("a", 0.0, 0.1), D(0.2, 0.3, status="unknown")]
    assert_accepts(ops, "a")
    assert_accepts(ops, None)


def test_unacknowledged_writes_supersede_nothing():
    # a later unknown del does not make an acknowledged set "lost"
    ops = [S("a", 0.0, 0.1), D(0.5, 0.6, status="unknown")]
    assert_accepts(ops, "a")


def test_noop_del_and_expire_have_no_effect():
    ops = [S("a", 0.0, 0.1), D(0.2, 0.3, status="noop"),
           X(9, 0.4, 0.5, status="noop")]
    assert_accepts(ops, "a", NEVER)
    assert_flags(ops, None)
    assert_flags(ops, "a", 9)


def test_accepts_expire_applied_on_a_newer_value():
    # an expire concurrent with a set on another node: either expiry
    ops = [S("a", 0.0, 0.1), S("b", 0.2, 0.4, exp=3), X(7, 0.3, 0.5)]
    assert_accepts(ops, "b", 7)
    assert_accepts(ops, "b", 3)
    # an expire acknowledged before the newest set began does not survive
    ops = [S("a", 0.0, 0.1), X(7, 0.2, 0.3), S("b", 0.4, 0.5, exp=3)]
    assert_accepts(ops, "b", 3)
    assert_flags(ops, "b", 7)


def test_expire_after_delete_leaves_key_absent():
    ops = [S("a", 0.0, 0.1), D(0.2, 0.3), X(7, 0.4, 0.5)]
    assert_accepts(ops, None)


def test_initial_state_and_other_keys():
    assert_accepts([], None)
    # ops of other keys do not explain this key
    ops = [S("a", 0.0, 0.1, key="other")]
    assert check_history(ops, {"k": (None, NEVER)}) == []
    assert check_history(ops, {"k": ("a", NEVER)})
    assert check_history(ops, {"other": ("a", NEVER)}) == []
