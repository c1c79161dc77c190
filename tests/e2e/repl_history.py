"""The "no acknowledged write lost" rule of issue 9, as a pure function over
a client-observed history (no I/O; tested on synthetic histories in
test_history_checker.py).

Model. Every client operation on a key is an Op:

  kind    "set" (writes the value and the expiry), "del" (deletes the key:
          its tombstone beats every older value, whatever its expiry), or
          "expire" (writes the expiry only: never the value)
  value   the value a set writes (values are unique across the history)
  expiry  what a set or expire leaves as the key's expiry: NEVER, or an
          opaque id (the test encodes a unique id in each TTL it sends, so
          the expiry read back names the operation that set it)
  t0, t1  client monotonic time when the request was sent, and when its
          reply came back (or when the client gave up: connection lost);
          t1 = None when the client cannot bound when the request may
          take effect (a timeout: the node may apply it later)
  status  "ok"      acknowledged, and it took effect (set echoed the value,
                    del and expire answered OK)
          "noop"    acknowledged without effect (del or expire answered
                    "Record not found": nothing written, nothing replicated)
          "unknown" no reply, or an error reply: it may or may not have
                    taken effect

Ordering. Last-writer-wins on a hybrid logical clock orders writes by
version. A version is taken when the node executes the request, i.e. inside
[t0, t1] of the client's view; on one host every node's clock is the same
wall clock and an HLC never runs ahead of it, so a write sent more than
`margin` seconds after another write's reply arrived gets a strictly greater
version: it is LATER. Writes whose intervals overlap (within the margin)
are concurrent and LWW may order them either way. An unknown write may have
happened or not; if it happened, it happened inside [t0, t1] (t1 = None:
any time after t0).

Rules, per key (the final state is read on a converged pool):
  V1  A present final value v must have been written by a set that is ok or
      unknown (else: a value nobody wrote).
  V2  That set must not be superseded: no acknowledged ("ok") set or del of
      the key was sent after its reply (t0 > t1 + margin). Superseded by a
      del = a RESURRECTED deleted value; by a set = a LOST acknowledged
      write.
  V3  An absent final value must be explained by the initial state (no
      value) or by a del that is ok or unknown, not superseded by an
      acknowledged set or del (else: a LOST acknowledged write).
  E1  With a present value written by set S, the final expiry must be that
      of S or of an expire (ok or unknown) that is not superseded by a
      write known to have happened: an acknowledged set, del or expire, or
      S itself (a set writes the expiry too) sent after its reply. An
      expire never changes which value survives, and the newest
      expiry-setting operation's expiry survives.
Expired keys are out of scope: tests that use this checker send TTLs far
longer than the test, so nothing expires.
"""

NEVER = "never"

_KINDS = ("set", "del", "expire")
_STATUSES = ("ok", "noop", "unknown")


class Op:
    __slots__ = ("key", "kind", "value", "expiry", "t0", "t1", "status",
                 "who")

    def __init__(self, key, kind, t0, t1, status, value=None, expiry=NEVER,
                 who=""):
        assert kind in _KINDS, kind
        assert status in _STATUSES, status
        assert t1 is None or t1 >= t0, (t0, t1)
        self.key, self.kind, self.value, self.expiry = key, kind, value, expiry
        self.t0, self.t1, self.status, self.who = t0, t1, status, who

    def end(self):
        return float("inf") if self.t1 is None else self.t1

    def __repr__(self):
        what = {"set": "set(%r, exp=%s)" % (self.value, self.expiry),
                "del": "del", "expire": "expire(exp=%s)" % self.expiry}
        return "%s %s [%.3f, %s] %s" % (
            self.who, what[self.kind], self.t0,
            "inf" if self.t1 is None else "%.3f" % self.t1, self.status)


def _later(ops, o, margin):
    """The ops of `ops` sent after o's reply (t0 > t1 + margin), latest
    first."""
    end = o.end() + margin
    return sorted((b for b in ops if b is not o and b.t0 > end),
                  key=lambda b: -b.t0)


def check_history(ops, final, margin=0.005):
    """ops: iterable of Op (any keys, any order). final: {key: (value or
    None, expiry)} read from the converged pool, for every key of interest
    (keys absent from `final` are not checked; expiry is ignored when the
    value is None). Returns a list of problem strings, empty if the final
    state is explained by the history under rules V1-V3 and E1."""
    by_key = {}
    for o in ops:
        by_key.setdefault(o.key, []).append(o)
    problems = []
    for key in sorted(final, key=repr):
        value, expiry = final[key]
        kops = sorted(by_key.get(key, []), key=lambda o: o.t0)
        eff = [o for o in kops if o.status != "noop"]
        acked_writes = [o for o in eff if o.status == "ok"
                        and o.kind in ("set", "del")]

        def recent(n=6):
            return kops[-n:]

        if value is not None:
            sets = [o for o in eff if o.kind == "set" and o.value == value]
            if not sets:
                problems.append("%r = %r: no set wrote this value (V1); last "
                                "ops: %r" % (key, value, recent()))
                continue
            live = [o for o in sets if not _later(acked_writes, o, margin)]
            if not live:
                s = sets[0]
                by = _later(acked_writes, s, margin)
                dels = [b for b in by if b.kind == "del"]
                # a hint: expires after the set that left the final expiry
                # (an expire that re-wrote the value would explain it)
                exp_by = [o for o in eff if o.kind == "expire"
                          and o.expiry == expiry and o.t0 > s.end()]
                problems.append(
                    "%r = %r: %s (V2): written by %r, but %r was "
                    "acknowledged later%s%s" % (
                        key, value,
                        "RESURRECTED deleted value" if dels else
                        "LOST acknowledged write",
                        s, (dels or by)[-1],
                        "" if not dels else "; newest acknowledged write "
                        "after it: %r" % by[0],
                        "" if not exp_by else "; the final expiry was set "
                        "by %r" % exp_by[-1]))
                continue
            s = live[0]
            # E1: the expiry
            known = [o for o in eff if o.status == "ok"] + [s]
            cands = [s] + [o for o in eff if o.kind == "expire"]
            ok = [x for x in cands if x.expiry == expiry
                  and not _later(known, x, margin)]
            if not ok:
                setters = [x for x in cands if x.expiry == expiry]
                if setters:
                    why = "it was set by %r, superseded by %r" % (
                        setters[-1], _later(known, setters[-1], margin)[-1])
                else:
                    why = "no set or expire of the value's lineage set it"
                problems.append("%r = %r with expiry %s: expiry not "
                                "explained (E1): %s; value written by %r"
                                % (key, value, expiry, why, s))
            continue

        # absent
        dels = [o for o in eff if o.kind == "del"]
        if not acked_writes:
            continue  # the initial state (absent) is never superseded
        live = [o for o in dels if not _later(acked_writes, o, margin)]
        if not live:
            last_set = [o for o in acked_writes if o.kind == "set"]
            problems.append(
                "%r is absent: LOST acknowledged write (V3): no del explains "
                "it; newest acknowledged set %r%s" % (
                    key, last_set[-1] if last_set else None,
                    "" if not dels else "; newest del %r" % dels[-1]))
    return problems
