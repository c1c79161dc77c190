#!/usr/bin/env bash
# Several replicated Vitamin pools sharded behind twemproxy, on loopback:
#   scripts/shard.sh up [POOLS] [NODES]   one broker, POOLS pools (default 2) of
#                                         NODES nodes (default 2), one HAProxy per
#                                         pool, nutcracker in front
#   scripts/shard.sh status               keys and digest of every node, per
#                                         pool; what nutcracker sees; addresses
#   scripts/shard.sh down                 stop everything, remove the state folder
#
# One broker, one exchange per pool (vitamin.pool1, vitamin.pool2, ...).
# Not a vhost per pool: an exchange needs no broker setup (each node
# declares its exchange and its queue <exchange>.<node_id> when it
# connects), so the pools are apart with nothing to configure, and the
# demo starts as fast as one pool. A vhost per pool (--rabbitmq_vhost)
# also separates users, permissions and limits: worth it when pools belong
# to different teams, at the cost of `rabbitmqctl add_vhost` and
# `set_permissions` before the nodes start (docs/operations.md).
#
# Ports (SHARD_BASE_PORT=19000 by default; pool p = 1.., node n = 1..9):
#   HAProxy of pool p    BASE+100p: Vitamin, +1: memcached, +2: Redis
#   node n of pool p     BASE+100p+10n: Vitamin, +1: memcached, +2: Redis
#   nutcracker           SHARD_PROXY_PORT (22121): memcached, +1: Redis;
#                        stats (JSON) on SHARD_STATS_PORT (22222)
#   broker               SHARD_BROKER_PORT (25772)
# State lives in ${SHARD_DIR:-/tmp/vitamin-shard}. SHARD_RETRY_MS overrides
# nutcracker's server_retry_timeout (the tests shorten it).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${SHARD_DIR:-/tmp/vitamin-shard}
BASE=${SHARD_BASE_PORT:-19000}
PROXY_PORT=${SHARD_PROXY_PORT:-22121}
STATS_PORT=${SHARD_STATS_PORT:-22222}
BROKER_PORT=${SHARD_BROKER_PORT:-25772}
NODENAME=vshard$BROKER_PORT@localhost
# shellcheck source=lib/pool-lib.sh
. scripts/lib/pool-lib.sh

front_port() { echo $((BASE + 100 * $1 + $2)); }            # pool proto(0,1,2)
node_port() { echo $((BASE + 100 * $1 + 10 * $2 + $3)); }   # pool node proto

up() {
    local pools=${1:-2} nodes=${2:-2}
    if [ "$nodes" -lt 1 ] || [ "$nodes" -gt 9 ] || [ "$pools" -lt 1 ] ||
       [ $((BASE + 100 * pools + 92)) -gt 65535 ]; then
        echo "shard: 1..9 nodes per pool, and pools that fit above port $BASE" >&2; exit 2
    fi
    scripts/ensure-packages.sh rabbitmq-server haproxy nutcracker python3 >/dev/null
    make --no-print-directory -s all
    if [ -e "$DIR" ]; then echo "shard: $DIR exists; run '$0 down' first" >&2; exit 1; fi
    mkdir -p "$DIR"
    echo "$pools $nodes" > "$DIR/layout"
    pl_broker_up "$BROKER_PORT" "$NODENAME" || exit 1
    local mc_servers="" redis_servers=""
    for p in $(seq 1 "$pools"); do
        local vit="" mc="" rd=""
        for n in $(seq 1 "$nodes"); do
            pl_node_up "pool$p-node$n" "$(node_port "$p" "$n" 0)" "$BROKER_PORT" "vitamin.pool$p" \
                --memcache_port "$(node_port "$p" "$n" 1)" --redis_port "$(node_port "$p" "$n" 2)"
            vit+="${vit:+,}node$n:$(node_port "$p" "$n" 0)"
            mc+="${mc:+,}node$n:$(node_port "$p" "$n" 1)"
            rd+="${rd:+,}node$n:$(node_port "$p" "$n" 2)"
        done
        pl_haproxy_up "pool$p-haproxy" \
            --front vitamin="$(front_port "$p" 0)" --backend vitamin_nodes="$vit" \
            --front memcache="$(front_port "$p" 1)" --backend memcache_nodes="$mc" \
            --front redis="$(front_port "$p" 2)" --backend redis_nodes="$rd"
        mc_servers+="${mc_servers:+,}pool$p:$(front_port "$p" 1)"
        redis_servers+="${redis_servers:+,}pool$p:$(front_port "$p" 2)"
    done
    for p in $(seq 1 "$pools"); do
        for n in $(seq 1 "$nodes"); do pl_wait_port "$(node_port "$p" "$n" 0)" 10; done
        pl_wait_port "$(front_port "$p" 1)" 10
    done
    local retry=()
    if [ -n "${SHARD_RETRY_MS:-}" ]; then
        retry=(--set vitamin_memcache.server_retry_timeout="$SHARD_RETRY_MS"
               --set vitamin_redis.server_retry_timeout="$SHARD_RETRY_MS")
    fi
    pl_nutcracker_up nutcracker "$STATS_PORT" \
        --listen vitamin_memcache="$PROXY_PORT" --servers vitamin_memcache="$mc_servers" \
        --listen vitamin_redis=$((PROXY_PORT + 1)) --servers vitamin_redis="$redis_servers" \
        "${retry[@]}"
    pl_wait_port "$PROXY_PORT" 10
    echo "shard: $pools pools of $nodes nodes, broker on $BROKER_PORT (exchanges vitamin.pool1..$pools)"
    echo "shard: memcached clients: 127.0.0.1:$PROXY_PORT (nutcracker)"
    if pl_port_open "$(node_port 1 1 2)"; then
        echo "shard: Redis clients:     127.0.0.1:$((PROXY_PORT + 1)) (nutcracker)"
    else
        echo "shard: Redis clients:     127.0.0.1:$((PROXY_PORT + 1)) once this build serves --redis_port (it does not yet)"
    fi
    echo "shard: try: $PY -c 'from pymemcache.client.base import Client; c = Client((\"127.0.0.1\", $PROXY_PORT)); c.set(\"k\", \"v\"); print(c.get(\"k\"))'"
    if pl_port_open "$(node_port 1 1 2)" && command -v redis-cli >/dev/null; then
        echo "shard:  or: redis-cli -p $((PROXY_PORT + 1)) SET k v; redis-cli -p $((PROXY_PORT + 1)) GET k"
    fi
    echo "shard: then: $0 status"
}

# nutcracker's stats for one server pool: "pool1: requests 12 ..." lines
proxy_stats() { # nutcracker pool name
    $PY - "$STATS_PORT" "$1" <<'PYEOF'
import json, socket, sys, time
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    st = json.loads(data)
except (OSError, ValueError) as e:
    print("    (no stats: %s)" % e)
    sys.exit(0)
pool = st.get(sys.argv[2], {})
print("    ejections so far: %s, client connections: %s"
      % (pool.get("server_ejects"), pool.get("client_connections")))
for name, srv in sorted(pool.items()):
    if not isinstance(srv, dict):
        continue
    ej = srv.get("server_ejected_at", 0)
    print("    %s: requests %s, errors %s, eof %s, timeouts %s%s"
          % (name, srv.get("requests"), srv.get("server_err"),
             srv.get("server_eof"), srv.get("server_timedout"),
             ", last ejected %.0f s ago" % (time.time() - ej / 1e6) if ej else ""))
PYEOF
}

status() {
    if [ ! -e "$DIR/layout" ]; then echo "shard: not running ($DIR)" >&2; exit 1; fi
    local pools nodes
    read -r pools nodes < "$DIR/layout"
    local total=0
    for p in $(seq 1 "$pools"); do
        local keys="" digests="" lines=""
        for n in $(seq 1 "$nodes"); do
            local line; line=$(pl_node_line "pool$p-node$n" "$(node_port "$p" "$n" 0)")
            lines+="  $line"$'\n'
            keys=$(sed -n 's/.*curr_items=\([0-9]*\).*/\1/p' <<< "$line")
            digests+="$(sed -n 's/.*items_digest=\([^ ]*\).*/\1/p' <<< "$line")"$'\n'
        done
        local agree="digests differ"
        [ "$(grep -c . <<< "$digests")" -eq "$nodes" ] && \
            [ "$(sort -u <<< "$digests" | grep -c .)" -eq 1 ] && agree="digests agree"
        echo "pool$p: ${keys:-?} keys, $agree; HAProxy 127.0.0.1:$(front_port "$p" 0) Vitamin," \
             ":$(front_port "$p" 1) memcached, :$(front_port "$p" 2) Redis; exchange vitamin.pool$p"
        printf '%s' "$lines"
        total=$((total + ${keys:-0}))
    done
    echo "all pools: $total keys"
    if [ -e "$DIR/nutcracker.pid" ] && kill -0 "$(cat "$DIR/nutcracker.pid")" 2>/dev/null; then
        echo "nutcracker: memcached 127.0.0.1:$PROXY_PORT, Redis 127.0.0.1:$((PROXY_PORT + 1))," \
             "stats 127.0.0.1:$STATS_PORT"
        echo "  vitamin_memcache:"
        proxy_stats vitamin_memcache
        echo "  vitamin_redis:"
        proxy_stats vitamin_redis
    else
        echo "nutcracker: not running"
    fi
}

down() {
    pl_kill_all
    pl_broker_down
    rm -rf "$DIR"
    echo "shard: down"
}

case "${1:-}" in
    up) up "${2:-2}" "${3:-2}" ;;
    status) status ;;
    down) down ;;
    *) echo "usage: $0 up [POOLS] [NODES] | status | down" >&2; exit 2 ;;
esac
