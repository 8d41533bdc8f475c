"""``--cache-to``: the steps a build recorded -> a cacheconfig.v0 document and an OCI image manifest
whose config it is and whose layers are the cached blobs -> a registry, an OCI layout directory, or
(``type=inline``) the built image's own config.

``mode=min`` exports the records of the target stage and the stages it is built ``FROM`` (the
layers of the final image); ``mode=max`` every stage that ran. ``compression=`` re-encodes a cached
layer whose compression differs (same diff id, a new blob), fetching a lazy one first.
"""

from __future__ import annotations

import base64
import json
import os
from typing import TYPE_CHECKING

from layers.descriptor import Descriptor
from layers.digest import Digest
from layers.mediatype import MediaType
from layers.value import frozen

from .model import CACHE_CONFIG_TYPE, CREATED, UNCOMPRESSED, CacheConfig, CacheInput, CacheLayer, CacheRecord, CacheResult
from .records import StepRecord

if TYPE_CHECKING:
    from layers.manifest import Manifest
    from layers.store import Store

__all__ = ["CacheExport", "make_cache", "store_cache", "write_local", "inline_config"]


@frozen
class CacheExport:
    config: CacheConfig
    layers: tuple[Descriptor, ...]  # manifest layer descriptors (annotated with diff id and time)


def make_cache(records: list[StepRecord], convert=None) -> CacheExport:
    """The document for ``records``. ``convert(desc) -> desc`` may re-encode a layer (compression)."""
    layer_index: dict[tuple[Digest, int], int] = {}
    layers: list[CacheLayer] = []
    manifest_layers: dict[Digest, Descriptor] = {}
    converted: dict[Digest, Descriptor] = {}

    def top_of(rec: StepRecord) -> int:
        parent = -1
        for desc, diff_id in zip(rec.layers, rec.diff_ids):
            if desc.digest not in converted:
                converted[desc.digest] = convert(desc) if convert else desc
            blob = converted[desc.digest]
            slot = (blob.digest, parent)
            if slot not in layer_index:
                layer_index[slot] = len(layers)
                layers.append(CacheLayer(blob.digest, parent, blob.media_type, blob.size, diff_id))
                manifest_layers.setdefault(blob.digest, Descriptor(
                    blob.media_type, blob.digest, blob.size, annotations=((UNCOMPRESSED, str(diff_id)),)))
            parent = layer_index[slot]
        return parent

    index = {rec.key: i for i, rec in enumerate(records)}
    out: list[CacheRecord] = []
    for rec in records:
        top = top_of(rec)
        results = (CacheResult(top, rec.created),) if top != -1 else ()
        inputs = ((CacheInput(index[rec.parent]),),) if rec.parent in index else ()
        out.append(CacheRecord(Digest("sha256", rec.key), results, inputs))
    config = CacheConfig.build(tuple(layers), tuple(out))
    return CacheExport(config, tuple(_with_time(d, records) for d in manifest_layers.values()))


def _with_time(desc: Descriptor, records: list[StepRecord]) -> Descriptor:
    for rec in records:
        if rec.layers and rec.layers[-1].digest == desc.digest and rec.created:
            return Descriptor(desc.media_type, desc.digest, desc.size,
                              annotations=desc.annotations + ((CREATED, rec.created),))
    return desc


def recompressor(store: Store, want: str, ensure):
    """A ``convert`` for :func:`make_cache`: a layer in ``want`` compression (lazy ones fetched first)."""
    from layers.archive.compression import recompress

    def convert(desc: Descriptor) -> Descriptor:
        try:
            current = MediaType.compression(desc.media_type)
        except KeyError:
            return desc
        if current == want:
            return desc
        ensure(desc)
        with store.blobs.open(desc.digest, desc.size) as src:
            digest, size = recompress(src, store, current, want)
            src.verify_rest()
        return Descriptor(MediaType.layer_type(want), digest, size)

    return convert


def store_cache(store: Store, export: CacheExport) -> Manifest:
    """Put the config and the cache manifest in the store; the manifest."""
    from layers.manifest import Manifest

    raw = export.config.raw
    store.blobs.put_bytes(raw)
    config = Descriptor(CACHE_CONFIG_TYPE, Digest.from_bytes(raw), len(raw))
    manifest = Manifest.build(config, export.layers)
    store.blobs.put_bytes(manifest.raw)
    return manifest


def write_local(store: Store, manifest: Manifest, dest: str, ensure) -> None:
    """An OCI layout directory at ``dest`` (created or updated): blobs, ``index.json`` naming the
    cache manifest as ``latest``. Every blob is written to a temp name and renamed."""
    from layers.atomic import write_atomic

    blob_dir = os.path.join(dest, "blobs", "sha256")
    os.makedirs(blob_dir, exist_ok=True)
    for desc in (manifest.config, *manifest.layers):
        path = os.path.join(blob_dir, desc.digest.hex)
        if os.path.exists(path) and os.path.getsize(path) == desc.size:
            continue
        ensure(desc)
        with store.blobs.open(desc.digest, desc.size) as src:
            data_tmp = path + ".tmp"
            with open(data_tmp, "wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            src.verify_rest()
        os.replace(data_tmp, path)
    write_atomic(os.path.join(blob_dir, manifest.digest.hex), manifest.raw)
    write_atomic(os.path.join(dest, "oci-layout"), b'{"imageLayoutVersion":"1.0.0"}')
    entry = manifest.descriptor().to_dict()
    entry["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
    index = {"schemaVersion": 2, "mediaType": str(MediaType.OCI_INDEX), "manifests": [entry]}
    write_atomic(os.path.join(dest, "index.json"), json.dumps(index, sort_keys=True).encode())


def inline_config(config_raw: bytes, export: CacheExport) -> bytes:
    """The image config with the cache document in it (base64, BuildKit's ``moby.buildkit.cache.v0``)."""
    from .importer import INLINE_KEY

    body = json.loads(config_raw)
    body[INLINE_KEY] = base64.b64encode(export.config.raw).decode()
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
