"""Top-level ``networks``, ``volumes``, ``secrets``, ``configs`` and the project name.

Contract: each ``*_specs`` function turns the merged top-level mapping into frozen specs keyed by
their compose name, with real names (``<project>_<key>`` unless ``name:`` or ``external``) and
host paths made absolute against the project directory; an option pybuild cannot honour is a
ComposeFileError naming it. :func:`project_name` applies Compose v2's precedence and rules.
"""

from __future__ import annotations

import os
import re

from compose.canon import list_or_dict
from compose.errors import ComposeFileError
from compose.model import ConfigSpec, NetworkSpec, SecretSpec, VolumeSpec
from compose.normalize import boolish

__all__ = ["network_specs", "volume_specs", "secret_specs", "config_specs", "project_name", "normalize_name"]

_VALID_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")


def normalize_name(name: str) -> str:
    """A directory name -> a project name: lowercase, only ``[a-z0-9_-]``, starting alphanumeric."""
    name = re.sub(r"[^a-z0-9_-]", "", name.lower())
    return name.lstrip("_-")


def project_name(cli: str | None, top: str | None, environ, project_dir: str) -> str:
    """``-p``, then the file's top-level ``name:``, then ``COMPOSE_PROJECT_NAME`` (process environment or
    ``.env``), then the directory's name: the order issue 13 specifies. Docker's "Specify a project name"
    page puts the variable before ``name:``; docs/COMPOSE.md notes the difference."""
    for value, origin in ((cli, "-p"), (top, "name"), (environ.get("COMPOSE_PROJECT_NAME"), "COMPOSE_PROJECT_NAME")):
        if value:
            if not _VALID_NAME.match(value):
                raise ComposeFileError(
                    f"invalid project name {value!r} ({origin}): must consist only of lowercase alphanumeric "
                    "characters, hyphens, and underscores as well as start with a letter or number")
            return value
    name = normalize_name(os.path.basename(os.path.abspath(project_dir)))
    if not name:
        raise ComposeFileError(f"project name cannot be derived from directory {project_dir!r}; use -p")
    return name


def _check(entry: dict, allowed: set, where, path) -> None:
    for key in entry:
        if key not in allowed and not key.startswith("x-"):
            raise where.error(f"{key} is not supported by pybuild", path + (key,))


def _external(entry: dict, key: str, where, path):
    ext = entry.get("external")
    if isinstance(ext, dict):
        return True, ext.get("name") or entry.get("name") or key
    if ext is not None and boolish(ext, lambda why: where.error(why, path + ("external",))):
        return True, entry.get("name") or key
    return False, None


def _pairs(value) -> tuple:
    return tuple((k, "" if v is None else v) for k, v in list_or_dict(value or {}).items())


def network_specs(top: dict, project: str, where) -> dict:
    out = {}
    for key, entry in (top or {}).items():
        entry, path = entry or {}, ("networks", key)
        _check(entry, {"name", "driver", "driver_opts", "ipam", "external", "internal", "enable_ipv6",
                       "attachable", "labels"}, where, path)
        external, real = _external(entry, key, where, path)
        driver = entry.get("driver") or "bridge"
        if driver != "bridge" and not external:
            raise where.error(f"network driver {driver} is not supported by pybuild (bridge only)", path + ("driver",))
        ipam = entry.get("ipam") or {}
        _check(ipam, {"config", "driver"}, where, path + ("ipam",))
        if ipam.get("driver") not in (None, "default"):
            raise where.error(f"ipam driver {ipam['driver']} is not supported by pybuild", path + ("ipam", "driver"))
        subnets, gateways = [], []
        for i, conf in enumerate(ipam.get("config") or ()):
            _check(conf, {"subnet", "gateway"}, where, path + ("ipam", "config", i))
            if conf.get("subnet"):
                subnets.append(conf["subnet"])
            if conf.get("gateway"):
                gateways.append(conf["gateway"])
        err = lambda sub: (lambda why: where.error(why, path + (sub,)))  # noqa: E731
        out[key] = NetworkSpec(
            name=key, real_name=real if external else entry.get("name") or f"{project}_{key}", driver=driver,
            internal=boolish(entry.get("internal", False), err("internal")), external=external,
            attachable=boolish(entry.get("attachable", False), err("attachable")),
            enable_ipv6=boolish(entry.get("enable_ipv6", False), err("enable_ipv6")),
            subnets=tuple(subnets), gateways=tuple(gateways),
            driver_opts=_pairs(entry.get("driver_opts")), labels=_pairs(entry.get("labels")))
    return out


def volume_specs(top: dict, project: str, where) -> dict:
    out = {}
    for key, entry in (top or {}).items():
        entry, path = entry or {}, ("volumes", key)
        _check(entry, {"name", "driver", "driver_opts", "external", "labels"}, where, path)
        external, real = _external(entry, key, where, path)
        driver = entry.get("driver") or "local"
        if driver != "local":
            raise where.error(f"volume driver {driver} is not supported by pybuild (local only)", path + ("driver",))
        out[key] = VolumeSpec(name=key, real_name=real if external else entry.get("name") or f"{project}_{key}",
                              driver=driver, external=external, driver_opts=_pairs(entry.get("driver_opts")),
                              labels=_pairs(entry.get("labels")))
    return out


def _file_specs(kind: str, top: dict, project_dir: str, environ, where, cls, allowed: set) -> dict:
    out = {}
    for key, entry in (top or {}).items():
        entry, path = entry or {}, (kind, key)
        _check(entry, allowed, where, path)
        external, _ = _external(entry, key, where, path)
        if external:
            raise where.error(f"external {kind} are not supported by pybuild (swarm only)", path + ("external",))
        sources = [k for k in ("file", "environment", "content") if entry.get(k) is not None]
        if len(sources) != 1:
            raise where.error(f"needs exactly one of file, environment{', content' if kind == 'configs' else ''}",
                              path)
        content = entry.get("content")
        var = entry.get("environment")
        if var is not None:
            content = environ.get(var)
            if content is None:
                raise where.error(f"environment variable {var} is not set", path + ("environment",))
        file = entry.get("file")
        if file is not None:
            file = os.path.normpath(os.path.join(project_dir, os.path.expanduser(str(file))))
        out[key] = cls(name=key, file=file, environment=var, content=content)
    return out


def secret_specs(top: dict, project_dir: str, environ, where) -> dict:
    return _file_specs("secrets", top, project_dir, environ, where, SecretSpec, {"name", "file", "environment",
                                                                                 "external"})


def config_specs(top: dict, project_dir: str, environ, where) -> dict:
    return _file_specs("configs", top, project_dir, environ, where, ConfigSpec, {"name", "file", "environment",
                                                                                 "content", "external"})
