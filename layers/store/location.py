"""Where the store, the live state and the configuration live, and whether this is a rootless run.

This is the one place that decides "root or rootless" (ARCHITECTURE: rootless):

- :func:`host_uid` is the caller's uid on the host: ``geteuid()`` in the initial user namespace,
  or the outer uid that maps to our uid when the process has joined a user namespace (after
  ``runner.userns.join`` the euid reads 0, but ``/proc/self/uid_map`` still tells the truth).
- :func:`is_rootless` is true when that host uid is not 0 or when the process runs in a user
  namespace whose map is not the full identity map (a real root has ``0 0 4294967295``).
- :func:`default_location` gives the paths: root keeps ``/var/lib/pybuild`` and ``/run/pybuild``;
  a rootless user gets ``$XDG_DATA_HOME/pybuild`` (default ``~/.local/share/pybuild``), state in
  ``$XDG_RUNTIME_DIR/pybuild`` or else a private ``/tmp/pybuild-<uid>`` (0700, refused when someone
  else owns it), configuration in ``$XDG_CONFIG_HOME/pybuild`` (default ``~/.config/pybuild``).
  ``PYBUILD_ROOT``/``PYBUILD_STATE`` and ``--root``/``--state-dir`` still override (the CLI's job).

Everything here reads the environment and ``/proc`` only: no directory is created except by
:func:`private_dir`, which the caller uses for the state directory.
"""

from __future__ import annotations

import os
import stat
from collections import namedtuple
from functools import lru_cache

from ..errors import StoreError

__all__ = ["Location", "ROOT_STORE", "ROOT_STATE", "host_uid", "in_user_namespace", "is_rootless",
           "default_location", "private_dir", "read_id_map", "opaque_xattr"]

ROOT_STORE = "/var/lib/pybuild"
ROOT_STATE = "/run/pybuild"
_FULL = ((0, 0, 4294967295),)


class Location(namedtuple("Location", "rootless root state config uid")):
    """The default paths of this user: ``root`` (store), ``state`` (live state), ``config``; ``uid``
    the host uid. Immutable; a namedtuple, not a dataclass, because ``pybuild --help`` prints these
    defaults and must not pay for importing ``dataclasses`` (which pulls in ``inspect``)."""

    __slots__ = ()


def read_id_map(path: str = "/proc/self/uid_map") -> tuple[tuple[int, int, int], ...]:
    """The lines of a ``uid_map``/``gid_map`` as ``(inside, outside, count)``; the full identity map
    when the file cannot be read (a kernel without user namespaces)."""
    try:
        with open(path) as f:
            rows = tuple(tuple(int(v) for v in line.split()) for line in f if line.strip())
    except OSError:
        return _FULL
    return rows or _FULL  # type: ignore[return-value]


@lru_cache(maxsize=1)
def in_user_namespace() -> bool:
    """True when this process's user namespace maps anything but the full identity."""
    return read_id_map() != _FULL


@lru_cache(maxsize=1)
def host_uid() -> int:
    """The host uid of the caller (see the module docstring)."""
    euid = os.geteuid()
    if not in_user_namespace():
        return euid
    for inside, outside, count in read_id_map():
        if inside <= euid < inside + count:
            return outside + euid - inside
    return euid


def is_rootless() -> bool:
    """True for a non-root user on the host, and for any process in a non-identity user namespace."""
    return host_uid() != 0 or in_user_namespace()


def _home(env) -> str:
    home = env.get("HOME")
    if home:
        return home
    import pwd

    try:
        return pwd.getpwuid(host_uid()).pw_dir
    except KeyError:
        return f"/tmp/pybuild-{host_uid()}/home"


def default_location(env=None) -> Location:
    """The default store/state/config paths for this caller (no override applied, nothing created)."""
    env = os.environ if env is None else env
    if not is_rootless():
        return Location(False, ROOT_STORE, ROOT_STATE, "/etc/pybuild", 0)
    uid, home = host_uid(), _home(env)
    data = env.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share")
    config = env.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    runtime = env.get("XDG_RUNTIME_DIR")
    state = os.path.join(runtime, "pybuild") if runtime and os.path.isdir(runtime) else f"/tmp/pybuild-{uid}"
    return Location(True, os.path.join(data, "pybuild"), state, os.path.join(config, "pybuild"), uid)


def private_dir(path: str) -> str:
    """Create ``path`` (and parents) 0700 if absent; refuse it when another user owns it or others
    may write it. Returns ``path``. Ownership is compared with our euid in the current namespace."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.lstat(path)
    except OSError as e:
        raise StoreError(f"cannot create the private directory {path}: {e.strerror}") from None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise StoreError(f"refusing {path}: it is not a directory owned by uid {host_uid()} "
                         "(set XDG_RUNTIME_DIR or --state-dir)")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def opaque_xattr() -> str:
    """The xattr overlayfs reads to mark a directory opaque: ``trusted.overlay.opaque`` as root; in a
    user namespace overlay is mounted with ``userxattr`` and reads ``user.overlay.opaque``."""
    return "user.overlay.opaque" if is_rootless() else "trusted.overlay.opaque"
