# Shell functions shared by scripts/pool.sh and scripts/shard.sh (sourced,
# not run): a private RabbitMQ broker, Vitamin nodes, HAProxy and
# nutcracker on 127.0.0.1, every process's pid in $DIR/<name>.pid and its
# log in $DIR/<name>.log. The caller sets DIR (the state folder) and runs
# from the repository's top folder.

PY=${PY:-/usr/bin/python3}
LOCALCFG="$PY scripts/lib/localcfg.py"

# The Erlang distribution port of a broker: 10000 away from its AMQP port,
# below it when above would not be a port.
pl_dist_port() { # amqp_port
    if [ $(($1 + 10000)) -le 65535 ]; then echo $(($1 + 10000)); else echo $(($1 - 10000)); fi
}

# Wait until something accepts on 127.0.0.1:port; on timeout print the end
# of every log in $DIR and fail.
pl_wait_port() { # port seconds
    for _ in $(seq $(( $2 * 10 ))); do
        (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "$(basename "$0" .sh): nothing listens on port $1" >&2
    for f in "$DIR"/*.log; do
        [ -e "$f" ] && [ "$(basename "$f")" != broker.log ] && { echo "--- $f" >&2; tail -n 5 "$f" >&2; }
    done
    return 1
}

pl_port_open() { # port: is something accepting there now?
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null
}

# Send one request line to 127.0.0.1:port and print the reply: one line, or
# up to END for stats() / stats.
pl_ask() { # port request
    $PY - "$1" "$2" <<'PYEOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
multi = sys.argv[2].startswith("stats")
s.sendall(sys.argv[2].encode() + (b"\r\n" if sys.argv[2] == "stats" else b"\n"))
buf = b""
while not ((multi and (buf.endswith(b"END\n") or buf.endswith(b"END\r\n")))
           or (not multi and buf.endswith(b"\n"))):
    d = s.recv(65536)
    if not d: break
    buf += d
print(buf.decode(errors="replace"), end="")
PYEOF
}

# Start a private broker with its state in $DIR/broker; its node name
# goes to $DIR/broker.name. Fails (with the end of its log) if it does not
# accept within 60 s.
pl_broker_up() { # amqp_port nodename
    local port=$1 name=$2 b="$DIR/broker"
    mkdir -p "$b"/mnesia "$b"/log
    echo '[].' > "$b"/enabled_plugins
    chown -R rabbitmq:rabbitmq "$b"
    echo "$name" > "$DIR/broker.name"
    (
        export RABBITMQ_NODENAME=$name RABBITMQ_NODE_PORT=$port \
            RABBITMQ_DIST_PORT=$(pl_dist_port "$port") RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
            RABBITMQ_MNESIA_BASE=$b/mnesia RABBITMQ_LOG_BASE=$b/log \
            RABBITMQ_ENABLED_PLUGINS_FILE=$b/enabled_plugins \
            RABBITMQ_FEATURE_FLAGS_FILE=$b/feature_flags RABBITMQ_PID_FILE=$b/beam.pid
        setsid /usr/sbin/rabbitmq-server > "$DIR"/broker.log 2>&1 &
    )
    if ! pl_wait_port "$port" 60; then
        echo "$(basename "$0" .sh): the broker did not start; its log: $DIR/broker.log" >&2
        tail -n 20 "$DIR/broker.log" >&2
        return 1
    fi
}

# Stop the broker started by pl_broker_up (politely, then its beam by pid).
pl_broker_down() {
    [ -e "$DIR/broker.name" ] || return 0
    local name; name=$(cat "$DIR/broker.name")
    RABBITMQ_NODENAME=$name rabbitmqctl -n "$name" stop >/dev/null 2>&1 || true
    if [ -s "$DIR/broker/beam.pid" ]; then
        kill -9 "$(cat "$DIR/broker/beam.pid")" 2>/dev/null || true
    fi
}

# Start one replicating node: name, Vitamin port, broker port, exchange,
# then any further flags (--memcache_port N ...).
pl_node_up() { # name port broker_port exchange [flags...]
    local name=$1 port=$2 bport=$3 exchange=$4
    shift 4
    setsid ./vitamin --host 127.0.0.1 --port "$port" --node_id "$name" \
        --rabbitmq_host 127.0.0.1 --rabbitmq_port "$bport" \
        --rabbitmq_exchange "$exchange" "$@" > "$DIR/$name.log" 2>&1 &
    echo $! > "$DIR/$name.pid"
}

# One status line of a node: its state, item count and digest.
pl_node_line() { # name port
    if [ -e "$DIR/$1.pid" ] && kill -0 "$(cat "$DIR/$1.pid")" 2>/dev/null; then
        echo "$1 (port $2): $(pl_ask "$2" 'stats()' | grep -E 'repl_state|curr_items|items_digest' | awk '{printf "%s=%s ", $2, $3}')"
    else
        echo "$1 (port $2): not running"
    fi
}

# Start HAProxy on a local copy of haproxy/haproxy.cfg (localcfg.py
# haproxy arguments: --front NAME=PORT ... --backend NAME=SRV:PORT,...).
pl_haproxy_up() { # name localcfg-args...
    local name=$1
    shift
    $LOCALCFG haproxy haproxy/haproxy.cfg "$DIR/$name.cfg" "$@"
    haproxy -c -q -f "$DIR/$name.cfg"
    haproxy -f "$DIR/$name.cfg" -db > "$DIR/$name.log" 2>&1 &
    echo $! > "$DIR/$name.pid"
}

# Start nutcracker on a local copy of twemproxy/nutcracker.yml (localcfg.py
# nutcracker arguments), its stats on 127.0.0.1:stats_port.
pl_nutcracker_up() { # name stats_port localcfg-args...
    local name=$1 sport=$2
    shift 2
    $LOCALCFG nutcracker twemproxy/nutcracker.yml "$DIR/$name.yml" "$@"
    nutcracker -t -c "$DIR/$name.yml" > "$DIR/$name.log" 2>&1 || { cat "$DIR/$name.log" >&2; return 1; }
    # stats every second (the default is 30 s), for `status`
    setsid nutcracker -c "$DIR/$name.yml" -a 127.0.0.1 -s "$sport" -i 1000 \
        -o "$DIR/$name.log" > /dev/null 2>&1 &
    echo $! > "$DIR/$name.pid"
}

# Stop every process with a pid file in $DIR (not the broker).
pl_kill_all() {
    local f
    for f in "$DIR"/*.pid; do
        [ -e "$f" ] || continue
        kill "$(cat "$f")" 2>/dev/null || true
    done
}
