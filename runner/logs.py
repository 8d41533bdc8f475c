"""Container logs: Docker's ``json-file`` format, size-capped with rotation.

Each line is ``{"log": "<text incl. newline>", "stream": "stdout"|"stderr", "time": "<RFC3339 nanos>"}``.
The writer (run by the shim) splits output at newlines and cuts very long lines at 16 KiB, as Docker
does; when the file would pass ``max_size`` it is renamed to ``container.log.1`` (older files shift up,
at most ``max_files`` files in all) and a new one is started. The reader merges the rotated files in
order and can follow the live one across rotations. :class:`LogTee` (:mod:`runner.logtee`) is the
foreground run's writer: it relays the container's output to the caller's stdout/stderr and records
it on the way. Stdlib only. The writer is :mod:`runner.logfile`'s (the resident shim loop imports that alone).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

from layers.value import frozen

from .logfile import LogWriter
from .logtee import LogTee

__all__ = ["LogWriter", "LogTee", "LogEntry", "read_logs", "parse_since", "while_running"]


@frozen
class LogEntry:
    stream: str
    text: str
    time: str

    @property
    def timestamp(self) -> float:
        return parse_rfc3339(self.time)


def parse_rfc3339(text: str) -> float:
    """Seconds since the epoch for ``YYYY-MM-DDTHH:MM:SS[.frac]Z``."""
    import calendar

    base, _, frac = text.rstrip("Z").partition(".")
    secs = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    return secs + (float("0." + frac) if frac else 0.0)


def parse_since(text: str, now: float | None = None) -> float:
    """``--since``: a Unix timestamp, an RFC3339 time, or a relative duration such as ``10m``/``1h30m``/``42s``."""
    from layers.errors import InvalidInput

    now = time.time() if now is None else now
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    units = {"s": 1, "m": 60, "h": 3600}
    total, num = 0.0, ""
    for ch in text:
        if ch.isdigit() or ch == ".":
            num += ch
        elif ch in units and num:
            total += float(num) * units[ch]
            num = ""
        else:
            total = -1
            break
    if total > 0 and not num:
        return now - total
    try:
        return parse_rfc3339(text)
    except ValueError:
        raise InvalidInput(f"invalid --since value {text!r}: use a duration (10m), "
                           f"a Unix time or an RFC3339 time") from None


def _files(path: str) -> list[str]:
    """Rotated files oldest first, then the live file."""
    older = []
    i = 1
    while os.path.exists(f"{path}.{i}"):
        older.append(f"{path}.{i}")
        i += 1
    return list(reversed(older)) + ([path] if os.path.exists(path) else [])


def _parse(line: bytes) -> LogEntry | None:
    try:
        doc = json.loads(line)
        return LogEntry(doc["stream"], doc["log"], doc["time"])
    except (ValueError, KeyError, TypeError):
        return None          # a torn last line while the shim writes: skip it


def while_running(store, cid: str):
    """``alive`` for :func:`read_logs` following container ``cid`` of ``store``: true while it runs,
    is paused or waits to restart; false once it stopped for good or is gone."""
    from .errors import ContainerNotFound

    def alive() -> bool:
        try:
            s = store.status(cid)
        except ContainerNotFound:
            return False
        return s.live or s.restarting

    return alive


def read_logs(path: str, *, tail: int | None = None, since: float | None = None,
              until: float | None = None, follow: bool = False,
              alive=lambda: False, poll: float = 0.1) -> Iterator[LogEntry]:
    """Yield entries from the log files. With ``follow``, keep yielding new lines while ``alive()``."""
    entries: list[LogEntry] = []
    live, pending = None, b""
    for fname in _files(path):
        try:
            f = open(fname, "rb")
        except FileNotFoundError:        # rotated away between listing and opening
            continue
        got, rest = _entries(f.read())
        entries += got
        if fname == path:
            live, pending = f, rest      # kept open: following goes on exactly where reading ended
        else:
            f.close()
    if since is not None:
        entries = [e for e in entries if e.timestamp >= since]
    if until is not None:
        entries = [e for e in entries if e.timestamp <= until]
    if tail is not None and tail >= 0:
        entries = entries[-tail:] if tail else []
    if not follow:
        if live is not None:
            live.close()
        yield from entries
        return
    f = live
    try:
        yield from entries
        if f is None:
            try:
                f = open(path, "rb")
            except FileNotFoundError:
                return
        yield from _follow(f, path, pending, alive, poll)
    finally:
        if f is not None:
            f.close()


def _entries(buf: bytes) -> tuple[list[LogEntry], bytes]:
    """Complete lines of ``buf`` parsed, and the unfinished rest."""
    *lines, rest = buf.split(b"\n")
    return [e for e in map(_parse, lines) if e is not None], rest


def _skipped_file(path: str, seen: set[int]) -> Iterator[LogEntry]:
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_ino in seen:
                return
            got, _ = _entries(f.read() + b"\n")
    except FileNotFoundError:
        return
    yield from got


def _follow(first, path: str, pending: bytes, alive, poll: float) -> Iterator[LogEntry]:
    """Yield what is appended to ``first`` (the live log; the caller closes it); when rotation
    replaces ``path``, finish the old file and go on with the new one (closed here)."""
    f = first
    try:
        ino = os.fstat(f.fileno()).st_ino
        idle_after_exit = 0
        while True:
            chunk = f.read()
            if chunk:
                got, pending = _entries(pending + chunk)
                yield from got
                continue
            try:
                rotated = os.stat(path).st_ino != ino
            except FileNotFoundError:
                if not alive():          # removed with its container
                    return
                time.sleep(poll)         # mid-rotation: renamed away, the new one not yet created
                continue
            if rotated:
                try:
                    new = open(path, "rb")
                except FileNotFoundError:   # renamed away, the next one not created yet
                    time.sleep(poll)
                    continue
                # what the writer appended before renaming is still in the old file
                got, _ = _entries(pending + f.read() + b"\n")
                yield from got
                pending = b""
                new_ino = os.fstat(new.fileno()).st_ino
                # a reader that slept through two rotations finds the file after its own at .1
                # (finished, never read): read it whole before the new one
                yield from _skipped_file(f"{path}.1", {ino, new_ino})
                if f is not first:
                    f.close()
                f, ino = new, new_ino
                continue
            if not alive():
                idle_after_exit += 1
                if idle_after_exit > 2:  # a last read after the writer is gone
                    return
            time.sleep(poll)
    finally:
        if f is not first:
            f.close()
