"""layers.store.removal (the rules of ``rmi`` and ``system prune -a``) and layers.store.usage.disk_usage
(``system df``), against a real store with registered roots."""

from __future__ import annotations

import os

import pytest

from layers.errors import AlreadyExists, NotFound, StoreError
from layers.store import Store
from layers.store.removal import containers_using, remove_images, untag_unused
from layers.store.usage import disk_usage

from .helpers import make_image


@pytest.fixture
def store(tmp_path):
    return Store(str(tmp_path / "root"))


def test_by_name_untags_that_name_only(store):
    m = make_image(store, {"a": b"1"})
    store.images.tag("one", m.digest)
    store.images.tag("two", m.digest)
    result = remove_images(store, ["one"])
    assert [r.untagged for r in result.removed] == [("docker.io/library/one:latest",)]
    assert result.removed[0].image_id is None and not result.deleted and result.error() is None
    assert store.blobs.has(m.layers[0].digest)
    result = remove_images(store, ["two"])
    assert result.removed[0].image_id == m.config.digest and result.deleted == (m.config.digest,)
    assert list(store.blobs.digests()) == []


def test_by_id_with_several_names_needs_force(store):
    m = make_image(store, {"a": b"2"})
    store.images.tag("one", m.digest)
    store.images.tag("two", m.digest)
    result = remove_images(store, [m.config.digest.hex[:12]])
    assert not result.removed and isinstance(result.error(), AlreadyExists)
    assert "referenced by 2 names" in str(result.error())
    result = remove_images(store, [m.config.digest.hex[:12]], force=True)
    assert sorted(result.removed[0].untagged) == ["docker.io/library/one:latest", "docker.io/library/two:latest"]
    assert result.deleted == (m.config.digest,)


def test_an_image_a_container_uses_keeps_its_last_name_unless_forced(store):
    m = make_image(store, {"a": b"3"})
    store.images.tag("used", m.digest)
    store.roots.put("containers", "c1", docs=[m.digest])
    assert containers_using(store) == {m.digest}
    result = remove_images(store, ["used"])
    assert "used by a container" in str(result.error()) and store.images.names_for(m.digest)
    assert untag_unused(store) == ()
    # -f: the name goes, the root still keeps the content
    result = remove_images(store, ["used"], force=True)
    assert result.removed and not result.deleted and store.blobs.has(m.layers[0].digest)
    # an explicit in_use answer (a set or a callable) replaces the roots
    store.images.tag("used", m.digest)
    assert remove_images(store, ["used"], in_use=set(), collect=False).removed
    store.images.tag("used", m.digest)
    assert remove_images(store, ["used"], in_use=lambda d: d == m.config.digest).failed


def test_several_refs_one_failing_and_the_count_error(store):
    m = make_image(store, {"a": b"4"})
    store.images.tag("here", m.digest)
    result = remove_images(store, ["nothere", "here"])
    assert [r.text for r in result.removed] == ["here"] and [f.text for f in result.failed] == ["nothere"]
    assert isinstance(result.failed[0].error, NotFound)
    assert str(result.error()) == "1 of 2 images not removed: nothere"
    assert isinstance(remove_images(store, ["nothere"]).error(), NotFound)  # one asked: its own error


def test_an_unreadable_root_refuses_without_force_and_frees_nothing_with_it(store):
    m = make_image(store, {"a": b"5"})
    store.images.tag("x", m.digest)
    os.makedirs(os.path.join(store.roots.dir, "containers"))
    bad = os.path.join(store.roots.dir, "containers", "c9.json")
    with open(bad, "w") as f:
        f.write("{")
    result = remove_images(store, ["x"])
    assert isinstance(result.error(), StoreError) and bad in str(result.error())
    with pytest.raises(StoreError):
        untag_unused(store)
    result = remove_images(store, ["x"], force=True)  # GC stops on the root: the content stays
    assert result.removed and not result.deleted and store.blobs.has(m.layers[0].digest)
    with pytest.raises(StoreError, match="c9.json"):
        disk_usage(store)


def test_untag_unused_keeps_what_containers_use(store):
    used = make_image(store, {"a": b"6"})
    free = make_image(store, {"a": b"7"})
    store.images.tag("used", used.digest)
    store.images.tag("free:1", free.digest)
    store.images.tag("free:2", free.digest)
    store.roots.put("containers", "c1", docs=[used.digest])
    assert sorted(untag_unused(store)) == ["docker.io/library/free:1", "docker.io/library/free:2"]
    assert [r.name for r in store.images.list()] == ["docker.io/library/used:latest"]


def test_disk_usage_counts_what_gc_would_take(store):
    used = make_image(store, {"a": b"8" * 5000})
    named = make_image(store, {"a": b"9" * 7000})
    loose = store.blobs.put_bytes(b"loose" * 1000)
    store.images.tag("used", used.digest)
    store.images.tag("named", named.digest)
    store.roots.put("containers", "c1", docs=[used.digest])
    usage = disk_usage(store)
    sizes = {d: os.stat(store.blobs.path(d)).st_size for d in store.blobs.digests()}
    assert (usage.images.total, usage.images.active) == (2, 1)
    assert usage.images.size == sum(sizes.values()) and usage.images.reclaimable == sizes[loose]
    assert usage.snapshots.total == 0 and usage.ingest.total == 0
    assert disk_usage(store, in_use=set()).images.active == 0
    store.images.untag("named")
    reclaimable = disk_usage(store).images.reclaimable
    assert reclaimable == sizes[loose] + sum(sizes[d] for d in (named.digest, named.config.digest,
                                                                named.layers[0].digest))
    assert store.gc().bytes_freed == reclaimable
    assert disk_usage(store).images.reclaimable == 0
