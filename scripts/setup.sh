#!/usr/bin/env bash
# Installs what Tierflow's tests and demo need on a fresh Debian 12 machine
# (run as root) and starts the services they use. Idempotent: packages
# already present are not reinstalled, running services are left alone.
set -euo pipefail

# Debian packages the tests need. openvswitch-common provides ovs-ofctl,
# which the codec tests use as an independent decoder.
PACKAGES=(openvswitch-common)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v ovs-ofctl >/dev/null || { echo "setup: ovs-ofctl still missing after install" >&2; exit 1; }
echo "setup: ready ($(ovs-ofctl --version | head -n1))"
