"""The event journal's line and file, with nothing but :mod:`os`: what :mod:`layers.events` writes
and the resident shim loop (:mod:`runner.shimrecord`, which cannot afford ``json`` and
``dataclasses``) writes too, through the same code.

A line is the JSON of :func:`record` plus ``\\n``, at most :data:`LINE_MAX` bytes (``PIPE_BUF``: an
``O_APPEND`` write up to this size is one unit, so writers never interleave); the file is
``<root>/events/events.jsonl``, renamed to ``events.jsonl.1`` when it passes :data:`MAX_BYTES`.
"""

from __future__ import annotations

import os

__all__ = ["MAX_BYTES", "LINE_MAX", "FILE", "journal_path", "record", "append_line", "rotate"]

MAX_BYTES = 8 * 1024 * 1024
LINE_MAX = 4096          # PIPE_BUF on Linux: an O_APPEND write up to this size is one unit
FILE = "events.jsonl"


def journal_path(root: str) -> str:
    return os.path.join(root, "events", FILE)


def record(type_: str, action: str, actor_id: str, attributes: dict[str, str], time_nano: int) -> dict:
    """The JSON document of one event line (keys in this order; dumped with ``(",", ":")`` separators)."""
    return {"t": type_, "a": action, "id": actor_id, "at": attributes, "ns": time_nano}


def append_line(root: str, line: bytes, max_bytes: int = MAX_BYTES) -> bool:
    """Append ``line`` (at most :data:`LINE_MAX` bytes, ending in a newline) with one ``write()``;
    rotate the file once it passes ``max_bytes``. Returns False, and raises nothing, when the journal
    cannot be written (best effort: it never fails the state change it reports)."""
    path = journal_path(root)
    try:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, line)
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        if size > max_bytes:
            rotate(path, max_bytes)
        return True
    except OSError:
        return False


def rotate(path: str, max_bytes: int = MAX_BYTES) -> None:
    """Move a full journal aside; of two writers that both notice, only the one whose file is still
    the big one renames it (a rename of the fresh, small file by the second would lose events)."""
    try:
        if os.stat(path).st_size > max_bytes:
            os.replace(path, path + ".1")
    except OSError:
        pass
