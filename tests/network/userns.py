"""Run a test's body the way a rootless pybuild runs: root in a user namespace (with a mount namespace
of its own), so it has no privilege over the host's network namespace, which it still sits in.

The suite runs as root; a user namespace that root makes gives the same restrictions (capabilities
only over what the user namespace owns). :func:`in_userns` forks, the child unshares ``CLONE_NEWUSER
| CLONE_NEWNS``, the parent maps the child's root to host root (one id: enough to open the test's
files and ``/dev/net/tun``), the child runs ``fn`` and sends back its result or its error as text.
Bind mounts it makes vanish with its mount namespace; processes it starts (pasta, slirp4netns) must
be stopped by ``fn`` (the rootless network code does) and are killed by :func:`kill_leftovers`.
"""

from __future__ import annotations

import os
import pickle
import signal
import traceback


def in_userns(fn, timeout: float = 60.0):
    """``fn()`` in a forked child that is root in a fresh user namespace; its return value (picklable),
    or AssertionError with the child's traceback."""
    from runner import syscalls as sc

    go_r, go_w = os.pipe()
    res_r, res_w = os.pipe()
    pid = os.fork()
    if pid == 0:                                            # the child: never returns into pytest
        code = 1
        try:
            os.close(go_w)
            os.close(res_r)
            sc.unshare(sc.CLONE_NEWUSER | sc.CLONE_NEWNS)
            os.write(res_w, b"u")
            os.read(go_r, 1)
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
            sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
            from layers.store import location      # its answers are cached: ask again in here

            location.in_user_namespace.cache_clear()
            location.host_uid.cache_clear()
            try:
                out = ("ok", fn())
            except BaseException:
                out = ("error", traceback.format_exc())
            data = pickle.dumps(out)
            with os.fdopen(res_w, "wb") as f:
                f.write(data)
            code = 0
        finally:
            os._exit(code)
    os.close(go_r)
    os.close(res_w)
    try:
        if os.read(res_r, 1) != b"u":
            raise AssertionError("the child could not make a user namespace")
        with open(f"/proc/{pid}/setgroups", "w") as f:
            f.write("deny")
        for m in ("uid_map", "gid_map"):
            with open(f"/proc/{pid}/{m}", "w") as f:
                f.write("0 0 1\n")
        os.write(go_w, b"g")
        signal.signal(signal.SIGALRM, _timeout)
        signal.alarm(int(timeout))
        try:
            chunks = []
            while chunk := os.read(res_r, 1 << 16):
                chunks.append(chunk)
        finally:
            signal.alarm(0)
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        raise
    finally:
        os.close(go_w)
        os.close(res_r)
        os.waitpid(pid, 0)
    if not chunks:
        raise AssertionError("the child in the user namespace died without a result")
    status, value = pickle.loads(b"".join(chunks))
    if status != "ok":
        raise AssertionError(f"in the user namespace:\n{value}")
    return value


def _timeout(signum, frame):
    raise TimeoutError("the test body in the user namespace took too long")


def tool_pids(marker: str) -> list[int]:
    """Pids of pasta/slirp4netns processes whose command line mentions ``marker`` (a test's tmp dir)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) in (b"pasta", b"slirp4netns") and \
                any(marker.encode() in a for a in argv):
            out.append(int(name))
    return out


def kill_leftovers(marker: str, settle: float = 5.0) -> list[int]:
    """SIGKILL the tools a failed test left running; returns their pids (a passing test leaves none).
    Waits up to ``settle`` seconds first: a released tool is sent SIGKILL, its exit is not waited for."""
    import time

    deadline = time.monotonic() + settle
    while (pids := tool_pids(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return pids
