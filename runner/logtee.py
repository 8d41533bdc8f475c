"""The foreground run's log writer: :class:`LogTee` relays a container's output to the caller's stdout
and stderr and records it in the container's log (:class:`runner.logfile.LogWriter`) on the way.

Apart from :mod:`runner.logs` (the reader, which re-exports it) so that ``run`` does not build the
reader's classes. Stdlib only.
"""

from __future__ import annotations

import os

from .logfile import LogWriter

__all__ = ["LogTee"]


class LogTee:
    """Copy a container's output from pipes to the caller's fds and into a :class:`LogWriter`, on a thread.

    ``sources`` maps each pipe's read end to ``(stream, destination fd)``. The thread runs until
    every pipe reaches end of file (all its writers closed: the container and everything it
    started have exited). When a destination goes away (``EPIPE``: the reader of ``run | head`` is
    done) its pipe is closed, so the container's next write fails as it would have on the
    destination itself (``run yes | head`` ends). A log that cannot be written (disk full) stops
    recording and the relay goes on. :meth:`join` waits for the end, closes the pipes and the log.
    """

    def __init__(self, writer: LogWriter, sources: dict[int, tuple[str, int]]) -> None:
        import threading

        self.writer = writer
        self.log_error: OSError | None = None     # why the log stopped recording, if it did
        self._sources = dict(sources)
        self._open = set(sources)
        self._thread = threading.Thread(target=self._run, name="log-tee", daemon=True)
        self._thread.start()

    def join(self, *, sync: bool = True) -> None:
        """Wait until every pipe is at end of file; close them and the log (``sync``: fsync it)."""
        self._thread.join()
        for fd in self._open:
            os.close(fd)
        self._open.clear()
        try:
            self.writer.close(sync=sync and self.log_error is None)
        except OSError as exc:
            self.log_error = self.log_error or exc

    def _run(self) -> None:
        import select

        live = dict(self._sources)
        while live:
            try:
                ready, _, _ = select.select(list(live), [], [])
            except InterruptedError:
                continue
            for fd in ready:
                try:
                    data = os.read(fd, 65536)
                except InterruptedError:
                    continue
                except OSError:          # EIO: the last holder of a pty's slave side is gone
                    data = b""
                if not data:
                    del live[fd]
                    continue
                stream, dest = live[fd]
                self._record(stream, data)
                if not _write_all(dest, data):      # the reader is gone: so is the pipe
                    del live[fd]
                    self._open.discard(fd)
                    os.close(fd)

    def _record(self, stream: str, data: bytes) -> None:
        if self.log_error is not None:
            return
        try:
            self.writer.write(stream, data)
        except OSError as exc:
            self.log_error = exc


def _write_all(fd: int, data: bytes) -> bool:
    """Write all of ``data`` to ``fd``; False if the reader went away (or the fd is unusable)."""
    view = memoryview(data)
    try:
        while view:
            try:
                view = view[os.write(fd, view):]
            except InterruptedError:
                continue
    except OSError:
        return False
    return True
