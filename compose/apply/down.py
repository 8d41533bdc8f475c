"""``down``: stop and remove a project's containers in reverse dependency order (a group of services
that do not depend on one another is stopped at once), then its networks, and with ``volumes`` its
named volumes (and the anonymous ones its containers made); ``rmi`` removes images too.

Works from the containers' labels, so a project whose file changed since ``up`` (or services no
longer in it, with ``remove_orphans``) is still taken down completely.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from compose.model import Project
from compose.plan import LABEL_PROJECT, image_name, levels
from layers.value import frozen

from .errors import ServiceFailed
from .runopts import anonymous_volume
from .state import ProjectContainer, project_containers
from .up import orphans, remove_container

__all__ = ["DownOptions", "down", "stop_in_order"]


@frozen
class DownOptions:
    """``volumes`` (``-v``), ``rmi`` ("", "local" or "all"), ``remove_orphans``, ``timeout`` (``-t``)."""

    volumes: bool = False
    rmi: str = ""
    remove_orphans: bool = False
    timeout: int | None = None


def _groups(project: Project, containers) -> list[list[ProjectContainer]]:
    """Containers grouped for stopping: dependants first, then what they depend on; services not
    in the model (orphans, one-offs) go in the first group."""
    known = set(project.service_names())
    order = list(reversed(levels(project)))
    first = [c for c in containers if c.service not in known or c.oneoff]
    groups = [first] if first else []
    for level in order:
        group = [c for c in containers if c.service in level and not c.oneoff]
        if group:
            groups.append(group)
    return groups


def stop_in_order(engine, project: Project, containers, fn) -> list[str]:
    """Apply ``fn`` to each container, group by group (:func:`_groups`), in parallel within a group;
    return the error messages."""
    errors: list[str] = []

    def one(c):
        try:
            fn(c)
        except Exception as exc:            # noqa: BLE001 - reported with the container's name, others go on
            from layers.errors import PybuildError

            if not isinstance(exc, (PybuildError, OSError)):
                raise
            errors.append(f"{c.name}: {exc}")

    for group in _groups(project, containers):
        with ThreadPoolExecutor(max_workers=max(1, min(8, len(group))), thread_name_prefix="down") as pool:
            list(pool.map(one, group))
    return errors


def down(engine, project: Project, opts: DownOptions = DownOptions()) -> None:
    """Take the project down; raise :class:`ServiceFailed` listing what could not be removed."""
    from runner import network as rn
    from runner.containers import volume_users
    from runner.volumes import VolumeStore

    if opts.rmi not in ("", "local", "all"):
        raise ServiceFailed(f"--rmi {opts.rmi!r}: expected local or all")
    everything = project_containers(engine, project.name, oneoff=None)
    stray = orphans(project, [c for c in everything if not c.oneoff])
    if stray and not opts.remove_orphans:
        engine.reporter.note(f"Found orphan containers ({', '.join(c.name for c in stray)}) for this project. "
                             "Run down with --remove-orphans to remove them.")
    stray_ids = {c.id for c in stray}
    gone = [c for c in everything if c.id not in stray_ids or opts.remove_orphans]
    anon = {anonymous_volume(c.name, m.target) for c in gone for s in project.services if s.name == c.service
            for m in s.volumes if m.type == "volume" and not m.source}
    errors = stop_in_order(engine, project, gone,
                           lambda c: remove_container(engine, c, opts.timeout, volumes=opts.volumes))
    existing = {n.name for n in rn.list_networks(engine.root)}
    for net in project.networks:
        if net.external or net.real_name not in existing:
            continue
        engine.reporter.event("Network", net.real_name, "Removing")
        try:
            rn.remove_network(engine.root, net.real_name)
        except rn.NetworkInUse as exc:
            errors.append(f"network {net.real_name}: {exc}")
            continue
        engine.reporter.event("Network", net.real_name, "Removed")
    if opts.volumes:
        vols = VolumeStore(engine.root)
        names = set(vols.names())
        mine = {v.real_name for v in project.volumes if not v.external} | anon
        mine |= {v.name for v in vols.list() if dict(v.labels).get(LABEL_PROJECT) == project.name}
        for name in sorted(mine & names):
            engine.reporter.event("Volume", name, "Removing")
            try:
                vols.remove(name, lambda: volume_users(engine.containers(), name))
            except Exception as exc:       # noqa: BLE001 - a volume in use by another container stays
                from layers.errors import PybuildError

                if not isinstance(exc, (PybuildError, OSError)):
                    raise
                errors.append(f"volume {name}: {exc}")
                continue
            engine.reporter.event("Volume", name, "Removed")
    if opts.rmi:
        errors += _remove_images(engine, project, opts.rmi)
    if errors:
        raise ServiceFailed("down: " + "; ".join(errors))


def _remove_images(engine, project: Project, which: str) -> list[str]:
    """``--rmi local``: the images built for services without ``image:``; ``all``: every service image."""
    from layers.store.removal import remove_images

    refs = sorted({image_name(project, s) for s in project.services
                   if which == "all" or (s.build is not None and not s.image)})
    result = remove_images(engine.images(), refs)
    for r in result.removed:
        engine.reporter.event("Image", r.text, "Removed")
    from layers.errors import NotFound

    return [f"image {f.text}: {f.error}" for f in result.failed if not isinstance(f.error, NotFound)]
