"""``--cache-from``: caches read from registries, pushed images (inline) and OCI layout directories
into one in-memory table, cache key -> :class:`RemoteEntry`.

Nothing but the manifest and the cache config is read at import time: a hit appends the layer's
descriptor to the image *lazily*, its bytes still in the registry. The registry and repository of
every cached blob go into the store's source index (:class:`registry_client.sources.SourceIndex`),
which is what lets a later push mount the blob across repositories instead of uploading it, and
:meth:`RemoteCache.ensure` fetch it when a step needs the bytes (a RUN on top, a COPY from the
stage): through the store's ingest, which checks the digest and size before the blob exists.

A cache that cannot be read is a warning and the build goes on without it, unless its spec says
``ignore-error=false`` (then :class:`~builder.errors.BuildError`).
"""

from __future__ import annotations

import base64
import json
import os
import threading
from typing import TYPE_CHECKING

from layers.descriptor import Descriptor
from layers.digest import Digest
from layers.errors import NotFound, PybuildError
from layers.value import frozen

from ..errors import BuildError
from .model import CACHE_CONFIG_TYPE, CacheConfig, CacheLayer
from .spec import CacheSpec

if TYPE_CHECKING:
    from layers.store import Store

__all__ = ["RemoteEntry", "RemoteCache", "INLINE_KEY", "entries_of"]

#: the image config field that carries an inline cache (BuildKit's name): base64 of a cacheconfig.v0
INLINE_KEY = "moby.buildkit.cache.v0"


@frozen
class RemoteEntry:
    """A step's cached result: its own layer (None: the step changed nothing), when it ran, where from."""

    key: str
    layer: Descriptor | None
    diff_id: Digest | None
    created: str
    source: str
    origin: str = "registry"  # how progress names the hit: registry (also inline) or local


def entries_of(config: CacheConfig, blobs: dict[Digest, Descriptor], source: str,
               origin: str = "registry") -> dict[str, RemoteEntry]:
    """The step entries of ``config``; ``blobs`` are the descriptors the manifest lists (a record
    whose chain names a blob the manifest does not list is left out)."""
    out: dict[str, RemoteEntry] = {}

    def chain(rec_index: int) -> tuple[CacheLayer, ...] | None:
        rec = config.records[rec_index]
        if not rec.results:
            return ()
        layers = config.chain(rec.results[0].layer)
        return layers if all(l.blob in blobs for l in layers) else None

    for i, rec in enumerate(config.records):
        if not rec.inputs or not rec.inputs[0] or rec.digest.algorithm != "sha256":
            continue  # a base record: a chain to stand on, not a step
        mine, below = chain(i), chain(rec.inputs[0][0].link)
        if mine is None or below is None:
            continue
        created = rec.results[0].created if rec.results else ""
        if len(mine) > len(below):
            top = mine[-1]
            desc = blobs[top.blob]
            layer = Descriptor(desc.media_type, desc.digest, desc.size)
            out.setdefault(rec.digest.hex, RemoteEntry(rec.digest.hex, layer, top.diff_id, created, source, origin))
        elif [l.blob for l in mine] == [l.blob for l in below]:
            out.setdefault(rec.digest.hex, RemoteEntry(rec.digest.hex, None, None, created, source, origin))
    return out


@frozen
class ImportReport:
    source: str
    records: int
    error: str = ""


class RemoteCache:
    """The imported caches of one build. ``remotes`` is a :class:`registry_client.cache.Remotes`."""

    def __init__(self, store: Store, remotes) -> None:
        self.store = store
        self.remotes = remotes
        self.entries: dict[str, RemoteEntry] = {}
        self.reports: list[ImportReport] = []
        self._dirs: dict[Digest, str] = {}  # blob -> OCI layout dir holding it (type=local)
        self._lock = threading.Lock()
        self.hits = 0

    def get(self, key: str) -> RemoteEntry | None:
        return self.entries.get(key)

    # -- import ---------------------------------------------------------------------------------------
    def load(self, specs: tuple[CacheSpec, ...], warn) -> None:
        """Import every spec; a failure is ``warn(text)``, or raised when the spec does not ignore errors."""
        for spec in specs:
            try:
                found = self._load_one(spec)
            except (PybuildError, OSError) as exc:
                text = f"cache {spec.describe()} could not be imported: {exc}"
                if not spec.ignore_error:
                    raise BuildError(f"--cache-from {text.removeprefix('cache ')}") from None
                warn(f"[warning] {text}; building without it")
                self.reports.append(ImportReport(spec.describe(), 0, str(exc)))
                continue
            new = {k: v for k, v in found.items() if k not in self.entries}
            self.entries.update(new)
            self.reports.append(ImportReport(spec.describe(), len(found)))

    def _load_one(self, spec: CacheSpec) -> dict[str, RemoteEntry]:
        if spec.type == "local":
            return self._load_dir(spec)
        from layers.reference import Reference
        from registry_client.cache import fetch_cache_documents
        from registry_client.sources import SourceIndex

        ref = Reference.parse(spec.ref)
        out: dict[str, RemoteEntry] = {}
        sources = SourceIndex(self.store.root)
        for doc in fetch_cache_documents(self.remotes, ref):  # an index: every platform's inline cache
            if doc.platform and doc.manifest.config.media_type == CACHE_CONFIG_TYPE:
                raise BuildError(f"{spec.ref}: an index of cache manifests is not a cache pybuild reads")
            config = self._config_of(doc.manifest.config.media_type, doc.config, spec)
            blobs = {d.digest: d for d in doc.manifest.layers}
            for digest in blobs:
                sources.record(digest, doc.registry, doc.repository)
            for key, entry in entries_of(config, blobs, spec.describe()).items():
                out.setdefault(key, entry)
        return out

    @staticmethod
    def _config_of(media_type: str, raw: bytes, spec: CacheSpec) -> CacheConfig:
        if media_type == CACHE_CONFIG_TYPE:
            return CacheConfig.parse(raw)
        try:  # an image: its config may carry an inline cache
            body = json.loads(raw)
            inline = body.get(INLINE_KEY) if isinstance(body, dict) else None
        except ValueError:
            inline = None
        if not isinstance(inline, str):
            raise BuildError(f"{spec.ref}: neither a cache manifest ({CACHE_CONFIG_TYPE} config) nor an image "
                             "with an inline cache (build it with --cache-to type=inline)")
        try:
            data = base64.b64decode(inline, validate=True)
        except ValueError:
            raise BuildError(f"{spec.ref}: the image config's {INLINE_KEY} is not base64") from None
        return CacheConfig.parse(data)

    def _load_dir(self, spec: CacheSpec) -> dict[str, RemoteEntry]:
        from layers.layout.base import check_layout_version
        from layers.manifest import Manifest

        root = spec.path
        try:
            with open(os.path.join(root, "oci-layout"), "rb") as f:
                check_layout_version(f.read(1 << 16))
            with open(os.path.join(root, "index.json"), "rb") as f:
                index = json.loads(f.read(1 << 20))
        except (OSError, ValueError) as exc:
            raise BuildError(f"{root}: not an OCI layout directory ({exc})") from None
        entries = index.get("manifests") if isinstance(index, dict) else None
        if not isinstance(entries, list) or not entries:
            raise BuildError(f"{root}/index.json: no manifests")
        desc = Descriptor.from_dict(entries[-1], "descriptor", "index.json manifests")
        manifest = Manifest.parse(_read_verified(root, desc, 4 << 20), desc.media_type)
        config = self._config_of(manifest.config.media_type, _read_verified(root, manifest.config, 16 << 20), spec)
        blobs = {d.digest: d for d in manifest.layers}
        with self._lock:
            for digest in blobs:
                self._dirs.setdefault(digest, root)
        return entries_of(config, blobs, spec.describe(), "local")

    # -- lazy bytes -----------------------------------------------------------------------------------
    def settle_local(self, layers) -> None:
        """Copy in the layers that only a ``type=local`` cache directory holds: a directory is no place
        other commands know to fetch from, and a local copy costs no network."""
        for desc in layers:
            if desc.digest in self._dirs:
                self.ensure(desc)

    def ensure(self, desc: Descriptor) -> None:
        """Make the blob ``desc`` present in the store (verified by digest); no-op if it is."""
        blobs = self.store.blobs
        if blobs.has(desc.digest):
            return
        root = self._dirs.get(desc.digest)
        if root is not None:
            with open(os.path.join(root, "blobs", desc.digest.algorithm, desc.digest.hex), "rb") as src, \
                    blobs.ingest(expected=desc.digest, size=desc.size) as ing:
                if not getattr(ing, "present", False):
                    src.seek(getattr(ing, "offset", 0))
                    while chunk := src.read(1 << 20):
                        ing.write(chunk)
                    ing.commit()
            return
        if self.remotes is None:
            raise NotFound(f"layer {desc.digest} is not in the store")
        self.remotes.fetch_missing(self.store, desc)


def _read_verified(root: str, desc: Descriptor, cap: int) -> bytes:
    if desc.size > cap:
        raise BuildError(f"{root}: blob {desc.digest} is {desc.size} bytes, over the {cap}-byte limit")
    with open(os.path.join(root, "blobs", desc.digest.algorithm, desc.digest.hex), "rb") as f:
        data = f.read(cap + 1)
    if len(data) != desc.size or not desc.digest.matches(data):
        raise BuildError(f"{root}: blob {desc.digest} does not match its digest")
    return data
