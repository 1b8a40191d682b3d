#!/usr/bin/env bash
# Builds the Rust builder image for the Dockerfile's `build` stage (lookout-build/rust:bookworm)
# from the HOST's toolchain: no toolchain can be downloaded inside a container on hosts without
# a registry. The host's CA bundle is copied in so that cargo reaches the crates registry through
# a TLS-intercepting proxy. Does nothing when the tag exists (FORCE=1 rebuilds).
# Env: TAG, BASE (debian:bookworm-slim), SYSROOT (rustc --print sysroot), CA_BUNDLE, WORK.
set -euo pipefail
# shellcheck source=deploy-lib.sh
source "$(dirname "$0")/deploy-lib.sh"
TAG=${TAG:-lookout-build/rust:bookworm}
BASE=${BASE:-debian:bookworm-slim}
WORK=${WORK:-/tmp/lookout-deploy}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
if have_image "$TAG" && [ -z "${FORCE:-}" ]; then echo "builder image $TAG: present"; exit 0; fi
have_image "$BASE" || "$(dirname "$0")/deploy-base-image.sh"
SYSROOT=${SYSROOT:-$(rustc --print sysroot)}
CTX=$WORK/rust-builder-ctx
rm -rf "$CTX"; mkdir -p "$CTX/rust"
t0=$SECONDS
# the toolchain without its 800 MB of offline HTML docs
tar -C "$SYSROOT" --exclude=./share/doc -c . | tar -C "$CTX/rust" -x
cp "$CA_BUNDLE" "$CTX/ca-bundle.crt"
cat >"$CTX/Dockerfile" <<DOCKERFILE
FROM $BASE
ARG http_proxy
ARG https_proxy
ARG no_proxy
RUN apt-get update \\
 && apt-get install -y --no-install-recommends gcc libc6-dev ca-certificates pkg-config \\
 && rm -rf /var/lib/apt/lists/*
COPY ca-bundle.crt /etc/ssl/certs/lookout-host-bundle.crt
COPY rust/ /usr/local/rust/
ENV PATH=/usr/local/rust/bin:\$PATH \\
    CARGO_HOME=/usr/local/cargo \\
    SSL_CERT_FILE=/etc/ssl/certs/lookout-host-bundle.crt \\
    CARGO_HTTP_CAINFO=/etc/ssl/certs/lookout-host-bundle.crt \\
    CARGO_TERM_COLOR=never
RUN rustc --version && cargo --version
DOCKERFILE
# shellcheck disable=SC2046
DOCKER_BUILDKIT=0 docker build -q --pull=false $(proxy_build_args) -t "$TAG" "$CTX" >/dev/null
rm -rf "$CTX"
echo "builder image $TAG: $((SECONDS-t0))s"
