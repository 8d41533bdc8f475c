#!/usr/bin/env python3
"""Save/load throughput: layers.layout vs skopeo on the same image (one ~512 MB layer + a small one).

    .venv/bin/python bench/layout.py [SIZE_MB]

save: blob store -> OCI archive tar   (pybuild write_archive   vs  skopeo copy oci:DIR oci-archive:FILE)
load: OCI archive tar -> blob store   (pybuild read_archive    vs  skopeo copy oci-archive:FILE oci:DIR)
Both sides hash every byte they move. The pybuild side uses a small file-per-digest store defined here
(fsync + rename, verify on read) so the figure is about the layout code, not about layers.store.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from layers import Descriptor, Digest, History, ImageConfig, Manifest, MediaType, Platform, Reference  # noqa: E402
from layers import VerifyingReader  # noqa: E402
from layers.layout import ArchiveImage, read_archive, write_archive, write_layout_dir  # noqa: E402


class FileBlobs:
    """Blobs as files named by digest; writes hash while copying, fsync, rename."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, d: Digest) -> Path:
        return self.root / f"{d.algorithm}-{d.hex}"

    def has(self, d: Digest) -> bool:
        return self._path(d).exists()

    def open(self, d: Digest, size: int | None = None):
        return VerifyingReader(open(self._path(d), "rb"), d, size)

    def put_stream(self, stream, expected=None, size=None):
        h = hashlib.sha256()
        n = 0
        fd, tmp = tempfile.mkstemp(dir=self.root)
        with os.fdopen(fd, "wb") as f:
            while chunk := stream.read(1 << 20):
                h.update(chunk)
                n += len(chunk)
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        got = Digest("sha256", h.hexdigest())
        if (expected is not None and got != expected) or (size is not None and n != size):
            os.unlink(tmp)
            raise ValueError("digest/size mismatch")
        os.rename(tmp, self._path(got))
        return got, n


def make_layer(path: Path, size_mb: int) -> None:
    """A tar with one file: half random bytes, half a repeated text pattern (mixed, like real layers)."""
    rnd = os.urandom(1 << 20)
    text = (b"the quick brown fox jumps over the lazy dog\n" * 25000)[: 1 << 20]
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("data.bin")
        info.size = size_mb << 20

        class Gen(io.RawIOBase):
            def __init__(self):
                self.i = 0

            def readable(self):
                return True

            def readinto(self, b):
                chunk = (rnd if self.i % 2 else text)[: len(b)]
                self.i += 1
                b[: len(chunk)] = chunk
                return len(chunk)

        tar.addfile(info, io.BufferedReader(Gen(), 1 << 20))


def timed(label: str, mb: float, fn) -> float:
    t = time.perf_counter()
    fn()
    dt = time.perf_counter() - t
    print(f"  {label:<44} {dt:7.2f} s  {mb / dt:8.0f} MB/s")
    return dt


def main() -> None:
    size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 512
    work = Path(tempfile.mkdtemp(prefix="pbbench-", dir="/var/tmp"))
    try:
        layer = work / "layer.tar"
        make_layer(layer, size_mb)
        store = FileBlobs(work / "store")
        with open(layer, "rb") as f:
            ld, lsize = store.put_stream(f)
        config = ImageConfig.new(Platform.host(), created="2024-01-01T00:00:00Z").with_layer(
            ld, History(created_by="bench"))
        cd, csize = store.put_stream(io.BytesIO(config.raw))
        manifest = Manifest.build(Descriptor(MediaType.OCI_CONFIG, cd, csize),
                                  [Descriptor(MediaType.OCI_LAYER, ld, lsize)])
        store.put_stream(io.BytesIO(manifest.raw))
        images = [ArchiveImage(manifest, (Reference.parse("localhost/bench:1"),))]
        write_layout_dir(work / "src", images, store)
        mb = lsize / 1e6
        print(f"image: one {mb:.0f} MB layer (uncompressed tar)")
        have_skopeo = shutil.which("skopeo") is not None

        print("save (store -> OCI archive tar)")

        def py_save():
            with open(work / "py.tar", "wb") as f:
                write_archive(f, images, store)
                f.flush()
                os.fsync(f.fileno())

        timed("pybuild layers.layout.write_archive", mb, py_save)
        if have_skopeo:
            timed("skopeo copy oci:DIR oci-archive:FILE", mb, lambda: subprocess.run(
                ["skopeo", "copy", "-q", f"oci:{work / 'src'}:1", f"oci-archive:{work / 'sk.tar'}:1"], check=True))

        print("load (OCI archive tar -> store)")
        timed("pybuild layers.layout.read_archive", mb, lambda: read_archive(
            open(work / "py.tar", "rb"), FileBlobs(work / "store2")))
        if have_skopeo:
            timed("skopeo copy oci-archive:FILE oci:DIR", mb, lambda: subprocess.run(
                ["skopeo", "copy", "-q", f"oci-archive:{work / 'py.tar'}:1", f"oci:{work / 'dst'}:1"], check=True))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
