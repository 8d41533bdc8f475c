"""``events`` renderings: Docker's default line and the ``--format`` data (``events.Message``'s
Go field names; ``{{json .}}`` gives its JSON shape)."""

from __future__ import annotations

import time

__all__ = ["event_line", "EventFields", "event_time"]


def event_time(time_nano: int) -> str:
    """Go's ``2006-01-02T15:04:05.000000000Z07:00`` in local time, as ``docker events`` prints it."""
    secs, nanos = divmod(time_nano, 1_000_000_000)
    local = time.localtime(secs)
    off = local.tm_gmtoff or 0
    zone = "Z" if off == 0 else f"{'+' if off > 0 else '-'}{abs(off) // 3600:02d}:{abs(off) % 3600 // 60:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", local) + f".{nanos:09d}{zone}"


def event_line(ev) -> str:
    """``<time> <type> <action> <actor id> (k=v, ...)``: Docker's line, attributes sorted by key."""
    line = f"{event_time(ev.time_nano)} {ev.type} {ev.action} {ev.actor_id}"
    attrs = ev.attrs
    if attrs:
        line += " (" + ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs)) + ")"
    return line


class EventFields:
    """One event for a template: ``{{.Type}}``, ``{{.Action}}``, ``{{.Actor.ID}}``,
    ``{{.Actor.Attributes.name}}``, ``{{.Status}}``, ``{{.ID}}``, ``{{.From}}``, ``{{.Scope}}``,
    ``{{.Time}}``, ``{{.TimeNano}}``."""

    def __init__(self, ev) -> None:
        self._ev = ev
        self._doc = ev.to_docker()

    def Type(self) -> str:
        return self._ev.type

    def Action(self) -> str:
        return self._ev.action

    def Actor(self) -> dict:
        return {"ID": self._ev.actor_id, "Attributes": self._ev.attrs}

    def Status(self) -> str:
        return self._doc.get("status", "")

    def ID(self) -> str:
        return self._doc.get("id", "")

    def From(self) -> str:
        return self._doc.get("from", "")

    def Scope(self) -> str:
        return self._ev.scope

    def Time(self) -> int:
        return self._ev.time

    def TimeNano(self) -> int:
        return self._ev.time_nano

    def to_json(self) -> dict:
        return self._doc
