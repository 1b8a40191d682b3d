#!/usr/bin/env python3
"""Evaluates every query of every panel of a Grafana dashboard through a real Prometheus'
HTTP API (/api/v1/query), with the dashboard's variables substituted, and says which return
no series. Standard library only.

usage: query_panels.py PROMETHEUS_URL INSTANCE DASHBOARD.json [--no-gpu] [--no-containers]

A query must return at least one series, except: panels tagged "gpu" when --no-gpu is given
(the host has no GPU: lookout_gpu_up is 0), and the Containers row's panels when
--no-containers is given (no Docker engine). Those are reported as ALLOWED-EMPTY, never as
passed. Prints one line per query and a final `N passed, N failed` line; exit 1 on failure.
"""
import json
import sys
import urllib.parse
import urllib.request

RATE_INTERVAL = "10s"  # what Grafana's $__rate_interval is for a 1 s scrape interval and a short range


def query(url, expr):
    q = urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(f"{url}/api/v1/query?{q}", timeout=10) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(body)
    return body["data"]["result"]


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    url, instance, path = argv[0], argv[1], argv[2]
    no_gpu, no_containers = "--no-gpu" in argv, "--no-containers" in argv
    d = json.load(open(path))
    passed = failed = allowed = 0
    row = ""
    for p in d["panels"]:
        if p.get("type") == "row":
            row = p.get("title", "")
            continue
        may_be_empty = (no_gpu and "gpu" in p.get("tags", [])) or (no_containers and row == "Containers")
        for t in p.get("targets", []):
            expr = (t["expr"].replace("$instance", instance.replace(".", "\\\\."))
                    .replace("$__rate_interval", RATE_INTERVAL))
            name = f"{row} / {p['title']} [{t['refId']}]"
            try:
                result = query(url, expr)
            except Exception as e:  # a query Prometheus refuses fails
                print(f"FAIL {name}: {expr}: {e}")
                failed += 1
                continue
            if result:
                print(f"ok   {name}: {len(result)} series")
                passed += 1
            elif may_be_empty:
                why = "no GPU on this host" if "gpu" in p.get("tags", []) else "no Docker engine"
                print(f"ALLOWED-EMPTY {name}: {why}")
                allowed += 1
            else:
                print(f"FAIL {name}: no series for {expr}")
                failed += 1
    print(f"panel queries: {passed} passed, {failed} failed, {allowed} allowed empty")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
