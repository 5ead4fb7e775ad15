#!/bin/sh
# Installs what the Kamailio integration and its loopback test need, from
# Debian 12's packages. Idempotent: packages already there are not asked
# for again. Needs root; reads nothing from stdin.
#
#   kamailio                 the proxy (tm, rr, htable, mqueue, rtimer, exec,
#                            sdpops, ipops, textops, sanity, ... are in it)
#   kamailio-tls-modules     tls: the edge-site hop
#   kamailio-utils-modules   http_client: POST /sessions
#   kamailio-extra-modules   jansson: builds the POST body, reads the answer
#   curl                     PUT and DELETE (Kamailio 5.6's http_client only
#                            does GET and POST)
#   openssl                  make-certs.sh
#   sip-tester, tcpdump, python3-pytest   the loopback test only
#
# Debian's kamailio package enables kamailio.service with the stock
# /etc/kamailio/kamailio.cfg, listening on every address's 5060. This
# integration runs its own instances (README.md), so the stock service is
# stopped and disabled; set KEEP_KAMAILIO_SERVICE=1 to leave it alone (for
# instance once /etc/default/kamailio points it at site.cfg).
set -eu

PKGS="kamailio kamailio-tls-modules kamailio-utils-modules kamailio-extra-modules curl openssl"
TEST_PKGS="sip-tester tcpdump python3-pytest"

missing=""
for p in $PKGS $TEST_PKGS; do
    if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing="$missing $p"
    fi
done
if [ -n "$missing" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q </dev/null
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing </dev/null
fi

if [ "${KEEP_KAMAILIO_SERVICE:-0}" != 1 ]; then
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        systemctl disable --now kamailio.service >/dev/null 2>&1 || true
    else
        # No systemd (containers): the package's start was refused or the
        # SysV script ran; stop whatever it started and keep it off.
        if [ -x /etc/init.d/kamailio ]; then
            /etc/init.d/kamailio stop >/dev/null 2>&1 || true
        fi
        if command -v update-rc.d >/dev/null 2>&1; then
            update-rc.d kamailio disable >/dev/null 2>&1 || true
        fi
    fi
fi

for p in kamailio sipp tcpdump curl openssl; do
    command -v "$p" >/dev/null || { echo "install.sh: $p missing after install" >&2; exit 1; }
done
for m in tls http_client jansson htable mqueue rtimer exec sdpops ipops; do
    ls /usr/lib/*/kamailio/modules/$m.so >/dev/null 2>&1 || {
        echo "install.sh: Kamailio module $m missing" >&2; exit 1; }
done
echo "install.sh: $(kamailio -v | head -1); sipp $(sipp -v 2>/dev/null | grep -o 'v[0-9.]*' | head -1)"
