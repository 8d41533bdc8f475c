"""``--cache-to`` / ``--cache-from`` values, parsed into :class:`CacheSpec`.

Spelled as BuildKit spells them: ``type=registry,ref=REF[,mode=min|max][,compression=gzip|zstd]
[,ignore-error=true]``, ``type=inline``, ``type=local,dest=DIR`` (export) / ``type=local,src=DIR``
(import); a bare ``IMAGE`` (no ``=``) is ``type=registry,ref=IMAGE``. Anything else, or a key the
type does not take, is refused with the value quoted: an option we cannot honour is never ignored.

``ignore_error`` defaults as BuildKit does for exports (false: a cache that cannot be written
fails the build); an import that fails is a warning and the build goes on cold unless the spec says
``ignore-error=false``.
"""

from __future__ import annotations

from layers.value import frozen

from ..errors import BuildError

__all__ = ["CacheSpec", "parse_cache_spec"]

_KEYS = {
    ("registry", "to"): {"ref", "mode", "compression", "ignore-error", "oci-mediatypes", "image-manifest"},
    ("registry", "from"): {"ref", "ignore-error"},
    ("inline", "to"): {"mode", "ignore-error"},
    ("inline", "from"): {"ref", "ignore-error"},
    ("local", "to"): {"dest", "mode", "compression", "ignore-error", "oci-mediatypes", "image-manifest"},
    ("local", "from"): {"src", "ignore-error"},
}


@frozen
class CacheSpec:
    """One cache location. ``direction`` is ``to`` (export) or ``from`` (import)."""

    type: str
    direction: str
    ref: str = ""
    path: str = ""
    mode: str = "min"
    compression: str = ""  # "": as the layers were built
    ignore_error: bool = False

    def describe(self) -> str:
        where = self.ref or self.path
        return f"type={self.type}" + (f",{'ref' if self.ref else 'dir'}={where}" if where else "")


def parse_cache_spec(text: str, direction: str) -> CacheSpec:
    """Parse one ``--cache-to`` (``direction="to"``) or ``--cache-from`` (``"from"``) value."""
    opt = f"--cache-{direction}"
    if "=" not in text:
        if not text.strip():
            raise BuildError(f"{opt}: empty value")
        return CacheSpec("registry", direction, ref=text.strip(), ignore_error=direction == "from")
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or not key:
            raise BuildError(f"{opt} {text}: {part!r} is not KEY=VALUE")
        if key in fields:
            raise BuildError(f"{opt} {text}: {key} given twice")
        fields[key] = value.strip()
    kind = fields.pop("type", "")
    allowed = _KEYS.get((kind, direction))
    if allowed is None:
        raise BuildError(f"{opt} {text}: type must be registry, inline or local")
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise BuildError(f"{opt} {text}: type={kind} does not take {', '.join(unknown)}")
    mode = fields.get("mode", "min")
    if mode not in ("min", "max"):
        raise BuildError(f"{opt} {text}: mode must be min or max, got {mode!r}")
    if kind == "inline" and mode == "max":
        raise BuildError(f"{opt} {text}: type=inline carries only the final image's layers (mode=min)")
    compression = fields.get("compression", "")
    if compression not in ("", "gzip", "zstd"):
        raise BuildError(f"{opt} {text}: compression must be gzip or zstd, got {compression!r}")
    for key in ("oci-mediatypes", "image-manifest"):
        if key in fields and not _flag(fields[key]):
            raise BuildError(f"{opt} {text}: {key}=false is not supported (the cache is always an OCI image "
                             "manifest with a cacheconfig.v0 config)")
    ignore = _flag(fields["ignore-error"]) if "ignore-error" in fields else direction == "from"
    if "ignore-error" in fields and fields["ignore-error"].lower() not in ("true", "false", "1", "0"):
        raise BuildError(f"{opt} {text}: ignore-error must be true or false")
    ref, path = fields.get("ref", ""), fields.get("dest" if direction == "to" else "src", "")
    if kind == "registry" and not ref:
        raise BuildError(f"{opt} {text}: type=registry needs ref=REF")
    if kind == "local" and not path:
        raise BuildError(f"{opt} {text}: type=local needs {'dest' if direction == 'to' else 'src'}=DIR")
    if kind == "inline" and direction == "from" and not ref:
        raise BuildError(f"{opt} {text}: type=inline needs ref=IMAGE (the pushed image that carries the cache)")
    if ref:
        from layers.errors import PybuildError
        from layers.reference import Reference

        try:
            Reference.parse(ref)
        except PybuildError as exc:
            raise BuildError(f"{opt} {text}: ref: {exc}") from None
    return CacheSpec(kind, direction, ref=ref, path=path, mode=mode, compression=compression, ignore_error=ignore)


def _flag(value: str) -> bool:
    return value.lower() in ("true", "1")
