"""What ``inspect`` shows of a container, as typed facts: :func:`details` returns a
:class:`ContainerDetails` (its config and reconciled state, plus what only the runner knows: the
user's mounts as volumes or binds, its host name, its log file, its seccomp status). The Docker
shaped document is built from it on the CLI side (``pybuild.views.containers``)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .records import ContainerConfig, ContainerState
from .resources import named_volume_of, rootfs_paths
from .state import ContainerStore

__all__ = ["ContainerDetails", "MountPoint", "details"]


@dataclass(frozen=True, slots=True)
class MountPoint:
    """A mount the user asked for (``-v``, ``--tmpfs`` binds, the image's volumes)."""

    type: str                       # volume | bind
    source: str
    destination: str
    options: tuple[str, ...]
    rw: bool
    name: str = ""                  # the named volume's name, "" for anything else


@dataclass(frozen=True, slots=True)
class ContainerDetails:
    config: ContainerConfig
    state: ContainerState
    log_path: str
    mounts: tuple[MountPoint, ...]
    hostname: str                   # the host's own name when the container has no UTS namespace
    privileged: bool                # no seccomp filter and no masked paths
    seccomp: str                    # default | unconfined | why the filter does not apply


def details(store: ContainerStore, ref: str) -> ContainerDetails:
    """The facts ``inspect`` shows of container ``ref`` (name, id or unique id prefix)."""
    cfg = store.resolve(ref)
    cur = store.status(cfg.id)
    spec = cfg.spec or {}
    linux = spec.get("linux", {})
    paths = rootfs_paths(store, cfg.id)
    named = named_volume_of(store)
    mounts = tuple(
        MountPoint(type="volume" if os.path.dirname(m.get("source", "")) == paths.volumes or named(m)
                   else m.get("type", "bind"),
                   source=m.get("source", ""), destination=m.get("destination", ""),
                   options=tuple(m.get("options") or ()), rw="ro" not in (m.get("options") or []),
                   name=named(m))
        for m in spec.get("mounts", []) if (m.get("type") == "bind" or "bind" in (m.get("options") or []))
        and os.path.dirname(m.get("source", "")) != paths.etc     # /etc/hosts & co: not the user's mounts
    )
    own_uts = any(n.get("type") == "uts" for n in linux.get("namespaces", []))
    return ContainerDetails(
        config=cfg, state=cur, log_path=store.log_path(cfg.id), mounts=mounts,
        hostname=spec.get("hostname") or ("" if own_uts else os.uname().nodename),
        privileged="seccomp" not in linux and "maskedPaths" not in linux,
        seccomp=_seccomp_status(spec))


def _seccomp_status(spec: dict) -> str:
    """``default`` when the filter applies, ``unconfined`` (--privileged), or why not."""
    if not spec.get("linux", {}).get("seccomp"):
        return "unconfined"
    from . import seccomp

    return seccomp.status()
