"""Named volumes: ``<root>/volumes/<name>/_data``, created by ``pybuild volume create`` or at the
first ``-v NAME:/path``, kept when containers are removed, removed only when no container uses them.

A volume appears under its name only once complete (made as ``.new-<name>-<random>``, then
renamed), so a create killed half-way leaves nothing a later command can see as a volume. The first
container to mount an empty volume seeds it with what its image has at that path (Docker's
behaviour, so ``-v pgdata:/var/lib/postgresql/data`` starts with the image's files); the
``seeded`` marker makes that happen once, under the volume's lock, even with concurrent starts.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from layers.atomic import fsync_dir, write_atomic
from layers.errors import AlreadyExists, InvalidInput, NotFound
from layers.value import frozen

from .errors import VolumeInUse
from .state import flock

__all__ = ["Volume", "VolumeStore", "VolumeInUse", "validate_volume_name"]

_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$")     # Docker's volume name grammar


def validate_volume_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise InvalidInput(f"volume name {name!r}: use letters, digits, '_', '.' and '-', starting with a "
                           "letter or digit (a host path must be absolute)")
    return name


@frozen
class Volume:
    name: str
    path: str                   # the directory containers mount (``.../_data``)
    created: float
    labels: tuple[tuple[str, str], ...] = ()

    def to_inspect(self) -> dict:
        """Docker's ``volume inspect`` shape."""
        return {"Name": self.name, "Driver": "local", "Mountpoint": self.path, "Scope": "local",
                "CreatedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created)),
                "Labels": dict(self.labels), "Options": {}}


class VolumeStore:
    """The named volumes under ``<root>/volumes``."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.base = os.path.join(self.root, "volumes")

    def _event(self, action: str, name: str) -> None:
        """Docker's volume event (``create``, ``destroy``) in the journal; never raises."""
        from layers import events

        events.emit(self.root, "volume", action, name, driver="local")

    def _dir(self, name: str) -> str:
        return os.path.join(self.base, validate_volume_name(name))

    @contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        os.makedirs(self.base, mode=0o700, exist_ok=True)
        with flock(os.path.join(self.base, f".{name}.lock")):
            yield

    def get(self, name: str) -> Volume:
        d = self._dir(name)
        try:
            with open(os.path.join(d, "volume.json"), "rb") as f:
                doc = json.loads(f.read(1 << 20))
        except FileNotFoundError:
            raise NotFound(f"no such volume: {name}") from None
        except ValueError as exc:
            raise InvalidInput(f"volume {name}: {os.path.join(d, 'volume.json')}: {exc}") from None
        return Volume(name, os.path.join(d, "_data"), float(doc.get("created", 0)),
                      tuple(sorted((str(k), str(v)) for k, v in (doc.get("labels") or {}).items())))

    def create(self, name: str, labels: dict[str, str] | None = None, *, exist_ok: bool = False) -> Volume:
        """Make volume ``name`` (empty). ``exist_ok``: an existing one is returned as it is."""
        d = self._dir(name)
        with self._lock(name):
            if os.path.exists(os.path.join(d, "volume.json")):
                if exist_ok:
                    return self.get(name)
                raise AlreadyExists(f"volume {name}: already exists")
            tmp = os.path.join(self.base, f".new-{name}-{os.urandom(4).hex()}")
            os.makedirs(os.path.join(tmp, "_data"), mode=0o755)
            try:
                write_atomic(os.path.join(tmp, "volume.json"),
                             json.dumps({"name": name, "created": time.time(), "labels": labels or {}}).encode())
                os.rename(tmp, d)
            except BaseException:
                _rmtree(tmp)
                raise
            fsync_dir(self.base)
        self._event("create", name)
        return self.get(name)

    def names(self) -> list[str]:
        try:
            entries = os.listdir(self.base)
        except FileNotFoundError:
            return []
        return sorted(n for n in entries if _NAME_RE.match(n) and os.path.exists(os.path.join(self.base, n, "volume.json")))

    def list(self) -> list[Volume]:
        out = []
        for n in self.names():
            try:
                out.append(self.get(n))
            except NotFound:
                continue                      # removed while we listed
        return out

    def remove(self, name: str, users: Callable[[], list[str]]) -> None:
        """Delete volume ``name`` and its data. ``users()`` names the containers that refer to it (the
        caller knows where they are), asked under the volume's lock: any is a :class:`VolumeInUse`."""
        self.get(name)
        d = self._dir(name)
        with self._lock(name):
            using = users()
            if using:
                raise VolumeInUse(f"volume {name}: in use by container {', '.join(using)}: remove it first")
            gone = os.path.join(self.base, f".gone-{name}-{os.urandom(4).hex()}")
            os.rename(d, gone)                # never listed half-removed
            _rmtree(gone)
            fsync_dir(self.base)
        self._event("destroy", name)

    def seed_once(self, name: str, seed) -> None:
        """Call ``seed(data_dir)`` if volume ``name`` was never seeded and is still empty, then mark it
        seeded (an already used volume keeps what it has, as Docker's do)."""
        v = self.get(name)
        marker = os.path.join(os.path.dirname(v.path), "seeded")
        if os.path.exists(marker):
            return
        with self._lock(name):
            if os.path.exists(marker):
                return
            if not os.listdir(v.path):
                seed(v.path)
            write_atomic(marker, b"1\n")

    def sweep(self) -> None:
        """Drop what a killed create or remove left (``.new-*``, ``.gone-*``)."""
        try:
            entries = os.listdir(self.base)
        except FileNotFoundError:
            return
        for n in entries:
            if n.startswith((".new-", ".gone-")):
                _rmtree(os.path.join(self.base, n))


def _rmtree(path: str) -> None:
    from layers.fstree import remove_tree

    remove_tree(path, ignore_errors=True)
