"""Starting a shim (:mod:`runner.shim`) from the CLI side: :class:`PendingShim` and :func:`spawn`.

Kept apart from the shim itself so that ``start`` does not load the shim's supervisor code, and the
shim never imports the lifecycle operations that start it.
"""

from __future__ import annotations

import os
import selectors
import sys
import time

from .errors import ShimFailed

__all__ = ["PendingShim", "spawn"]


class PendingShim:
    """A shim process started before its container exists; :meth:`start` hands it the container.

    ``pybuild run -d`` starts one first thing, so the shim's interpreter start and imports (~50 ms)
    run on the other core while the CLI looks up the image and writes the record. :meth:`close`
    (or leaving the ``with`` block) without :meth:`start` makes it exit with nothing written.
    """

    def __init__(self, root: str, state_dir: str) -> None:
        import subprocess

        self.root, self.state_dir = root, state_dir
        self._proc = None
        self._ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
        go_r, self._go_w = os.pipe2(os.O_CLOEXEC)
        try:
            env = dict(os.environ)
            env.pop("PYTHONSTARTUP", None)
            # -S: no site module, so no scan of site-packages' .pth files nor an editable install's
            # import hook in a process that lives as long as its container (~2 MiB and ~20 ms less);
            # it gets this process's module path instead, with the directory that holds runner first
            here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([here] + [p for p in sys.path if p]))
            proc = subprocess.Popen(
                [sys.executable, "-S", "-m", "runner.shim", root, state_dir, str(ready_w), str(go_r)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=None,
                pass_fds=(ready_w, go_r), close_fds=True, cwd="/", env=env)
        except BaseException:
            for fd in (self._ready_r, self._go_w):
                os.close(fd)
            raise
        finally:
            os.close(ready_w)
            os.close(go_r)
        # its first fork's parent exits as soon as the interpreter is up: reaped in close(), so the
        # caller goes on meanwhile (the shim itself lives on, re-parented)
        self._proc = proc

    def start(self, cid: str, *, timeout: float = 60.0) -> int:
        """Give the shim container ``cid`` and wait until its process runs; return its pid.

        Raises :class:`~runner.errors.ShimFailed` with the shim's message when it could not start.
        """
        try:
            os.write(self._go_w, cid.encode() + b"\n")
        except BrokenPipeError:
            pass                  # the shim is gone: reported below as exited without starting it
        self.close()
        deadline = time.monotonic() + timeout
        buf = b""
        with os.fdopen(self._ready_r, "rb", buffering=0) as f:
            self._ready_r = -1
            sel = selectors.DefaultSelector()
            sel.register(f, selectors.EVENT_READ)
            while not buf.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(timeout=left):
                    raise ShimFailed(f"container {cid[:12]}: the shim did not report within {timeout:.0f}s")
                chunk = f.read(4096)
                if not chunk:
                    break
                buf += chunk
        line = buf.decode(errors="replace").strip()
        if line.startswith("ok "):
            return int(line[3:])
        if line.startswith("error "):
            raise ShimFailed(line[6:])
        raise ShimFailed(f"container {cid[:12]}: the shim exited without starting it "
                           f"(see {os.path.join(self.state_dir, cid, 'shim.log')})")

    def close(self) -> None:
        """Without a container handed over, the shim exits (EOF on its GO_FD)."""
        if self._go_w >= 0:
            os.close(self._go_w)
            self._go_w = -1
        if self._proc is not None:
            self._proc.wait()
            self._proc = None

    def __enter__(self) -> "PendingShim":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
        if self._ready_r >= 0:
            os.close(self._ready_r)
            self._ready_r = -1


def spawn(root: str, state_dir: str, cid: str, *, timeout: float = 60.0, shim: PendingShim | None = None) -> int:
    """Start the shim for container ``cid`` (or hand it to the already started ``shim``) and wait
    until the container runs; return its pid. Raises :class:`~runner.errors.ShimFailed` with the
    shim's message when the container could not start."""
    with shim if shim is not None else PendingShim(root, state_dir) as pending:
        return pending.start(cid, timeout=timeout)
