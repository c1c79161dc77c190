#!/usr/bin/env bash
# Profile the Vitamin server under a short vitamin-benchmark load, per
# workload of `make bench`:
#   callgrind  instructions by function (user space only; valgrind)
#   perf       cycles by symbol, kernel included (when perf can sample here)
# Writes bench/results/profile-<workload>-{callgrind,perf}.txt.
# Usage: bench/profile.sh [workload ...]   (default: all four)
#   PROFILE_REQUESTS  requests under callgrind (200000)
#   PROFILE_SECONDS   seconds under perf (5)
#   PROFILE_PROTOCOL  vitamin (default) or memcache: which port the load uses
#                     (memcache: the server gets --memcache_port; files are
#                     named profile-mc-<workload>-...)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-packages.sh valgrind util-linux
make --no-print-directory all >/dev/null
OUT=bench/results
mkdir -p "$OUT"
N=${PROFILE_REQUESTS:-200000}
SECS=${PROFILE_SECONDS:-5}
B=build/vitamin-benchmark
PROTOCOL=${PROFILE_PROTOCOL:-vitamin}
TAG=""
[ "$PROTOCOL" = memcache ] && TAG="mc-"
declare -A LOAD=(
    [get90_p1]="--ratio 1:9 -P 1 -d 32"
    [get90_p16]="--ratio 1:9 -P 16 -d 32"
    [set100_p16]="--ratio 1:0 -P 16 -d 32"
    [get90_p16_4k]="--ratio 1:9 -P 16 -d 4096"
)
free_port() { "${PYTHON:-/usr/bin/python3}" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

PID=""
cleanup() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi; }
trap cleanup EXIT

for w in "${@:-get90_p1 get90_p16 set100_p16 get90_p16_4k}"; do
  for wl in $w; do
    args=${LOAD[$wl]:?unknown workload $wl}
    d=$(sed -E 's/.*-d ([0-9]+).*/\1/' <<<"$args")

    # callgrind: instructions counted from the end of the prefill to the end
    # of the load; written at exit
    port=$(free_port); mport=$(free_port); lport=$port; mcflags=()
    [ "$PROTOCOL" = memcache ] && { lport=$mport; mcflags=(--memcache_port "$mport"); }
    cg=$(mktemp /tmp/vitamin-callgrind.XXXXXX)
    taskset -c 0 valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$cg" \
        build/vitamin --port "$port" "${mcflags[@]}" --memory 1024 --log_level warn 2>/dev/null &
    PID=$!
    wait_port "$port"
    taskset -c 1 $B -p "$lport" --protocol "$PROTOCOL" --prefill -n 0 -r 100000 -d "$d" \
        --ttl 3600 -P 16 >/dev/null
    callgrind_control -i on "$PID" >/dev/null 2>&1
    taskset -c 1 $B -p "$lport" --protocol "$PROTOCOL" -n "$N" -r 100000 --ttl 3600 -c 50 \
        $args --timeout 60 > "$OUT/profile-$TAG$wl-load.txt"
    callgrind_control -i off "$PID" >/dev/null 2>&1 # leave the shutdown out
    kill -TERM "$PID"; wait "$PID" || true; PID=""
    callgrind_annotate --inclusive=no "$cg" > "$OUT/profile-$TAG$wl-callgrind.txt" 2>/dev/null
    callgrind_annotate --inclusive=yes "$cg" > "$OUT/profile-$TAG$wl-callgrind-inclusive.txt" 2>/dev/null
    rm -f "$cg"
    echo "== $TAG$wl: callgrind (self instructions, top 15)"
    grep -E '^ *[0-9,]+ \(' "$OUT/profile-$TAG$wl-callgrind.txt" | sed -n 1,16p

    # perf: cycles of the server, kernel included, while the load runs
    if perf record -o /dev/null -- true >/dev/null 2>&1; then
      port=$(free_port); mport=$(free_port); lport=$port; mcflags=()
      [ "$PROTOCOL" = memcache ] && { lport=$mport; mcflags=(--memcache_port "$mport"); }
      taskset -c 0 build/vitamin --port "$port" "${mcflags[@]}" --memory 1024 --log_level warn &
      PID=$!
      wait_port "$port"
      taskset -c 1 $B -p "$lport" --protocol "$PROTOCOL" --prefill -n 0 -r 100000 -d "$d" \
          --ttl 3600 -P 16 >/dev/null
      taskset -c 1 $B -p "$lport" --protocol "$PROTOCOL" -t $((SECS + 2)) -r 100000 --ttl 3600 \
          -c 50 $args >/dev/null &
      bp=$!
      sleep 1
      perf record -q -e cycles -p "$PID" -o /tmp/vitamin-perf.data -- sleep "$SECS" 2>/dev/null
      wait "$bp" || true
      kill -TERM "$PID"; wait "$PID" || true; PID=""
      perf report -i /tmp/vitamin-perf.data --stdio --no-children --sort symbol \
        > "$OUT/profile-$TAG$wl-perf.txt" 2>/dev/null
      perf report -i /tmp/vitamin-perf.data --stdio --no-children --sort dso \
        > "$OUT/profile-$TAG$wl-perf-dso.txt" 2>/dev/null
      rm -f /tmp/vitamin-perf.data
      echo "== $TAG$wl: perf (cycles, top 15)"
      grep -E '^ +[0-9.]+%' "$OUT/profile-$TAG$wl-perf-dso.txt" | sed -n 1,6p
      grep -E '^ +[0-9.]+%' "$OUT/profile-$TAG$wl-perf.txt" | sed -n 1,20p
    fi
  done
done
