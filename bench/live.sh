#!/usr/bin/env bash
# Live-metrics benchmark: lookout against Glances 4.5 in the same run on the same machine.
#   1. p50/p99 latency of one keep-alive connection: lookout `GET /data/cpu` (with auth) vs
#      Glances `GET /api/4/cpu` (wrk -t1 -c1)
#   2. throughput with 10 connections (wrk -t2 -c10)
#   3. lookout's RSS and CPU while sampling the host plus N real containers for D seconds
#      (and Glances' the same way)
# Prints each figure beside Glances' and the ratio. Loopback only; every loop is bounded.
# Usage: bench/live.sh [CONTAINERS=20] [SECONDS=60]   (env WRK_SECONDS=10; STORE=off runs lookout
#        without its history store, which is on by default)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20}
DUR=${2:-60}
WRK_SECONDS=${WRK_SECONDS:-10}
STORE=${STORE:-on}
case "$STORE" in on) store_enabled=true ;; off) store_enabled=false ;; *) echo "STORE must be on or off" >&2; exit 2 ;; esac
PORT=18480
GPORT=61208
TOKEN=lk_bench-token-$(date +%s)-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d " \n")
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  docker ps -aq --filter label=lookout.bench=1 | xargs -r docker rm -f >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
VENV=target/bench-venv
if [ ! -x "$VENV/bin/glances" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "glances[web]==4.5.8"
fi
cargo build --release -q -p lookout
bash scripts/make-test-image.sh

echo "== starting $N idle containers"
for i in $(seq 1 "$N"); do
  docker run -d --label lookout.bench=1 --name "lk-bench-$i-$$" lookout-test/busybox:latest sh -c 'while :; do sleep 1; done' >/dev/null
done

LOOKOUT_TOKEN=$TOKEN LOOKOUT_STORE__ENABLED=$store_enabled target/release/lookout serve --http --listen 127.0.0.1:$PORT --data-dir "$work/data" >"$work/lookout.log" 2>&1 &
LPID=$!; pids+=("$LPID")
"$VENV/bin/glances" -w --disable-webui -B 127.0.0.1 -p $GPORT >"$work/glances.log" 2>&1 &
GPID=$!; pids+=("$GPID")
for _ in $(seq 1 100); do
  curl -fs -H "Authorization: Bearer $TOKEN" http://127.0.0.1:$PORT/data/cpu >/dev/null 2>&1 &&
    curl -fs http://127.0.0.1:$GPORT/api/4/cpu >/dev/null 2>&1 && break
  sleep 0.3
done
sleep 3

# wrk prints latency as e.g. 52.00us / 1.20ms / 1.01s: normalise to milliseconds.
to_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; printf "%.4f", v}'; }
pct() { grep -E "^ +$2%" "$1" | awk '{print $2}' | to_ms; }
rps() { grep 'Requests/sec' "$1" | awk '{printf "%.0f", $2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b>0) printf "%.1f", a/b; else print "n/a" }'; }

echo "== latency, one keep-alive connection, ${WRK_SECONDS}s each"
wrk -t1 -c1 -d"${WRK_SECONDS}s" --latency -H "Authorization: Bearer $TOKEN" http://127.0.0.1:$PORT/data/cpu >"$work/l1" 
wrk -t1 -c1 -d"${WRK_SECONDS}s" --latency http://127.0.0.1:$GPORT/api/4/cpu >"$work/g1"
echo "== throughput, 10 connections, ${WRK_SECONDS}s each"
wrk -t2 -c10 -d"${WRK_SECONDS}s" --latency -H "Authorization: Bearer $TOKEN" http://127.0.0.1:$PORT/data/cpu >"$work/l10"
wrk -t2 -c10 -d"${WRK_SECONDS}s" --latency http://127.0.0.1:$GPORT/api/4/cpu >"$work/g10"
non2xx=$(grep -c "Non-2xx" "$work/l10" || true)

lp50=$(pct "$work/l1" 50); lp99=$(pct "$work/l1" 99); gp50=$(pct "$work/g1" 50); gp99=$(pct "$work/g1" 99)
lr=$(rps "$work/l10"); gr=$(rps "$work/g10")

echo "== resources while sampling host + $N containers for ${DUR}s (no requests)"
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
l0=$(ticks $LPID); g0=$(ticks $GPID); sleep "$DUR"; l1=$(ticks $LPID); g1=$(ticks $GPID)
lcpu=$(awk -v a="$l0" -v b="$l1" -v hz="$hz" -v d="$DUR" 'BEGIN{printf "%.2f", (b-a)/hz/d*100}')
gcpu=$(awk -v a="$g0" -v b="$g1" -v hz="$hz" -v d="$DUR" 'BEGIN{printf "%.2f", (b-a)/hz/d*100}')
rss() { awk '/VmRSS/{printf "%.1f", $2/1024}' "/proc/$1/status"; }
hwm() { awk '/VmHWM/{printf "%.1f", $2/1024}' "/proc/$1/status"; }
lrss=$(rss $LPID); grss=$(rss $GPID); lhwm=$(hwm $LPID)
seen=$(curl -fs -H "Authorization: Bearer $TOKEN" http://127.0.0.1:$PORT/api/v1/containers | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["containers"]))')

cat <<REPORT

lookout vs Glances 4.5.8, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $seen containers listed by lookout, history store $STORE
| figure | lookout | Glances | ratio (Glances / lookout) | target |
|---|---|---|---|---|
| p50 latency, 1 conn (ms) | $lp50 | $gp50 | $(ratio "$gp50" "$lp50")x | ≤ 0.1 ms |
| p99 latency, 1 conn (ms) | $lp99 | $gp99 | $(ratio "$gp99" "$lp99")x | ≤ 0.5 ms |
| throughput, 10 conns (req/s) | $lr | $gr | $(ratio "$lr" "$gr")x (lookout / Glances) | ≥ 50,000 |
| CPU while sampling, % of one core | $lcpu | $gcpu | $(ratio "$gcpu" "$lcpu")x | ≤ 0.5 % |
| RSS (MB) | $lrss (peak $lhwm) | $grss | $(ratio "$grss" "$lrss")x | ≤ 15 MB |
REPORT
[ "$non2xx" = 0 ] || echo "WARNING: lookout answered non-2xx during the throughput run"
