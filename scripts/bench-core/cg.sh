#!/bin/bash
# cg.sh LABEL BIN PORT [extra run args]: callgrind the controller (empty private Redis 16391)
# while tierflow bench runs 8 s (4 switches, window 32); SIGINT; setups from the stopped stats line.
label=$1; bin=$2; port=$3; shift 3
out=${OUT:-/work/bench16/raw}; api=$((port+50))
redis-cli -p 16391 flushall >/dev/null
echo "$label loadavg before: $(cat /proc/loadavg)" >> $out/loadavg.txt
rm -f $out/cg.$label.out
valgrind --tool=callgrind --callgrind-out-file=$out/cg.$label.out $bin run --openflow 127.0.0.1:$port --api 127.0.0.1:$api --redis redis://127.0.0.1:16391 --ovsdb unix:/nonexistent "$@" > $out/$label.ctl.log 2>&1 &
pid=$!
for i in $(seq 300); do (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.2; done
/work/bin/tierflow-base bench --controller 127.0.0.1:$port --switches 4 --window 32 --duration 8 2>$out/$label.bench.err | tail -1 > $out/$label.bench.json
kill -INT $pid; wait $pid
s=$(grep -o '"setups_completed":[0-9]*' $out/$label.ctl.log | tail -1 | cut -d: -f2)
tot=$(callgrind_annotate $out/cg.$label.out 2>/dev/null | grep 'PROGRAM TOTALS' | awk '{gsub(",","",$1); print $1}')
pn=$(callgrind_annotate --inclusive=yes $out/cg.$label.out 2>/dev/null | grep -m1 'Database::from \[' | awk '{gsub(",","",$1); print $1}')
echo "$label setups=$s total=$tot phonenumber_db=$pn per_setup=$((tot/s)) per_setup_excl_db=$(((tot-pn)/s))" | tee -a $out/cg.summary.txt
