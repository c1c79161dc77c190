"""--rabbitmq_confirm_timeout against a broker that loses confirms.

A real private RabbitMQ broker and real vitamin processes; between one node
and the broker, a TCP proxy of the test's own that reads the AMQP 0-9-1
frames coming back from the broker and, once armed, drops every basic.ack
and basic.nack on one publisher connection while forwarding everything
else (heartbeats included: the link looks healthy, only the confirms are
gone). Later connections pass untouched.

In --replication_ack=confirm a write is answered only once the broker
confirmed its batch, so without the timeout that write would wait for ever.
With it, the publisher gives up on the link after the timeout, reconnects
(through the proxy again, now untouched), publishes the batch again and the
client gets its reply; the peer, connected to the broker directly, gets the
write.

The timing asserts only say that the reply came at all (within a generous
REPLY_WAIT) and not before the confirm could have timed out.

Run: VITAMIN_BIN=build/vitamin /usr/bin/python3 -m pytest -q tests/e2e/test_confirm_timeout.py
"""

import os
import socket
import struct
import time

import pytest

import rabbit
from rabbit import encode_value, poll
from faults_util import TcpProxy

pytestmark = pytest.mark.replication

CONFIRM_TIMEOUT_S = 2   # --rabbitmq_confirm_timeout of the node behind the proxy
REPLY_WAIT = 20.0       # how long the client waits for its reply

FRAME_METHOD = 1
FRAME_END = 0xCE
CONFIRM_SELECT_OK = (85, 11)   # the broker took the channel into confirm mode
BASIC_ACK = (60, 80)
BASIC_NACK = (60, 120)


class AckSwallowingProxy(TcpProxy):
    """A TcpProxy (faults_util) whose broker -> node direction goes frame
    by frame (type u8, channel u16, size u32, payload, 0xCE).

    arm(): from now on, the first connection that carries a basic.ack or
    basic.nack (only a publisher's do) becomes the victim: every ack and
    nack on it is dropped, for as long as it lives. Other connections, and
    every other frame, pass as they are. (Not simply the first connection:
    the node's consumer connects through the proxy too, and an armed proxy
    from the start would time out the node's start-up publishes instead of
    the write under test.)

    Counts: confirm_connections (connections the broker put in confirm
    mode: one per publisher connection), acks_passed, swallowed; errors
    lists framing the proxy could not follow (the test asserts none)."""

    def __init__(self, target_port):
        self.armed = False
        self.victim = None
        self.confirm_connections = 0
        self.acks_passed = 0
        self.last_ack = time.monotonic()
        self.swallowed = 0
        self.errors = []
        super().__init__(target_port)

    def arm(self):
        with self.lock:
            self.armed = True

    def _confirm(self, pair):
        """An ack or nack arrives on pair: True to drop it."""
        with self.lock:
            if self.armed and self.victim is None:
                self.victim = pair
            if self.victim is pair:
                self.swallowed += 1
                return True
            self.acks_passed += 1
            self.last_ack = time.monotonic()
            return False

    def _filter(self, pair, buf):
        """The complete frames at the head of buf (removed from it), less
        the dropped ones."""
        out = bytearray()
        while len(buf) >= 7:
            ftype, _channel, size = struct.unpack_from(">BHI", buf)
            if len(buf) < 7 + size + 1:
                break
            frame = bytes(buf[:7 + size + 1])
            del buf[:7 + size + 1]
            if frame[-1] != FRAME_END:
                raise ValueError("frame end 0x%02x, not 0xCE" % frame[-1])
            if ftype == FRAME_METHOD and size >= 4:
                ids = struct.unpack_from(">HH", frame, 7)
                if ids == CONFIRM_SELECT_OK:
                    with self.lock:
                        self.confirm_connections += 1
                elif ids in (BASIC_ACK, BASIC_NACK) and self._confirm(pair):
                    continue
            out += frame
        return bytes(out)

    def _pump(self, pair, src, dst):
        if src is not pair.b:     # node -> broker: as TcpProxy forwards it
            return super()._pump(pair, src, dst)
        buf = bytearray()
        try:
            while True:
                data = src.recv(1 << 16)
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    break
                buf += data
                dst.sendall(self._filter(pair, buf))
        except OSError:
            pair.kill()
        except ValueError as e:
            self.errors.append(str(e))
            pair.kill()
        finally:
            if pair.pump_done():
                with self.lock:
                    self.pairs.discard(pair)


@pytest.fixture
def started():
    """Whatever a test starts (nodes, clients, proxies), stopped at
    teardown, where every node must exit 0 on SIGTERM; the nodes' logs are
    printed (pytest shows them when the test fails)."""
    things = []
    yield things
    codes = {}
    for t in reversed(things):
        if isinstance(t, rabbit.Node):
            print("----- %s log -----\n%s" % (t.node_id, t.log_text()))
            codes[t.node_id] = t.stop()
        else:
            t.close()
    assert all(rc == 0 for rc in codes.values()), codes


def test_lost_confirms_fail_over_and_the_write_is_answered(broker, started):
    exchange = "vt.confirm.%d" % os.getpid()
    proxy = AckSwallowingProxy(broker.port)
    started.append(proxy)
    peer = rabbit.Node("peer", broker.port, exchange)
    held = rabbit.Node("held", exchange=exchange, extra=(
        "--rabbitmq_host", "%s:%d" % (rabbit.HOST, proxy.port),
        "--replication_ack", "confirm",
        "--rabbitmq_confirm_timeout", CONFIRM_TIMEOUT_S))
    for nd in (peer, held):
        started.append(nd)
        nd.start()
    # the peer only needs to consume (its own state transfer may still be
    # retrying: it gets writes meanwhile); held must be up
    poll(lambda: peer.stat("repl_state") in ("syncing", "up"), timeout=30,
         what="peer connected")
    poll(lambda: held.stat("repl_state") == "up", timeout=30, what="held up")
    # the path works before the proxy is armed
    assert held.c.set("before", "v0") == "v0"
    poll(lambda: peer.c.get("before") == "v0", what="'before' on the peer")
    # no confirm still on its way (a beacon follows a write after ~1 s), so
    # that the first ack dropped is the one of the write below
    poll(lambda: time.monotonic() - proxy.last_ack > 1.5, timeout=15,
         what="no ack through the proxy for 1.5 s")
    timeouts_before = held.stat("repl_confirm_timeouts")

    proxy.arm()
    client = rabbit.LineClient(held.port, timeout=REPLY_WAIT)
    started.append(client)
    t0 = time.monotonic()
    try:
        reply = client.set("held", "v1")
    except socket.timeout:
        pytest.fail("no reply to a confirm-mode write within %.0f s: the "
                    "publisher never gave up on a link that lost its confirms "
                    "(stats: %r)" % (REPLY_WAIT, held.stats()))
    waited = time.monotonic() - t0
    assert reply == "v1"
    assert waited >= CONFIRM_TIMEOUT_S / 2, \
        "answered after %.2f s: the write did not wait for its confirm" % waited

    poll(lambda: peer.c.get("held") == encode_value("v1"), timeout=10,
         what="the held write on the peer")
    st = held.stats()
    assert int(st["repl_confirm_timeouts"]) > timeouts_before, st
    assert int(st["repl_reconnects"]) >= 1, st
    assert "no confirm or nack of a publish for %d s" % CONFIRM_TIMEOUT_S \
        in held.log_text(20000)
    assert proxy.swallowed >= 1
    assert proxy.confirm_connections >= 2, \
        "the publisher did not connect again (%d confirm-mode connections)" \
        % proxy.confirm_connections
    assert not proxy.errors, proxy.errors
    # the new link confirms: a write is answered again
    assert client.set("after", "v2") == "v2"
    poll(lambda: peer.c.get("after") == "v2", what="'after' on the peer")
