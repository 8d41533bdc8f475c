"""Containers from images: ``pybuild create`` and ``pybuild run -d`` (create, then start under a shim).

:func:`create_from_image` resolves the image in the image store, builds the runtime spec from its
config and the run options (:func:`runner.spec.make_spec`), and records the container in state
``created``; the record registers the image's manifest digest as a store root, so GC keeps the image.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import replace

from layers.errors import InvalidInput, PybuildError
from layers.store.location import opaque_xattr

from .lifecycle import create, remove, start
from .ocispec import Mount
from .records import ContainerConfig, ContainerInfo, NetworkAttachment, new_id, validate_name
from .resources import IPC_CONTAINER, PID_CONTAINER, SHM_OPTIONS, rootfs_paths, shm_path
from .state import ContainerStore

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .netrecords import ExtraNetwork, PublishedPort

__all__ = ["create_from_image", "run_detached", "random_name"]

_ADJECTIVES = ("brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry",
               "nifty", "proud", "quirky", "sharp", "tender", "vivid", "witty", "zealous")
_NOUNS = ("babbage", "curie", "darwin", "euler", "fermat", "gauss", "hopper", "knuth", "lovelace",
          "meitner", "noether", "pascal", "ritchie", "shannon", "thompson", "turing", "wozniak")


def _pick(words: tuple[str, ...]) -> str:
    """A word drawn with ``os.urandom`` (as ``secrets.choice`` does, without importing ``secrets``,
    ``random`` and ``hmac`` at every ``run``; the modulo bias over 2**32 is nil for a name)."""
    return words[int.from_bytes(os.urandom(4), "little") % len(words)]


def random_name(store: ContainerStore) -> str:
    """A free ``adjective_noun`` name, as Docker picks."""
    taken = {c.name for c in store.configs()}
    for i in range(100):
        name = f"{_pick(_ADJECTIVES)}_{_pick(_NOUNS)}" + (str(i) if i > 10 else "")
        if name not in taken:
            return name
    return "ctr_" + os.urandom(4).hex()


def create_from_image(store: ContainerStore, images, image_ref: str, opts,
                      *, log_max_size: int | None = None, log_max_files: int | None = None,
                      supervisor: int | None = None) -> ContainerConfig:
    """Resolve ``image_ref`` in the image store ``images`` (a ``layers.store.Store``), build the runtime
    spec from the image config and ``opts`` (a ``runner.options.RunOptions``), and record the container
    in state ``created``. The record registers the image as a store root (``roots/containers/<id>``), so GC keeps it.
    ``supervisor``: see :meth:`runner.state.ContainerStore.create` (a foreground run passes its pid)."""
    lease = getattr(images, "lease", None)  # GC keeps the image from the lookup until its root exists
    with lease() if lease is not None else contextlib.nullcontext():
        return _create_from_image(store, images, image_ref, opts, log_max_size, log_max_files, supervisor)


def _create_from_image(store: ContainerStore, images, image_ref: str, opts, log_max_size, log_max_files,
                       supervisor=None):
    from .platforms import load_image
    from .spec import make_spec

    record = images.images.resolve(image_ref)
    image = load_image(images.images, record, opts.platform)
    lowerdirs = tuple(str(p) for p in images.snapshots.lowerdirs(image))
    cid = new_id()
    name = opts.name or random_name(store)
    validate_name(name)
    paths = rootfs_paths(store, cid)
    etc_dir = passwd_dir(lowerdirs)
    image_config = getattr(image, "config", image)
    if any(b.volume for b in opts.mounts):        # named volumes: made now if missing, as Docker does
        from .volumes import VolumeStore

        vols = VolumeStore(store.root)
        opts = replace(opts, mounts=tuple(replace(b, source=vols.create(b.volume, exist_ok=True).path)
                                          if b.volume else b for b in opts.mounts))
    spec = make_spec(image_config, opts, rootfs=paths.rootfs, etc_dir=etc_dir, container_id=cid,
                     volume_dir=paths.volumes)
    if opts.pid_mode.startswith("container:"):   # joined at each start (runner.resources.join_namespaces)
        spec = spec.with_annotation(PID_CONTAINER, store.resolve(opts.pid_mode.partition(":")[2]).id)
    spec = _shared_ipc(store, spec, opts.ipc_mode, cid)
    if opts.init:
        spec = spec.with_annotation("org.pybuild.init", "true")
    stop_signal = spec.annotation("org.opencontainers.image.stopSignal", "SIGTERM")
    ports = _published_ports(opts, image_config)
    network_mode = opts.network or "bridge"
    if network_mode.startswith("container:") and opts.hostname:
        raise InvalidInput(f"--hostname: conflicts with --network {network_mode} (the container takes "
                           "the hostname of the one whose network it joins)")
    if network_mode != "host":
        # /etc/hosts, /etc/hostname and /etc/resolv.conf come from runner.network at start
        spec = spec.with_mounts(*(Mount(f"/etc/{f}", "bind", os.path.join(paths.etc, f), ("rbind", "rprivate"))
                                  for f in ("hosts", "hostname", "resolv.conf")))
    manifest = getattr(image, "manifest", None)
    manifest_digest = str(getattr(manifest, "digest", None) or getattr(record, "manifest_digest", None)
                          or getattr(record, "digest", ""))
    cfg = ContainerConfig(
        id=cid, name=name, image=image_ref, image_id=manifest_digest, spec=spec, created=time.time(),
        restart_policy=opts.restart or "no", auto_remove=bool(opts.rm), init=bool(opts.init),
        stop_signal=stop_signal, tty=bool(opts.tty), ports=ports,
        network=NetworkAttachment(mode=network_mode),
        extra_networks=_extra_networks(store, opts),
        labels=dict(opts.labels),
        log_max_size=log_max_size or getattr(opts, "log_max_size", None) or ContainerConfig.log_max_size,
        log_max_files=log_max_files or getattr(opts, "log_max_files", None) or ContainerConfig.log_max_files,
        stop_timeout=ContainerConfig.stop_timeout if getattr(opts, "stop_timeout", None) is None else opts.stop_timeout,
        lowerdirs=lowerdirs,
        healthcheck=_healthcheck(image_config, opts),
    )
    return create(store, cfg, supervisor=supervisor)


def _extra_networks(store, opts) -> tuple[ExtraNetwork, ...]:
    """``--network`` given again: the further networks, each checked to exist (joined at start)."""
    reqs = getattr(opts, "extra_networks", ())
    if not reqs:
        return ()
    from .netrecords import ExtraNetwork
    from .network import config as netconfig
    from .network.multi import resolve_name

    out = []
    for req in reqs:
        name = resolve_name(req.name)
        netconfig.load(store.root, name)            # NetworkNotFound names it
        out.append(ExtraNetwork(name, tuple(req.aliases), req.ip))
    return tuple(out)


def _healthcheck(image_config, opts):
    """The image's HEALTHCHECK merged with ``--health-*`` (:func:`runner.options.container_healthcheck`)."""
    from .options import HealthOptions, container_healthcheck
    from .spec import image_runtime_config

    section = image_runtime_config(image_config)
    return container_healthcheck(section.get("Healthcheck"), section.get("Shell"),
                                 getattr(opts, "health", None) or HealthOptions())


def _published_ports(opts, image_config) -> tuple[PublishedPort, ...]:
    """``-p`` mappings, then with ``-P`` one for each port the image exposes (host port: any free one)."""
    if not getattr(opts, "publish", ()) and not getattr(opts, "publish_all", False):
        return ()
    from .netrecords import PublishedPort

    out = [PublishedPort(p.container_port, p.protocol, p.host_ip or "0.0.0.0", p.host_port,
                         getattr(p, "host_port_end", 0)) for p in getattr(opts, "publish", ())]
    if getattr(opts, "publish_all", False):
        from .network import publish_all
        from .spec import image_runtime_config

        exposed = dict(image_runtime_config(image_config).get("ExposedPorts") or {})
        exposed.update({port: {} for port in getattr(opts, "expose", ())})     # --expose
        out += publish_all(exposed)
    return tuple(out)


def passwd_dir(lowerdirs) -> str | None:
    """The ``etc`` directory whose ``passwd`` the container sees: the topmost layer (lowerdirs are
    top first, in overlay form) with an entry for ``etc/passwd`` decides; a regular file there is it,
    anything else (a whiteout: the file was deleted) means there is none. An opaque ``etc`` hides the
    layers below it."""
    import stat

    for d in lowerdirs:
        etc = os.path.join(d, "etc")
        try:
            mode = os.lstat(os.path.join(etc, "passwd")).st_mode
        except (FileNotFoundError, NotADirectoryError):
            if _opaque(etc):
                return None
            continue
        return etc if stat.S_ISREG(mode) else None
    return None


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, opaque_xattr(), follow_symlinks=False) == b"y"
    except OSError:
        return False


def run_detached(store: ContainerStore, images, image_ref: str, opts, *, shim=None) -> ContainerInfo:
    """``pybuild run -d``: create, then start under a shim (``shim``: one already started, see
    :func:`start`); on a failed start the container stays ``exited`` with the error recorded
    (``--rm``: it is removed), and the error is raised."""
    cfg = create_from_image(store, images, image_ref, opts)
    try:
        return start(store, cfg.id, shim=shim)
    except PybuildError:
        if cfg.auto_remove:
            try:
                remove(store, cfg.id, force=True)
            except PybuildError:
                pass          # the start error is what the user needs to see
        raise


def _shared_ipc(store: ContainerStore, spec, ipc_mode: str, cid: str):
    """``--ipc shareable``: /dev/shm is a tmpfs on the host side (``<container>/shm``, mounted at each
    start) bound in; ``--ipc container:X``: X's (X must be shareable, as Docker requires), its IPC
    namespace joined at each start."""
    if ipc_mode == "shareable":
        shm = next(m for m in spec.mounts if m.destination == "/dev/shm")
        spec = spec.with_annotation(SHM_OPTIONS, ",".join(shm.options))
        source = shm_path(store, cid)
    elif ipc_mode.startswith("container:"):
        other = store.resolve(ipc_mode.partition(":")[2])
        if not other.spec.annotation(SHM_OPTIONS, ""):
            raise InvalidInput(f"--ipc {ipc_mode}: {other.name}'s IPC is not shareable (create it with "
                               "--ipc shareable)")
        spec = spec.with_annotation(IPC_CONTAINER, other.id)
        source = shm_path(store, other.id)
    else:
        return spec
    mounts = tuple(Mount("/dev/shm", "bind", source, ("rbind", "rw")) if m.destination == "/dev/shm" else m
                   for m in spec.mounts)
    return replace(spec, mounts=mounts)
