#!/bin/sh
# Makes a private CA and one certificate each for the edge and the site
# proxy, for the TLS hop between them, and writes the two tls.cfg files with
# their paths pointing into OUTDIR.
#
#   make-certs.sh OUTDIR [EDGE_NAME] [SITE_NAME]
#
# OUTDIR gets ca.pem, edge.pem/edge.key, site.pem/site.key, tls-edge.cfg and
# tls-site.cfg. Names default to edge.tierflow.invalid / site.tierflow.invalid;
# each certificate also carries the IP addresses given in EDGE_IPS / SITE_IPS
# (comma-separated, environment) as subjectAltNames.
#
# Keys never belong in git: run this at install or test time. The CA key is
# deleted once both certificates are signed, so nothing else can be signed
# with it later; rerun the script to rotate everything.
set -eu

OUTDIR=${1:?usage: make-certs.sh OUTDIR [EDGE_NAME] [SITE_NAME]}
EDGE_NAME=${2:-edge.tierflow.invalid}
SITE_NAME=${3:-site.tierflow.invalid}
HERE=$(cd "$(dirname "$0")" && pwd)
DAYS=${CERT_DAYS:-825}

mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

openssl req -x509 -newkey rsa:2048 -nodes -days "$DAYS" -sha256 \
    -subj "/CN=Tierflow SIP TLS CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$work/ca.key" -out "$OUTDIR/ca.pem" 2>/dev/null

# sign NAME CN IPS: both ends present certificates (mutual TLS), so each one
# carries serverAuth and clientAuth.
sign() {
    san="DNS:$2"
    if [ -n "$3" ]; then
        san="$san,$(echo "$3" | sed 's/\([^,]*\)/IP:\1/g')"
    fi
    openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=$2" \
        -keyout "$OUTDIR/$1.key" -out "$work/$1.csr" 2>/dev/null
    printf '%s\n' "subjectAltName=$san" \
        "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature,keyEncipherment" \
        "extendedKeyUsage=serverAuth,clientAuth" > "$work/$1.ext"
    openssl x509 -req -in "$work/$1.csr" -CA "$OUTDIR/ca.pem" -CAkey "$work/ca.key" \
        -CAserial "$work/ca.srl" -CAcreateserial -days "$DAYS" -sha256 -extfile "$work/$1.ext" \
        -out "$OUTDIR/$1.pem" 2>/dev/null
}
sign edge "$EDGE_NAME" "${EDGE_IPS:-}"
sign site "$SITE_NAME" "${SITE_IPS:-}"

# The committed tls-*.cfg name /etc/kamailio/tierflow/certs; point the copies
# at OUTDIR (identical files when OUTDIR is that directory).
for role in edge site; do
    sed "s#/etc/kamailio/tierflow/certs#$OUTDIR#g" "$HERE/tls-$role.cfg" > "$OUTDIR/tls-$role.cfg"
done
chmod 644 "$OUTDIR"/*.pem "$OUTDIR"/*.cfg
# Kamailio drops to its own user in production: let it read the keys.
if id kamailio >/dev/null 2>&1; then
    chgrp kamailio "$OUTDIR"/*.key && chmod 640 "$OUTDIR"/*.key
fi
echo "certificates and tls configs in $OUTDIR"
