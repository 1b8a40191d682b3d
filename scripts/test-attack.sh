#!/usr/bin/env bash
# The attack suite (issue 13): drives a real lookout binary on 127.0.0.1 with real clients
# (curl, scripts/attack.py on Python's ssl) and fails if an attack that once worked works again.
# Bounded: every flood has a fixed count, every wait a timeout; the whole suite takes ~2-3 min.
#
#   bash scripts/test-attack.sh                         (builds the debug binary)
#   LOOKOUT_BIN=path/to/lookout bash scripts/test-attack.sh   (measure another build)
#
# Prints each measurement, then `N passed, N failed`; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."

pass=0
fail=0
ok() { echo "PASS: $*"; pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

need=()
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [ "${#need[@]}" -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ -z "${LOOKOUT_BIN:-}" ]; then
  cargo build -q -p lookout || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
  LOOKOUT_BIN=target/debug/lookout
fi
BIN=$(realpath "$LOOKOUT_BIN")
ATTACK="python3 $(realpath scripts/attack.py)"

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  exec 9>&- 2>/dev/null
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

rand_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
TOKEN="lk_attack_$(rand_hex 24)"
JWT="attack-suite-jwt-secret-$(rand_hex 16)"
AUTH=(-H "Authorization: Bearer $TOKEN")

# start NAME NOFILE ARGS... : lookout in the background under an open-file limit; sets PID_<NAME>.
start() {
  local name=$1 nofile=$2; shift 2
  mkdir -p "$WORK/$name"
  (ulimit -n "$nofile" 2>/dev/null; exec env LOOKOUT_TOKEN="$TOKEN" JWT_SECRET="$JWT" LOOKOUT_LOG__FORMAT=json \
    LOOKOUT_SAMPLING__GPU=false "$BIN" serve --data-dir "$WORK/$name" "$@") \
    >"$WORK/$name.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  printf -v "PID_$name" '%s' "$pid"
}
wait_healthy() { # URL
  for _ in $(seq 1 100); do
    curl -sk -o /dev/null --max-time 1 "$1/healthz" && return 0
    sleep 0.2
  done
  echo "lookout did not come up at $1"; return 1
}
# json_ok PY-EXPR JSON: true when the expression over `r` (the parsed JSON) holds.
json_ok() { python3 -c "import json,sys
try: r = json.loads(sys.argv[2])
except ValueError: sys.exit(1)
sys.exit(not ($1))" "$1" "$2" 2>/dev/null; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
metrics_bytes() { curl -sk "${AUTH[@]}" "$1/metrics" | wc -c; }

# ---------------------------------------------------------------------------------------------
echo "== weak secrets are refused at start-up"
weak() { # EXPECTED-TEXT ENV...
  local want=$1; shift
  local out
  out=$(env "$@" LOOKOUT_CONCERTIM__LISTEN="127.0.0.1:$(free_port)" timeout 10 "$BIN" serve --http \
    --listen "127.0.0.1:$(free_port)" --data-dir "$WORK/weak" 2>&1)
  local rc=$?
  [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -q -- "$want" <<<"$out" || { echo "rc=$rc: $out" | tail -n 3; return 1; }
}
check "LOOKOUT_TOKEN=a refused" weak "LOOKOUT_TOKEN is 1 bytes" LOOKOUT_TOKEN=a
check "JWT_SECRET=x refused" weak "must be at least 32" LOOKOUT_TOKEN="$TOKEN" JWT_SECRET=x LOOKOUT_CONCERTIM__ENABLED=true
check "[concertim] jwt_secret of 31 bytes refused" weak "must be at least 32" -u JWT_SECRET \
  LOOKOUT_TOKEN="$TOKEN" LOOKOUT_CONCERTIM__JWT_SECRET="$(printf 'x%.0s' $(seq 31))" LOOKOUT_CONCERTIM__ENABLED=true

# ---------------------------------------------------------------------------------------------
# Instance A: TLS, the Concertim listener too, under `ulimit -n 1024` like the original report.
PA=$(free_port)
PC=$(free_port)
A="https://127.0.0.1:$PA"
LOOKOUT_CONCERTIM__LISTEN=127.0.0.1:$PC start A 1024 --listen "127.0.0.1:$PA" --concertim
wait_healthy "$A" || { tail -n 20 "$WORK/A.log"; echo "$pass passed, $((fail + 1)) failed"; exit 1; }
sleep 2

echo "== private files and HSTS"
modes_private() {
  local f m all=0
  for f in "$WORK"/A/history.db* "$WORK"/A/cloud.db*; do
    [ -e "$f" ] || continue
    m=$(stat -c %a "$f"); echo "  $(basename "$f") $m"
    [ "$m" = 600 ] || all=1
  done
  [ -e "$WORK/A/history.db" ] && [ -e "$WORK/A/cloud.db" ] && [ "$all" = 0 ]
}
check "history.db, cloud.db and their -wal/-shm are 0600" modes_private
hsts() { curl -sk -D - -o /dev/null "$1" | grep -qi '^strict-transport-security: max-age=[1-9]'; }
check "HSTS on the TLS listener" hsts "$A/healthz"
check "HSTS on the Concertim TLS listener" hsts "https://127.0.0.1:$PC/"

echo "== method-label flood (no token): /metrics and RSS stay bounded"
$ATTACK methods 127.0.0.1 "$PA" 200 8 >/dev/null   # warm the labels a flood creates...
metrics_bytes "$A" >/dev/null                        # ...and those of /metrics itself
m0=$(metrics_bytes "$A"); r0=$(rss_kb "$PID_A")
t0=$SECONDS
flood=$($ATTACK methods 127.0.0.1 "$PA" 20000 8)
long=$($ATTACK methods 127.0.0.1 "$PA" 300 100000)
m1=$(metrics_bytes "$A"); r1=$(rss_kb "$PID_A")
echo "  20,000 made-up methods: $flood; 300 x 100 KB methods: $long ($((SECONDS - t0)) s)"
echo "  /metrics $m0 -> $m1 bytes; RSS $r0 -> $r1 kB"
check "/metrics grew less than 2 KB" test $((m1 - m0)) -lt 2048
check "RSS grew less than 16 MB" test $((r1 - r0)) -lt 16384
no_method_label() { ! curl -sk "${AUTH[@]}" "$A/metrics" | grep -q X0019999; }
check "no made-up method is a label" no_method_label

echo "== guessing tokens is throttled per address; a valid token is never slowed"
codes=$(for i in $(seq 1 40); do curl -sk -o /dev/null -w '%{http_code} ' -H "Authorization: Bearer lk_guess_$i" "$A/api/v1/host"; done)
echo "  40 wrong tokens: $codes"
check "wrong tokens get 429 past the burst" grep -q 429 <<<"$codes"
throttled() { # the bucket earns 2 failures back a second, so look at the next 429
  local h
  for _ in 1 2 3 4 5; do
    h=$(curl -sk -D - -H "Authorization: Bearer lk_guess_x" "$A/api/v1/host")
    grep -q '^HTTP/[0-9.]* 429' <<<"$h" || continue
    grep -qi '^retry-after: [0-9]' <<<"$h" && grep -q '"rate_limited"' <<<"$h"
    return
  done
  return 1
}
check "429 is JSON with Retry-After" throttled
check "the valid token still answers 200 at once" test "$(curl -sk -o /dev/null -w '%{http_code}' --max-time 2 "${AUTH[@]}" "$A/api/v1/host")" = 200

echo "== a Bearer stream ends when its token is revoked"
STREAM_TOKEN=$("$BIN" token create --name streamer --scope read --data-dir "$WORK/A" 2>/dev/null | grep -o 'lk_[0-9a-f]*' | tail -n 1)
sleep 3 # the server reloads the token file every 2 s
curl -skN --max-time 40 -H "Authorization: Bearer $STREAM_TOKEN" -H 'Accept: text/event-stream' \
  "$A/api/v1/stream" >"$WORK/stream.out" 2>/dev/null &
SPID=$!
sleep 3
before=$(grep -c '^event: snapshot' "$WORK/stream.out")
"$BIN" token revoke streamer --data-dir "$WORK/A" >/dev/null 2>&1
t0=$SECONDS
ended=1
for _ in $(seq 1 50); do kill -0 "$SPID" 2>/dev/null || { ended=0; break; }; sleep 0.2; done
echo "  frames before revoke: $before; after $((SECONDS - t0)) s the stream had $([ "$ended" = 0 ] && echo ended || echo 'NOT ended')"
kill "$SPID" 2>/dev/null
check "stream was live before revoke" test "$before" -ge 1
check "stream ended within 10 s of revoke" test "$ended" = 0

echo "== connection flood above the cap (1,100 held idle h2 connections, ulimit -n 1024)"
mkfifo "$WORK/stop"
$ATTACK hold 127.0.0.1 "$PA" 1100 120 <"$WORK/stop" >"$WORK/hold.json" 2>"$WORK/hold.err" &
HPID=$!
exec 9>"$WORK/stop"
for _ in $(seq 1 600); do [ -s "$WORK/hold.json" ] && break; sleep 0.2; done
echo "  flood: $(cat "$WORK/hold.json")"
sleep 6 # refused connections live at most 5 s
lat=$(curl -sk -o "$WORK/hz.json" -w '%{http_code} %{time_total}' --max-time 5 "$A/healthz")
echo "  /healthz during the flood: $lat"
check "/healthz answers 200 within 1 s during the flood" awk -v l="$lat" 'BEGIN { split(l, a, " "); exit !(a[1] == 200 && a[2] < 1.0) }'
ready=$(curl -sk --max-time 5 "${AUTH[@]}" "$A/readyz")
echo "  /readyz during the flood: $ready"
check "sampling continues during the flood (fresh sample)" json_ok "r['ready'] and r['sample_age_ms'] < 3000" "$ready"
if docker info >/dev/null 2>&1; then
  check "Docker sampling continues during the flood" json_ok "r['docker'] == 'up'" "$ready"
fi
refusal=$(curl -sk --max-time 5 -w ' %{http_code}' "${AUTH[@]}" "$A/api/v1/host")
echo "  other routes during the flood: $refusal"
check "over the cap: a clear 503 too_many_connections" grep -q '"too_many_connections".* 503$' <<<"$refusal"
exec 9>&-
wait "$HPID"
sleep 1
no_emfile() { ! grep -qi 'too many open files' "$WORK/A.log"; }
check "no 'Too many open files' in the log" no_emfile
check "/healthz fast after the flood" test "$(curl -sk -o /dev/null -w '%{http_code}' --max-time 1 "$A/healthz")" = 200
refused=$(curl -sk "${AUTH[@]}" "$A/metrics" | awk '/^lookout_connections_refused_total\{listener="main"\}/ {print $2}')
echo "  lookout_connections_refused_total{listener=\"main\"} = ${refused:-missing}"
check "refusals are counted in /metrics" test "${refused:-0}" -gt 0

# ---------------------------------------------------------------------------------------------
echo "== idle HTTP/2 connections are closed (idle timeout 5 s)"
PB=$(free_port)
LOOKOUT_LIMITS__IDLE_TIMEOUT_S=5 start B 4096 --listen "127.0.0.1:$PB"
wait_healthy "https://127.0.0.1:$PB" || bad "instance B did not start"
idle=$($ATTACK idle-h2 127.0.0.1 "$PB" 300 20)
echo "  300 idle h2 connections: $idle"
check "every idle h2 connection closed within 12 s" json_ok "r['closed_by_server'] == 300 and r['seconds'] <= 12" "$idle"
check "/healthz fast after the idle h2 connections" test "$(curl -sk -o /dev/null -w '%{http_code}' --max-time 1 "https://127.0.0.1:$PB/healthz")" = 200

echo "== no HSTS with --http (the proxy in front decides)"
PH=$(free_port)
start H 4096 --listen "127.0.0.1:$PH" --http
wait_healthy "http://127.0.0.1:$PH" || bad "instance H did not start"
no_hsts() { ! curl -s -D - -o /dev/null "$1" | grep -qi strict-transport-security; }
check "plain HTTP listener sends no HSTS" no_hsts "http://127.0.0.1:$PH/healthz"

echo
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
