"""What the rootless benchmarks share: a work dir owned by an existing non-root user, with a fresh
XDG_RUNTIME_DIR and the busybox root filesystem; commands run and timed as that user with a clean
environment (``setpriv`` + ``env -i``); at the end the pause processes killed and the dir removed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PYBUILD = "/var/tmp/pybuild-rootless/venv/bin/pybuild"   # the rootless tests' venv (tests/rootless/support.py)
PAUSE_FILES = {"pybuild": "pybuild/userns/pause.pid", "podman": "libpod/tmp/pause.pid"}   # under XDG_RUNTIME_DIR


def parse_args(rounds: int) -> argparse.Namespace:
    """``--user NAME`` (required), ``--pybuild PATH`` (default :data:`DEFAULT_PYBUILD`), ``-n`` rounds."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--user", required=True)
    ap.add_argument("--pybuild", default=DEFAULT_PYBUILD)
    ap.add_argument("-n", type=int, default=rounds)
    return ap.parse_args()


@dataclass(frozen=True)
class UserWork:
    user: str
    uid: int
    gid: int
    home: str
    dir: Path           # the work dir, the user's; commands run in it
    xdg: Path           # XDG_RUNTIME_DIR, 0700
    tar: Path           # the busybox root filesystem (testdata/busybox/make_rootfs.py)

    def give(self, *paths: Path) -> None:
        """Make ``paths`` the user's."""
        for p in paths:
            os.chown(p, self.uid, self.gid)

    def argv(self, cmd: list[str], env: dict[str, str] | None = None) -> list[str]:
        """``cmd`` as the user, in an environment of HOME, XDG_RUNTIME_DIR, PATH and ``env``."""
        envs = [f"HOME={self.home}", f"XDG_RUNTIME_DIR={self.xdg}", *(f"{k}={v}" for k, v in (env or {}).items()),
                "PATH=/usr/bin:/bin"]
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups", "env", "-i", *envs, *cmd]

    def timed(self, cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
        """Seconds ``cmd`` took as the user, and its stripped output; SystemExit if it failed."""
        t = time.perf_counter()
        r = subprocess.run(self.argv(cmd, env), capture_output=True, text=True, cwd=str(self.dir))
        dt = time.perf_counter() - t
        if r.returncode:
            raise SystemExit(f"{' '.join(cmd)}: exit {r.returncode}\n{r.stderr[-800:]}")
        return dt, r.stdout.strip()

    def pybuild(self, exe: str) -> list[str]:
        """``exe`` (a pybuild the user can run) on a store in the work dir."""
        return [exe, "--root", str(self.dir / "pb-root")]

    def podman(self) -> list[str]:
        """podman on a store in the work dir."""
        return ["podman", "--root", str(self.dir / "pd-root"), "--runroot", str(self.xdg / "pd")]

    def pause_pid(self, tool: str) -> int | None:
        """The pid in ``tool``'s pause pid file (see :data:`PAUSE_FILES`), if there is one."""
        try:
            return int((self.xdg / PAUSE_FILES[tool]).read_text().strip())
        except (OSError, ValueError):
            return None


@contextlib.contextmanager
def user_work(user: str, prefix: str):
    """A :class:`UserWork` for ``user`` under /tmp (short: podman's runroot must stay under 50 chars);
    afterwards the pause processes are killed and the dir removed."""
    pw = pwd.getpwnam(user)
    work = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        os.chmod(work, 0o755)
        w = UserWork(user, pw.pw_uid, pw.pw_gid, pw.pw_dir, work, work / "xdg", work / "busybox.tar")
        w.xdg.mkdir(mode=0o700)
        subprocess.run([sys.executable, str(ROOT / "testdata/busybox/make_rootfs.py"), str(w.tar),
                        shutil.which("busybox") or "/bin/busybox"], check=True)
        w.give(work, w.xdg, w.tar)
        yield w
    finally:
        for pidfile in work.rglob("pause.pid"):
            try:
                os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        time.sleep(0.3)
        shutil.rmtree(work, ignore_errors=True)
