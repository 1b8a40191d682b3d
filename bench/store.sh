#!/usr/bin/env bash
# lookout-store bench: bytes per sample on disk, week-long /cpu_average, ingest cost per tick,
# each printed beside the way the original perf-history did it (one row per sample, AVG over
# the rows) in the same run; plus a codec comparison (ours, plain Gorilla XOR, pco).
#
#   bench/store.sh                 # 12 h of host + 100 containers + a week of the perf-history series (~2 min)
#   HOURS=6 bench/store.sh         # quicker
#
# Release build (first build compiles sqlx in release: several minutes). The run itself is
# bounded by `timeout` (240 s). Output also goes to bench/store/last-run.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
HOURS=${HOURS:-12}
OUT=${OUT:-target/bench-store}
cargo build --release -p lookout-store --example store_bench
mkdir -p bench/store
timeout 240 target/release/examples/store_bench --hours "$HOURS" --out "$OUT" | tee bench/store/last-run.txt
