#!/usr/bin/env bash
# Tierflow's live demo: starts Open vSwitch and Redis (scripts/setup.sh),
# the controller, and a Mininet contact-center topology, and shows the
# controller at work: discovery, loop-free flooding, shortest-path flows on
# every switch of a path, customer-value QoS (the sample CRM in Redis: a gold
# and a bronze customer measured at the same time, an unknown client on the
# default tier, the gold session's meter, DSCP and queue on every switch of
# its path), re-routing around a failed link, and Open vSwitch decoding the
# tier FLOW_MOD Tierflow's codec builds, an operator raising a tier
# through the REST API while its session runs, and a SIP call held and
# resumed by re-INVITE with its bandwidth before, during and after, and last a
# second instance of the controller on the same Redis taking the switches over
# when the first is killed (kill -9) during a gold session (interactive docs at
# http://127.0.0.1:8080/docs). The network is routed: customers, agents'
# phones and PCs, and servers in subnets of their own VLANs, Tierflow the
# router between them (`--flat`: the single bridged LAN of before).
# `--keep` leaves everything up at the end so you can drive the API
# yourself; Enter stops it.
set -euo pipefail
keep=()
flat=()
crm=crm/contact-center-routed.json
for arg in "$@"; do
    case "$arg" in
        --keep) keep=(--keep) ;;
        --flat) flat=(--flat); crm=crm/contact-center.json ;;
        *) echo "usage: $0 [--keep] [--flat]" >&2; exit 2 ;;
    esac
done
# Mutations need a bearer token: yours, or the demo's.
export TIERFLOW_API_TOKEN="${TIERFLOW_API_TOKEN:-tierflow-demo}"
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --quiet --bin tierflow --example tier_flow_mod
tf=target/release/tierflow
# Not under /tmp: `mn -c` deletes /tmp/*.log.
mkdir -p target/demo
log=target/demo/tierflow.log

mn -c >/dev/null 2>&1 || true
echo "== tierflow crm load $crm (into the local Redis)"
"$tf" crm load "$crm" --redis redis://127.0.0.1:6379
RUST_LOG=info "$tf" run --openflow 127.0.0.1:6653 --api 127.0.0.1:8080 --redis redis://127.0.0.1:6379 2>"$log" &
ctl=$!
sleep 0.5
# A second instance on the same Redis: it follows (SLAVE on every switch)
# until the first dies.
log2=target/demo/tierflow2.log
RUST_LOG=info "$tf" run --openflow 127.0.0.1:6654 --api 127.0.0.1:8081 --redis redis://127.0.0.1:6379 2>"$log2" &
ctl2=$!
trap 'kill -TERM $ctl $ctl2 2>/dev/null || true; wait $ctl $ctl2 2>/dev/null || true; mn -c >/dev/null 2>&1 || true' EXIT
sleep 0.5
echo "== tierflow run (pid $ctl), log in $log; API http://127.0.0.1:8080/docs, token \$TIERFLOW_API_TOKEN=$TIERFLOW_API_TOKEN"
echo "== tierflow run (pid $ctl2, the second instance), log in $log2; API http://127.0.0.1:8081"

/usr/bin/python3 mininet/demo.py --controller 127.0.0.1:6653,127.0.0.1:6654 --api 127.0.0.1:8080 \
    --failover $ctl --api2 127.0.0.1:8081 "${keep[@]}" "${flat[@]}"

kill -TERM $ctl $ctl2 2>/dev/null || true; wait $ctl $ctl2 2>/dev/null || true
trap - EXIT
mn -c >/dev/null 2>&1 || true
echo
echo "== Sessions the controllers admitted:"
grep -ho 'session s-.* admitted: .*' "$log" "$log2" | sed 's/^/  /' || true
echo
echo "== The second instance's counters at shutdown (the first was killed):"
grep -o 'stats=.*' "$log2" | tail -n 1

echo
echo "== A tier FLOW_MOD built by Tierflow's codec, read back by Open vSwitch's own decoder:"
target/release/examples/tier_flow_mod > target/demo/flowmod.bin
ovs-ofctl ofp-print "$(od -An -v -tx1 target/demo/flowmod.bin | tr -d ' \n')"
