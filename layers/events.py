"""The event journal: container and image state changes, as Docker's ``events`` reports them.

One append-only JSON-lines file, ``<root>/events/events.jsonl``; each line is one event written
with a single ``write()`` on an ``O_APPEND`` descriptor and never longer than ``PIPE_BUF`` (4096
bytes: longer attribute values are cut), so concurrent writers (the CLI, every shim) never
interleave. When the file passes :data:`MAX_BYTES` the writer that notices renames it to
``events.jsonl.1`` (replacing the older one): the journal keeps between one and two files' worth.

Appending is best effort: a journal that cannot be written never fails the state change it
reports. Imports are ``os``, ``json``, ``time`` and :mod:`layers.journal` (the line's shape and the
append itself, which the resident shim loop shares) only: the shim appends, and lives as long as its
container.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace

from . import journal as _journal
from .journal import LINE_MAX, journal_path
from .value import frozen

__all__ = ["Event", "Cursor", "changed", "append", "emit", "read", "journal_path", "familiar", "MAX_BYTES", "LINE_MAX"]

MAX_BYTES = _journal.MAX_BYTES


@frozen(slots=True)
class Event:
    """One state change: ``type`` container|image|network|volume, ``action`` (start, die, tag...),
    ``actor_id`` (container id, image id or reference), ``attributes`` (name, image, exitCode...),
    ``time_nano`` (nanoseconds since the epoch)."""

    type: str
    action: str
    actor_id: str
    attributes: tuple[tuple[str, str], ...] = ()
    time_nano: int = 0
    scope: str = "local"

    @property
    def attrs(self) -> dict[str, str]:
        return dict(self.attributes)

    @property
    def time(self) -> int:
        return self.time_nano // 1_000_000_000

    def to_docker(self) -> dict:
        """Docker's JSON shape of an event (``docker events --format '{{json .}}'``)."""
        attrs = dict(self.attributes)
        d = {"Type": self.type, "Action": self.action,
             "Actor": {"ID": self.actor_id, "Attributes": attrs},
             "scope": self.scope, "time": self.time, "timeNano": self.time_nano}
        if self.type in ("container", "image"):        # the legacy fields Docker still sends
            d["status"] = self.action
            d["id"] = self.actor_id
            if self.type == "container" and "image" in attrs:
                d["from"] = attrs["image"]
        return d


def familiar(name: str) -> str:
    """An image name as Docker shows it: ``docker.io/library/busybox:1`` is ``busybox:1``."""
    for prefix in ("docker.io/library/", "docker.io/"):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def _line(event: Event) -> bytes:
    doc = _journal.record(event.type, event.action, event.actor_id, dict(event.attributes), event.time_nano)
    raw = json.dumps(doc, separators=(",", ":")).encode() + b"\n"
    if len(raw) > LINE_MAX:        # cut the longest attributes until the line fits
        attrs = dict(event.attributes)
        for key in sorted(attrs, key=lambda k: -len(attrs[k])):
            attrs[key] = attrs[key][:64]
            doc["at"] = attrs
            raw = json.dumps(doc, separators=(",", ":")).encode() + b"\n"
            if len(raw) <= LINE_MAX:
                break
        if len(raw) > LINE_MAX:
            raw = json.dumps(_journal.record(event.type, event.action, event.actor_id[:128], {}, event.time_nano),
                             separators=(",", ":")).encode() + b"\n"
    return raw


def append(root: str, event: Event) -> bool:
    """Add ``event`` to the journal under ``root`` (stamped now if its ``time_nano`` is 0).
    Returns False, and raises nothing, when the journal cannot be written."""
    if not event.time_nano:
        event = replace(event, time_nano=time.time_ns())
    return _journal.append_line(root, _line(event), MAX_BYTES)


def emit(root: str, type_: str, action: str, actor_id: str, **attributes: object) -> bool:
    """:func:`append` an event built from keyword attributes (None values are left out)."""
    attrs = tuple((k, str(v)) for k, v in attributes.items() if v is not None)
    return append(root, Event(type_, action, actor_id, attrs))


def _parse(raw: bytes) -> Event | None:
    try:
        d = json.loads(raw)
        return Event(str(d["t"]), str(d["a"]), str(d["id"]),
                     tuple((str(k), str(v)) for k, v in (d.get("at") or {}).items()), int(d["ns"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None            # a torn line (a crash mid-rotation): skip it


@frozen(slots=True)
class Cursor:
    """Where a reader stopped: the journal file (its inode) and the byte offset in it."""

    inode: int = 0
    offset: int = 0


def _stat(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return 0, 0
    return st.st_ino, st.st_size


def changed(root: str, cursor: Cursor) -> bool:
    """Whether the journal has moved on from ``cursor`` (one ``stat``: cheap to poll)."""
    inode, size = _stat(journal_path(root))
    return (inode, size) != (cursor.inode, cursor.offset)


def read(root: str, since: int | None = None, until: int | None = None, *,
         cursor: Cursor | None = None) -> tuple[list[Event], Cursor]:
    """The events with ``since <= time_nano <= until`` (nanoseconds; None: unbounded) in order,
    and the :class:`Cursor` to pass back to read only later events.

    Without a cursor the rotated file is read first. When the journal was rotated since ``cursor``
    (another inode), the rest of the rotated file is read, then the new one."""
    path = journal_path(root)
    chunks: list[bytes] = []
    inode, _ = _stat(path)
    offset = 0
    old = Cursor()
    if cursor is None or cursor.inode != inode:
        old_inode, _ = _stat(path + ".1")
        skip = cursor.offset if cursor is not None and cursor.inode == old_inode else 0
        if cursor is None or cursor.inode in (old_inode, 0):
            try:
                with open(path + ".1", "rb") as f:
                    f.seek(skip)
                    data = f.read()
                chunks.append(data[:data.rfind(b"\n") + 1])
                old = Cursor(old_inode, skip + len(chunks[-1]))
            except FileNotFoundError:
                pass
    else:
        offset = cursor.offset
    try:
        with open(path, "rb") as f:
            inode = os.fstat(f.fileno()).st_ino
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:       # rotated, nothing written since: go on from the old file
        inode, data = 0, b""
        if old.inode:
            offset = old.offset
            inode = old.inode
    end = data.rfind(b"\n") + 1          # a line still being written is read next time
    chunks.append(data[:end])
    out = []
    for chunk in chunks:
        for raw in chunk.splitlines():
            ev = _parse(raw)
            if ev is None or (since is not None and ev.time_nano < since) or \
                    (until is not None and ev.time_nano > until):
                continue
            out.append(ev)
    return out, Cursor(inode, offset + end)
