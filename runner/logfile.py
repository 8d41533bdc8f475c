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

#: ``json.dumps(s, ensure_ascii=False)``'s escapes: ``"``, ``\\`` and the control characters (spelled
#: out: building them with bit operations would keep more of the interpreter's code resident)
_ESCAPES = dict(enumerate((
    "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007",
    "\\b", "\\t", "\\n", "\\u000b", "\\f", "\\r", "\\u000e", "\\u000f",
    "\\u0010", "\\u0011", "\\u0012", "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017",
    "\\u0018", "\\u0019", "\\u001a", "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f")))
_ESCAPES[34] = '\\"'
_ESCAPES[92] = "\\\\"


def quote(text):
    """``json.dumps(text, ensure_ascii=False)`` for a ``str`` without surrogates (what a decode with
    ``errors="replace"`` gives)."""
    return '"' + text.translate(_ESCAPES) + '"'


def _stamp(secs, nanos):
    """``YYYY-MM-DDTHH:MM:SS.NNNNNNNNNZ`` for ``secs`` since the epoch (UTC) and ``nanos`` (0..1e9-1):
    the civil date by Howard Hinnant's ``civil_from_days``, so no ``gmtime``/``strftime`` is needed."""
    days, rem = divmod(secs, 86400)
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (month <= 2)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%09dZ" % (year, month, day, rem // 3600, rem // 60 % 60, rem % 60, nanos)


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
    """The time stamp of a record read now (``time.time_ns``: integers all the way)."""
    secs, nanos = divmod(time.time_ns(), 1_000_000_000)
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
        self._size = os.fstat(self._fd).st_size

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
        view = memoryview(rec)
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
