"""Smoke test of the three-node RabbitMQ cluster harness (cluster.py):
boot, a quorum queue, publisher confirms, SIGKILL of the queue leader, a new
leader, nothing confirmed lost, the node restarted and back in the cluster,
and no beam.smp left behind. About 30 s, most of it the cluster's boot.

Run: /usr/bin/python3 -m pytest -q tests/e2e/test_cluster_harness.py
"""

import os

import pytest

import cluster
import rabbit

pytestmark = [pytest.mark.replication, pytest.mark.slow]

QUEUE_ARGS = {"x-queue-type": "quorum"}


@pytest.fixture(scope="module")
def rc():
    if not os.path.exists(rabbit.RABBITMQ_SERVER):
        pytest.skip("rabbitmq-server is not installed")
    c = None
    try:
        c = cluster.Cluster()
        yield c
    finally:
        if c is not None:
            nodes = list(c.nodes)
            c.cleanup()
            left = [p for nd in nodes for p in nd.beam_pids()]
            assert not left, "beam.smp left behind: %r" % left
            assert not os.path.exists(c.dir)


def drain(node, queue):
    conn = rabbit.connect(node)
    try:
        ch = conn.channel()
        out = []
        while True:
            method, _props, body = ch.basic_get(queue, auto_ack=True)
            if method is None:
                return out
            out.append(body)
    finally:
        conn.close()


def test_three_nodes_one_cluster(rc):
    names = sorted(nd.nodename for nd in rc)
    for i in range(3):
        assert rc.running_nodes(i) == names, rc.describe()
    assert len(set(rc.ports())) == 3
    assert rc.hosts().count("127.0.0.1:") == 3
    rc.sigstop(2)
    try:
        assert rc.up() == [0, 1] and rc.running(2)
    finally:
        rc.sigcont(2)
    assert rc.up() == [0, 1, 2]


def test_quorum_queue_survives_leader_kill(rc):
    queue = "vt.harness.%d" % os.getpid()
    conn = rabbit.connect(rc[0])
    conn.channel().queue_declare(queue, durable=True, arguments=QUEUE_ARGS)
    conn.close()
    leader = rc.wait_leader(queue, timeout=30)
    others = [i for i in range(3) if i != leader]
    q = rc.queue(queue)
    assert q["type"] == "quorum" and len(q["members"]) == 3, q

    # publish through a node that is not the leader; every publish confirmed
    conn = rabbit.connect(rc[others[0]])
    ch = conn.channel()
    ch.confirm_delivery()
    bodies = [b"m%03d" % k for k in range(100)]
    for b in bodies:
        ch.basic_publish("", queue, b, mandatory=True)
    conn.close()

    rc.kill(leader)
    assert not rc.running(leader) and sorted(rc.up()) == others
    new = rc.wait_leader(queue, not_on=(leader,), timeout=30, node=others[0])
    assert new in others

    # nothing confirmed is lost; read through the other surviving node
    assert drain(rc[others[1]], queue) == bodies

    # the killed node comes back on its folder and rejoins
    rc.restart(leader)
    rc.wait_healthy(timeout=90)
    q = rc.queue(queue, node=leader)
    assert sorted(q["online"]) == sorted(q["members"]), q
