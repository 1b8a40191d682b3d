#!/usr/bin/env bash
# The whole test suite. Installs (Debian packages) and starts on 127.0.0.1 the real services
# the tests use, builds the local Docker test image, then runs fmt, clippy and every test.
# Runs as root on a fresh machine with no standard input; a second run is fast.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
step() { printf '\n== %s (%ss)\n' "$*" "$SECONDS"; }

step "packages"
need=()
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)   # the Docker test image
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)      # key pair checks
command -v openssl >/dev/null 2>&1 || need+=(openssl)                # TLS checks of the deploy test
if [ -x scripts/test-packages.sh ]; then mapfile -t -O "${#need[@]}" need < <(scripts/test-packages.sh); fi
if [ "${#need[@]}" -gt 0 ]; then
  echo "installing: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

step "docker test image"
if docker info >/dev/null 2>&1; then
  scripts/make-test-image.sh
  # Leftovers of an interrupted run would confuse the container tests.
  docker ps -aq --filter label=lookout.test=1 | xargs -r docker rm -f >/dev/null
else
  echo "no Docker engine answers: the container tests will say SKIPPED"
fi

if [ -x scripts/test-services.sh ]; then
  step "database services"
  # Through a file, not `$(...)`: nothing a started server inherits can hold a pipe open.
  mkdir -p target
  scripts/test-services.sh >target/test-services.env
  . target/test-services.env
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "cargo test"
# One failing suite does not hide the others' results: every test binary runs
# (--no-fail-fast), then the further suites below, then the failures are listed.
failed=()
cargo test --workspace --all-features --no-fail-fast 2>&1 | tee target/test-output.log ||
  failed+=("cargo test")
# Service-backed tests print SKIPPED lines; here every service was provided, so none may skip.
if grep -q '^SKIPPED:' target/test-output.log; then
  echo "some service-backed tests skipped although scripts/test.sh started their services:" >&2
  grep '^SKIPPED:' target/test-output.log >&2
  failed+=("cargo test (skipped service tests)")
fi
# Further suites that need more than cargo (the compose deployment, browsers): each script
# provides its own services and says SKIPPED with a reason where its engine is missing.
for extra in scripts/test-deploy.sh scripts/test-systemd.sh scripts/test-ansible.sh scripts/test-browser.sh scripts/test-openstack.sh scripts/test-promtool.sh scripts/test-openapi.sh scripts/test-attack.sh scripts/test-alerts.sh scripts/test-schemathesis.sh scripts/test-fleet.sh scripts/test-podman.sh; do
  if [ -x "$extra" ]; then
    step "$extra"
    bash "$extra" || failed+=("$extra")
  fi
done
step "done"
if [ "${#failed[@]}" -gt 0 ]; then
  printf 'failed: %s\n' "${failed[@]}" >&2
  exit 1
fi
