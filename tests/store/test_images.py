"""Image records, resolve, load, GC roots (records, registered roots, leases) and fsck of records."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time

import pytest

from layers.digest import Digest
from layers.errors import InvalidInput, NotFound, StoreError
from layers.store import Store

from .helpers import make_image


@pytest.fixture
def store(tmp_path):
    return Store(str(tmp_path / "root"))


def test_tag_resolve_load(store):
    m = make_image(store, {"a": b"1"})
    rec = store.images.tag("busybox", m.digest)
    assert rec.name == "docker.io/library/busybox:latest"
    config_digest = m.config.digest
    assert rec.id == config_digest
    for text in ("busybox", "busybox:latest", "docker.io/library/busybox:latest", str(config_digest),
                 config_digest.hex, config_digest.hex[:12], str(m.digest), f"busybox@{m.digest}"):
        assert store.images.resolve(text).manifest_digest == m.digest, text
    image = store.images.load(rec)
    assert image.manifest == m and image.id == config_digest
    assert image.config.config.cmd == ("sh",)
    with pytest.raises(NotFound):
        store.images.resolve("nothere")
    with pytest.raises(NotFound):
        store.images.resolve("busybox:2")


def test_repo_digest_of_an_image_taken_out_of_an_index(store):
    m = make_image(store, {"a": b"1"})
    index = Digest.from_bytes(b"the registry's index (not needed in the store to be a name's repo digest)")
    rec = store.images.tag("reg.example/app:1", m.digest, index=index)
    assert (rec.manifest_digest, rec.index, rec.repo_digest) == (m.digest, index, index)
    assert store.images.list()[0] == rec  # read back from images/index.json
    for text in (f"reg.example/app@{index}", str(index)):
        found = store.images.resolve(text)
        assert (found.name, found.manifest_digest) == ("reg.example/app:1", m.digest), text
    with pytest.raises(NotFound):
        store.images.resolve(f"reg.example/other@{index}")  # another repository's digest is not this name's
    assert [r.name for r in store.images.records_for(index)] == ["reg.example/app:1"]
    plain = store.images.tag("reg.example/app:2", m.digest)
    assert plain.index is None and plain.repo_digest == m.digest
    assert store.images.tag("reg.example/app:1", m.digest).index is None  # a new pull or tag replaces it


def test_tag_refuses_unknown_manifest(store):
    with pytest.raises(NotFound):
        store.images.tag("x", Digest.from_bytes(b"no such manifest"))
    assert store.images.list() == []


def test_ambiguous_prefix(store):
    ids = set()
    i = 0
    while True:  # two images whose ids share a first hex digit
        m = make_image(store, {"f": str(i).encode()})
        store.images.tag(f"img{i}", m.digest)
        ids.add(m.config.digest.hex[0])
        i += 1
        if len(ids) < i:
            break
    first = [r.id.hex[0] for r in store.images.list()]
    dup = next(c for c in first if first.count(c) > 1)
    with pytest.raises(InvalidInput, match="ambiguous"):
        store.images.resolve(dup)


def test_untag_and_gc(store):
    keep = make_image(store, {"k": b"keep"})
    drop = make_image(store, {"d": b"drop"})
    store.images.tag("keep", keep.digest)
    store.images.tag("drop", drop.digest)
    store.images.untag("drop")
    with pytest.raises(NotFound):
        store.images.untag("drop")
    result = store.gc()
    assert drop.digest in result.blobs_removed
    assert drop.layers[0].digest in result.blobs_removed
    assert store.blobs.has(keep.digest) and store.blobs.has(keep.layers[0].digest)
    assert store.images.load(store.images.resolve("keep"))
    assert store.fsck().ok


def test_gc_keeps_what_a_registered_root_keeps(store):
    m = make_image(store, {"c": b"container"})
    os.makedirs(os.path.join(store.root, "containers", "abc123"))
    with open(os.path.join(store.root, "containers", "abc123", "image-ref"), "w") as f:
        f.write(str(m.digest) + "\n")  # another room's file: GC does not read it
    store.gc()
    assert not store.blobs.has(m.layers[0].digest)
    m = make_image(store, {"c": b"container"})
    other = make_image(store, {"d": b"single blob"})
    store.roots.put("containers", "abc123", docs=[m.digest])
    store.roots.put("build-cache", "k1", blobs=[other.layers[0].digest])
    store.gc()
    assert store.blobs.has(m.digest) and store.blobs.has(m.config.digest) and store.blobs.has(m.layers[0].digest)
    assert store.blobs.has(other.layers[0].digest) and not store.blobs.has(other.digest)
    store.roots.drop("containers", "abc123")
    store.gc()
    assert not store.blobs.has(m.layers[0].digest) and store.blobs.has(other.layers[0].digest)
    store.roots.drop("build-cache", "k1")
    store.gc()
    assert list(store.blobs.digests()) == []


def test_gc_keeps_the_snapshots_a_root_names(store):
    m = make_image(store, {"s": b"snap"})
    diff_id = store.images.load(m.digest).config.diff_ids[0]
    store.snapshots.ensure(m.layers[0], diff_id)
    store.roots.put("build-cache", "k1", blobs=[m.layers[0].digest], snapshots=[diff_id])
    store.gc()
    assert [n for n, ready in store.snapshots.list() if ready] == [diff_id.hex]
    store.roots.drop("build-cache", "k1")
    result = store.gc()
    assert diff_id.hex in result.snapshots_removed and m.layers[0].digest in result.blobs_removed


@pytest.mark.parametrize("body", [b"{torn", b"[]"])
def test_gc_with_an_unreadable_root_frees_nothing(store, body):
    m = make_image(store, {"u": b"unreferenced"})
    before = sorted(store.blobs.digests())
    assert m.digest in before
    os.makedirs(os.path.join(store.roots.dir, "containers"))
    bad = os.path.join(store.roots.dir, "containers", "deadbeef.json")
    with open(bad, "wb") as f:
        f.write(body)
    with pytest.raises(StoreError, match="removed nothing: store root ") as err:
        store.gc()
    assert bad in str(err.value)
    assert sorted(store.blobs.digests()) == before
    os.unlink(bad)
    assert m.digest in store.gc().blobs_removed


def _hold_lease(root: str, ready, release) -> None:
    store = Store(root)
    with store.lease():
        store.blobs.put_bytes(b"work in progress")
        ready.set()
        release.wait(30)


def test_gc_keeps_a_lease_of_another_process_without_waiting_for_it(store):
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    p = ctx.Process(target=_hold_lease, args=(store.root, ready, release))
    p.start()
    try:
        assert ready.wait(10)
        t0 = time.monotonic()
        result = store.gc(timeout=5)
        assert time.monotonic() - t0 < 4, "GC waited for the whole lease"   # waiting would take its 5 s
        assert Digest.from_bytes(b"work in progress") not in result.blobs_removed
        assert store.blobs.has(Digest.from_bytes(b"work in progress"))
    finally:
        release.set()
        p.join(10)
    assert Digest.from_bytes(b"work in progress") in store.gc().blobs_removed
    assert os.listdir(os.path.join(store.root, "leases")) == []


def test_a_killed_lease_holder_pins_nothing(store):
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    p = ctx.Process(target=_hold_lease, args=(store.root, ready, release))
    p.start()
    assert ready.wait(10)
    os.kill(p.pid, signal.SIGKILL)
    p.join(10)
    assert len(os.listdir(os.path.join(store.root, "leases"))) == 1  # left behind, its flock gone
    result = store.gc(timeout=5)
    assert Digest.from_bytes(b"work in progress") in result.blobs_removed
    assert len(result.leases_removed) == 1 and os.listdir(os.path.join(store.root, "leases")) == []


def test_gc_waits_only_for_a_commit_in_progress(store):
    """The shared GC lock is held for the instant of a commit: GC gives up after its timeout then."""
    guard = store.leases.guard()
    guard.acquire()
    try:
        with pytest.raises(StoreError, match="stayed busy"):
            store.gc(timeout=0.2)
    finally:
        guard.release()
    store.gc(timeout=0.2)


def test_fsck_reports_broken_record(store):
    m = make_image(store, {"b": b"broken"})
    store.images.tag("broken", m.digest)
    store.blobs.delete(m.layers[0].digest)
    report = store.fsck()
    assert not report.ok
    assert "docker.io/library/broken:latest" in report.problems[0]
    assert "not in the store" in report.problems[0]
    assert store.fsck(repair=True).ok
    assert store.images.list() == []


def test_concurrent_tagging_keeps_every_record(store):
    ms = [make_image(store, {"n": str(i).encode()}) for i in range(8)]
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=lambda i=i: Store(store.root).images.tag(f"t{i}", ms[i].digest)) for i in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(20)
        assert p.exitcode == 0
    assert len(store.images.list()) == 8


def test_index_record_loads_the_host_platform_and_keeps_children(store):
    from layers.descriptor import Platform
    from layers.index import Index

    host = make_image(store, {"h": b"host"})
    other = make_image(store, {"o": b"other"})
    index = Index.build([host.descriptor(Platform.host()), other.descriptor(Platform.parse("linux/s390x"))])
    store.blobs.put_bytes(index.raw)
    rec = store.images.tag("multi", index.digest)
    assert rec.id == host.config.digest
    image = store.images.load(rec)
    assert image.manifest == host and image.index == index and image.digest == index.digest
    store.gc()
    assert store.blobs.has(other.layers[0].digest) and store.blobs.has(host.layers[0].digest)
    assert store.fsck().ok


def test_what_a_lease_touches_is_kept_until_it_ends(store):
    """Inside a lease, resolving an image and finding a blob keep them from a GC that runs meanwhile
    (here from another Store object, as another process would); once the lease ends they go."""
    m = make_image(store, {"k": b"kept"})
    store.images.tag("k", m.digest)
    stray = store.blobs.put_bytes(b"stray")  # outside any lease: nothing references it
    other = Store(store.root)
    with store.lease():
        store.images.resolve("k")
        assert store.blobs.has(stray)
        store.images.untag("k")
        result = other.gc(timeout=5)
        assert result.blobs_removed == ()
        assert store.images.load(m.digest).manifest == m  # still whole
    result = other.gc(timeout=5)
    assert {m.digest, m.config.digest, m.layers[0].digest, stray} <= set(result.blobs_removed)
