"""Rootless fixtures: real non-root users with subordinate ranges, pybuild installed for them, and a
runner that calls ``pybuild`` as such a user with a clean environment (``setpriv`` + ``env -i``).

- ``rootless_venv`` (session): ``/usr/bin/python3 -m venv /var/tmp/pybuild-rootless/venv`` (root's own
  python3 may live under /root, which other users cannot execute) with a *copy* of this checkout
  pip-installed non-editable, so where CI cloned the repository does not matter.
- ``rootless_users`` (session): ``pbrl-a`` and ``pbrl-b`` with subordinate uid/gid ranges (useradd
  allocates them), ``pbrl-single`` with none. At the end every process of theirs (pause processes,
  leftover containers: found by uid in /proc, killed by pid) is killed and the users are removed.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BASE = Path("/var/tmp/pybuild-rootless")
USERS = ("pbrl-a", "pbrl-b", "pbrl-single")


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int
    home: str
    subuid: tuple[int, int] | None  # (start, count) or None

    def run(self, pybuild: str, *args: str, xdg: str | None = None, env: dict | None = None, check: bool = False,
            timeout: float = 300, wrap: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
        """``pybuild ARGS`` as this user; ``wrap``: a command (run as root) that execs the rest."""
        envs = [f"HOME={self.home}", f"USER={self.name}", "PATH=/usr/local/bin:/usr/bin:/bin"]
        if xdg:
            envs.append(f"XDG_RUNTIME_DIR={xdg}")
        envs += [f"{k}={v}" for k, v in (env or {}).items()]
        proc = subprocess.run([*wrap, "setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups",
                               "env", "-i", *envs, pybuild, *args], capture_output=True, text=True,
                              cwd=self.home, timeout=timeout)
        if check and proc.returncode:
            raise AssertionError(f"pybuild {' '.join(args)} as {self.name} exited {proc.returncode}:\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc


def _subuid(name: str) -> tuple[int, int] | None:
    for line in Path("/etc/subuid").read_text().splitlines():
        parts = line.split(":")
        if len(parts) == 3 and parts[0] == name:
            return int(parts[1]), int(parts[2])
    return None


def _kill_users_processes(uids: set[int]) -> None:
    """SIGKILL the processes the tests made as these users (their uid, or a subordinate uid)."""
    for _ in range(3):
        found = False
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/status") as f:
                    uid = next(int(l.split()[1]) for l in f if l.startswith("Uid:"))
            except (OSError, StopIteration, ValueError):
                continue
            if uid in uids:
                found = True
                try:
                    os.kill(int(entry), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if not found:
            return
        time.sleep(0.2)


@pytest.fixture(scope="session")
def rootless_venv() -> str:
    if not Path("/usr/bin/python3").exists() or not shutil.which("newuidmap"):
        pytest.fail("rootless tests need /usr/bin/python3 and newuidmap (scripts/install.sh installs uidmap)")
    src = BASE / "src"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "layers", "registry_client", "runner", "builder", "compose", "pybuild"):
        p = REPO / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("__pycache__"), symlinks=False)
        elif p.exists():
            shutil.copy(p, src / name)
    venv = BASE / "venv"
    if not (venv / "bin" / "python").exists():
        subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "--force-reinstall", "--no-deps", str(src)], check=True, timeout=600)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    str(src)], check=True, timeout=600)
    for dirpath, dirnames, filenames in os.walk(BASE):
        os.chmod(dirpath, 0o755)
        for f in filenames:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):
                os.chmod(p, os.stat(p).st_mode | 0o444)
    return str(venv / "bin" / "pybuild")


@pytest.fixture(scope="session")
def rootless_users():
    made: dict[str, User] = {}
    try:
        for name in USERS:
            if name in {p.pw_name for p in pwd.getpwall()}:
                subprocess.run(["userdel", "-r", name], capture_output=True)
            extra = ["-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0"] if name == "pbrl-single" else []
            subprocess.run(["useradd", "-m", "-s", "/bin/sh", *extra, name], check=True)
            if name != "pbrl-single" and _subuid(name) is None:
                subprocess.run(["usermod", "--add-subuids", "2000000-2065535", "--add-subgids", "2000000-2065535",
                                name], check=True)
            pw = pwd.getpwnam(name)
            made[name] = User(name, pw.pw_uid, pw.pw_gid, pw.pw_dir, _subuid(name))
        yield made
    finally:
        uids = set()
        for u in made.values():
            uids.add(u.uid)
            if u.subuid:
                uids.update(range(u.subuid[0], u.subuid[0] + min(u.subuid[1], 70000)))
        _kill_users_processes(uids)
        for u in made.values():
            subprocess.run(["userdel", "-r", u.name], capture_output=True)
            shutil.rmtree(f"/tmp/pybuild-{u.uid}", ignore_errors=True)
            shutil.rmtree(BASE / f"xdg-{u.uid}", ignore_errors=True)
        for name in ("ctx", "tars"):  # the venv and its source copy stay: an install cache for the next run
            shutil.rmtree(BASE / name, ignore_errors=True)
