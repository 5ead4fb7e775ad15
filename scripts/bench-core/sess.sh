#!/bin/bash
# sess.sh LABEL BIN PORT MODE(replica|remote) KIND(lat|thr) [extra run args]
# crm/bench.json loaded (the binary's own loader) into a flushed private Redis (16391);
# fresh controller on core 0, bench on core 1.
#   lat: --mode latency --hops 4 --switches 4 --sessions --duration 5
#   thr: --switches 16 --sessions --duration 5
label=$1; bin=$2; port=$3; mode=$4; kind=$5; shift 5
out=${OUT:-/work/bench16/raw}; api=$((port+50))
redis-cli -p 16391 flushall >/dev/null
$bin crm load /work/main/crm/bench.json --redis redis://127.0.0.1:16391 > $out/$label.crmload.log 2>&1
echo "$label loadavg before: $(cat /proc/loadavg)" >> $out/loadavg.txt
taskset -c 0 $bin run --openflow 127.0.0.1:$port --api 127.0.0.1:$api --redis redis://127.0.0.1:16391 --crm-mode $mode --ovsdb unix:/nonexistent "$@" > $out/$label.ctl.log 2>&1 &
pid=$!
for i in $(seq 300); do (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
sleep 2
if [ $kind = lat ]; then
  taskset -c 1 /work/bin/tierflow-base bench --controller 127.0.0.1:$port --mode latency --hops 4 --switches 4 --sessions --duration 5 2>$out/$label.bench.err | tail -1 > $out/$label.bench.json
else
  taskset -c 1 /work/bin/tierflow-base bench --controller 127.0.0.1:$port --switches 16 --sessions --duration 5 2>$out/$label.bench.err | tail -1 > $out/$label.bench.json
fi
kill -INT $pid; wait $pid
echo "$label $(cat $out/$label.bench.json)"
grep -o '"sessions_admitted":[0-9]*' $out/$label.ctl.log | tail -1
