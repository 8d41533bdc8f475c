"""Registry authentication as an ``httpx.Auth`` flow: anonymous, Basic, and Bearer token challenges.

The flow, per request (what Docker, containerd and Harbor agree on):

1. Send with a cached Bearer token for the request's scopes, or Basic if this registry asked
   for Basic before, or nothing.
2. On ``401`` with ``WWW-Authenticate: Bearer realm=...,service=...,scope=...``: get a token from
   the realm for the union of the request's scopes and the challenge's (Basic credentials on the
   token request when we have them, anonymous otherwise), cache it per scope set until it
   expires, and send again. A cached token that is refused (expired mid-push: Harbor's tokens
   last 30 minutes) is dropped and refreshed once.
3. On ``401`` with a ``Basic`` challenge: send again with Basic credentials. Harbor answers a
   request that carried a Bearer token with a Basic challenge; that is a retry, not a failure.
   A Basic challenge to a request that already carried Basic means the credentials are wrong.

Scopes: ``repository:<name>:pull`` for GET/HEAD, ``pull,push`` for writes or when the caller
declared a push (:meth:`RegistryAuth.want_push`), plus ``repository:<from>:pull`` for a
cross-repository mount. Credentials go to a token realm only over https, or over http when the
realm is the registry host itself on a loopback or insecure registry. Realms with user info, and
realms on loopback, link-local or metadata addresses for a registry that is not on loopback, are
refused outright (see :meth:`RegistryAuth._check_realm`).
Request bodies must be replayable (bytes): the flow may send a request twice. A 401 whose body is
not bounded by a ``Content-Length`` of at most 64 KiB is not retried (httpx reads it in full first).
"""

from __future__ import annotations

import base64
import ipaddress
import re
import threading
import time
from typing import Iterator
from urllib.parse import urlsplit

import httpx

from layers.value import frozen

from .credentials import Credentials
from .errors import (
    AuthenticationRequired,
    RegistryError,
    ResponseTooLarge,
    UnsafeRedirect,
)
from .transport import TransportConfig, is_loopback

__all__ = ["Challenge", "parse_challenge", "RegistryAuth", "basic_header"]

_TOKEN_BODY_MAX = 1 << 20
_CHALLENGE_BODY_MAX = 64 << 10
_TOKEN_MARGIN = 10.0
_DEFAULT_EXPIRY = 60.0
_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?')
_REPO_PATH = re.compile(r"^/v2/(.+?)/(?:manifests|blobs|tags|referrers)(?:/|$)")


@frozen(slots=True)
class Challenge:
    """One parsed ``WWW-Authenticate`` challenge."""

    scheme: str  # lowercased: "bearer" or "basic"
    realm: str = ""
    service: str = ""
    scope: tuple[str, ...] = ()


def parse_challenge(header: str) -> Challenge | None:
    """Parse ``Bearer realm="...",service="...",scope="a b"`` or ``Basic realm="..."``."""
    header = header.strip()
    if not header:
        return None
    scheme, _, rest = header.partition(" ")
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if not m or m.end() == pos:
            break
        value = m.group(2) if m.group(2) is not None else m.group(3)
        params[m.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
        pos = m.end()
    scope = tuple(s for s in params.get("scope", "").split(" ") if s)
    return Challenge(scheme.lower(), params.get("realm", ""), params.get("service", ""), scope)


_METADATA_HOSTS = frozenset({"100.100.100.200", "fd00:ec2::254", "metadata.google.internal"})


def _internal_host(host: str) -> bool:
    """Loopback, link-local, unspecified and cloud-metadata hosts: never a token realm of a remote registry."""
    host = host.lower().strip("[]")
    if host == "localhost" or host.endswith(".localhost") or host in _METADATA_HOSTS:
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_link_local or ip.is_unspecified


def basic_header(creds: Credentials) -> str:
    raw = f"{creds.username}:{creds.password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def _merge_scopes(scopes: set[str]) -> tuple[str, ...]:
    """``repository:a:pull`` + ``repository:a:push`` -> ``repository:a:pull,push``; sorted."""
    actions: dict[str, set[str]] = {}
    for scope in scopes:
        kind_name, _, acts = scope.rpartition(":")
        if not kind_name:
            kind_name, acts = scope, ""
        actions.setdefault(kind_name, set()).update(a for a in acts.split(",") if a)
    return tuple(sorted(f"{k}:{','.join(sorted(v))}" if v else k for k, v in actions.items()))


@frozen(slots=True)
class _Token:
    value: str
    expires: float


class RegistryAuth(httpx.Auth):
    """``httpx.Auth`` for one registry host. Thread-safe; holds the token cache of that registry."""

    requires_request_body = False
    requires_response_body = False

    def __init__(self, registry: str, scheme: str, creds: Credentials | None, config: TransportConfig):
        self.registry = registry
        self.scheme = scheme
        self.creds = creds
        self.config = config
        self._lock = threading.Lock()
        self._fetch_lock = threading.Lock()
        self._tokens: dict[tuple[str, ...], _Token] = {}
        self._push: set[str] = set()
        self._basic = False
        self._token_client: httpx.Client | None = None
        self.token_requests = 0  # how many tokens were fetched (tests and --debug read it)

    def want_push(self, repository: str) -> None:
        """Ask for ``pull,push`` on ``repository`` from the start (saves a second token round trip)."""
        with self._lock:
            self._push.add(repository)

    def close(self) -> None:
        if self._token_client is not None:
            self._token_client.close()

    # -- the flow ----------------------------------------------------------------------------------

    def scopes_for(self, request: httpx.Request) -> tuple[str, ...]:
        m = _REPO_PATH.match(request.url.path)
        if not m:
            return ()
        repo = m.group(1)
        write = request.method not in ("GET", "HEAD") or repo in self._push
        scopes = {f"repository:{repo}:pull,push" if write else f"repository:{repo}:pull"}
        source = request.url.params.get("from")
        if source:
            scopes.add(f"repository:{source}:pull")
        return _merge_scopes(scopes)

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        scopes = self.scopes_for(request)
        sent = self._authorize(request, scopes)
        fetched = False
        for _ in range(3):  # at most: fresh token, then Harbor's Basic fallback
            response = yield request
            if response.status_code != 401:
                return
            length = response.headers.get("content-length", "")
            if not length.isdigit() or int(length) > _CHALLENGE_BODY_MAX:
                return  # httpx reads a challenge's body before a retry: only bounded ones get one
            challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
            if challenge is None:
                return
            if challenge.scheme == "bearer":
                if fetched:
                    return  # a token fresh from the realm was refused: not allowed, report the 401
                wanted = _merge_scopes(set(scopes) | set(challenge.scope))
                refused = request.headers.get("Authorization", "")
                with self._fetch_lock:  # parallel transfers share one token fetch per scope set
                    with self._lock:
                        cached = self._tokens.get(wanted)
                    if cached is not None and cached.expires > time.monotonic() and \
                            f"Bearer {cached.value}" != refused:
                        token = cached  # another thread fetched it while this request was out
                    else:
                        token = self._fetch_token(challenge, wanted)
                        fetched = True
                    with self._lock:
                        self._tokens[scopes] = token
                        self._tokens[wanted] = token
                request.headers["Authorization"] = f"Bearer {token.value}"
                sent = "bearer"
            elif challenge.scheme == "basic":
                if self.creds is None or sent == "basic" or not self.creds.password:
                    return  # no credentials, or these ones were just refused
                with self._lock:
                    self._basic = True
                request.headers["Authorization"] = basic_header(self.creds)
                sent = "basic"
            else:
                return

    def _authorize(self, request: httpx.Request, scopes: tuple[str, ...]) -> str:
        now = time.monotonic()
        with self._lock:
            token = self._tokens.get(scopes)
            if token is not None and token.expires > now:
                request.headers["Authorization"] = f"Bearer {token.value}"
                return "bearer"
            basic = self._basic
        if basic and self.creds is not None:
            request.headers["Authorization"] = basic_header(self.creds)
            return "basic"
        return ""

    # -- tokens ------------------------------------------------------------------------------------

    def _check_realm(self, realm: str) -> tuple[str, bool]:
        """Return (realm, send_credentials); refuse realms we must not talk to.

        A realm on another public host is normal (Docker Hub's is ``auth.docker.io``), but these
        never are, whoever asks (CVE-2020-15157 and its kin in go-containerregistry and oras):
        a realm with user info; plain http for an https registry; and, unless the registry itself
        is on loopback, a loopback, link-local (cloud metadata), unspecified or metadata address.
        """
        parts = urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RegistryError(f"registry {self.registry}: token realm {realm[:200]!r} is not an http(s) URL")
        if "@" in parts.netloc:
            raise UnsafeRedirect(f"registry {self.registry}: refusing token realm with user info "
                                 f"({parts.scheme}://...@{parts.netloc.rpartition('@')[2][:100]})")
        if _internal_host(parts.hostname) and not is_loopback(self.registry):
            raise UnsafeRedirect(f"registry {self.registry}: refusing token realm on internal address "
                                 f"{parts.hostname[:100]!r}")
        if parts.scheme == "https":
            return realm, True
        if self.scheme == "https":
            raise UnsafeRedirect(f"registry {self.registry}: refusing plain-http token realm {realm[:200]!r} "
                                 "for an https registry")
        same_host = parts.netloc.lower() == self.registry.lower()
        trusted = is_loopback(parts.netloc) or self.config.is_insecure(parts.netloc)
        return realm, bool(same_host or trusted)

    def _client(self) -> httpx.Client:
        if self._token_client is None:
            self._token_client = self.config.client(verify_tls=not self.config.is_insecure(self.registry))
        return self._token_client

    def _fetch_token(self, challenge: Challenge, scopes: tuple[str, ...]) -> _Token:
        realm, send_creds = self._check_realm(challenge.realm)
        creds = self.creds if send_creds else None
        params: list[tuple[str, str]] = []
        if challenge.service:
            params.append(("service", challenge.service))
        params.extend(("scope", s) for s in scopes)
        who = f" as {creds.username!r}" if creds is not None and not creds.identity_token else ""
        try:
            with self._lock:
                client = self._client()
            if creds is not None and creds.identity_token:
                form = dict(params)
                form.update(grant_type="refresh_token", refresh_token=creds.identity_token, client_id="pybuild")
                form["scope"] = " ".join(scopes)
                request = client.build_request("POST", realm, data=form)
            else:
                if creds is not None:
                    params.append(("account", creds.username))
                headers = {"Authorization": basic_header(creds)} if creds is not None else {}
                request = client.build_request("GET", realm, params=params, headers=headers)
            response = client.send(request, stream=True)
            try:
                body = bytearray()
                for chunk in response.iter_raw(64 << 10):
                    body += chunk
                    if len(body) > _TOKEN_BODY_MAX:
                        raise ResponseTooLarge(f"registry {self.registry}: token response from {realm} is larger "
                                               f"than {_TOKEN_BODY_MAX} bytes")
            finally:
                response.close()
        except httpx.HTTPError as exc:
            raise AuthenticationRequired(f"registry {self.registry}: token request to {realm} failed: "
                                         f"{type(exc).__name__}") from None
        if response.status_code in (401, 403):
            raise AuthenticationRequired(
                f"registry {self.registry}: authentication failed{who} (token server {realm} answered "
                f"{response.status_code})", status=response.status_code)
        if response.status_code != 200:
            raise AuthenticationRequired(
                f"registry {self.registry}: token server {realm} answered {response.status_code}",
                status=response.status_code)
        import json

        try:
            data = json.loads(body)
            value = data.get("token") or data.get("access_token")
            expires_in = float(data.get("expires_in") or _DEFAULT_EXPIRY)
        except (ValueError, AttributeError, TypeError):
            raise AuthenticationRequired(f"registry {self.registry}: token server {realm} sent malformed JSON") from None
        if not isinstance(value, str) or not value:
            raise AuthenticationRequired(f"registry {self.registry}: token server {realm} sent no token")
        self.token_requests += 1
        return _Token(value, time.monotonic() + max(expires_in - _TOKEN_MARGIN, 1.0))
