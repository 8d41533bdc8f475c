"""A pull that unpacks each layer while it downloads (``store.snapshots.follow``).

Real parts: the real store, the in-test hostile registry (real HTTP) and the real ``pybuild`` command.
Checked: the snapshot is extracted during the download and published only after the blob verified;
it is the very tree the old path (unpack the stored blob at first use) makes; a blob whose digest is
wrong (but whose content unpacks to the right diff_id) leaves no snapshot at all; a pull killed
mid-stream leaves nothing visible and the next pull resumes and publishes; a retry inside one pull
keeps following the same file.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import signal
import stat
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

from layers.config import ImageConfig
from layers.descriptor import Descriptor, Platform
from layers.digest import Digest
from layers.manifest import Manifest
from layers.mediatype import MediaType
from layers.reference import Reference

from tests.archive.test_skipped_devices import _as_nobody, nobody_dir  # noqa: F401 (a fixture)

from .hostile import HostileRegistry, serve_blob, serve_image
from .test_pull_push import _env, _fsck_ok, _ingest_bytes, _store, _wait_until


def _tree_layer(seed: int, files: int = 120, size: int = 40_000, *, mtime: int = 0) -> tuple[bytes, Digest]:
    """A gzip (stored blocks, so another gzip header keeps the size) layer with dirs, files, a symlink,
    a hardlink, a fifo, xattrs and whiteouts; ``(blob, diff_id)``."""
    rnd = __import__("random").Random(seed)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add(name, kind=tarfile.REGTYPE, data=b"", mode=0o644, **extra):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime, info.uid, info.gid = kind, mode, 1_600_000_000 + len(name), 7, 8
            for k, v in extra.items():
                setattr(info, k, v)
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(data) if data else None)

        add("etc", tarfile.DIRTYPE, mode=0o755)
        add("etc/gone.conf.d", tarfile.DIRTYPE, mode=0o755)
        add("etc/gone.conf.d/.wh..wh..opq")
        add("etc/.wh.removed")
        add("data", tarfile.DIRTYPE, mode=0o755)
        for i in range(files):
            d = f"data/d{i % 7}"
            if i < 7:
                add(d, tarfile.DIRTYPE, mode=0o750)
            add(f"{d}/f{i:04d}", data=rnd.randbytes(rnd.randrange(size // 2, size)), mode=0o600 | (0o4000 if i == 3 else 0))
        add("data/link", tarfile.SYMTYPE, linkname="d0/f0000")
        add("data/hard", tarfile.LNKTYPE, linkname="data/d1/f0001")
        add("data/pipe", tarfile.FIFOTYPE)
        add("data/attr", data=b"with an xattr", pax_headers={"SCHILY.xattr.user.pybuild": "yes"})
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, 0, mtime=mtime), Digest.from_bytes(tar_bytes)


def _image(layers: list[tuple[bytes, Digest]]):
    config = ImageConfig.new(Platform.host())
    blobs, descs = {}, []
    for blob, diff_id in layers:
        desc = Descriptor(MediaType.OCI_LAYER_GZIP, Digest.from_bytes(blob), len(blob))
        blobs[desc.digest] = blob
        descs.append(desc)
        config = config.with_layer(diff_id)
    raw = config.to_bytes()
    cdesc = Descriptor(MediaType.OCI_CONFIG, Digest.from_bytes(raw), len(raw))
    blobs[cdesc.digest] = raw
    return Manifest.build(cdesc, descs), blobs, config


def _tree(root: str) -> dict:
    """Everything overlayfs and a container see of a tree: type, mode, owner, mtime, content, link
    target, device, xattrs (trusted.* included) and which paths share an inode. A whiteout's mtime is
    left out: extraction makes it now (overlayfs never shows it)."""
    out, inodes = {}, {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            whiteout = stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
            what = [stat.S_IFMT(st.st_mode), st.st_mode, st.st_uid, st.st_gid, None if whiteout else st.st_mtime_ns,
                    sorted((k, os.getxattr(path, k, follow_symlinks=False))
                           for k in os.listxattr(path, follow_symlinks=False))]
            if stat.S_ISREG(st.st_mode):
                what.append(hashlib.sha256(Path(path).read_bytes()).hexdigest())
                what.append(inodes.setdefault(st.st_ino, rel))  # the first path of a hardlinked inode
            elif stat.S_ISLNK(st.st_mode):
                what.append(os.readlink(path))
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                what.append(st.st_rdev)
            out[rel] = what
    return out


def _pull(store, host: str, ref: str, unpack: bool = True):
    from registry_client.client import Registry
    from registry_client.pull import PullOptions, pull

    r = Reference.parse(ref)
    with Registry(host) as reg:
        return pull(store, reg.repository(r.repository), r, PullOptions(unpack=unpack))


def _temps(store, diff_id: Digest) -> list[str]:
    return [n for n, _ in store.snapshots.list() if n.startswith(f".tmp-{diff_id.hex}-")]


def test_unpacks_during_download_and_matches_the_first_use_unpack(tmp_path):
    from layers.store import Store

    layers = [_tree_layer(1), _tree_layer(2, files=40)]
    manifest, blobs, config = _image(layers)
    big = manifest.layers[0]
    stalled, release = threading.Event(), threading.Event()
    server = HostileRegistry()
    try:
        serve_image(server, "follow/app", "1", manifest, blobs,
                    **{str(big.digest): serve_blob(blobs[big.digest], stall_after=big.size // 2,
                                                   stalled=stalled, release=release)})
        ref = f"{server.host}/follow/app:1"
        store = Store(str(tmp_path / "followed"))
        result: list = []
        puller = threading.Thread(target=lambda: result.append(_pull(store, server.host, ref)))
        puller.start()
        try:
            assert stalled.wait(30), "the pull never reached the big layer"
            diff_id = config.diff_ids[0]
            # half the blob is in: its first files are already extracted, nothing is published
            _wait_until(lambda: any(os.path.exists(os.path.join(store.snapshots.base, t, "fs", "data", "d0"))
                                    for t in _temps(store, diff_id)), "nothing was unpacked during the download")
            assert not store.blobs.has(big.digest) and not store.snapshots.ready(diff_id)
            assert not os.path.exists(store.snapshots.dir(diff_id))
            during = os.stat(os.path.join(store.snapshots.base, _temps(store, diff_id)[0])).st_ino
        finally:
            release.set()
            puller.join(60)
        assert result, "the pull failed"
        for d in config.diff_ids:
            assert store.snapshots.ready(d) and not _temps(store, d)
        # the published snapshot is the tree extracted during the download (renamed, not redone)
        assert os.stat(store.snapshots.dir(config.diff_ids[0])).st_ino == during
        # the old path: the blobs stored without unpacking, then unpacked at first use
        lazy = Store(str(tmp_path / "lazy"))
        _pull(lazy, server.host, ref, unpack=False)
        for layer, d in zip(manifest.layers, config.diff_ids):
            assert not lazy.snapshots.ready(d)
            assert _tree(lazy.snapshots.ensure(layer, d)) == _tree(store.snapshots.path(d))
        assert store.fsck().ok
    finally:
        release.set()
        server.stop()


def test_blob_with_wrong_digest_leaves_no_snapshot(pybuild, tmp_path):
    """The served bytes unpack to exactly the config's diff_id (only the gzip header's mtime differs):
    nothing but the blob's digest check can refuse them, and nothing of them may stay."""
    good = _tree_layer(3)
    manifest, blobs, config = _image([good])
    evil, evil_diff_id = _tree_layer(3, mtime=12345)
    layer = manifest.layers[0]
    assert evil_diff_id == config.diff_ids[0] and len(evil) == layer.size and evil != blobs[layer.digest]
    server = HostileRegistry()
    try:
        serve_image(server, "evil/follow", "1", manifest, blobs, **{str(layer.digest): serve_blob(evil)})
        ref = f"{server.host}/evil/follow:1"
        out = pybuild("pull", ref, env=_env(tmp_path))
        assert out.returncode != 0 and layer.digest.short in out.stderr, out.stderr
        store = _store(pybuild)
        assert not store.blobs.has(layer.digest)
        assert store.snapshots.list() == []  # neither a snapshot nor a temporary tree
        assert _fsck_ok(pybuild)
    finally:
        server.stop()


def test_pull_killed_mid_stream_leaves_nothing_visible_then_resumes(pybuild, tmp_path):
    from tests.conftest import pybuild_exe

    manifest, blobs, config = _image([_tree_layer(4)])
    layer, diff_id = manifest.layers[0], config.diff_ids[0]
    stalled, release = threading.Event(), threading.Event()
    server = HostileRegistry()
    try:
        serve_image(server, "kill/follow", "1", manifest, blobs,
                    **{str(layer.digest): serve_blob(blobs[layer.digest], stall_after=layer.size // 2,
                                                     stalled=stalled, release=release)})
        ref = f"{server.host}/kill/follow:1"
        proc = subprocess.Popen([pybuild_exe(), "--root", str(pybuild.root), "--state-dir", str(pybuild.state),
                                 "pull", ref], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ, **_env(tmp_path)})
        try:
            assert stalled.wait(60), "the pull never reached the layer"
            store = _store(pybuild)
            _wait_until(lambda: _temps(store, diff_id), "no unpack started during the download")
            _wait_until(lambda: _ingest_bytes(pybuild.root) > 0, "the first half never reached the ingest file")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            proc.stdout.close()
            proc.stderr.close()
            release.set()
        assert not store.snapshots.ready(diff_id) and not os.path.exists(store.snapshots.dir(diff_id))
        assert not store.blobs.has(layer.digest)
        assert _fsck_ok(pybuild)  # a .tmp- tree whose lock is free is debris, not a snapshot
        ranges: list[str] = []
        serve_image(server, "kill/follow", "1", manifest, blobs,
                    **{str(layer.digest): serve_blob(blobs[layer.digest], ranges=ranges)})
        out = pybuild("pull", ref, env=_env(tmp_path))
        assert out.returncode == 0, out.stderr
        assert len(ranges) == 1 and ranges[0] not in ("", "bytes=0-"), ranges  # resumed, and still unpacked
        assert store.snapshots.ready(diff_id)
        lazy = _tree_layer(4)  # the same layer, extracted by the old path for comparison
        from layers import archive

        dest = tmp_path / "lazy"
        dest.mkdir()
        assert archive.extract(io.BytesIO(lazy[0]), str(dest), compression="gzip", mode="overlay") == diff_id
        assert _tree(str(dest)) == _tree(store.snapshots.path(diff_id))
        gc = store.gc()
        assert any(n.startswith(f".tmp-{diff_id.hex}-") for n in gc.snapshots_removed)  # the killed pull's debris
        assert store.snapshots.ready(diff_id) and _fsck_ok(pybuild)
    finally:
        release.set()
        server.stop()


def test_connection_lost_mid_blob_keeps_following(tmp_path):
    """A retry inside one pull resumes the same ingest file: the extractor goes on where it was."""
    from layers.store import Store

    manifest, blobs, config = _image([_tree_layer(5)])
    layer, diff_id = manifest.layers[0], config.diff_ids[0]
    data = blobs[layer.digest]
    ranges: list[str] = []
    seen_tmp: list[int] = []
    store = Store(str(tmp_path / "root"))

    def flaky(req):
        rng = req.headers.get("Range", "")
        ranges.append(rng)
        start = int(rng[6:-1]) if rng.startswith("bytes=") and rng.endswith("-") else 0
        body = data[start:]
        req.send_response(206 if start else 200)
        req.send_header("Content-Length", str(len(body)))
        if start:
            req.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        req.end_headers()
        if len(ranges) == 1:
            req.wfile.write(body[: len(body) // 2])
            req.wfile.flush()
            deadline = time.monotonic() + 20  # the extractor has started on the first half
            while not _temps(store, diff_id) and time.monotonic() < deadline:
                time.sleep(0.02)
            seen_tmp.extend(os.stat(os.path.join(store.snapshots.base, t)).st_ino for t in _temps(store, diff_id))
            req.close_connection = True  # then hang up
            return
        req.wfile.write(body)

    server = HostileRegistry()
    try:
        serve_image(server, "flaky/follow", "1", manifest, blobs, **{str(layer.digest): flaky})
        _pull(store, server.host, f"{server.host}/flaky/follow:1")
        assert len(ranges) == 2 and ranges[1].startswith("bytes="), ranges
        assert store.snapshots.ready(diff_id) and len(seen_tmp) == 1
        assert os.stat(store.snapshots.dir(diff_id)).st_ino == seen_tmp[0]  # the followed tree, published
        assert store.fsck().ok
    finally:
        server.stop()


def test_no_unpack_keeps_layers_compressed_only(pybuild, tmp_path):
    manifest, blobs, config = _image([_tree_layer(6, files=10)])
    server = HostileRegistry()
    try:
        serve_image(server, "plain/app", "1", manifest, blobs)
        ref = f"{server.host}/plain/app:1"
        out = pybuild("pull", "--no-unpack", ref, env=_env(tmp_path))
        assert out.returncode == 0, out.stderr
        store = _store(pybuild)
        assert store.blobs.has(manifest.layers[0].digest) and store.snapshots.list() == []
        out = pybuild("pull", ref, env=_env(tmp_path))  # blobs there already: unpacked from the store
        assert out.returncode == 0, out.stderr
        assert store.snapshots.ready(config.diff_ids[0])
    finally:
        server.stop()


def _followed_as_nobody(work: Path) -> dict:
    """As nobody (rootless): follow an ingest of a layer with device nodes, as a pull does."""
    from layers.store.store import Store
    from tests.archive.test_skipped_devices import LAYER

    notes: list[str] = []
    store = Store(str(work / "root"), notes=notes.append)
    digest = Digest.from_bytes(LAYER)
    desc = Descriptor(MediaType.layer_type(None), digest, len(LAYER))
    with store.snapshots.follow(desc, digest) as follow:
        with store.blobs.ingest(expected=digest, size=len(LAYER)) as ingest:
            write = follow.writer(ingest)
            for i in range(0, len(LAYER), 1000):
                write(LAYER[i:i + 1000])
            ingest.commit()
        path = follow.complete(len(LAYER))
    again = store.snapshots.ensure(desc, digest)  # ready: not unpacked again, not said again
    return {"notes": notes, "followed": path is not None and path == again,
            "hello": Path(again, "etc", "hello").read_text()}


def test_rootless_follow_notes_skipped_devices_once(nobody_dir) -> None:
    out = _as_nobody(nobody_dir, _followed_as_nobody)
    notes = out["result"]["notes"]
    assert len(notes) == 1 and notes[0].endswith(
        "device nodes cannot be created in a rootless user namespace, skipped: dev/odd, dev/blk"), notes
    assert out["result"]["followed"] and out["result"]["hello"] == "hi\n"
    assert out["stderr"] == ""
