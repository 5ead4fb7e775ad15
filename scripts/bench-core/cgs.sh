#!/bin/bash
# cgs.sh LABEL BIN PORT MODE [extra run args]: callgrind the controller during a sessions
# throughput bench (crm/bench.json, 16 switches, 12 s); counters zeroed 4 s in, dumped 4 s later;
# admissions from /metrics at both points: instructions per admission in the steady state.
label=$1; bin=$2; port=$3; mode=$4; shift 4
out=${OUT:-/work/bench16/raw}; api=$((port+50))
redis-cli -p 16391 flushall >/dev/null
$bin crm load /work/main/crm/bench.json --redis redis://127.0.0.1:16391 > $out/$label.crmload.log 2>&1
echo "$label loadavg before: $(cat /proc/loadavg)" >> $out/loadavg.txt
rm -f $out/cgs.$label.out*
valgrind --tool=callgrind --callgrind-out-file=$out/cgs.$label.out $bin run --openflow 127.0.0.1:$port --api 127.0.0.1:$api --redis redis://127.0.0.1:16391 --crm-mode $mode --ovsdb unix:/nonexistent "$@" > $out/$label.ctl.log 2>&1 &
pid=$!
for i in $(seq 300); do (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.2; done
sleep 3
/work/bin/tierflow-base bench --controller 127.0.0.1:$port --switches 16 --sessions --duration 12 2>$out/$label.bench.err | tail -1 > $out/$label.bench.json &
bpid=$!
sleep 4
m() { curl -s -m 5 http://127.0.0.1:$api/metrics | awk '/^tierflow_sessions_admitted_total/ {print $2}'; }
callgrind_control -z $pid >/dev/null; s0=$(m)
sleep 4
s1=$(m); callgrind_control -d $pid >/dev/null
wait $bpid
kill -INT $pid; wait $pid
f=$(ls -t $out/cgs.$label.out.* | tail -1)
tot=$(callgrind_annotate $f 2>/dev/null | grep 'PROGRAM TOTALS' | awk '{gsub(",","",$1); print $1}')
# the phone-number metadata still loading on its blocking thread in the window: not per setup
pn=$(callgrind_annotate --inclusive=yes --threshold=100 $f 2>/dev/null | grep -m1 'once_cell::imp::initialize_or_wait' | awk '{gsub(",","",$1); print $1}'); pn=${pn:-0}
tot=$((tot-pn))
echo "$label window_admissions=$((s1-s0)) ($s0..$s1) window_instr=$tot metadata_excluded=$pn per_admission=$((tot/(s1-s0))) file=$f" | tee -a $out/cgs.summary.txt
