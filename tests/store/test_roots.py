"""Registered roots (layers.store.roots): put/drop/read_all, and unreadable roots fail loudly."""

from __future__ import annotations

import os

import pytest

from layers.digest import Digest
from layers.errors import InvalidInput, StoreError
from layers.store import Store

D1 = Digest.parse("sha256:" + "1" * 64)
D2 = Digest.parse("sha256:" + "2" * 64)


def test_put_get_drop(tmp_path):
    store = Store(str(tmp_path / "root"))
    store.roots.put("containers", "abc", docs=[D1], snapshots=[D2])
    root = store.roots.get("containers", "abc")
    assert root is not None and root.docs == {D1} and root.snapshots == {D2} and not root.blobs
    assert store.roots.keys("containers") == ["abc"]
    assert [r.key for r in store.roots.read_all()] == ["abc"]
    store.roots.put("containers", "abc", blobs=[D1])          # replaces
    assert store.roots.get("containers", "abc").blobs == {D1}
    store.roots.drop("containers", "abc")
    store.roots.drop("containers", "abc")                      # absent is fine
    assert store.roots.get("containers", "abc") is None
    assert list(store.roots.read_all()) == []


@pytest.mark.parametrize("name", ["../x", "a/b", "", ".hidden", "x" * 200])
def test_bad_names_refused_before_any_path(tmp_path, name):
    store = Store(str(tmp_path / "root"))
    with pytest.raises(InvalidInput):
        store.roots.put(name, "k", docs=[D1])
    with pytest.raises(InvalidInput):
        store.roots.put("owner", name, docs=[D1])
    assert not os.listdir(store.roots.dir)


@pytest.mark.parametrize("body", [b"{not json", b'{"owner":"o","key":"k","docs":["sha256:../../x"]}',
                                  b'{"owner":"other","key":"k"}', b"[]"])
def test_unreadable_root_raises(tmp_path, body):
    store = Store(str(tmp_path / "root"))
    store.roots.put("o", "good", docs=[D1])
    with open(os.path.join(store.roots.dir, "o", "k.json"), "wb") as f:
        f.write(body)
    with pytest.raises(StoreError, match="k.json"):
        list(store.roots.read_all())


def test_stray_file_is_unreadable_root(tmp_path):
    store = Store(str(tmp_path / "root"))
    os.makedirs(os.path.join(store.roots.dir, "o"))
    open(os.path.join(store.roots.dir, "o", "notes.txt"), "w").close()
    with pytest.raises(StoreError, match="not a root record"):
        list(store.roots.read_all())


def test_unreadable_lists_every_bad_root_and_read_all_still_fails_on_the_first(tmp_path):
    store = Store(str(tmp_path / "root"))
    store.roots.put("o", "good", docs=[D1])
    for name in ("a.json", "b.json"):
        with open(os.path.join(store.roots.dir, "o", name), "wb") as f:
            f.write(b"{torn")
    errors = store.roots.unreadable()
    assert [("a.json" in str(e), "b.json" in str(e)) for e in errors] == [(True, False), (False, True)]
    with pytest.raises(StoreError, match="a.json"):
        list(store.roots.read_all())


def test_fsck_reports_an_unreadable_root_and_repair_keeps_it(tmp_path):
    from .helpers import make_image

    store = Store(str(tmp_path / "root"))
    m = make_image(store, {"x": b"unreferenced"})
    bad = os.path.join(store.roots.dir, "containers", "c1.json")
    os.makedirs(os.path.dirname(bad))
    with open(bad, "wb") as f:
        f.write(b"[]")
    report = store.fsck()
    assert not report.ok and [p for p in report.problems if bad in p], report.problems
    assert not [n for n in report.notes if "unreferenced" in n]  # nothing is reclaimable while it stays
    report = store.fsck(repair=True)
    assert not report.ok and os.path.exists(bad) and store.blobs.has(m.digest)
    assert [n for n in report.notes if "removed nothing" in n and bad in n], report.notes
    os.unlink(bad)
    assert store.fsck(repair=True).ok and not store.blobs.has(m.digest)


def test_fsck_reports_a_container_root_whose_image_is_gone(tmp_path):
    from .helpers import make_image

    store = Store(str(tmp_path / "root"))
    m = make_image(store, {"y": b"used"})
    store.roots.put("containers", "c0ffee" * 4, docs=[m.digest])
    assert store.fsck().ok
    store.blobs.delete(m.digest)
    report = store.fsck(repair=True)
    assert not report.ok and store.roots.get("containers", "c0ffee" * 4) is not None
    assert f"container c0ffeec0ffee: its image {m.digest} is not in the store" in report.problems[0]
