#!/usr/bin/env python3
"""Attack clients for scripts/test-attack.sh: loopback only, bounded in count and time.

Standard library only (ssl, socket), so the suite needs nothing from PyPI.

  attack.py methods  HOST PORT COUNT NAME_BYTES   made-up methods over keep-alive TLS: prints statuses
  attack.py idle-h2  HOST PORT COUNT WAIT_S       COUNT h2 connections, one request each, then idle:
                                                  prints how many the server closed within WAIT_S
  attack.py hold     HOST PORT COUNT HOLD_S       COUNT h2 connections, one request each, held as live
                                                  idle clients HOLD_S (or until stdin closes): prints counts
"""

import json
import os
import resource
import select
import socket
import ssl
import sys
import time


def tls(alpn):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(alpn)
    return ctx


def connect(host, port, ctx, timeout=10):
    raw = socket.create_connection((host, port), timeout=timeout)
    return ctx.wrap_socket(raw, server_hostname=host)


def read_response(sock, buf):
    """One HTTP/1.1 response (Content-Length framed); returns (status, rest of buffer)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        rest += chunk
    return status, rest[length:]


def methods(host, port, count, name_bytes):
    """Made-up methods, a batch of requests per connection (keep-alive)."""
    ctx = tls(["http/1.1"])
    statuses = {}
    sent = 0
    deadline = time.monotonic() + 300
    while sent < count and time.monotonic() < deadline:
        sock = connect(host, port, ctx)
        buf = b""
        try:
            for _ in range(min(200, count - sent)):
                name = "X%07d" % sent
                name += "Y" * max(0, name_bytes - len(name))
                sock.sendall(f"{name} /api/v1/host HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                status, buf = read_response(sock, buf)
                statuses[status] = statuses.get(status, 0) + 1
                sent += 1
        except (ConnectionError, OSError):
            statuses["closed"] = statuses.get("closed", 0) + 1
            sent += 1
        finally:
            sock.close()
    print(json.dumps({"sent": sent, "statuses": {str(k): v for k, v in statuses.items()}}))


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def h2_frame(kind, flags, stream, payload=b""):
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


def h2_get(host, path):
    """HEADERS for GET https://host/path, HPACK literals without indexing (no dynamic table)."""
    def literal(index, value):
        v = value.encode()
        return bytes([index]) + bytes([len(v)]) + v  # 0000xxxx: literal, indexed name
    block = bytes([0x82, 0x87]) + literal(0x04, path) + literal(0x01, host)  # GET, https
    return h2_frame(0x1, 0x4 | 0x1, 1, block)  # END_HEADERS | END_STREAM


def h2_open(host, port, ctx, timeout=10):
    """A TLS connection speaking h2 with one GET /healthz sent."""
    s = connect(host, port, ctx, timeout=timeout)
    assert s.selected_alpn_protocol() == "h2", s.selected_alpn_protocol()
    s.sendall(H2_PREFACE + h2_frame(0x4, 0, 0) + h2_get(host, "/healthz"))
    s.setblocking(False)
    return s


def h2_pump(conns, seconds, stop=None):
    """Keeps the connections as a live but idle client would: acknowledges SETTINGS, answers
    PINGs, sends nothing else. Returns when `seconds` pass, `stop` (a file) becomes readable,
    or the server has closed every connection. Returns (indexes closed by the server, GOAWAYs)."""
    started = time.monotonic()
    open_set = set(range(len(conns)))
    goaway = 0
    while open_set and time.monotonic() - started < seconds:
        watch = [conns[i] for i in open_set] + ([stop] if stop else [])
        ready, _, _ = select.select(watch, [], [], 0.5)
        if stop in ready:
            break
        for s in ready:
            i = conns.index(s)
            try:
                data = s.recv(65536)
            except (ssl.SSLWantReadError, BlockingIOError):
                continue
            except OSError:
                data = b""
            if not data:
                open_set.discard(i)
                continue
            pos = 0
            while pos + 9 <= len(data):
                length = int.from_bytes(data[pos:pos + 3], "big")
                kind, flags = data[pos + 3], data[pos + 4]
                payload = data[pos + 9:pos + 9 + length]
                try:
                    if kind == 0x4 and not flags & 0x1:
                        s.sendall(h2_frame(0x4, 0x1, 0))
                    elif kind == 0x6 and not flags & 0x1:
                        s.sendall(h2_frame(0x6, 0x1, 0, payload))
                    elif kind == 0x7:
                        goaway += 1
                except OSError:
                    pass
                pos += 9 + length
    closed = set(range(len(conns))) - open_set
    return closed, goaway


def idle_h2(host, port, count, wait_s):
    """COUNT h2 connections, one request each, then idle: how many does the server close?"""
    raise_fd_limit()
    ctx = tls(["h2"])
    conns = [h2_open(host, port, ctx) for _ in range(count)]
    started = time.monotonic()
    closed, goaway = h2_pump(conns, wait_s)
    print(json.dumps({"opened": count, "closed_by_server": len(closed), "goaway_seen": goaway,
                      "seconds": round(time.monotonic() - started, 1)}))
    for s in conns:
        s.close()


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def hold(host, port, count, hold_s):
    """COUNT h2 connections (one request each), held open as live idle clients until stdin
    closes or HOLD_S passes. Connections the server refuses outright count as failed."""
    raise_fd_limit()
    ctx = tls(["h2"])
    conns, failed = [], 0
    deadline = time.monotonic() + 90  # a server that stops accepting must not stall the suite
    for _ in range(count):
        if time.monotonic() > deadline:
            failed += 1
            continue
        try:
            conns.append(h2_open(host, port, ctx, timeout=5))
        except (ConnectionError, OSError, ssl.SSLError, AssertionError):
            failed += 1
    print(json.dumps({"opened": len(conns), "refused_at_connect": failed}), flush=True)
    closed, _ = h2_pump(conns, hold_s, stop=sys.stdin)
    print(json.dumps({"closed_by_server_while_held": len(closed)}), file=sys.stderr)
    for s in conns:
        s.close()


def main():
    cmd, host, port, n, x = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    assert host in ("127.0.0.1", "localhost", "::1"), "loopback only"
    {"methods": methods, "idle-h2": idle_h2, "hold": hold}[cmd](host, port, n, x)


if __name__ == "__main__":
    main()
