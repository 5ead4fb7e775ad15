#!/usr/bin/env bash
# Tierflow's live demo. Today it shows the OpenFlow 1.3 codec at work: the
# decoder reading messages captured from another implementation and proving
# that they re-encode byte for byte.
#
# Once the controller runtime lands (issues: runtime, QoS, API, hold), this
# script starts Redis and Open vSwitch, builds a Mininet contact-center
# topology, runs `tierflow run`, and drives customer traffic through the
# tiers (gold vs bronze throughput, a SIP call put on hold and resumed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
vectors="${TIERFLOW_VECTORS:-$(cd .. && pwd)/shared/vectors/of13}"
cargo build --release --quiet --bin tierflow
tf=target/release/tierflow

echo "== A FLOW_MOD as Tierflow will send it, decoded by Open vSwitch's own ovs-ofctl:"
cargo run --release --quiet --example tier_flow_mod > /tmp/tierflow-demo-flowmod.bin
ovs-ofctl ofp-print "$(xxd -p /tmp/tierflow-demo-flowmod.bin | tr -d '\n')"
echo
echo "== The same bytes decoded by tierflow:"
"$tf" decode /tmp/tierflow-demo-flowmod.bin
echo
if [ -d "$vectors" ]; then
    n=$(ls "$vectors"/*.packet | wc -l)
    echo "== $n OpenFlow 1.3 messages from another implementation, decoded and re-encoded byte for byte:"
    "$tf" decode --roundtrip "$vectors"/*.packet | head -n 5 | cut -c1-160
    echo "   ... all $n round-trip exactly."
fi
