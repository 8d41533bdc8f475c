"""The executor in-process over the real store, overlayfs and sandbox: cache hits and misses, one
changed file reruns only what follows, reproducible digests, heredocs, build mounts, multi-stage."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest

CASES = Path(__file__).resolve().parents[2] / "testdata" / "dockerfiles"


@pytest.fixture(scope="module")
def base_store(busybox_tar: Path, tmp_path_factory: pytest.TempPathFactory):
    from layers.store import Store
    from layers.store.importer import import_rootfs

    root = tmp_path_factory.mktemp("exec-base") / "root"
    with open(busybox_tar, "rb") as f:
        import_rootfs(Store(str(root)), f, "busybox:latest")
    yield root


@pytest.fixture
def store(base_store: Path, tmp_path: Path):
    from layers.store import Store

    root = tmp_path / "root"
    shutil.copytree(base_store, root, symlinks=True)
    return Store(str(root))


def _build(store, context: Path, tmp_path: Path, **kw):
    from builder.build import build
    from builder.options import BuildOptions
    from builder.progress import Progress

    log = io.StringIO()
    kw.setdefault("tags", ("t:1",))
    progress = Progress(log, "plain")
    try:
        outcome = build(BuildOptions(context_dir=str(context), **kw), store, progress=progress,
                        state_dir=str(tmp_path / "state"))
    finally:
        progress.close()
    return outcome, log.getvalue()


def _files(store, ref: str) -> dict[str, bytes]:
    """Path -> content of regular files the image's own layers add (the busybox base layer skipped)."""
    img = store.images.load(store.images.resolve(ref))
    out: dict[str, bytes] = {}
    for layer in img.manifest.layers[1:]:
        with open(store.blobs.path(layer.digest), "rb") as f:
            data = gzip.decompress(f.read())
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for m in tar.getmembers():
                if m.isfile():
                    out[m.name.lstrip("./")] = tar.extractfile(m).read()
    return out


def test_cache_hit_and_one_change(store, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "a.txt").write_text("a1\n")
    (ctx / "b.txt").write_text("b1\n")
    (ctx / "Dockerfile").write_text(
        "FROM busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt > /from-a\nCOPY b.txt /b.txt\nRUN cat /a.txt /b.txt > /both\n")
    first, _ = _build(store, ctx, tmp_path)
    assert first.result.cache_hits == 0 and first.result.steps == 4
    again, log = _build(store, ctx, tmp_path)
    assert again.result.cache_hits == 4 and log.count("CACHED") == 4
    assert again.result.image_id == first.result.image_id
    (ctx / "b.txt").write_text("b2\n")
    third, _ = _build(store, ctx, tmp_path)
    assert third.result.cache_hits == 2
    assert _files(store, "t:1")["both"] == b"a1\nb2\n"
    assert third.result.layers[:3] == first.result.layers[:3] and third.result.layers[3:] != first.result.layers[3:]


def test_reproducible_with_timestamp(store, tmp_path: Path) -> None:
    ids = [_build(store, CASES / "heredocs", tmp_path, timestamp=1700000000, no_cache=True)[0].result for _ in range(2)]
    assert ids[0].image_id == ids[1].image_id and ids[0].manifest.digest == ids[1].manifest.digest
    assert json.loads(ids[0].config.raw)["created"] == "2023-11-14T22:13:20Z"


def test_heredocs_and_history(store, tmp_path: Path) -> None:
    outcome, _ = _build(store, CASES / "heredocs", tmp_path, build_args=(("GREETING", "hi"),))
    files = _files(store, "t:1")
    assert files["opt/app/greeting.txt"] == b"hi world\n"
    assert files["opt/app/literal.txt"] == b"${GREETING} stays literal\n"
    assert files["opt/app/status"] == b"built\n" and files["opt/app/tabs.txt"] == b"indented with a tab\n"
    created_by = [h.created_by for h in outcome.result.config.history]
    assert created_by[1].startswith("ARG GREETING") and created_by[-1].startswith("CMD [")
    assert len(outcome.result.config.diff_ids) == len(outcome.result.layers) == 5


def test_mounts(store, tmp_path: Path) -> None:
    from builder.errors import BuildError
    from builder.options import Secret

    secret = tmp_path / "token"
    secret.write_text("s3cr3t-value-do-not-leak")
    _build(store, CASES / "mounts", tmp_path, secrets=(Secret(id="token", src=str(secret)),))
    files = _files(store, "t:1")
    assert files["cache-runs"] == b"1\n" and files["secret-status"] == b"secret was readable\n"
    assert files["secret-size"] == b"24\n" and files["dep-list"] == b"dep\n"
    assert files["data-copy"] == b"context data\n" and files["tmpfs-list"] == b"x\n" and files["net"] == b"offline\n"
    assert not any(k.startswith(("run/", "etc/", "cache/", "scratch/", "mnt/")) or k == "tok" for k in files), sorted(files)
    for blob in Path(store.root, "blobs").rglob("*"):
        if blob.is_file():
            data = blob.read_bytes()
            assert b"s3cr3t-value" not in (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
    _build(store, CASES / "mounts", tmp_path, no_cache=True, secrets=(Secret(id="token", src=str(secret)),))
    assert _files(store, "t:1")["cache-runs"] == b"2\n"
    with pytest.raises(BuildError, match=r"^Dockerfile:7: RUN: secret 'token' is required"):
        _build(store, CASES / "mounts", tmp_path, no_cache=True)


def test_multistage_parallel_target(store, tmp_path: Path) -> None:
    ctx = tmp_path / "ms"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM busybox AS one\nRUN echo one > /one && sleep 1\n"
        "FROM busybox AS two\nRUN echo two > /two && sleep 1\n"
        "FROM busybox AS unused\nRUN exit 1\n"
        "FROM scratch\nCOPY --from=one /one /\nCOPY --from=two /two /\n"
        "FROM busybox AS final\nCOPY --from=3 / /merged/\nCMD [\"cat\", \"/merged/one\", \"/merged/two\"]\n")
    outcome, log = _build(store, ctx, tmp_path)
    files = _files(store, "t:1")
    assert files["merged/one"] == b"one\n" and files["merged/two"] == b"two\n"
    lines = log.splitlines()
    first_done = min(i for i, l in enumerate(lines) if " DONE " in l)
    assert any("[one] RUN" in l for l in lines[:first_done]) and any("[two] RUN" in l for l in lines[:first_done])
    assert "[unused]" not in log and outcome.plan.order == (0, 1, 3, 4)


def test_tampered_cache_blob_is_a_miss(store, tmp_path: Path) -> None:
    ctx = tmp_path / "t"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo original > /f\n")
    first, _ = _build(store, ctx, tmp_path)
    blob = Path(store.blobs.path(first.result.layers[-1].digest))
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    os.chmod(blob, 0o600)
    blob.write_bytes(bytes(data))
    from builder.cache import BuildCache

    again, log = _build(store, ctx, tmp_path, timestamp=1)
    assert again.result.cache_hits == 0 and "CACHED" not in log


def _layer_names(store, ref: str, index: int) -> list[str]:
    img = store.images.load(store.images.resolve(ref))
    with open(store.blobs.path(img.manifest.layers[index].digest), "rb") as f:
        data = gzip.decompress(f.read())
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getnames()


def test_run_layer_whiteouts_and_opaque_dirs(store, tmp_path: Path) -> None:
    """SECURITY.md case 7 from a real RUN: a directory emptied and refilled becomes opaque (lower
    children hidden, new ones kept); a file removed is a whiteout; a directory made where a lower
    *file* was gets no opaque marker (overlayfs sets one, but there is no lower directory to hide)."""
    from runner.rootfs import OverlayMount

    ctx = tmp_path / "wh"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM busybox\n"
        "RUN --network=none rm -rf /etc && mkdir /etc && echo new > /etc/new && rm /bin/ls && "
        "rm /bin/true && mkdir /bin/true && touch /bin/true/inside\n")
    _build(store, ctx, tmp_path)
    names = _layer_names(store, "t:1", 1)
    assert "etc/.wh..wh..opq" in names and "etc/new" in names
    assert "bin/.wh.ls" in names and "bin/true/inside" in names
    assert "bin/true/.wh..wh..opq" not in names, names
    assert not any(n.startswith("etc/") and n not in ("etc/.wh..wh..opq", "etc/new") for n in names)
    img = store.images.load(store.images.resolve("t:1"))
    base_etc = sorted(os.listdir(os.path.join(store.snapshots.lowerdirs(img)[-1], "etc")))
    assert base_etc and base_etc != ["new"]  # the base layer had files in /etc to hide
    with OverlayMount(store.snapshots.lowerdirs(img), None, None, str(tmp_path / "view")) as root:
        assert sorted(os.listdir(os.path.join(root, "etc"))) == ["new"]
        assert os.listdir(os.path.join(root, "bin", "true")) == ["inside"]
        assert not os.path.lexists(os.path.join(root, "bin", "ls"))
        assert os.path.exists(os.path.join(root, "bin", "busybox"))
