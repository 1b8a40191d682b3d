#!/usr/bin/env bash
# Dashboard benchmark: lookout's web UI beside Glances 4.5.8's, measured the same way in the same
# run (page weight, time to first full render in headless Chromium, server CPU with 100 live
# clients for 60 s). Results: target/bench-dashboard.json; write-up: docs/benchmarks.md (dashboard).
#   bash bench/dashboard.sh            (RUNS=10 SECONDS_LOAD=60 CLIENTS=100 to change)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${LOOKOUT_BIN:-target/release/lookout}
[ -x "$BIN" ] || cargo build --release -p lookout
venv=target/bench-venv
[ -x "$venv/bin/glances" ] || { python3 -m venv "$venv"; "$venv/bin/pip" install -q "glances[web]==4.5.8"; }
"$venv/bin/python" -c 'import selenium' 2>/dev/null || "$venv/bin/pip" install -q 'selenium>=4.20,<5'
command -v chromedriver >/dev/null || { apt-get update -qq; apt-get install -y -qq --no-install-recommends chromium chromium-driver; }

# Everything runs in a private network namespace with only loopback (see scripts/test-browser.sh:
# Chromium drops live connections when Docker changes host interfaces; and nothing can leave).
if [ -z "${IN_NETNS:-}" ] && unshare --net true 2>/dev/null; then
  exec unshare --net env IN_NETNS=1 bash -c 'ip link set lo up && exec bash "$0"' "$0"
fi

data=$(mktemp -d)
# A few real containers for lookout's table (Glances' web extra has no Docker client).
bash scripts/make-test-image.sh
for i in 1 2 3; do
  docker rm -f "lookout-bench-$i" >/dev/null 2>&1 || true
  docker run -d --name "lookout-bench-$i" --label lookout.test=1 --network none lookout-test/busybox:latest sleep 3600 >/dev/null
done
token=lk_bench-dashboard-token-0123456789abcdef
env -u LOOKOUT_BIN LOOKOUT_TOKEN=$token LOOKOUT_LOG__LEVEL=warn "$BIN" serve --listen 127.0.0.1:18443 --data-dir "$data" >"$data/lookout.log" 2>&1 &
lk=$!
"$venv/bin/glances" -w -B 127.0.0.1 -p 61208 --disable-autodiscover >"$data/glances.log" 2>&1 &
gl=$!
trap 'kill $lk $gl 2>/dev/null; wait $lk $gl 2>/dev/null; docker rm -f lookout-bench-1 lookout-bench-2 lookout-bench-3 >/dev/null 2>&1; rm -rf "$data"' EXIT
for _ in $(seq 60); do
  curl -skf https://127.0.0.1:18443/healthz >/dev/null && curl -sf http://127.0.0.1:61208/api/4/status >/dev/null && break
  sleep 0.5
done
# Glances may fork a worker: measure the process that owns the listening socket.
glpid=$(ss -ltnpH 'sport = :61208' | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1)
glpid=${glpid:-$gl}
cfg=$(printf '{"runs":%s,"seconds":%s,"clients":%s,"lookout":{"url":"https://127.0.0.1:18443/","token":"%s","pid":%s},"glances":{"url":"http://127.0.0.1:61208/","pid":%s}}' \
  "${RUNS:-10}" "${SECONDS_LOAD:-60}" "${CLIENTS:-100}" "$token" "$lk" "$glpid")
"$venv/bin/python" bench/dashboard.py "$cfg" > target/bench-dashboard.json
"$venv/bin/python" - <<'PY'
import json, statistics as st
r = json.load(open("target/bench-dashboard.json"))
for n in ("lookout", "glances"):
    x = r[n]; t = sorted(x["render_ms"]); w = x["weight_bytes"]
    print(f"{n:8} weight {st.median(w)/1024:7.1f} KiB  first render median {st.median(t):6.0f} ms  p90 {t[int(len(t)*0.9)-1]:6.0f} ms  "
          f"CPU idle {x['cpu_idle_pct']:5.2f} %  CPU with {r['clients']} clients {x['cpu_100_pct']:5.2f} %  updates {x['updates_received']}")
PY
