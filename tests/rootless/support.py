"""What the rootless end-to-end tests share: real non-root test users (made, run as, removed with all
their processes), the one venv they run ``pybuild`` from, and a TCP server on the host's loopback.

- :func:`install_pybuild`: ``/usr/bin/python3 -m venv /var/tmp/pybuild-rootless/venv`` (root's own
  python3 may live under /root, which other users cannot execute) with a *copy* of this checkout
  pip-installed non-editable, so where CI cloned the repository does not matter. The source's hash is
  kept beside the venv: a second session (another pytest process) of the same source installs nothing,
  so it does not reinstall under a session that is running the venv.
- :func:`make_user` / :func:`remove_users`: ``useradd`` (with or without subordinate ranges); at the
  end every process of the users (their uid or a subordinate id: found in /proc, killed by pid) is
  killed, the users are removed with their homes and their ``/tmp/pybuild-UID`` state.
- :class:`User` ``.run``/``.argv``: a command as the user with a clean environment (``setpriv`` + ``env -i``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BASE = Path("/var/tmp/pybuild-rootless")
SOURCES = ("pyproject.toml", "README.md", "layers", "registry_client", "runner", "builder", "compose", "pybuild")
SUBIDS_KILLED = 70000   # the most subordinate ids of a user whose processes are looked for


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int
    home: str
    subuid: tuple[int, int] | None  # (start, count) or None

    def argv(self, program: str, *args: str, xdg: str | None = None, env: dict | None = None) -> list[str]:
        """The command line that runs ``program ARGS`` as this user, in an environment of HOME, USER,
        PATH, XDG_RUNTIME_DIR (given ``xdg``) and ``env``."""
        envs = [f"HOME={self.home}", f"USER={self.name}", "PATH=/usr/local/bin:/usr/bin:/bin"]
        if xdg:
            envs.append(f"XDG_RUNTIME_DIR={xdg}")
        envs += [f"{k}={v}" for k, v in (env or {}).items()]
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups", "env", "-i", *envs,
                program, *args]

    def run(self, program: str, *args: str, xdg: str | None = None, env: dict | None = None, check: bool = False,
            timeout: float = 300, wrap: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
        """``program ARGS`` (mostly the installed pybuild) as this user in its home, output captured;
        ``wrap``: a command (run as root) that execs the rest; ``check``: AssertionError on failure."""
        proc = subprocess.run([*wrap, *self.argv(program, *args, xdg=xdg, env=env)], capture_output=True,
                              text=True, cwd=self.home, timeout=timeout)
        if check and proc.returncode:
            raise AssertionError(f"{os.path.basename(program)} {' '.join(args)} as {self.name} exited "
                                 f"{proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def ids(self) -> set[int]:
        """Its uid and (up to :data:`SUBIDS_KILLED` of) its subordinate uids."""
        if not self.subuid:
            return {self.uid}
        return {self.uid, *range(self.subuid[0], self.subuid[0] + min(self.subuid[1], SUBIDS_KILLED))}


def subuid(name: str) -> tuple[int, int] | None:
    """The first subordinate uid range /etc/subuid gives ``name``, as (start, count)."""
    for line in Path("/etc/subuid").read_text().splitlines():
        parts = line.split(":")
        if len(parts) == 3 and parts[0] == name:
            return int(parts[1]), int(parts[2])
    return None


def make_user(name: str, subids: str | None) -> User:
    """A fresh ``name`` (an old one of that name is removed first) with a home and ``/bin/sh``;
    ``subids`` ("START-END") is added as its subordinate uid and gid range unless useradd gave it one;
    ``None``: no subordinate ranges at all (the single-id mapping)."""
    if name in {p.pw_name for p in pwd.getpwall()}:
        subprocess.run(["userdel", "-r", name], capture_output=True)
    none = ["-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0"] if subids is None else []
    subprocess.run(["useradd", "-m", "-s", "/bin/sh", *none, name], check=True)
    if subids is not None and subuid(name) is None:
        subprocess.run(["usermod", "--add-subuids", subids, "--add-subgids", subids, name], check=True)
    pw = pwd.getpwnam(name)
    return User(name, pw.pw_uid, pw.pw_gid, pw.pw_dir, subuid(name))


def remove_users(users) -> None:
    """Kill every process of ``users`` (see :meth:`User.ids`), remove them, their homes and their
    ``/tmp/pybuild-UID`` state directories."""
    users = list(users)
    kill_users_processes(set().union(*(u.ids() for u in users)))
    for u in users:
        subprocess.run(["userdel", "-r", u.name], capture_output=True)
        shutil.rmtree(f"/tmp/pybuild-{u.uid}", ignore_errors=True)


def kill_pids(pids) -> None:
    """SIGKILL each pid, gone ones skipped."""
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass


def kill_users_processes(uids: set[int]) -> None:
    """SIGKILL the processes the tests made as these users (their uid, or a subordinate uid)."""
    for _ in range(3):
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/status") as f:
                    uid = next(int(l.split()[1]) for l in f if l.startswith("Uid:"))
            except (OSError, StopIteration, ValueError):
                continue
            if uid in uids:
                found.append(entry)
        if not found:
            return
        kill_pids(found)
        time.sleep(0.2)


def _source_hash() -> str:
    h = hashlib.sha256()
    for name in SOURCES:
        top = REPO / name
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file()
                                                    and "__pycache__" not in p.parts)
        for p in files:
            h.update(str(p.relative_to(REPO)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def install_pybuild() -> str:
    """Path of the ``pybuild`` that every test user can run: this checkout installed in the shared venv
    (at most one pip install per source; concurrent callers wait on a lock)."""
    BASE.mkdir(parents=True, exist_ok=True)
    os.chmod(BASE, 0o755)
    venv, src, stamp = BASE / "venv", BASE / "src", BASE / "venv" / "pybuild-source.sha256"
    pybuild = str(venv / "bin" / "pybuild")
    with open(BASE / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        digest = _source_hash()
        if stamp.exists() and stamp.read_text() == digest and os.path.exists(pybuild):
            return pybuild
        shutil.rmtree(src, ignore_errors=True)
        src.mkdir()
        for name in SOURCES:
            p = REPO / name
            if p.is_dir():
                shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("__pycache__"), symlinks=False)
            elif p.exists():
                shutil.copy(p, src / name)
        stamp.unlink(missing_ok=True)
        if not (venv / "bin" / "python").exists():
            subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, "--force-reinstall", "--no-deps", str(src)], check=True, timeout=600)
        subprocess.run([*pip, str(src)], check=True, timeout=600)
        for dirpath, _dirs, files in (*os.walk(venv), *os.walk(src)):
            os.chmod(dirpath, 0o755)
            for f in files:
                p = os.path.join(dirpath, f)
                if not os.path.islink(p):
                    os.chmod(p, os.stat(p).st_mode | 0o444)
        stamp.write_text(digest)
        return pybuild


@contextlib.contextmanager
def host_tcp_server(reply: bytes, read_request: bool = False):
    """A TCP server on the host's 127.0.0.1 that sends ``reply`` to every connection (after reading
    up to 1000 bytes of the request, with ``read_request``) and closes it; yields its port."""
    srv = socket.create_server(("127.0.0.1", 0), backlog=16)
    done = threading.Event()

    def serve():
        while not done.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                if read_request:
                    conn.recv(1000)
                conn.sendall(reply)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield srv.getsockname()[1]
    finally:
        done.set()
        srv.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not, on Linux)
        srv.close()
        t.join(timeout=5)
