#!/usr/bin/env bash
# Deploys lookout with docker-compose on this host, in one go:
#   1. deploy-init.sh   deploy/.env and deploy/secrets/ (first time only; prints the admin token)
#   2. deploy-images.sh the images, built locally (LOOKOUT_BUILD=prebuilt|source)
#   3. docker-compose -p lookout up -d, with PROFILES (e.g. PROFILES="monitoring concertim")
# Re-running it is safe: it keeps the settings, secrets, certificates, logs and data.
set -euo pipefail
# shellcheck source=deploy-lib.sh
source "$(dirname "$0")/deploy-lib.sh"
"$(dirname "$0")/deploy-init.sh"
WITH_PROMETHEUS=0
for p in ${PROFILES:-}; do [ "$p" = monitoring ] && WITH_PROMETHEUS=1; done
WITH_PROMETHEUS=$WITH_PROMETHEUS "$(dirname "$0")/deploy-images.sh"
args=()
for p in ${PROFILES:-}; do args+=(--profile "$p"); done
dc "${args[@]}" up -d
dc "${args[@]}" ps
