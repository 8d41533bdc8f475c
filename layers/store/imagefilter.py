"""``images --filter``: Docker's image filters over :meth:`ImageStore.summaries`.

* ``reference=PATTERN``: the familiar ``name:tag`` or the familiar name matches the glob (``*`` and
  ``?`` do not cross ``/``, as Go's ``path.Match``); several reference filters are alternatives;
* ``dangling=true|false``: images without a name (``<none>:<none>``), or only named ones;
* ``label=KEY`` or ``label=KEY=VALUE``: the image config's labels; all label filters must hold;
* ``before=IMAGE`` / ``since=IMAGE``: created strictly before / after that image.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from layers.errors import InvalidInput, PybuildError
from layers.value import frozen

from .images import ImageStore, ImageSummary

__all__ = ["ImageFilters", "parse_image_filters", "filter_images"]

_KEYS = ("reference", "dangling", "label", "before", "since")


@frozen(slots=True)
class ImageFilters:
    """Parsed ``--filter`` values; empty tuples/None mean no constraint."""

    references: tuple[str, ...] = ()
    dangling: bool | None = None
    labels: tuple[tuple[str, str | None], ...] = ()
    before: tuple[str, ...] = ()
    since: tuple[str, ...] = ()


def parse_image_filters(filters: tuple[str, ...] | list[str]) -> ImageFilters:
    """``key=value`` strings to :class:`ImageFilters`; :class:`InvalidInput` names a bad one."""
    refs, labels, before, since = [], [], [], []
    dangling = None
    for f in filters:
        key, sep, value = f.partition("=")
        if not sep or key not in _KEYS:
            raise InvalidInput(f"invalid filter {f!r}: use reference=, dangling=, label=, before= or since=")
        if key == "reference":
            refs.append(value)
        elif key == "dangling":
            if value.lower() not in ("true", "false", "1", "0"):
                raise InvalidInput(f"invalid filter {f!r}: dangling is true or false")
            dangling = value.lower() in ("true", "1")
        elif key == "label":
            k, eq, v = value.partition("=")
            labels.append((k, v if eq else None))
        elif key == "before":
            before.append(value)
        else:
            since.append(value)
    return ImageFilters(tuple(refs), dangling, tuple(labels), tuple(before), tuple(since))


def _glob(pattern: str) -> re.Pattern[str]:
    """Go ``path.Match`` as a regex: ``*``/``?`` stay within one path segment, ``[...]`` classes."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and "]" in pattern[i + 1:]:
            end = pattern.index("]", i + 2 if pattern[i + 1:i + 2] in ("^", "!") else i + 1)
            body = pattern[i + 1:end]
            if body[:1] in ("^", "!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out))


def _time(created: str) -> datetime | None:
    if not created:
        return None
    text = created.replace("z", "Z").replace("Z", "+00:00")
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)          # nanoseconds: Python takes 6 digits
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _created_of(images: ImageStore, ref: str) -> datetime:
    t = _time(images.load(images.resolve(ref)).config.created)
    if t is None:
        raise InvalidInput(f"image {ref!r} records no creation time to filter by")
    return t


def filter_images(images: ImageStore, listed: list[ImageSummary], filters: ImageFilters) -> list[ImageSummary]:
    """The summaries of ``listed`` every filter keeps (order kept). An unknown ``before``/``since``
    image raises the store's not-found error."""
    pats = [_glob(p) for p in filters.references]
    before = [_created_of(images, r) for r in filters.before]
    since = [_created_of(images, r) for r in filters.since]
    out = []
    for s in listed:
        ref = s.record.reference
        if filters.dangling is not None and filters.dangling != (ref is None):
            continue
        if pats and (ref is None or not any(p.fullmatch(ref.familiar) or p.fullmatch(ref.familiar_name)
                                            for p in pats)):
            continue
        if before or since:
            t = _time(s.created)
            if t is None or any(t >= b for b in before) or any(t <= x for x in since):
                continue
        if filters.labels:
            try:
                have = dict(images.load(s.record).config.config.labels)
            except PybuildError:
                continue
            if not all(k in have and (v is None or have[k] == v) for k, v in filters.labels):
                continue
        out.append(s)
    return out
