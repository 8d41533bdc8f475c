"""Renderings of images and store figures: Docker's sizes and ages, aligned tables, the image
``inspect`` document, the rows of ``images``, ``history`` and ``system df``. Pure functions of typed
values; nothing here reads the store."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterable, Sequence

from layers.store.space import human as human_size

__all__ = ["human_size", "human_ago", "table", "familiar", "split_name", "image_document", "images_head",
           "image_row", "image_json", "history_rows", "history_line", "history_json", "HISTORY_HEAD", "df_rows",
           "df_json"]


def human_ago(created: str) -> str:
    """``3 hours ago`` for an RFC 3339 time; ``N/A`` when there is none, the text itself when unparsable."""
    if not created:
        return "N/A"
    try:
        when = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return created
    secs = max(0, int((datetime.now(timezone.utc) - when).total_seconds()))
    for unit, size in (("year", 365 * 86400), ("month", 30 * 86400), ("week", 7 * 86400), ("day", 86400),
                       ("hour", 3600), ("minute", 60)):
        if secs >= size:
            k = secs // size
            return f"{k} {unit}{'s' if k > 1 else ''} ago"
    return "Less than a minute ago" if secs >= 1 else "Less than a second ago"


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Columns padded to their widest cell, three spaces apart, trailing blanks stripped."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["   ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def familiar(name: str) -> str:
    """``busybox:1`` for ``docker.io/library/busybox:1``."""
    from layers.reference import Reference

    return Reference.parse(name).familiar


def split_name(name: str | None) -> tuple[str, str, str]:
    """``(repository, tag, digest)`` as ``docker images`` shows them."""
    from layers.reference import Reference

    if not name:
        return "<none>", "<none>", ""
    ref = Reference.parse(name)
    return ref.familiar_name, ref.tag or "<none>", str(ref.digest) if ref.digest else ""


def image_row(record, created: str, size: int, *, no_trunc: bool, digests: bool) -> list[str]:
    """One line of the ``images`` table (under :func:`images_head`); the DIGEST is the repo digest (an
    index's, for one platform pulled out of it, as Docker shows it)."""
    repo, tag, _ = split_name(record.name)
    return ([repo, tag] + ([str(record.repo_digest)] if digests else [])
            + [str(record.id) if no_trunc else record.id.short, human_ago(created), human_size(size)])


def platforms_cell(platforms, missing: int) -> str:
    """The PLATFORMS cell of an index record: ``linux/amd64,linux/arm64`` (``+N`` not in the store)."""
    return ",".join(platforms) + (f" (+{missing} not pulled)" if missing else "") if platforms or missing else ""


def image_json(record, created: str, size: int, entries=(), present=()) -> dict:
    """One line of ``images --format json``; an index record adds ``Platforms`` as ``inspect`` shows
    them (``entries``: the index's image descriptors), each marked ``Pulled`` when in ``present``."""
    repo, tag, _ = split_name(record.name)
    doc = {"Repository": repo, "Tag": tag, "ID": str(record.id), "Digest": str(record.repo_digest),
           "CreatedAt": created, "Size": size, "Names": [record.name] if record.name else []}
    if entries:
        doc["Platforms"] = [{"platform": str(d.platform), "digest": str(d.digest), "size": d.size,
                             "Pulled": str(d.platform) in present} for d in entries]
    return doc


def images_head(digests: bool) -> list[str]:
    return ["REPOSITORY", "TAG"] + (["DIGEST"] if digests else []) + ["IMAGE ID", "CREATED", "SIZE"]


def image_document(image, record, named: Iterable) -> dict:
    """The Docker-like ``inspect`` document of a loaded image (``layers.store.Image``), the record it was
    resolved by and every named record pointing at it (``ImageStore.records_for``). ``RepoDigests``:
    each name's repo digest (an index's, for one platform pulled out of it, as Docker shows it; the
    platform manifest is ``Descriptor``), the record's own first."""
    from layers.reference import Reference

    cfg = image.config
    tags, digests = [], []
    for rec in named:
        ref = Reference.parse(rec.name)
        if ref.tag and not ref.digest:
            tags.append(ref.familiar)
        digests.append(f"{ref.familiar_name}@{rec.repo_digest}")
    if record.name:
        first = f"{Reference.parse(record.name).familiar_name}@{record.repo_digest}"
        digests = [first] + sorted(set(digests) - {first})
    else:
        digests = sorted(set(digests))
    last = cfg.history[-1] if cfg.history else None
    return {
        "Id": str(image.id),
        "RepoTags": tags,
        "RepoDigests": digests,
        "Parent": "",
        "Comment": last.comment if last else "",
        "Created": cfg.created,
        "Author": cfg.author,
        "Config": cfg.config.to_dict(),
        "Architecture": cfg.architecture,
        "Os": cfg.os,
        **({"Variant": cfg.variant} if cfg.variant else {}),
        "Size": image.size,
        "RootFS": {"Type": cfg.rootfs.type, "Layers": [str(d) for d in cfg.diff_ids]},
        "Descriptor": {"mediaType": image.manifest.media_type, "digest": str(image.manifest.digest),
                       "size": image.manifest.size},
        **({"Index": {"mediaType": image.index.media_type, "digest": str(image.index.digest),
                      "Platforms": [{"platform": str(d.platform), "digest": str(d.digest), "size": d.size}
                                    for d in image.index.images() if d.platform is not None]}}
           if image.index is not None else {}),
        "Layers": [{"mediaType": d.media_type, "digest": str(d.digest), "size": d.size} for d in image.layers],
        "Metadata": {"LastTagTime": datetime.fromtimestamp(record.created, timezone.utc).isoformat()
                     if record.created else ""},
    }


def history_rows(image, *, no_trunc: bool) -> list[tuple[str, object, object, int]]:
    """``(id column, history entry, diff_id or None, layer size)``, newest first, as ``history`` lists them."""
    sizes = {d: layer.size for d, layer in zip(image.config.diff_ids, image.manifest.layers)}
    rows = []
    for i, (h, diff_id) in enumerate(reversed(image.config.layer_history())):
        ident = (str(image.id) if no_trunc else image.id.short) if i == 0 else "<missing>"
        rows.append((ident, h, diff_id, sizes.get(diff_id, 0) if diff_id else 0))
    return rows


def history_json(ident: str, h, diff_id, size: int) -> dict:
    return {"ID": ident, "CreatedAt": h.created, "CreatedBy": h.created_by, "Size": size, "Comment": h.comment,
            "EmptyLayer": h.empty_layer, "DiffID": str(diff_id) if diff_id else None}


def history_line(ident: str, h, size: int, *, no_trunc: bool) -> list[str]:
    by = h.created_by if no_trunc or len(h.created_by) <= 45 else h.created_by[:44] + "…"
    return [ident, human_ago(h.created), by, human_size(size), h.comment]


HISTORY_HEAD = ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
DF_HEAD = ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]


def df_rows(usage: Iterable) -> list[list[str]]:
    """The ``system df`` table of :class:`layers.store.usage.DiskUsage` values, heading first."""
    return [DF_HEAD] + [[u.kind, str(u.total), str(u.active), human_size(u.size), human_size(u.reclaimable)]
                        for u in usage]


def df_json(u) -> dict:
    return {"Type": u.kind, "TotalCount": u.total, "Active": u.active, "Size": u.size, "Reclaimable": u.reclaimable}
