"""The image commands through the real ``pybuild`` command: import (the README main job), list,
tag, rmi, inspect, history, save/load, system df/prune, fsck, bad inputs, a SIGKILL mid-import."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from layers.digest import Digest
from layers.store import Store
from tests.conftest import pybuild_exe
from tests.trustedtar import extract_trusted


def _state(root: Path) -> dict[str, bytes]:
    """Everything in the store that matters (lock files and empty dirs aside)."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            if "locks" in p.relative_to(root).parts or name.endswith(".lock"):
                continue
            out[str(p.relative_to(root))] = p.read_bytes()
    return out


def _import(pybuild, busybox_tar, name="busybox:1", *extra):
    proc = pybuild("import", str(busybox_tar), name, *extra, check=True)
    return proc.stdout.strip()


def test_import_and_list_busybox(pybuild, busybox_tar):
    image_id = _import(pybuild, busybox_tar, "busybox:1", "--change", 'CMD ["sh"]', "--change", "ENV A=b",
                       "-m", "base")
    assert image_id.startswith("sha256:") and len(image_id) == 71
    out = pybuild("images", check=True).stdout.splitlines()
    assert out[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert out[1].split()[:3] == ["busybox", "1", image_id[7:19]]
    assert pybuild("images", "-q", check=True).stdout.split() == [image_id[7:19]]
    (row,) = [json.loads(line) for line in pybuild("images", "--format", "json", check=True).stdout.splitlines()]
    assert row["ID"] == image_id and row["Repository"] == "busybox" and row["Tag"] == "1" and row["Size"] > 100_000
    (doc,) = json.loads(pybuild("inspect", "busybox:1", check=True).stdout)
    assert doc["Id"] == image_id
    assert doc["Config"]["Cmd"] == ["sh"] and "A=b" in doc["Config"]["Env"]
    assert doc["Comment"] == "base"
    assert doc["Layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    hist = pybuild("history", "busybox:1", check=True).stdout
    assert "pybuild import" in hist and image_id[7:19] in hist
    assert pybuild("fsck", check=True).stdout.rstrip().endswith("ok")


def test_import_from_stdin_zstd_and_layer_digest_matches(pybuild, busybox_tar):
    import zstandard

    raw = busybox_tar.read_bytes()
    image_id = pybuild("import", "-", "bb:zst", input=zstandard.ZstdCompressor().compress(raw), text=False,
                       check=True).stdout.decode().strip()
    image_id2 = pybuild("import", "-", "bb:gz", input=gzip.compress(raw), text=False, check=True).stdout.decode().strip()
    (d1,) = json.loads(pybuild("inspect", "bb:zst", check=True).stdout)
    (d2,) = json.loads(pybuild("inspect", "bb:gz", check=True).stdout)
    import hashlib

    assert d1["RootFS"]["Layers"] == d2["RootFS"]["Layers"] == ["sha256:" + hashlib.sha256(raw).hexdigest()]
    assert image_id.startswith("sha256:") and image_id2.startswith("sha256:")


def test_tag_rmi_df_prune(pybuild, busybox_tar):
    image_id = _import(pybuild, busybox_tar, "busybox:1")
    pybuild("tag", "busybox:1", "example.com/team/bb:v2", check=True)
    pybuild("tag", image_id[7:15], "bb3", check=True)
    names = {(r["Repository"], r["Tag"]) for r in map(json.loads, pybuild("images", "--format", "json").stdout.splitlines())}
    assert names == {("busybox", "1"), ("example.com/team/bb", "v2"), ("bb3", "latest")}
    # by id with several names: refused without -f
    proc = pybuild("rmi", image_id[7:19])
    assert proc.returncode != 0 and "referenced by 3 names" in proc.stderr
    assert "Untagged: bb3:latest" in pybuild("rmi", "bb3", check=True).stdout
    df = pybuild("system", "df", check=True).stdout
    assert df.splitlines()[1].split()[:3] == ["Images", "1", "0"]
    out = pybuild("rmi", "-f", image_id[7:19], check=True).stdout
    assert "Untagged: busybox:1" in out and "Untagged: example.com/team/bb:v2" in out and f"Deleted: {image_id}" in out
    assert pybuild("images", "-q", check=True).stdout == ""
    assert os.listdir(pybuild.root / "blobs" / "sha256") == []
    _import(pybuild, busybox_tar, "again")
    assert "Untagged: again:latest" in pybuild("system", "prune", "-a", check=True).stdout
    assert os.listdir(pybuild.root / "blobs" / "sha256") == []


def test_prune_keeps_an_image_a_container_uses(pybuild, busybox_tar):
    _import(pybuild, busybox_tar, "used")
    (doc,) = json.loads(pybuild("inspect", "used", check=True).stdout)
    Store(str(pybuild.root)).roots.put("containers", "c1", docs=[Digest.parse(doc["Descriptor"]["digest"])])
    pybuild("system", "prune", "-a", check=True)
    assert pybuild("images", "-q", check=True).stdout.strip()
    proc = pybuild("rmi", "used")
    assert proc.returncode != 0 and "used by a container" in proc.stderr
    df = [json.loads(line) for line in pybuild("system", "df", "--format", "json", check=True).stdout.splitlines()]
    assert [(d["TotalCount"], d["Active"], d["Reclaimable"]) for d in df if d["Type"] == "Images"] == [(1, 1, 0)]
    Store(str(pybuild.root)).roots.drop("containers", "c1")
    assert "Untagged: used:latest" in pybuild("rmi", "used", check=True).stdout
    assert os.listdir(pybuild.root / "blobs" / "sha256") == []


def test_an_unreadable_root_stops_gc_and_rmi_keeps_the_content(pybuild, busybox_tar):
    _import(pybuild, busybox_tar, "kept")
    bad = pybuild.root / "roots" / "containers" / "c2.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("{torn")
    blobs = sorted(os.listdir(pybuild.root / "blobs" / "sha256"))
    proc = pybuild("rmi", "kept")  # which containers use it is unknown: refused, one line
    assert proc.returncode != 0 and proc.stderr.count("\n") == 1 and str(bad) in proc.stderr, proc.stderr
    pybuild("rmi", "-f", "kept", check=True)  # the name goes; GC keeps every blob
    assert sorted(os.listdir(pybuild.root / "blobs" / "sha256")) == blobs
    proc = pybuild("system", "prune")
    assert proc.returncode != 0 and proc.stderr.count("\n") == 1 and str(bad) in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and "removed nothing" in proc.stderr
    assert sorted(os.listdir(pybuild.root / "blobs" / "sha256")) == blobs
    fsck = pybuild("fsck")
    assert fsck.returncode != 0 and f"problem: store root {bad}" in fsck.stdout, fsck.stdout
    assert pybuild("fsck", "--repair").returncode != 0 and bad.exists(), "fsck --repair removed a root"
    bad.unlink()
    pybuild("system", "prune", check=True)
    assert os.listdir(pybuild.root / "blobs" / "sha256") == []


@pytest.mark.parametrize("case", ["missing-file", "bad-reference", "corrupt-tar", "corrupt-gzip", "empty",
                                  "truncated-tar", "corrupt-zstd", "bad-change"])
def test_bad_input_is_one_line_and_leaves_the_store_as_it_was(pybuild, busybox_tar, tmp_path, case):
    _import(pybuild, busybox_tar, "base")
    before = _state(pybuild.root)
    junk = tmp_path / "junk"
    args = ["import", str(junk), "x:1"]
    if case == "missing-file":
        args = ["import", str(tmp_path / "nope.tar"), "x:1"]
    elif case == "bad-reference":
        args = ["import", str(busybox_tar), "UPPER/Case:??"]
    elif case == "corrupt-tar":
        junk.write_bytes(b"this is not a tar archive at all" * 100)
    elif case == "corrupt-gzip":
        good = gzip.compress(busybox_tar.read_bytes())
        junk.write_bytes(good[: len(good) // 2] + bytes(64) + good[len(good) // 2 + 64:])
    elif case == "truncated-tar":
        junk.write_bytes(busybox_tar.read_bytes()[:100_000])
    elif case == "corrupt-zstd":
        junk.write_bytes(b"\x28\xb5\x2f\xfd" + b"garbage" * 100)
    elif case == "empty":
        junk.write_bytes(b"")
    elif case == "bad-change":
        args = ["import", str(busybox_tar), "x:1", "--change", "RUN rm -rf /"]
    proc = pybuild(*args)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pybuild: "), proc.stderr
    assert _state(pybuild.root) == before


def test_inspect_unknown_names_image_or_container(pybuild):
    proc = pybuild("inspect", "nothing-here")
    assert proc.returncode != 0
    assert proc.stderr.strip().startswith("pybuild: no such")


def test_save_load_roundtrip(pybuild, busybox_tar, tmp_path):
    image_id = _import(pybuild, busybox_tar, "busybox:1")
    out = tmp_path / "out.tar"
    pybuild("save", "busybox:1", "-o", str(out), check=True)
    pybuild("rmi", "busybox:1", check=True)
    assert "Loaded image: busybox:1" in pybuild("load", "-i", str(out), check=True).stdout
    assert pybuild("images", "-q", check=True).stdout.strip() == image_id[7:19]
    if shutil.which("skopeo"):
        proc = subprocess.run(["skopeo", "inspect", f"oci-archive:{out}"], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["Layers"]


def test_lazy_imports_for_images(pybuild):
    code = ("import sys; from pybuild.cli import run\n"
            "run(['--root', sys.argv[1], 'images'])\n"
            "print('HEAVY', sorted(m for m in ('httpx','cryptography','pyroute2') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code, str(pybuild.root)], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.parametrize("step", ["import-layer-write", "blob-rename", "import-config", "import-tag"])
def test_sigkill_mid_import_then_fsck_clean_and_reimport(pybuild, busybox_tar, tmp_path, step):
    marker = tmp_path / "paused"
    env = dict(os.environ, PYBUILD_TEST_PAUSE_AT=step, PYBUILD_TEST_PAUSE_FILE=str(marker))
    env.pop("PYBUILD_DEBUG", None)
    proc = subprocess.Popen([pybuild_exe(), "--root", str(pybuild.root), "--state-dir", str(pybuild.state),
                             "import", str(busybox_tar), "crash:1"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "import never reached the pause point"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    fsck = pybuild("fsck")
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert pybuild("images", "-q", check=True).stdout == ""
    image_id = _import(pybuild, busybox_tar, "crash:1")
    assert pybuild("images", "-q", check=True).stdout.strip() == image_id[7:19]
    pybuild("system", "prune", check=True)
    assert [n for n in os.listdir(pybuild.root / "ingest") if not n.endswith(".lock")] == []
    assert pybuild("fsck", check=True).stdout.rstrip().endswith("ok")


@pytest.mark.skipif(not shutil.which("skopeo"), reason="skopeo is not installed")
def test_layout_written_by_skopeo_loads(pybuild, busybox_tar, tmp_path):
    image_id = _import(pybuild, busybox_tar, "busybox:1", "--change", "CMD [\"sh\"]")
    out = tmp_path / "out.tar"
    pybuild("save", "busybox:1", "-o", str(out), check=True)
    layout = tmp_path / "layout"
    proc = subprocess.run(["skopeo", "copy", f"oci-archive:{out}", f"oci:{layout}:example.com/bb:copied"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    pybuild("system", "prune", "-a", check=True)
    assert "Loaded image: example.com/bb:copied" in pybuild("load", "-i", str(layout), check=True).stdout
    (doc,) = json.loads(pybuild("inspect", "example.com/bb:copied", check=True).stdout)
    assert doc["Id"] == image_id and doc["Config"]["Cmd"] == ["sh"]
    assert pybuild("fsck", check=True).stdout.rstrip().endswith("ok")


@pytest.mark.skipif(not shutil.which("umoci"), reason="umoci is not installed")
def test_saved_archive_unpacks_with_umoci(pybuild, busybox_tar, tmp_path):
    import tarfile

    _import(pybuild, busybox_tar, "busybox:1")
    out = tmp_path / "out.tar"
    pybuild("save", "busybox:1", "-o", str(out), check=True)
    layout = tmp_path / "layout"
    with tarfile.open(out) as tf:
        extract_trusted(tf, layout, "data")
    index = json.loads((layout / "index.json").read_text())
    tag = index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"]
    bundle = tmp_path / "bundle"
    proc = subprocess.run(["umoci", "unpack", "--image", f"{layout}:{tag}", str(bundle)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (bundle / "rootfs" / "bin" / "busybox").exists()


def test_concurrent_imports_and_prunes_leave_a_sound_store(pybuild, busybox_tar):
    """Four imports and two `system prune -a`-free prunes at once: every tagged image stays whole."""
    exe = [pybuild_exe(), "--root", str(pybuild.root), "--state-dir", str(pybuild.state)]
    env = {k: v for k, v in os.environ.items() if k != "PYBUILD_DEBUG"}
    procs = [subprocess.Popen(exe + ["import", str(busybox_tar), f"par:{i}", "--change", f"ENV N={i}"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(4)]
    procs += [subprocess.Popen(exe + ["system", "prune"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
              for _ in range(2)]
    for p in procs:
        _out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    tags = sorted(r["Tag"] for r in map(json.loads, pybuild("images", "--format", "json", check=True).stdout.splitlines()))
    assert tags == ["0", "1", "2", "3"]
    for i in range(4):
        (doc,) = json.loads(pybuild("inspect", f"par:{i}", check=True).stdout)
        assert f"N={i}" in doc["Config"]["Env"]
    pybuild("system", "prune", check=True)
    assert pybuild("fsck", check=True).stdout.rstrip().endswith("ok")
    assert len(set(pybuild("images", "-q", check=True).stdout.split())) == 4


def _mount_tmpfs(target: Path, size: str) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"tmpfs", str(target).encode(), b"tmpfs", 0, f"size={size},mode=0700".encode()) != 0:
        pytest.skip(f"cannot mount a tmpfs here: {os.strerror(ctypes.get_errno())}")


def _umount(target: Path) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.umount2(str(target).encode(), 2)  # MNT_DETACH


def test_disk_full_keeps_committed_images(pybuild, busybox_tar, tmp_path):
    import io
    import tarfile

    _mount_tmpfs(pybuild.root, "3m")
    try:
        image_id = _import(pybuild, busybox_tar, "busybox:1")
        big = tmp_path / "big.tar"
        with tarfile.open(big, "w") as tf:
            data = os.urandom(6 << 20)  # incompressible: cannot fit
            info = tarfile.TarInfo("noise")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        proc = pybuild("import", str(big), "big:1")
        assert proc.returncode != 0
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "No space left on device" in lines[0], proc.stderr
        assert pybuild("images", "-q", check=True).stdout.strip() == image_id[7:19]
        assert pybuild("fsck", check=True).stdout.rstrip().endswith("ok")
        assert [n for n in os.listdir(pybuild.root / "ingest") if not n.endswith(".lock")] == []
    finally:
        _umount(pybuild.root)


@pytest.mark.skipif(not shutil.which("podman"), reason="podman is not installed")
@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_podman_saved_archives_load(pybuild, busybox_tar, tmp_path, fmt):
    import tempfile

    runroot = tempfile.mkdtemp(prefix="pm-")  # podman wants a runroot under 50 characters
    podman = ["podman", "--root", str(tmp_path / "pm"), "--runroot", runroot, "--storage-driver", "vfs"]
    try:
        for args in (["import", "--change", 'CMD ["sh"]', str(busybox_tar), "localhost/pbtest:1"],
                     ["save", "--format", fmt, "-o", str(tmp_path / "p.tar"), "localhost/pbtest:1"]):
            proc = subprocess.run(podman + args, capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, proc.stderr
    finally:
        subprocess.run(podman + ["system", "reset", "-f"], capture_output=True, timeout=60)
        shutil.rmtree(runroot, ignore_errors=True)
    out = pybuild("load", "-i", str(tmp_path / "p.tar"), check=True).stdout
    assert "Loaded image:" in out
    name = out.split("Loaded image:", 1)[1].split()[0]
    (doc,) = json.loads(pybuild("inspect", name, check=True).stdout)
    assert doc["Config"]["Cmd"] == ["sh"]
    assert pybuild("fsck", check=True).stdout.rstrip().endswith("ok")


def test_fsck_finds_a_tampered_layer_and_repair_removes_it(pybuild, busybox_tar):
    _import(pybuild, busybox_tar, "busybox:1")
    (doc,) = json.loads(pybuild("inspect", "busybox:1", check=True).stdout)
    layer = pybuild.root / "blobs" / "sha256" / doc["Layers"][0]["digest"].split(":")[1]
    os.chmod(layer, 0o644)
    with open(layer, "r+b") as f:
        f.seek(100)
        f.write(b"\0\1\2\3")
    proc = pybuild("fsck")
    assert proc.returncode != 0
    assert "problem: blob " + doc["Layers"][0]["digest"] in proc.stdout
    assert proc.stderr.startswith("pybuild: store ")
    fixed = pybuild("fsck", "--repair")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "removed corrupt blob" in fixed.stdout and "removed broken image record" in fixed.stdout
    assert pybuild("fsck", check=True).stdout.rstrip().endswith("ok")
    assert pybuild("images", "-q", check=True).stdout == ""


def test_sigkill_mid_load_then_fsck_clean(pybuild, busybox_tar, tmp_path):
    _import(pybuild, busybox_tar, "busybox:1")
    out = tmp_path / "out.tar"
    pybuild("save", "busybox:1", "-o", str(out), check=True)
    pybuild("system", "prune", "-a", check=True)
    marker = tmp_path / "paused"
    env = dict(os.environ, PYBUILD_TEST_PAUSE_AT="blob-rename", PYBUILD_TEST_PAUSE_FILE=str(marker))
    env.pop("PYBUILD_DEBUG", None)
    proc = subprocess.Popen([pybuild_exe(), "--root", str(pybuild.root), "--state-dir", str(pybuild.state),
                             "load", "-i", str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert pybuild("fsck").returncode == 0
    assert "Loaded image: busybox:1" in pybuild("load", "-i", str(out), check=True).stdout
    assert pybuild("fsck", check=True).stdout.rstrip().endswith("ok")


def test_build_cache_roots_keep_layers_until_prune_all(pybuild, busybox_tar):
    """A registered build-cache root keeps its layer through rmi and prune; ``prune -a`` drops the
    build cache (builder.cache.prune, which drops its roots) and then the layer goes."""
    _import(pybuild, busybox_tar, "busybox:1")
    (doc,) = json.loads(pybuild("inspect", "busybox:1", check=True).stdout)
    layer = doc["Layers"][0]["digest"]
    pybuild("rmi", "busybox:1", check=True)  # removes the layer: nothing else holds it
    assert not (pybuild.root / "blobs" / "sha256" / layer.split(":")[1]).exists()
    _import(pybuild, busybox_tar, "busybox:1")
    key = "ab" * 32
    Store(str(pybuild.root)).roots.put("build-cache", key, blobs=[Digest.parse(layer)],
                                       snapshots=[Digest.parse(doc["RootFS"]["Layers"][0])])
    keys = pybuild.root / "cache" / "keys" / "ab"
    keys.mkdir(parents=True)
    (keys / f"{key}.json").write_text(json.dumps({"key": key, "layer": {"digest": layer}}))
    (pybuild.root / "cache" / "mounts").mkdir()
    pybuild("rmi", "busybox:1", check=True)
    pybuild("system", "prune", check=True)
    assert (pybuild.root / "blobs" / "sha256" / layer.split(":")[1]).exists()
    out = pybuild("system", "prune", "-a", check=True).stdout
    assert "Deleted build cache: " in out
    assert not (pybuild.root / "blobs" / "sha256" / layer.split(":")[1]).exists()
    assert (pybuild.root / "cache" / "mounts").is_dir()
