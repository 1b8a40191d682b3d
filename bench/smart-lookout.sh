#!/usr/bin/env bash
# The real lookout `/api/smart` route (auth, metrics, hedge engine, pooled client) against a
# `lookout work-sim` upstream, beside direct calls to that upstream in the same run:
#   1. added latency at p50 with a fixed 5 ms upstream (1 connection, wrk --latency)
#   2. requests/s /api/smart sustains on this machine with an instant upstream (wrk -c64)
# Loopback only; each wrk run is bounded (WRK_SECONDS, default 10).
set -euo pipefail
cd "$(dirname "$0")/.."
S=${WRK_SECONDS:-10}
TOKEN=lk_bench-smart-$(date +%s)-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d " \n")
work=$(mktemp -d); pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q -p lookout
bin=target/release/lookout
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
to_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; printf "%.3f", v}'; }
pct() { grep -E "^ +$2%" "$1" | awk '{print $2}' | to_ms; }
rps() { grep 'Requests/sec' "$1" | awk '{printf "%.0f", $2}'; }

run_pair() { # $1 latency ms, $2 conns, $3 label
  $bin work-sim --listen 127.0.0.1:18601 --latency-min-ms "$1" --latency-max-ms "$1" >/dev/null 2>&1 & pids+=($!)
  LOOKOUT_TOKEN=$TOKEN LOOKOUT_SAMPLING__DOCKER=false LOOKOUT_SMART__UPSTREAM=http://127.0.0.1:18601/api/work \
    $bin serve --http --listen 127.0.0.1:18602 --data-dir "$work/data-$3" >"$work/lk-$3.log" 2>&1 & pids+=($!)
  wait_port 18601; wait_port 18602; sleep 1
  t=$(( $2 < 2 ? 1 : 2 ))
  wrk -t"$t" -c"$2" -d"${S}s" --latency http://127.0.0.1:18601/api/work >"$work/direct-$3"
  wrk -t"$t" -c"$2" -d"${S}s" --latency -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:18602/api/smart?timeout=2000" >"$work/smart-$3"
  kill "${pids[-1]}" "${pids[-2]}"; wait "${pids[-1]}" "${pids[-2]}" 2>/dev/null || true
}
run_pair 5 1 fixed5
run_pair 0 64 instant
d50=$(pct "$work/direct-fixed5" 50); s50=$(pct "$work/smart-fixed5" 50)
d99=$(pct "$work/direct-fixed5" 99); s99=$(pct "$work/smart-fixed5" 99)
cat <<REPORT

lookout /api/smart (release, auth on) vs direct upstream calls, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores
| figure | direct to work-sim | through lookout /api/smart | difference |
|---|---|---|---|
| p50, fixed 5 ms upstream, 1 conn (ms) | $d50 | $s50 | $(awk -v a="$s50" -v b="$d50" 'BEGIN{printf "%+.3f ms", a-b}') (target ≤ 1 ms) |
| p99, fixed 5 ms upstream, 1 conn (ms) | $d99 | $s99 | $(awk -v a="$s99" -v b="$d99" 'BEGIN{printf "%+.3f ms", a-b}') |
| req/s, instant upstream, 64 conns | $(rps "$work/direct-instant") | $(rps "$work/smart-instant") | everything (wrk, lookout, work-sim) on the same $(nproc) cores |
REPORT
grep -q "Non-2xx" "$work/smart-instant" && echo "WARNING: non-2xx answers during the throughput run" || true
