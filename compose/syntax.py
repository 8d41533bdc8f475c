"""The small grammars of a compose file: ports, volumes, durations, sizes.

Each parser takes the value as written (after interpolation) and returns the spec's long form as
a plain dict, or raises :class:`ValueError` with a one-line reason; callers add the file, path
and line. Short and long syntax meet here so that merging and normalising see one shape.
"""

from __future__ import annotations

import ipaddress
import re

__all__ = ["parse_port", "expand_ports", "parse_volume", "duration", "size", "port_range"]

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE = re.compile(r"(\d+(?:\.\d+)?) ?([kmgtp])?i?b?\Z", re.IGNORECASE)
_PROPAGATION = {"shared", "rshared", "slave", "rslave", "private", "rprivate"}


def duration(value) -> float:
    """Go duration (``1m30s``, ``500ms``, ``2h``) or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    if body == "0":
        return 0.0
    pos, total = 0, 0.0
    for m in _DURATION_PART.finditer(body):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not body or pos != len(body):
        raise ValueError(f"invalid duration {value!r} (use a Go duration such as 10s, 1m30s, 500ms)")
    return sign * total


def size(value) -> int:
    """``2g``, ``512m``, ``1024k``, ``100b`` or an integer -> bytes (1024-based, as Docker)."""
    if isinstance(value, bool):
        raise ValueError(f"invalid size {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    m = _SIZE.match(str(value).strip())
    if not m:
        raise ValueError(f"invalid size {value!r} (use a number with an optional b, k, m, g, t or p unit)")
    power = " kmgtp".index((m.group(2) or " ").lower())
    return int(float(m.group(1)) * 1024 ** power)


def port_range(text: str) -> tuple[int, int]:
    """``80`` -> (80, 80); ``8000-8005`` -> (8000, 8005); checks 0..65535 and order."""
    lo, dash, hi = str(text).partition("-")
    if not lo.isdigit() or (dash and not hi.isdigit()):
        raise ValueError(f"invalid port {text!r}")
    start, end = int(lo), int(hi) if dash else int(lo)
    if end < start or end > 65535:
        raise ValueError(f"invalid port range {text!r}")
    return start, end


def parse_port(value) -> dict:
    """One ``ports:`` entry (int, short string or long mapping) -> the long mapping, before
    range expansion: ``{"target": "80-81", "published": "8080-8081" | None, "host_ip", "protocol", "mode"}``."""
    if isinstance(value, dict):
        out = dict(value)
        if "target" not in out:
            raise ValueError("a long-syntax port needs target")
        out["target"] = str(out["target"])
        if out.get("published") is not None:
            out["published"] = str(out["published"])
        out.setdefault("protocol", "tcp")
        out.setdefault("mode", "ingress")
        return out
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"invalid port {value!r}")
    text = str(value).strip()
    proto = "tcp"
    if "/" in text:
        text, proto = text.rsplit("/", 1)
        if proto not in ("tcp", "udp", "sctp"):
            raise ValueError(f"invalid protocol {proto!r} in port {value!r}")
    host_ip = None
    if text.startswith("["):
        host_ip, sep, text = text[1:].partition("]:")
        if not sep:
            raise ValueError(f"invalid port {value!r}")
    parts = text.rsplit(":", 2) if host_ip is None else text.split(":")
    if host_ip is None and len(parts) == 3:
        host_ip = parts[0]
        parts = parts[1:]
    if len(parts) == 1:
        published, target = None, parts[0]
    elif len(parts) == 2:
        published, target = parts[0] or None, parts[1]
    else:
        raise ValueError(f"invalid port {value!r}")
    if host_ip:
        try:
            ipaddress.ip_address(host_ip)
        except ValueError:
            raise ValueError(f"invalid host IP {host_ip!r} in port {value!r}") from None
    port_range(target)
    if published is not None:
        port_range(published)
    out = {"target": target, "published": published, "protocol": proto, "mode": "ingress"}
    if host_ip:
        out["host_ip"] = host_ip
    return out


def expand_ports(entry: dict) -> list[dict]:
    """A long mapping with ranges -> one mapping per port with int ``target`` and ``published``."""
    t0, t1 = port_range(entry["target"])
    pub = entry.get("published")
    if pub is None or pub == "":
        pubs = [None] * (t1 - t0 + 1)
    else:
        p0, p1 = port_range(pub)
        if p1 - p0 != t1 - t0:
            if t0 == t1:
                raise ValueError(f"published port range {pub} for one target port is not supported")
            raise ValueError(f"port ranges {pub} and {entry['target']} differ in length")
        pubs = list(range(p0, p1 + 1))
    return [dict(entry, target=t, published=p) for t, p in zip(range(t0, t1 + 1), pubs)]


def parse_volume(value) -> dict:
    """One ``volumes:`` entry -> the long mapping (``type``, ``source``, ``target``, ``read_only``,
    ``bind``/``volume`` options). Sources are left as written; the loader resolves host paths."""
    if isinstance(value, dict):
        out = dict(value)
        if "target" not in out:
            raise ValueError("a long-syntax volume needs target")
        return out
    if not isinstance(value, str) or not value:
        raise ValueError(f"invalid volume {value!r}")
    parts = value.split(":")
    if len(parts) == 1:
        return {"type": "volume", "target": parts[0]}
    if len(parts) > 3:
        raise ValueError(f"invalid volume {value!r}: too many colons")
    source, target = parts[0], parts[1]
    options = parts[2].split(",") if len(parts) == 3 else []
    if not source or not target:
        raise ValueError(f"invalid volume {value!r}")
    is_path = source.startswith(("/", ".", "~"))
    out: dict = {"type": "bind" if is_path else "volume", "source": source, "target": target}
    bind: dict = {}
    for opt in options:
        if opt == "ro":
            out["read_only"] = True
        elif opt == "rw":
            out["read_only"] = False
        elif opt in ("z", "Z"):
            bind["selinux"] = opt
        elif opt in _PROPAGATION:
            bind["propagation"] = opt
        elif opt == "nocopy" and not is_path:
            out["volume"] = {"nocopy": True}
        elif opt in ("cached", "delegated", "consistent"):
            out["consistency"] = opt
        else:
            raise ValueError(f"invalid volume option {opt!r} in {value!r}")
    if bind:
        if not is_path:
            raise ValueError(f"bind options on named volume {value!r}")
        out["bind"] = bind
    if is_path:
        out.setdefault("bind", {})["create_host_path"] = True
    return out
