"""Test helpers: an in-memory blob store (stands in for ``layers.store`` so these tests exercise
the layout code alone) and a small image built from the busybox rootfs tar."""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass
from pathlib import Path

from layers import Descriptor, Digest, History, ImageConfig, IntegrityError, Manifest, MediaType, NotFound, Platform
from layers import VerifyingReader


class MemoryBlobs:
    """The ``store.blobs`` contract (has/open/put_stream) over a dict; verifies like the real store."""

    def __init__(self) -> None:
        self.blobs: dict[Digest, bytes] = {}
        self.puts = 0

    def has(self, digest: Digest) -> bool:
        return digest in self.blobs

    def open(self, digest: Digest, size: int | None = None) -> VerifyingReader:
        if digest not in self.blobs:
            raise NotFound(f"blob {digest} not found")
        return VerifyingReader(io.BytesIO(self.blobs[digest]), digest, size)

    def put_stream(self, stream, expected: Digest | None = None, size: int | None = None) -> tuple[Digest, int]:
        data = stream.read()
        got = Digest.from_bytes(data, expected.algorithm if expected else "sha256")
        if size is not None and len(data) != size:
            raise IntegrityError(f"blob: got {len(data)} bytes, expected {size}")
        if expected is not None and got != expected:
            raise IntegrityError(f"blob {expected}: content hashes to {got}")
        self.blobs[got] = data
        self.puts += 1
        return got, len(data)

    def put_bytes(self, data: bytes) -> Digest:
        return self.put_stream(io.BytesIO(data))[0]


@dataclass(frozen=True)
class TestImage:
    manifest: Manifest
    config: ImageConfig
    layer_tar: bytes


def make_image(store: MemoryBlobs, rootfs_tar: Path, *, docker: bool = False, extra_layer: bytes | None = None,
               compression: str = "gzip") -> TestImage:
    """busybox rootfs as one gzip layer (plus an optional second uncompressed-content layer)."""
    layers_raw = [rootfs_tar.read_bytes()] + ([extra_layer] if extra_layer is not None else [])
    config = ImageConfig.new(Platform.host(), created="2024-01-01T00:00:00Z").with_config(
        cmd=["/bin/sh"], env=["PATH=/bin:/usr/bin"], working_dir="/", labels={"test": "layout"})
    descs = []
    for i, plain in enumerate(layers_raw):
        blob = gzip.compress(plain, compresslevel=1, mtime=0) if compression == "gzip" else plain
        digest = store.put_bytes(blob)
        mt = MediaType.layer_type(compression if compression == "gzip" else None, docker=docker)
        descs.append(Descriptor(mt, digest, len(blob)))
        config = config.with_layer(Digest.from_bytes(plain), History(created=config.created, created_by=f"layer {i}"))
    config_digest = store.put_bytes(config.raw)
    cfg_type = MediaType.DOCKER_CONFIG if docker else MediaType.OCI_CONFIG
    manifest = Manifest.build(Descriptor(cfg_type, config_digest, len(config.raw)), descs, docker=docker)
    store.put_bytes(manifest.raw)
    return TestImage(manifest, config, layers_raw[0])
