#!/usr/bin/env bash
# Builds the stack's images locally (no registry needed):
#   debian:bookworm-slim      debootstrap + docker import, only if missing (deploy-base-image.sh)
#   lookout/nginx:latest      deploy/nginx (Debian's nginx)
#   lookout/socket-proxy:latest deploy/socket-proxy (Debian's HAProxy: the Docker socket's allow-list)
#   lookout/prometheus:latest deploy/prometheus (Debian's prometheus), with WITH_PROMETHEUS=1 (default)
#   lookout:latest            the Dockerfile, one of:
#       LOOKOUT_BUILD=prebuilt (default): target `runtime-prebuilt` with a binary built on this host:
#           $LOOKOUT_BINARY, else the newer of target/release/lookout and target/debug/lookout
#           (debug info stripped on the way in; the host's glibc must be <= bookworm's 2.36)
#       LOOKOUT_BUILD=source: the full multi-stage build (target `runtime`), compiled in Docker with
#           lookout-build/rust:bookworm (made by deploy-builder-image.sh if missing; ~10-15 min)
# Layers are cached: a second run takes seconds.
set -euo pipefail
# shellcheck source=deploy-lib.sh
source "$(dirname "$0")/deploy-lib.sh"
export DOCKER_BUILDKIT=0          # the legacy builder works everywhere this runs
WORK=${WORK:-/tmp/lookout-deploy}
LOOKOUT_IMAGE=${LOOKOUT_IMAGE:-lookout:latest}
NGINX_IMAGE=${NGINX_IMAGE:-lookout/nginx:latest}
PROMETHEUS_IMAGE=${PROMETHEUS_IMAGE:-lookout/prometheus:latest}
SOCKET_PROXY_IMAGE=${SOCKET_PROXY_IMAGE:-lookout/socket-proxy:latest}
LOOKOUT_BUILD=${LOOKOUT_BUILD:-prebuilt}
mkdir -p "$WORK"

build() { # tag context [docker build args...]
  local tag=$1 ctx=$2 t0=$SECONDS old; shift 2
  old=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)
  # shellcheck disable=SC2046
  if ! docker build --pull=false $(proxy_build_args) "$@" -t "$tag" "$ctx" >"$WORK/build.log" 2>&1; then
    tail -n 40 "$WORK/build.log" >&2; echo "deploy-images: building $tag failed" >&2; return 1
  fi
  # the image this tag named before is now dangling: remove it (kept if a container still uses it)
  if [ -n "$old" ] && [ "$old" != "$(docker image inspect -f '{{.Id}}' "$tag")" ]; then
    docker rmi "$old" >/dev/null 2>&1 || true
  fi
  echo "image $tag: $((SECONDS-t0))s ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.1f MB", $1/1e6}'))"
}

"$(dirname "$0")/deploy-base-image.sh"
build "$NGINX_IMAGE" "$DEPLOY_DIR/nginx"
build "$SOCKET_PROXY_IMAGE" "$DEPLOY_DIR/socket-proxy"
if [ "${WITH_PROMETHEUS:-1}" = 1 ]; then build "$PROMETHEUS_IMAGE" "$DEPLOY_DIR/prometheus"; fi

case "$LOOKOUT_BUILD" in
  prebuilt)
    bin=${LOOKOUT_BINARY:-}
    if [ -z "$bin" ]; then
      for c in "$DEPLOY_ROOT/target/release/lookout" "$DEPLOY_ROOT/target/debug/lookout"; do
        if [ -x "$c" ] && { [ -z "$bin" ] || [ "$c" -nt "$bin" ]; }; then bin=$c; fi
      done
    fi
    [ -n "$bin" ] && [ -x "$bin" ] || { echo "deploy-images: no lookout binary; run: cargo build --release -p lookout" >&2; exit 1; }
    # A small context of its own: the binary (without debug info) and the entrypoint.
    ctx=$WORK/lookout-ctx
    rm -rf "$ctx"; mkdir -p "$ctx/deploy/lookout"
    cp "$DEPLOY_DIR/lookout/entrypoint.sh" "$ctx/deploy/lookout/"
    if command -v objcopy >/dev/null; then objcopy --strip-debug "$bin" "$ctx/lookout"; else cp "$bin" "$ctx/lookout"; fi
    echo "lookout binary: $bin ($(du -h "$ctx/lookout" | cut -f1) stripped)"
    build "$LOOKOUT_IMAGE" "$ctx" -f "$DEPLOY_ROOT/Dockerfile" --target runtime-prebuilt --build-arg LOOKOUT_BINARY=lookout
    rm -rf "$ctx"
    ;;
  source)
    "$(dirname "$0")/deploy-builder-image.sh"
    build "$LOOKOUT_IMAGE" "$DEPLOY_ROOT" -f "$DEPLOY_ROOT/Dockerfile" --target runtime
    ;;
  *) echo "deploy-images: LOOKOUT_BUILD must be prebuilt or source" >&2; exit 1 ;;
esac
