#!/usr/bin/env bash
# Browser tests of the dashboard: headless Chromium (Debian's chromium + chromium-driver) driven
# by Selenium against a real lookout and a real Docker container. Prints `N passed, N failed`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! docker info >/dev/null 2>&1; then
  echo "SKIPPED: browser tests: no Docker engine answers"
  exit 0
fi
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if ((${#missing[@]})); then
  echo "test-browser: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  }
fi
venv=target/browser-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c 'import selenium' 2>/dev/null || "$venv/bin/pip" install -q 'selenium>=4.20,<5'
bash scripts/make-test-image.sh
[ -x target/debug/lookout ] || cargo build -p lookout
# Run lookout, the browser and the tests in a private network namespace holding only loopback:
# the page provably cannot reach the internet, and Chromium does not abort live connections
# (ERR_NETWORK_CHANGED) whenever Docker adds or removes a veth on the host.
if unshare --net true 2>/dev/null && command -v ip >/dev/null 2>&1; then
  exec unshare --net bash -c 'ip link set lo up && exec "$@"' _ "$venv/bin/python" tests/browser/run.py
fi
echo "test-browser: no private network namespace (unshare --net failed); running on the host network"
exec "$venv/bin/python" tests/browser/run.py
