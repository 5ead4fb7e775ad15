#!/bin/bash
# failover.sh N BIN: runs tests/e2e/test_cluster.py N times against BIN
# (two instances, the leader killed with -9 during a gold session) and
# prints each run's figure line; OUT (default /work/bench13) keeps the logs.
n=${1:-10}; bin=${2:?binary}
out=${OUT:-/work/bench13}; mkdir -p "$out"
cd "$(dirname "$0")/../.."
for i in $(seq "$n"); do
  TIERFLOW_BIN=$bin /usr/bin/python3 -m pytest -q -p no:cacheprovider --timeout 300 \
    --timeout-method signal --basetemp="$out/run-$i" tests/e2e/test_cluster.py > "$out/run-$i.out" 2>&1
  echo "run $i rc=$? $(grep -o 'survivor master.*' "$out/run-$i.out" | head -1)"
done
