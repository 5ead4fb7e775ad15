#!/bin/bash
# ab.sh: alternated triplets of tierflow-base (e40758c), tierflow-perf16-before (d58ea1d) and
# tierflow-perf16 (perf16): plain.sh and sess.sh (replica and remote throughput) four rounds,
# sess.sh latency three rounds; each round in the opposite order of the last. OUT= where to write.
cd "$(dirname "$0")"
B=/work/bin/tierflow-base; P=/work/bin/tierflow-perf16-before; N=/work/bin/tierflow-perf16
C="$(cd .. && pwd)/bench.toml"
port=17600
run() { port=$((port+1)); "$@"; }
for r in 1 2 3 4; do
  order="base before new"; [ $((r%2)) = 0 ] && order="new before base"
  for w in $order; do
    case $w in base) bin=$B; extra=();; before) bin=$P; extra=(--config $C);; new) bin=$N; extra=(--config $C);; esac
    run ./plain.sh plain-$w-$r $bin $port "${extra[@]}"
    run ./sess.sh s-replica-thr-$w-$r $bin $port replica thr "${extra[@]}"
    run ./sess.sh s-remote-thr-$w-$r $bin $port remote thr "${extra[@]}"
    if [ $r -le 3 ]; then
      run ./sess.sh s-replica-lat-$w-$r $bin $port replica lat "${extra[@]}"
      run ./sess.sh s-remote-lat-$w-$r $bin $port remote lat "${extra[@]}"
    fi
  done
done
