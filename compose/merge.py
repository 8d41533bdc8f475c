"""Merging compose files (``-f a -f b``) and ``extends`` with the Compose Specification's rules.

Contract: :func:`merge_services` / :func:`merge_documents` take values already in the expanded form
of :mod:`compose.canon` and return a new value (inputs are not changed):

- mappings merge key by key, recursively; a scalar from the later file replaces the earlier one;
- sequences are appended, except ``command``, ``entrypoint`` and ``healthcheck.test``, which the later
  file replaces; lists of plain values drop repeats;
- ``ports`` (unique by host_ip, target, published, protocol), ``volumes`` (by target), ``secrets``
  and ``configs`` (by target, or source when no target) merge entries that share the key;
- ``!reset`` removes the attribute, ``!override`` replaces it whole.
"""

from __future__ import annotations

from compose.yamlload import Override, Reset

__all__ = ["merge_documents", "merge_services", "strip_tags"]

_REPLACE = {("command",), ("entrypoint",), ("healthcheck", "test")}


def _port_key(p: dict):
    return (p.get("host_ip"), str(p.get("target")), None if p.get("published") is None else str(p.get("published")),
            p.get("protocol", "tcp"))


def _ref_key(ref: dict):
    """A secret or config use is unique by its target (which defaults from its source)."""
    return ref.get("target") or ref.get("source")


_UNIQUE = {
    ("ports",): _port_key,
    ("volumes",): lambda v: v.get("target"),
    ("secrets",): _ref_key,
    ("configs",): _ref_key,
}


def merge_services(base: dict, override: dict) -> dict:
    """Merge one service's override over its base (both expanded)."""
    return _merge_map(base, override, ())


def merge_documents(base: dict, override: dict) -> dict:
    """Merge two whole (expanded) documents; services by :func:`merge_services`."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Reset):
            out.pop(key, None)
            continue
        if key == "services" and isinstance(value, dict) and isinstance(out.get(key), dict):
            services = dict(out[key])
            for name, svc in value.items():
                if isinstance(svc, Reset):
                    services.pop(name, None)
                elif isinstance(svc, Override) or name not in services or not isinstance(svc, dict):
                    services[name] = strip_tags(svc)
                else:
                    services[name] = merge_services(services[name], svc)
            out[key] = services
        elif key in out:
            out[key] = _merge_value(out[key], value, (key, "*top*"))
        else:
            out[key] = strip_tags(value)
    return out


def _merge_value(base, override, path):
    if isinstance(override, Override):
        return strip_tags(override.value)
    if isinstance(base, dict) and isinstance(override, dict):
        return _merge_map(base, override, path)
    if isinstance(base, list) and isinstance(override, list) and path not in _REPLACE:
        return _merge_list(base, override, path)
    return strip_tags(override)


def _merge_map(base: dict, override: dict, path) -> dict:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Reset):
            out.pop(key, None)
        elif key in out and out[key] is not None:
            out[key] = _merge_value(out[key], value, path + (key,))
        else:
            out[key] = strip_tags(value)
    return out


def _merge_list(base: list, override: list, path) -> list:
    override = [strip_tags(v) for v in override]
    keyfn = _UNIQUE.get(path)
    if keyfn is not None:
        out = list(base)
        index = {keyfn(v): i for i, v in enumerate(out) if isinstance(v, dict)}
        for item in override:
            k = keyfn(item) if isinstance(item, dict) else None
            if k is not None and k in index:
                out[index[k]] = _merge_map(out[index[k]], item, path + ("*",))
            else:
                index[k] = len(out)
                out.append(item)
        return out
    out = list(base)
    for item in override:
        if isinstance(item, (dict, list)) or item not in out:
            out.append(item)
    return out


def strip_tags(value):
    """The value with ``!override`` wrappers removed and ``!reset`` entries dropped."""
    if isinstance(value, Override):
        return strip_tags(value.value)
    if isinstance(value, Reset):
        return None
    if isinstance(value, dict):
        return {k: strip_tags(v) for k, v in value.items() if not isinstance(v, Reset)}
    if isinstance(value, list):
        return [strip_tags(v) for v in value if not isinstance(v, Reset)]
    return value
