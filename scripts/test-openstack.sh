#!/usr/bin/env bash
# The OpenStack backend's end-to-end tests against real OpenStack services on 127.0.0.1.
# Starts the lab once (scripts/openstack-lab.sh: installs what is missing, reuses a running
# lab), runs the ignored tests of crates/lookout/tests/openstack_e2e.rs, then stops the lab
# (KEEP_LAB=1 leaves it running for the next run). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
t0=$SECONDS
# Build first, with the features scripts/test.sh uses (no rebuild after its cargo test).
cargo test --workspace --all-features --test openstack_e2e --no-run 2>&1 | tail -n 2
# Through a file, not `$(...)`: a lab process that kept the pipe open would hang the read.
mkdir -p target
scripts/openstack-lab.sh start >target/openstack-lab.env
. target/openstack-lab.env
echo "openstack lab ready after $((SECONDS - t0)) s"
stop() { [ -n "${KEEP_LAB:-}" ] || scripts/openstack-lab.sh stop || true; }
trap stop EXIT
rc=0
cargo test --workspace --all-features --test openstack_e2e -- --ignored --test-threads=1 || rc=$?
if [ $rc -ne 0 ]; then
  echo "openstack e2e failed; lab logs under ${LAB:-/var/tmp/lookout-openstack-lab}/stack" >&2
fi
echo "test-openstack.sh: $((SECONDS - t0)) s"
exit $rc
