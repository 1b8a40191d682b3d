#!/usr/bin/env bash
# Fleet bench (docs/benchmarks.md, "Fleet"): a real VictoriaMetrics (Debian's package) on
# 127.0.0.1 fed by bench/fleet_gen.rs with HOSTS simulated hosts (~150 lookout-shaped series
# each, pushed every 10 s) plus 24 h of 10 s history for h-0000; a lookout hub reading it.
# Prints: the hub's overview and one host's 24 h charts (median/p95 of RUNS requests), the
# same overview from Grafana-style per-host queries; one real agent's push cost at 10 s
# (CPU, RSS against an identical agent without push; bytes per sample) and its freshness.
# Usage: bash bench/fleet.sh [HOSTS] [RUNS]   (LOOKOUT_BIN picks the binary; debug default)
set -euo pipefail
cd "$(dirname "$0")/.."
HOSTS=${1:-1000} RUNS=${2:-20}
BIN=${LOOKOUT_BIN:-$PWD/target/debug/lookout}
command -v victoria-metrics >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq victoria-metrics >/dev/null; }
cargo build -q -p lookout-fleet --example fleet_gen
[ -x "$BIN" ] || cargo build -q -p lookout
GEN=$PWD/target/debug/examples/fleet_gen
TMP=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$TMP"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
VMP=$(free_port) HP=$(free_port) AP=$(free_port) NP=$(free_port)
TOKEN="lk_$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
victoria-metrics -httpListenAddr "127.0.0.1:$VMP" -storageDataPath "$TMP/vm" -retentionPeriod 2d \
  -search.latencyOffset 0s >"$TMP/vm.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$VMP/health" >/dev/null && break; sleep 0.2; done
echo "VictoriaMetrics $(dpkg-query -W -f '${Version}' victoria-metrics) on 127.0.0.1:$VMP; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

"$GEN" "http://127.0.0.1:$VMP/api/v1/write" backfill 1 86400 10
"$GEN" "http://127.0.0.1:$VMP/api/v1/write" live "$HOSTS" 10 100000 >"$TMP/gen.log" 2>&1 &
PIDS+=($!)

serve() { # NAME PORT [env...]
  local name=$1 port=$2; shift 2
  env LOOKOUT_TOKEN="$TOKEN" LOOKOUT_STORE__ENABLED=false "$@" \
    "$BIN" serve --http --listen "127.0.0.1:$port" --data-dir "$TMP/$name" >"$TMP/$name.log" 2>&1 &
  PIDS+=($!)
}
serve hub "$HP" LOOKOUT_FLEET__QUERY_URL="http://127.0.0.1:$VMP" LOOKOUT_FLEET__TIMEOUT_S=60 LOOKOUT_LIMITS__REQUEST_TIMEOUT_MS=60000 LOOKOUT_SAMPLING__DOCKER=false
serve agent "$AP" LOOKOUT_EXPORT__REMOTE_WRITE__URL="http://127.0.0.1:$VMP/api/v1/write" \
  LOOKOUT_EXPORT__REMOTE_WRITE__INTERVAL_S=10 LOOKOUT_EXPORT__REMOTE_WRITE__INSTANCE=real-agent
AGENT_PID=${PIDS[-1]}
serve nopush "$NP"
NOPUSH_PID=${PIDS[-1]}
for p in $HP $AP $NP; do
  for _ in $(seq 1 150); do curl -sf -o /dev/null -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$p/readyz" && break; sleep 0.2; done
done
sleep 25  # two live rounds of every host

python3 - "$HP" "$VMP" "$TOKEN" "$RUNS" "$HOSTS" <<'PY'
import json, statistics, sys, time, urllib.error, urllib.request, urllib.parse
from concurrent.futures import ThreadPoolExecutor
hp, vmp, token, runs, hosts = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
def get(url, auth=True):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if auth else {})
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=90) as r:
            body = r.read()
    except urllib.error.HTTPError as e:
        sys.exit(f"{url}: HTTP {e.code}: {e.read()[:300]!r}")
    return time.perf_counter() - t, json.loads(body)
def stats(name, url, check):
    times = []
    for _ in range(runs + 1):
        dt, d = get(url)
        times.append(dt)
    check(d)
    times = sorted(times[1:])
    p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
    print(f"{name}: median {1000*statistics.median(times):.0f} ms, p95 {1000*p95:.0f} ms ({runs} requests)")
def overview_ok(d):
    fresh = [h for h in d["hosts"] if not h["stale"] and h["cpu_percent"] is not None]
    print(f"  overview lists {len(d['hosts'])} hosts, {len(fresh)} fresh with figures")
stats("hub GET /api/v1/fleet/hosts", f"http://127.0.0.1:{hp}/api/v1/fleet/hosts", overview_ok)
def hist_ok(d):
    print(f"  24 h history: {len(d['charts'])} charts, {sum(len(c['points']) for c in d['charts'])} points, step {d['step_s']} s")
stats("hub GET /api/v1/fleet/hosts/h-0000/history?range_s=86400",
      f"http://127.0.0.1:{hp}/api/v1/fleet/hosts/h-0000/history?range_s=86400", hist_ok)
# Grafana-style: one dashboard per host, each panel its own query filtered to that host.
panels = [
    '100 * (1 - sum(rate(lookout_host_cpu_seconds_total{{instance="{h}",mode=~"idle|iowait"}}[60s])) / sum(rate(lookout_host_cpu_seconds_total{{instance="{h}"}}[60s])))',
    'lookout_host_memory_used_bytes{{instance="{h}"}}', 'lookout_host_memory_total_bytes{{instance="{h}"}}',
    'max(100 * lookout_host_filesystem_used_bytes{{instance="{h}"}} / lookout_host_filesystem_size_bytes{{instance="{h}"}})',
    'sum(lookout_container_running{{instance="{h}"}})', 'count(lookout_container_running{{instance="{h}"}})',
    'sum(lookout_alerts{{instance="{h}",state="firing"}})', 'lookout_sample_timestamp_seconds{{instance="{h}"}}',
]
now = time.time()
urls = [f"http://127.0.0.1:{vmp}/api/v1/query?" + urllib.parse.urlencode({"query": p.format(h=f"h-{i:04}"), "time": now})
        for i in range(hosts) for p in panels]
t = time.perf_counter()
with ThreadPoolExecutor(8) as ex:
    lat = list(ex.map(lambda u: get(u, auth=False)[0], urls))
wall = time.perf_counter() - t
print(f"Grafana-style per-host queries, same overview: {len(urls)} queries ({len(panels)} per host), "
      f"8 at a time: {wall*1000:.0f} ms wall, median query {1000*statistics.median(lat):.1f} ms")
PY

# Freshness: the real agent's sample time against when the hub first shows it.
python3 - "$HP" "$TOKEN" <<'PY'
import json, sys, time, urllib.request
hp, token = sys.argv[1], sys.argv[2]
seen, lags, until = None, [], time.time() + 45
while time.time() < until:
    req = urllib.request.Request(f"http://127.0.0.1:{hp}/api/v1/fleet/hosts", headers={"Authorization": f"Bearer {token}"})
    d = json.load(urllib.request.urlopen(req, timeout=30))
    row = next((h for h in d["hosts"] if h["host"] == "real-agent"), None)
    if row and row["last_seen"] and row["last_seen"] != seen:
        if seen is not None:
            lags.append(time.time() - row["last_seen"])
        seen = row["last_seen"]
    time.sleep(0.5)
print(f"freshness (sampled → visible in the hub, push every 10 s): {len(lags)} pushes, "
      f"max {max(lags):.1f} s, mean {sum(lags)/len(lags):.1f} s" if lags else "freshness: no new sample seen")
PY

# Push cost: CPU ticks and RSS of the pushing agent against the identical agent without push.
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
a0=$(cpu "$AGENT_PID") n0=$(cpu "$NOPUSH_PID"); t0=$(date +%s.%N)
sleep 120
a1=$(cpu "$AGENT_PID") n1=$(cpu "$NOPUSH_PID"); t1=$(date +%s.%N)
hz=$(getconf CLK_TCK)
curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$AP/metrics" >"$TMP/agent.metrics"
python3 - "$a0" "$a1" "$n0" "$n1" "$t0" "$t1" "$hz" "$(rss "$AGENT_PID")" "$(rss "$NOPUSH_PID")" "$TMP/agent.metrics" <<'PY'
import re, sys
a0, a1, n0, n1, t0, t1, hz = map(float, sys.argv[1:8])
rss_a, rss_n = int(sys.argv[8]), int(sys.argv[9])
m = open(sys.argv[10]).read()
val = lambda name: float(re.search(rf"^{name} (\S+)$", m, re.M).group(1))
secs = t1 - t0
pa, pn = 100 * (a1 - a0) / hz / secs, 100 * (n1 - n0) / hz / secs
samples, sent = val("lookout_remote_write_samples_total"), val("lookout_remote_write_sent_bytes_total")
print(f"agent with push: {pa:.2f} % of a core, RSS {rss_a/1024:.1f} MiB; same agent without push: {pn:.2f} %, RSS {rss_n/1024:.1f} MiB "
      f"(difference {pa-pn:+.2f} % of a core, {(rss_a-rss_n)/1024:+.1f} MiB) over {secs:.0f} s")
print(f"agent on the wire: {samples:.0f} samples in {sent:.0f} bytes = {sent/samples:.2f} bytes/sample "
      f"({samples/val('lookout_remote_write_requests_total'):.0f} samples per push)")
PY

