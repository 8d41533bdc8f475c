"""Small real images made in the tests: gzip tar layers with matching diff_ids, config, manifest, index."""

from __future__ import annotations

import gzip
import io
import os
import tarfile

from layers.config import ImageConfig
from layers.descriptor import Descriptor, Platform
from layers.digest import Digest
from layers.index import Index
from layers.manifest import Manifest
from layers.mediatype import MediaType


def make_layer(name: str, size: int) -> tuple[bytes, Digest]:
    """A gzip tar with one file of ``size`` random bytes; returns (blob, diff_id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(os.urandom(size)))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, 1, mtime=0), Digest.from_bytes(tar_bytes)


def make_image(layer_sizes=(200_000, 300_000), platform: Platform | None = None, tag: str = "x"):
    """Returns (manifest, {digest: bytes}) for an image of random layers."""
    platform = platform or Platform.host()
    blobs: dict[Digest, bytes] = {}
    config = ImageConfig.new(platform)
    layers = []
    for i, size in enumerate(layer_sizes):
        blob, diff_id = make_layer(f"{tag}-file{i}", size)
        desc = Descriptor(MediaType.OCI_LAYER_GZIP, Digest.from_bytes(blob), len(blob))
        blobs[desc.digest] = blob
        layers.append(desc)
        config = config.with_layer(diff_id)
    raw = config.to_bytes()
    cdesc = Descriptor(MediaType.OCI_CONFIG, Digest.from_bytes(raw), len(raw))
    blobs[cdesc.digest] = raw
    return Manifest.build(cdesc, layers), blobs


def make_index(platforms: list[Platform]):
    """Returns (index, {platform: manifest}, {digest: bytes}) with one image per platform."""
    blobs: dict[Digest, bytes] = {}
    manifests = {}
    for plat in platforms:
        manifest, b = make_image((50_000,), plat, tag=str(plat).replace("/", "-"))
        blobs.update(b)
        blobs[manifest.digest] = manifest.raw
        manifests[plat] = manifest
    index = Index.build([m.descriptor(platform=p) for p, m in manifests.items()])
    return index, manifests, blobs
