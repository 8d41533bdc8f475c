"""SECURITY.md case 24: the store on a small tmpfs that fills during a pull and during a build: one
``pybuild:`` line that names the store and the space needed (and free), no temp files left, the images
stored before still run, and ``fsck`` is clean. (tests/store has the import case, tests/registry the
pull case from the registry's side.)"""

from __future__ import annotations

import ctypes
import io
import os
import re
import shutil
import tarfile
from pathlib import Path

import pytest

from .helpers import fsck_clean, one_line_error, partial_ingests

pytestmark = pytest.mark.timeout(300)

_SIZE = re.compile(r"needs (more than )?[0-9.]+[kMG]?B, [0-9.]+[kMG]?B free\)")


@pytest.fixture
def small_root(rpb, seeded):
    """``rpb`` with its root on a 12 MB tmpfs (the template store copied in: busybox, 1 MB)."""
    libc = ctypes.CDLL(None, use_errno=True)
    keep = rpb.root.parent / "template-copy"
    shutil.move(str(rpb.root), keep)
    rpb.root.mkdir(mode=0o700)
    if libc.mount(b"tmpfs", str(rpb.root).encode(), b"tmpfs", 0, b"size=12m,mode=0700") != 0:
        pytest.skip(f"cannot mount a tmpfs: {os.strerror(ctypes.get_errno())}")
    try:
        for name in os.listdir(keep):
            src = keep / name
            (shutil.copytree(src, rpb.root / name, symlinks=True) if src.is_dir()
             else shutil.copy2(src, rpb.root / name))
        rpb("build", "-q", "-t", "earlier:1", str(_ctx(rpb.root.parent, "earlier", "RUN echo earlier > /e")), check=True)
        yield rpb
    finally:
        for cid in rpb("ps", "-a", "-q", "--no-trunc").stdout.split():
            rpb("rm", "-f", cid)
        libc.umount2(str(rpb.root).encode(), 2)


def _ctx(parent: Path, name: str, body: str, files: dict[str, bytes] | None = None) -> Path:
    ctx = parent / f"ctx-{name}"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(f"FROM busybox\n{body}\n")
    for fname, data in (files or {}).items():
        (ctx / fname).write_bytes(data)
    return ctx


def _check_full(pb, proc) -> str:
    """One line naming the store root and the sizes; nothing partial left; earlier:1 still runs."""
    line = one_line_error(proc)
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "No space left on device" in line, line
    assert f"store {pb.root}" in line, line
    assert _SIZE.search(line), line
    assert partial_ingests(pb.root) == []
    tmp = pb.root / "tmp"
    assert not tmp.is_dir() or [n for n in os.listdir(tmp) if n.startswith("build-")] == []
    assert [n for n in os.listdir(pb.root / "snapshots") if n.startswith(".")] == []
    run = pb("run", "--rm", "--network", "none", "earlier:1", "cat", "/e")
    assert (run.returncode, run.stdout) == (0, "earlier\n"), run.stderr
    fsck_clean(pb)
    return line


def test_build_that_fills_the_disk_while_packing_a_layer(small_root):
    """The RUN's 7 MB fit in the upper dir; the packed layer does not fit beside them."""
    ctx = _ctx(small_root.root.parent, "pack", "RUN head -c 7000000 /dev/urandom > /noise")
    proc = small_root("build", "-q", "-t", "full:1", str(ctx))
    line = _check_full(small_root, proc)
    assert "needs more than" in line, line
    print(f"\nbuild (layer pack): {line}")


def test_build_that_fills_the_disk_copying_the_context(small_root):
    ctx = _ctx(small_root.root.parent, "copy", "COPY big /big", {"big": os.urandom(14 << 20)})
    proc = small_root("build", "-q", "-t", "full:2", str(ctx))
    line = _check_full(small_root, proc)
    print(f"\nbuild (COPY): {line}")


def test_build_whose_run_step_fills_the_disk(small_root):
    ctx = _ctx(small_root.root.parent, "run", "RUN head -c 20000000 /dev/zero > /zeros")
    proc = small_root("build", "-q", "-t", "full:3", str(ctx))
    line = _check_full(small_root, proc)
    print(f"\nbuild (RUN): {line}")


@pytest.fixture(scope="module")
def big_remote(seeded, tmp_path_factory):
    """A 9 MB incompressible image in the registry (pushed from a scratch store)."""
    from tests.conftest import PybuildRunner

    work = tmp_path_factory.mktemp("rel-big")
    pb = PybuildRunner(work / "root", work / "state")
    pb.root.mkdir(mode=0o700)
    pb.state.mkdir(mode=0o700)
    tar = work / "big.tar"
    with tarfile.open(tar, "w") as tf:
        data = os.urandom(9 << 20)
        info = tarfile.TarInfo("noise")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    pb("import", str(tar), "big:1", "--compression", "none", check=True)
    ref = f"{seeded.host}/rel/big:1"
    pb("push", "-q", "big:1", ref, env=seeded.env, check=True)
    return ref


def test_pull_that_fills_the_disk(small_root, big_remote):
    proc = small_root("pull", "-q", big_remote)
    line = _check_full(small_root, proc)
    assert re.search(r"needs 9\.\d+MB", line), line
    print(f"\npull: {line}")
