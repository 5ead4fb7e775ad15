#!/bin/sh
# Seeds the `sip` and `sdp` fuzz corpora with the SIP fixtures of
# controller/tests/sip/ (a sipp capture, Asterisk and Linphone shapes):
# whole messages for `sip`, their SDP bodies (after the blank line) for
# `sdp`. Run from anywhere.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
fixtures=$here/../tests/sip
if ! ls "$fixtures"/*.sip >/dev/null 2>&1; then
    echo "seed.sh: no *.sip fixtures in $fixtures" >&2
    exit 1
fi
mkdir -p "$here/corpus/sip" "$here/corpus/sdp"
cp "$fixtures"/*.sip "$here/corpus/sip/"
for f in "$fixtures"/*.sip; do
    # The body: everything after the first empty line (CRLF or LF).
    body=$(awk 'found { print; next } /^\r?$/ { found = 1 }' "$f")
    if [ -n "$body" ]; then
        printf '%s\n' "$body" > "$here/corpus/sdp/$(basename "$f" .sip).sdp"
    fi
done
echo "seed.sh: $(ls "$here/corpus/sip" | wc -l) SIP and $(ls "$here/corpus/sdp" | wc -l) SDP inputs"
