#!/usr/bin/env bash
# The whole test suite, as README.md states it and CI runs it.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

# CI builds once from a clean clone: incremental state would only take disk.
export CARGO_INCREMENTAL=0

# Disk is finite on CI: say how much there is, and stop with a clear message
# instead of letting every later step fail for want of space.
disk() {
    df -h --output=avail,target . "${TMPDIR:-/tmp}" | sed 's/^/test: disk: /'
    local free_kb
    free_kb=$(df -Pk . | awk 'NR==2 {print $4}')
    [ "$free_kb" -ge $((1024 * 1024)) ] || {
        echo "test: less than 1 GiB free on $(pwd) before $1 (target/ is $(du -sh target 2>/dev/null | cut -f1))" >&2
        exit 1; }
}
disk "the build"

# The vectors live in the steering repo's shared/ beside this checkout.
export TIERFLOW_VECTORS="${TIERFLOW_VECTORS:-$(cd .. && pwd)/shared/vectors/of13}"
[ -d "$TIERFLOW_VECTORS" ] || { echo "test: vectors not found at $TIERFLOW_VECTORS" >&2; exit 1; }

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace

# The REST API against its OpenAPI document: generated requests to every
# operation, no 5xx and every answer matching the schema.
bash tests/api/schemathesis.sh

# The CLI end to end: every shared vector decodes and re-encodes exactly,
# and a malformed file gives a one-line error and exit status 2.
cargo build --quiet --bin tierflow
tf=target/debug/tierflow
"$tf" decode --roundtrip "$TIERFLOW_VECTORS"/*.packet > /dev/null
bad=$(mktemp)
printf '\x04\x0e\x00\x30\x00\x00\x00\x07' > "$bad"
set +e
err=$("$tf" decode "$bad" 2>&1 >/dev/null); rc=$?
set -e
rm -f "$bad"
[ "$rc" -eq 2 ] && [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] || {
    echo "test: malformed input gave exit $rc and: $err" >&2; exit 1; }
echo "decode CLI: $(ls "$TIERFLOW_VECTORS"/*.packet | wc -l) vectors round-trip; malformed input -> exit 2: $err"

# What the e2e tests run, built now so that the check below counts it.
cargo build --quiet -p tierflow-api --example console_demo
disk "the end-to-end tests"

# End to end: the controller against real Open vSwitch (userspace datapath)
# in Mininet, with Debian's python3 (it has the mininet module). Needs root;
# setup.sh installed and started what it needs.
# A test that hangs fails after 15 minutes (the longest take a few) and
# the run goes on.
PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -m pytest -v -p no:cacheprovider \
    --timeout 900 --timeout-method signal tests/e2e
