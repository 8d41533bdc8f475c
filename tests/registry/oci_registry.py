"""A small in-test OCI distribution 1.1 registry that serves the **referrers API** — a deliberate fake.

Debian's ``docker-registry`` (distribution 2.8) has no referrers API and no registry on this machine
does, so the tests that need one run this: blobs (HEAD/GET, monolithic POST+PUT uploads), manifests
by tag or digest (GET/HEAD/PUT, ``Docker-Content-Digest``, ``OCI-Subject`` when a manifest has a
subject), tag lists and ``GET /v2/<name>/referrers/<digest>[?artifactType=]``. No auth. The tag-schema
fallback is tested against the real ``docker-registry``.

``tamper`` maps a blob digest to other bytes to serve under it (a registry that lies), to test that
the client checks every blob against its digest.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

_MANIFEST = re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)$")
_BLOB = re.compile(r"^/v2/(?P<name>.+)/blobs/(?P<digest>sha256:[0-9a-f]{64})$")
_UPLOAD = re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/(?P<id>[^/]*)$")
_REFERRERS = re.compile(r"^/v2/(?P<name>.+)/referrers/(?P<digest>sha256:[0-9a-f]{64})$")
_TAGS = re.compile(r"^/v2/(?P<name>.+)/tags/list$")


class OciRegistry:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[tuple[str, str], tuple[bytes, str]] = {}   # (name, digest) -> (raw, type)
        self.tags: dict[tuple[str, str], str] = {}                      # (name, tag) -> digest
        self.tamper: dict[str, bytes] = {}
        self.uploads: dict[str, str] = {}
        self.lock = threading.Lock()
        registry = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, status: int, body: bytes = b"", headers: dict | None = None, head: bool = False):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _error(self, status: int, code: str):
                self._send(status, json.dumps({"errors": [{"code": code, "message": code.lower()}]}).encode(),
                           {"Content-Type": "application/json"})

            def _body(self) -> bytes:
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def do_HEAD(self):
                self.do_GET(head=True)

            def do_GET(self, head: bool = False):
                url = urlsplit(self.path)
                path = url.path
                if path == "/v2/":
                    return self._send(200, b"{}", {"Content-Type": "application/json"}, head)
                if m := _REFERRERS.match(path):
                    want = parse_qs(url.query).get("artifactType", [""])[0]
                    return self._send(200, registry.referrers(m["name"], m["digest"], want),
                                      {"Content-Type": "application/vnd.oci.image.index.v1+json"}, head)
                if m := _TAGS.match(path):
                    tags = sorted(t for (n, t) in registry.tags if n == m["name"])
                    return self._send(200, json.dumps({"name": m["name"], "tags": tags}).encode(), {}, head)
                if m := _MANIFEST.match(path):
                    found = registry.manifest(m["name"], m["ref"])
                    if found is None:
                        return self._error(404, "MANIFEST_UNKNOWN")
                    raw, media_type, digest = found
                    return self._send(200, raw, {"Content-Type": media_type, "Docker-Content-Digest": digest}, head)
                if m := _BLOB.match(path):
                    data = registry.tamper.get(m["digest"], registry.blobs.get(m["digest"]))
                    if data is None:
                        return self._error(404, "BLOB_UNKNOWN")
                    return self._send(200, data, {"Content-Type": "application/octet-stream",
                                                  "Docker-Content-Digest": m["digest"]}, head)
                self._error(404, "NAME_UNKNOWN")

            def do_POST(self):
                m = _UPLOAD.match(urlsplit(self.path).path)
                if not m:
                    return self._error(404, "NAME_UNKNOWN")
                self._body()
                with registry.lock:
                    upload = str(len(registry.uploads) + 1)
                    registry.uploads[upload] = m["name"]
                self._send(202, b"", {"Location": f"/v2/{m['name']}/blobs/uploads/{upload}",
                                      "Docker-Upload-UUID": upload})

            def do_PUT(self):
                url = urlsplit(self.path)
                body = self._body()
                if m := _UPLOAD.match(url.path):
                    digest = parse_qs(url.query).get("digest", [""])[0]
                    if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
                        return self._error(400, "DIGEST_INVALID")
                    registry.blobs[digest] = body
                    return self._send(201, b"", {"Location": f"/v2/{m['name']}/blobs/{digest}",
                                                 "Docker-Content-Digest": digest})
                if m := _MANIFEST.match(url.path):
                    digest = "sha256:" + hashlib.sha256(body).hexdigest()
                    if m["ref"].startswith("sha256:") and m["ref"] != digest:
                        return self._error(400, "DIGEST_INVALID")
                    media_type = self.headers.get("Content-Type", "")
                    with registry.lock:
                        registry.manifests[(m["name"], digest)] = (body, media_type)
                        if not m["ref"].startswith("sha256:"):
                            registry.tags[(m["name"], m["ref"])] = digest
                    headers = {"Docker-Content-Digest": digest, "Location": f"/v2/{m['name']}/manifests/{digest}"}
                    subject = json.loads(body).get("subject")
                    if subject:
                        headers["OCI-Subject"] = subject["digest"]
                    return self._send(201, b"", headers)
                self._error(404, "NAME_UNKNOWN")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def manifest(self, name: str, ref: str) -> tuple[bytes, str, str] | None:
        digest = ref if ref.startswith("sha256:") else self.tags.get((name, ref))
        found = self.manifests.get((name, digest)) if digest else None
        return None if found is None else (found[0], found[1], digest)

    def referrers(self, name: str, subject: str, artifact_type: str) -> bytes:
        entries = []
        for (n, digest), (raw, media_type) in sorted(self.manifests.items()):
            doc = json.loads(raw)
            if n != name or (doc.get("subject") or {}).get("digest") != subject:
                continue
            kind = doc.get("artifactType") or doc.get("config", {}).get("mediaType", "")
            if artifact_type and kind != artifact_type:
                continue
            entry = {"mediaType": media_type, "digest": digest, "size": len(raw), "artifactType": kind}
            if doc.get("annotations"):
                entry["annotations"] = doc["annotations"]
            entries.append(entry)
        return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                           "manifests": entries}).encode()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # what tests/registry/test_pull_push._push_library needs of a server
    user = ""
    password = ""
