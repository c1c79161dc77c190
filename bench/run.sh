#!/usr/bin/env bash
# `make bench`: install what the benchmark needs, build, then run
# bench/bench.py (Vitamin vs redis-server vs memcached -t 1, see
# docs/performance.md). Environment: BENCH_ROUNDS (3), BENCH_SECONDS (5),
# BENCH_QUICK=1 (1 round of 2 s), BENCH_MEM_ITEMS (1000000).
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS=${BENCH_PKGS:-"gcc make pkg-config libev-dev librabbitmq-dev libxxhash-dev python3 redis-server redis-tools memcached gnuplot-nox util-linux"}
# shellcheck disable=SC2086
scripts/ensure-packages.sh $PKGS
make --no-print-directory all
exec "${PYTHON:-/usr/bin/python3}" bench/bench.py "$@"
