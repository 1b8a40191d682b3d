"""A webhook sink for the alert tests: records every POST (path, headers we care about,
body, receive time) as one JSON line, and answers 200. Listens on 127.0.0.1 only.
With FAIL_FIRST=N the first N requests to /flaky answer 503 (exercises lookout's retries).

usage: python3 sink.py PORT OUTFILE
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1])
OUT = sys.argv[2]
FAIL_FIRST = int(sys.argv[3]) if len(sys.argv) > 3 else 0
lock = threading.Lock()
flaky_seen = 0


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        global flaky_seen
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(n, 1 << 20)).decode("utf-8", "replace")
        status = 200
        with lock:
            if self.path == "/flaky":
                flaky_seen += 1
                if flaky_seen <= FAIL_FIRST:
                    status = 503
            rec = {
                "t": time.time(),
                "path": self.path,
                "status": status,
                "title": self.headers.get("Title"),
                "content_type": self.headers.get("Content-Type"),
                "body": body,
            }
            with open(OUT, "a") as f:
                f.write(json.dumps(rec) + "\n")
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
