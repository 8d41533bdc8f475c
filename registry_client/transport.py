"""Which scheme and TLS settings to use for a registry host, and the httpx client factory.

Rules (Docker's, narrowed):

- A host listed as insecure (``--insecure-registry`` / ``PYBUILD_INSECURE_REGISTRIES``) is tried over
  https without certificate verification first, then over plain http if the TLS handshake fails.
- ``localhost``, ``127.0.0.0/8`` and ``::1`` (any port) are insecure by default, as Docker has them:
  a local registry may speak plain http, and one that speaks https is still reached.
- Every other host is https, verified against the system store or ``--tls-ca``.

The httpx client never follows redirects itself: :mod:`registry_client.client` follows them for
blobs only, so it can refuse downgrades and drop credentials on a host change.

Sockets are read up to :data:`READ_SIZE` bytes at a time (httpcore asks for 64 KiB): a 500 MB
pull is then a few hundred reads per layer instead of thousands, each of which costs Python
work under the GIL in h11 and in our sink (see ``bench/registry.py``). The rest of the HTTP
stack is httpx's own transport, unchanged.
"""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import field
from typing import TYPE_CHECKING, Any, Callable

from layers.errors import InvalidInput
from layers.value import frozen

if TYPE_CHECKING:  # pragma: no cover
    import httpx

__all__ = ["TransportConfig", "is_loopback", "host_of", "USER_AGENT", "READ_SIZE"]

USER_AGENT = "pybuild/0.1 (+OCI distribution client)"
#: the most bytes one socket read asks for
READ_SIZE = 1 << 20


def host_of(hostport: str) -> str:
    """The host part of ``host[:port]`` or ``[v6]:port``, lowercased."""
    if hostport.startswith("["):
        return hostport[1:hostport.index("]")].lower()
    if hostport.count(":") == 1:
        return hostport.split(":", 1)[0].lower()
    return hostport.lower()


def is_loopback(hostport: str) -> bool:
    """True for ``localhost`` and loopback addresses, with or without a port."""
    host = host_of(hostport)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@frozen
class TransportConfig:
    """How to reach registries. ``plain_http_loopback=False`` treats loopback hosts like any other
    (verified https only); ``transport`` replaces the HTTP transport (tests)."""

    insecure_registries: tuple[str, ...] = ()
    tls_ca: str | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    retries: int = 4
    backoff: float = 0.25
    transport: Any = field(default=None, compare=False)
    plain_http_loopback: bool = True

    def is_insecure(self, hostport: str) -> bool:
        wanted = {h.lower() for h in self.insecure_registries}
        return hostport.lower() in wanted or host_of(hostport) in wanted

    def schemes(self, hostport: str) -> tuple[tuple[str, bool], ...]:
        """The (scheme, verify_tls) pairs to try for ``hostport``, in order."""
        if self.is_insecure(hostport) or (self.plain_http_loopback and is_loopback(hostport)):
            return (("https", False), ("http", False))
        return (("https", True),)

    def verify(self, verify_tls: bool) -> Any:
        """``False``, ``True`` (the default CA store) or an SSL context for ``--tls-ca``."""
        if not verify_tls:
            return False
        if self.tls_ca:
            import ssl

            try:
                return ssl.create_default_context(cafile=self.tls_ca)
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
                raise InvalidInput(f"--tls-ca {self.tls_ca}: not a usable PEM CA bundle ({reason})") from None
        return True

    def _ssl_context(self, verify_tls: bool) -> Any:
        """One SSL context per (verification, CA file) in the process: loading a CA store takes ~0.1 s,
        and every registry, plain-http fallback and token client would otherwise load its own."""
        return _ssl_context(verify_tls, self.tls_ca if verify_tls else None, lambda: self.verify(verify_tls))

    def client(self, verify_tls: bool = True, *, pool: int = 16) -> "httpx.Client":
        """A fresh httpx client: no redirects, bounded pool, our User-Agent, identity encoding."""
        import httpx

        limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
        transport = self.transport
        if transport is None:
            transport = _transport(self._ssl_context(verify_tls), limits)
        return httpx.Client(
            follow_redirects=False,
            timeout=httpx.Timeout(self.read_timeout, connect=self.connect_timeout),
            limits=limits,
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
            trust_env=False,
            transport=transport,
        )


_SSL_CONTEXTS: dict[tuple[bool, str | None], Any] = {}
_SSL_LOCK = threading.Lock()


def _ssl_context(verify_tls: bool, tls_ca: str | None, verify: Callable[[], Any]) -> Any:
    """The cached SSL context for ``(verify_tls, tls_ca)`` (contexts are thread-safe once made)."""
    key = (verify_tls, tls_ca)
    with _SSL_LOCK:
        ctx = _SSL_CONTEXTS.get(key)
        if ctx is None:
            import httpx

            ctx = _SSL_CONTEXTS[key] = httpx.create_ssl_context(verify=verify(), trust_env=False)
        return ctx


def _transport(ssl_context: Any, limits: "httpx.Limits") -> "httpx.HTTPTransport":
    """httpx's HTTP transport over a connection pool whose sockets are read in :data:`READ_SIZE` pieces.

    httpx builds its pool without a way to pass httpcore's ``network_backend``; the pool is
    rebuilt with the same settings and our backend. Should a future httpx lay its transport out
    otherwise, the stock pool stays (slower reads, same behaviour); a test watches for that.
    """
    import httpcore
    import httpx

    from .readahead import ReadAheadBackend

    transport = httpx.HTTPTransport(verify=ssl_context, limits=limits, trust_env=False)
    if isinstance(getattr(transport, "_pool", None), httpcore.ConnectionPool):
        transport._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=ReadAheadBackend(READ_SIZE),
        )
    return transport
