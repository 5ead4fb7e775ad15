#!/bin/bash
# mem.sh LABEL BIN PORT TOOL(massif|rss) TARGET CONFIG
# Replica mode, crm/bench.json loaded (the binary's own loader) into a flushed private Redis (16391).
# The controller gets CONFIG (echo_interval 300 s, dead_after 600 s so that stopped switches stay connected).
# tierflow bench --switches 16 --sessions runs until /metrics' tierflow_sessions_admitted_total >= TARGET, is then
# stopped (SIGSTOP: its 16 switches stay connected, so every session stays live on its path);
# once the Redis writer has drained (SCARD stable for 2 s) VmRSS is read (and a massif detailed
# snapshot taken through vgdb); VmRSS (and a snapshot) also before the bench connected.
label=$1; bin=$2; port=$3; tool=$4; target=$5; cfg=$6
out=${OUT:-/work/bench16/raw}; api=$((port+50))
R="redis-cli -p 16391"
$R flushall >/dev/null
$bin crm load /work/main/crm/bench.json --redis redis://127.0.0.1:16391 > $out/$label.crmload.log 2>&1
echo "loadavg before: $(cat /proc/loadavg)" > $out/$label.mem.txt
echo "loadavg $label before: $(cat /proc/loadavg)" >> $out/loadavg.txt
args="run --config $cfg --openflow 127.0.0.1:$port --api 127.0.0.1:$api --redis redis://127.0.0.1:16391 --crm-mode replica --ovsdb unix:/nonexistent"
if [ $tool = massif ]; then
  valgrind --tool=massif --vgdb=yes --time-unit=ms --massif-out-file=$out/massif.$label.out $bin $args > $out/$label.ctl.log 2>&1 &
else
  taskset -c 0 $bin $args > $out/$label.ctl.log 2>&1 &
fi
pid=$!
for i in $(seq 300); do (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.2; done
sleep 3
[ $tool = massif ] && vgdb --pid=$pid detailed_snapshot $out/massif.$label.before >/dev/null 2>&1
grep -E 'VmRSS' /proc/$pid/status | sed 's/^/before /' >> $out/$label.mem.txt
taskset -c 1 /work/bin/tierflow-base bench --controller 127.0.0.1:$port --switches 16 --sessions --duration 120 > $out/$label.bench.json 2>$out/$label.bench.err &
bpid=$!
t0=$(date +%s.%N)
for i in $(seq 1200); do n=$(curl -s -m 2 http://127.0.0.1:$api/metrics | awk '/^tierflow_sessions_admitted_total/ {print $2}'); [ "${n:-0}" -ge $target ] && break; sleep 0.1; done
kill -STOP $bpid
echo "bench stopped after $(echo "$(date +%s.%N) - $t0" | bc) s at sessions_admitted $n" >> $out/$label.mem.txt
prev=-1
for i in $(seq 300); do n=$($R scard tf:sessions); [ "$n" = "$prev" ] && break; prev=$n; sleep 2; done
echo "live sessions (SCARD tf:sessions, writer drained): $n" >> $out/$label.mem.txt
curl -s http://127.0.0.1:$api/metrics | grep -E '^tierflow_sessions' >> $out/$label.mem.txt
grep -E 'VmRSS|VmHWM' /proc/$pid/status | sed 's/^/after /' >> $out/$label.mem.txt
[ $tool = massif ] && vgdb --pid=$pid detailed_snapshot $out/massif.$label.after >/dev/null 2>&1
echo "loadavg after: $(cat /proc/loadavg)" >> $out/$label.mem.txt
kill -KILL $bpid; wait $bpid 2>/dev/null
sleep 1
kill -INT $pid; wait $pid
grep -o '"sessions_admitted":[0-9]*' $out/$label.ctl.log | tail -1 >> $out/$label.mem.txt
cat $out/$label.mem.txt
