#!/usr/bin/env bash
# A local Vitamin pool on loopback, for trying and testing:
#   scripts/pool.sh up [N]   private RabbitMQ broker, N nodes (default 3), HAProxy in front
#   scripts/pool.sh status   ping and key stats of every node
#   scripts/pool.sh down     stop everything and remove the state folder
# Ports: broker 25672, nodes 18081.., HAProxy 18080 (override with
# POOL_BROKER_PORT, POOL_NODE_PORT, POOL_FRONT_PORT). State lives in
# ${POOL_DIR:-/tmp/vitamin-pool}.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${POOL_DIR:-/tmp/vitamin-pool}
BROKER_PORT=${POOL_BROKER_PORT:-25672}
# Erlang distribution port of the broker: 10000 away from its AMQP port,
# below it when above would not be a port (POOL_DIST_PORT overrides).
if [ -z "${POOL_DIST_PORT:-}" ]; then
    if [ $((BROKER_PORT + 10000)) -le 65535 ]; then POOL_DIST_PORT=$((BROKER_PORT + 10000))
    else POOL_DIST_PORT=$((BROKER_PORT - 10000)); fi
fi
NODE_PORT=${POOL_NODE_PORT:-18081}
FRONT_PORT=${POOL_FRONT_PORT:-18080}
NODENAME=vpool$BROKER_PORT@localhost
PY=/usr/bin/python3

wait_port() { # port seconds
    for _ in $(seq $(( $2 * 10 ))); do
        (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "pool: nothing listens on port $1" >&2
    for f in "$DIR"/node*.log "$DIR"/haproxy.log; do
        [ -e "$f" ] && { echo "--- $f" >&2; tail -n 5 "$f" >&2; }
    done
    return 1
}

ask() { # port request -> first reply line(s)
    $PY - "$1" "$2" <<'PYEOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
s.sendall(sys.argv[2].encode() + b"\n")
buf = b""
while not (buf.endswith(b"END\n") or (not sys.argv[2].startswith("stats") and buf.endswith(b"\n"))):
    d = s.recv(65536)
    if not d: break
    buf += d
print(buf.decode(errors="replace"), end="")
PYEOF
}

up() {
    local n=${1:-3}
    scripts/ensure-packages.sh rabbitmq-server haproxy python3 >/dev/null
    make --no-print-directory -s all
    if [ -e "$DIR" ]; then echo "pool: $DIR exists; run '$0 down' first" >&2; exit 1; fi
    mkdir -p "$DIR"/mnesia "$DIR"/log
    echo '[].' > "$DIR"/enabled_plugins
    chown -R rabbitmq:rabbitmq "$DIR"
    (
        export RABBITMQ_NODENAME=$NODENAME RABBITMQ_NODE_PORT=$BROKER_PORT \
            RABBITMQ_DIST_PORT=$POOL_DIST_PORT RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
            RABBITMQ_MNESIA_BASE=$DIR/mnesia RABBITMQ_LOG_BASE=$DIR/log \
            RABBITMQ_ENABLED_PLUGINS_FILE=$DIR/enabled_plugins \
            RABBITMQ_FEATURE_FLAGS_FILE=$DIR/feature_flags RABBITMQ_PID_FILE=$DIR/rabbit.pid
        setsid /usr/sbin/rabbitmq-server > "$DIR"/broker.log 2>&1 &
    )
    if ! wait_port "$BROKER_PORT" 60; then
        echo "pool: the broker did not start; its log: $DIR/broker.log" >&2
        tail -n 20 "$DIR/broker.log" >&2
        exit 1
    fi
    local servers=""
    for i in $(seq 1 "$n"); do
        local port=$((NODE_PORT + i - 1))
        setsid ./vitamin --host 127.0.0.1 --port "$port" --node_id "node$i" \
            --rabbitmq_host 127.0.0.1 --rabbitmq_port "$BROKER_PORT" \
            > "$DIR/node$i.log" 2>&1 &
        echo $! > "$DIR/node$i.pid"
        servers+="    server node$i 127.0.0.1:$port check"$'\n'
    done
    sed -e "s/^    bind \*:8080/    bind 127.0.0.1:$FRONT_PORT/" \
        -e '/^    server /d' haproxy/haproxy.cfg > "$DIR/haproxy.cfg"
    printf '%s' "$servers" >> "$DIR/haproxy.cfg"
    haproxy -f "$DIR/haproxy.cfg" -db > "$DIR/haproxy.log" 2>&1 &
    echo $! > "$DIR/haproxy.pid"
    for i in $(seq 1 "$n"); do wait_port $((NODE_PORT + i - 1)) 10; done
    wait_port "$FRONT_PORT" 10
    echo "pool: $n nodes on ports $NODE_PORT..$((NODE_PORT + n - 1)), broker on $BROKER_PORT"
    echo "pool: connect with: nc 127.0.0.1 $FRONT_PORT"
}

status() {
    for f in "$DIR"/node*.pid; do
        [ -e "$f" ] || continue
        local name; name=$(basename "$f" .pid)
        local port=$((NODE_PORT + ${name#node} - 1))
        if kill -0 "$(cat "$f")" 2>/dev/null; then
            echo "$name (port $port): $(ask "$port" 'stats()' | grep -E 'repl_state|curr_items|items_digest' | awk '{printf "%s=%s ", $2, $3}')"
        else
            echo "$name (port $port): not running"
        fi
    done
}

down() {
    for f in "$DIR"/*.pid; do
        [ -e "$f" ] || continue
        kill "$(cat "$f")" 2>/dev/null || true
    done
    RABBITMQ_NODENAME=$NODENAME rabbitmqctl -n "$NODENAME" stop >/dev/null 2>&1 || true
    pkill -f "$NODENAME" 2>/dev/null || true
    rm -rf "$DIR"
    echo "pool: down"
}

case "${1:-}" in
    up) up "${2:-3}" ;;
    status) status ;;
    down) down ;;
    *) echo "usage: $0 up [N] | status | down" >&2; exit 2 ;;
esac
