#!/usr/bin/env bash
# Property-based checks of the REST API against its own OpenAPI document:
# `tierflow run` with a private redis-server on a free port, the
# contact-center CRM loaded, then Schemathesis sends generated requests to
# every operation and fails on any 5xx answer or any answer that does not
# match the schema. Bounded so it finishes in well under 3 minutes.
# Fails loudly (non-zero exit, the controller's log tail) on any problem.
set -euo pipefail
cd "$(dirname "$0")/../.."

die() { echo "schemathesis.sh: $*" >&2; exit 1; }
command -v schemathesis >/dev/null || die "schemathesis is not installed (scripts/setup.sh installs it)"
command -v redis-server >/dev/null || die "redis-server is not installed"

cargo build --quiet --bin tierflow
tf=target/debug/tierflow

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
redis_pid=""; ctl_pid=""
cleanup() {
    [ -n "$ctl_pid" ] && kill "$ctl_pid" 2>/dev/null && wait "$ctl_pid" 2>/dev/null
    [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$work" >"$work/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 100); do
    [ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" = PONG ] && break; sleep 0.05
done
[ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" = PONG ] || die "redis-server did not start on $redis_port"
redis_url="redis://127.0.0.1:$redis_port/"

"$tf" crm load crm/contact-center.json --redis "$redis_url" >/dev/null ||
    die "tierflow crm load crm/contact-center.json failed"

api_port=$(free_port)
of_port=$(free_port)
token="schemathesis-$(date +%s)-$$"
TIERFLOW_API_TOKEN="$token" TIERFLOW_API_READ_TOKEN="$token-read" RUST_LOG=warn "$tf" run --openflow "127.0.0.1:$of_port" \
    --api "127.0.0.1:$api_port" --redis "$redis_url" >"$work/tierflow.log" 2>&1 &
ctl_pid=$!
base="http://127.0.0.1:$api_port"
for _ in $(seq 200); do
    curl -sf "$base/api/v1/health" >/dev/null 2>&1 && break
    kill -0 "$ctl_pid" 2>/dev/null || { tail -20 "$work/tierflow.log" >&2; die "tierflow run exited"; }
    sleep 0.05
done
curl -sf "$base/api/v1/health" >/dev/null || { tail -20 "$work/tierflow.log" >&2; die "API not up on $base"; }

set +e
# From the scratch directory: Schemathesis leaves its cache in the cwd.
(cd "$work" && timeout 170 schemathesis run "$base/api-docs/openapi.json" \
    --checks not_a_server_error,response_schema_conformance \
    -H "Authorization: Bearer $token" \
    --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-25}" \
    --request-timeout 10 \
    --generation-deterministic \
    --no-color)
rc=$?
set -e
if [ "$rc" -ne 0 ]; then
    echo "--- tierflow log (tail) ---" >&2
    tail -30 "$work/tierflow.log" >&2
    die "Schemathesis found problems (exit $rc)"
fi
kill -0 "$ctl_pid" 2>/dev/null || die "tierflow run died during the run"
echo "schemathesis.sh: every operation conforms, no server errors"
