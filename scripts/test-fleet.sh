#!/usr/bin/env bash
# Fleet end to end on real engines (Debian's `victoria-metrics` and `prometheus`), 127.0.0.1
# only, dynamic ports:
#  - agents agent-a and agent-b push with remote-write to VictoriaMetrics (basic auth, the
#    password from a LOOKOUT_…_PASSWORD_FILE), agent-c pushes to Prometheus
#    (--web.enable-remote-write-receiver); agent-a is also the hub reading VictoriaMetrics,
#    agent-c the hub reading Prometheus;
#  - each hub's /api/v1/fleet/hosts agrees with each agent's own /api/v1/host (memory total
#    exactly, memory used, fullest filesystem, CPU within bounds, container counts), history
#    charts have points, the container search finds a container on every agent;
#  - VictoriaMetrics stopped for a while, then restarted: agent-b (queue large enough) loses
#    no sample of the outage, agent-a (queue bound below the outage) counts its drops; the
#    hub answers 503 JSON meanwhile and recovers by itself;
#  - agent-d with a wrong password: a clear log line, the auth failure counter, still serving.
# Bounded waits everywhere; everything started here is stopped on exit.
set -uo pipefail
cd "$(dirname "$0")/.."
pass=0 fail=0
ok() { echo "PASS: $*"; pass=$((pass + 1)); }
ko() { echo "FAIL: $*"; fail=$((fail + 1)); }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; }

need=()
command -v victoria-metrics >/dev/null 2>&1 || need+=(victoria-metrics)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v curl >/dev/null 2>&1 || need+=(curl)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "SKIPPED: ${need[*]} not installed and apt-get cannot install them"
    echo "0 passed, 0 failed"
    exit 0
  fi
fi

[ -x target/debug/lookout ] || cargo build -q -p lookout || { echo "FAIL: cannot build lookout"; echo "0 passed, 1 failed"; exit 1; }
BIN=$PWD/target/debug/lookout
TMP=$(mktemp -d)
PIDS=()
VM_PID=""
CONTAINER=""
cleanup() {
  [ -n "$VM_PID" ] && kill "$VM_PID" 2>/dev/null
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}" $VM_PID; do wait "$p" 2>/dev/null || true; done
  [ -n "$CONTAINER" ] && docker rm -f "$CONTAINER" >/dev/null 2>&1
  rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
TOKEN="lk_$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
VM_PASS="vm-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf '%s\n' "$VM_PASS" >"$TMP/vm-pass"
printf 'not-the-password\n' >"$TMP/wrong-pass"
chmod 600 "$TMP/vm-pass" "$TMP/wrong-pass"
VMP=$(free_port) PP=$(free_port)

start_vm() {
  victoria-metrics -httpListenAddr "127.0.0.1:$VMP" -storageDataPath "$TMP/vm" -retentionPeriod 1d \
    -httpAuth.username lookout -httpAuth.password "$VM_PASS" \
    -search.latencyOffset 0s -search.disableCache >>"$TMP/vm.log" 2>&1 &
  VM_PID=$!
  for _ in $(seq 1 100); do
    curl -sf -u "lookout:$VM_PASS" "http://127.0.0.1:$VMP/health" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}
start_vm && ok "VictoriaMetrics $(dpkg-query -W -f '${Version}' victoria-metrics 2>/dev/null) on 127.0.0.1:$VMP (basic auth)" \
  || { tail -20 "$TMP/vm.log"; ko "VictoriaMetrics did not start"; finish; exit 1; }

printf 'global:\n  scrape_interval: 1m\nscrape_configs: []\n' >"$TMP/prometheus.yml"
prometheus --config.file "$TMP/prometheus.yml" --storage.tsdb.path "$TMP/prom" \
  --web.listen-address "127.0.0.1:$PP" --web.enable-remote-write-receiver >"$TMP/prom.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PP/-/ready" >/dev/null 2>&1 && break; sleep 0.2; done
curl -sf "http://127.0.0.1:$PP/-/ready" >/dev/null 2>&1 && ok "Prometheus with --web.enable-remote-write-receiver on 127.0.0.1:$PP" \
  || { tail -20 "$TMP/prom.log"; ko "Prometheus did not start"; }

if docker info >/dev/null 2>&1 && docker image inspect lookout-test/busybox:latest >/dev/null 2>&1; then
  CONTAINER="lk-fl-search-$$"
  docker run -d --name "$CONTAINER" lookout-test/busybox:latest sleep 600 >/dev/null
fi

# agent NAME PORT RECEIVER-URL PASSWORD-FILE [extra env...]
agent() {
  local name=$1 port=$2 url=$3 passfile=$4; shift 4
  env LOOKOUT_TOKEN="$TOKEN" LOOKOUT_STORE__ENABLED=false LOOKOUT_ALERTS__ENABLED=false \
    LOOKOUT_EXPORT__REMOTE_WRITE__URL="$url" \
    LOOKOUT_EXPORT__REMOTE_WRITE__INTERVAL_S=1 \
    LOOKOUT_EXPORT__REMOTE_WRITE__MAX_BACKOFF_S=1 \
    LOOKOUT_EXPORT__REMOTE_WRITE__INSTANCE="$name" \
    LOOKOUT_EXPORT__REMOTE_WRITE__DASHBOARD_URL="http://127.0.0.1:$port/" \
    LOOKOUT_EXPORT__REMOTE_WRITE__LABELS__SUITE=fleet \
    ${passfile:+LOOKOUT_EXPORT__REMOTE_WRITE__AUTH__USERNAME=lookout} \
    ${passfile:+LOOKOUT_EXPORT__REMOTE_WRITE__AUTH__PASSWORD_FILE="$passfile"} \
    "$@" "$BIN" serve --http --listen "127.0.0.1:$port" --data-dir "$TMP/$name" >"$TMP/$name.log" 2>&1 &
  PIDS+=($!)
}
AP=$(free_port) BP=$(free_port) CP=$(free_port) DP=$(free_port)
agent agent-a "$AP" "http://127.0.0.1:$VMP/api/v1/write" "$TMP/vm-pass" \
  LOOKOUT_EXPORT__REMOTE_WRITE__MAX_QUEUE_SAMPLES=1000 \
  LOOKOUT_FLEET__QUERY_URL="http://127.0.0.1:$VMP" LOOKOUT_FLEET__AUTH__USERNAME=lookout \
  LOOKOUT_FLEET__AUTH__PASSWORD_FILE="$TMP/vm-pass" LOOKOUT_FLEET__STALE_AFTER_S=10 LOOKOUT_FLEET__RATE_WINDOW_S=10
agent agent-b "$BP" "http://127.0.0.1:$VMP/api/v1/write" "$TMP/vm-pass"
agent agent-c "$CP" "http://127.0.0.1:$PP/api/v1/write" "" \
  LOOKOUT_FLEET__QUERY_URL="http://127.0.0.1:$PP" LOOKOUT_FLEET__STALE_AFTER_S=10 LOOKOUT_FLEET__RATE_WINDOW_S=10
agent agent-d "$DP" "http://127.0.0.1:$VMP/api/v1/write" "$TMP/wrong-pass"

api() { curl -sS --max-time 15 -H "Authorization: Bearer $TOKEN" "$@"; }
for port in $AP $BP $CP $DP; do
  for _ in $(seq 1 150); do api -f -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null && break; sleep 0.2; done
done

# Waits until hub $1 lists every host named after it as fresh (bounded).
wait_hosts() {
  local port=$1; shift
  for _ in $(seq 1 60); do
    api "http://127.0.0.1:$port/api/v1/fleet/hosts" -o "$TMP/hosts.json" 2>/dev/null
    python3 - "$TMP/hosts.json" "$@" <<'EOF' && return 0
import json, sys
try:
    d = json.load(open(sys.argv[1]))
    fresh = {h["host"] for h in d["hosts"] if not h["stale"] and h["cpu_percent"] is not None}
except Exception:
    sys.exit(1)
sys.exit(0 if set(sys.argv[2:]) <= fresh else 1)
EOF
    sleep 1
  done
  return 1
}

# -- the hubs list their agents, and agree with each agent's own figures
wait_hosts "$AP" agent-a agent-b && ok "VictoriaMetrics hub lists agent-a and agent-b, fresh" \
  || { cat "$TMP/hosts.json"; ko "VictoriaMetrics hub lists agent-a and agent-b"; }
wait_hosts "$CP" agent-c && ok "Prometheus hub lists agent-c, fresh" \
  || { cat "$TMP/hosts.json"; tail -5 "$TMP/agent-c.log"; ko "Prometheus hub lists agent-c"; }

agree() {
  local hub=$1 host=$2 port=$3
  api "http://127.0.0.1:$port/api/v1/host" -o "$TMP/own.json"
  api "http://127.0.0.1:$port/api/v1/containers" -o "$TMP/own-containers.json"
  api "http://127.0.0.1:$hub/api/v1/fleet/hosts" -o "$TMP/hub.json"
  python3 - "$TMP/own.json" "$TMP/own-containers.json" "$TMP/hub.json" "$host" "$port" <<'EOF'
import json, sys
own = json.load(open(sys.argv[1]))["host"]
try:
    own_containers = json.load(open(sys.argv[2]))
    own_containers = own_containers.get("containers", own_containers) if isinstance(own_containers, dict) else own_containers
except Exception:
    own_containers = None
hub = {h["host"]: h for h in json.load(open(sys.argv[3]))["hosts"]}[sys.argv[4]]
problems = []
mem = own["memory"]
if hub["memory_total_bytes"] != mem["total"]:
    problems.append(f"memory total {hub['memory_total_bytes']} vs {mem['total']}")
if abs(hub["memory_used_bytes"] - mem["used"]) > 0.05 * mem["total"]:
    problems.append(f"memory used {hub['memory_used_bytes']} vs {mem['used']}")
fs = [f for f in own["filesystems"] if f["size_bytes"] > 0]
if fs:
    pct = max(100.0 * f["used_bytes"] / f["size_bytes"] for f in fs)
    if hub["filesystem_used_percent"] is None or abs(hub["filesystem_used_percent"] - pct) > 2:
        problems.append(f"filesystem {hub['filesystem_used_percent']} vs {pct:.1f}")
if not (0 <= hub["cpu_percent"] <= 100):
    problems.append(f"cpu {hub['cpu_percent']}")
if isinstance(own_containers, list) and hub["containers_total"] is not None and hub["containers_total"] != len(own_containers):
    problems.append(f"containers {hub['containers_total']} vs {len(own_containers)}")
if hub["url"] != f"http://127.0.0.1:{sys.argv[5]}/":
    problems.append(f"url {hub['url']}")
print(f"{sys.argv[4]}: cpu {hub['cpu_percent']:.1f}% (own {own['cpu']['total']['usage']:.1f}%), "
      f"memory {hub['memory_used_bytes']:.0f}/{hub['memory_total_bytes']:.0f}, fs {hub['filesystem_used_percent']}, "
      f"containers {hub['containers_total']}, alerts {hub['alerts_firing']}")
if problems:
    print("disagree:", "; ".join(problems)); sys.exit(1)
EOF
}
# Other suites start and remove containers on the same Docker engine: a figure read a push
# apart may differ once, so each comparison gets three tries.
agree3() { agree "$@" || { sleep 1; agree "$@"; } || { sleep 1; agree "$@"; }; }
agree3 "$AP" agent-a "$AP" && ok "hub (VictoriaMetrics) agrees with agent-a's /api/v1/host" || ko "hub vs agent-a"
agree3 "$AP" agent-b "$BP" && ok "hub (VictoriaMetrics) agrees with agent-b's /api/v1/host" || ko "hub vs agent-b"
agree3 "$CP" agent-c "$CP" && ok "hub (Prometheus) agrees with agent-c's /api/v1/host" || ko "hub vs agent-c"

api "http://127.0.0.1:$AP/api/v1/fleet/hosts/agent-b/history?range_s=300" -o "$TMP/hist.json"
python3 - "$TMP/hist.json" <<'EOF' && ok "agent-b's history through query_range: CPU, memory, filesystem charts have points" || { head -c 600 "$TMP/hist.json"; ko "history"; }
import json, sys
d = json.load(open(sys.argv[1]))
charts = {c["name"]: c["points"] for c in d["charts"]}
sys.exit(0 if all(len(charts[n]) >= 2 for n in ("cpu_percent", "memory_used_bytes", "filesystem_used_percent")) else 1)
EOF
code=$(api -o "$TMP/bad.json" -w '%{http_code}' "http://127.0.0.1:$AP/api/v1/fleet/hosts/agent-b/history?range_s=99999999")
[ "$code" = 400 ] && grep -q '"bad_request"' "$TMP/bad.json" && ok "history range out of bounds: 400 JSON" || ko "history bounds ($code)"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$AP/api/v1/fleet/hosts")
[ "$code" = 401 ] && ok "fleet routes need a token (401 without)" || ko "fleet without token: $code"

if [ -n "$CONTAINER" ]; then
  api "http://127.0.0.1:$AP/api/v1/fleet/containers?q=LK-FL-SEARCH" -o "$TMP/search.json"
  python3 - "$TMP/search.json" "$CONTAINER" <<'EOF' && ok "container search across hosts finds $CONTAINER on agent-a and agent-b, running" || { cat "$TMP/search.json"; ko "container search"; }
import json, sys
d = json.load(open(sys.argv[1]))
hosts = {c["host"] for c in d["containers"] if c["name"] == sys.argv[2] and c["running"]}
sys.exit(0 if {"agent-a", "agent-b"} <= hosts else 1)
EOF
else
  echo "no Docker engine (or no lookout-test/busybox image): container search not checked"
fi

# -- auth refused at the receiver
for _ in $(seq 1 30); do grep -q "refused lookout's credentials" "$TMP/agent-d.log" && break; sleep 0.5; done
grep -q "refused lookout's credentials" "$TMP/agent-d.log" && ! grep -q "not-the-password\|$VM_PASS" "$TMP/agent-d.log" \
  && ok "wrong receiver password: clear log line, no secret in the log" || { tail -5 "$TMP/agent-d.log"; ko "auth refused log line"; }
api "http://127.0.0.1:$DP/metrics" -o "$TMP/d.metrics"
grep -Eq '^lookout_remote_write_failed_requests_total\{reason="auth"\} [1-9]' "$TMP/d.metrics" \
  && api -sf -o /dev/null "http://127.0.0.1:$DP/api/v1/host" \
  && ok "wrong receiver password: lookout_remote_write_failed_requests_total{reason=\"auth\"} counts, agent still serves" \
  || { grep remote_write "$TMP/d.metrics"; ko "auth failure counter"; }

# -- receiver down for a while, then back: nothing lost inside the bound
sleep 2
T0=$(date +%s.%N)
kill "$VM_PID"; wait "$VM_PID" 2>/dev/null; VM_PID=""
sleep 1
code=$(api -o "$TMP/down.json" -w '%{http_code}' "http://127.0.0.1:$AP/api/v1/fleet/hosts")
[ "$code" = 503 ] && python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["error"]["code"]=="unavailable"' "$TMP/down.json" \
  && ok "hub with its engine down: 503 JSON ($(head -c 120 "$TMP/down.json"))" || { cat "$TMP/down.json"; ko "engine down: $code"; }
sleep 7
T1=$(date +%s.%N)
start_vm && ok "VictoriaMetrics restarted after $(python3 -c "print(round($T1-$T0))") s down" || ko "VictoriaMetrics restart"
wait_hosts "$AP" agent-a agent-b && ok "hub recovers by itself once the engine is back" || ko "hub recovery"
sleep 4
api "http://127.0.0.1:$AP/api/v1/fleet/hosts" -o /dev/null
vmq() { curl -sS --max-time 10 -u "lookout:$VM_PASS" "http://127.0.0.1:$VMP/api/v1/query" --data-urlencode "query=$1" --data-urlencode "time=$(date +%s)"; }
vmq 'lookout_sample_timestamp_seconds{instance="agent-b"}[90s]' >"$TMP/raw-b.json"
python3 - "$TMP/raw-b.json" "$T0" "$T1" <<'EOF' && ok "agent-b lost no sample while the receiver was down (queue within its bound)" || ko "agent-b lost samples during the outage"
import json, sys
d = json.load(open(sys.argv[1]))
t0, t1 = float(sys.argv[2]), float(sys.argv[3])
ts = sorted(float(t) for t, _ in d["data"]["result"][0]["values"])
inside = [t for t in ts if t0 - 2 <= t <= t1 + 2]
gaps = [b - a for a, b in zip(inside, inside[1:])]
print(f"{len(inside)} samples of agent-b from {t0 - 2:.0f} to {t1 + 2:.0f}; largest gap {max(gaps):.1f} s")
# Pushes every 1 s of a sampler ticking every 1 s: a gap of 2 s is a tick that repeated.
sys.exit(0 if inside and max(gaps) <= 2.5 and inside[0] <= t0 and inside[-1] >= t1 else 1)
EOF
api "http://127.0.0.1:$AP/metrics" -o "$TMP/a.metrics"
api "http://127.0.0.1:$BP/metrics" -o "$TMP/b.metrics"
grep -Eq '^lookout_remote_write_dropped_samples_total\{reason="queue_full"\} [1-9]' "$TMP/a.metrics" \
  && ok "agent-a (max_queue_samples=1000) counts the samples past its bound: $(grep -E '^lookout_remote_write_dropped_samples_total' "$TMP/a.metrics" | tr '\n' ' ')" \
  || { grep remote_write "$TMP/a.metrics"; ko "agent-a drop counter"; }
grep -Eq '^lookout_remote_write_failed_requests_total\{reason="network"\} [1-9]' "$TMP/b.metrics" \
  && ! grep -Eq '^lookout_remote_write_dropped_samples_total' "$TMP/b.metrics" \
  && ok "agent-b counted its failed pushes (network) and dropped nothing" || { grep remote_write "$TMP/b.metrics"; ko "agent-b counters"; }
grep -q "receiver accepts pushes again" "$TMP/agent-b.log" && ok "agent-b logged the receiver's return" || ko "recovery log line"

for n in agent-a agent-b agent-c agent-d; do
  if grep -qi "panicked" "$TMP/$n.log"; then ko "$n panicked"; grep -i -A3 panicked "$TMP/$n.log"; fi
done
finish
