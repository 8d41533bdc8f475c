"""Small images made in-process for store tests (real blobs, manifests and configs)."""

from __future__ import annotations

import io
import tarfile

from layers.config import History, ImageConfig
from layers.descriptor import Descriptor, Platform
from layers.digest import Digest
from layers.manifest import Manifest
from layers.mediatype import MediaType


def layer_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_image(store, files: dict[str, bytes], *, cmd=("sh",)) -> Manifest:
    """A one-layer (uncompressed) image put into ``store``; its manifest (not tagged)."""
    tar = layer_tar(files)
    layer = store.blobs.put_bytes(tar)
    config = ImageConfig.new(Platform.host()).with_layer(Digest.from_bytes(tar), History(created_by="test"))
    config = config.with_config(cmd=list(cmd))
    store.blobs.put_bytes(config.raw)
    manifest = Manifest.build(Descriptor(MediaType.OCI_CONFIG, config.digest, len(config.raw)),
                              [Descriptor(MediaType.OCI_LAYER, layer, len(tar))])
    store.blobs.put_bytes(manifest.raw)
    return manifest
