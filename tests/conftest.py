"""Fixtures shared by every room's tests.

- ``busybox_tar``: a deterministic busybox rootfs tar made from Debian's busybox-static.
- ``debian_tar``: a debootstrapped Debian bookworm rootfs tar (slow; once per session).
- ``store_root``: an empty store root (a fresh temp dir) for one test.
- ``pybuild``: runs the real installed ``pybuild`` entry point with ``--root``/``--state-dir``
  pointing at per-test dirs; returns ``subprocess.CompletedProcess`` (text mode).

Strict skips: with ``PYBUILD_STRICT_SKIPS=1`` (scripts/test.sh sets it) a skip whose reason does not
start with a line of ``tests/skip_allowlist.txt`` fails the session; the summary lists both kinds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
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


@pytest.fixture(scope="session")
def debian_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A minimal Debian bookworm rootfs tar made by ``debootstrap`` from the Debian mirror, once per
    session (the builder's Debian builds and compose's three-tier test import it)."""
    if shutil.which("debootstrap") is None:
        pytest.skip("debootstrap is not installed")
    if os.environ.get("PYBUILD_SKIP_DEBOOTSTRAP"):
        pytest.skip("PYBUILD_SKIP_DEBOOTSTRAP is set")
    if os.environ.get("PYBUILD_DEBIAN_TAR"):          # a tar made earlier the same way (local runs)
        return Path(os.environ["PYBUILD_DEBIAN_TAR"])
    base = tmp_path_factory.mktemp("debian")
    rootfs = base / "rootfs"
    proc = subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(rootfs), "http://deb.debian.org/debian"],
                          capture_output=True, text=True, timeout=1200)
    if proc.returncode != 0:
        pytest.skip(f"debootstrap failed (no mirror?): {proc.stderr[-500:]}")
    out = base / "debian.tar"
    with tarfile.open(out, "w") as tar:  # the tar of a rootfs we just made ourselves
        tar.add(rootfs, arcname=".")
    shutil.rmtree(rootfs, ignore_errors=True)
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


# --- strict skips -----------------------------------------------------------------------------------

SKIP_ALLOWLIST = Path(__file__).resolve().parent / "skip_allowlist.txt"


def allowed_skip_reasons(path: Path = SKIP_ALLOWLIST) -> tuple[str, ...]:
    """The allow-list's entries: non-blank lines that are not ``#`` comments."""
    lines = (line.strip() for line in path.read_text().splitlines())
    return tuple(line for line in lines if line and not line.startswith("#"))


def skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    """The reason a skipped report gives (``pytest.skip(reason)``, ``skipif(reason=...)``)."""
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


def split_skips(reports, allowed: tuple[str, ...]) -> tuple[list, list]:
    """``(allowed, refused)``: ``(nodeid, reason)`` of each skipped report, by the allow-list."""
    ok, refused = [], []
    for report in reports:
        reason = skip_reason(report)
        (ok if reason.startswith(allowed) else refused).append((report.nodeid, reason))
    return ok, refused


def _strict() -> bool:
    return os.environ.get("PYBUILD_STRICT_SKIPS") == "1"


def _skips(config: pytest.Config) -> tuple[list, list]:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    reports = reporter.stats.get("skipped", []) if reporter is not None else []
    return split_skips(reports, allowed_skip_reasons())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _strict() and exitstatus == 0 and _skips(session.config)[1]:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if not _strict():
        return
    ok, refused = _skips(config)
    if ok:
        terminalreporter.section("allowed skips (tests/skip_allowlist.txt)")
        for reason in sorted(set(r for _, r in ok)):
            terminalreporter.line(f"{sum(r == reason for _, r in ok)} x {reason}")
    if refused:
        terminalreporter.section("skips NOT on tests/skip_allowlist.txt: the run FAILS (PYBUILD_STRICT_SKIPS=1)",
                                 red=True)
        for nodeid, reason in refused:
            terminalreporter.line(f"{nodeid}: {reason}")
