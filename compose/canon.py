"""One file's services in the spec's expanded form, so that merging compares like with like.

Contract: :func:`canon_service` returns a new dict in which every attribute that may be written
two ways has one shape: ``environment``/``labels``/``annotations``/``sysctls``/``extra_hosts``/
``build.args``/``build.labels`` are mappings (a bare ``KEY`` maps to None); ``depends_on`` is a
mapping of mappings; ``networks`` a mapping; ``dns``/``dns_search``/``tmpfs``/``env_file`` lists
(``env_file`` items ``{"path", "required"}``); ``ports``/``volumes``/``secrets``/``configs`` lists
of long-syntax mappings; ``build`` a mapping; ``ulimits`` values ``{"soft", "hard"}``. Host paths
(build context, bind sources, env files, ``extends.file``) become absolute against ``base_dir``.
Bad entries raise ComposeFileError with file, path and line.
"""

from __future__ import annotations

import os

from compose.errors import ComposeFileError
from compose.interpolate import path_text
from compose.syntax import parse_port, parse_volume
from compose.yamlload import Override, Reset

__all__ = ["canon_service", "Where", "list_or_dict"]


class Where:
    """Names a place for errors: file, base path, and a line lookup."""

    def __init__(self, file: str, lines=None) -> None:
        self.file, self._lines = file, lines

    def error(self, why: str, path, line_path=None) -> ComposeFileError:
        """``file:line: path: why``; the line is that of ``line_path`` (default ``path``)."""
        lookup = path if line_path is None else line_path
        return ComposeFileError(why, file=self.file, path=path_text(path),
                                line=self._lines(lookup) if self._lines else None)


def list_or_dict(value, sep: str = "=") -> dict:
    """``["A=1", "B"]`` or ``{"A": 1, "B": None}`` -> ``{"A": "1", "B": None}`` (values as strings)."""
    if isinstance(value, dict):
        return {str(k): _scalar_text(v) for k, v in value.items()}
    out: dict = {}
    for item in value or ():
        key, has, val = str(item).partition(sep)
        out[key] = val if has else None
    return out


def _scalar_text(v):
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _unwrap(v):
    return v.value if isinstance(v, (Reset, Override)) else v


def _wrap_like(orig, new):
    if isinstance(orig, Override):
        return Override(new)
    return new


def canon_service(svc: dict, base_dir: str, where: Where, path: tuple, environ) -> dict:
    if not isinstance(svc, dict):
        svc = {}
    out = dict(svc)
    for key, value in svc.items():
        if isinstance(value, Reset):
            continue
        raw = _unwrap(value)
        handler = _HANDLERS.get(key)
        if handler is not None and raw is not None:
            try:
                out[key] = _wrap_like(value, handler(raw, base_dir, environ))
            except _ItemError as exc:
                raise where.error(str(exc), path + (key, exc.index)) from None
            except ValueError as exc:
                raise where.error(str(exc), path + (key,)) from None
    return out


def _abs(p: str, base_dir: str, environ) -> str:
    if p.startswith("~"):
        home = environ.get("HOME") or os.path.expanduser("~")
        p = home + p[1:]
    return os.path.normpath(os.path.join(base_dir, p))


def _is_remote(ctx: str) -> bool:
    return "://" in ctx or ctx.startswith(("git@", "github.com/"))


def _build(v, base_dir, environ):
    b = {"context": v} if isinstance(v, str) else dict(v)
    ctx = str(b.get("context", "."))
    b["context"] = ctx if _is_remote(ctx) else _abs(ctx, base_dir, environ)
    for key in ("args", "labels"):
        if key in b and b[key] is not None:
            b[key] = list_or_dict(b[key])
    if "secrets" in b:
        b["secrets"] = _refs(b["secrets"], base_dir, environ)
    return b


def _depends(v, base_dir, environ):
    if isinstance(v, list):
        return {str(name): {"condition": "service_started", "required": True} for name in v}
    return {str(k): dict(d or {}) for k, d in v.items()}


def _networks(v, base_dir, environ):
    if isinstance(v, list):
        return {str(name): None for name in v}
    return dict(v)


def _str_list(v, base_dir, environ):
    return [v] if isinstance(v, str) else list(v)


def _env_files(v, base_dir, environ):
    items = [v] if isinstance(v, str) else list(v)
    out = []
    for item in items:
        entry = {"path": item, "required": True} if isinstance(item, str) else dict(item)
        entry["path"] = _abs(str(entry["path"]), base_dir, environ)
        out.append(entry)
    return out


class _ItemError(ValueError):
    def __init__(self, why: str, index: int) -> None:
        super().__init__(why)
        self.index = index


def _ports(v, base_dir, environ):
    out = []
    for i, p in enumerate(v):
        try:
            out.append(parse_port(p))
        except ValueError as exc:
            raise _ItemError(str(exc), i) from None
    return out


def _volumes(v, base_dir, environ):
    out = []
    for i, item in enumerate(v):
        try:
            vol = parse_volume(item)
        except ValueError as exc:
            raise _ItemError(str(exc), i) from None
        if vol.get("type") == "bind" and vol.get("source"):
            vol["source"] = _abs(str(vol["source"]), base_dir, environ)
        out.append(vol)
    return out


def _refs(v, base_dir, environ):
    return [{"source": item} if isinstance(item, str) else dict(item) for item in v]


def _ulimits(v, base_dir, environ):
    return {k: (dict(x) if isinstance(x, dict) else {"soft": x, "hard": x}) for k, x in v.items()}


def _extra_hosts(v, base_dir, environ):
    if isinstance(v, dict):
        return {str(k): (list(x) if isinstance(x, list) else x) for k, x in v.items()}
    out: dict = {}
    for item in v:
        host, sep, ip = item.partition("=")
        if not sep:
            host, sep, ip = item.partition(":")
        if not sep or not host or not ip:
            raise ValueError(f"invalid extra host {item!r} (use host:ip or host=ip)")
        out[host] = ip
    return out


def _extends(v, base_dir, environ):
    e = {"service": v} if isinstance(v, str) else dict(v)
    if e.get("file"):
        e["file"] = _abs(str(e["file"]), base_dir, environ)
    return e


def _mapping(v, base_dir, environ):
    return list_or_dict(v)


_HANDLERS = {
    "build": _build, "depends_on": _depends, "networks": _networks, "dns": _str_list,
    "dns_search": _str_list, "tmpfs": _str_list, "env_file": _env_files, "ports": _ports,
    "volumes": _volumes, "secrets": _refs, "configs": _refs, "ulimits": _ulimits,
    "extra_hosts": _extra_hosts, "environment": _mapping, "labels": _mapping, "annotations": _mapping,
    "sysctls": _mapping, "extends": _extends,
}
