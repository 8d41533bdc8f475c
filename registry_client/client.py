"""The OCI distribution API (spec v1.1, Docker registry v2): one :class:`Registry` per host, one
:class:`Repository` per repository name.

Contracts kept here:

- every request goes through :meth:`Registry.send`: retries with exponential backoff on connection
  errors, 429 and 5xx (``Retry-After`` honoured up to a cap); registry error JSON becomes a typed
  :class:`~registry_client.errors.RegistryError` with the registry's code and message;
- manifests are read to at most :data:`MANIFEST_MAX` bytes, error bodies to :data:`ERROR_BODY_MAX`;
- a manifest fetched by digest must hash to it, one fetched by tag must hash to the
  ``Docker-Content-Digest`` the registry sent (when it sent one);
- blob bodies are streamed into a caller's sink and never read past ``size + 1`` bytes;
- redirects are followed for blob GETs and HEADs only, never from https to http, and a hop to
  another host is sent without ``Authorization``.
"""

from __future__ import annotations

import random
import threading
import time

import httpx

from .auth import RegistryAuth
from .credentials import Credentials
from .errors import AuthenticationRequired, RegistryError, RegistryUnavailable, UnsafeRedirect
from .repository import CHUNK_SIZE, Repository
from .responses import ERROR_BODY_MAX, MANIFEST_MAX, RETRY_STATUS, Document, error_for
from .transport import TransportConfig

__all__ = ["Registry", "Repository", "Document", "MANIFEST_MAX", "ERROR_BODY_MAX", "CHUNK_SIZE", "error_for"]

_MAX_REDIRECTS = 5
_RETRY_AFTER_MAX = 10.0


class Registry:
    """A connection to one registry host (``host[:port]`` as the API is reached).

    Thread-safe: transfers of one pull or push share it. Use as a context manager or call
    :meth:`close`.
    """

    def __init__(self, host: str, *, config: TransportConfig | None = None, credentials: Credentials | None = None):
        self.host = host
        self.config = config or TransportConfig()
        self.credentials = credentials
        self._lock = threading.Lock()
        self._scheme = ""
        self._client: httpx.Client | None = None
        self._plain: httpx.Client | None = None
        self.auth: RegistryAuth | None = None

    def __enter__(self) -> "Registry":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for client in (self._client, self._plain):
            if client is not None:
                client.close()
        if self.auth is not None:
            self.auth.close()

    def repository(self, name: str) -> "Repository":
        return Repository(self, name)

    # -- connection --------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        self._connect()
        return f"{self._scheme}://{self.host}"

    def _connect(self) -> httpx.Client:
        with self._lock:
            if self._client is not None:
                return self._client
            choices = self.config.schemes(self.host)
            last: Exception | None = None
            attempts = max(1, self.config.retries) if len(choices) > 1 else 1
            for attempt in range(attempts):
                for scheme, verify in choices:
                    client = self.config.client(verify)
                    if len(choices) > 1:
                        try:  # probe: an insecure or loopback registry may speak https (unverified) or plain http
                            client.get(f"{scheme}://{self.host}/v2/").close()
                        except httpx.TransportError as exc:
                            client.close()
                            last = exc
                            continue
                    self._scheme = scheme
                    self.auth = RegistryAuth(self.host, scheme, self.credentials, self.config)
                    client.auth = self.auth
                    self._client = client
                    self._plain = self.config.client(verify)
                    return client
                if attempt < attempts - 1:  # neither answered: the registry may be restarting
                    self._sleep(attempt, None)
            raise RegistryUnavailable(f"registry {self.host}: cannot connect over https or http "
                                      f"({type(last).__name__}: {str(last)[:200]})")

    def url(self, path: str) -> str:
        return self.base_url + path

    def send(
        self,
        method: str,
        url: str,
        *,
        what: str,
        ok: tuple[int, ...] = (200,),
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        params: dict[str, str] | None = None,
        allow: tuple[int, ...] = (),
        authorized: bool = True,
        attempts: int | None = None,
    ) -> httpx.Response:
        """Send with retries; return the streamed response when its status is in ``ok`` or ``allow``.

        The caller must read or close the response. Other statuses raise the mapped error.
        ``attempts=1`` for a streamed body, which cannot be sent twice.
        """
        client = self._connect()
        if not authorized:
            assert self._plain is not None
            client = self._plain
        attempts = max(1, self.config.retries if attempts is None else attempts)
        for attempt in range(attempts):
            last_try = attempt == attempts - 1
            try:
                request = client.build_request(method, url, headers=headers, content=content, params=params)
                response = client.send(request, stream=True)
            except httpx.StreamError:  # a streamed body asked to be sent again (token expired mid-upload)
                raise AuthenticationRequired(f"{what}: authorization expired while a streamed body was sent") from None
            except httpx.TransportError as exc:
                if last_try:
                    raise RegistryUnavailable(f"{what}: {type(exc).__name__}: {str(exc)[:200] or 'connection failed'}") from None
                self._sleep(attempt, None)
                continue
            if response.status_code in ok or response.status_code in allow:
                return response
            if response.status_code in RETRY_STATUS and not last_try:
                retry_after = response.headers.get("retry-after")
                response.close()
                self._sleep(attempt, retry_after)
                continue
            raise error_for(response, what)
        raise AssertionError("unreachable")  # pragma: no cover

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = self.config.backoff * (2 ** attempt) * (1 + random.random() / 4)
        if retry_after and retry_after.strip().isdigit():
            delay = max(delay, min(float(retry_after), _RETRY_AFTER_MAX))
        time.sleep(delay)

    def ping(self) -> None:
        """Check that the host speaks the v2 API and that our credentials work (``GET /v2/``)."""
        response = self.send("GET", self.url("/v2/"), what=f"registry {self.host}", ok=(200,))
        response.close()

    def login_check(self) -> None:
        """Verify credentials as ``docker login`` does: ``GET /v2/``, answering its Basic or Bearer challenge."""
        self.ping()

    # -- redirects ---------------------------------------------------------------------------------

    def follow(self, response: httpx.Response, what: str, headers: dict[str, str], *,
               method: str = "GET", allow: tuple[int, ...] = (416,)) -> httpx.Response:
        """Follow ``response``'s redirects for a blob GET or HEAD; no credentials to other hosts, no downgrade."""
        origin = httpx.URL(self.base_url)
        hops = 0
        while response.status_code in (301, 302, 303, 307, 308):
            location = response.headers.get("location", "")
            current = response.request.url
            response.close()
            hops += 1
            if hops > _MAX_REDIRECTS:
                raise UnsafeRedirect(f"{what}: more than {_MAX_REDIRECTS} redirects")
            if not location:
                raise RegistryError(f"{what}: redirect without a Location header")
            target = current.join(location)
            if target.scheme not in ("http", "https"):
                raise UnsafeRedirect(f"{what}: redirect to a {target.scheme!r} URL refused")
            if current.scheme == "https" and target.scheme == "http":
                raise UnsafeRedirect(f"{what}: redirect from https to plain http ({target.host}) refused")
            same = (target.scheme, target.host, target.port) == (origin.scheme, origin.host, origin.port)
            response = self.send(method, str(target), what=what, ok=(200, 206), headers=headers,
                                 allow=(301, 302, 303, 307, 308, *allow), authorized=same)
        return response
