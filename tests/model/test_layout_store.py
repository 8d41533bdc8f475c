"""layers.layout against the real layers.store: save from one store, load into another, tag, load
the image back, fsck clean; a corrupt archive leaves the target store as fsck-clean as it was."""

from __future__ import annotations

import io
import tarfile

import pytest

from layers import IntegrityError, Reference
from layers.layout import ArchiveImage, read_archive, write_archive
from layers.store import Store

from .blobs import MemoryBlobs, make_image

REF = Reference.parse("localhost/model/bb:2")


@pytest.fixture
def filled(tmp_path, busybox_tar):
    """A real store holding the busybox test image (built through the in-memory helper, then copied)."""
    mem = MemoryBlobs()
    img = make_image(mem, busybox_tar)
    store = Store(str(tmp_path / "src"))
    for digest, data in mem.blobs.items():
        store.blobs.put_bytes(data, expected=digest)
    store.images.tag(REF, img.manifest.digest)
    return store, img


def test_save_from_store_and_load_into_another(filled, tmp_path):
    store, img = filled
    out = io.BytesIO()
    write_archive(out, [ArchiveImage(img.manifest, (REF,))], store.blobs)
    target = Store(str(tmp_path / "dst"))
    with target.lease():
        [loaded] = read_archive(io.BytesIO(out.getvalue()), target.blobs)
        for name in loaded.names:
            target.images.tag(name, loaded.manifest.digest)
    image = target.images.load(target.images.resolve(str(REF)))
    assert image.manifest.digest == img.manifest.digest and image.config.digest == img.config.digest
    assert target.fsck().ok


def test_corrupt_archive_leaves_the_store_clean(filled, tmp_path):
    store, img = filled
    out = io.BytesIO()
    write_archive(out, [ArchiveImage(img.manifest, (REF,))], store.blobs)
    files = {}
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        for m in tar:
            if m.isreg():
                files[m.name] = tar.extractfile(m).read()
    layer = f"blobs/sha256/{img.manifest.layers[0].digest.hex}"
    files[layer] = files[layer][:-1] + bytes([files[layer][-1] ^ 1])
    bad = io.BytesIO()
    with tarfile.open(fileobj=bad, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    target = Store(str(tmp_path / "dst"))
    with pytest.raises(IntegrityError, match=img.manifest.layers[0].digest.hex):
        read_archive(io.BytesIO(bad.getvalue()), target.blobs)
    assert not target.blobs.has(img.manifest.layers[0].digest)
    assert target.images.list() == []
    assert target.fsck().ok
