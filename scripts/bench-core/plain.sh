#!/bin/bash
# plain.sh LABEL BIN PORT [extra run args]: fresh controller on core 0 (empty private Redis 16391,
# replica mode, no CRM), tierflow bench on core 1: throughput, 16 switches, 1 hop, 6 s.
label=$1; bin=$2; port=$3; shift 3
out=${OUT:-/work/bench16/raw}; api=$((port+50))
redis-cli -p 16391 flushall >/dev/null
echo "$label loadavg before: $(cat /proc/loadavg)" >> $out/loadavg.txt
taskset -c 0 $bin run --openflow 127.0.0.1:$port --api 127.0.0.1:$api --redis redis://127.0.0.1:16391 --crm-mode replica --ovsdb unix:/nonexistent "$@" > $out/$label.ctl.log 2>&1 &
pid=$!
for i in $(seq 300); do (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
sleep 1
taskset -c 1 /work/bin/tierflow-base bench --controller 127.0.0.1:$port --mode throughput --switches 16 --duration 6 2>$out/$label.bench.err | tail -1 > $out/$label.bench.json
kill -INT $pid; wait $pid
echo "$label $(cat $out/$label.bench.json)"
