#!/bin/sh
# Seeds the `decode` fuzz corpus with the shared OpenFlow 1.3 test vectors
# (Ryu's *.packet files). Run from anywhere; TIERFLOW_VECTORS overrides the
# vector directory as it does for the tests.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
vectors=${TIERFLOW_VECTORS:-$here/../../../shared/vectors/of13}
corpus=$here/corpus/decode
if ! ls "$vectors"/*.packet >/dev/null 2>&1; then
    echo "seed.sh: no *.packet vectors in $vectors" >&2
    exit 1
fi
mkdir -p "$corpus"
cp "$vectors"/*.packet "$corpus"/
echo "seed.sh: $(ls "$corpus" | wc -l) files in $corpus"
