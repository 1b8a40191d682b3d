"""Dashboard benchmark: lookout's web UI beside Glances' web UI, measured the same way in the
same run. See bench/dashboard.sh (which starts both) and docs/benchmarks.md (dashboard).

1. Page weight: bytes on the wire (Resource Timing `transferSize`, falling back to
   `encodedBodySize`) for everything the page loads until its first full render, cache off.
2. Time to first full render: navigation start → the first animation frame where the page
   shows real figures (a predicate checked each frame by a script injected before the page's
   own), cache off, median of N loads in headless Chromium over loopback.
3. Server CPU with 100 live clients for 60 s: lookout = 100 open SSE streams; Glances = 100
   clients doing what its web UI does (the requests it made in the browser, replayed at the
   UI's refresh period). CPU = Δ(utime+stime) of the server process / wall time.
"""

import json
import os
import ssl
import statistics
import sys
import threading
import time
import http.client
import urllib.parse

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CTX = ssl.create_default_context()
CTX.check_hostname = False
CTX.verify_mode = ssl.CERT_NONE
TICK = os.sysconf("SC_CLK_TCK")

# Per-frame "fully rendered" predicates, injected before the page's own scripts.
READY = {
    "lookout": """(() => { const c = document.querySelector('#cpu-total'), t = document.querySelector('#ct-table tbody');
        return c && /%/.test(c.textContent) && document.querySelector('#mem-used').textContent !== '–'
            && t && (t.rows.length > 0 || !document.querySelector('#ct-unavailable').hidden); })()""",
    # Glances' UI shows its CPU, MEM and process list once /api/4/all has answered.
    "glances": """(() => { const b = document.body; if (!b) return false; const t = b.innerText || '';
        return /CPU/.test(t) && /MEM/.test(t) && /\\d+\\.\\d%/.test(t) && document.querySelectorAll('tr, .table-row').length > 5; })()""",
}
PROBE = """
(() => {
  const ready = () => { try { return %s; } catch (e) { return false; } };
  const tick = () => { if (ready()) { window.__firstRender = performance.now(); } else requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
})();
"""


def cpu_secs(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / TICK


def driver():
    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--ignore-certificate-errors",
              "--window-size=1280,900", "--disable-gpu", "--no-first-run", "--disable-extensions",
              "--disable-background-networking", "--disable-component-update", "--disable-sync"):
        o.add_argument(a)
    o.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)


def page_runs(d, name, url, runs):
    d.execute_cdp_cmd("Network.enable", {})
    d.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
    sid = d.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PROBE % READY[name]})["identifier"]
    times, weights, reqs = [], [], []
    for i in range(runs + 1):
        d.get("about:blank")
        d.get_log("performance")
        d.get(url)
        t0 = time.time()
        while time.time() - t0 < 20:
            v = d.execute_script("return window.__firstRender || null")
            if v is not None:
                break
            time.sleep(0.02)
        else:
            raise RuntimeError(f"{name}: no full render within 20 s")
        # Bytes of everything loaded up to the first render (the live stream has not ended, so
        # it is not a finished resource entry and is not counted).
        w = d.execute_script("""const cut = window.__firstRender;
            const nav = performance.getEntriesByType('navigation')[0];
            let n = nav.transferSize || nav.encodedBodySize, items = [[nav.name, n]];
            for (const r of performance.getEntriesByType('resource')) if (r.responseEnd <= cut + 1) {
              const b = r.transferSize || r.encodedBodySize; n += b; items.push([r.name, b]); }
            return [n, items];""")
        if i == 0:
            reqs = [m for m in w[1]]
            continue  # first load warms the server and the browser process
        times.append(v)
        weights.append(w[0])
    d.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": sid})
    return times, weights, reqs


def replay_requests(d, url, seconds=10):
    """The API requests Glances' UI makes on its own over `seconds` (to replay them)."""
    d.get(url)
    d.get_log("performance")
    time.sleep(seconds)
    out = []
    for e in d.get_log("performance"):
        m = json.loads(e["message"])["message"]
        if m.get("method") == "Network.requestWillBeSent":
            out.append(m["params"]["request"]["url"])
    return out


def sse_clients(base, cookie, n, stop, counter):
    u = urllib.parse.urlsplit(base)

    def one():
        while not stop.is_set():
            try:
                c = http.client.HTTPSConnection(u.hostname, u.port, context=CTX, timeout=10)
                c.request("GET", "/api/v1/stream", headers={"Accept": "text/event-stream", "Cookie": cookie})
                r = c.getresponse()
                assert r.status == 200, r.status
                while not stop.is_set():
                    b = r.read1(65536)
                    if not b:
                        break
                    counter[0] += b.count(b"event: snapshot")
            except Exception:  # noqa: BLE001 - reconnect like a browser would
                time.sleep(0.5)

    ts = [threading.Thread(target=one, daemon=True) for _ in range(n)]
    for t in ts:
        t.start()
    return ts


def poll_clients(urls, period, n, stop, counter):
    def one(k):
        conns = {}
        time.sleep(period * k / n)  # spread like independent browsers
        while not stop.is_set():
            t0 = time.time()
            for url in urls:
                u = urllib.parse.urlsplit(url)
                try:
                    c = conns.get(u.netloc) or http.client.HTTPConnection(u.hostname, u.port, timeout=10)
                    conns[u.netloc] = c
                    c.request("GET", u.path + ("?" + u.query if u.query else ""))
                    c.getresponse().read()
                    counter[0] += 1
                except Exception:  # noqa: BLE001
                    conns.pop(u.netloc, None)
            time.sleep(max(0, period - (time.time() - t0)))

    ts = [threading.Thread(target=one, args=(k,), daemon=True) for k in range(n)]
    for t in ts:
        t.start()
    return ts


def measure_cpu(pid, seconds):
    c0, t0 = cpu_secs(pid), time.time()
    time.sleep(seconds)
    return 100 * (cpu_secs(pid) - c0) / (time.time() - t0)


def main():
    cfg = json.loads(sys.argv[1])
    runs, secs, clients = cfg.get("runs", 10), cfg.get("seconds", 60), cfg.get("clients", 100)
    res = {"runs": runs, "seconds": secs, "clients": clients}
    d = driver()
    try:
        # lookout: sign in once in the browser (the cookie then rides every load).
        lk = cfg["lookout"]
        d.get(lk["url"])
        time.sleep(0.5)
        d.execute_script("""return fetch('/api/v1/session', {method: 'POST', headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({token: arguments[0]})}).then(r => r.status).then(s => { localStorage.setItem('lookout.signedIn', '1'); return s; })""", lk["token"])
        cookie = next(c for c in d.get_cookies() if c["name"] == "__Host-lookout_session")
        t, w, items = page_runs(d, "lookout", lk["url"], runs)
        res["lookout"] = {"render_ms": t, "weight_bytes": w, "items": items}
        gl = cfg["glances"]
        t, w, items = page_runs(d, "glances", gl["url"], runs)
        res["glances"] = {"render_ms": t, "weight_bytes": w, "items": items}
        reqs = replay_requests(d, gl["url"], gl.get("watch", 12))
        api = [u for u in reqs if "/api/" in u]
        res["glances"]["ui_requests_12s"] = api
    finally:
        d.quit()

    # The Glances UI's periodic requests: those it repeated while we watched.
    counts = {}
    for u in res["glances"]["ui_requests_12s"]:
        counts[u] = counts.get(u, 0) + 1
    periodic = sorted({u for u, c in counts.items() if c >= 2}) or sorted(counts)
    res["glances"]["replayed"] = periodic
    watch = cfg["glances"].get("watch", 12)
    period = cfg["glances"].get("refresh") or max(1.0, watch / max(counts.values() or [1]))
    res["glances"]["replay_period_s"] = period

    for name, pid in (("lookout", cfg["lookout"]["pid"]), ("glances", cfg["glances"]["pid"])):
        res[name]["cpu_idle_pct"] = measure_cpu(pid, cfg.get("idle_seconds", 20))
        stop, counter = threading.Event(), [0]
        if name == "lookout":
            sse_clients(cfg["lookout"]["url"], f"__Host-lookout_session={cookie['value']}", clients, stop, counter)
        else:
            poll_clients(periodic, period, clients, stop, counter)
        time.sleep(3)  # all connected
        counter[0] = 0
        res[name]["cpu_100_pct"] = measure_cpu(pid, secs)
        res[name]["updates_received"] = counter[0]
        stop.set()
        time.sleep(1)
    json.dump(res, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
