#!/usr/bin/env bash
# The systemd unit (deploy/systemd/lookout.service) for real: a Debian container with systemd as
# PID 1 (deploy/test-images/systemd), the host-built lookout at the unit's path, the unit file
# byte for byte as shipped, and no /etc/lookout at all. Checks that it verifies, starts and
# serves, runs sandboxed as a non-root user with a 0700 state directory, restarts after a crash,
# reads an optional lookout.toml and lookout.env, and stops retrying a broken configuration.
# Prints PASS/FAIL per check and `N passed, N failed`; `SKIPPED: ...` without a Docker engine.
set -uo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=deploy-lib.sh
source scripts/deploy-lib.sh
T0=$SECONDS
UNIT=deploy/systemd/lookout.service
C=lookout-test-systemd

if ! command -v docker >/dev/null 2>&1 || ! timeout 20 docker info >/dev/null 2>&1; then
  echo "SKIPPED: systemd test: no Docker engine answers (docker info failed)"
  exit 0
fi
BIN=$(ls -t target/release/lookout target/debug/lookout 2>/dev/null | head -n1)
if [ -z "$BIN" ]; then cargo build -p lookout || exit 1; BIN=target/debug/lookout; fi
TMP=$(mktemp -d /tmp/lookout-systemd-test.XXXXXX)
cleanup() { docker rm -f "$C" >/dev/null 2>&1; rm -rf "$TMP"; }
trap cleanup EXIT
docker rm -f "$C" >/dev/null 2>&1

fails=0; passes=0
check() { # name command...
  local name=$1; shift
  if "$@" >"$TMP/check.out" 2>&1; then
    echo "PASS $name"; passes=$((passes + 1))
  else
    echo "FAIL $name"; sed 's/^/     | /' "$TMP/check.out" | tail -n 12; fails=$((fails + 1))
  fi
}
show() { sed 's/^/     /' "$TMP/check.out"; }
in_c() { docker exec "$C" bash -c "$*"; }
healthz() { # [port] [seconds]: 200 from /healthz inside the container
  local i
  for ((i = 0; i < ${2:-20}; i++)); do
    [ "$(in_c "curl -sk --max-time 3 -o /dev/null -w '%{http_code}' https://127.0.0.1:${1:-8443}/healthz")" = 200 ] && return 0
    sleep 1
  done
  in_c "systemctl status lookout --no-pager; journalctl -u lookout --no-pager | tail -n 5"; return 1
}

check "systemd test image ($SYSTEMD_TEST_IMAGE, built locally)" systemd_test_image
check "a container boots systemd as PID 1" start_systemd_container "$C"
in_c 'cat /proc/1/comm; systemctl --version | head -n1' >"$TMP/sd" 2>&1; sed 's/^/     /' "$TMP/sd"
echo "     ($((SECONDS - T0))s)"
# the binary without debug info: what a release package would hold, and a quicker copy
objcopy --strip-debug "$BIN" "$TMP/lookout" 2>/dev/null || cp "$BIN" "$TMP/lookout"
install_unit() {
  docker cp "$TMP/lookout" "$C:/usr/local/bin/lookout" && in_c 'chmod 0755 /usr/local/bin/lookout' &&
    docker cp "$UNIT" "$C:/etc/systemd/system/lookout.service" &&
    cmp <(in_c 'cat /etc/systemd/system/lookout.service') "$UNIT" && in_c 'systemctl daemon-reload'
}
check "install the binary and the unit exactly as shipped" install_unit
check "systemd-analyze verify lookout.service (the shipped file, its ExecStart present)" \
  in_c 'systemd-analyze verify /etc/systemd/system/lookout.service'
check "no configuration anywhere: /etc/lookout, lookout.toml, lookout.env absent" \
  in_c '! ls -d /etc/lookout /lookout.toml /etc/lookout.toml 2>/dev/null'
check "systemctl enable --now lookout" in_c 'systemctl enable --now lookout'
check "it serves with no configuration file: GET /healthz 200 (https://127.0.0.1:8443)" healthz
check "the service is active, not restarting (NRestarts=0)" bash -c \
  "[ \"\$(docker exec $C systemctl show -p ActiveState --value lookout)\" = active ] && [ \"\$(docker exec $C systemctl show -p NRestarts --value lookout)\" = 0 ]"
sandbox() {
  local pid; pid=$(in_c 'systemctl show -p MainPID --value lookout')
  in_c "grep -E '^(Uid|Gid|CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/$pid/status; stat -c '%a %U %n' /var/lib/private/lookout; readlink /var/lib/lookout"
  in_c "awk '/^Uid:/ {exit !(\$2 != 0)}' /proc/$pid/status" &&
    in_c "grep -Eq '^CapEff:[[:space:]]+0+$' /proc/$pid/status && grep -Eq '^CapBnd:[[:space:]]+0+$' /proc/$pid/status" &&
    in_c "grep -Eq '^NoNewPrivs:[[:space:]]+1$' /proc/$pid/status && grep -Eq '^Seccomp:[[:space:]]+2$' /proc/$pid/status" &&
    [ "$(in_c 'stat -c %a /var/lib/private/lookout')" = 700 ] &&
    [ "$(in_c "stat -c %u /var/lib/private/lookout")" = "$(in_c "awk '/^Uid:/ {print \$2}' /proc/$pid/status")" ]
}
check "sandboxed: non-root, no capabilities (effective, bounding), no_new_privs, seccomp; state dir 0700 its own" sandbox
show
ro_root() { # ProtectSystem=strict: the service's / is read-only, its state directory writable
  local pid; pid=$(in_c 'systemctl show -p MainPID --value lookout')
  in_c "cat /proc/$pid/mountinfo" | awk '$5 == "/" || $5 == "/var/lib/private/lookout" {m[$5] = $6}
    END {for (k in m) print k, m[k]; exit !(m["/"] ~ /^ro/ && m["/var/lib/private/lookout"] ~ /^rw/)}'
}
check "ProtectSystem=strict: / read-only in the service's mount namespace, its state dir read-write" ro_root
show
security_score() {
  in_c 'systemd-analyze security lookout --no-pager' >"$TMP/sec" 2>&1
  tail -n 1 "$TMP/sec"
  awk '/Overall exposure level/ {split($5, a, "."); exit !(a[1] + 0 < 3)}' "$TMP/sec"
}
check "systemd-analyze security: overall exposure below 3.0" security_score
show
crash() {
  local pid; pid=$(in_c 'systemctl show -p MainPID --value lookout')
  in_c "kill -KILL $pid"; sleep 7
  echo "after kill -KILL $pid: $(in_c 'systemctl show -p ActiveState -p NRestarts -p MainPID --value lookout | tr "\n" " "')"
  [ "$(in_c 'systemctl show -p NRestarts --value lookout')" = 1 ] && healthz
}
check "kill -KILL: restarted once (Restart=on-failure, RestartSec=5s), serves again" crash
show
optional_files() {
  in_c 'install -d -m 0755 /etc/lookout && printf "listen = \"127.0.0.1:9443\"\n" >/etc/lookout/lookout.toml &&
        install -m 0600 /dev/null /etc/lookout/lookout.env &&
        echo LOOKOUT_TOKEN=lk_systemd_test_token_0123456789abcdef0123456789 >/etc/lookout/lookout.env &&
        systemctl restart lookout' || return 1
  healthz 9443 || return 1
  local c; c=$(in_c "curl -sk -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer lk_systemd_test_token_0123456789abcdef0123456789' https://127.0.0.1:9443/api/v1/host")
  echo "settings from /etc/lookout/lookout.toml (listen 9443), token from lookout.env: GET /api/v1/host -> $c"
  [ "$c" = 200 ]
}
check "optional /etc/lookout/lookout.toml and lookout.env are read when present" optional_files
show
prop() { in_c "systemctl show -p $1 --value lookout"; }
broken_config() {
  in_c 'echo "listen = 5" >/etc/lookout/lookout.toml; systemctl restart lookout' 2>/dev/null
  local i n
  for ((i = 0; i < 60; i++)); do
    [ "$(prop ActiveState)" = failed ] && in_c 'journalctl -u lookout --no-pager | grep -q "Start request repeated too quickly"' && break
    sleep 1
  done
  n=$(prop NRestarts)
  echo "a broken lookout.toml: after ${i}s $(prop ActiveState), $n automatic restarts; the journal says:"
  in_c 'journalctl -u lookout --no-pager | grep -E "invalid|repeated too quickly" | tail -n 2 | cut -d" " -f5- | cut -c1-160'
  sleep 6
  echo "6 s later: $(prop ActiveState), $(prop NRestarts) automatic restarts"
  [ "$(prop ActiveState)" = failed ] && [ "$(prop NRestarts)" = "$n" ] &&
    in_c 'journalctl -u lookout --no-pager | grep -q "Start request repeated too quickly"'
}
check "a broken configuration: restarts stop at the start limit (5 starts in 120 s), no endless loop" broken_config
show

echo "systemd test took $((SECONDS - T0))s"
echo "systemd: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
