"""Interop of layers.layout with the peer tools: skopeo, umoci and podman read what we write, and we
read what skopeo and podman write. The blob store is the in-memory stand-in from ``blobs.py``;
podman runs with its own temporary storage root (vfs driver), never the host's."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

from layers import Reference
from layers.layout import ArchiveImage, read_archive, read_layout_dir, read_path, write_archive, write_layout_dir

from .blobs import MemoryBlobs, make_image
from tests.trustedtar import extract_trusted

REF = Reference.parse("localhost/pybuild-test/bb:1")


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (apt-get install {tool})")
    return path


def run(*args: str, cwd: Path | None = None) -> str:
    proc = subprocess.run(list(args), capture_output=True, text=True, cwd=cwd, timeout=120)
    assert proc.returncode == 0, f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture
def saved(busybox_tar, tmp_path):
    store = MemoryBlobs()
    img = make_image(store, busybox_tar)
    archive = tmp_path / "saved.tar"
    with open(archive, "wb") as f:
        write_archive(f, [ArchiveImage(img.manifest, (REF,))], store)
    return store, img, archive


def test_skopeo_reads_our_archive_as_oci_and_as_docker_archive(saved, tmp_path):
    need("skopeo")
    _, img, archive = saved
    for transport in (f"oci-archive:{archive}", f"oci-archive:{archive}:1"):
        info = json.loads(run("skopeo", "inspect", transport))
        assert info["Digest"] == str(img.manifest.digest)
        assert info["Layers"] == [str(img.manifest.layers[0].digest)]
        assert info["Labels"] == {"test": "layout"}
    # the manifest.json side, as docker load reads it
    raw_cfg = json.loads(run("skopeo", "inspect", "--config", f"docker-archive:{archive}"))
    assert raw_cfg["rootfs"]["diff_ids"] == [str(d) for d in img.config.diff_ids]
    # a full copy makes skopeo verify every blob digest
    run("skopeo", "copy", "-q", f"oci-archive:{archive}", f"dir:{tmp_path / 'copy'}")


def test_umoci_unpacks_our_layout(saved, tmp_path):
    need("umoci")
    store, img, archive = saved
    layout = tmp_path / "layout"
    write_layout_dir(layout, [ArchiveImage(img.manifest, (REF,))], store)
    run("umoci", "unpack", "--image", f"{layout}:1", str(tmp_path / "bundle"))
    rootfs = tmp_path / "bundle" / "rootfs"
    assert (rootfs / "bin" / "busybox").stat().st_size > 100000
    assert (rootfs / "bin" / "sh").is_symlink()
    spec = json.loads((tmp_path / "bundle" / "config.json").read_text())
    assert spec["process"]["args"] == ["/bin/sh"]
    # the tar form, untarred, is the same layout
    untarred = tmp_path / "untarred"
    with tarfile.open(archive) as tar:
        extract_trusted(tar, untarred, "data")  # our own archive, written above: trusted here
    run("umoci", "unpack", "--image", f"{untarred}:1", str(tmp_path / "bundle2"))
    assert (tmp_path / "bundle2" / "rootfs" / "bin" / "busybox").exists()


def test_we_read_what_skopeo_writes(saved, tmp_path):
    need("skopeo")
    store, img, _ = saved
    src = tmp_path / "src"
    write_layout_dir(src, [ArchiveImage(img.manifest, (REF,))], store)
    # oci directory, recompressed with zstd by skopeo: a new manifest, new layer blobs
    run("skopeo", "copy", "-q", "--dest-compress-format", "zstd", f"oci:{src}:1", f"oci:{tmp_path / 'dst'}:copied")
    fresh = MemoryBlobs()
    [loaded] = read_layout_dir(tmp_path / "dst", fresh)
    assert loaded.ref_names == ("copied",) and loaded.names == ()
    assert loaded.config.diff_ids == img.config.diff_ids
    assert loaded.manifest.layers[0].media_type == "application/vnd.oci.image.layer.v1.tar+zstd"
    # oci-archive and docker-archive (legacy layout: <hex>.tar, <id>/layer.tar symlinks, uncompressed)
    run("skopeo", "copy", "-q", f"oci:{src}:1", f"oci-archive:{tmp_path / 'oa.tar'}:x")
    [oa] = read_path(tmp_path / "oa.tar", MemoryBlobs())
    assert oa.manifest.digest == img.manifest.digest and oa.ref_names == ("x",)
    run("skopeo", "copy", "-q", f"oci:{src}:1", f"docker-archive:{tmp_path / 'da.tar'}:localhost/bb:2")
    blobs = MemoryBlobs()
    with open(tmp_path / "da.tar", "rb") as f:
        [da] = read_archive(f, blobs)
    assert da.names == ("localhost/bb:2",)
    assert da.config.diff_ids == img.config.diff_ids
    assert da.manifest.layers[0].digest == img.config.diff_ids[0]  # kept uncompressed, as written
    assert all(blobs.has(d.digest) for d in (da.manifest.config, *da.manifest.layers))


@pytest.fixture
def podman():
    """podman over a private storage root (its runroot path must be under 50 characters)."""
    need("podman")
    base = Path(tempfile.mkdtemp(prefix="pbpod-", dir="/tmp"))

    def call(*args: str) -> str:
        return run("podman", "--root", str(base / "root"), "--runroot", str(base / "run"), "--tmpdir",
                   str(base / "tmp"), "--storage-driver", "vfs", "--events-backend", "none",
                   "--cgroup-manager", "cgroupfs", *args)

    yield call
    shutil.rmtree(base, ignore_errors=True)


def test_podman_loads_our_archive_and_we_load_podman_save(saved, tmp_path, podman):
    _, img, archive = saved
    out = podman("load", "-i", str(archive))
    assert "localhost/pybuild-test/bb:1" in out
    listed = podman("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
    assert f"localhost/pybuild-test/bb:1 {img.config.digest.hex[:12]}" in listed
    for fmt in ("oci-archive", "docker-archive"):
        target = tmp_path / f"podman-{fmt}.tar"
        podman("save", "--format", fmt, "-o", str(target), "localhost/pybuild-test/bb:1")
        with open(target, "rb") as f:
            [loaded] = read_archive(f, MemoryBlobs())
        assert loaded.config.diff_ids == img.config.diff_ids, fmt
        if fmt == "docker-archive":
            assert loaded.names == ("localhost/pybuild-test/bb:1",)


def test_streamed_from_a_pipe(saved, busybox_tar):
    """``pybuild load`` < file: the reader needs no seeking."""
    _, img, archive = saved
    proc = subprocess.Popen(["cat", str(archive)], stdout=subprocess.PIPE)
    try:
        [loaded] = read_archive(proc.stdout, MemoryBlobs())
    finally:
        proc.stdout.close()
        proc.wait()
    assert loaded.manifest.digest == img.manifest.digest and loaded.names == (str(REF),)


def test_skopeo_reads_a_saved_multi_platform_index(busybox_tar, tmp_path):
    need("skopeo")
    from layers import Index, Platform

    from .test_layout import _tar

    store = MemoryBlobs()
    host = make_image(store, busybox_tar)
    other = make_image(store, busybox_tar, extra_layer=_tar([("arch", b"other\n")]))
    index = Index.build([host.manifest.descriptor(Platform.host()),
                         other.manifest.descriptor(Platform("linux", "s390x"))])
    archive = tmp_path / "multi.tar"
    with open(archive, "wb") as f:
        write_archive(f, [ArchiveImage(index, (REF,))], store)
    info = json.loads(run("skopeo", "inspect", f"oci-archive:{archive}"))
    assert info["Digest"] == str(index.digest)  # the top-level digest, as docker shows it
    assert info["Layers"] == [str(d.digest) for d in host.manifest.layers]  # the host's entry
    raw = json.loads(run("skopeo", "inspect", "--raw", f"oci-archive:{archive}"))
    assert len(raw["manifests"]) == 2
    run("skopeo", "copy", "-q", "--all", f"oci-archive:{archive}", f"oci:{tmp_path / 'all'}:x")
