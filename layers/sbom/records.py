"""The SBOM a build made for an image, kept beside the store: ``<root>/sboms/<manifest hex>.spdx.json``
(written atomically; a plain file, so GC and fsck of blobs never see it). Push attaches it."""

from __future__ import annotations

import datetime
import os

from ..atomic import write_atomic
from ..digest import Digest
from .spdx import ImageFacts, image_sbom

__all__ = ["save_sbom", "load_sbom", "local_sbom", "sbom_for_image"]


def _path(root: str, digest: Digest) -> str:
    return os.path.join(root, "sboms", f"{digest.hex}.spdx.json")


def save_sbom(root: str, digest: Digest, data: bytes) -> str:
    os.makedirs(os.path.join(root, "sboms"), mode=0o700, exist_ok=True)
    path = _path(root, digest)
    write_atomic(path, data, 0o600)
    return path


def load_sbom(root: str, digest: Digest) -> bytes | None:
    try:
        with open(_path(root, digest), "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def local_sbom(store, name: str, platform=None) -> bytes | None:
    """The SBOM saved for the local image ``name`` (a tag or id; for a multi-platform index, the image
    of ``platform``, a :class:`~layers.descriptor.Platform`, or of the host when None); None when there
    is no such image or no SBOM was made for it. :class:`NotFound` when the index lacks ``platform``."""
    from ..errors import NotFound

    try:
        record = store.images.resolve(name)
    except NotFound:
        return None
    digest = record.manifest_digest
    if platform is not None or load_sbom(store.root, digest) is None:  # an index: its platform's image
        image = store.images.load(record, platform=platform, lazy=True)
        if platform is not None and image.index is None and not image.config.platform.matches(platform):
            raise NotFound(f"{name} is one image of {image.config.platform}, not {platform}")
        digest = image.manifest.digest
    return load_sbom(store.root, digest)


def sbom_for_image(store, image, name: str, own_layers: int, created: float | None = None) -> bytes:
    """Unpack (or reuse) the image's snapshots, scan them and return the SPDX bytes; saved for push."""
    dirs = [store.snapshots.ensure(layer, diff_id)
            for layer, diff_id in zip(image.manifest.layers, image.config.diff_ids)]
    when = datetime.datetime.fromtimestamp(created, datetime.timezone.utc) if created is not None else \
        datetime.datetime.now(datetime.timezone.utc)
    facts = ImageFacts(name, str(image.manifest.digest), when.strftime("%Y-%m-%dT%H:%M:%SZ"))
    data = image_sbom(facts, dirs, own_layers)
    save_sbom(store.root, image.manifest.digest, data)
    return data
