#!/usr/bin/env bash
# Cost of watching N idle containers at 1 s sampling: lookout (containers from cgroups, engine
# events) against Glances 4.5.8 with its containers plugin, in one run on the same containers.
# Phases, each DUR seconds, one client reading the container list once a second:
#   0. neither running: the engine's own cost with N idle containers (baseline);
#   1. lookout alone (history store on): lookout's CPU and RSS, and the engine's CPU;
#   2. Glances alone (web server, REST API, refresh 1 s): the same for Glances.
# "engine" is dockerd + containerd (the daemons a stats stream per container keeps busy).
# Usage: bench/containers.sh [N=100] [DUR=60]   (BIN=path/to/lookout to skip the release build)
# Loopback only; containers are labelled and removed on exit, every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100}
DUR=${2:-60}
TAG=lk-cg-bench-$$
TOKEN=lk_bench-token-$(date +%s)-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d " \n")
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  docker ps -aq --filter "label=lookout.bench=$TAG" | xargs -r docker rm -f >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

VENV=target/bench-venv
if [ ! -x "$VENV/bin/glances" ] || ! "$VENV/bin/python" -c 'import docker' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "glances[web,containers]==4.5.8"
fi
if [ -z "${BIN:-}" ]; then
  cargo build --release -q -p lookout
  BIN=target/release/lookout
fi
bash scripts/make-test-image.sh

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
engine_pids() { pgrep -x dockerd; pgrep -x containerd; }
engine_ticks() { local t=0; for p in $(engine_pids); do t=$((t + $(ticks "$p"))); done; echo "$t"; }
pct() { awk -v a="$1" -v b="$2" -v hz="$hz" -v d="$DUR" 'BEGIN{printf "%.2f", (b-a)/hz/d*100}'; }
rss() { awk '/VmRSS/{printf "%.1f", $2/1024}' "/proc/$1/status"; }
hwm() { awk '/VmHWM/{printf "%.1f", $2/1024}' "/proc/$1/status"; }
# Where the resident memory is: anonymous (heap, stacks), file-backed (the binary), threads.
rss_split() { awk '/RssAnon/{a=$2} /RssFile/{f=$2} /^Threads/{t=$2} END{printf "anon %.1f MB, file %.1f MB, %d threads", a/1024, f/1024, t}' "/proc/$1/status"; }
# Resident memory by mapping: the binary's own pages, other files, malloc's main heap, and
# anonymous maps (thread arenas, thread stacks, large allocations).
rss_maps() {
  awk -v bin="$(readlink -f "/proc/$1/exe")" '
    /^[0-9a-f]+-[0-9a-f]+ / { name = (NF >= 6) ? $6 : ""; next }
    /^Rss:/ { k = (name == bin) ? "binary" : (name ~ /^\//) ? "other files" : (name == "[heap]") ? "heap" : (name == "") ? "anonymous maps" : name; r[k] += $2 }
    END { for (k in r) if (r[k] >= 100) printf "%s %.1f MB; ", k, r[k]/1024 }' "/proc/$1/smaps"
}
# Reads URL once a second for DUR seconds (the dashboard's rhythm).
client() { local end=$((SECONDS + DUR)); while [ $SECONDS -lt $end ]; do curl -fs -o /dev/null "$@" || true; sleep 1; done; }

echo "== starting $N idle containers ($TAG)"
seq 1 "$N" | xargs -P 8 -I{} docker run -d --label "lookout.bench=$TAG" --name "$TAG-{}" \
  lookout-test/busybox:latest sleep 86400 >/dev/null
sleep 5

echo "== phase 0: baseline, ${DUR}s"
e0=$(engine_ticks); sleep "$DUR"; e1=$(engine_ticks)
base=$(pct "$e0" "$e1")

echo "== phase 1: lookout, ${DUR}s"
PORT=$(free_port)
LOOKOUT_TOKEN=$TOKEN LOOKOUT_STORE__ENABLED=true "$BIN" serve --http --listen 127.0.0.1:$PORT --data-dir "$work/data" >"$work/lookout.log" 2>&1 &
LPID=$!; pids+=("$LPID")
url=http://127.0.0.1:$PORT/api/v1/containers
for _ in $(seq 1 100); do curl -fs -H "Authorization: Bearer $TOKEN" "$url" >/dev/null 2>&1 && break; sleep 0.3; done
sleep 10   # past start-up (the first listing and inspects)
l0=$(ticks $LPID); e0=$(engine_ticks)
client -H "Authorization: Bearer $TOKEN" "$url"
l1=$(ticks $LPID); e1=$(engine_ticks)
lcpu=$(pct "$l0" "$l1"); lecpu=$(pct "$e0" "$e1"); lrss=$(rss $LPID); lhwm=$(hwm $LPID); lsplit=$(rss_split $LPID); lmaps=$(rss_maps $LPID)
seen=$(curl -fs -H "Authorization: Bearer $TOKEN" "$url" | python3 -c 'import json,sys; c=json.load(sys.stdin)["containers"]; print(sum(1 for x in c if x.get("cpu_percent") is not None and x["name"].startswith("'"$TAG"'")))')
kill "$LPID"; wait "$LPID" 2>/dev/null || true

echo "== phase 2: Glances, ${DUR}s"
GPORT=$(free_port)
"$VENV/bin/glances" -w --disable-webui -B 127.0.0.1 -p "$GPORT" -t 1 >"$work/glances.log" 2>&1 &
GPID=$!; pids+=("$GPID")
gurl=http://127.0.0.1:$GPORT/api/4/containers
for _ in $(seq 1 100); do curl -fs "$gurl" >/dev/null 2>&1 && break; sleep 0.3; done
sleep 10
g0=$(ticks $GPID); e0=$(engine_ticks)
client "$gurl"
g1=$(ticks $GPID); e1=$(engine_ticks)
gcpu=$(pct "$g0" "$g1"); gecpu=$(pct "$e0" "$e1"); grss=$(rss $GPID); gsplit=$(rss_split $GPID)
gseen=$(curl -fs "$gurl" | python3 -c 'import json,sys; print(sum(1 for x in json.load(sys.stdin) if x.get("name","").startswith("'"$TAG"'")))' || echo "?")

sum() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a+b}'; }
over() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a-b}'; }
cat <<REPORT

$N idle containers, 1 s sampling, ${DUR} s a phase, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)
lookout $(basename "$BIN") listed $seen of them with figures, Glances $gseen; engine = dockerd + containerd
| figure | lookout | Glances 4.5.8 | target (lookout) |
|---|---|---|---|
| own CPU, % of one core | $lcpu | $gcpu | ≤ 0.3 |
| engine CPU during the phase, % | $lecpu | $gecpu | |
| engine CPU with no monitor (baseline), % | $base | $base | |
| own + engine above baseline, % | $(sum "$lcpu" "$(over "$lecpu" "$base")") | $(sum "$gcpu" "$(over "$gecpu" "$base")") | ≤ 0.5 |
| own + engine, % | $(sum "$lcpu" "$lecpu") | $(sum "$gcpu" "$gecpu") | |
| RSS, MB (history store on) | $lrss (peak $lhwm) | $grss | ≤ 15 |
lookout RSS: $lsplit; by mapping: $lmaps
Glances RSS: $gsplit
REPORT
