#!/usr/bin/env bash
# Ansible suite: ansible-lint and --syntax-check over deploy/ansible, then the playbook for real
# against two Debian containers with systemd as PID 1 (deploy/test-images/systemd, built
# locally), reached with the community.docker.docker connection. Checks: lookout installed and
# serving, the vault's token works and appears nowhere, file modes, second run changed=0,
# --check --diff, a changed setting restarts lookout on that host only, an upgrade keeps the data.
# Ansible and ansible-lint come from PyPI into target/ansible-venv (reused when present).
# Prints PASS/FAIL per check and `N passed, N failed`; `SKIPPED: ...` without a Docker engine.
set -uo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=deploy-lib.sh
source scripts/deploy-lib.sh
T0=$SECONDS
A=deploy/ansible
HOSTS=(lookout-ansible-1 lookout-ansible-2)
VENV=target/ansible-venv
# The example vault's password (deploy/ansible/README.md): a test password, not a secret.
VAULT_PASSWORD=lookout-example-vault

if ! command -v docker >/dev/null 2>&1 || ! timeout 20 docker info >/dev/null 2>&1; then
  echo "SKIPPED: ansible test: no Docker engine answers (docker info failed)"
  exit 0
fi
if ! "$VENV/bin/ansible-playbook" --version >/dev/null 2>&1 || ! "$VENV/bin/ansible-lint" --version >/dev/null 2>&1; then
  echo "installing ansible and ansible-lint from PyPI into $VENV"
  python3 -m venv "$VENV" && "$VENV/bin/pip" install -q 'ansible>=9,<11' 'ansible-lint>=24,<26' \
    || { echo "ansible: FAIL: pip install ansible ansible-lint failed"; echo "ansible: 0 passed, 1 failed"; exit 1; }
fi
export PATH=$PWD/$VENV/bin:$PATH ANSIBLE_CONFIG=$PWD/$A/ansible.cfg ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
BIN=$(ls -t target/release/lookout target/debug/lookout 2>/dev/null | head -n1)
if [ -z "$BIN" ]; then cargo build -p lookout || exit 1; BIN=target/debug/lookout; fi
TMP=$(mktemp -d /tmp/lookout-ansible-test.XXXXXX)
cleanup() {
  docker rm -f "${HOSTS[@]}" >/dev/null 2>&1
  if [ -f "$TMP/compose/deploy/.env" ]; then compose_down; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
docker rm -f "${HOSTS[@]}" >/dev/null 2>&1
printf '%s\n' "$VAULT_PASSWORD" >"$TMP/vault-pass"; chmod 0600 "$TMP/vault-pass"

fails=0; passes=0
check() { # name command...
  local name=$1 t=$SECONDS; shift
  if "$@" >"$TMP/check.out" 2>&1; then
    echo "PASS $name ($((SECONDS - t))s)"; passes=$((passes + 1))
  else
    echo "FAIL $name ($((SECONDS - t))s)"; sed 's/^/     | /' "$TMP/check.out" | tail -n 15; fails=$((fails + 1))
  fi
}
show() { sed 's/^/     /' "$TMP/check.out"; }
on() { local h=$1; shift; docker exec "$h" bash -c "$*"; }
echo "ansible: $(ansible --version | sed -n 1p), $(ansible-lint --nocolor --version 2>/dev/null | sed -n 1p)"

# -- static checks
check "ansible-lint (profile production) over deploy/ansible" bash -c \
  "cd $A && ANSIBLE_VAULT_PASSWORD_FILE=$TMP/vault-pass ansible-lint --nocolor"
show
check "ansible-playbook --syntax-check site.yml" \
  ansible-playbook -i "$A/inventory.example.yml" "$A/site.yml" --syntax-check --vault-password-file "$TMP/vault-pass"
TOKEN=$(ansible-vault view --vault-password-file "$TMP/vault-pass" "$A/group_vars/all/vault.yml" |
  sed -n 's/^vault_lookout_admin_token: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p')
check "the example vault decrypts with the test password and holds an admin token" test "${#TOKEN}" -ge 32
check "the vault file is encrypted (no secret in it in clear)" bash -c \
  "head -n1 $A/group_vars/all/vault.yml | grep -q '^\$ANSIBLE_VAULT;' && ! grep -qF -- '$TOKEN' $A/group_vars/all/vault.yml"

# -- targets: Debian hosts with systemd, no lookout, no Docker
check "systemd test image ($SYSTEMD_TEST_IMAGE, built locally)" systemd_test_image
boot() { local h; for h in "${HOSTS[@]}"; do start_systemd_container "$h" || return 1; done; }
check "two Debian containers boot systemd as PID 1 (${HOSTS[*]})" boot
objcopy --strip-debug "$BIN" "$TMP/lookout" 2>/dev/null || cp "$BIN" "$TMP/lookout"
inventory() { # [host-1 settings as YAML flow]
  cat >"$TMP/inventory.yml" <<INV
lookout:
  hosts:
    ${HOSTS[0]}:
      lookout_settings: ${1:-{\}}
    ${HOSTS[1]}:
  vars:
    ansible_connection: community.docker.docker
    ansible_python_interpreter: /usr/bin/python3
    lookout_binary_src: $TMP/lookout
INV
}
inventory
play() { # log-name [ansible-playbook args]: the JSON callback's output in $TMP/<log-name>.json
  local name=$1; shift
  ANSIBLE_STDOUT_CALLBACK=json ansible-playbook -i "$TMP/inventory.yml" "$A/site.yml" \
    --vault-password-file "$TMP/vault-pass" "$@" >"$TMP/$name.json" 2>"$TMP/$name.err"
  local rc=$?
  python3 - "$TMP/$name.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
for host, s in sorted(doc["stats"].items()):
    changed = [t["task"]["name"] for p in doc["plays"] for t in p["tasks"]
               if t["hosts"].get(host, {}).get("changed")]
    print(f"{host}: ok={s['ok']} changed={s['changed']} failed={s['failures']} "
          f"unreachable={s['unreachable']} changed tasks={changed}")
    for p in doc["plays"]:
        for t in p["tasks"]:
            r = t["hosts"].get(host, {})
            if r.get("failed") or r.get("unreachable"):
                print(f"  {host}: {t['task']['name']}: {str(r.get('msg', ''))[:300]}")
PY
  return $rc
}
stats() { grep "^$1:" "$TMP/$2.txt"; }
run_play() { play "$@" | tee "$TMP/$1.txt"; }
T1=$SECONDS
check "first run installs lookout on both hosts (failed=0, unreachable=0)" run_play run1
show; echo "     (first run $((SECONDS - T1))s)"
if grep -q 'failed=[1-9]\|unreachable=[1-9]' "$TMP/run1.txt" || [ ! -s "$TMP/run1.txt" ]; then
  tail -n 20 "$TMP/run1.err"
  echo "ansible: $passes passed, $((fails + 1)) failed (stopped: the first run failed)"; exit 1
fi

# -- what the first run made
healthz() { on "$1" "curl -sk --max-time 5 -o /dev/null -w '%{http_code}' https://127.0.0.1:8443/healthz"; }
all_healthy() { local h; for h in "${HOSTS[@]}"; do echo "$h: /healthz $(healthz "$h")"; [ "$(healthz "$h")" = 200 ] || return 1; done; }
check "lookout answers /healthz on both hosts" all_healthy
token_works() {
  local h c w
  for h in "${HOSTS[@]}"; do
    c=$(on "$h" "curl -sk -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer $TOKEN' https://127.0.0.1:8443/api/v1/host")
    w=$(on "$h" "curl -sk -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer lk_not_the_vault_token_000000000000000' https://127.0.0.1:8443/api/v1/host")
    echo "$h: vault token -> $c, another token -> $w"
    [ "$c" = 200 ] && [ "$w" = 401 ] || return 1
  done
}
check "the admin token from the vault works (200), another one does not (401)" token_works
show
check "the token is in no playbook output and in no process's command line" bash -c \
  "! grep -qF -- '$TOKEN' $TMP/run1.json $TMP/run1.err && ! docker exec ${HOSTS[0]} ps -eo args | grep -qF -- '$TOKEN'"
files() {
  local h=${HOSTS[0]}
  on "$h" 'stat -c "%a %U:%G %n" /etc/lookout /etc/lookout/lookout.env /etc/lookout/lookout.toml /usr/local/bin/lookout /var/lib/private/lookout'
  [ "$(on "$h" 'stat -c "%a %U:%G" /etc/lookout')" = "750 root:lookout" ] &&
    [ "$(on "$h" 'stat -c "%a %U:%G" /etc/lookout/lookout.env')" = "640 root:lookout" ] &&
    [ "$(on "$h" 'stat -c "%a %U:%G" /var/lib/private/lookout')" = "700 lookout:lookout" ] &&
    ! on "$h" 'runuser -u nobody -- cat /etc/lookout/lookout.env' 2>/dev/null
}
check "secrets file 0640 root:lookout (another user cannot read it), data dir 0700 lookout" files
show
static_user() {
  local h=${HOSTS[0]} pid
  pid=$(on "$h" 'systemctl show -p MainPID --value lookout')
  on "$h" "getent passwd lookout; grep -E '^(Uid|CapEff|NoNewPrivs):' /proc/$pid/status"
  [ "$(on "$h" "awk '/^Uid:/ {print \$2}' /proc/$pid/status")" = "$(on "$h" 'id -u lookout')" ] &&
    on "$h" 'getent passwd lookout' | grep -q ':/usr/sbin/nologin$' &&
    docker exec -i "$h" cmp /etc/systemd/system/lookout.service - <deploy/systemd/lookout.service
}
check "runs as the static system user lookout, unit = deploy/systemd/lookout.service" static_user
show

# -- idempotence, check mode
no_changes() { # log-name [args]: every host changed=0, and the token not in the output
  run_play "$@" && ! grep -v ' changed=0 ' "$TMP/$1.txt" | grep -q . && ! grep -qF -- "$TOKEN" "$TMP/$1.json" "$TMP/$1.err"
}
check "second run: changed=0 on both hosts" no_changes run2
show
check "--check --diff: succeeds, changed=0, no secret in its output" no_changes check --check --diff
show

# -- a changed setting on one host
pids() { local h; for h in "${HOSTS[@]}"; do on "$h" 'systemctl show -p MainPID --value lookout'; done | tr '\n' ' '; }
P1=$(pids)
inventory '{sampling: {interval_ms: 2000}}'
setting() {
  run_play setting || return 1
  local p2; p2=$(pids); echo "MainPIDs before: $P1 after: $p2"
  stats "${HOSTS[0]}" setting | grep -q "changed tasks=\['lookout : Settings (lookout.toml)', 'lookout : Restart lookout'\]" &&
    stats "${HOSTS[1]}" setting | grep -q ' changed=0 ' &&
    [ "$(cut -d' ' -f1 <<<"$P1")" != "$(cut -d' ' -f1 <<<"$p2")" ] &&
    [ "$(cut -d' ' -f2 <<<"$P1")" = "$(cut -d' ' -f2 <<<"$p2")" ] &&
    on "${HOSTS[0]}" 'grep -q "interval_ms = 2000" /etc/lookout/lookout.toml' &&
    [ "$(healthz "${HOSTS[0]}")" = 200 ]
}
check "a changed setting on ${HOSTS[0]}: lookout.toml + restart there, nothing else; ${HOSTS[1]} untouched" setting
show

# -- upgrade: another binary, the data directory kept
datadir() { on "${HOSTS[0]}" 'cd /var/lib/private/lookout && sha256sum tokens.json tls/cert.pem; stat -c "%s %n" history.db'; }
# A token made the way an operator would, inside the service's own sandbox and state directory.
UP_TOKEN=$(on "${HOSTS[0]}" 'systemd-run --wait --pipe --quiet -p User=lookout -p DynamicUser=yes \
  -p StateDirectory=lookout -p Environment=LOOKOUT_DATA_DIR=/var/lib/lookout \
  /usr/local/bin/lookout token create --name upgrade-test --scope read 2>/dev/null' | tail -n1)
upgrade_token_works() {
  # up to 5 s: the running lookout picks new tokens up from the file (issue 14: ~2 s)
  local c i
  for ((i = 0; i < 10; i++)); do
    c=$(on "${HOSTS[0]}" "curl -sk -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer $UP_TOKEN' https://127.0.0.1:8443/api/v1/host")
    [ "$c" = 200 ] && break
    sleep 0.5
  done
  echo "token made with lookout token create through systemd-run: $c after $i retries"; [ "$c" = 200 ]
}
check "lookout token create through systemd-run (the service's user and state directory) gives a working token" upgrade_token_works
D1=$(datadir)
upgrade() {
  # another build of the same program: the binary with bytes appended (an ELF file runs the same)
  { cat "$TMP/lookout"; printf '\n# lookout upgrade test\n'; } >"$TMP/lookout.new" && mv "$TMP/lookout.new" "$TMP/lookout" || return 1
  run_play upgrade || return 1
  local d2; d2=$(datadir)
  echo "data before:"; echo "$D1"; echo "data after:"; echo "$d2"
  stats "${HOSTS[0]}" upgrade | grep -q "changed tasks=\['lookout : Binary from the controller', 'lookout : Restart lookout'\]" &&
    [ "$(grep -v history.db <<<"$D1")" = "$(grep -v history.db <<<"$d2")" ] &&
    [ "$(awk '/history.db/ {print $1}' <<<"$d2")" -ge "$(awk '/history.db/ {print $1}' <<<"$D1")" ] &&
    docker exec -i "${HOSTS[0]}" cmp /usr/local/bin/lookout - <"$TMP/lookout" && token_works && upgrade_token_works
}
check "upgrade (a new binary): replaced and restarted; tokens, certificate and history kept" upgrade
show

# -- the compose method, on this host itself (ansible_connection: local), when no lookout stack
# runs here: the images of scripts/deploy-images.sh, HTTPS on 127.0.0.1:18443, torn down after.
compose_method() {
  local dir=$TMP/compose
  cat >"$TMP/compose-inventory.yml" <<INV
lookout:
  hosts:
    localhost:
  vars:
    ansible_connection: local
    ansible_python_interpreter: $(command -v python3)
    ansible_become: false
    lookout_install_method: compose
    lookout_compose_dir: $dir
    lookout_compose_src: $PWD/deploy
    lookout_compose_env: {HTTPS_BIND: 127.0.0.1, HTTPS_PORT: 18443, TLS_CN: localhost, HOST_ROOT_MOUNT: ro, LOOKOUT_DEPLOY_TEST: 1}
INV
  local name c
  for name in compose1 compose2; do
    ANSIBLE_STDOUT_CALLBACK=json ansible-playbook -i "$TMP/compose-inventory.yml" "$A/site.yml" \
      --vault-password-file "$TMP/vault-pass" >"$TMP/$name.json" 2>"$TMP/$name.err" || { tail -n 5 "$TMP/$name.err"; return 1; }
    python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["stats"]["localhost"]; print(sys.argv[2], s)' "$TMP/$name.json" "$name"
  done
  c=$(curl -sk -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" https://127.0.0.1:18443/api/v1/host)
  echo "through nginx with the vault's token: $c; secrets dir $(stat -c '%a %U' "$dir/deploy/secrets")"
  [ "$c" = 200 ] && [ "$(stat -c %a "$dir/deploy/secrets")" = 700 ] &&
    python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["stats"]["localhost"]["changed"] != 0)' "$TMP/compose2.json" &&
    ! grep -qF -- "$TOKEN" "$TMP/compose1.json" "$TMP/compose2.json"
}
compose_down() {
  docker-compose -p lookout -f "$TMP/compose/deploy/docker-compose.yml" --env-file "$TMP/compose/deploy/.env" \
    down -v -t 5 >/dev/null 2>&1
}
if [ -n "$(docker ps -aq --filter label=com.docker.compose.project=lookout)" ]; then
  echo "NOTE compose method not run: a lookout stack exists on this host"
elif ! command -v docker-compose >/dev/null || ! WITH_PROMETHEUS=0 scripts/deploy-images.sh >"$TMP/images.log" 2>&1; then
  echo "NOTE compose method not run: docker-compose or the images are missing"; tail -n 5 "$TMP/images.log"
else
  check "compose method on this host: stack up, the vault's token works through nginx, second run changed=0" compose_method
  show
  compose_down
fi

echo "ansible test took $((SECONDS - T0))s"
echo "ansible: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
