"""docker-archive (``docker save``'s ``manifest.json`` + config + layer tars) to OCI images: each layer
is kept as it is, its uncompressed digest must equal the config's ``rootfs.diff_ids`` entry, and a
manifest is built and stored for it."""

from __future__ import annotations

import io
import json

from layers.archive.compression import open_decompressed, sniff
from layers.config import ImageConfig
from layers.descriptor import Descriptor
from layers.digest import Digest, VerifyingReader
from layers.errors import IntegrityError, InvalidDocument, InvalidReference
from layers.manifest import Manifest
from layers.mediatype import MediaType
from layers.reference import Reference

from .base import COPY_CHUNK, BlobSource, BlobStore, LoadedImage, read_blob
from .tarstream import Ingested

__all__ = ["from_docker_manifest"]


def _sniff(store: BlobSource, digest: Digest, size: int) -> str | None:
    """``"gzip"``, ``"zstd"`` or ``None`` from a blob's first bytes."""
    reader = store.open(digest, size)
    try:
        return sniff(reader.read(4))
    finally:
        reader.close()


def _uncompressed_digest(store: BlobSource, digest: Digest, size: int, compression: str, limit: int) -> Digest:
    """The digest of a compressed blob's content, decompressed as a stream; stops past ``limit`` bytes."""
    hasher = digest.hasher()
    reader = store.open(digest, size)
    try:
        plain = open_decompressed(reader, compression, limit, f"layer {digest}")
        while block := plain.read(COPY_CHUNK):
            hasher.update(block)
        if isinstance(reader, VerifyingReader):
            reader.verify_rest()
    finally:
        reader.close()
    return Digest(digest.algorithm, hasher.hexdigest())


def from_docker_manifest(got: Ingested, store: BlobStore, max_layer_size: int) -> list[LoadedImage]:
    raw = got.meta["manifest.json"]
    try:
        entries = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidDocument("manifest.json", "", f"is not JSON: {exc}") from None
    if not isinstance(entries, list) or not entries:
        raise InvalidDocument("manifest.json", "", "must be a non-empty list")
    out: list[LoadedImage] = []
    for i, entry in enumerate(entries):
        where = f"[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
            raise InvalidDocument("manifest.json", f"{where}.Config", "must be a string path")
        layers = entry.get("Layers")
        if not isinstance(layers, list) or not all(isinstance(p, str) for p in layers):
            raise InvalidDocument("manifest.json", f"{where}.Layers", "must be a list of paths")
        tags = entry.get("RepoTags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise InvalidDocument("manifest.json", f"{where}.RepoTags", "must be a list of strings")
        cfg_digest, cfg_size = got.blob(entry["Config"], f"manifest.json{where}.Config")
        config_desc = Descriptor(MediaType.OCI_CONFIG, cfg_digest, cfg_size)
        config = ImageConfig.parse(read_blob(store, config_desc))
        if len(layers) != len(config.diff_ids):
            raise InvalidDocument(
                "manifest.json", f"{where}.Layers",
                f"lists {len(layers)} layers but config {cfg_digest} has {len(config.diff_ids)} diff_ids",
            )
        descs = []
        for j, (path, diff_id) in enumerate(zip(layers, config.diff_ids)):
            digest, size = got.blob(path, f"manifest.json{where}.Layers[{j}]")
            compression = _sniff(store, digest, size)
            content = digest if compression is None else _uncompressed_digest(
                store, digest, size, compression, max_layer_size)
            if content != diff_id:
                raise IntegrityError(
                    f"docker archive layer {path}: content hashes to {content}, config {cfg_digest} says {diff_id}"
                )
            descs.append(Descriptor(MediaType.layer_type(compression), digest, size))
        manifest = Manifest.build(config_desc, descs)
        store.put_stream(io.BytesIO(manifest.raw), expected=manifest.digest, size=len(manifest.raw))
        names = []
        for tag in tags:
            try:
                names.append(str(Reference.parse(tag)))
            except InvalidReference as exc:
                raise InvalidDocument("manifest.json", f"{where}.RepoTags", str(exc)) from None
        out.append(LoadedImage(manifest, config, tuple(names)))
    return out
