"""Where the compose files are, as Docker Compose v2 finds them.

Contract: :func:`find_files` returns absolute paths in merge order. With explicit ``-f`` files it
checks each exists (``-`` means standard input and is kept as ``-``). Otherwise it takes
``COMPOSE_FILE`` (split on ``COMPOSE_PATH_SEPARATOR``, default ``:``), or looks in ``start`` and then
each parent directory for the first of :data:`NAMES`, and adds the first of :data:`OVERRIDE_NAMES`
found beside it. Finding nothing raises :class:`ComposeFileNotFound`.
"""

from __future__ import annotations

import os

from compose.errors import ComposeFileNotFound

__all__ = ["NAMES", "OVERRIDE_NAMES", "find_files"]

NAMES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
OVERRIDE_NAMES = ("compose.override.yaml", "compose.override.yml", "docker-compose.override.yml",
                  "docker-compose.override.yaml")


def find_files(files, start: str, environ) -> tuple[str, ...]:
    """``files``: the ``-f`` values (may be empty); ``start``: the directory to search from."""
    if files:
        return tuple(_existing(f, start) for f in files)
    listed = environ.get("COMPOSE_FILE")
    if listed:
        sep = environ.get("COMPOSE_PATH_SEPARATOR") or os.pathsep
        return tuple(_existing(f, start) for f in listed.split(sep) if f)
    directory = os.path.abspath(start)
    while True:
        for name in NAMES:
            candidate = os.path.join(directory, name)
            if os.path.isfile(candidate):
                found = [candidate]
                for override in OVERRIDE_NAMES:
                    path = os.path.join(directory, override)
                    if os.path.isfile(path):
                        found.append(path)
                        break
                return tuple(found)
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    raise ComposeFileNotFound("no configuration file provided: not found (looked for "
                              + ", ".join(NAMES) + f" in {os.path.abspath(start)} and its parents)")


def _existing(path: str, start: str) -> str:
    if path == "-":
        return path
    full = os.path.abspath(os.path.join(start, path))
    if not os.path.exists(full):
        raise ComposeFileNotFound(f"open {full}: no such file or directory")
    if os.path.isdir(full):
        for name in NAMES:
            if os.path.isfile(os.path.join(full, name)):
                return os.path.join(full, name)
        raise ComposeFileNotFound(f"{full} is a directory without a compose file")
    return full
