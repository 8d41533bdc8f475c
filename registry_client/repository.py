"""Operations on one repository of a registry (:class:`Repository`): manifests by tag or digest
(verified against the digest asked for or announced), tags, blob HEAD/GET (streamed into the caller's
sink, resumable with ``Range``, never read past ``size + 1``), cross-repository mounts and uploads
(one PUT for small blobs, streamed PATCH chunks for big ones). Every request goes through
:meth:`registry_client.client.Registry.send`."""

from __future__ import annotations

import json
from contextlib import closing
from typing import TYPE_CHECKING, BinaryIO, Callable, Iterator

import httpx

from layers.descriptor import Descriptor
from layers.digest import Digest
from layers.errors import IntegrityError, InvalidDigest
from layers.mediatype import ACCEPT_MANIFESTS

from .errors import AuthenticationRequired, RegistryError, RegistryUnavailable, ResponseTooLarge, UnsafeRedirect
from .responses import MANIFEST_MAX, Document, read_capped, strip_params

if TYPE_CHECKING:
    from .client import Registry

__all__ = ["Repository", "CHUNK_SIZE", "MONOLITHIC_MAX", "iter_chunks"]

#: blobs up to this size go up in one PUT with the bytes in memory
MONOLITHIC_MAX = 8 << 20
#: bigger blobs go up in streamed PATCH chunks of this size
CHUNK_SIZE = 128 << 20
_UPLOAD_ATTEMPTS = 3
_READ = 1 << 20
_OCTET = "application/octet-stream"


class Repository:
    """Operations on ``<registry>/<name>``."""

    def __init__(self, registry: Registry, name: str) -> None:
        self.registry = registry
        self.name = name

    def __repr__(self) -> str:
        return f"Repository({self.registry.host}/{self.name})"

    def _url(self, suffix: str) -> str:
        return self.registry.url(f"/v2/{self.name}/{suffix}")

    def want_push(self) -> None:
        """Declare that we will write here, so the first token asks for ``pull,push``."""
        self.registry._connect()
        assert self.registry.auth is not None
        self.registry.auth.want_push(self.name)

    # -- manifests ---------------------------------------------------------------------------------

    def get_manifest(self, identifier: str, *, accept: str = ACCEPT_MANIFESTS) -> Document:
        """Fetch a manifest or index by tag or digest and verify its digest (see module docstring)."""
        what = f"manifest {self.registry.host}/{self.name}:{identifier}" if ":" not in identifier else \
            f"manifest {self.registry.host}/{self.name}@{identifier}"
        expected = Digest.parse(identifier) if ":" in identifier else None
        response = self.registry.send("GET", self._url(f"manifests/{identifier}"), what=what,
                                      headers={"Accept": accept})
        with closing(response):
            media_type = strip_params(response.headers.get("content-type", ""))
            header = response.headers.get("docker-content-digest", "").strip()
            raw = read_capped(response, MANIFEST_MAX, what)
        if expected is None and header:
            try:
                expected = Digest.parse(header)
            except InvalidDigest as exc:
                raise RegistryError(f"{what}: Docker-Content-Digest header: {exc}") from None
        if expected is not None:
            if not expected.matches(raw):
                got = Digest.from_bytes(raw, expected.algorithm)
                raise IntegrityError(f"{what}: content hashes to {got}, expected {expected}")
            digest = expected if expected.algorithm == "sha256" else Digest.from_bytes(raw)
        else:
            digest = Digest.from_bytes(raw)
        return Document(raw, media_type, digest)

    def head_manifest(self, identifier: str, *, accept: str = ACCEPT_MANIFESTS) -> Descriptor | None:
        """The descriptor of a remote manifest (from HEAD), or ``None`` when it does not exist."""
        what = f"manifest {self.registry.host}/{self.name}:{identifier}"
        response = self.registry.send("HEAD", self._url(f"manifests/{identifier}"), what=what,
                                      headers={"Accept": accept}, allow=(404,))
        response.close()
        if response.status_code == 404:
            return None
        header = response.headers.get("docker-content-digest", "")
        try:
            digest = Digest.parse(header.strip())
        except InvalidDigest as exc:
            raise RegistryError(f"{what}: Docker-Content-Digest header: {exc}") from None
        size = int(response.headers.get("content-length", "0") or 0)
        return Descriptor(strip_params(response.headers.get("content-type", "")), digest, size)

    def put_manifest(self, identifier: str, raw: bytes, media_type: str) -> Digest:
        """Upload manifest bytes under a tag or their digest; check the digest the registry reports."""
        digest = Digest.from_bytes(raw)
        what = f"push manifest {self.registry.host}/{self.name}:{identifier}"
        response = self.registry.send("PUT", self._url(f"manifests/{identifier}"), what=what, ok=(200, 201, 202),
                                      headers={"Content-Type": media_type}, content=raw)
        response.close()
        header = response.headers.get("docker-content-digest", "").strip()
        if header and header != str(digest):
            raise IntegrityError(f"{what}: registry reports digest {header[:80]}, we sent {digest}")
        return digest

    def tags(self) -> list[str]:
        what = f"tags of {self.registry.host}/{self.name}"
        response = self.registry.send("GET", self._url("tags/list"), what=what)
        with closing(response):
            body = read_capped(response, MANIFEST_MAX, what)
        try:
            tags = json.loads(body).get("tags") or []
        except (ValueError, AttributeError):
            raise RegistryError(f"{what}: malformed tag list") from None
        return [t for t in tags if isinstance(t, str)]

    # -- blobs -------------------------------------------------------------------------------------

    def blob_exists(self, desc: Descriptor) -> bool:
        """HEAD the blob: True when the registry has it with the expected size."""
        what = f"blob {self.registry.host}/{self.name}@{desc.digest}"
        response = self.registry.send("HEAD", self._url(f"blobs/{desc.digest}"), what=what,
                                      allow=(404, 301, 302, 303, 307, 308))
        # distribution with a storage redirect (Harbor on S3) answers a HEAD with a redirect too
        response = self.registry.follow(response, what, {}, method="HEAD", allow=(404,))
        response.close()
        if response.status_code == 404:
            return False
        size = response.headers.get("content-length")
        return size is None or not size.isdigit() or int(size) == desc.size

    def fetch_blob(self, desc: Descriptor, write: Callable[[bytes], object], *, offset: int = 0,
                   on_bytes: Callable[[int], None] | None = None) -> int:
        """Stream bytes ``[offset, size)`` of ``desc`` into ``write``; return the new offset.

        Raises :class:`IntegrityError` as soon as the body runs past ``desc.size`` (nothing past
        ``size + 1`` is read) or ends short. The digest is checked by the caller's sink (the store
        ingest), which has hashed the first ``offset`` bytes already.
        """
        what = f"blob {self.registry.host}/{self.name}@{desc.digest}"
        if offset >= desc.size:
            return offset
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        response = self.registry.send("GET", self._url(f"blobs/{desc.digest}"), what=what, ok=(200, 206),
                                      headers=headers, allow=(301, 302, 303, 307, 308))
        response = self.registry.follow(response, what, headers)
        position = offset
        with closing(response):
            skip = offset if (offset and response.status_code == 200) else 0
            _check_body_headers(response, desc, offset, skip, what)
            for chunk in _iter_body(response, what, lambda: position):
                if skip:
                    if len(chunk) <= skip:
                        skip -= len(chunk)
                        continue
                    chunk = chunk[skip:]
                    skip = 0
                if position + len(chunk) > desc.size:
                    raise IntegrityError(f"{what}: registry sent more than the {desc.size} bytes the descriptor says")
                write(chunk)
                position += len(chunk)
                if on_bytes is not None:
                    on_bytes(len(chunk))
        if position != desc.size:
            raise IntegrityError(f"{what}: registry sent {position} bytes, the descriptor says {desc.size}")
        return position

    def read_blob(self, desc: Descriptor, cap: int) -> bytes:
        """A small blob (a config) in memory, verified against digest and size."""
        if desc.size > cap:
            raise ResponseTooLarge(f"blob {desc.digest}: {desc.size} bytes is larger than the {cap}-byte limit")
        buf = bytearray()
        self.fetch_blob(desc, buf.extend)
        if not desc.digest.matches(bytes(buf)):
            raise IntegrityError(f"blob {self.registry.host}/{self.name}@{desc.digest}: content does not match its digest")
        return bytes(buf)

    def mount_blob(self, desc: Descriptor, source: str) -> bool:
        """Cross-repository mount from ``source`` (same registry); False when the registry declines."""
        what = f"mount {desc.digest} from {source} into {self.registry.host}/{self.name}"
        response = self.registry.send("POST", self._url("blobs/uploads/"), what=what, ok=(201, 202),
                                      params={"mount": str(desc.digest), "from": source}, allow=(401, 403, 404))
        response.close()
        if response.status_code == 201:
            return True
        if response.status_code == 202:  # declined: an upload session was opened instead; cancel it
            self._cancel(response)
        return False

    def _cancel(self, response: httpx.Response) -> None:
        location = response.headers.get("location")
        if not location:
            return
        try:
            self.registry.send("DELETE", str(response.request.url.join(location)), what="cancel upload",
                               ok=(200, 202, 204), allow=(404, 405)).close()
        except RegistryError:
            pass  # best effort: an abandoned upload session expires on the registry by itself

    def upload_blob(self, desc: Descriptor, source: Callable[[], BinaryIO], *, chunk_size: int = CHUNK_SIZE,
                    on_bytes: Callable[[int], None] | None = None) -> None:
        """Upload a blob: one PUT up to :data:`MONOLITHIC_MAX`, else streamed PATCH chunks then a closing PUT.

        ``source`` opens the local blob (a verifying reader: a local blob that does not match its
        digest fails here, not on the registry). A streamed chunk cannot be replayed, so a chunk that
        fails (connection lost, token expired while it was sent) restarts the blob in a new upload
        session, at most :data:`_UPLOAD_ATTEMPTS` times.
        """
        what = f"push blob {self.registry.host}/{self.name}@{desc.digest}"
        for attempt in range(_UPLOAD_ATTEMPTS):
            try:
                self._upload_once(desc, source, chunk_size, on_bytes, what)
                return
            except (RegistryUnavailable, AuthenticationRequired):
                if attempt == _UPLOAD_ATTEMPTS - 1:
                    raise

    def _upload_once(self, desc: Descriptor, source: Callable[[], BinaryIO], chunk_size: int,
                     on_bytes: Callable[[int], None] | None, what: str) -> None:
        response = self.registry.send("POST", self._url("blobs/uploads/"), what=what, ok=(202,))
        response.close()
        location = self._location(response, what)
        with source() as stream:
            if desc.size <= min(chunk_size, MONOLITHIC_MAX):
                data = _read_exact(stream, desc.size, what)
                if stream.read(1):  # also makes a verifying reader check the digest at EOF
                    raise IntegrityError(f"{what}: local blob is longer than its {desc.size}-byte descriptor")
                url = httpx.URL(location).copy_merge_params({"digest": str(desc.digest)})
                self.registry.send("PUT", str(url), what=what, ok=(201, 204), content=data,
                                   headers={"Content-Type": _OCTET}).close()
                if on_bytes is not None:
                    on_bytes(len(data))
                return
            sent = 0
            while sent < desc.size:
                n = min(chunk_size, desc.size - sent)
                response = self.registry.send(
                    "PATCH", location, what=what, ok=(202, 204), content=_stream_part(stream, n, what, on_bytes),
                    headers={"Content-Type": _OCTET, "Content-Length": str(n),
                             "Content-Range": f"{sent}-{sent + n - 1}"}, attempts=1)
                response.close()
                location = self._location(response, what)
                sent += n
            if stream.read(1):
                raise IntegrityError(f"{what}: local blob is longer than its {desc.size}-byte descriptor")
            url = httpx.URL(location).copy_merge_params({"digest": str(desc.digest)})
            self.registry.send("PUT", str(url), what=what, ok=(201, 204)).close()

    @staticmethod
    def _location(response: httpx.Response, what: str) -> str:
        location = response.headers.get("location")
        if not location:
            raise RegistryError(f"{what}: registry sent no upload Location")
        target = response.request.url.join(location)
        if response.request.url.scheme == "https" and target.scheme != "https":
            raise UnsafeRedirect(f"{what}: upload location downgrades to {target.scheme}")
        return str(target)


def _check_body_headers(response: httpx.Response, desc: Descriptor, offset: int, skip: int, what: str) -> None:
    """Refuse, before reading a byte, a blob body whose headers say it is not the bytes asked for.

    ``Content-Length`` must be the rest of the blob (``size - offset``, or all of it on a 200 to
    a ranged request); a 206 must start at ``offset``. A body without a length is read, and
    stopped at the first byte past ``size``.
    """
    declared = response.headers.get("content-length")
    if declared is not None:
        want = desc.size - offset + skip
        if not declared.strip().isdigit() or int(declared) != want:
            raise IntegrityError(f"{what}: registry announces {declared.strip()[:40]} bytes, the descriptor "
                                 f"leaves {want}")
    if response.status_code == 206:
        content_range = response.headers.get("content-range", "")
        if not content_range.startswith(f"bytes {offset}-"):
            raise IntegrityError(f"{what}: asked for bytes from {offset}, the registry sent range "
                                 f"{content_range[:80]!r}")


def _iter_body(response: httpx.Response, what: str, position: Callable[[], int]) -> Iterator[bytes]:
    """The body as it comes off the socket (no re-chunking copies), a dropped connection
    mapped to :class:`RegistryUnavailable`."""
    try:
        yield from response.iter_raw()
    except httpx.TransportError as exc:
        raise RegistryUnavailable(f"{what}: connection lost after {position()} bytes ({type(exc).__name__})") from None


def _stream_part(stream: BinaryIO, n: int, what: str, on_bytes: Callable[[int], None] | None) -> Iterator[bytes]:
    """Exactly ``n`` bytes of ``stream`` as an iterator of pieces (a request body that is never all in memory)."""
    left = n
    while left:
        chunk = stream.read(min(_READ, left))
        if not chunk:
            raise IntegrityError(f"{what}: local blob ended {left} bytes early")
        left -= len(chunk)
        if on_bytes is not None:
            on_bytes(len(chunk))
        yield chunk


def _read_exact(stream: BinaryIO, n: int, what: str) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            raise IntegrityError(f"{what}: local blob ended after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def iter_chunks(stream: BinaryIO, size: int = _READ) -> Iterator[bytes]:
    while chunk := stream.read(size):
        yield chunk
