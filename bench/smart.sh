#!/usr/bin/env bash
# Benchmarks hedged calls to the upstream /api/work (DESIGN.md §4) against work-sim.
#
# Everything runs on 127.0.0.1 and every phase is bounded in time (~100 s of measuring with
# the defaults). Prints markdown tables for docs/benchmarks.md (hedged requests).
#
#   bench/smart.sh                 # defaults: SECS=15 CONC=100
#   SECS=5 CONC=32 bench/smart.sh  # quicker
#   SMART_CPUS=0,1 LOAD_CPUS=2-15 bench/smart.sh   # pin the /api/smart stand-in to 2 cores
#
# Phases:
#   1. flaky upstream (uniform 100–600 ms, 5 % HTTP 500, 2 % invalid body, 1 % hang), timeout
#      2000 ms: one direct call vs hedged (300 ms, 2 extra) vs always three at once vs the
#      adaptive mode (delay at the recent p90, extra attempts capped at +10 %);
#   2. fast fixed-latency upstream (5 ms, no failures): direct vs hedged, the added overhead;
#   3. engine overhead in-process (hedge() around a ready future);
#   4. requests/s a minimal /api/smart (engine + pooled client behind axum) sustains.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${SECS:-15}
CONC=${CONC:-100}
FAST_SECS=${FAST_SECS:-8}
# below the usual ephemeral range (32768+) so client sockets never hold our ports
BASE_PORT=${BASE_PORT:-18610}
SMART_CPUS=${SMART_CPUS:-}
LOAD_CPUS=${LOAD_CPUS:-}
BIN=${BIN:-target/release/examples/smart_bench}

if [[ -z "${SKIP_BUILD:-}" ]]; then
    cargo build --release -p lookout-hedge --example smart_bench --features http,sim
fi

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

pin() { # pin CPUS CMD...: run CMD on CPUS when given
    local cpus=$1; shift
    if [[ -n "$cpus" ]]; then taskset -c "$cpus" "$@"; else "$@"; fi
}

wait_up() { # wait_up PORT: bounded wait for a listener on 127.0.0.1:PORT (no curl needed)
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "not up: 127.0.0.1:$1" >&2
    exit 1
}

start_sim() { # start_sim PORT ARGS...: background work-sim
    local port=$1; shift
    pin "$LOAD_CPUS" "$BIN" sim --listen "127.0.0.1:$port" --max-secs 300 "$@" &
    pids+=($!)
    wait_up "$port"
}

stop_all() { cleanup; pids=(); }

drive() { # drive PORT MODE LABEL EXTRA...
    local port=$1 mode=$2 label=$3; shift 3
    pin "$LOAD_CPUS" "$BIN" drive --url "http://127.0.0.1:$port/api/work" --mode "$mode" \
        --label "$label" --stats-url "http://127.0.0.1:$port/api/work/stats" "$@"
}

HEADER='| mode | calls | calls/s | p50 ms | p99 ms | p99.9 ms | success | upstream req/call |
|---|---:|---:|---:|---:|---:|---:|---:|'

echo "## 1. Flaky upstream: uniform 100–600 ms, 5 % 500, 2 % invalid body, 1 % hang; timeout 2000 ms; $CONC callers, ${SECS} s each"
echo
echo "$HEADER"
FLAKY=(--seed 42 --min-ms 100 --max-ms 600 --fail-rate 0.05 --invalid-rate 0.02 --hang-rate 0.01)
port=$BASE_PORT
for m in "direct:one direct call" "hedged:hedged 300 ms, +2" "all3:three at once" \
    "adaptive:adaptive p90, budget 10 %"; do
    # a fresh simulator per mode: request k behaves the same in every run (seeded)
    start_sim "$port" "${FLAKY[@]}"
    drive "$port" "${m%%:*}" "${m#*:}" --concurrency "$CONC" --secs "$SECS" --timeout-ms 2000
    stop_all
    port=$((port + 1))
done

echo
echo "## 2. Fast upstream (fixed 5 ms, no failures): added overhead; 16 callers, ${FAST_SECS} s each"
echo
echo "$HEADER"
start_sim "$port" --min-ms 5 --max-ms 5
drive "$port" direct "one direct call" --concurrency 16 --secs "$FAST_SECS" --timeout-ms 2000
drive "$port" hedged "hedged 300 ms, +2" --concurrency 16 --secs "$FAST_SECS" --timeout-ms 2000
stop_all
port=$((port + 1))

echo
echo "## 3. Engine alone"
echo
pin "$LOAD_CPUS" "$BIN" engine-overhead --iters 300000 --threads 1

echo
echo "## 4. Throughput of a minimal /api/smart (engine + pooled client) on ${SMART_CPUS:-all shared} CPUs; upstream 0 ms; 64 callers, ${FAST_SECS} s"
echo
echo "$HEADER"
start_sim "$port" --min-ms 0 --max-ms 0
smart_port=$((port + 1))
pin "$SMART_CPUS" "$BIN" serve-smart --listen "127.0.0.1:$smart_port" \
    --upstream "http://127.0.0.1:$port/api/work" --max-secs 120 --threads 2 &
pids+=($!)
wait_up "$smart_port"
pin "$LOAD_CPUS" "$BIN" drive --url "http://127.0.0.1:$smart_port/api/smart?timeout=1000" --mode get \
    --label "/api/smart stand-in" --stats-url "http://127.0.0.1:$port/api/work/stats" \
    --concurrency 64 --secs "$FAST_SECS" --timeout-ms 2000
stop_all
