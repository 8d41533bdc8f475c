"""Snapshots: one unpacked dir per diff_id, ready marker last, crash debris, GC, concurrency.

Extraction itself is ``layers.archive.extract`` (the archive room's tests cover hostile tars).
"""

from __future__ import annotations

import multiprocessing
import os

import pytest

from layers.config import History, ImageConfig
from layers.descriptor import Descriptor, Platform
from layers.digest import Digest
from layers.errors import IntegrityError
from layers.manifest import Manifest
from layers.mediatype import MediaType
from layers.store import Store

from .helpers import layer_tar, make_image


@pytest.fixture
def store(tmp_path):
    return Store(str(tmp_path / "root"))


def _layer(store, files):
    tar = layer_tar(files)
    return Descriptor(MediaType.OCI_LAYER, store.blobs.put_bytes(tar), len(tar)), Digest.from_bytes(tar)


def test_ensure_unpacks_once_with_ready_marker(store):
    desc, diff_id = _layer(store, {"etc/hello": b"hi\n"})
    path = store.snapshots.ensure(desc, diff_id)
    assert open(os.path.join(path, "etc", "hello"), "rb").read() == b"hi\n"
    assert store.snapshots.ready(diff_id)
    mtime = os.stat(os.path.join(store.snapshots.dir(diff_id), "ready")).st_mtime_ns
    assert store.snapshots.ensure(desc, diff_id) == path
    assert os.stat(os.path.join(store.snapshots.dir(diff_id), "ready")).st_mtime_ns == mtime
    assert store.fsck().ok


def test_wrong_diff_id_leaves_nothing(store):
    desc, _ = _layer(store, {"a": b"a"})
    wrong = Digest.from_bytes(b"not the tar")
    with pytest.raises(IntegrityError):
        store.snapshots.ensure(desc, wrong)
    assert store.snapshots.list() == []


def test_interrupted_unpack_is_reported_and_rebuilt(store):
    desc, diff_id = _layer(store, {"a": b"a"})
    store.snapshots.ensure(desc, diff_id)
    os.unlink(os.path.join(store.snapshots.dir(diff_id), "ready"))  # as if killed before the marker
    report = store.fsck()  # crash debris, rebuilt on use: noted, not a problem (case 19: fsck clean)
    assert report.ok and not report.problems and "interrupted before its ready marker" in " ".join(report.notes)
    path = store.snapshots.ensure(desc, diff_id)
    assert os.path.exists(os.path.join(path, "a")) and store.fsck().ok
    assert not [n for n in store.fsck().notes if "snapshot" in n]


def test_a_ready_snapshot_without_its_tree_is_a_problem_repair_removes(store):
    desc, diff_id = _layer(store, {"a": b"a"})
    store.snapshots.ensure(desc, diff_id)
    import shutil

    shutil.rmtree(store.snapshots.path(diff_id))
    report = store.fsck()
    assert not report.ok and "marked ready but its tree is missing" in report.problems[0]
    fixed = store.fsck(repair=True)
    assert fixed.ok and "unpacked again when used" in fixed.repaired[0]
    assert store.snapshots.list() == [] and store.fsck().ok


def test_lowerdirs_top_most_first_and_gc(store):
    l1, d1 = _layer(store, {"one": b"1"})
    l2, d2 = _layer(store, {"two": b"2"})
    config = ImageConfig.new(Platform.host()).with_layer(d1, History()).with_layer(d2, History())
    store.blobs.put_bytes(config.raw)
    m = Manifest.build(Descriptor(MediaType.OCI_CONFIG, config.digest, len(config.raw)), [l1, l2])
    store.blobs.put_bytes(m.raw)
    rec = store.images.tag("two-layers", m.digest)
    dirs = store.snapshots.lowerdirs(store.images.load(rec))
    assert dirs == [store.snapshots.path(d2), store.snapshots.path(d1)]
    other = make_image(store, {"x": b"x"})
    store.snapshots.lowerdirs(store.images.load(other.digest))
    result = store.gc()
    assert other.config.digest in result.blobs_removed
    assert len(result.snapshots_removed) == 1
    assert {n for n, _ in store.snapshots.list()} == {d1.hex, d2.hex}


def _ensure(root: str, desc: Descriptor, diff_id: Digest) -> str:
    return Store(root).snapshots.ensure(desc, diff_id)


def test_concurrent_ensure_gives_one_snapshot(store):
    desc, diff_id = _layer(store, {f"f{i}": os.urandom(2000) for i in range(50)})
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(4) as pool:
        paths = pool.starmap(_ensure, [(store.root, desc, diff_id)] * 4)
    assert len(set(paths)) == 1
    assert [n for n, ready in store.snapshots.list()] == [diff_id.hex]
    assert len(os.listdir(paths[0])) == 50


def test_sigkill_before_ready_marker_is_reported_and_rebuilt(store, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    desc, diff_id = _layer(store, {"bin/x": b"x" * 10_000})
    marker = tmp_path / "paused"
    code = ("import sys; from layers.store import Store; from layers.descriptor import Descriptor; "
            "from layers.digest import Digest; s = Store(sys.argv[1]); "
            "s.snapshots.ensure(Descriptor(sys.argv[2], Digest.parse(sys.argv[3]), int(sys.argv[4])), "
            "Digest.parse(sys.argv[5]))")
    env = dict(os.environ, PYBUILD_TEST_PAUSE_AT="snapshot-ready", PYBUILD_TEST_PAUSE_FILE=str(marker))
    proc = subprocess.Popen([sys.executable, "-c", code, store.root, desc.media_type, str(desc.digest),
                             str(desc.size), str(diff_id)], env=env)
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert not store.snapshots.ready(diff_id)
    report = store.fsck()
    assert report.ok and "interrupted before its ready marker" in " ".join(report.notes)
    path = store.snapshots.ensure(desc, diff_id)
    assert os.path.getsize(os.path.join(path, "bin", "x")) == 10_000
    assert store.fsck().ok
