"""Multi-platform fixtures (session scoped, built once):

- ``arm64_busybox_tar``: a busybox rootfs tar made from Debian's ``busybox-static:arm64`` (the .deb that
  scripts/install.sh downloads to /var/cache/pybuild-test, else ``apt-get download`` now), with the
  applet links listed by this host's busybox.
- ``multi_root``: a store root with ``busybox:amd64``, ``busybox:arm64`` and ``busybox:multi`` (a
  manifest list of the two made with ``pybuild manifest create``); tests copy it.
- ``toolchain_tar``: a rootfs for ``FROM --platform=$BUILDPLATFORM``: the host's static busybox and the
  Debian cross compiler for arm64 (``gcc-aarch64-linux-gnu``, ``libc6-dev-arm64-cross``: their files
  from ``dpkg -L`` and the host libraries they load), so a build stage compiles natively for arm64.

Emulation needs ``binfmt_misc`` with ``qemu-aarch64`` registered (install.sh does it); the tests fail,
not skip, when it is missing: pybuild's own check says what to run.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.conftest import BUSYBOX, TESTDATA, PybuildRunner

ARM64_DEB = Path("/var/cache/pybuild-test/busybox-static_arm64.deb")
CROSS_PACKAGES = ("gcc-12-aarch64-linux-gnu", "cpp-12-aarch64-linux-gnu", "binutils-aarch64-linux-gnu",
                  "libc6-dev-arm64-cross", "linux-libc-dev-arm64-cross", "libgcc-12-dev-arm64-cross",
                  "gcc-aarch64-linux-gnu", "libc6-arm64-cross")
# files of those packages a `gcc -static` never reads (LTO, sanitizers, gold, docs)
_SKIP = ("/usr/share/", "lto1", "lto-dump", "ld.gold", "-dwp", "san.", "san_", "libubsan", "libitm", "libgomp")


@pytest.fixture(scope="session")
def arm64_busybox_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("arm64-busybox")
    deb = ARM64_DEB
    if not deb.exists():  # install.sh puts it there; a machine set up before that gets it now
        subprocess.run(["apt-get", "download", "-qq", "busybox-static:arm64"], cwd=work, check=True)
        deb = next(work.glob("busybox-static_*_arm64.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(work / "x")], check=True)
    out = work / "busybox-arm64-rootfs.tar"
    subprocess.run([sys.executable, str(TESTDATA / "busybox" / "make_rootfs.py"), str(out),
                    str(work / "x" / "bin" / "busybox"), BUSYBOX], check=True)
    return out


@pytest.fixture(scope="session")
def multi_root(busybox_tar: Path, arm64_busybox_tar: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("multi-base")
    root, state = base / "root", base / "state"
    root.mkdir(mode=0o700)
    state.mkdir(mode=0o700)
    pb = PybuildRunner(root, state)
    pb("import", str(busybox_tar), "busybox:amd64", check=True)
    pb("import", "--platform", "linux/arm64", str(arm64_busybox_tar), "busybox:arm64", check=True)
    pb("manifest", "create", "busybox:multi", "busybox:amd64", "busybox:arm64", check=True)
    return root


@pytest.fixture
def mpybuild(pybuild, multi_root: Path):
    """The per-test ``pybuild`` runner, its root a copy of ``multi_root``."""
    shutil.rmtree(pybuild.root)
    shutil.copytree(multi_root, pybuild.root, symlinks=True)
    return pybuild


def _package_files() -> list[str]:
    out = subprocess.run(["dpkg", "-L", *CROSS_PACKAGES], capture_output=True, text=True, check=True).stdout
    return [p for p in out.splitlines() if p.startswith("/") and not any(s in p for s in _SKIP)
            and (os.path.islink(p) or os.path.isfile(p))]


def _host_libraries(binaries: list[str]) -> set[str]:
    libs = {"/lib64/ld-linux-x86-64.so.2"}
    for path in binaries:
        out = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
        libs.update(part for line in out.splitlines() if "=>" in line
                    for part in line.split("=>")[1].split()[:1] if part.startswith("/"))
    return libs


def _canonical(path: str) -> str:
    """``path`` with its directory resolved (``/lib/x86_64-linux-gnu/libc.so.6`` -> ``usr/lib/...``)."""
    return os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path)).lstrip("/")


@pytest.fixture(scope="session")
def toolchain_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    files = _package_files()
    elves = [p for p in files if not os.path.islink(p) and os.access(p, os.X_OK)]
    out = tmp_path_factory.mktemp("toolchain") / "toolchain-rootfs.tar"
    dirs: set[str] = set()
    with tarfile.open(out, "w") as tar:
        def add_dirs(name: str) -> None:
            parts = name.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    ti = tarfile.TarInfo(d)
                    ti.type, ti.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
                    tar.addfile(ti)

        def add_file(name: str, source: str) -> None:
            add_dirs(name)
            data = Path(os.path.realpath(source)).read_bytes()
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode = len(data), 0o755 if os.access(source, os.X_OK) else 0o644
            tar.addfile(ti, io.BytesIO(data))

        def add_link(name: str, target: str) -> None:
            add_dirs(name)
            ti = tarfile.TarInfo(name)
            ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, target, 0o777
            tar.addfile(ti)

        add_dirs("tmp/x")
        add_file("bin/busybox", BUSYBOX)
        for applet in ("sh", "mkdir", "cat", "ls", "rm", "echo", "uname", "file"):
            add_link(f"bin/{applet}", "busybox")
        for top in ("lib", "lib64"):
            if os.path.islink(f"/{top}"):
                add_link(top, os.readlink(f"/{top}"))
        for path in sorted(_host_libraries(elves)):
            add_file(_canonical(path), path)
        for path in files:
            name = _canonical(path)
            if os.path.islink(path):
                add_link(name, os.readlink(path))
            else:
                add_file(name, path)
    return out


@pytest.fixture(scope="session")
def qemu_registered() -> None:
    """Fails (never skips) with pybuild's own message when arm64 cannot be emulated here."""
    from runner import binfmt

    binfmt.require("linux", "arm64")
