"""What ``inspect`` shows of a container, as typed facts: :func:`details` returns a
:class:`ContainerDetails` (its config and reconciled state, plus what only the runner knows: the
user's mounts as volumes or binds, its host name, its log file, its seccomp status). The Docker
shaped document is built from it on the CLI side (``pybuild.views.containers``)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .ocispec import Spec
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
    spec = cfg.spec
    linux = spec.linux
    paths = rootfs_paths(store, cfg.id)
    named = named_volume_of(store)
    mounts = tuple(
        MountPoint(type="volume" if os.path.dirname(m.source or "") == paths.volumes or named(m)
                   else m.type or "bind",
                   source=m.source or "", destination=m.destination, options=m.options, rw="ro" not in m.options,
                   name=named(m))
        for m in spec.mounts if (m.type == "bind" or "bind" in m.options)
        and os.path.dirname(m.source or "") != paths.etc     # /etc/hosts & co: not the user's mounts
    )
    own_uts = any(n.type == "uts" for n in linux.namespaces)
    return ContainerDetails(
        config=cfg, state=cur, log_path=store.log_path(cfg.id), mounts=mounts,
        hostname=spec.hostname or ("" if own_uts else os.uname().nodename),
        privileged=linux.seccomp is None and not linux.masked_paths,
        seccomp=_seccomp_status(spec))


def _seccomp_status(spec: Spec) -> str:
    """``default`` when the filter applies, ``unconfined`` (--privileged), or why not."""
    if spec.linux.seccomp is None:
        return "unconfined"
    from . import seccomp

    return seccomp.status()
