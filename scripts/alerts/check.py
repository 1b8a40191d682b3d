"""Reads the sink's records for the alert tests. Prints what it finds; exit 0 when found.

usage: check.py FILE PATH ALERTNAME STATUS [--after T]   (STATUS: firing | resolved)
Prints the receive time of the first matching record.
"""
import json
import sys

path_, route, name, status = sys.argv[1:5]
after = float(sys.argv[6]) if len(sys.argv) > 6 and sys.argv[5] == "--after" else 0.0


def matches(rec):
    if rec["path"] != route or rec["t"] < after or rec.get("status") != 200:
        return False
    body = rec["body"]
    if route in ("/am",):
        doc = json.loads(body)
        return any(a["labels"].get("alertname") == name and a["status"] == status for a in doc["alerts"])
    if route in ("/lookout", "/flaky"):
        doc = json.loads(body)
        return doc["alert"]["labels"]["alertname"] == name and doc["status"] == status
    if route == "/slack":
        return json.loads(body)["text"].startswith("[%s] %s" % (status.upper(), name))
    if route == "/ntfy":
        return rec.get("title") == "%s %s" % (name, status) and body.startswith("[%s]" % status.upper())
    return False


try:
    with open(path_) as f:
        for line in f:
            rec = json.loads(line)
            if matches(rec):
                print("%.3f" % rec["t"])
                sys.exit(0)
except FileNotFoundError:
    pass
sys.exit(1)
