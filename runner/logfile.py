"""The writer of a container's log: Docker's ``json-file`` format, size-capped with rotation.

Each line is ``{"log": "<text incl. newline>", "stream": "stdout"|"stderr", "time": "<RFC3339 nanos>"}``,
byte for byte what ``json.dumps(..., ensure_ascii=False)`` writes. Output is split at newlines and
very long lines are cut at 16 KiB, as Docker does; when the file would pass ``max_size`` it is renamed
to ``container.log.1`` (older files shift up, at most ``max_files`` files in all) and a new one is started.

Imports are modules built into the interpreter and ``_json`` only (not :mod:`json`, whose import
compiles regular expressions): the resident shim loop (:mod:`runner.shimloop`) writes through this
class and lives as long as its container. :mod:`runner.logs` re-exports it beside the reader.
"""

from __future__ import annotations

import os
import time

from _json import encode_basestring

__all__ = ["LogWriter", "MAX_LINE", "rfc3339"]

MAX_LINE = 16 * 1024


def rfc3339(ts: float | None) -> str:
    """``2026-11-24T10:57:14.123456789Z`` (UTC, nanosecond field as Docker prints it), or Docker's zero
    time; :mod:`runner.records` re-exports it (here so the shim loop needs no record types)."""
    if ts is None:
        return "0001-01-01T00:00:00Z"
    secs = int(ts)
    nanos = int(round((ts - secs) * 1e9))
    if nanos >= 1_000_000_000:
        secs, nanos = secs + 1, nanos - 1_000_000_000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{nanos:09d}Z"


class LogWriter:
    """Append JSON-lines records for one container; rotate at ``max_size`` keeping ``max_files`` files."""

    def __init__(self, path: str, *, max_size: int = 10 * 1024 * 1024, max_files: int = 2) -> None:
        self.path = path
        self.max_size = max(max_size, 1024) if max_size > 0 else 0
        self.max_files = max(1, max_files)
        self._partial: dict[str, bytes] = {"stdout": b"", "stderr": b""}
        self._fd = -1
        self._size = 0
        self._open()

    def _open(self) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._size = os.fstat(self._fd).st_size

    def _rotate(self) -> None:
        os.close(self._fd)
        if self.max_files == 1:
            os.truncate(self.path, 0)
        else:
            for i in range(self.max_files - 1, 0, -1):
                src = self.path if i == 1 else f"{self.path}.{i - 1}"
                if os.path.exists(src):
                    os.replace(src, f"{self.path}.{i}")
        self._open()

    def _emit(self, stream: str, chunk: bytes, ts: float) -> None:
        # json.dumps({"log": ..., "stream": ..., "time": ...}, ensure_ascii=False), spelled out
        rec = (f'{{"log": {encode_basestring(chunk.decode("utf-8", "replace"))}, '
               f'"stream": {encode_basestring(stream)}, "time": "{rfc3339(ts)}"}}\n').encode()
        if self.max_size and self._size and self._size + len(rec) > self.max_size:
            self._rotate()
        view = memoryview(rec)
        while view:
            view = view[os.write(self._fd, view):]
        self._size += len(rec)

    def write(self, stream: str, data: bytes) -> None:
        """Record ``data`` read from ``stream``; complete lines are written now, a partial line waits."""
        ts = time.time()
        buf = self._partial[stream] + data
        while True:
            nl = buf.find(b"\n")
            if nl < 0 or nl >= MAX_LINE:
                if len(buf) >= MAX_LINE:
                    self._emit(stream, buf[:MAX_LINE], ts)
                    buf = buf[MAX_LINE:]
                    continue
                break
            self._emit(stream, buf[:nl + 1], ts)
            buf = buf[nl + 1:]
        self._partial[stream] = buf

    def flush(self) -> None:
        """Write out partial lines (at container exit)."""
        ts = time.time()
        for stream, buf in self._partial.items():
            if buf:
                self._emit(stream, buf, ts)
        self._partial = {"stdout": b"", "stderr": b""}

    def close(self, *, sync: bool = True) -> None:
        """Write out partial lines and close; ``sync``: fsync first (a log about to be removed need not)."""
        if self._fd >= 0:
            self.flush()
            if sync:
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
