"""pull/push through the real ``pybuild`` command, the real store and real registries.

Round trips for every registry kind, multi-platform indexes, cross-repository mounts, format
conversion, interop with skopeo, and the store-level hostile cases 13 and 19.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from layers.descriptor import Platform
from layers.digest import Digest
from layers.errors import NotFound
from layers.mediatype import MediaType
from registry_client.client import Registry
from registry_client.credentials import Credentials

from .hostile import HostileRegistry, serve_blob, serve_image
from .images import make_image, make_index

SKOPEO = shutil.which("skopeo")


def _env(tmp_path, server=None):
    """Per-test credentials: a fresh pybuild auth file holding the server's user (if any)."""
    from registry_client.credentials import CredentialStore

    cfg = tmp_path / "pbconfig"
    env = {"PYBUILD_CONFIG": str(cfg), "DOCKER_CONFIG": str(tmp_path / "docker"), "HOME": str(tmp_path)}
    if server is not None and server.user:
        CredentialStore(cfg / "auth.json", tmp_path / "none").save(server.host, Credentials(server.user, server.password))
    return env


def _store(pybuild):
    from layers.store import Store

    return Store(str(pybuild.root))


def _local_manifest_digest(pybuild, name: str) -> Digest:
    return _store(pybuild).images.resolve(name).manifest_digest


def _import_busybox(pybuild, busybox_tar, name: str) -> None:
    """The store room's ``import`` (its library, so these tests do not depend on cmd_images)."""
    from layers.store.importer import import_rootfs

    with open(busybox_tar, "rb") as fh:
        import_rootfs(_store(pybuild), fh, name)


def _rmi(pybuild, name: str) -> None:
    _store(pybuild).images.untag(name)


def _fsck_ok(pybuild) -> bool:
    """``pybuild fsck`` (the real command) finds nothing wrong, nor does the library's report."""
    out = pybuild("fsck")
    assert out.returncode == 0 and out.stdout.rstrip().endswith(": ok"), out.stdout + out.stderr
    report = _store(pybuild).fsck()
    assert report.ok and not report.problems, report
    return True


def _push_library(server, repo: str, tag: str, manifest, blobs, children=()) -> None:
    creds = Credentials(server.user, server.password) if server.user else None
    import io

    with Registry(server.host, credentials=creds) as reg:
        r = reg.repository(repo)
        for digest, data in blobs.items():
            from layers.descriptor import Descriptor

            desc = Descriptor(MediaType.OCI_LAYER_GZIP, digest, len(data))
            if not r.blob_exists(desc):
                r.upload_blob(desc, lambda data=data: io.BytesIO(data))
        for child in children:
            r.put_manifest(str(child.digest), child.raw, child.media_type)
        r.put_manifest(tag, manifest.raw, manifest.media_type)


@pytest.mark.parametrize("kind", ["open", "basic", "token"])
def test_round_trip(registries, pybuild, busybox_tar, tmp_path, kind):
    server = registries[kind]
    env = _env(tmp_path, server)
    local = "busybox:rt"
    out = pybuild("import", str(busybox_tar), local)
    assert out.returncode == 0, out.stderr
    before = _local_manifest_digest(pybuild, local)
    remote = f"{server.host}/rt/{kind}:1"
    out = pybuild("push", local, remote, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(before)
    assert "Pushed" in out.stderr
    if server.password:
        assert server.password not in out.stdout + out.stderr
    remote_info = pybuild("inspect", "--remote", remote, env=env)
    assert remote_info.returncode == 0, remote_info.stderr
    assert json.loads(remote_info.stdout)["Digest"] == str(before)
    out = pybuild("rmi", local, env=env)
    assert out.returncode == 0, out.stderr
    out = pybuild("pull", remote, env=env)
    assert out.returncode == 0, out.stderr
    assert _local_manifest_digest(pybuild, remote) == before
    # pulling again transfers nothing
    again = pybuild("pull", remote, env=env)
    assert again.returncode == 0 and "Image is up to date" in again.stderr
    assert _fsck_ok(pybuild)


def test_push_mounts_across_repositories_and_skips_existing(open_registry, pybuild, busybox_tar, tmp_path):
    env = _env(tmp_path)
    _import_busybox(pybuild, busybox_tar, "busybox:mnt")
    host = open_registry.host
    assert pybuild("push", "busybox:mnt", f"{host}/mnt/one:1", env=env).returncode == 0
    out = pybuild("push", "busybox:mnt", f"{host}/mnt/two:1", env=env)
    assert out.returncode == 0, out.stderr
    assert "Mounted from mnt/one" in out.stderr and "Pushed" not in out.stderr
    out = pybuild("push", "busybox:mnt", f"{host}/mnt/two:2", env=env)
    assert "Layer already exists" in out.stderr and "Pushed" not in out.stderr


def test_push_docker_format(open_registry, pybuild, busybox_tar, tmp_path):
    env = _env(tmp_path)
    _import_busybox(pybuild, busybox_tar, "busybox:fmt")
    ref = f"{open_registry.host}/fmt/docker:1"
    out = pybuild("push", "--format", "docker", "busybox:fmt", ref, env=env)
    assert out.returncode == 0, out.stderr
    body = json.loads(pybuild("manifest", "inspect", ref, env=env).stdout)
    assert body["mediaType"] == MediaType.DOCKER_MANIFEST
    assert body["config"]["mediaType"] == MediaType.DOCKER_CONFIG
    assert all(layer["mediaType"] == MediaType.DOCKER_LAYER_GZIP for layer in body["layers"])
    # the stored compression asked for again changes nothing
    same = pybuild("push", "-q", "--compression", "gzip", "busybox:fmt", f"{open_registry.host}/fmt/same:1", env=env)
    assert same.returncode == 0, same.stderr
    assert same.stdout.strip() == str(_local_manifest_digest(pybuild, "busybox:fmt"))
    # docker format cannot carry zstd layers
    bad = pybuild("push", "--format", "docker", "--compression", "zstd", "busybox:fmt", ref, env=env)
    assert bad.returncode != 0 and "only gzip layers, not zstd" in bad.stderr


def test_multi_platform_index_pulls_the_right_platform(open_registry, pybuild, tmp_path):
    env = _env(tmp_path)
    plats = [Platform("linux", "amd64"), Platform("linux", "arm64", "v8"), Platform("linux", "arm", "v7")]
    index, manifests, blobs = make_index(plats)
    blobs = {d: b for d, b in blobs.items() if d not in {m.digest for m in manifests.values()}}
    _push_library(open_registry, "multi/app", "1", index, blobs, children=list(manifests.values()))
    ref = f"{open_registry.host}/multi/app:1"
    out = pybuild("pull", "--platform", "linux/arm64/v8", ref, env=env)
    assert out.returncode == 0, out.stderr
    assert f"Digest: {index.digest}" in out.stderr
    assert _local_manifest_digest(pybuild, ref) == manifests[plats[1]].digest
    store = _store(pybuild)
    arm7 = manifests[plats[2]]
    assert not store.blobs.has(arm7.layers[0].digest)  # other platforms' layers were not fetched
    out = pybuild("pull", "--platform", "linux/s390x", ref, env=env)
    assert out.returncode != 0 and "linux/s390x" in out.stderr
    out = pybuild("pull", "--all-platforms", ref, env=env)
    assert out.returncode == 0, out.stderr
    for manifest in manifests.values():
        assert all(store.blobs.has(d.digest) for d in manifest.layers)
    assert _local_manifest_digest(pybuild, ref) == index.digest
    # the whole index goes up again, unchanged
    copy = f"{open_registry.host}/multi/copy:1"
    out = pybuild("push", ref, copy, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(index.digest)
    with Registry(open_registry.host) as reg:
        for manifest in manifests.values():
            assert reg.repository("multi/copy").get_manifest(str(manifest.digest)).raw == manifest.raw


def test_blob_with_other_bytes_leaves_nothing(pybuild, tmp_path):  # SECURITY case 13
    manifest, blobs = make_image()
    bad = manifest.layers[1]
    server = HostileRegistry()
    try:
        evil = bytes(len(blobs[bad.digest]))  # right size, other bytes
        serve_image(server, "evil/app", "1", manifest, blobs, **{str(bad.digest): serve_blob(evil)})
        ref = f"{server.host}/evil/app:1"
        out = pybuild("pull", ref, env=_env(tmp_path))
        assert out.returncode != 0
        assert str(bad.digest) in out.stderr or bad.digest.short in out.stderr
        store = _store(pybuild)
        assert not store.blobs.has(bad.digest)
        assert not store.blobs.has(manifest.digest)
        ingest = pybuild.root / "ingest"
        left = [n for n in os.listdir(ingest) if bad.digest.hex in n] if ingest.exists() else []
        assert all(n.endswith(".lock") for n in left), left  # no partial bytes kept for a resume
        with pytest.raises(NotFound):
            store.images.resolve(ref)
        assert _fsck_ok(pybuild)
    finally:
        server.stop()


def test_pull_killed_half_way_resumes(pybuild, tmp_path):  # SECURITY case 19
    from tests.conftest import pybuild_exe

    manifest, blobs = make_image((300_000, 4_000_000))
    big = max(manifest.layers, key=lambda d: d.size)
    small = min(manifest.layers, key=lambda d: d.size)
    stalled, release = threading.Event(), threading.Event()
    server = HostileRegistry()
    try:
        half = big.size // 2
        serve_image(server, "resume/app", "1", manifest, blobs,
                    **{str(big.digest): serve_blob(blobs[big.digest], stall_after=half, stalled=stalled, release=release)})
        ref = f"{server.host}/resume/app:1"
        # a shell that started this run in the background left SIGINT ignored, and pybuild keeps an
        # inherited SIG_IGN (as `nohup` users expect): give the pull the default disposition, as a
        # terminal would
        default_sigint = "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"
        proc = subprocess.Popen([sys.executable, "-c", default_sigint, pybuild_exe(), "--root", str(pybuild.root),
                                 "--state-dir", str(pybuild.state), "pull", ref],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **_env(tmp_path)})
        assert stalled.wait(60), "the pull never reached the big layer"
        deadline = time.monotonic() + 20
        store = _store(pybuild)
        while not (store.blobs.has(small.digest) and store.blobs.has(manifest.config.digest)):
            assert time.monotonic() < deadline, "small blobs never committed"
            time.sleep(0.05)
        _wait_until(lambda: _ingest_bytes(pybuild.root) > 0, "the first half never reached the ingest file")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        release.set()
        ranges: list[str] = []
        served_before = len(server.seen)
        serve_image(server, "resume/app", "1", manifest, blobs,
                    **{str(big.digest): serve_blob(blobs[big.digest], ranges=ranges)})
        out = pybuild("pull", ref, env=_env(tmp_path))
        assert out.returncode == 0, out.stderr
        again = [s.path for s in server.seen[served_before:] if "/blobs/" in s.path]
        assert all(str(small.digest) not in p and str(manifest.config.digest) not in p for p in again), again
        assert len(ranges) == 1 and ranges[0].startswith("bytes=") and ranges[0] != "bytes=0-", ranges
        assert int(ranges[0][6:-1]) > 0
        assert _local_manifest_digest(pybuild, ref) == manifest.digest
        assert _fsck_ok(pybuild)
    finally:
        release.set()
        server.stop()


@pytest.mark.skipif(SKOPEO is None, reason="skopeo is not installed")
def test_interop_with_skopeo(open_registry, pybuild, busybox_tar, tmp_path):
    env = _env(tmp_path)
    host = open_registry.host
    _import_busybox(pybuild, busybox_tar, "busybox:interop")
    ours = f"{host}/interop/ours:1"
    pushed = pybuild("push", "-q", "busybox:interop", ours, env=env)
    assert pushed.returncode == 0, pushed.stderr
    info = subprocess.run([SKOPEO, "inspect", "--tls-verify=false", f"docker://{ours}"], capture_output=True,
                          text=True, check=True)
    assert json.loads(info.stdout)["Digest"] == pushed.stdout.strip()
    layout = tmp_path / "layout"
    subprocess.run([SKOPEO, "copy", "-q", "--src-tls-verify=false", f"docker://{ours}", f"oci:{layout}:1"],
                   check=True, capture_output=True)
    # and the other way: skopeo pushes from an OCI layout, pybuild pulls and lists it
    theirs = f"{host}/interop/theirs:2"
    subprocess.run([SKOPEO, "copy", "-q", "--dest-tls-verify=false", f"oci:{layout}:1", f"docker://{theirs}"],
                   check=True, capture_output=True)
    out = pybuild("pull", theirs, env=env)
    assert out.returncode == 0, out.stderr
    listed = pybuild("images")
    assert listed.returncode == 0 and "interop/theirs" in listed.stdout


def test_inspect_remote_function(open_registry, tmp_path):
    from pybuild.cmd_registry import inspect_remote
    from pybuild.context import Settings

    manifest, blobs = make_image((10_000,))
    _push_library(open_registry, "remote/inspect", "1", manifest, blobs)
    out = inspect_remote(Settings(root=str(tmp_path)), f"{open_registry.host}/remote/inspect:1")
    assert out["Digest"] == str(manifest.digest)
    assert out["Layers"] == [str(d.digest) for d in manifest.layers]
    assert out["Os"] == "linux"


def _store_image(pybuild, name: str, layer_sizes) -> "object":
    """Put an image made in the test straight into the store and name it."""
    manifest, blobs = make_image(layer_sizes, tag=name.replace(":", "-").replace("/", "-"))
    store = _store(pybuild)
    with store.lease():
        for digest, data in blobs.items():
            store.blobs.put_bytes(data, expected=digest)
        store.blobs.put_bytes(manifest.raw, expected=manifest.digest)
        store.images.tag(name, manifest.digest)
    return manifest


def _wait_until(condition, what: str, timeout: float = 30) -> None:
    """Poll ``condition`` until it holds; fail the test with ``what`` if it does not within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def _ingest_bytes(root) -> int:
    """Bytes in the store's partial blobs (``ingest/``): a transfer in progress has written some."""
    total = 0
    for f in (Path(root) / "ingest").glob("*"):
        try:
            total += 0 if f.name.endswith(".lock") else f.stat().st_size
        except FileNotFoundError:  # committed or dropped while we looked
            pass
    return total


def test_push_killed_half_way_then_run_again(open_registry, pybuild, tmp_path):  # SECURITY case 19, push
    from tests.conftest import pybuild_exe

    manifest = _store_image(pybuild, "big:1", (200_000, 24_000_000))
    remote = f"{open_registry.host}/killed/push:1"
    proc = subprocess.Popen([pybuild_exe(), "--root", str(pybuild.root), "--state-dir", str(pybuild.state),
                             "push", "-j", "1", "big:1", remote], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **_env(tmp_path)}, text=True)
    big = max(manifest.layers, key=lambda d: d.size)
    seen = ""
    while True:
        line = proc.stderr.readline()
        assert line, f"push ended before the big layer: {seen}"
        seen += line
        if big.digest.short in line and "Pushing" in line:
            break
    uploads = open_registry.workdir / "storage" / "docker" / "registry" / "v2" / "repositories" / "killed" / "push" / "_uploads"
    _wait_until(lambda: any(f.stat().st_size > 0 for f in uploads.glob("*/data")) if uploads.is_dir() else False,
                "the big layer's upload never reached the registry")
    proc.kill()
    proc.wait(10)
    with Registry(open_registry.host) as reg:
        assert not reg.repository("killed/push").blob_exists(big), "the kill came after the upload finished"
    out = pybuild("push", "big:1", remote, env=_env(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(manifest.digest)
    assert _fsck_ok(pybuild)
    # what the registry holds is whole: pull it into a fresh root by digest
    other = type(pybuild)(tmp_path / "root2", tmp_path / "state2")
    (tmp_path / "root2").mkdir(mode=0o700)
    (tmp_path / "state2").mkdir(mode=0o700)
    by_digest = f"{open_registry.host}/killed/push@{manifest.digest}"
    out = other("pull", by_digest, env=_env(tmp_path))
    assert out.returncode == 0, out.stderr
    assert _store(other).images.resolve(by_digest).manifest_digest == manifest.digest


def test_parallel_pulls_sharing_layers(open_registry, pybuild, tmp_path):  # SECURITY case 23, registry side
    from tests.conftest import pybuild_exe

    base, blobs = make_image((400_000, 300_000), tag="shared")
    _push_library(open_registry, "par/a", "1", base, blobs)
    _push_library(open_registry, "par/b", "1", base, blobs)
    refs = [f"{open_registry.host}/par/{r}:1" for r in ("a", "b", "a", "b")]
    procs = [subprocess.Popen([pybuild_exe(), "--root", str(pybuild.root), "--state-dir", str(pybuild.state),
                               "pull", "-q", ref], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env={**os.environ, **_env(tmp_path)}) for ref in refs]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    for ref in set(refs):
        assert _local_manifest_digest(pybuild, ref) == base.digest
    assert _fsck_ok(pybuild)


def test_single_image_with_other_platform_is_refused(open_registry, pybuild, tmp_path):
    manifest, blobs = make_image((10_000,), Platform("linux", "riscv64"), tag="riscv")
    _push_library(open_registry, "plat/single", "1", manifest, blobs)
    ref = f"{open_registry.host}/plat/single:1"
    out = pybuild("pull", "--platform", "linux/arm64", ref, env=_env(tmp_path))
    assert out.returncode != 0 and "linux/riscv64, not the requested linux/arm64" in out.stderr
    assert not _store(pybuild).blobs.has(manifest.layers[0].digest)
    assert pybuild("pull", "--platform", "linux/riscv64", ref, env=_env(tmp_path)).returncode == 0


def test_stale_mount_hint_falls_back_to_upload(open_registry, pybuild, tmp_path):
    env = _env(tmp_path)
    manifest = _store_image(pybuild, "hint:1", (50_000,))
    host = open_registry.host
    assert pybuild("push", "hint:1", f"{host}/hint/one:1", env=env).returncode == 0
    with Registry(host) as reg:  # the registry forgets the layer in repo one: the hint goes stale
        reg.send("DELETE", reg.url(f"/v2/hint/one/blobs/{manifest.layers[0].digest}"), what="delete",
                 ok=(202,)).close()
    out = pybuild("push", "hint:1", f"{host}/hint/two:1", env=env)
    assert out.returncode == 0, out.stderr
    assert f"{manifest.layers[0].digest.short}: Pushed" in out.stderr
    with Registry(host) as reg:
        assert reg.repository("hint/two").blob_exists(manifest.layers[0])


def test_disk_full_during_pull_keeps_earlier_images_running(open_registry, pybuild, busybox_tar, tmp_path):  # case 24
    import ctypes

    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs and run a container")
    env = _env(tmp_path)
    manifest, blobs = make_image((5_000_000, 5_000_000), tag="toobig")
    _push_library(open_registry, "full/app", "1", manifest, blobs)
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.mount(b"tmpfs", str(pybuild.root).encode(), b"tmpfs", 0, b"size=9m,mode=0700") == 0, \
        os.strerror(ctypes.get_errno())
    try:
        _import_busybox(pybuild, busybox_tar, "busybox:full")
        first = pybuild("run", "--rm", "--network", "none", "busybox:full", "echo", "before", env=env)
        assert (first.returncode, first.stdout) == (0, "before\n"), first.stderr
        ref = f"{open_registry.host}/full/app:1"
        out = pybuild("pull", "-q", ref, env=env)
        assert out.returncode != 0
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and "No space left on device" in lines[0], out.stderr
        with pytest.raises(NotFound):
            _store(pybuild).images.resolve(ref)
        # the partial blobs do not keep the disk full: what was there still runs
        after = pybuild("run", "--rm", "--network", "none", "busybox:full", "echo", "after", env=env)
        assert (after.returncode, after.stdout) == (0, "after\n"), after.stderr
        assert _fsck_ok(pybuild)
        left = [n for n in os.listdir(pybuild.root / "ingest") if not n.endswith(".lock")]
        assert all(os.path.getsize(pybuild.root / "ingest" / n) == 0 for n in left), left
    finally:
        libc.umount2(str(pybuild.root).encode(), 2)


def test_connection_lost_mid_blob_resumes_in_the_same_pull(pybuild, tmp_path):
    """The registry drops the connection half-way through a layer: the same pull asks for the rest
    with Range and finishes; nothing is downloaded twice."""
    manifest, blobs = make_image((2_000_000,))
    layer = manifest.layers[0]
    data = blobs[layer.digest]
    ranges: list[str] = []
    server = HostileRegistry()

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
            req.wfile.write(body[: len(body) // 2])  # then hang up
            req.wfile.flush()
            req.close_connection = True
            return
        req.wfile.write(body)

    try:
        serve_image(server, "flaky/app", "1", manifest, blobs, **{str(layer.digest): flaky})
        ref = f"{server.host}/flaky/app:1"
        out = pybuild("pull", ref, env=_env(tmp_path))
        assert out.returncode == 0, out.stderr
        assert len(ranges) == 2 and ranges[0] == "" and ranges[1].startswith("bytes="), ranges
        assert 0 < int(ranges[1][6:-1]) <= len(data) // 2
        assert _local_manifest_digest(pybuild, ref) == manifest.digest
        assert _fsck_ok(pybuild)
    finally:
        server.stop()


def _trickle(data: bytes, piece: int = 64 << 10, pause: float = 0.25, started: threading.Event | None = None):
    """A blob handler that sends ``piece`` bytes every ``pause`` seconds (a slow registry or link)."""

    def handler(req):
        rng = req.headers.get("Range", "")
        start = int(rng[6:-1]) if rng.startswith("bytes=") and rng.endswith("-") else 0
        body = data[start:]
        req.send_response(206 if start else 200)
        req.send_header("Content-Length", str(len(body)))
        if start:
            req.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        req.end_headers()
        for i in range(0, len(body), piece):
            req.wfile.write(body[i:i + piece])
            req.wfile.flush()
            if started is not None:
                started.set()
            time.sleep(pause)

    return handler


def test_one_bad_layer_stops_the_others_at_once(pybuild, tmp_path):
    """Fail fast: a layer with other bytes ends the pull at once; a slow sibling is not waited for,
    its partial bytes are kept and the next pull resumes them."""
    manifest, blobs = make_image((8_000_000, 100_000))
    slow, bad = max(manifest.layers, key=lambda d: d.size), min(manifest.layers, key=lambda d: d.size)
    server = HostileRegistry()
    try:
        started = threading.Event()
        evil = bytes(bad.size)

        def late_bad(req):  # answers once the slow layer is under way
            started.wait(30)
            serve_blob(evil)(req)

        serve_image(server, "ff/app", "1", manifest, blobs,
                    **{str(slow.digest): _trickle(blobs[slow.digest], started=started), str(bad.digest): late_bad})
        ref = f"{server.host}/ff/app:1"
        begin = time.monotonic()
        out = pybuild("pull", ref, env=_env(tmp_path))
        elapsed = time.monotonic() - begin
        assert out.returncode != 0
        last = out.stderr.strip().splitlines()[-1]
        assert str(bad.digest) in last and "cancelled" not in last, out.stderr
        assert elapsed < 15, f"the pull waited {elapsed:.1f}s for the slow layer (it takes ~30s)"
        partial = pybuild.root / "ingest" / f"sha256-{slow.digest.hex}"
        assert partial.exists() and 0 < partial.stat().st_size < slow.size
        assert _fsck_ok(pybuild)
    finally:
        server.stop()


def test_two_pulls_of_one_image_at_once_download_each_blob_once(pybuild, tmp_path):
    """The second pull waits on the first one's per-blob lock, then finds the blob stored: one GET."""
    from tests.conftest import pybuild_exe

    manifest, blobs = make_image((2_000_000, 50_000))
    server = HostileRegistry()
    try:
        serve_image(server, "two/app", "1", manifest, blobs,
                    **{str(d.digest): _trickle(blobs[d.digest], pause=0.05) for d in manifest.layers})
        ref = f"{server.host}/two/app:1"
        cmd = [pybuild_exe(), "--root", str(pybuild.root), "--state-dir", str(pybuild.state), "pull", ref]
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env={**os.environ, **_env(tmp_path)}) for _ in range(2)]
        outs = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outs
        for d in (manifest.config, *manifest.layers):
            gets = server.requests("GET", f"/blobs/{d.digest}")
            assert len(gets) == 1, f"{d.digest}: {len(gets)} downloads"
        assert _local_manifest_digest(pybuild, ref) == manifest.digest
        assert _fsck_ok(pybuild)
    finally:
        server.stop()


def test_ctrl_c_stops_a_pull_promptly_and_it_resumes(pybuild, tmp_path):
    from tests.conftest import pybuild_exe

    manifest, blobs = make_image((8_000_000,))
    layer = manifest.layers[0]
    server = HostileRegistry()
    try:
        started = threading.Event()
        serve_image(server, "int/app", "1", manifest, blobs,
                    **{str(layer.digest): _trickle(blobs[layer.digest], started=started)})
        ref = f"{server.host}/int/app:1"
        # a shell that started this run in the background left SIGINT ignored, and pybuild keeps an
        # inherited SIG_IGN (as `nohup` users expect): give the pull the default disposition, as a
        # terminal would
        default_sigint = "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"
        proc = subprocess.Popen([sys.executable, "-c", default_sigint, pybuild_exe(), "--root", str(pybuild.root),
                                 "--state-dir", str(pybuild.state), "pull", ref],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **_env(tmp_path)})
        assert started.wait(30)
        _wait_until(lambda: _ingest_bytes(pybuild.root) > 0, "no byte of the layer reached the ingest file")
        proc.send_signal(signal.SIGINT)
        begin = time.monotonic()
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert time.monotonic() - begin < 10, "Ctrl-C waited for the transfer to finish"
        assert b"Traceback" not in err
        ranges: list[str] = []
        serve_image(server, "int/app", "1", manifest, blobs, **{str(layer.digest): serve_blob(blobs[layer.digest],
                                                                                               ranges=ranges)})
        out = pybuild("pull", ref, env=_env(tmp_path))
        assert out.returncode == 0, out.stderr
        assert len(ranges) == 1 and int(ranges[0][6:-1]) > 0, ranges
        assert _local_manifest_digest(pybuild, ref) == manifest.digest
        assert _fsck_ok(pybuild)
    finally:
        server.stop()


def test_docker_manifest_list_pulls_the_right_platform_and_accept_lists_every_type(open_registry, pybuild, tmp_path):
    """A Docker schema 2 manifest list of Docker schema 2 images (what Docker Hub serves) pulls the wanted
    platform, and every manifest request sent the full Accept list (OCI and Docker types)."""
    from dataclasses import replace

    from layers.index import Index
    from layers.manifest import Manifest

    env = _env(tmp_path)
    plats = [Platform("linux", "amd64"), Platform("linux", "arm64", "v8")]
    images, blobs = {}, {}
    for plat in plats:
        oci, b = make_image((30_000,), plat, tag=f"dl-{plat.architecture}")
        docker = Manifest.build(replace(oci.config, media_type=MediaType.DOCKER_CONFIG),
                                [replace(d, media_type=MediaType.DOCKER_LAYER_GZIP) for d in oci.layers], docker=True)
        images[plat] = docker
        blobs.update(b)
    manifest_list = Index.build([m.descriptor(platform=p) for p, m in images.items()], docker=True)
    assert manifest_list.media_type == MediaType.DOCKER_MANIFEST_LIST
    _push_library(open_registry, "dlist/app", "1", manifest_list, blobs, children=list(images.values()))
    ref = f"{open_registry.host}/dlist/app:1"
    out = pybuild("pull", "--platform", "linux/arm64/v8", ref, env=env)
    assert out.returncode == 0, out.stderr
    assert _local_manifest_digest(pybuild, ref) == images[plats[1]].digest
    assert not _store(pybuild).blobs.has(images[plats[0]].layers[0].digest)

    # what the client asks for: the same manifests through a registry that records its requests
    server = HostileRegistry()
    try:
        serve_image(server, "dlist/app", "1", manifest_list, blobs)
        for child in images.values():
            serve_image(server, "dlist/app", str(child.digest), child, {})
        out = pybuild("pull", "--platform", "linux/amd64", f"{server.host}/dlist/app:1", env=env)
        assert out.returncode == 0, out.stderr
        accepts = [s.headers.get("accept", "") for s in server.seen if "/manifests/" in s.path]
        assert len(accepts) == 2
        for accept in accepts:
            for media_type in (MediaType.OCI_INDEX, MediaType.OCI_MANIFEST, MediaType.DOCKER_MANIFEST_LIST,
                               MediaType.DOCKER_MANIFEST):
                assert media_type in accept, accept
    finally:
        server.stop()
