"""``extends``: a service built on another service of the same file or of another file.

Contract: :func:`resolve_extends` returns the file's services (expanded form, see
:mod:`compose.canon`) with every ``extends`` replaced by the merge of the base service (itself
resolved first) and the extending service, using the same rules as ``-f`` merging. The base of
another file is read through ``load_other(path) -> (services, where)``, so it is interpolated,
validated and has its relative paths resolved against its own directory. A cycle or a missing
base service is a ComposeFileError naming the ``extends`` line.
"""

from __future__ import annotations

from compose.merge import merge_services

__all__ = ["resolve_extends"]


def resolve_extends(services: dict, where, load_other, file: str) -> dict:
    cache: dict = {}
    others: dict = {}

    def other(path):
        if path not in others:
            others[path] = load_other(path)
        return others[path]

    def resolve(name: str, svcs: dict, w, fname: str, stack: tuple):
        key = (fname, name)
        if key in cache:
            return cache[key]
        if key in stack:
            chain = " -> ".join(n for _, n in stack + (key,))
            raise w.error(f"circular extends: {chain}", ("services", name, "extends"))
        svc = svcs[name]
        ext = svc.get("extends") if isinstance(svc, dict) else None  # !reset / !override pass through
        if not ext:
            cache[key] = svc
            return svc
        base_name = ext.get("service")
        if ext.get("file") and ext["file"] != fname:
            base_svcs, base_w = other(ext["file"])
            base_file = ext["file"]
        else:
            base_svcs, base_w, base_file = svcs, w, fname
        if base_name not in base_svcs:
            raise w.error(f"cannot extend service {base_name!r}: no such service"
                          + (f" in {ext['file']}" if ext.get("file") else ""), ("services", name, "extends"))
        base = resolve(base_name, base_svcs, base_w, base_file, stack + (key,))
        if not isinstance(base, dict):
            raise w.error(f"cannot extend service {base_name!r}: it is not a mapping", ("services", name, "extends"))
        local = {k: v for k, v in svc.items() if k != "extends"}
        merged = merge_services(base, local)
        cache[key] = merged
        return merged

    return {name: resolve(name, services, where, file, ()) for name in services}
