#!/usr/bin/env bash
# Shared helpers for the deploy scripts (source it; do not run it).
# Everything here runs on the deploying host, talks to the local Docker engine only and never
# writes the apt mirror's name into the repository: it is read from the host's apt sources.

DEPLOY_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEPLOY_DIR=$DEPLOY_ROOT/deploy
# One fixed compose project name everywhere: `ps`, `logs`, `down` always find the same stack.
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-lookout}

# docker-compose v1 (the hyphen form) with the fixed project and file; falls back to the v2
# plugin (`docker compose`) where only that exists.
# COMPOSE_ENV_FILE (optional) replaces deploy/.env, e.g. for the deploy test.
dc() {
  local args=(-p "$COMPOSE_PROJECT_NAME" -f "$DEPLOY_DIR/docker-compose.yml")
  if [ -n "${COMPOSE_ENV_FILE:-}" ]; then args+=(--env-file "$COMPOSE_ENV_FILE"); fi
  if command -v docker-compose >/dev/null 2>&1; then
    docker-compose "${args[@]}" "$@"
  else
    docker compose "${args[@]}" "$@"
  fi
}
have_compose() { command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1; }

# The Debian mirror the host's apt already uses for suite $1 (one-line .list or deb822 .sources).
detect_mirror() {
  local suite=${1:-bookworm} m=""
  m=$(grep -hsE "^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?https?://[^[:space:]]+[[:space:]]+${suite}[[:space:]]" \
        /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
      | head -n1 | sed -E 's/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/' || true)
  if [ -z "$m" ]; then
    m=$(awk -v s="$suite" 'BEGIN{RS="";FS="\n"}
          { u=""; ok=0
            for (i=1;i<=NF;i++) {
              if ($i ~ /^URIs:/)   { split($i,a," "); u=a[2] }
              if ($i ~ /^Suites:/) { n=split($i,b," "); for (j=2;j<=n;j++) if (b[j]==s) ok=1 }
            }
            if (ok && u!="") { print u; exit } }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  fi
  [ -n "$m" ] || { echo "detect_mirror: no apt source for suite '$suite'" >&2; return 1; }
  echo "$m"
}

# --build-arg for the proxy variables that are set (never written into a file or image).
proxy_build_args() {
  local v
  for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    if [ -n "${!v:-}" ]; then printf -- '--build-arg %s ' "$v"; fi
  done
}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# ---- Debian hosts in containers for the systemd and Ansible tests ---------------------------
SYSTEMD_TEST_IMAGE=${SYSTEMD_TEST_IMAGE:-lookout-test/systemd:bookworm}
# Builds $SYSTEMD_TEST_IMAGE (deploy/test-images/systemd) from the local base image if missing.
systemd_test_image() {
  "$DEPLOY_ROOT/scripts/deploy-base-image.sh" >/dev/null || return 1
  have_image "$SYSTEMD_TEST_IMAGE" && return 0
  # shellcheck disable=SC2046
  DOCKER_BUILDKIT=0 docker build --pull=false $(proxy_build_args) -t "$SYSTEMD_TEST_IMAGE" \
    "$DEPLOY_DIR/test-images/systemd" >"${WORK:-/tmp}/systemd-image.log" 2>&1 \
    || { tail -n 30 "${WORK:-/tmp}/systemd-image.log" >&2; return 1; }
}
# Starts container $1 with systemd as PID 1 and waits until it has booted (`running` or
# `degraded`). Not privileged: the host's cgroups (v1 here) and CAP_SYS_ADMIN + no seccomp
# filter, which systemd needs to give services their own mount namespace (ProtectSystem=,
# PrivateTmp=...): without them every sandboxed unit fails with 226/NAMESPACE.
start_systemd_container() { # name [docker run args...]
  local name=$1 i s; shift
  docker run -d --name "$name" --hostname "$name" --label lookout.test=1 \
    --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock \
    --cap-add SYS_ADMIN --security-opt seccomp=unconfined "$@" "$SYSTEMD_TEST_IMAGE" >/dev/null || return 1
  for ((i = 0; i < 60; i++)); do
    s=$(docker exec "$name" systemctl is-system-running 2>/dev/null)
    case "$s" in running|degraded) return 0 ;; esac
    sleep 1
  done
  echo "systemd in $name did not boot: ${s:-no answer}" >&2; return 1
}
