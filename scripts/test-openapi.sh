#!/usr/bin/env bash
# lookout's OpenAPI document checked by a real validator (openapi-spec-validator from PyPI, in
# a venv under target/): the document `lookout openapi` prints and the one a live lookout serves
# at /openapi.json (which carries the configured request limit in `timeout`'s maximum).
set -euo pipefail
cd "$(dirname "$0")/.."
pass=0 fail=0
ok() { echo "PASS: $*"; pass=$((pass + 1)); }
ko() { echo "FAIL: $*"; fail=$((fail + 1)); }

VENV=target/openapi-venv
if [ ! -x "$VENV/bin/openapi-spec-validator" ]; then
  if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 && { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; }
    python3 -m venv "$VENV"
  fi
  "$VENV/bin/pip" install -q openapi-spec-validator || {
    echo "SKIPPED: openapi-spec-validator could not be installed from PyPI"
    echo "0 passed, 0 failed"
    exit 0
  }
fi
[ -x target/debug/lookout ] || cargo build -q -p lookout
BIN=$PWD/target/debug/lookout
TMP=$(mktemp -d)
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"' EXIT

validate() { # FILE WHAT
  if "$VENV/bin/openapi-spec-validator" "$1" >"$TMP/out" 2>&1; then
    ok "openapi-spec-validator accepts $2 ($(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(len(op["responses"]) for p in d["paths"].values() for op in p.values() if isinstance(op, dict) and "responses" in op), "responses,", len(d["paths"]), "paths")' "$1"))"
  else
    tail -n 30 "$TMP/out"; ko "openapi-spec-validator rejects $2"
  fi
}

"$BIN" openapi >"$TMP/cli.json"
validate "$TMP/cli.json" "\`lookout openapi\`"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
TOKEN="lk_$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
LOOKOUT_TOKEN="$TOKEN" LOOKOUT_LIMITS__REQUEST_TIMEOUT_MS=12000 LOOKOUT_SAMPLING__DOCKER=false \
  "$BIN" serve --http --listen "127.0.0.1:$PORT" --data-dir "$TMP/data" >"$TMP/log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do
  curl -sf -o "$TMP/live.json" -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/openapi.json" && break
  sleep 0.2
done
validate "$TMP/live.json" "GET /openapi.json"
max=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print([p["schema"].get("maximum") for p in d["paths"]["/api/smart"]["get"]["parameters"] if p["name"] == "timeout"][0])' "$TMP/live.json")
[ "$max" = 12000 ] && ok "/openapi.json documents the configured request limit as timeout's maximum" \
  || ko "timeout maximum is $max, want 12000"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
