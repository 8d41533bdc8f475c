"""Renderings of signatures, referrers and SBOMs (typed values in, text or JSON-ready data out)."""

from __future__ import annotations

__all__ = ["verified_lines", "referrer_rows", "referrer_table"]


def verified_lines(verified) -> list[str]:
    """What ``pybuild verify`` prints: what was checked, then one line per verified signature."""
    lines = [f"Verification for {verified.reference} --",
             "The following checks were performed on each of these signatures:",
             "  - the signature verifies with the given public key",
             f"  - the signed digest is {verified.digest}, the manifest the registry serves now",
             f"  - the signed identity is {verified.reference.name}"]
    for sig in verified.signatures:
        lines.append(f"{sig.form}: {sig.identity}@{sig.digest} (key {sig.key_source})")
    return lines


def referrer_rows(referrers) -> list[dict]:
    return [{"artifactType": r.artifact_type, "mediaType": r.descriptor.media_type,
             "digest": str(r.descriptor.digest), "size": r.descriptor.size, "foundBy": r.source,
             "annotations": r.descriptor.annotation_map} for r in referrers]


def referrer_table(referrers) -> list[str]:
    rows = [("ARTIFACT TYPE", "DIGEST", "SIZE", "FOUND BY")]
    rows += [(r.artifact_type or "-", str(r.descriptor.digest), str(r.descriptor.size), r.source) for r in referrers]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return [f"{a.ljust(widths[0])}   {b.ljust(widths[1])}   {c.ljust(widths[2])}   {d}".rstrip()
            for a, b, c, d in rows]
