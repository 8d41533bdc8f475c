"""``events``: the journal of :mod:`layers.events`, filtered as Docker filters, past and live.

:func:`parse_filters` checks ``--filter k=v`` values once (a bad key is an error before anything is
read); :func:`watch` yields the matching events from ``since`` on, then, until ``until`` passes (or
forever without it), the new ones as they are appended (the journal is polled by size every
``poll`` seconds: a stat per poll, no read while nothing changed).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence

from layers import events as journal
from layers.errors import InvalidInput
from layers.value import frozen

__all__ = ["EventFilter", "parse_filters", "parse_time", "watch", "FILTER_KEYS"]

FILTER_KEYS = ("container", "image", "event", "type", "label", "since", "until", "scope", "network", "volume")
_TYPES = ("container", "image", "network", "volume", "daemon", "plugin", "node", "service", "secret", "config")


_DURATION = re.compile(r"^(?:\d+(?:\.\d*)?(?:ns|us|µs|ms|s|m|h))+$")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def parse_time(text: str, now: float | None = None, option: str = "--since") -> int:
    """``--since``/``--until``: a Go duration before now (``10m``, ``1h30m``, ``0s``), a Unix
    timestamp (``1700000000[.5]``) or an RFC3339 time or date (``2024-01-02T03:04:05.1Z``,
    ``...+01:00``); nanoseconds since the epoch, exact to the nanosecond."""
    now_ns = time.time_ns() if now is None else int(now * 1_000_000_000)
    text = text.strip()
    if _DURATION.match(text):
        total = sum(float(n) * _UNIT_NS[u] for n, u in re.findall(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)", text))
        return now_ns - int(total)
    m = re.match(r"^(\d+)(?:\.(\d{1,9}))?$", text)
    if m:
        return int(m.group(1)) * 1_000_000_000 + int((m.group(2) or "").ljust(9, "0"))
    m = re.match(r"^(\d{4}-\d\d-\d\d(?:T\d\d:\d\d(?::\d\d)?)?)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)?$", text)
    try:
        if not m:
            raise ValueError(text)
        from datetime import datetime

        zone = m.group(3) or "Z"
        dt = datetime.fromisoformat(m.group(1) + ("+00:00" if zone == "Z" else zone))
        return int(dt.timestamp()) * 1_000_000_000 + int((m.group(2) or "").ljust(9, "0"))
    except ValueError:
        raise InvalidInput(f"invalid {option} value {text!r}: use a duration (10m), "
                           f"a Unix time or an RFC3339 time") from None


@frozen
class EventFilter:
    """``--filter`` values by key: within a key any value may match, every key must match
    (Docker's rule). ``since``/``until`` are in nanoseconds."""

    values: tuple[tuple[str, tuple[str, ...]], ...] = ()
    since: int | None = None
    until: int | None = None

    def get(self, key: str) -> tuple[str, ...]:
        return next((v for k, v in self.values if k == key), ())

    def matches(self, ev: journal.Event) -> bool:
        attrs = ev.attrs
        for key, wanted in self.values:
            if key == "type":
                ok = ev.type in wanted
            elif key == "event":
                # "health_status" matches "health_status: healthy", as Docker's filter does
                ok = ev.action in wanted or ev.action.split(":", 1)[0] in wanted
            elif key == "container":
                ok = (ev.type == "container" and any(
                    w == attrs.get("name") or (w and ev.actor_id.startswith(w)) for w in wanted)) or (
                    ev.type == "network" and any(w and attrs.get("container", "").startswith(w) for w in wanted))
            elif key in ("network", "volume"):
                ok = ev.type == key and any(w == attrs.get("name") or (w and ev.actor_id.startswith(w))
                                            for w in wanted)
            elif key == "image":
                ok = any(_image_matches(w, ev) for w in wanted)
            elif key == "label":
                ok = any(_label_matches(w, attrs) for w in wanted)
            elif key == "scope":
                ok = ev.scope in wanted
            else:
                ok = True
            if not ok:
                return False
        return True


def _image_matches(wanted: str, ev: journal.Event) -> bool:
    """``image=``: the image name as given (``busybox`` also matches ``busybox:latest``), or an id prefix."""
    attrs = ev.attrs
    names = {attrs.get("image", "")} | ({attrs.get("name", ""), ev.actor_id} if ev.type == "image" else set())
    names.discard("")
    if wanted in names or (":" not in wanted.rsplit("/", 1)[-1] and f"{wanted}:latest" in names):
        return True
    hexpart = wanted.removeprefix("sha256:")
    return ev.type == "image" and len(hexpart) >= 4 and ev.actor_id.removeprefix("sha256:").startswith(hexpart)


def _label_matches(wanted: str, attrs: dict[str, str]) -> bool:
    key, eq, value = wanted.partition("=")
    return key in attrs and (not eq or attrs[key] == value)


def parse_filters(filters: Sequence[str], now: float | None = None) -> EventFilter:
    """``key=value`` strings into an :class:`EventFilter`; a bad one raises :class:`InvalidInput`."""
    by_key: dict[str, list[str]] = {}
    since = until = None
    for f in filters:
        key, eq, value = f.partition("=")
        key = key.strip().lower()
        if not eq:
            raise InvalidInput(f"bad format of filter (expected name=value): {f!r}")
        if key not in FILTER_KEYS:
            raise InvalidInput(f"invalid filter {key!r}: use one of {', '.join(FILTER_KEYS)}")
        if key == "type" and value not in _TYPES:
            raise InvalidInput(f"invalid filter 'type={value}': use one of {', '.join(_TYPES)}")
        if key == "since":
            since = parse_time(value, now, "since filter")
        elif key == "until":
            until = parse_time(value, now, "until filter")
        else:
            by_key.setdefault(key, []).append(value)
    return EventFilter(tuple((k, tuple(v)) for k, v in by_key.items()), since, until)


def watch(root: str, *, since: int | None = None, until: int | None = None, flt: EventFilter = EventFilter(),
          follow: bool = True, poll: float = 0.1, clock: Callable[[], int] = time.time_ns) -> Iterator[journal.Event]:
    """The journal's events under ``root`` that ``flt`` matches, oldest first.

    With neither ``since`` nor ``until`` only new events are yielded (Docker's ``events`` with no
    options); without ``follow``, or once ``until`` has passed, the iterator ends."""
    since = flt.since if since is None else since if flt.since is None else max(since, flt.since)
    until = flt.until if until is None else until if flt.until is None else min(until, flt.until)
    if since is None and until is None and follow:
        since = clock()           # only what comes from now on (with ``until``: all recorded before it)
    events, cursor = journal.read(root, since=since, until=until)
    while True:
        for ev in events:
            if flt.matches(ev):
                yield ev
        if not follow or (until is not None and clock() > until):
            return
        while not journal.changed(root, cursor):      # sleep until the journal moves on (or until passes)
            if until is not None and clock() > until:
                return
            time.sleep(poll)
        events, cursor = journal.read(root, since=since, until=until, cursor=cursor)
