"""The writer of a container's log: Docker's ``json-file`` format, size-capped with rotation.

Each line is ``{"log": "<text incl. newline>", "stream": "stdout"|"stderr", "time": "<RFC3339 nanos>"}``,
byte for byte what ``json.dumps(..., ensure_ascii=False)`` writes. Output is split at newlines and
very long lines are cut at 16 KiB, as Docker does; when the file would pass ``max_size`` it is renamed
to ``container.log.1`` (older files shift up, at most ``max_files`` files in all) and a new one is started.

Imports are ``os`` and ``time`` only (not :mod:`json`, whose import compiles regular expressions,
nor ``_json``, an extension module on some builds): the resident shim loop (:mod:`runner.shimloop`)
writes through this class and lives as long as its container, so a line is quoted with
``str.translate`` and stamped with integer arithmetic (no ``strftime``, no locale tables).
:mod:`runner.logs` re-exports it beside the reader.
"""

import os
import time

__all__ = ["LogWriter", "MAX_LINE", "rfc3339", "quote"]

MAX_LINE = 16 * 1024

#: ``json.dumps(s, ensure_ascii=False)``'s escapes: ``"``, ``\\`` and the control characters (a literal:
#: building it with ``enumerate`` or bit operations keeps more of the interpreter's code resident)
_ESCAPES = {
    0: '\\u0000', 1: '\\u0001', 2: '\\u0002', 3: '\\u0003', 4: '\\u0004', 5: '\\u0005', 6: '\\u0006',
    7: '\\u0007', 8: '\\b', 9: '\\t', 10: '\\n', 11: '\\u000b', 12: '\\f', 13: '\\r', 14: '\\u000e',
    15: '\\u000f', 16: '\\u0010', 17: '\\u0011', 18: '\\u0012', 19: '\\u0013', 20: '\\u0014', 21: '\\u0015',
    22: '\\u0016', 23: '\\u0017', 24: '\\u0018', 25: '\\u0019', 26: '\\u001a', 27: '\\u001b', 28: '\\u001c',
    29: '\\u001d', 30: '\\u001e', 31: '\\u001f', 34: '\\"', 92: '\\\\'}


def quote(text):
    """``json.dumps(text, ensure_ascii=False)`` for a ``str`` without surrogates (what a decode with
    ``errors="replace"`` gives)."""
    return '"' + text.translate(_ESCAPES) + '"'


def _pad(n, width):
    s = str(n)
    return "0" * (width - len(s)) + s


def _stamp(secs, nanos):
    """``YYYY-MM-DDTHH:MM:SS.NNNNNNNNNZ`` for ``secs`` since the epoch (UTC) and ``nanos`` (0..1e9-1):
    the civil date by Howard Hinnant's ``civil_from_days``. Spelled with ``divmod``, ``//`` and ``str``
    alone: ``gmtime``, ``strftime``, ``%`` (of numbers or of a format) and format specs each map more of
    the interpreter's code into the resident shim loop (``docs/LIFECYCLE.md``)."""
    days, rem = divmod(secs, 86400)
    hour, rem = divmod(rem, 3600)
    minute, second = divmod(rem, 60)
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (month <= 2)
    return (_pad(year, 4) + "-" + _pad(month, 2) + "-" + _pad(day, 2) + "T" + _pad(hour, 2) + ":"
            + _pad(minute, 2) + ":" + _pad(second, 2) + "." + _pad(nanos, 9) + "Z")


def rfc3339(ts):
    """``2026-11-24T10:57:14.123456789Z`` (UTC, nanosecond field as Docker prints it) for ``ts`` (float
    seconds or None), or Docker's zero time; :mod:`runner.records` re-exports it (here so the shim loop
    needs no record types)."""
    if ts is None:
        return "0001-01-01T00:00:00Z"
    secs = int(ts)
    nanos = int(round((ts - secs) * 1e9))
    if nanos >= 1_000_000_000:
        secs, nanos = secs + 1, nanos - 1_000_000_000
    return _stamp(secs, nanos)


def _now():
    """The time stamp of a record read now: ``time.time_ns()``, integers all the way (read as
    ``clock_gettime_ns(CLOCK_REALTIME)``, the same clock, whose code the loop has resident already)."""
    secs, nanos = divmod(time.clock_gettime_ns(time.CLOCK_REALTIME), 1_000_000_000)
    return _stamp(secs, nanos)


class LogWriter:
    """Append JSON-lines records for one container; rotate at ``max_size`` keeping ``max_files`` files."""

    def __init__(self, path, *, max_size=10 * 1024 * 1024, max_files=2):
        self.path = path
        self.max_size = max(max_size, 1024) if max_size > 0 else 0
        self.max_files = max(1, max_files)
        self._partial = {"stdout": b"", "stderr": b""}
        self._fd = -1
        self._size = 0
        self._open()

    def _open(self):
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._size = os.lseek(self._fd, 0, os.SEEK_END)     # the size (no stat result object to build)

    def _rotate(self):
        os.close(self._fd)
        if self.max_files == 1:
            os.truncate(self.path, 0)
        else:
            for i in range(self.max_files - 1, 0, -1):
                src = self.path if i == 1 else f"{self.path}.{i - 1}"
                if os.path.exists(src):
                    os.replace(src, f"{self.path}.{i}")
        self._open()

    def _emit(self, stream, chunk, stamp):
        # json.dumps({"log": ..., "stream": ..., "time": ...}, ensure_ascii=False), spelled out
        rec = ('{"log": ' + quote(chunk.decode("utf-8", "replace")) + ', "stream": ' + quote(stream)
               + ', "time": "' + stamp + '"}\n').encode()
        if self.max_size and self._size and self._size + len(rec) > self.max_size:
            self._rotate()
        done = os.write(self._fd, rec)
        if done < len(rec):                  # a short write (a full disk, a signal): the rest, in slices
            view = memoryview(rec)[done:]
            while view:
                view = view[os.write(self._fd, view):]
        self._size += len(rec)

    def write(self, stream, data):
        """Record ``data`` read from ``stream``; complete lines are written now, a partial line waits."""
        ts = _now()
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

    def flush(self):
        """Write out partial lines (at container exit)."""
        ts = _now()
        for stream, buf in self._partial.items():
            if buf:
                self._emit(stream, buf, ts)
        self._partial = {"stdout": b"", "stderr": b""}

    def close(self, *, sync=True):
        """Write out partial lines and close; ``sync``: fsync first (a log about to be removed need not)."""
        if self._fd >= 0:
            self.flush()
            if sync:
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
