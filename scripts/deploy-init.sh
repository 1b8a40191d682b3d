#!/usr/bin/env bash
# First-time set-up of a lookout deployment on this host: writes deploy/.env (settings detected
# here) and the secret files (random; modes below) unless they exist. Safe to re-run: it
# never overwrites an existing file. Prints the admin token once when it creates it.
# Env: ENV_FILE (deploy/.env), SECRETS_DIR (deploy/secrets), HTTPS_PORT, HTTPS_BIND, TLS_CN.
set -euo pipefail
# shellcheck source=deploy-lib.sh
source "$(dirname "$0")/deploy-lib.sh"
ENV_FILE=${ENV_FILE:-$DEPLOY_DIR/.env}
SECRETS_DIR=${SECRETS_DIR:-$DEPLOY_DIR/secrets}
SOCK=${DOCKER_SOCKET:-/var/run/docker.sock}

rand() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# The secret files are bind-mounted into the containers (compose secrets without Swarm), where
# non-root users (lookout 10001, prometheus, grafana 472) must read them: each file is 0644 and
# the directory 0700 root, so on the host only root can reach them.
umask 077
mkdir -p "$SECRETS_DIR"; chmod 0700 "$SECRETS_DIR"
new_secret() { # name value
  local f=$SECRETS_DIR/$1
  if [ -s "$f" ]; then return 1; fi
  printf '%s' "$2" >"$f.tmp" && chmod 0644 "$f.tmp" && mv "$f.tmp" "$f"
}
token="lk_$(rand)"
if new_secret lookout_token "$token"; then
  echo "created the admin token (LOOKOUT_TOKEN) in $SECRETS_DIR/lookout_token; it is:"
  echo "    $token"
fi
new_secret jwt_secret "$(rand)" && echo "created $SECRETS_DIR/jwt_secret" || true
new_secret grafana_admin_password "$(rand | cut -c1-24)" && echo "created $SECRETS_DIR/grafana_admin_password" || true
# Keystone's password for CONCERTIM_BACKEND=openstack: an empty file until you write it.
[ -e "$SECRETS_DIR/openstack_password" ] || install -m 0644 /dev/null "$SECRETS_DIR/openstack_password"

if [ ! -s "$ENV_FILE" ]; then
  gid=$(stat -c %g "$SOCK" 2>/dev/null || echo "")
  [ -n "$gid" ] || { echo "deploy-init: no Docker socket at $SOCK" >&2; exit 1; }
  prop=$(findmnt -no PROPAGATION / 2>/dev/null || echo shared)
  case "$prop" in shared*|slave*) rootmnt="ro,rslave" ;; *) rootmnt="ro" ;; esac
  umask 022
  cat >"$ENV_FILE" <<ENV
# written by scripts/deploy-init.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ); see deploy/env.example
DOCKER_GID=$gid
HTTPS_BIND=${HTTPS_BIND:-0.0.0.0}
HTTPS_PORT=${HTTPS_PORT:-443}
TLS_CN=${TLS_CN:-$(hostname -f 2>/dev/null || hostname)}
CONCERTIM_BIND=${CONCERTIM_BIND:-0.0.0.0}
CONCERTIM_PORT=${CONCERTIM_PORT:-42356}
LOOKOUT_SECRETS_DIR=$SECRETS_DIR
HOST_ROOT_MOUNT=$rootmnt
ENV
  echo "wrote $ENV_FILE (DOCKER_GID=$gid, HOST_ROOT_MOUNT=$rootmnt)"
fi
