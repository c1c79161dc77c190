"""A real three-node RabbitMQ cluster on loopback, for the broker-cluster
tests (SPEC section 9, issue 13). Facts about RabbitMQ 3.10 clusters that
the tests and the C code rely on: docs/operations.md, "A broker cluster".

How it is started
-----------------
Everything lives in one folder, /tmp/vitamin-rcluster-XXXX (owned by the
rabbitmq user, which rabbitmq-server drops to when started as root):

  .erlang.cookie            the cluster's Erlang cookie (random, 32 letters),
                            given to every node and every CLI call with
                            `-setcookie` (RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS,
                            RABBITMQ_CTL_ERL_ARGS), so neither /root nor
                            /var/lib/rabbitmq/.erlang.cookie is used
  vitamin-rabbit-XXXX/      one folder per node (a rabbit.Broker): mnesia/,
                            log/, enabled_plugins, feature_flags, pid,
                            out.log and its rabbitmq.conf

Node i is vclu<pid>x<k>n<i>@localhost with its own AMQP port and
distribution port (random free ports in 20000-30000, 127.0.0.1 only), set
by the same RABBITMQ_* variables as rabbit.Broker (NODENAME, NODE_PORT,
DIST_PORT, NODE_IP_ADDRESS, MNESIA_BASE, LOG_BASE, ENABLED_PLUGINS_FILE,
FEATURE_FLAGS_FILE, PID_FILE) plus RABBITMQ_CONFIG_FILE.

On the first boot the seed (node 0) is launched and waited for (port
accepts + `rabbitmqctl await_startup`), then the joiners are launched at
once and waited for in parallel: a joiner that reached the seed while the
seed was still enabling feature flags could make the seed's boot fail. A
restart after stop() launches all nodes at once (each waits for the
others' tables). The cluster forms by peer discovery, with node 0 as the
seed:

  node 0    rabbitmq.conf without peer discovery: boots standalone
  node 1,2  cluster_formation.peer_discovery_backend = classic_config
            cluster_formation.classic_config.nodes.1 = <node 0>
            cluster_formation.classic_config.nodes.2 = <itself>
            cluster_formation.discovery_retry_limit = 120
            cluster_formation.discovery_retry_interval = 500

A joiner reaches its database step about when the seed does, retries the
seed every 0.5 s until the seed's tables exist, joins, and the other joiner
takes its turn under the backend's global lock. (With all three nodes
listing all three, the first node to take the lock spends 5 s trying to
join peers that have no tables yet before it seeds, and the others queue
behind it: 22 s. `rabbitmqctl stop_app; join_cluster; start_app` after a
standalone boot costs about 4 CLI round trips and an app restart per
joiner.) Every node's rabbitmq.conf also sets cluster_partition_handling
(pause_minority), and the nodes get `-kernel net_ticktime 10` (see
Cluster).

How long it takes here (2 shared cores, Debian 12, RabbitMQ 3.10.8,
Erlang 25.2; load average 4-6 from other test runs), from launch to all
three nodes accepting AMQP and cluster_status on each showing 3 running
nodes, median of 3 runs (min-max):

  boot, classic_config seed (default)   15.6 s (14.0-17.3), and 14.8 s
                                        (13.9-19.7) in a later set of 3
  boot, join_cluster (the 3 runs right
  after the first set above)            25.9 s (18.4-37.3)
  one broker alone (rabbit.Broker)      4.5-5 s
  restart(i) after kill(i)              4.5 s (4.4-6.3); later 6.5 s
  stop() whole cluster                  2.5 s;  start() again  15-16.4 s
  cleanup()                             2.7-2.8 s
  any rabbitmqctl / rabbitmq-queues     0.6 s (an Erlang VM boots each time)

A node's boot is mostly CPU (loading and JIT-compiling code: 4-5 s of CPU);
three at once on two cores is what takes 13-17 s. To measure again:
`cd tests/e2e && /usr/bin/python3 cluster.py 3 [join_cluster]`.

API (node indexes are 0..n-1)
-----------------------------
  Cluster(n=3, start=True, formation="classic_config", net_ticktime=10,
          partition_handling="pause_minority")
  start() / stop()          whole cluster (parallel); stop() is clean
  kill(i)                   SIGKILL node i's beam (a crash)
  restart(i, clean=False)   boot node i again on its folder; it rejoins
  stop_node(i)              clean stop of node i alone
  sigstop(i) / sigcont(i)   freeze / resume node i's beam
  node_port(i), ports(), hosts()   AMQP ports; "127.0.0.1:p0,...:p2"
  ctl(i, *args)             rabbitmqctl -n NODE_i ... (CompletedProcess)
  cli(i, tool, *args)       any CLI tool, e.g. "rabbitmq-queues"
  up(), running(i)          beams alive and not stopped
  status(i), running_nodes(i), partitions(i), wait_running(count)
  healthy(), wait_healthy(), heal()   3 running, no partition; repair
  list_queues(*cols), queue(name)     rabbitmqctl list_queues as dicts
  quorum_status(name), leader(name), wait_leader(name, not_on=(...))
  describe(), log_tail()    for failure messages
  cleanup()                 stop (SIGKILL if needed), remove the folder;
                            also registered with atexit; safe twice

Beams started here carry VITAMIN_TEST_OWNER; rabbit.reap_orphan_brokers()
(called by every launch) kills those whose test process died without
cleaning up, and removes their folders.
"""

import atexit
import json
import os
import secrets
import shutil
import signal
import string
import tempfile
import threading
import time

import rabbit
from rabbit import HOST, poll, Timeout  # noqa: F401  (re-exported)


def _parallel(fns):
    """Run the callables in threads; return their results in order, or
    raise the first exception (after all of them have finished)."""
    results = [None] * len(fns)
    errors = [None] * len(fns)

    def run(k):
        try:
            results[k] = fns[k]()
        except BaseException as e:  # re-raised below
            errors[k] = e

    threads = [threading.Thread(target=run, args=(k,))
               for k in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e in errors:
        if e is not None:
            raise e
    return results


class ClusterNode(rabbit.Broker):
    """One node of a Cluster: a rabbit.Broker in the cluster's folder whose
    environment adds the cluster's cookie and rabbitmq.conf."""

    def __init__(self, cluster, index):
        self.cluster = cluster
        self.index = index
        super().__init__(name="%sn%d" % (cluster.name, index), start=False,
                         parent=cluster.dir)
        self.conf = os.path.join(self.dir, "rabbitmq.conf")

    def env(self):
        e = super().env()
        c = self.cluster
        cookie = "-setcookie " + c.cookie
        e["RABBITMQ_CONFIG_FILE"] = self.conf
        e["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"] = cookie + (
            " -kernel net_ticktime %d" % c.net_ticktime
            if c.net_ticktime else "")
        e["RABBITMQ_CTL_ERL_ARGS"] = cookie
        return e


class Cluster:
    """n rabbitmq-server nodes on 127.0.0.1 joined into one cluster.

    Nodes are numbered 0..n-1 (node i is self.nodes[i], a rabbit.Broker,
    so rabbit.connect(cluster[i]) gives a pika connection to it).

    formation: "classic_config" (peer discovery from the node list in each
        node's rabbitmq.conf; all nodes boot in parallel) or "join_cluster"
        (boot standalone in parallel, then `rabbitmqctl stop_app;
        join_cluster; start_app` on nodes 1..n-1).
    net_ticktime: Erlang distribution tick time in seconds (None: the
        RabbitMQ default, 60 s). A frozen (SIGSTOPped) node counts as up for
        its peers until 0.75-1.25 x net_ticktime has passed, and meanwhile
        queue.bind, basic.consume and a new channel's first publish on the
        OTHER nodes block (see docs/operations.md). The default
        here, 10 s, keeps SIGSTOP tests short.
    partition_handling: cluster_partition_handling (pause_minority is what
        a 3-node production cluster should use). A node resumed right about
        when its peers gave up on it can stay partitioned; wait_healthy()
        repairs that (heal()).
    """

    def __init__(self, n=3, start=True, timeout=120.0,
                 formation="classic_config", net_ticktime=10,
                 partition_handling="pause_minority"):
        if formation not in ("classic_config", "join_cluster"):
            raise ValueError("formation: classic_config or join_cluster")
        self.n = n
        self.formation = formation
        self.net_ticktime = net_ticktime
        self.partition_handling = partition_handling
        self.name = "vclu%dx%d" % (os.getpid(), next(rabbit._counter))
        self.dir = tempfile.mkdtemp(prefix="vitamin-rcluster-")
        os.chmod(self.dir, 0o755)
        # The shared Erlang cookie lives here, not in /root or
        # /var/lib/rabbitmq; every node and CLI call gets it with -setcookie.
        self.cookie = "".join(secrets.choice(string.ascii_uppercase)
                              for _ in range(32))
        with open(os.path.join(self.dir, ".erlang.cookie"), "w") as f:
            f.write(self.cookie)
        os.chmod(os.path.join(self.dir, ".erlang.cookie"), 0o400)
        rabbit.chown_rabbitmq(self.dir)
        self._cleaned = False
        self._resumed = set()   # nodes sigcont() resumed (for heal())
        self._booted = False    # start() has formed the cluster once
        self.nodes = []
        try:
            used = set()
            for i in range(n):
                nd = ClusterNode(self, i)
                # ports unique within the cluster (each free now)
                while nd.port in used or nd.dist_port in used or \
                        nd.port == nd.dist_port:
                    nd.port = rabbit.free_port(20000, 30000)
                    nd.dist_port = rabbit.free_port(20000, 30000)
                used |= {nd.port, nd.dist_port}
                self.nodes.append(nd)
            for nd in self.nodes:
                nd.write_file("rabbitmq.conf", self._conf(nd.index))
        except BaseException:
            self.cleanup()
            raise
        atexit.register(self.cleanup)
        self.boot_seconds = None
        if start:
            self.start(timeout)

    def _conf(self, i):
        lines = ["cluster_partition_handling = %s" % self.partition_handling]
        if self.formation == "classic_config" and i > 0:
            # Node 0 is the seed: no peer discovery, it boots standalone.
            # The others list the seed and themselves (the node list must
            # contain the local node), and keep retrying the seed (every
            # 0.5 s, for up to 60 s) rather than give up after 5 s and
            # seed a second cluster. Joiners take turns under a global lock.
            lines += ["cluster_formation.peer_discovery_backend = "
                      "classic_config",
                      "cluster_formation.classic_config.nodes.1 = %s"
                      % self.nodes[0].nodename,
                      "cluster_formation.classic_config.nodes.2 = %s"
                      % self.nodes[i].nodename,
                      "cluster_formation.discovery_retry_limit = 120",
                      "cluster_formation.discovery_retry_interval = 500"]
        return "\n".join(lines) + "\n"

    # ---- access ----------------------------------------------------------

    def __getitem__(self, i):
        return self.nodes[i]

    def __len__(self):
        return len(self.nodes)

    def __iter__(self):
        return iter(self.nodes)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()

    def node_port(self, i):
        """AMQP port of node i."""
        return self.nodes[i].port

    def ports(self):
        return [nd.port for nd in self.nodes]

    def hosts(self):
        """'127.0.0.1:p0,127.0.0.1:p1,...' (for --rabbitmq_host)."""
        return ",".join("%s:%d" % (HOST, nd.port) for nd in self.nodes)

    def index_of(self, nodename):
        """Index of the node named nodename ('...@localhost'), or None."""
        for nd in self.nodes:
            if nd.nodename == nodename:
                return nd.index
        return None

    def ctl(self, i, *args, timeout=30.0):
        """rabbitmqctl -n NODE_i args... (CompletedProcess, never raises)."""
        return self.nodes[i].ctl(*args, timeout=timeout)

    def cli(self, i, tool, *args, timeout=30.0):
        """Any RabbitMQ CLI tool against node i (rabbitmq-queues, ...)."""
        return self.nodes[i].cli(tool, *args, timeout=timeout)

    def running(self, i):
        """Is node i's beam alive (it may still be SIGSTOPped)."""
        return self.nodes[i].running()

    def up(self):
        """Indexes of the nodes whose beam exists and is not stopped."""
        return [nd.index for nd in self.nodes
                if nd.running() and not nd.frozen()]

    def _any(self):
        up = self.up()
        if not up:
            raise RuntimeError("no cluster node is up")
        return up[0]

    # ---- whole cluster -----------------------------------------------------

    def start(self, timeout=120.0):
        """Boot every node in parallel and wait until each accepts AMQP and
        cluster_status shows all of them running. Sets boot_seconds."""
        t0 = time.monotonic()
        try:
            first = not self._booted
            if first and self.formation == "classic_config":
                # The seed first: a joiner that reaches it while it is still
                # enabling feature flags can make its boot fail
                # (incompatible_feature_flags: "All replicas on diskfull
                # nodes are not active yet"). On a restart every node must
                # launch at once (each waits for the others' tables).
                self.nodes[0].launch()
                self.nodes[0].wait_ready(timeout)
                joiners = self.nodes[1:]
            else:
                joiners = self.nodes
            for nd in joiners:
                nd.launch()
            _parallel([lambda nd=nd: nd.wait_ready(timeout)
                       for nd in joiners])
            self._booted = True
            if self.formation == "join_cluster" and not self._joined():
                self._join_all(timeout)
            self.wait_running(self.n, timeout=timeout)
        except BaseException:
            self.kill_all()
            raise
        self.boot_seconds = time.monotonic() - t0
        return self

    def _joined(self):
        try:
            return len(self.running_nodes(0)) == self.n
        except RuntimeError:
            return False

    def _join_all(self, timeout):
        seed = self.nodes[0].nodename

        def join(nd):
            for args in (("stop_app",), ("join_cluster", seed),
                         ("start_app",)):
                r = nd.ctl(*args, timeout=timeout)
                if r.returncode != 0:
                    raise RuntimeError("%s: rabbitmqctl %s failed: %s %s"
                                       % (nd.nodename, " ".join(args),
                                          r.stdout, r.stderr))
        # one at a time: concurrent joins to one seed can collide in mnesia
        for nd in self.nodes[1:]:
            join(nd)

    def stop(self, timeout=60.0):
        """Clean shutdown of every node (in parallel); SIGKILL as a
        fallback. start() boots the cluster again on the same folders."""
        for nd in self.nodes:
            for pid in nd.beam_pids():
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
        _parallel([lambda nd=nd: nd.stop(timeout) for nd in self.nodes])

    def kill_all(self):
        for nd in self.nodes:
            try:
                nd.kill()
            except Exception:
                pass

    # ---- one node ----------------------------------------------------------

    def kill(self, i):
        """SIGKILL node i's beam (a crash); restart(i) boots it again."""
        self.nodes[i].kill()

    def stop_node(self, i, timeout=60.0):
        """Clean shutdown of node i alone."""
        self.nodes[i].stop(timeout)

    def restart(self, i, timeout=120.0, clean=False):
        """Boot node i again on its folder (SIGKILLing it first if it still
        runs, or a clean stop with clean=True); it rejoins the cluster. Waits
        until the others see it running."""
        nd = self.nodes[i]
        if nd.running():
            if clean:
                nd.stop()
            else:
                nd.kill()
        nd.start(timeout)
        self.wait_running(len(self.up()), timeout=timeout, node=i)
        return nd

    def sigstop(self, i):
        """Freeze node i: its sockets stay open, nothing answers."""
        self.nodes[i].sigstop()
        self._resumed.discard(i)

    def sigcont(self, i):
        """Resume node i. If it was frozen longer than ~net_ticktime the
        cluster saw a partition: call wait_healthy() before relying on it."""
        self.nodes[i].sigcont()
        self._resumed.add(i)

    # ---- state -------------------------------------------------------------

    def status(self, i=None):
        """cluster_status of node i (default: any node that is up) as a
        dict (rabbitmqctl --formatter json)."""
        i = self._any() if i is None else i
        r = self.ctl(i, "cluster_status", "--formatter", "json")
        if r.returncode != 0:
            raise RuntimeError("cluster_status on %s failed: %s %s"
                               % (self.nodes[i].nodename, r.stdout, r.stderr))
        return json.loads(r.stdout)

    def running_nodes(self, i=None):
        """Node names that node i sees running."""
        return sorted(self.status(i).get("running_nodes", []))

    def wait_running(self, count, timeout=60.0, node=None):
        """Wait until cluster_status (asked of `node`, default any up node)
        lists `count` running nodes."""
        def ok():
            try:
                return len(self.running_nodes(node)) == count
            except RuntimeError:
                return False
        poll(ok, timeout=timeout, interval=0.3,
             what="%d running nodes in cluster_status" % count)

    def partitions(self, i):
        """Partitions node i reports ({} when none)."""
        return self.status(i).get("partitions") or {}

    def healthy(self):
        """Every node is up, sees all n nodes running and no partition (one
        cluster_status per node, in parallel: about 0.7 s)."""
        if len(self.up()) != self.n:
            return False

        def ok(i):
            try:
                st = self.status(i)
            except RuntimeError:
                return False
            return (len(st.get("running_nodes", [])) == self.n and
                    not st.get("partitions"))
        return all(_parallel([lambda i=i: ok(i) for i in range(self.n)]))

    def heal(self, timeout=120.0):
        """Repair a partition that pause_minority left behind: restart the
        rabbit application (stop_app, start_app) on the minority side so it
        resyncs from the majority. The minority: nodes that see fewer
        running nodes than the best-connected one; else the nodes resumed by
        sigcont() that a partition names; else the node named most often.
        Returns the indexes restarted."""
        seen, named = {}, {}
        for i in self.up():
            try:
                st = self.status(i)
            except RuntimeError:
                seen[i] = 0
                continue
            seen[i] = len(st.get("running_nodes", []))
            for peers in (st.get("partitions") or {}).values():
                for name in peers:
                    k = self.index_of(name)
                    if k is not None:
                        named[k] = named.get(k, 0) + 1
        best = max(seen.values(), default=0)
        losers = [i for i, k in seen.items() if k < best]
        if not losers and named:
            losers = [i for i in self._resumed if i in named] or \
                [max(named, key=named.get)]
        self._resumed.clear()
        for i in losers:
            self.ctl(i, "stop_app", timeout=timeout)
            r = self.ctl(i, "start_app", timeout=timeout)
            if r.returncode != 0:
                raise RuntimeError("start_app on %s failed: %s %s"
                                   % (self.nodes[i].nodename, r.stdout,
                                      r.stderr))
        return losers

    def wait_healthy(self, timeout=120.0, heal_after=10.0):
        """Wait until healthy(); if it is not after heal_after seconds (a
        partition pause_minority did not repair), heal() once and keep
        waiting. Returns the nodes heal() restarted ([] if none)."""
        deadline = time.monotonic() + timeout
        heal_at = time.monotonic() + heal_after
        healed = None
        while not self.healthy():
            now = time.monotonic()
            if now > deadline:
                raise Timeout("cluster not healthy after %.0f s:\n%s"
                              % (timeout, self.describe()))
            if healed is None and now > heal_at:
                healed = self.heal(timeout=max(10.0, deadline - now))
            time.sleep(0.5)
        return healed or []

    def describe(self):
        """One line per node: pid state, running nodes, partitions."""
        out = []
        for nd in self.nodes:
            pids = nd.beam_pids()
            line = "node %d %s beam=%s" % (nd.index, nd.nodename, [
                (p, rabbit.proc_state(p)) for p in pids])
            if pids and not nd.frozen():
                try:
                    st = self.status(nd.index)
                    line += " running=%s partitions=%s" % (
                        st.get("running_nodes"), st.get("partitions"))
                except RuntimeError as e:
                    line += " status failed: %s" % str(e)[:200]
            out.append(line)
        return "\n".join(out)

    def list_queues(self, *cols, node=None):
        """[{name, col...}] from `rabbitmqctl list_queues name cols...`
        asked of node (default any up node). Useful cols: type, leader,
        members, online, messages, durable, arguments."""
        i = self._any() if node is None else node
        r = self.ctl(i, "list_queues", "-q", "--formatter", "json", "name",
                     *cols)
        if r.returncode != 0:
            raise RuntimeError("list_queues failed: %s %s" % (r.stdout,
                                                              r.stderr))
        return json.loads(r.stdout or "[]")

    def queue(self, name, node=None):
        for q in self.list_queues("type", "leader", "members", "online",
                                  "messages", node=node):
            if q["name"] == name:
                return q
        return None

    def quorum_status(self, name, node=None):
        """`rabbitmq-queues quorum_status NAME` as a list of dicts, one per
        member (keys include "Node Name", "Raft State", "Term")."""
        i = self._any() if node is None else node
        r = self.cli(i, "rabbitmq-queues", "quorum_status", name,
                     "--formatter", "json", timeout=15)
        if r.returncode != 0:
            raise RuntimeError("quorum_status %s failed: %s %s"
                               % (name, r.stdout, r.stderr))
        return json.loads(r.stdout)

    def leader(self, name, node=None):
        """Index of the node leading quorum queue `name`, from the Raft
        state of its members (None when no member says leader)."""
        try:
            members = self.quorum_status(name, node)
        except (RuntimeError, ValueError):
            return None
        for m in members:
            if m.get("Raft State") == "leader":
                return self.index_of(m.get("Node Name"))
        return None

    def wait_leader(self, name, not_on=(), timeout=60.0, node=None):
        """Wait until quorum queue `name` has a leader on a node that is up
        and not in not_on; return its index."""
        def ok():
            k = self.leader(name, node=node)
            if k is not None and k not in not_on and k in self.up():
                return k + 1   # truthy for node 0
            return None
        return poll(ok, timeout=timeout, interval=0.2,
                    what="a leader for %s outside %r" % (name, not_on)) - 1

    def log_tail(self, n=3000):
        return "\n".join("===== node %d (%s)\n%s" % (nd.index, nd.nodename,
                                                     nd.log_tail(n))
                         for nd in self.nodes)

    # ---- cleanup -----------------------------------------------------------

    def cleanup(self):
        """Stop every node (SIGKILL if a clean stop is not quick), make sure
        none of our beams is left, remove the folder. Safe to call twice;
        registered with atexit."""
        if self._cleaned:
            return
        self._cleaned = True
        try:
            # Clean stops in parallel are quicker than one by one, and a
            # stopped peer cannot stall the others' shutdown for long.
            _parallel([lambda nd=nd: nd.cleanup() for nd in self.nodes])
        finally:
            for nd in self.nodes:
                for pid in nd.beam_pids():
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            shutil.rmtree(self.dir, ignore_errors=True)



def _measure(runs=3, formation="classic_config"):
    """Boot a cluster `runs` times and print the medians the module
    docstring quotes (boot, restart of one node, whole stop and start,
    cleanup)."""
    import statistics
    res = {k: [] for k in ("boot", "restart_node", "stop_all", "start_all",
                           "cleanup")}
    for k in range(runs):
        load = os.getloadavg()[0]
        c = Cluster(start=False, formation=formation)
        try:
            c.start()
            res["boot"].append(c.boot_seconds)
            c.kill(2)
            t = time.monotonic()
            c.restart(2)
            res["restart_node"].append(time.monotonic() - t)
            t = time.monotonic()
            c.stop()
            res["stop_all"].append(time.monotonic() - t)
            t = time.monotonic()
            c.start()
            res["start_all"].append(time.monotonic() - t)
        finally:
            t = time.monotonic()
            c.cleanup()
            res["cleanup"].append(time.monotonic() - t)
        print("run %d (load %.1f): %s" % (k + 1, load, "  ".join(
            "%s %.1f s" % (n, v[-1]) for n, v in res.items() if v)),
            flush=True)
    print("%s, median of %d: %s" % (formation, runs, "  ".join(
        "%s %.1f s (%.1f-%.1f)" % (n, statistics.median(v), min(v), max(v))
        for n, v in res.items())))


if __name__ == "__main__":
    # cd tests/e2e && /usr/bin/python3 cluster.py [runs] [formation]
    import sys
    _measure(int(sys.argv[1]) if len(sys.argv) > 1 else 3,
             sys.argv[2] if len(sys.argv) > 2 else "classic_config")
