"""Blob store: verify on read, tampering, caller digests checked, resumable and concurrent ingests."""

from __future__ import annotations

import io
import multiprocessing
import os
import stat

import pytest

from layers.digest import Digest
from layers.errors import IntegrityError, NotFound
from layers.store import Store


def test_put_and_read_back(tmp_path):
    store = Store(str(tmp_path / "root"))
    d = store.blobs.put_bytes(b"hello")
    assert d == Digest.from_bytes(b"hello")
    assert store.blobs.read_bytes(d, 100) == b"hello"
    mode = os.stat(store.blobs.path(d)).st_mode
    assert not mode & 0o222, "blobs are read-only files"
    for sub in ("", "blobs", "ingest", "images", "snapshots", "locks"):
        assert stat.S_IMODE(os.stat(tmp_path / "root" / sub).st_mode) == 0o700
    assert store.blobs.put_bytes(b"hello") == d  # idempotent


def test_caller_digest_is_checked(tmp_path):
    store = Store(str(tmp_path))
    wrong = Digest.from_bytes(b"other")
    with pytest.raises(IntegrityError):
        store.blobs.put_bytes(b"hello", expected=wrong)
    with pytest.raises(IntegrityError):
        store.blobs.put_stream(io.BytesIO(b"hello"), expected=wrong)
    with pytest.raises(IntegrityError):
        store.blobs.put_stream(io.BytesIO(b"hello"), expected=Digest.from_bytes(b"hello"), size=4)
    assert not store.blobs.has(wrong)
    assert list(store.blobs.digests()) == []
    assert [n for n in os.listdir(tmp_path / "ingest") if not n.endswith(".lock")] == []


def test_tampered_blob_is_detected_on_read_and_by_fsck(tmp_path):
    store = Store(str(tmp_path))
    d = store.blobs.put_bytes(b"x" * 4096)
    path = store.blobs.path(d)
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.write(b"y")
    with pytest.raises(IntegrityError):
        store.blobs.read_bytes(d, 1 << 20)
    with pytest.raises(IntegrityError):
        with store.blobs.open(d) as r:
            r.verify_rest()
    report = store.fsck()
    assert not report.ok and str(d) in report.problems[0]
    report = store.fsck(repair=True)
    assert report.ok and not store.blobs.has(d)


def test_truncated_blob_and_size_mismatch(tmp_path):
    store = Store(str(tmp_path))
    d = store.blobs.put_bytes(b"abcdef")
    with pytest.raises(IntegrityError):
        with store.blobs.open(d, size=5) as r:
            r.verify_rest()
    with pytest.raises(NotFound):
        store.blobs.open(Digest.from_bytes(b"absent"))


def test_resume_after_partial_write(tmp_path):
    store = Store(str(tmp_path))
    data = os.urandom(300_000)
    d = Digest.from_bytes(data)
    with store.blobs.ingest(d, len(data)) as ing:
        assert ing.offset == 0
        ing.write(data[:100_000])
        # leaving without commit (an interrupted download) keeps the bytes
    assert not store.blobs.has(d)
    with store.blobs.ingest(d, len(data)) as ing:
        assert ing.offset == 100_000
        ing.write(data[ing.offset:])
        assert ing.commit() == d
    assert store.blobs.read_bytes(d, 1 << 20) == data


def test_resume_of_bad_partial_fails_and_is_removed(tmp_path):
    store = Store(str(tmp_path))
    data = b"a" * 1000
    d = Digest.from_bytes(data)
    with store.blobs.ingest(d, len(data)) as ing:
        ing.write(b"b" * 10)  # wrong bytes left behind
    with pytest.raises(IntegrityError):
        with store.blobs.ingest(d, len(data)) as ing:
            ing.write(data[ing.offset:])
            ing.commit()
    assert not os.path.exists(os.path.join(tmp_path, "ingest", f"sha256-{d.hex}"))
    with store.blobs.ingest(d, len(data)) as ing:  # a clean retry works
        assert ing.offset == 0
        ing.write(data)
        ing.commit()
    assert store.blobs.has(d)


def test_more_bytes_than_expected_is_refused(tmp_path):
    store = Store(str(tmp_path))
    with pytest.raises(IntegrityError):
        with store.blobs.ingest(Digest.from_bytes(b"abc"), 3) as ing:
            ing.write(b"abcd")


def _ingest_worker(root: str, seed: int, same: bool) -> str:
    store = Store(root)
    data = (b"shared-" if same else f"blob-{seed}-".encode()) * 200_000
    d = Digest.from_bytes(data)
    with store.blobs.ingest(d, len(data)) as ing:
        if ing.offset:
            ing.restart()
        for i in range(0, len(data), 65536):
            ing.write(data[i:i + 65536])
        ing.commit()
    got = store.blobs.read_bytes(d, len(data))
    assert got == data
    return str(d)


@pytest.mark.parametrize("same", [True, False], ids=["same-blob", "different-blobs"])
def test_concurrent_ingest_from_four_processes(tmp_path, same):
    root = str(tmp_path / "root")
    Store(root)
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(4) as pool:
        digests = pool.starmap(_ingest_worker, [(root, i, same) for i in range(4)])
    store = Store(root)
    assert len(set(digests)) == (1 if same else 4)
    assert store.fsck().ok
    assert sorted(str(d) for d in store.blobs.digests()) == sorted(set(digests))


def test_an_ingest_of_a_blob_stored_meanwhile_only_checks_what_is_written(tmp_path):
    """The blob appears while this ingest waits for its lock (another process stored it): ``present``
    says so; writes are hashed but not stored, and commit still refuses bytes that are not the blob."""
    store = Store(str(tmp_path))
    data = b"stored by another process" * 1000
    d = Digest.from_bytes(data)
    store.blobs.put_bytes(data)
    with store.blobs.ingest(d, len(data)) as ing:
        assert ing.present and ing.offset == 0
        ing.write(data)
        assert ing.commit() == d
    with pytest.raises(IntegrityError, match="hashes to"):
        with store.blobs.ingest(d, len(data)) as ing:
            ing.write(b"x" * len(data))
            ing.commit()
    with pytest.raises(IntegrityError, match="more than the expected"):
        with store.blobs.ingest(d, len(data)) as ing:
            ing.write(data + b"!")
    assert store.blobs.read_bytes(d, len(data)) == data
    assert [n for n in os.listdir(tmp_path / "ingest") if not n.endswith(".lock")] == []   # nothing written
    assert store.fsck().ok


def test_a_full_disk_after_the_rename_never_truncates_the_stored_blob(tmp_path, monkeypatch):
    """The blob is renamed into place, then recording it in the lease fails (ENOSPC): the error is a
    one-line StoreError, and what the caller does next (a pull drops its partial bytes with
    ``restart``) cannot touch the stored file: it still hashes to its name."""
    import errno

    from layers.errors import StoreError

    store = Store(str(tmp_path))
    data = b"a layer that fits, and then the lease does not" * 5000
    d = Digest.from_bytes(data)

    def full(kind, digest):
        raise OSError(errno.ENOSPC, "No space left on device")

    with store.lease():
        monkeypatch.setattr(store.blobs.leases, "keep", full)
        with store.blobs.ingest(d, len(data)) as ing:
            ing.write(data)
            with pytest.raises(StoreError, match="No space left on device recording blob"):
                ing.commit()
            ing.restart()                          # what the pull's error path does
        monkeypatch.undo()
    assert store.blobs.read_bytes(d, len(data)) == data
    assert store.fsck().ok
