#!/usr/bin/env bash
# `make bench`: install what the benchmark needs, build, then run
# bench/bench.py (Vitamin vs redis-server vs memcached -t 1, see
# docs/performance.md; it includes the memory per item), then the three
# goals of issue 15 it does not cover: the hit ratio at a cap under Zipf
# workloads (bench/bench_hits.py; BENCH_HITS=0 skips it) and the expiry
# wave (bench/bench_expiry.py; BENCH_EXPIRY=0 skips it), then
# bench/bench_shard.py (nutcracker vs straight to a node; BENCH_SHARD=0
# skips it). Environment: BENCH_ROUNDS (3), BENCH_SECONDS (5),
# BENCH_QUICK=1 (1 round of 2 s, shorter hit-ratio runs, a wave of 200k
# keys), BENCH_MEM_ITEMS (1000000).
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS=${BENCH_PKGS:-"gcc make pkg-config libev-dev librabbitmq-dev libxxhash-dev python3 redis-server redis-tools memcached gnuplot-nox util-linux haproxy nutcracker"}
# shellcheck disable=SC2086
scripts/ensure-packages.sh $PKGS
make --no-print-directory all
"${PYTHON:-/usr/bin/python3}" bench/bench.py "$@"
if [ "${BENCH_HITS:-1}" != 0 ]; then
    "${PYTHON:-/usr/bin/python3}" bench/bench_hits.py
fi
if [ "${BENCH_EXPIRY:-1}" != 0 ]; then
    "${PYTHON:-/usr/bin/python3}" bench/bench_expiry.py
fi
# then what the sharding proxy costs (bench/bench_shard.py), unless BENCH_SHARD=0
if [ "${BENCH_SHARD:-1}" != 0 ]; then
    "${PYTHON:-/usr/bin/python3}" bench/bench_shard.py
fi
