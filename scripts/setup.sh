#!/usr/bin/env bash
# Installs what Tierflow's tests and demo need on a fresh Debian 12 machine
# (run as root, no stdin, no systemd needed) and starts the services they
# use: Open vSwitch (userspace datapath) and Redis. Idempotent: packages
# already present are not reinstalled, running services are left alone.
# Stale Mininet state is not cleaned here: the end-to-end tests run `mn -c`
# before each topology they build.
set -euo pipefail

# Debian packages the tests need:
# - openvswitch-common: ovs-ofctl, the codec tests' independent decoder;
#   ovs-pki, which makes the certificates of the OpenFlow-over-TLS tests
#   (controller/tests/ofconn.rs, tests/e2e/test_trust.py) as OVS users do
#   (the openvswitch-pki package only adds a system-wide PKI, not needed);
# - openssl: what ovs-pki runs, and the Redis TLS tests' certificates;
# - openvswitch-switch, mininet, iproute2, iputils-ping, ethtool, iperf3,
#   tcpdump: the Mininet end-to-end tests (tests/e2e) against real OVS;
# - redis-server (brings redis-cli): the CRM store;
# - sip-tester (sipp): real SIP calls in the QoS end-to-end tests;
# - python3-pytest: runs tests/e2e with Debian's /usr/bin/python3, the
#   interpreter that has the mininet module; python3-pytest-timeout fails
#   a test that hangs instead of letting it stall the whole run;
# - python3-pip, curl: the Python tools below and tests/api/schemathesis.sh;
# - chromium, chromium-driver, python3-selenium: the operator console in a
#   real (headless) browser (tests/e2e/test_console.py, tests/e2e/browser.py);
# - socat: relays the Tierflow API into a Mininet host's network namespace
#   (tests/e2e/test_kamailio.py: the site's Kamailio calls it from there);
# - wrk: the POST /sessions benchmark (scripts/bench_sessions.py,
#   BENCHMARKS.md "POST /sessions").
# Kamailio and its modules come from integrations/kamailio/install.sh, below.
PACKAGES=(openvswitch-common openssl openvswitch-switch mininet iproute2 iputils-ping
    ethtool iperf3 tcpdump redis-server python3-pytest python3-pytest-timeout sip-tester python3-pip curl
    chromium chromium-driver python3-selenium socat wrk)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Package scripts try to start services through invoke-rc.d; in a
    # container without an init system that may fail, and setup starts
    # the services itself below, so a policy-rc.d refusal is harmless.
    apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
fi

for cmd in ovs-ofctl ovs-vsctl ovs-pki openssl mn ethtool ping redis-server redis-cli sipp chromium chromedriver socat wrk; do
    command -v "$cmd" >/dev/null || { echo "setup: $cmd still missing after install" >&2; exit 1; }
done
# Kamailio 5.6 with the TLS, http_client and jansson modules, for the SIP
# proxies of integrations/kamailio (its loopback test and
# tests/e2e/test_kamailio.py). The script is idempotent and non-interactive,
# and stops and disables Debian's stock kamailio.service (the tests run
# their own instances; the stock one would listen on every address's 5060).
sh "$(dirname "$0")/../integrations/kamailio/install.sh" </dev/null

# Python tools (pip, pinned major): Schemathesis checks the REST API
# against its OpenAPI document (tests/api/schemathesis.sh). Debian's
# interpreter is "externally managed": pip is told to install anyway.
if ! schemathesis --version 2>/dev/null | grep -q 'version 4\.'; then
    echo "setup: installing schemathesis 4"
    python3 -m pip install -q --disable-pip-version-check 'schemathesis>=4,<5' 2>/dev/null ||
        PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q --disable-pip-version-check \
            'schemathesis>=4,<5'
fi
command -v schemathesis >/dev/null || { echo "setup: schemathesis still missing after install" >&2; exit 1; }

/usr/bin/python3 -c 'import mininet.net, pytest, pytest_timeout, selenium' ||
    { echo "setup: /usr/bin/python3 lacks mininet, pytest, pytest_timeout or selenium" >&2; exit 1; }

# Open vSwitch. ovs-ctl works without systemd; on a kernel without module
# support it skips the openvswitch module, and Mininet switches use the
# userspace datapath anyway. If the module cannot be loaded on a kernel that
# has module support, ovs-ctl refuses to start ovs-vswitchd: start it by
# hand then, which is all the userspace datapath needs.
ovs_ctl=/usr/share/openvswitch/scripts/ovs-ctl
if ! "$ovs_ctl" status >/dev/null 2>&1 || ! timeout 5 ovs-vsctl show >/dev/null 2>&1; then
    echo "setup: starting Open vSwitch"
    if ! "$ovs_ctl" start --system-id=random >/dev/null; then
        "$ovs_ctl" start --no-ovs-vswitchd --system-id=random >/dev/null
        pgrep -x ovs-vswitchd >/dev/null || ovs-vswitchd unix:/var/run/openvswitch/db.sock \
            -vconsole:emer -vsyslog:err -vfile:info --mlockall --no-chdir \
            --log-file=/var/log/openvswitch/ovs-vswitchd.log \
            --pidfile=/var/run/openvswitch/ovs-vswitchd.pid --detach --monitor
    fi
fi
timeout 10 ovs-vsctl show >/dev/null || { echo "setup: ovs-vsctl cannot reach ovsdb" >&2; exit 1; }
ovs-vsctl get Open_vSwitch . datapath_types | grep -q netdev ||
    { echo "setup: ovs-vswitchd has no userspace (netdev) datapath" >&2; exit 1; }

# Redis, with Debian's configuration (loopback only, data in /var/lib/redis);
# the init script needs no systemd. Without an answer from it, run the
# server directly.
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; }
if ! redis_up; then
    echo "setup: starting Redis"
    mkdir -p /run/redis /var/log/redis /var/lib/redis
    chown redis:redis /run/redis /var/log/redis /var/lib/redis 2>/dev/null || true
    /etc/init.d/redis-server start >/dev/null 2>&1 || true
    for _ in $(seq 50); do redis_up && break; sleep 0.1; done
    if ! redis_up; then
        redis-server --daemonize yes --bind 127.0.0.1 --port 6379 \
            --dir /var/lib/redis --logfile /var/log/redis/redis-server.log
        for _ in $(seq 50); do redis_up && break; sleep 0.1; done
    fi
    redis_up || { echo "setup: Redis does not answer on 127.0.0.1:6379" >&2; exit 1; }
fi

echo "setup: ready ($(ovs-vswitchd --version | head -n1), $(redis-server --version | cut -d' ' -f1-3))"
