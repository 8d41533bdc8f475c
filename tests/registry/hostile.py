"""A deliberately hostile registry, in process (http.server thread), for SECURITY.md cases 13-19.

Each test installs ``routes``: ``(method, path) -> handler(req)``; a handler writes the whole
answer itself, so it can lie about sizes, send other bytes, stream forever or redirect anywhere.
Every request is logged with its headers so tests can check what the client sent.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import urlsplit


@dataclass
class Seen:
    method: str
    path: str
    headers: dict


class HostileRegistry:
    """``tls=(cert_path, key_path)`` serves https (a real TLS origin for the downgrade cases);
    ``ip`` is the address it listens on."""

    def __init__(self, tls: tuple | None = None, ip: str = "127.0.0.1") -> None:
        self.routes: dict[tuple[str, str], Callable] = {}
        self.seen: list[Seen] = []
        self.default_404 = True
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _any(self):
                path = urlsplit(self.path).path
                server.seen.append(Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
                handler = server.routes.get((self.command, path))
                if handler is None and path == "/v2/":
                    return send(self, 200, b"{}", {"Content-Type": "application/json"})
                if handler is None:
                    return send(self, 404, b'{"errors":[{"code":"NAME_UNKNOWN","message":"no such thing"}]}',
                                {"Content-Type": "application/json"})
                try:
                    handler(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _any

        self.httpd = ThreadingHTTPServer((ip, 0), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            import ssl

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(tls[0]), str(tls[1]))
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.host = f"{ip}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def requests(self, method: str, path_part: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and path_part in s.path]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def send(req: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict | None = None,
         length: int | None = None) -> None:
    req.send_response(status)
    for k, v in (headers or {}).items():
        req.send_header(k, v)
    req.send_header("Content-Length", str(len(body) if length is None else length))
    req.end_headers()
    if req.command != "HEAD":
        req.wfile.write(body)


def endless(req: BaseHTTPRequestHandler, status: int = 200, headers: dict | None = None, limit: int = 1 << 34) -> None:
    """Stream zeros with no Content-Length until the client hangs up (or ``limit`` bytes)."""
    req.send_response(status)
    for k, v in (headers or {}).items():
        req.send_header(k, v)
    req.send_header("Connection", "close")
    req.end_headers()
    chunk = b"\0" * 65536
    sent = 0
    while sent < limit:
        req.wfile.write(chunk)
        sent += len(chunk)
    req.close_connection = True


def serve_blob(data: bytes, *, stall_after: int | None = None, stalled: threading.Event | None = None,
               release: threading.Event | None = None, ranges: list | None = None):
    """A handler serving ``data`` with ``Range`` support; optionally stalls after ``stall_after`` bytes."""

    def handler(req: BaseHTTPRequestHandler) -> None:
        start = 0
        rng = req.headers.get("Range", "")
        if ranges is not None:
            ranges.append(rng)
        if rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
        body = data[start:]
        req.send_response(206 if start else 200)
        req.send_header("Content-Length", str(len(body)))
        if start:
            req.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        req.end_headers()
        if req.command == "HEAD":
            return
        if stall_after is None:
            req.wfile.write(body)
            return
        req.wfile.write(body[:stall_after])
        req.wfile.flush()
        if stalled is not None:
            stalled.set()
        if release is not None:
            release.wait(60)
        req.close_connection = True

    return handler


def serve_image(server: "HostileRegistry", repo: str, tag: str, manifest, blobs: dict, **overrides) -> None:
    """Route manifest (by tag and digest) and every blob of ``blobs`` (digest -> bytes)."""
    headers = {"Content-Type": manifest.media_type, "Docker-Content-Digest": str(manifest.digest)}
    for ident in (tag, str(manifest.digest)):
        server.routes[("GET", f"/v2/{repo}/manifests/{ident}")] = lambda r: send(r, 200, manifest.raw, headers)
        server.routes[("HEAD", f"/v2/{repo}/manifests/{ident}")] = lambda r: send(r, 200, manifest.raw, headers)
    for digest, data in blobs.items():
        handler = overrides.get(str(digest)) or serve_blob(data)
        server.routes[("GET", f"/v2/{repo}/blobs/{digest}")] = handler
