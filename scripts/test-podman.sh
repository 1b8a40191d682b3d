#!/usr/bin/env bash
# Podman end to end (issue 17): Debian's podman runs a container rootful from the local test
# image, `podman system service` serves its Docker-compatible API on a private socket, and
# lookout's sampler lists the container by name with figures read from its cgroup
# (libpod-<id>), follows its events and controls it through Podman
# (crates/lookout-probe/tests/podman_live.rs). Also runs the Docker engine-events and cgroup
# parser suites. Prints `N passed, N failed`; exits non-zero on failure.
#
# In a container on a cgroup v1/v2 hybrid host, crun refuses ("cgroups in hybrid mode not
# supported") and raising RLIMIT_NPROC/NOFILE is not permitted: the container runs with runc
# and explicit ulimits, --network none (no CNI plugins needed). PODMAN_ONLY=1 runs the Podman
# test alone.
set -uo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   - $*"; }
bad() { failed=$((failed + 1)); echo "FAIL - $*"; }

if ! docker info >/dev/null 2>&1; then
  echo "SKIPPED: podman tests: no Docker engine answers (the test image is built with it)"
  echo "0 passed, 0 failed"
  exit 0
fi
if ! command -v podman >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq --no-install-recommends podman conmon uidmap catatonit) >/dev/null 2>&1
fi
RUNC=$(command -v runc || true)
if ! command -v podman >/dev/null || [ -z "$RUNC" ]; then
  echo "SKIPPED: podman tests: podman or runc cannot be installed"
  echo "0 passed, 0 failed"
  exit 0
fi
bash scripts/make-test-image.sh >/dev/null

W=$(mktemp -d /tmp/lk-cg-podman.XXXXXX)
NAME=lk-cg-podman-$$
SVC=
cleanup() {
  [ -n "$SVC" ] && kill "$SVC" 2>/dev/null
  timeout 30 podman rm -f "$NAME" >/dev/null 2>&1
  wait 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT

if ! timeout 120 podman image exists localhost/lookout-test/busybox:latest; then
  docker save lookout-test/busybox:latest | timeout 120 podman load >/dev/null 2>&1
fi
if timeout 60 podman --runtime "$RUNC" run -d --network none --ulimit nofile=1024:1024 \
  --ulimit nproc=1024:1024 --label lookout.test=1 --name "$NAME" \
  localhost/lookout-test/busybox:latest sleep 600 >"$W/run.log" 2>&1; then
  ok "podman runs a container here"
else
  bad "podman runs a container here: $(tail -1 "$W/run.log")"
  echo "$passed passed, $failed failed"
  exit 1
fi

SOCK=unix://$W/podman.sock
podman --runtime "$RUNC" system service --time=0 "$SOCK" >"$W/service.log" 2>&1 &
SVC=$!
for _ in $(seq 1 50); do curl -fs --unix-socket "$W/podman.sock" http://d/_ping >/dev/null 2>&1 && break; sleep 0.2; done
if curl -fs --unix-socket "$W/podman.sock" http://d/v1.41/containers/json | grep -q "$NAME"; then
  ok "podman system service answers Docker's API"
else
  bad "podman system service answers Docker's API: $(tail -2 "$W/service.log")"
fi

run_test() {
  local label=$1; shift
  if timeout 600 "$@" >"$W/test.log" 2>&1; then
    ok "$label"
  else
    bad "$label"; grep -A3 panicked "$W/test.log" | head -20
  fi
  grep -E "SKIPPED|podman container:|seen after" "$W/test.log" || true
}
run_test "sampler lists, samples and controls the Podman container" \
  env LOOKOUT_PODMAN_HOST="$SOCK" LOOKOUT_TEST_PODMAN_CONTAINER="$NAME" \
  cargo test -q -p lookout-probe --test podman_live -- --nocapture
[ -n "${PODMAN_ONLY:-}" ] || run_test "Docker events within 1 s, cgroup reader" \
  cargo test -q -p lookout-probe --test engine_events -- --nocapture
[ -n "${PODMAN_ONLY:-}" ] || run_test "cgroup file parsers (fixtures, properties)" \
  cargo test -q -p lookout-probe --test cgroup_files

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
