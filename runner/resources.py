"""What a container holds outside its record, taken and given back in one place.

A container holds, while it runs: its network attachment (``runner.network``, or the ``/etc`` files
of ``--network none``), its overlay root filesystem mounted at ``<container>/rootfs``, its volumes
(anonymous ones under ``<container>/volumes``, seeded named ones) and its cgroup. The shim, the
foreground ``run`` (:mod:`runner.foreground`) and the lifecycle operations (``start``, ``rm``, the
reaper of killed supervisors) all take and release them through these functions:

* :func:`setup_network` before a start (records the attachment in the config);
* :func:`mount_rootfs` just before the sandbox starts: overlay mount + volumes, all or nothing;
* :func:`release_resources` after the exit: network teardown + overlay unmount, idempotent;
* :func:`cleanup_cgroup` when a supervisor died: kill what is left in the cgroup and remove it.

This module is imported by the shim, which lives as long as its container: it imports only the
state store and the stdlib at module level; the network, overlay, volume and cgroup code is loaded
where it is used.
"""

from __future__ import annotations

import os
from dataclasses import replace

from layers.value import frozen

TYPE_CHECKING = False                   # ps imports this module (reap_abandoned): no OCI spec classes
if TYPE_CHECKING:
    from .ocispec import Mount
from .records import ContainerConfig
from .state import ContainerStore

__all__ = ["ContainerPaths", "rootfs_paths", "named_volume_of", "volume_users", "prepare_volumes", "mount_rootfs",
           "release_resources", "cleanup_cgroup", "setup_network"]


@frozen(slots=True)
class ContainerPaths:
    """Where a container's files live, all under its record's directory."""

    upper: str                  # the overlay's upper dir (the container's writes)
    work: str                   # overlayfs's work dir
    rootfs: str                 # the overlay's mount point: the container's root
    etc: str                    # /etc/hosts, /etc/hostname, /etc/resolv.conf bound into it
    volumes: str                # its anonymous volumes


def rootfs_paths(store: ContainerStore, cid: str) -> ContainerPaths:
    """Where container ``cid``'s overlay, network files and anonymous volumes live."""
    d = store.dir(cid)
    return ContainerPaths(*(os.path.join(d, k) for k in ("upper", "work", "rootfs", "etc", "volumes")))


def named_volume_of(store: ContainerStore):
    """``mount -> name`` of the named volume a spec mount binds ("" for anything else)."""
    base = os.path.join(store.root, "volumes")

    def name(m: Mount) -> str:
        src = m.source or ""
        if m.type == "bind" and os.path.basename(src) == "_data" and \
                os.path.dirname(os.path.dirname(src)) == base:
            return os.path.basename(os.path.dirname(src))
        return ""
    return name


def volume_users(store: ContainerStore, name: str) -> list[str]:
    """Names of the containers (in any state) whose spec mounts named volume ``name``."""
    named = named_volume_of(store)
    return sorted(c.name for c in store.configs() if any(named(m) == name for m in c.spec.mounts))


def prepare_volumes(store: ContainerStore, cfg: ContainerConfig) -> None:
    """Create the container's anonymous volumes (the image's ``Volumes``) that do not exist yet,
    seeded from the image, and seed the named volumes it mounts that are new and empty; the overlay
    rootfs must be mounted. An anonymous volume appears under its name only once complete (seeded in
    ``<n>.new``, then renamed), so a start killed half-way seeds it again."""
    from .rootfs import seed_volume

    base = rootfs_paths(store, cfg.id).volumes
    named = named_volume_of(store)
    rootfs = cfg.spec.root.path
    for m in cfg.spec.mounts:
        if named(m):
            from .volumes import VolumeStore

            VolumeStore(store.root).seed_once(named(m), lambda d, m=m: seed_volume(rootfs, m.destination, d))
    mounts = [m for m in cfg.spec.mounts if m.type == "bind" and os.path.dirname(m.source or "") == base]
    if not mounts:
        return
    os.makedirs(base, mode=0o700, exist_ok=True)
    for m in mounts:
        if os.path.isdir(m.source):
            continue
        tmp = m.source + ".new"
        if os.path.lexists(tmp):
            from layers.fstree import remove_tree

            remove_tree(tmp)
        os.mkdir(tmp, 0o755)
        seed_volume(rootfs, m.destination, tmp)
        os.rename(tmp, m.source)


def mount_rootfs(store: ContainerStore, cfg: ContainerConfig):
    """Mount the container's overlay root (unless it is mounted already) and prepare its volumes.

    Returns the :class:`runner.rootfs.OverlayMount` this call mounted, for the caller to unmount
    after the exit, or None when the root was mounted before. On failure nothing this call mounted
    stays mounted."""
    from .rootfs import OverlayMount

    paths = rootfs_paths(store, cfg.id)
    overlay = None
    if not os.path.ismount(paths.rootfs):
        # a --rm container's upper dir goes with it: not synced on unmount (volatile), as Podman does
        overlay = OverlayMount(list(cfg.lowerdirs), paths.upper, paths.work, paths.rootfs,
                               volatile=cfg.auto_remove)
        overlay.mount()
    try:
        _mount_shareable_shm(store, cfg)
        prepare_volumes(store, cfg)
    except BaseException:
        if overlay is not None:
            overlay.unmount()
        raise
    return overlay


def _mount_shareable_shm(store: ContainerStore, cfg: ContainerConfig) -> None:
    """``--ipc shareable``: the container's /dev/shm tmpfs, mounted on the host side (unless it is)."""
    options = cfg.spec.annotation(SHM_OPTIONS, "")
    target = shm_path(store, cfg.id)
    if not options or os.path.ismount(target):
        return
    from . import syscalls as sc

    names = {"nosuid": sc.MS_NOSUID, "nodev": sc.MS_NODEV, "noexec": sc.MS_NOEXEC}
    flags = sum(names[o] for o in options.split(",") if o in names)
    os.makedirs(target, mode=0o700, exist_ok=True)
    sc.mount("shm", target, "tmpfs", flags, ",".join(o for o in options.split(",") if o not in names))


def release_resources(store: ContainerStore, cfg: ContainerConfig) -> None:
    """Free what a container holds outside its record: network attachment, overlay mount. Idempotent."""
    if cfg.launcher == "host":
        return
    if cfg.network_mode not in ("host", "none"):
        from . import network

        network.teardown(root=store.root, state_dir=store.state_dir, container_id=cfg.id)
    rootfs = rootfs_paths(store, cfg.id).rootfs
    for path in (rootfs, shm_path(store, cfg.id)):
        if os.path.ismount(path):
            from .syscalls import MNT_DETACH, umount2

            umount2(path, MNT_DETACH)


def cleanup_cgroup(store: ContainerStore, cfg: ContainerConfig) -> None:
    """Kill what is left in the container's cgroup and remove it (``sandbox.cleanup`` without
    importing the sandbox)."""
    if cfg.launcher == "host":
        return
    from . import cgroups

    cg = cgroups.open_existing(cfg.id)
    if cg is not None:
        cg.kill_all()
        cg.destroy()


#: the spec annotation of ``--pid container:X``: the id of the container whose PID namespace is joined
PID_CONTAINER = "org.pybuild.pidContainer"
#: ``--ipc container:X``: the id of the container whose IPC namespace (and /dev/shm) is joined
IPC_CONTAINER = "org.pybuild.ipcContainer"
#: ``--ipc shareable``: the tmpfs options of the /dev/shm kept on the host side (``<container>/shm``) so
#: that another container can join it, as Docker's shareable IPC
SHM_OPTIONS = "org.pybuild.shmOptions"


def shm_path(store: ContainerStore, cid: str) -> str:
    """The host-side /dev/shm mount point of a ``--ipc shareable`` container."""
    return os.path.join(store.dir(cid), "shm")


def _joined(store: ContainerStore, cfg: ContainerConfig, annotation: str, flag: str) -> tuple[ContainerConfig, int]:
    from .errors import StateConflict

    other = store.resolve(cfg.spec.annotation(annotation))
    cur = store.status(other.id)
    if not cur.live or cur.pid <= 0:
        raise StateConflict(f"{flag} container:{other.name}: that container is not running", container=other.name,
                            current=cur.status)
    return other, cur.pid


def join_namespaces(store: ContainerStore, cfg: ContainerConfig) -> ContainerConfig:
    """Before a start: ``--pid container:X`` points the spec's PID namespace at X's (it must be running),
    as Docker joins it at each start."""
    paths: dict[str, str] = {}
    if cfg.spec.annotation(PID_CONTAINER, ""):
        paths["pid"] = f"/proc/{_joined(store, cfg, PID_CONTAINER, '--pid')[1]}/ns/pid"
    if cfg.spec.annotation(IPC_CONTAINER, ""):
        other, pid = _joined(store, cfg, IPC_CONTAINER, "--ipc")
        if not os.path.ismount(shm_path(store, other.id)):
            from .errors import StateConflict

            raise StateConflict(f"--ipc container:{other.name}: its /dev/shm is not mounted", container=other.name)
        paths["ipc"] = f"/proc/{pid}/ns/ipc"
    if not paths:
        return cfg
    from .ocispec import Namespace

    ns = tuple(Namespace(n.type, paths[n.type]) if n.type in paths else n for n in cfg.spec.linux.namespaces)
    return store.update_config(replace(cfg, spec=replace(cfg.spec, linux=replace(cfg.spec.linux, namespaces=ns))))


def setup_network(store: ContainerStore, cfg: ContainerConfig) -> ContainerConfig:
    """Attach the container to its network before a start; record the attachment and the netns in the spec."""
    mode = cfg.network_mode
    if cfg.launcher == "host" or mode == "host":
        return cfg
    if mode == "none":
        # nothing on the host side: the sandbox makes a fresh namespace with only loopback, and it
        # goes away with the container; only the /etc files are needed
        _write_loopback_etc(rootfs_paths(store, cfg.id).etc, cfg.spec.hostname or cfg.id[:12])
        return cfg
    from . import network

    att = network.setup(root=store.root, state_dir=store.state_dir, container_id=cfg.id,
                        etc_dir=rootfs_paths(store, cfg.id).etc, mode=mode, name=cfg.name,
                        hostname=cfg.spec.hostname, **_dns_settings(cfg.spec))
    spec = cfg.spec
    if mode.startswith("container:") and att.hostname:
        # Docker: a container in another's network namespace takes its hostname too (UTS, $HOSTNAME)
        own = f"HOSTNAME={spec.hostname or ''}"        # the default, not a -e HOSTNAME=...
        env = tuple(f"HOSTNAME={att.hostname}" if e == own else e for e in spec.process.env)
        spec = replace(spec, hostname=att.hostname, process=replace(spec.process, env=env))
    ns = [n for n in spec.linux.namespaces if n.type != "network"]
    entry = att.spec_namespace()
    if entry is not None:
        ns.insert(1, entry)
    spec = replace(spec, linux=replace(spec.linux, namespaces=tuple(ns)))
    net = replace(att, mode=mode)           # the record keeps the mode asked for, not the kind set up
    cfg = store.update_config(replace(cfg, spec=spec, network=net))
    if cfg.extra_networks:
        from .netconnect import attach_extras

        cfg = attach_extras(store, cfg)
    return cfg


def _dns_settings(spec) -> dict:
    """``--dns*``, ``--add-host`` and ``--network-alias`` as :func:`runner.spec.make_spec` recorded them."""
    def values(key: str) -> tuple[str, ...]:
        text = spec.annotation(f"org.pybuild.{key}", "")
        return tuple(text.split("\n")) if text else ()

    out: dict = {name: values(key) for name, key in (("aliases", "aliases"), ("extra_hosts", "extraHosts"),
                                                     ("dns", "dns"), ("dns_search", "dnsSearch"),
                                                     ("dns_options", "dnsOptions")) if values(key)}
    if spec.annotation("org.pybuild.ip"):
        out["ip"] = spec.annotation("org.pybuild.ip")
    return out


def _write_loopback_etc(etc_dir: str, hostname: str) -> None:
    """``/etc/hosts``, ``hostname`` and ``resolv.conf`` for ``--network none``: localhost only and no
    name server (none is reachable from a namespace with only loopback). Written here rather than
    with ``runner.network.files``, whose package costs a foreground run ~20 ms to import. Not
    fsynced: every start writes them again."""
    from layers.atomic import write_atomic

    from .hosts import LOCALHOST_LINES

    os.makedirs(etc_dir, mode=0o755, exist_ok=True)
    for name, text in (("hostname", hostname + "\n"), ("hosts", LOCALHOST_LINES),
                       ("resolv.conf", "# --network none: loopback only, no name servers\n")):
        write_atomic(os.path.join(etc_dir, name), text.encode(), 0o644, durable=False)
