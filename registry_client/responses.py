"""Registry responses: capped body reads, the registry error JSON turned into typed errors, and the
:class:`Document` (manifest or index bytes as served) a manifest GET returns."""

from __future__ import annotations

import json

import httpx

from layers.digest import Digest
from layers.value import frozen

from .errors import (
    AccessDenied,
    AuthenticationRequired,
    ErrorDetail,
    RegistryError,
    RegistryUnavailable,
    RemoteNotFound,
    ResponseTooLarge,
)

__all__ = ["Document", "read_capped", "parse_errors", "error_for", "strip_params", "MANIFEST_MAX",
           "ERROR_BODY_MAX", "RETRY_STATUS"]

MANIFEST_MAX = 4 << 20
ERROR_BODY_MAX = 64 << 10
#: statuses worth another try (after a backoff) before they become an error
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


@frozen(slots=True)
class Document:
    """Raw manifest or index bytes as served, their content type, and their verified digest."""

    raw: bytes
    media_type: str
    digest: Digest

    @property
    def size(self) -> int:
        return len(self.raw)


def strip_params(content_type: str) -> str:
    """A Content-Type without its parameters (``; charset=...``)."""
    return content_type.split(";", 1)[0].strip()


def read_capped(response: httpx.Response, cap: int, what: str) -> bytes:
    """The body of a streamed ``response``, refusing more than ``cap`` bytes without reading on."""
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        response.close()
        raise ResponseTooLarge(f"{what}: response of {declared} bytes is larger than the {cap}-byte limit")
    if response.is_stream_consumed:  # already in memory (a response built from bytes, as in tests)
        if len(response.content) > cap:
            raise ResponseTooLarge(f"{what}: response is larger than the {cap}-byte limit")
        return response.content
    out = bytearray()
    for chunk in response.iter_raw(64 << 10):
        out += chunk
        if len(out) > cap:
            response.close()
            raise ResponseTooLarge(f"{what}: response is larger than the {cap}-byte limit")
    return bytes(out)


def parse_errors(body: bytes) -> tuple[ErrorDetail, ...]:
    """The ``errors`` list of a registry error body; empty when the body is not that JSON."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return ()
    items = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return ()
    out = []
    for item in items[:8]:
        if isinstance(item, dict):
            code, message = item.get("code"), item.get("message")
            out.append(ErrorDetail(str(code or "UNKNOWN")[:64], str(message or "")[:300]))
    return tuple(out)


def error_for(response: httpx.Response, what: str) -> RegistryError:
    """The typed error for a failed ``response`` (its body read up to :data:`ERROR_BODY_MAX`)."""
    status = response.status_code
    try:
        body = read_capped(response, ERROR_BODY_MAX, what)
    except (ResponseTooLarge, httpx.HTTPError):
        body = b""
    errors = parse_errors(body)
    if errors:
        detail = "; ".join(f"{e.message or e.code.lower()} ({e.code})" for e in errors[:3])
    else:
        detail = f"HTTP {status} {response.reason_phrase}".strip()
    message = f"{what}: {detail}"
    if status == 401:
        cls: type[RegistryError] = AuthenticationRequired
        message += " (log in with 'pybuild login')" if "UNAUTHORIZED" in {e.code for e in errors} or not errors else ""
    elif status == 403:
        cls = AccessDenied
    elif status == 404:
        cls = RemoteNotFound
    elif status in RETRY_STATUS:
        cls = RegistryUnavailable
    else:
        cls = RegistryError
    return cls(message, status=status, errors=errors)


