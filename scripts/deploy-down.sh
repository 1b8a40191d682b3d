#!/usr/bin/env bash
# Stops and removes the lookout stack's containers and networks (every profile). Volumes
# (certificates, logs, lookout's data, Prometheus, Grafana) are kept unless PURGE=1.
set -euo pipefail
# shellcheck source=deploy-lib.sh
source "$(dirname "$0")/deploy-lib.sh"
export DOCKER_GID=${DOCKER_GID:-$(stat -c %g "${DOCKER_SOCKET:-/var/run/docker.sock}" 2>/dev/null || echo 0)}
dc --profile monitoring --profile concertim down --remove-orphans ${PURGE:+-v}
