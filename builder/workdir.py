"""Per-build scratch directories under ``<root>/tmp/build-*`` and the reaping of ones a killed build
left behind (overlay mounts still mounted, upper dirs, staged secrets, the cgroups of its RUN steps,
whose ids are listed in ``<dir>/runs``). :func:`stale_build_dirs` and :func:`reap_stale_build_dirs`
answer ``fsck`` and ``system prune`` for a whole store."""

from __future__ import annotations

import os
import shutil
import tempfile

__all__ = ["new_workdir", "reap_stale", "stale_build_dirs", "reap_stale_build_dirs"]


def new_workdir(root: str) -> str:
    """A fresh ``<root>/tmp/build-XXXX`` (0700) owned by this process. It appears under that name only
    with its pid already recorded, so a build starting at the same moment never takes it for stale."""
    base = os.path.join(root, "tmp")
    os.makedirs(base, mode=0o700, exist_ok=True)
    reap_stale(base)
    tmp = tempfile.mkdtemp(prefix=".new-build-", dir=base)
    with open(os.path.join(tmp, "pid"), "w") as f:
        f.write(str(os.getpid()))
    path = os.path.join(base, os.path.basename(tmp)[len(".new-"):])
    os.rename(tmp, path)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _young(path: str, seconds: float = 60) -> bool:
    import time

    try:
        return time.time() - os.lstat(path).st_mtime < seconds
    except OSError:
        return True


def _mounts_under(path: str) -> list[str]:
    prefix = os.path.realpath(path) + "/"
    out = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        for line in f:
            mountpoint = line.split(" ")[4].replace("\\040", " ")
            if mountpoint.startswith(prefix):
                out.append(mountpoint)
    return sorted(out, key=len, reverse=True)


def reap_stale(base: str) -> None:
    """Unmount and remove ``build-*`` dirs whose process is gone (a killed or crashed build)."""
    from runner import syscalls as sc

    try:
        names = os.listdir(base)
    except FileNotFoundError:
        return
    for name in names:
        path = os.path.join(base, name)
        if not name.startswith(("build-", ".new-build-")):
            continue
        try:
            with open(os.path.join(path, "pid")) as f:
                pid = int(f.read().strip() or 0)
        except (OSError, ValueError):
            pid = 0
        if pid and _alive(pid):
            continue
        if name.startswith(".new-") and not pid and _young(path):
            continue  # being made right now: its pid file is not written yet
        for mountpoint in _mounts_under(path):
            try:
                sc.umount2(mountpoint, sc.MNT_DETACH)
            except OSError:
                continue  # already gone
        _cleanup_runs(path)
        shutil.rmtree(path, ignore_errors=True)


def _cleanup_runs(path: str) -> None:
    """The cgroups (and any process left in them) of the RUN steps a killed build had started."""
    try:
        with open(os.path.join(path, "runs")) as f:
            ids = f.read().split()
    except OSError:
        return
    from layers.errors import PybuildError
    from runner import sandbox

    for cid in ids:
        try:
            sandbox.cleanup(cid)
        except (PybuildError, OSError):
            continue  # best effort: the next reap or a reboot clears it


def stale_build_dirs(root: str) -> list[str]:
    """The names of ``<root>/tmp/build-*`` work directories whose build process is gone (killed mid-build)."""
    base = os.path.join(root, "tmp")
    try:
        names = sorted(n for n in os.listdir(base) if n.startswith("build-"))
    except FileNotFoundError:
        return []
    stale = []
    for name in names:
        try:
            with open(os.path.join(base, name, "pid")) as f:
                pid = int(f.read().strip() or 0)
            os.kill(pid, 0)
        except (OSError, ValueError):  # no pid file, a bad one, or the process is gone
            stale.append(name)
    return stale


def reap_stale_build_dirs(root: str) -> int:
    """Unmount and remove the work directories of killed builds in the store at ``root``; how many went."""
    stale = stale_build_dirs(root)
    if stale:
        reap_stale(os.path.join(root, "tmp"))
    return len(stale) - len(stale_build_dirs(root))
