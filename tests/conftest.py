"""Fixtures shared by every room's tests.

- ``busybox_tar``: a deterministic busybox rootfs tar made from Debian's busybox-static.
- ``store_root``: an empty store root (a fresh temp dir) for one test.
- ``pybuild``: runs the real installed ``pybuild`` entry point with ``--root``/``--state-dir``
  pointing at per-test dirs; returns ``subprocess.CompletedProcess`` (text mode).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTDATA = ROOT / "testdata"
BUSYBOX = shutil.which("busybox") or "/bin/busybox"


def pybuild_exe() -> str:
    """The installed console script next to this interpreter (no pyenv shim in between)."""
    exe = Path(sys.executable).with_name("pybuild")
    return str(exe) if exe.exists() else (shutil.which("pybuild") or "pybuild")


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not os.path.exists(BUSYBOX):
        pytest.skip("busybox-static is not installed (apt-get install busybox-static)")
    out = tmp_path_factory.mktemp("busybox") / "busybox-rootfs.tar"
    subprocess.run([sys.executable, str(TESTDATA / "busybox" / "make_rootfs.py"), str(out), BUSYBOX], check=True)
    return out


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir(mode=0o700)
    return root


class PybuildRunner:
    def __init__(self, root: Path, state: Path) -> None:
        self.root = root
        self.state = state

    def __call__(self, *args: str, check: bool = False, input: str | bytes | None = None,
                 env: dict[str, str] | None = None, timeout: float = 300, text: bool = True,
                 ) -> subprocess.CompletedProcess:
        full_env = dict(os.environ)
        full_env.pop("PYBUILD_DEBUG", None)
        if env:
            full_env.update(env)
        proc = subprocess.run(
            [pybuild_exe(), "--root", str(self.root), "--state-dir", str(self.state), *args],
            input=input, capture_output=True, text=text, env=full_env, timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"pybuild {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc


@pytest.fixture
def pybuild(tmp_path: Path) -> PybuildRunner:
    root = tmp_path / "root"
    state = tmp_path / "state"
    root.mkdir(mode=0o700, exist_ok=True)
    state.mkdir(mode=0o700, exist_ok=True)
    return PybuildRunner(root, state)
