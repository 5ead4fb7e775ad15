#!/bin/bash
# perfsess.sh LABEL BIN PORT MODE [extra run args]: sess.sh's thr run with perf record (99 Hz... 999 Hz) on the controller
label=$1; bin=$2; port=$3; mode=$4; shift 4
out=/work/bench16/raw; api=$((port+50))
redis-cli -p 16391 flushall >/dev/null
$bin crm load /work/main/crm/bench.json --redis redis://127.0.0.1:16391 > $out/$label.crmload.log 2>&1
echo "$label loadavg before: $(cat /proc/loadavg)" >> $out/loadavg.txt
taskset -c 0 $bin run --openflow 127.0.0.1:$port --api 127.0.0.1:$api --redis redis://127.0.0.1:16391 --crm-mode $mode --ovsdb unix:/nonexistent "$@" > $out/$label.ctl.log 2>&1 &
pid=$!
for i in $(seq 300); do (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
sleep 2
perf record -F 999 -g -p $pid -o $out/perf.$label.data -- sleep 6 > /dev/null 2>&1 &
ppid=$!
taskset -c 1 /work/bin/tierflow-base bench --controller 127.0.0.1:$port --switches 16 --sessions --duration 5 2>$out/$label.bench.err | tail -1 > $out/$label.bench.json
wait $ppid
kill -INT $pid; wait $pid
echo "$label $(cut -c1-120 $out/$label.bench.json)"
