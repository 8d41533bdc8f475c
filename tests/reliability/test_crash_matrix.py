"""SECURITY.md case 19 (and 22 for ``run -d``): SIGKILL at the named write steps of pull, push,
build and ``run -d`` (``PYBUILD_TEST_PAUSE_AT``, see docs/INTERFACES.md), then: ``fsck`` is clean, GC
takes the partial data, nothing committed before is lost, and the same command run again works.

Import and load are killed at their steps in tests/store/test_cli.py, a pull mid-blob (resumed with
``Range``) and a push mid-upload by timing in tests/registry/test_pull_push.py; this file fills the
rest of the matrix.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
import time
from pathlib import Path

import pytest

from .helpers import fsck_clean, kill_at, partial_ingests, pids_of

pytestmark = pytest.mark.timeout(300)


def _store(pb):
    from layers.store import Store

    return Store(str(pb.root))


def _referenced(pb) -> set[str]:
    """Every blob some image record or container needs (manifest, index, config, layers)."""
    from layers.store.gc import mark

    return {str(d) for d in mark(_store(pb)).blobs}


def _committed(pb) -> dict[str, str]:
    """name -> manifest digest of every image record."""
    return {r.name: str(r.manifest_digest) for r in _store(pb).images.list()}


def _debris(pb) -> list[str]:
    """What a crash may leave that GC (``system prune``) must have taken."""
    root = Path(pb.root)
    out = [f"ingest/{n}" for n in partial_ingests(root)]
    out += [f"leases/{n}" for n in os.listdir(root / "leases")] if (root / "leases").is_dir() else []
    out += [f"snapshots/{n}" for n in os.listdir(root / "snapshots") if n.startswith(".")]
    if (root / "tmp").is_dir():
        out += [f"tmp/{n}" for n in os.listdir(root / "tmp") if n.startswith("build-")]
    blobs = {f"sha256:{n}" for n in os.listdir(root / "blobs" / "sha256")}
    out += [f"unreferenced blob {d}" for d in sorted(blobs - _referenced(pb))]
    return out


def _mounts_under(path: Path) -> list[str]:
    prefix = str(os.path.realpath(path)) + "/"
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(prefix)]


def _after_crash(pb, before: dict[str, str]) -> None:
    """The checks every crash gets: fsck clean, the earlier images intact, GC takes the debris."""
    fsck_clean(pb)
    now = _committed(pb)
    for name, digest in before.items():
        assert now.get(name) == digest, f"{name} lost or changed by the crash"
    prune = pb("system", "prune")
    assert prune.returncode == 0, prune.stderr
    assert _debris(pb) == [], _debris(pb)
    assert _mounts_under(pb.root) == [], "a killed command's mount outlived system prune"
    fsck_clean(pb)


# -- pull --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("step", ["pull-blob-write", "blob-rename", "pull-manifest", "pull-tag"])
def test_pull_killed_at(rpb, seeded, tmp_path, step):
    before = _committed(rpb)
    ref = seeded.apps[0]
    kill_at(rpb, step, "pull", "-q", ref, tmp=tmp_path)
    assert ref not in {_full(n) for n in _committed(rpb)}, "a killed pull left a name"
    _after_crash(rpb, before)
    again = rpb("pull", "-q", ref)
    assert again.returncode == 0, again.stderr
    assert rpb("run", "--rm", "--network", "none", ref, "cat", "/app", check=True).stdout == "app-a\n"
    fsck_clean(rpb)


def _full(name: str) -> str:
    from layers.reference import Reference

    return str(Reference.parse(name))


# -- push --------------------------------------------------------------------------------------------

def _big_image(pb, tmp: Path, name: str) -> None:
    """busybox's layer is 1 MB gzip: one upload PUT. Push mid-upload needs a layer past the 8 MiB
    monolithic limit, so import a 9 MB incompressible rootfs."""
    tar = tmp / "big.tar"
    with tarfile.open(tar, "w") as tf:
        data = os.urandom(9 << 20)
        info = tarfile.TarInfo("noise")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    pb("import", str(tar), name, "--compression", "none", check=True)


def _remote_digest(pb, ref: str) -> str | None:
    """The digest of the manifest ``ref`` names on the registry; None when the registry says it has
    no such manifest (any other failure fails the test: it would not show that the tag is gone)."""
    out = pb("manifest", "inspect", "--raw", ref)
    if out.returncode != 0:
        not_found = re.fullmatch(rf"pybuild: manifest {re.escape(ref)}: .*\((MANIFEST|NAME)_UNKNOWN\)\n", out.stderr)
        assert out.returncode == 1 and not_found, f"manifest inspect {ref} exited {out.returncode}: {out.stderr}"
        return None
    import hashlib

    return "sha256:" + hashlib.sha256(out.stdout.encode()).hexdigest()


@pytest.mark.parametrize("step,extra", [("push-blob-upload", ()), ("push-manifest", ()),
                                        ("blob-rename", ("--compression", "zstd"))])
def test_push_killed_at(rpb, seeded, tmp_path, step, extra):
    _big_image(rpb, tmp_path, "big:1")
    before = _committed(rpb)
    remote = f"{seeded.host}/crash/push-{step}:1"
    kill_at(rpb, step, "push", "-q", *extra, "big:1", remote, tmp=tmp_path)
    assert _remote_digest(rpb, remote) is None, "a killed push left the tag on the registry"
    _after_crash(rpb, before)
    out = rpb("push", "-q", *extra, "big:1", remote)
    assert out.returncode == 0, out.stderr
    assert _remote_digest(rpb, remote) == out.stdout.strip()
    # what the registry holds is whole: pulled into the same store by digest, it is what was pushed
    pulled = rpb("pull", "-q", f"{seeded.host}/crash/push-{step}@{out.stdout.strip()}")
    assert pulled.returncode == 0, pulled.stderr
    fsck_clean(rpb)


# -- build -------------------------------------------------------------------------------------------

_DOCKERFILE = "FROM busybox\nCOPY own.txt /own.txt\nRUN cat /own.txt > /copied && echo built > /n\n"


def _build_ctx(tmp: Path) -> Path:
    ctx = tmp / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(_DOCKERFILE)
    (ctx / "own.txt").write_text("own\n")
    return ctx


@pytest.mark.parametrize("step", ["snapshot-ready", "build-mounted", "build-layer-write", "blob-rename",
                                  "build-cache-entry", "build-manifest", "build-tag"])
def test_build_killed_at(rpb, tmp_path, step):
    ctx = _build_ctx(tmp_path)
    rpb("tag", "busybox:latest", "kept:1", check=True)
    before = _committed(rpb)
    kill_at(rpb, step, "build", "-q", "-t", "crash:1", str(ctx), tmp=tmp_path)
    assert "docker.io/library/crash:1" not in _committed(rpb)
    _after_crash(rpb, before)
    out = rpb("build", "-q", "-t", "crash:1", str(ctx))
    assert out.returncode == 0, out.stderr
    run = rpb("run", "--rm", "--network", "none", "crash:1", "cat", "/copied", "/n", check=True)
    assert run.stdout == "own\nbuilt\n"
    assert rpb("run", "--rm", "--network", "none", "kept:1", "echo", "kept", check=True).stdout == "kept\n"
    fsck_clean(rpb)


def _build_cgroups() -> set[str]:
    found = set()
    for base in ("/sys/fs/cgroup", *(f"/sys/fs/cgroup/{c}" for c in ("pids", "memory", "cpu", "freezer"))):
        d = os.path.join(base, "pybuild")
        if os.path.isdir(d):
            found.update(n for n in os.listdir(d) if n.startswith("build-"))
    return found


def test_build_killed_while_run_executes(rpb, tmp_path):
    """SIGKILL while a RUN step's process runs: it dies with the build, the overlay mount and the
    step's cgroup go (at the latest with the next build or prune), the build works again."""
    ctx = tmp_path / "sleepy"
    ctx.mkdir()
    token = f"{time.time_ns() % 10**6}.25"
    (ctx / "Dockerfile").write_text(f"FROM busybox\nRUN sleep {token} && echo slept > /s\n")
    cgroups_before = _build_cgroups()
    from .helpers import spawn

    proc = spawn(rpb, "build", "-q", "-t", "sleepy:1", str(ctx))
    deadline = time.monotonic() + 60
    while not pids_of(f"sleep {token}"):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the RUN step never started"
        time.sleep(0.02)
    proc.kill()
    proc.wait(10)
    deadline = time.monotonic() + 10
    while pids_of(f"sleep {token}"):
        assert time.monotonic() < deadline, "the RUN step's process outlived the killed build"
        time.sleep(0.05)
    _after_crash(rpb, {})
    assert _build_cgroups() - cgroups_before == set(), "the killed RUN step's cgroup is left behind"
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo slept > /s\n")
    rpb("build", "-q", "-t", "sleepy:1", str(ctx), check=True)
    assert rpb("run", "--rm", "--network", "none", "sleepy:1", "cat", "/s", check=True).stdout == "slept\n"


# -- run -d ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("step", ["snapshot-ready", "run-create-record", "run-start-shim"])
def test_run_detached_killed_at(rpb, tmp_path, step):
    before = _committed(rpb)
    kill_at(rpb, step, "run", "-d", "--name", "web", "--network", "none", "busybox", "sleep", "300", tmp=tmp_path)
    fsck_clean(rpb)
    listed = [json.loads(line) for line in rpb("ps", "-a", "--format", "json", check=True).stdout.splitlines()]
    if step == "run-start-shim":  # recorded, never started: it shows, and start/rm work
        assert [(c["Names"], c["State"]) for c in listed] == [("web", "created")], listed
        rpb("start", "web", check=True)
        assert rpb("exec", "web", "echo", "in").stdout == "in\n"
        rpb("rm", "-f", "web", check=True)
    else:  # nothing was recorded: no container, the name is free
        assert listed == [], listed
    _after_crash(rpb, before)
    out = rpb("run", "-d", "--name", "web", "--network", "none", "busybox", "sleep", "300")
    assert out.returncode == 0, out.stderr
    try:
        assert rpb("exec", "web", "echo", "again").stdout == "again\n"
    finally:
        rpb("rm", "-f", "web", check=True)
    cdir = rpb.root / "containers"
    assert [n for n in os.listdir(cdir) if n.endswith(".creating")] == [], "a killed create's record is left"
    fsck_clean(rpb)
