"""Registries the registry tests start: Debian's ``docker-registry`` (CNCF distribution 2.8) three ways,
and an in-test token server that signs JWTs with ``cryptography`` the way Harbor's does.

Nothing here is mocked: the registry is the real binary on 127.0.0.1 with a free port.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

REGISTRY_BIN = shutil.which("docker-registry")
ROBOT_USER = "robot$proj+ci"
ROBOT_PASSWORD = "Rob0t-S3cret-pa55"
REFRESH_TOKEN = "refresh-Tok3n-for-robot"
BASIC_USER = "alice"
BASIC_PASSWORD = "alice-Secr3t-pw"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenServer:
    """Issues RS256 JWTs with an ``x5c`` header for users it knows; counts what it issued."""

    users: dict[str, str]
    #: OAuth2 refresh tokens (Docker's ``identitytoken``) -> user, accepted by POST
    refresh_tokens: dict[str, str] = field(default_factory=dict)
    service: str = "pybuild-test-registry"
    issuer: str = "pybuild-test-issuer"
    expires_in: int = 300
    issued: list = field(default_factory=list)
    denied: int = 0

    def start(self, workdir: Path) -> "TokenServer":
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pybuild test token issuer")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(self.key, hashes.SHA256()))
        self.cert_der = cert.public_bytes(serialization.Encoding.DER)
        self.cert_path = workdir / "token-cert.pem"
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                server._handle(self)

            def do_POST(self):
                server._handle_post(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.port = self.httpd.server_address[1]
        self.realm = f"http://127.0.0.1:{self.port}/token"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def sign(self, claims: dict) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(self.cert_der).decode()]}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        sig = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64url(sig)}"

    def _deny(self, req: BaseHTTPRequestHandler) -> None:
        self.denied += 1
        req.send_response(401)
        req.send_header("Content-Type", "application/json")
        body = b'{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}'
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)

    def _handle_post(self, req: BaseHTTPRequestHandler) -> None:
        """The OAuth2 form flow (``grant_type=refresh_token``), as Docker sends an ``identitytoken``."""
        length = int(req.headers.get("Content-Length") or 0)
        form = parse_qs(req.rfile.read(min(length, 1 << 16)).decode())
        user = self.refresh_tokens.get(form.get("refresh_token", [""])[0], "")
        if form.get("grant_type") != ["refresh_token"] or not user:
            return self._deny(req)
        scopes = [s for item in form.get("scope", []) for s in item.split(" ") if s]
        self._issue(req, user, scopes, "", key="access_token")

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        query = parse_qs(urlsplit(req.path).query)
        user = ""
        auth = req.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            if self.users.get(user) != password:
                return self._deny(req)
        self._issue(req, user, query.get("scope", []), query.get("account", [""])[0])

    def _issue(self, req: BaseHTTPRequestHandler, user: str, scopes: list[str], account: str,
               key: str = "token") -> None:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            repo, _, actions = rest.rpartition(":")
            if kind != "repository":
                continue
            granted = [a for a in actions.split(",") if a in ("pull", "push")] if user else []
            if granted:
                access.append({"type": "repository", "name": repo, "actions": granted})
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": user, "aud": self.service, "exp": now + self.expires_in,
                  "nbf": now - 5, "iat": now, "jti": hashlib.sha256(os.urandom(16)).hexdigest(), "access": access}
        self.issued.append({"user": user, "scopes": scopes, "account": account, "method": req.command})
        body = json.dumps({key: self.sign(claims), "expires_in": self.expires_in,
                           "issued_at": datetime.datetime.now(datetime.timezone.utc).isoformat()}).encode()
        req.send_response(200)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)


@dataclass
class RegistryServer:
    """A running ``docker-registry serve`` on 127.0.0.1."""

    kind: str
    host: str
    proc: subprocess.Popen
    workdir: Path
    token: TokenServer | None = None
    user: str = ""
    password: str = ""
    cert: Path | None = None

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.token is not None:
            self.token.stop()


def make_tls_cert(workdir: Path, ips: tuple[str, ...] = ()) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and ``ips`` (IP SANs) and its key, as PEM files."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ("127.0.0.1", *ips)]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = workdir / "tls-cert.pem", workdir / "tls-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def non_loopback_ipv4() -> str | None:
    """An IPv4 address of this machine that is not loopback (to test what loopback is exempt from)."""
    try:
        out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True,
                             text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in out.splitlines():
        parts = line.split()
        if "inet" in parts:
            return parts[parts.index("inet") + 1].split("/")[0]
    return None


def start_registry(kind: str, workdir: Path, *, tls: bool = False, ip: str = "127.0.0.1",
                   access_log: bool = False) -> RegistryServer:
    """Start a registry: ``kind`` is ``open``, ``basic`` (htpasswd) or ``token``; ``tls`` serves https
    (a certificate for 127.0.0.1 and ``ip``); ``ip`` is the address it listens on; ``access_log``
    writes one line per request to ``workdir/registry.log`` (what tests count blob GETs in)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    storage = workdir / "storage"
    storage.mkdir(exist_ok=True)
    lines = [
        "version: 0.1",
        "log:",
        "  level: error",
        "  accesslog:",
        f"    disabled: {'false' if access_log else 'true'}",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {storage}",
        "  delete:",
        "    enabled: true",
        "http:",
        f"  addr: {ip}:{port}",
        "  secret: pybuild-test-secret",
    ]
    token = None
    user = password = ""
    cert = None
    if tls:
        cert, key = make_tls_cert(workdir, () if ip == "127.0.0.1" else (ip,))
        lines += ["  tls:", f"    certificate: {cert}", f"    key: {key}"]
    if kind == "basic":
        user, password = BASIC_USER, BASIC_PASSWORD
        htpasswd = workdir / "htpasswd"
        out = subprocess.run(["htpasswd", "-iBn", user], input=password, capture_output=True, text=True, check=True)
        htpasswd.write_text(out.stdout)
        lines += ["auth:", "  htpasswd:", "    realm: pybuild-test", f"    path: {htpasswd}"]
    elif kind == "token":
        user, password = ROBOT_USER, ROBOT_PASSWORD
        token = TokenServer({ROBOT_USER: ROBOT_PASSWORD}, {REFRESH_TOKEN: ROBOT_USER}).start(workdir)
        lines += ["auth:", "  token:", f"    realm: {token.realm}", f"    service: {token.service}",
                  f"    issuer: {token.issuer}", f"    rootcertbundle: {token.cert_path}"]
    config = workdir / "config.yml"
    config.write_text("\n".join(lines) + "\n")
    log = open(workdir / "registry.log", "wb")
    proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    host = f"{ip}:{port}"
    deadline = time.monotonic() + 15
    scheme = "https" if tls else "http"
    import ssl

    ctx = ssl.create_default_context(cafile=str(cert)) if cert else None
    while True:
        try:
            urllib.request.urlopen(f"{scheme}://{host}/v2/", timeout=1, context=ctx)
            break
        except urllib.error.HTTPError:
            break  # 401: up and asking for credentials
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"docker-registry did not start: {(workdir / 'registry.log').read_text()[-2000:]}")
            time.sleep(0.05)
    return RegistryServer(kind, host, proc, workdir, token, user, password, cert)
