#!/usr/bin/env bash
# schemathesis (PyPI, into a venv under target/) over the live /openapi.json of a real lookout:
# the debug binary on 127.0.0.1 (plain HTTP), a fresh data directory, one read and one admin
# token. Container routes only ever name the suite's own container (label lookout.test=1,
# image from scripts/make-test-image.sh): `path.id` is fixed in the generated config, so an
# id prefix made up by the fuzzer can never match another container on this engine.
#
# Checks: not_a_server_error (any 5xx fails, except a 504 on the operations that document
# one: the hedged /api/smart routes, and the fleet routes' 503 while no fleet engine is set) and response_schema_conformance (every answer matches
# the document). Bounded: MAX_EXAMPLES per operation (default 25) and MAX_TIME seconds per
# run (default 90), two runs. Prints "N passed, N failed"; exits non-zero on a failure.
# One worker: with two, hypothesis parses lambdas (ast.parse) from two threads at once and
# CPython 3.11 fails spuriously with "AST constructor recursion depth mismatch" (cpython#106905).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
MAX_EXAMPLES=${MAX_EXAMPLES:-25}
MAX_TIME=${MAX_TIME:-90}
SCHEMATHESIS_VERSION=4.32.5
t0=$SECONDS

if ! docker info >/dev/null 2>&1; then
  echo "SKIPPED: no Docker engine answers (the container routes are part of the document)"
  echo "0 passed, 0 failed"
  exit 0
fi

venv=target/schemathesis-venv
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  python3 -c 'import ensurepip' 2>/dev/null || {
    pyver=$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "python${pyver}-venv" >/dev/null
  }
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi

cargo build -p lookout 2>&1 | tail -n 1
bin=target/debug/lookout
dpkg -s busybox-static >/dev/null 2>&1 || {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
}
scripts/make-test-image.sh

work=$(mktemp -d)
container="lookout-schemathesis-$$"
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  docker rm -f "$container" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

docker run -d --name "$container" --label lookout.test=1 lookout-test/busybox:latest \
  sleep 3600 >/dev/null
read_token=$(env -u LOOKOUT_TOKEN "$bin" token create --name st-read --scope read --data-dir "$work/data" 2>/dev/null)
admin_token=$(env -u LOOKOUT_TOKEN "$bin" token create --name st-admin --scope admin --data-dir "$work/data" 2>/dev/null)

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
env -u LOOKOUT_TOKEN -u LOOKOUT_CONFIG LOOKOUT_LOG__LEVEL=warn \
  "$bin" serve --http --listen "127.0.0.1:$port" --data-dir "$work/data" >"$work/lookout.log" 2>&1 &
pid=$!
ready=""
for _ in $(seq 1 100); do
  if curl -fsS -o /dev/null -H "Authorization: Bearer $admin_token" "$base/readyz" 2>/dev/null &&
     curl -fsS -H "Authorization: Bearer $admin_token" "$base/api/v1/containers/$container" >/dev/null 2>&1; then
    ready=1
    break
  fi
  sleep 0.2
done
if [ -z "$ready" ]; then
  echo "lookout did not become ready (or does not see $container); log:" >&2
  cat "$work/lookout.log" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

# The stream route answers an endless event stream (its own tests cover it).
cat >"$work/schemathesis.toml" <<EOF
[parameters]
"path.id" = "$container"

[checks.not_a_server_error]
expected-statuses = ["2XX", "3XX", "4XX"]

[[operations]]
include-path-regex = "^/api(/v1)?/smart$"
checks.not_a_server_error.expected-statuses = ["2XX", "3XX", "4XX", "504"]

# The fleet view is off here (no [fleet] query_url): its routes answer their documented 503.
[[operations]]
include-path-regex = "^/api/v1/fleet/"
checks.not_a_server_error.expected-statuses = ["2XX", "3XX", "4XX", "503"]
EOF

passed=0
failed=0
run() { # NAME TOKEN
  local name=$1 token=$2 rc=0
  echo "== schemathesis with the $name token"
  # From $work: schemathesis keeps a cache in its working directory, not in the tree.
  (cd "$work" && timeout $((MAX_TIME + 60)) "$root/$venv/bin/schemathesis" --no-color --config-file "$work/schemathesis.toml" \
    run "$base/openapi.json" \
    -H "Authorization: Bearer $token" \
    --checks not_a_server_error,response_schema_conformance \
    --exclude-path /api/v1/stream \
    --max-examples "$MAX_EXAMPLES" --max-time "$MAX_TIME" \
    --request-timeout 20 --workers 1 --seed 1 \
    --suppress-health-check all \
    >"$work/$name.out" 2>&1) || rc=$?
  if [ "$rc" -eq 0 ]; then tail -n 40 "$work/$name.out"; else
    # The failures with their reproducing curl commands come before the summary.
    sed -n '/^=* *FAILURES *=*$/,$p' "$work/$name.out" | head -n 200
    grep -q FAILURES "$work/$name.out" || tail -n 80 "$work/$name.out"
  fi
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1))
  else
    echo "schemathesis ($name token) failed with exit $rc" >&2
    failed=$((failed + 1))
  fi
}
run read "$read_token"
run admin "$admin_token"

if ! kill -0 "$pid" 2>/dev/null; then
  echo "lookout died during the run; log:" >&2
  tail -n 50 "$work/lookout.log" >&2
  failed=$((failed + 1))
fi
echo "test-schemathesis.sh: $((SECONDS - t0)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
