# lookout container image: a Rust build stage and a slim Debian runtime with a non-root user.
# Written for the legacy builder too (no BuildKit, no `RUN --mount`, no heredocs), so it builds
# on Docker 20.10 with `DOCKER_BUILDKIT=0`. See docs/deploy.md.
#
#   Full build (compiles the workspace inside Docker; needs the builder image, ~10-15 min on 2 cores):
#     docker build -t lookout:latest .
#   Prebuilt binary (compiled on a host with the same glibc as bookworm, 2.36):
#     cargo build --release -p lookout
#     docker build --target runtime-prebuilt -t lookout:latest .
#
# The legacy builder runs every stage up to --target in file order, so the prebuilt target comes
# before the build stage: `--target runtime-prebuilt` never needs the builder image.

ARG BUILDER=lookout-build/rust:bookworm
ARG RUNTIME=debian:bookworm-slim

# ---- runtime-base: everything the runtime needs except the binary ---------------------------
FROM ${RUNTIME} AS runtime-base
ARG http_proxy
ARG https_proxy
ARG no_proxy
# ca-certificates: for HTTPS upstreams (OpenStack, /api/smart). bash (in the base) runs the health check.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 lookout \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/lookout \
      --shell /usr/sbin/nologin lookout \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/lookout
COPY deploy/lookout/entrypoint.sh /usr/local/bin/lookout-entrypoint
# Defaults for `docker run`: HTTPS (TLS 1.3, self-signed cert in the data dir) on all interfaces.
# The compose file switches to plain HTTP on the internal network, behind nginx.
ENV LOOKOUT_DATA_DIR=/var/lib/lookout \
    LOOKOUT_LISTEN=0.0.0.0:8443 \
    LOOKOUT_LOG__FORMAT=json \
    LOOKOUT_HOST__PROC_ROOT=/proc \
    LOOKOUT_HOST__SYS_ROOT=/sys \
    LOOKOUT_HOST__ROOT_FS=/
WORKDIR /
USER 10001:10001
VOLUME ["/var/lib/lookout"]
EXPOSE 8443
ENTRYPOINT ["/usr/local/bin/lookout-entrypoint"]
CMD ["serve"]

# ---- runtime-prebuilt: the runtime with a binary built outside Docker ------------------------
FROM runtime-base AS runtime-prebuilt
ARG LOOKOUT_BINARY=target/release/lookout
COPY ${LOOKOUT_BINARY} /usr/local/bin/lookout
RUN ["/usr/local/bin/lookout", "--version"]

# ---- build: compile the workspace with the local Rust builder image ---------------------------
FROM ${BUILDER} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
RUN cargo build --release --locked -p lookout \
 && install -D -m 0755 target/release/lookout /out/lookout \
 && rm -rf target

# ---- runtime (the default target): the runtime with the binary from the build stage -----------
FROM runtime-base AS runtime
COPY --from=build /out/lookout /usr/local/bin/lookout
RUN ["/usr/local/bin/lookout", "--version"]
