"""Transfer progress: bars per blob on a terminal, one plain line per event otherwise, or nothing.

The library reports through the :class:`Progress` protocol; the CLI picks the renderer and the
stream. Renderers are thread-safe (transfers run in parallel).
"""

from __future__ import annotations

import threading
import time
from typing import Protocol, TextIO

__all__ = ["Progress", "QuietProgress", "PlainProgress", "TerminalProgress", "make_progress"]


class Progress(Protocol):
    def begin(self, key: str, total: int, action: str, done: int = 0) -> None: ...
    def advance(self, key: str, n: int) -> None: ...
    def end(self, key: str, status: str) -> None: ...
    def note(self, text: str) -> None: ...


class QuietProgress:
    """Reports nothing (``--quiet``)."""

    def begin(self, key: str, total: int, action: str, done: int = 0) -> None:
        pass

    def advance(self, key: str, n: int) -> None:
        pass

    def end(self, key: str, status: str) -> None:
        pass

    def note(self, text: str) -> None:
        pass


class PlainProgress:
    """One line per start and end of a transfer: for logs and pipes."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._lock = threading.Lock()

    def _line(self, text: str) -> None:
        with self._lock:
            self._out.write(text + "\n")
            self._out.flush()

    def begin(self, key: str, total: int, action: str, done: int = 0) -> None:
        resumed = f" (resuming at {done})" if done else ""
        self._line(f"{key}: {action} {total} bytes{resumed}")

    def advance(self, key: str, n: int) -> None:
        pass

    def end(self, key: str, status: str) -> None:
        self._line(f"{key}: {status}")

    def note(self, text: str) -> None:
        self._line(text)


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.1f}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1000
    return f"{n:.1f}GB"  # pragma: no cover


class TerminalProgress:
    """A line per blob, redrawn in place with ANSI cursor moves at most ten times a second."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._lock = threading.Lock()
        self._rows: dict[str, list] = {}  # key -> [action, done, total, status]
        self._drawn = 0
        self._last = 0.0

    def begin(self, key: str, total: int, action: str, done: int = 0) -> None:
        with self._lock:
            self._rows[key] = [action, done, total, ""]
            self._draw(force=True)

    def advance(self, key: str, n: int) -> None:
        with self._lock:
            row = self._rows.get(key)
            if row is not None:
                row[1] += n
            self._draw()

    def end(self, key: str, status: str) -> None:
        with self._lock:
            row = self._rows.setdefault(key, ["", 0, 0, ""])
            row[3] = status
            self._draw(force=True)

    def note(self, text: str) -> None:
        with self._lock:
            self._out.write(text + "\n")
            self._out.flush()
            self._drawn = 0
            self._rows = {k: v for k, v in self._rows.items() if not v[3]}

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        lines = []
        for key, (action, done, total, status) in self._rows.items():
            if status:
                lines.append(f"{key}: {status}")
                continue
            width = 30
            filled = int(width * done / total) if total else width
            bar = "=" * max(filled - 1, 0) + (">" if filled else "") + " " * (width - filled)
            lines.append(f"{key}: {action} [{bar}] {_human(done)}/{_human(total)}")
        if self._drawn:
            self._out.write(f"\x1b[{self._drawn}F")
        for line in lines:
            self._out.write("\x1b[2K" + line + "\n")
        self._drawn = len(lines)
        self._out.flush()


def make_progress(out: TextIO, *, quiet: bool = False) -> Progress:
    """Quiet, terminal or plain, depending on ``quiet`` and whether ``out`` is a TTY."""
    if quiet:
        return QuietProgress()
    isatty = getattr(out, "isatty", None)
    return TerminalProgress(out) if isatty is not None and isatty() else PlainProgress(out)
