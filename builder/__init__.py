"""Dockerfile -> typed instructions -> plan (content-addressed cache keys) -> execution -> image.

Public names load lazily so that importing :mod:`builder` stays cheap.
"""

from __future__ import annotations

__all__ = ["parse", "parse_file", "plan", "build", "BuildOptions", "RegistrySettings", "Secret", "BuildError", "DockerfileError"]

_WHERE = {
    "parse": "builder.parse", "parse_file": "builder.parse", "plan": "builder.plan", "build": "builder.build",
    "BuildOptions": "builder.options", "RegistrySettings": "builder.options", "Secret": "builder.options",
    "BuildError": "builder.errors", "DockerfileError": "builder.errors",
}


def __getattr__(name: str):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(name)
