"""The executor in-process over the real store, overlayfs and sandbox: cache hits and misses, one
changed file reruns only what follows, reproducible digests, heredocs, build mounts, multi-stage."""

from __future__ import annotations

import gzip
import io
import json
import re
import os
import shutil
import tarfile
import time
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
    assert files["opt/app/shebang.txt"] == b"script ran as /dev/pipes/EOF\n"  # a #! heredoc runs as a file
    created_by = [h.created_by for h in outcome.result.config.history]
    assert created_by[1].startswith("ARG GREETING") and created_by[-1].startswith("CMD [")
    assert len(outcome.result.config.diff_ids) == len(outcome.result.layers) == 6


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
    runs = [l.split()[0] for l in lines if re.match(r"#\d+ \[(one|two) 2/2\] RUN", l)]
    assert len(runs) == 2, lines
    first_done = min(i for i, l in enumerate(lines) if l.split()[0] in runs and " DONE " in l)
    # independent stages run at once: both RUN lines are printed before either of them finishes
    assert all(any(l.startswith(r + " [") for l in lines[:first_done]) for r in runs), lines
    assert "[unused]" not in log and outcome.plan.order == (0, 1, 3, 4)


def test_tampered_cache_blob_is_a_miss(store, tmp_path: Path) -> None:
    ctx = tmp_path / "t"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo original > /f\n")
    first, _ = _build(store, ctx, tmp_path)
    blob = Path(store.blobs.path(first.result.layers[-1].digest))
    memo = json.loads((Path(store.root) / "cache" / "verified.memo").read_text())
    assert blob.name in memo and "sha256:" not in json.dumps(memo)  # trusted while the file is unchanged
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    os.chmod(blob, 0o600)
    blob.write_bytes(bytes(data))

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


def test_bind_mounts_from_the_context_are_filtered_and_throw_away(store, tmp_path: Path) -> None:
    """``--mount=type=bind`` from the context: ``rw`` writes never reach the user's files, what
    .dockerignore leaves out is not visible, and a context symlink never leads to a host path."""
    ctx = tmp_path / "bind"
    (ctx / "sub" / "deep").mkdir(parents=True)
    (ctx / "data.txt").write_text("original\n")
    (ctx / "secret.key").write_text("do not show\n")
    (ctx / "sub" / "keep.txt").write_text("keep\n")
    (ctx / "sub" / "deep" / "drop.log").write_text("drop\n")
    (ctx / "sub" / "deep" / "important.log").write_text("re-included\n")
    os.symlink("/etc", ctx / "hostetc")
    (ctx / ".dockerignore").write_text("secret.key\n**/*.log\n!sub/deep/important.log\n")
    (ctx / "Dockerfile").write_text(
        "FROM busybox\n"
        "RUN --mount=type=bind,target=/ctx,rw cd /ctx && find . | sort > /listing && "
        "echo changed > data.txt && rm sub/keep.txt && cat data.txt > /wrote\n"
        "RUN --mount=type=bind,source=data.txt,target=/d.txt,rw cat /d.txt > /file-before && echo w > /d.txt\n"
        "RUN --mount=type=bind,source=sub,target=/sub ls -R /sub > /sub-listing\n")
    _build(store, ctx, tmp_path)
    files = _files(store, "t:1")
    listing = files["listing"].decode().split()
    assert "./secret.key" not in listing and "./sub/deep/drop.log" not in listing
    assert "./sub/deep/important.log" in listing and "./sub/keep.txt" in listing and "./data.txt" in listing
    assert files["wrote"] == b"changed\n" and files["file-before"] == b"original\n"
    assert (ctx / "data.txt").read_text() == "original\n" and (ctx / "sub" / "keep.txt").exists()
    assert b"drop.log" not in files["sub-listing"] and b"important.log" in files["sub-listing"]
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN --mount=type=bind,source=hostetc,target=/he ls /he\n")
    from builder.errors import BuildError

    with pytest.raises(BuildError, match=r"^Dockerfile:2: RUN: --mount source hostetc: not found"):
        _build(store, ctx, tmp_path)


def test_cache_mount_sharing_owner_and_mode(store, tmp_path: Path) -> None:
    """``sharing=locked`` users never overlap; ``private`` gets its own directory while the shared one is
    in use; ``uid``/``gid``/``mode`` give a new cache directory its owner and mode."""
    ctx = tmp_path / "cache"
    ctx.mkdir()
    locked = ("RUN --mount=type=cache,id=l,target=/c,sharing=locked "
              "echo start-{n} >> /c/log && sleep 1 && echo end-{n} >> /c/log && cp /c/log /log-{n}\n")
    (ctx / "Dockerfile").write_text(
        "FROM busybox AS a\n" + locked.format(n="a") +
        "FROM busybox AS b\n" + locked.format(n="b") +
        # the holder keeps the shared cache "p" in use until the private user has looked (signals go
        # through a second cache "sig"; no timing: a loaded CI machine once let the holder finish first)
        "FROM busybox AS holder\nRUN --mount=type=cache,id=p,target=/c --mount=type=cache,id=sig,target=/s "
        "touch /c/shared-was-here && touch /s/holding && i=0 && "
        "while [ ! -e /s/private-done ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\n"
        "FROM busybox AS private\nRUN --mount=type=cache,id=sig,target=/s "
        "i=0; while [ ! -e /s/holding ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\n"
        "RUN --mount=type=cache,id=p,target=/c,sharing=private --mount=type=cache,id=sig,target=/s "
        "ls -A /c > /private-saw && touch /s/private-done\n"
        "FROM busybox\nCOPY --from=a /log-a /\nCOPY --from=b /log-b /\nCOPY --from=holder /bin/true /holder-done\n"
        "COPY --from=private /private-saw /\n"
        "RUN --mount=type=cache,id=own,target=/o,uid=1000,gid=1001,mode=0750 stat -c '%u:%g %a' /o > /owner\n"
        "RUN --mount=type=cache,id=p,target=/c ls -A /c > /shared-saw\n")
    _build(store, ctx, tmp_path)
    files = _files(store, "t:1")
    later = max(files["log-a"], files["log-b"], key=len).decode().split()
    assert len(later) == 4 and later[0][6:] == later[1][4:] and later[2][6:] == later[3][4:], later
    assert files["private-saw"] == b"" and files["shared-saw"] == b"shared-was-here\n"
    assert files["owner"] == b"1000:1001 750\n"


def test_secret_env_owner_and_tmpfs_options(store, tmp_path: Path) -> None:
    from builder.options import Secret

    secret = tmp_path / "token"
    secret.write_text("s3cr3t-env-value")
    ctx = tmp_path / "sec"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM busybox\n"
        "RUN --mount=type=secret,id=token,env=TOKEN echo ${#TOKEN} > /env-len && test ! -e /run/secrets/token\n"
        "RUN --mount=type=secret,id=token,target=/s/t,uid=1000,gid=1001,mode=0440 stat -c '%u:%g %a' /s/t > /sec-owner\n"
        "RUN --mount=type=tmpfs,target=/tx,size=4194304 cp /bin/busybox /tx/busybox && /tx/busybox true && "
        "df -k /tx | tail -1 | awk '{print $2}' > /tmpfs-size\n")
    outcome, _ = _build(store, ctx, tmp_path, secrets=(Secret(id="token", src=str(secret)),))
    files = _files(store, "t:1")
    assert files["env-len"] == b"16\n" and files["sec-owner"] == b"1000:1001 440\n"
    assert files["tmpfs-size"] == b"4096\n"
    assert not any(k.startswith("s/") or k == "s" for k in files)
    assert b"s3cr3t-env-value" not in outcome.result.config.raw
    for blob in Path(store.root, "blobs").rglob("*"):
        if blob.is_file():
            data = blob.read_bytes()
            assert b"s3cr3t-env" not in (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)


def test_workdir_is_created_owned_by_the_user(store, tmp_path: Path) -> None:
    """WORKDIR makes its missing directories owned by the current USER (BuildKit), so a non-root RUN
    can write there; an existing directory adds no layer."""
    ctx = tmp_path / "wd"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM busybox\nUSER 1000:1001\nWORKDIR /srv/app\nRUN touch made-by-user && id -u > uid\n"
        "WORKDIR /tmp\nWORKDIR rel\n")
    outcome, _ = _build(store, ctx, tmp_path)
    img = store.images.load(store.images.resolve("t:1"))
    members = {}
    for layer in img.manifest.layers[1:]:
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(Path(store.blobs.path(layer.digest)).read_bytes()))) as t:
            members.update({m.name: m for m in t.getmembers()})
    assert (members["srv/app"].uid, members["srv/app"].gid, members["srv/app"].isdir()) == (1000, 1001, True)
    assert members["srv"].uid == 1000 and members["srv/app/made-by-user"].uid == 1000
    assert (members["tmp/rel"].uid, members["tmp"].mode) == (1000, 0o1777)
    assert len(outcome.result.layers) == 1 + 3  # base, WORKDIR /srv/app, RUN, WORKDIR rel (not /tmp)
    assert outcome.result.config.config.working_dir == "/tmp/rel"
    again, _ = _build(store, ctx, tmp_path)
    assert again.result.cache_hits == again.result.steps == 4 and again.result.image_id == outcome.result.image_id


def _tar_bytes(name: str, data: bytes, uid: int = 0) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size, info.uid, info.gid, info.mode = len(data), uid, uid, 0o640
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_add_archives_urls_and_symlinked_sources(store, tmp_path: Path) -> None:
    """ADD unpacks every archive a source names (wildcards too; plain, gzip, bzip2, xz, zstd), keeping
    the archive's owners unless --chown; an archive inside a named directory is copied as it is.
    ADD URL without --checksum keys on the downloaded bytes (a changed remote file is a miss).
    A source that is a symlink is followed inside the context; its target's content is in the key."""
    import bz2
    import http.server
    import lzma
    import threading

    import zstandard

    ctx = tmp_path / "add"
    (ctx / "pkgs" / "inner").mkdir(parents=True)
    (ctx / "pkgs" / "a.tar").write_bytes(_tar_bytes("a.txt", b"plain\n", uid=7))
    (ctx / "pkgs" / "b.tar.gz").write_bytes(gzip.compress(_tar_bytes("b.txt", b"gzip\n")))
    (ctx / "pkgs" / "c.tar.bz2").write_bytes(bz2.compress(_tar_bytes("c.txt", b"bzip2\n")))
    (ctx / "pkgs" / "d.tar.xz").write_bytes(lzma.compress(_tar_bytes("d.txt", b"xz\n")))
    (ctx / "pkgs" / "e.tar.zst").write_bytes(zstandard.ZstdCompressor().compress(_tar_bytes("e.txt", b"zstd\n")))
    (ctx / "pkgs" / "inner" / "kept.tar").write_bytes(_tar_bytes("never.txt", b"x\n"))
    (ctx / "real.txt").write_text("v1\n")
    os.symlink("real.txt", ctx / "link.txt")
    (ctx / "secret.key").write_text("hidden\n")
    os.symlink("secret.key", ctx / "to-ignored")
    (ctx / ".dockerignore").write_text("secret.key\n")
    served = tmp_path / "www"
    served.mkdir()
    (served / "remote.txt").write_text("remote v1\n")
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(served), **kw)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/remote.txt"
    (ctx / "Dockerfile").write_text(
        "FROM busybox\nADD pkgs/*.tar* pkgs/*.zst /x/\nADD --chown=5:6 pkgs/a.tar /owned/\nADD pkgs/inner /inner/\n"
        f"ADD {url} /dl/\nCOPY link.txt /followed.txt\nCOPY to-ignored /stays-a-link\n")
    try:
        first, _ = _build(store, ctx, tmp_path)
        files = _files(store, "t:1")
        assert [files[f"x/{n}.txt"] for n in "abcde"] == [b"plain\n", b"gzip\n", b"bzip2\n", b"xz\n", b"zstd\n"]
        assert files["inner/kept.tar"] == (ctx / "pkgs" / "inner" / "kept.tar").read_bytes()
        assert files["dl/remote.txt"] == b"remote v1\n" and files["followed.txt"] == b"v1\n"
        img = store.images.load(store.images.resolve("t:1"))
        members = {}
        for layer in img.manifest.layers[1:]:
            with tarfile.open(fileobj=io.BytesIO(gzip.decompress(Path(store.blobs.path(layer.digest)).read_bytes()))) as t:
                members.update({m.name: m for m in t.getmembers()})
        assert (members["x/a.txt"].uid, members["x/a.txt"].mode) == (7, 0o640)
        assert (members["owned/a.txt"].uid, members["owned/a.txt"].gid) == (5, 6)
        assert members["stays-a-link"].issym() and members["stays-a-link"].linkname == "secret.key"
        (served / "remote.txt").write_text("remote v2\n")
        (ctx / "real.txt").write_text("v2\n")
        second, _ = _build(store, ctx, tmp_path)
        assert second.result.cache_hits == 3  # the three archive steps; the URL and what follows rerun
        files = _files(store, "t:1")
        assert files["dl/remote.txt"] == b"remote v2\n" and files["followed.txt"] == b"v2\n"
    finally:
        server.shutdown()
    from builder.errors import DockerfileError

    (ctx / "Dockerfile").write_text("FROM busybox\nADD https://example.com/repo.git /src\n")
    with pytest.raises(DockerfileError, match=r"^Dockerfile:2: ADD: .*git sources are not supported"):
        _build(store, ctx, tmp_path)


def test_compression_and_timestamp_are_part_of_the_layer_cache(store, tmp_path: Path) -> None:
    """A layer cached as gzip is not reused for --compression zstd, and one built without a timestamp
    is not reused for SOURCE_DATE_EPOCH (its mtimes are not clamped): the reproducible digest is the
    same whether or not the cache had the step already."""
    import zstandard

    from layers.mediatype import MediaType

    ctx = tmp_path / "zc"
    ctx.mkdir()
    (ctx / "f").write_text("data\n")
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY f /f\nRUN echo ran > /r\n")
    gz, _ = _build(store, ctx, tmp_path)
    zs, _ = _build(store, ctx, tmp_path, compression="zstd")
    assert zs.result.cache_hits == 0 and all(l.media_type == MediaType.OCI_LAYER_ZSTD for l in zs.result.layers[1:])
    data = Path(store.blobs.path(zs.result.layers[-1].digest)).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(zstandard.ZstdDecompressor().decompressobj().decompress(data))) as tar:
        assert tar.extractfile("r").read() == b"ran\n"
    assert _build(store, ctx, tmp_path, compression="zstd")[0].result.cache_hits == 2
    time.sleep(1.1)  # what a reused unclamped layer would carry differs from a fresh one
    warm = _build(store, ctx, tmp_path, timestamp=1700000000)[0].result  # the cache has the gzip steps
    assert warm.cache_hits == 0
    clean = _build(store, ctx, tmp_path, timestamp=1700000000, no_cache=True)[0].result
    assert warm.image_id == clean.image_id and warm.manifest.digest == clean.manifest.digest
    assert gz.result.image_id != warm.image_id


def test_build_network_host_by_default_and_none_on_request(store, tmp_path: Path) -> None:
    ctx = tmp_path / "net"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN ls /sys/class/net > /nets\n")
    _build(store, ctx, tmp_path)
    host_nets = _files(store, "t:1")["nets"].split()
    assert b"lo" in host_nets and len(host_nets) > 1  # the host's interfaces: apt-get and pip reach mirrors
    _build(store, ctx, tmp_path, network="none")  # not a hit on the host-network layer
    assert _files(store, "t:1")["nets"].split() == [b"lo"]


def test_copy_link_layers_are_reused_on_a_changed_base(store, tmp_path: Path) -> None:
    """COPY --link writes onto an empty tree (its layer holds only what it copies) and is a cache hit
    even when the steps below it changed; --chown names still come from the stage's /etc/passwd."""
    ctx = tmp_path / "link"
    ctx.mkdir()
    (ctx / "f").write_text("linked\n")
    df = "FROM busybox\nRUN echo {n} > /below\nCOPY --link f /opt/f\nCOPY --link --chown=www-data f /opt/owned\n"
    (ctx / "Dockerfile").write_text(df.format(n=1))
    first, _ = _build(store, ctx, tmp_path)
    assert _layer_names(store, "t:1", 2) == ["opt", "opt/f"]
    (ctx / "Dockerfile").write_text(df.format(n=2))
    second, log = _build(store, ctx, tmp_path)
    assert second.result.cache_hits == 1 and "#3 CACHED" in log  # COPY --link f; the chown one reads /etc
    assert second.result.layers[2] == first.result.layers[2]
    files = _files(store, "t:1")
    assert files["below"] == b"2\n" and files["opt/f"] == b"linked\n"
    img = store.images.load(store.images.resolve("t:1"))
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(Path(store.blobs.path(img.manifest.layers[3].digest)).read_bytes()))) as t:
        owned = t.getmember("opt/owned")
    assert (owned.uid, owned.gid) == (33, 33)


def test_bind_mount_from_an_image(store, tmp_path: Path) -> None:
    ctx = tmp_path / "bimg"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM scratch\nCOPY --from=busybox /etc/passwd /p\n"
        "FROM busybox\nRUN --mount=type=bind,from=busybox,source=/etc,target=/img-etc cp /img-etc/group /g\n")
    _build(store, ctx, tmp_path)
    assert _files(store, "t:1")["g"].startswith(b"root:x:0:")


def test_a_base_of_several_layers_without_snapshots_is_unpacked(store, tmp_path: Path) -> None:
    """A base whose layers have no snapshots yet (as after a pull) is unpacked, its layers side by
    side, and a RUN on it sees every layer's files (and not what a later layer removed)."""
    ctx = tmp_path / "layers"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo 1 > /one\nRUN echo 2 > /two && rm /bin/ls\n"
                                    "RUN echo 3 > /three\n")
    _build(store, ctx, tmp_path, tags=("multi:1",))
    for name, _ in store.snapshots.list():
        store.snapshots.remove(name)
    (ctx / "Dockerfile").write_text("FROM multi:1\nRUN cat /one /two /three > /all && test ! -e /bin/ls\n")
    _build(store, ctx, tmp_path)
    assert _files(store, "t:1")["all"] == b"1\n2\n3\n"
    assert sum(ready for _, ready in store.snapshots.list()) == 4  # busybox and the three RUN layers


def test_exec_form_run_and_a_dockerfile_specific_ignore_file(store, tmp_path: Path) -> None:
    """RUN in exec form runs its argv as written (no SHELL, no expansion); ``-f x.Dockerfile`` reads
    ``x.Dockerfile.dockerignore`` instead of the context's ``.dockerignore``."""
    ctx = tmp_path / "exec"
    ctx.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (ctx / name).write_text(name)
    (ctx / ".dockerignore").write_text("a.txt\n")
    (ctx / "x.Dockerfile.dockerignore").write_text("b.txt\n")
    (ctx / "x.Dockerfile").write_text(
        'FROM busybox\nSHELL ["/bin/false"]\nENV V=value\nCOPY . /ctx/\n'
        'RUN ["/bin/sh", "-c", "echo $V ${V:-unset} > /exec-out"]\n'
        'RUN ["/bin/busybox", "touch", "/$V"]\n')
    _build(store, ctx, tmp_path, dockerfile=str(ctx / "x.Dockerfile"))
    files = _files(store, "t:1")
    assert files["exec-out"] == b"value value\n" and "$V" in files  # the shell expands; the builder does not
    assert "ctx/a.txt" in files and "ctx/b.txt" not in files and "ctx/c.txt" in files


def test_bind_mount_from_a_context_whose_path_has_a_colon(store, tmp_path: Path) -> None:
    """overlayfs cannot take a lowerdir with ':' or ','; such a context is bound to a plain path first."""
    ctx = tmp_path / "ctx:with,odd"
    ctx.mkdir()
    (ctx / "data.txt").write_text("colon ok\n")
    (ctx / "hidden.txt").write_text("no\n")
    (ctx / ".dockerignore").write_text("hidden.txt\n")
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN --mount=type=bind,target=/c cat /c/data.txt > /out && "
                                    "test ! -e /c/hidden.txt\n")
    _build(store, ctx, tmp_path)
    assert _files(store, "t:1")["out"] == b"colon ok\n"
    assert not [m for m in Path("/proc/self/mountinfo").read_text().splitlines() if "ctx:with" in m]
