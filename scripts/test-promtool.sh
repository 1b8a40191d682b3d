#!/usr/bin/env bash
# lookout checked by the Prometheus ecosystem's own tools (Debian's `prometheus` package):
#  - `promtool check metrics` over a live /metrics (text format 0.0.4, no lint warnings), and
#    the OpenMetrics answer when `Accept` asks for it;
#  - `promtool check rules` and `promtool test rules` over the shipped alerting rules, and
#    `promtool check config` over the shipped Prometheus configuration;
#  - a real Prometheus (1 s scrape interval, 127.0.0.1 only) scraping a real lookout (debug
#    binary, --http, a LOOKOUT_TOKEN), then every query of every Grafana panel and every
#    alerting rule expression evaluated through Prometheus' HTTP API: each panel query returns
#    at least one series (GPU panels may be empty only on a host without GPUs, the container
#    panels only without a Docker engine; both are reported as ALLOWED-EMPTY).
# Everything listens on 127.0.0.1 and stops by itself (bounded waits, trap on exit).
# No `set -e`: every check records its result, and the summary line is always printed.
set -uo pipefail
cd "$(dirname "$0")/.."
pass=0 fail=0
ok() { echo "PASS: $*"; pass=$((pass + 1)); }
ko() { echo "FAIL: $*"; fail=$((fail + 1)); }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; }

if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    dpkg -s prometheus >/dev/null 2>&1 || {
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
    }
    # The package starts its own service on :9090 where systemd runs; this suite uses its own.
  else
    echo "SKIPPED: promtool/prometheus are not installed and apt-get cannot install them"
    echo "0 passed, 0 failed"
    exit 0
  fi
fi
command -v curl >/dev/null 2>&1 || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null; }

[ -x target/debug/lookout ] || cargo build -q -p lookout || { echo "FAIL: cannot build lookout"; echo "0 passed, 1 failed"; exit 1; }
BIN=$PWD/target/debug/lookout
TMP=$(mktemp -d)
PIDS=()
CONTAINER=""
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "$CONTAINER" ] && docker rm -f "$CONTAINER" >/dev/null 2>&1
  rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
LPORT=$(free_port)
PPORT=$(free_port)
TOKEN="lk_$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"   # 51 bytes
printf '%s' "$TOKEN" >"$TMP/token"
chmod 600 "$TMP/token"

# -- rules and configuration as shipped
promtool check rules deploy/prometheus/lookout.rules.yml >"$TMP/out" 2>&1 \
  && ok "promtool check rules deploy/prometheus/lookout.rules.yml" || { cat "$TMP/out"; ko "promtool check rules"; }
(cd deploy/prometheus && promtool test rules lookout.rules.test.yml) >"$TMP/out" 2>&1 \
  && ok "promtool test rules (alert unit tests)" || { cat "$TMP/out"; ko "promtool test rules"; }
sed -e "s#/etc/prometheus/rules/\*.yml#$PWD/deploy/prometheus/lookout.rules.yml#" \
    -e "s#/run/secrets/lookout_token#$TMP/token#" deploy/prometheus/prometheus.yml >"$TMP/shipped.yml"
promtool check config "$TMP/shipped.yml" >"$TMP/out" 2>&1 \
  && ok "promtool check config deploy/prometheus/prometheus.yml (rules and token file at local paths)" \
  || { cat "$TMP/out"; ko "promtool check config"; }

# -- a real lookout; a container to watch where a Docker engine answers
DOCKER=0
if docker info >/dev/null 2>&1 && docker image inspect lookout-test/busybox:latest >/dev/null 2>&1; then
  CONTAINER="lookout-promtool-$$"
  # Reads and writes a little, so every container family has a value.
  docker run -d --name "$CONTAINER" --label lookout.test=1 lookout-test/busybox:latest \
    sh -c 'i=0; while [ $i -lt 300 ]; do dd if=/dev/zero of=/tmp/f bs=4k count=64 2>/dev/null; sync; i=$((i+1)); sleep 1; done' >/dev/null
  DOCKER=1
else
  echo "no Docker engine (or no lookout-test/busybox image): container panels may be empty"
fi
# Sensors: this host's own where it has hwmon chips; else the sysfs tree captured from real
# hosts that the probe's tests read (its hwmon chips and thermal zone, with this host's
# block devices and cgroups beside them), so promtool sees every node_hwmon_* family lookout writes.
SYS_ROOT=/sys
if ! ls /sys/class/hwmon/hwmon* >/dev/null 2>&1; then
  SYS_ROOT="$TMP/sys"
  cp -a crates/lookout-probe/tests/fixtures/sysfs-node-exporter "$SYS_ROOT"
  ln -s /sys/block "$SYS_ROOT/block"
  # The containers' cgroups are read under <sys root>/fs/cgroup: this host's own.
  [ -e "$SYS_ROOT/fs" ] || ln -s /sys/fs "$SYS_ROOT/fs"
fi
LOOKOUT_TOKEN="$TOKEN" LOOKOUT_STORE__FLUSH_INTERVAL_S=1 LOOKOUT_HOST__SYS_ROOT="$SYS_ROOT" \
  "$BIN" serve --http --listen "127.0.0.1:$LPORT" --data-dir "$TMP/data" >"$TMP/lookout.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$LPORT/readyz" -H "Authorization: Bearer $TOKEN" >/dev/null 2>&1 && break
  sleep 0.2
done
scrape() { curl -sS --max-time 10 -H "Authorization: Bearer $TOKEN" "$@" "http://127.0.0.1:$LPORT/metrics"; }
# Some traffic, so the HTTP and /api/smart families have children.
for _ in $(seq 1 5); do
  curl -s --max-time 10 -o /dev/null -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$LPORT/api/smart?timeout=2000" || true
  curl -s --max-time 10 -o /dev/null -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$LPORT/api/v1/host" || true
done

# -- exposition formats
scrape -D "$TMP/headers" -o "$TMP/metrics.txt"
grep -qi '^content-type: text/plain; version=0.0.4' "$TMP/headers" \
  && ok "/metrics without Accept: text format 0.0.4" || { cat "$TMP/headers"; ko "/metrics default content type"; }
# On a GPU host the only lint promtool may print (and then exit 3 for) is about
# dcgm-exporter's label spelling (modelName), kept on purpose so dashboards made for
# dcgm-exporter work (docs/metrics.md). Anything else, or a parse error, fails.
missing=""
for fam in node_hwmon_temp_celsius node_hwmon_temp_crit_celsius node_hwmon_temp_max_celsius \
  node_hwmon_chip_names node_hwmon_sensor_label node_thermal_zone_temp; do
  grep -q "^# TYPE $fam gauge" "$TMP/metrics.txt" || missing="$missing $fam"
done
if [ "$SYS_ROOT" != /sys ]; then
  for fam in node_hwmon_fan_rpm node_hwmon_in_volts; do
    grep -q "^# TYPE $fam gauge" "$TMP/metrics.txt" || missing="$missing $fam"
  done
fi
[ -z "$missing" ] && ok "sensor families on /metrics under node_exporter's names (sys root $SYS_ROOT)" \
  || { grep node_ "$TMP/metrics.txt" | head -20; ko "sensor families missing:$missing"; }
rc=0
promtool check metrics <"$TMP/metrics.txt" >"$TMP/lint" 2>&1 || rc=$?
grep -v "^DCGM_FI_[A-Z_]* label names should be written in 'snake_case' not 'camelCase'$" "$TMP/lint" >"$TMP/lint.other" || true
if [ "$rc" = 0 ] && [ ! -s "$TMP/lint" ]; then
  ok "promtool check metrics: exit 0, no lint warnings ($(grep -c '^# TYPE' "$TMP/metrics.txt") families)"
elif [ "$rc" = 3 ] && [ -s "$TMP/lint" ] && [ ! -s "$TMP/lint.other" ]; then
  ok "promtool check metrics: only dcgm-exporter's own label spelling is linted ($(wc -l <"$TMP/lint") GPU families)"
else
  cat "$TMP/lint"; ko "promtool check metrics (exit $rc)"
fi
scrape -H 'Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5' \
  -D "$TMP/om-headers" -o "$TMP/metrics.om"
if grep -qi '^content-type: application/openmetrics-text; version=1.0.0' "$TMP/om-headers" \
   && [ "$(tail -n 1 "$TMP/metrics.om")" = "# EOF" ]; then
  ok "/metrics with Accept: application/openmetrics-text: OpenMetrics 1.0 ending in # EOF"
else
  head -n 5 "$TMP/om-headers"; ko "OpenMetrics negotiation"
fi
python3 deploy/grafana/check_dashboard.py --metrics "$TMP/metrics.txt" deploy/grafana/dashboards/lookout.json \
  >"$TMP/out" 2>&1 && ok "check_dashboard.py against this scrape" || { cat "$TMP/out"; ko "check_dashboard.py"; }

# -- a real Prometheus scraping it every second
cat >"$TMP/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $PWD/deploy/prometheus/lookout.rules.yml
scrape_configs:
  - job_name: lookout
    authorization:
      type: Bearer
      credentials_file: $TMP/token
    static_configs:
      - targets: ["127.0.0.1:$LPORT"]
YAML
prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/tsdb" \
  --web.listen-address="127.0.0.1:$PPORT" >"$TMP/prometheus.log" 2>&1 &
PIDS+=($!)
PROM="http://127.0.0.1:$PPORT"
up=0
for _ in $(seq 1 60); do
  if curl -sf "$PROM/api/v1/query?query=up%7Bjob%3D%22lookout%22%7D" 2>/dev/null | grep -q '"value":\[[0-9.]*,"1"\]'; then up=1; break; fi
  sleep 0.5
done
[ "$up" = 1 ] && ok "Prometheus scrapes lookout with the token (up == 1)" || { tail -n 20 "$TMP/prometheus.log"; ko "Prometheus target up"; }
# Enough scrapes for rate() over the panels' interval, with traffic in between.
for _ in $(seq 1 12); do
  curl -s --max-time 5 -o /dev/null -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$LPORT/api/smart?timeout=1000" || true
  sleep 1
done

flags=()
gpu_up=$(scrape | awk '$1 == "lookout_gpu_up" {print $2}')
[ "$gpu_up" = 1 ] || flags+=(--no-gpu)
[ "$DOCKER" = 1 ] || flags+=(--no-containers)
python3 deploy/grafana/query_panels.py "$PROM" "127.0.0.1:$LPORT" deploy/grafana/dashboards/lookout.json "${flags[@]}" \
  >"$TMP/panels" 2>&1
panels_rc=$?
cat "$TMP/panels"
if [ "$panels_rc" = 0 ]; then
  ok "every Grafana panel query returns series through Prometheus ($(tail -n 1 "$TMP/panels"))"
else
  ko "Grafana panel queries"
fi
[ "$gpu_up" = 1 ] || echo "note: no GPU here (lookout_gpu_up $gpu_up): GPU panels were allowed to be empty"

# Every rule was loaded and evaluates without error against the live series.
rules=$(curl -sf "$PROM/api/v1/rules")
if python3 - "$rules" <<'PY'
import json, sys
groups = json.loads(sys.argv[1])["data"]["groups"]
rules = [r for g in groups for r in g["rules"]]
bad = [r["name"] for r in rules if r.get("health") not in ("ok", "unknown") or r.get("lastError")]
print(f"{len(rules)} rules loaded; unhealthy: {bad or 'none'}")
sys.exit(1 if bad or len(rules) < 7 else 0)
PY
then ok "Prometheus loaded and evaluates the shipped alerting rules"; else ko "alerting rules in Prometheus"; fi
# No alert fires on a healthy lookout. A host whose disk really is almost full (a CI machine
# can be) gets HostFilesystemAlmostFull, and rightly: that one passes when `df` agrees.
firing=$(curl -sf "$PROM/api/v1/alerts" | python3 -c 'import json,sys; print(" ".join(a["labels"]["alertname"] + ":" + a["labels"].get("mountpoint", "") for a in json.load(sys.stdin)["data"]["alerts"]))')
unexpected=()
for a in $firing; do
  name=${a%%:*} mount=${a#*:}
  if [ "$name" = HostFilesystemAlmostFull ] && [ -n "$mount" ] &&
    df -P -B1 "$mount" 2>/dev/null | awk 'NR == 2 { exit !($4 / $2 < 0.05) }'; then
    echo "note: $mount really has under 5% space left here (df agrees): HostFilesystemAlmostFull is right"
    continue
  fi
  unexpected+=("$a")
done
[ "${#unexpected[@]}" = 0 ] && ok "no alert fires on a healthy lookout" || ko "alerts fire on a healthy lookout: ${unexpected[*]}"

finish
