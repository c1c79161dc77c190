#!/usr/bin/env bash
# A local Vitamin pool on loopback, for trying and testing:
#   scripts/pool.sh up [N]   private RabbitMQ broker, N nodes (default 3), HAProxy in front
#   scripts/pool.sh status   ping and key stats of every node
#   scripts/pool.sh down     stop everything and remove the state folder
# Ports: broker 25672, nodes 18081.., HAProxy 18080 (override with
# POOL_BROKER_PORT, POOL_NODE_PORT, POOL_FRONT_PORT). State lives in
# ${POOL_DIR:-/tmp/vitamin-pool}. Several pools sharded behind twemproxy:
# scripts/shard.sh. Both use scripts/lib/pool-lib.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${POOL_DIR:-/tmp/vitamin-pool}
BROKER_PORT=${POOL_BROKER_PORT:-25672}
NODE_PORT=${POOL_NODE_PORT:-18081}
FRONT_PORT=${POOL_FRONT_PORT:-18080}
NODENAME=vpool$BROKER_PORT@localhost
# shellcheck source=lib/pool-lib.sh
. scripts/lib/pool-lib.sh

up() {
    local n=${1:-3}
    scripts/ensure-packages.sh rabbitmq-server haproxy python3 >/dev/null
    make --no-print-directory -s all
    if [ -e "$DIR" ]; then echo "pool: $DIR exists; run '$0 down' first" >&2; exit 1; fi
    mkdir -p "$DIR"
    pl_broker_up "$BROKER_PORT" "$NODENAME" || exit 1
    local servers=""
    for i in $(seq 1 "$n"); do
        local port=$((NODE_PORT + i - 1))
        pl_node_up "node$i" "$port" "$BROKER_PORT" vitamin
        servers+="${servers:+,}node$i:$port"
    done
    pl_haproxy_up haproxy --front vitamin="$FRONT_PORT" --backend vitamin_nodes="$servers"
    for i in $(seq 1 "$n"); do pl_wait_port $((NODE_PORT + i - 1)) 10; done
    pl_wait_port "$FRONT_PORT" 10
    echo "pool: $n nodes on ports $NODE_PORT..$((NODE_PORT + n - 1)), broker on $BROKER_PORT"
    echo "pool: connect with: nc 127.0.0.1 $FRONT_PORT"
}

status() {
    for f in "$DIR"/node*.pid; do
        [ -e "$f" ] || continue
        local name; name=$(basename "$f" .pid)
        pl_node_line "$name" $((NODE_PORT + ${name#node} - 1))
    done
}

down() {
    pl_kill_all
    pl_broker_down
    rm -rf "$DIR"
    echo "pool: down"
}

case "${1:-}" in
    up) up "${2:-3}" ;;
    status) status ;;
    down) down ;;
    *) echo "usage: $0 up [N] | status | down" >&2; exit 2 ;;
esac
