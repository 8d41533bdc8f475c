"""The small commands over a project's existing containers: ``start``, ``stop``, ``restart``, ``kill``,
``rm``, ``pause``, ``unpause``, ``top``, ``images``, ``port``. Each finds the containers by label
(:mod:`compose.apply.state`), acts through :mod:`runner.containers`, in dependency order where order
matters (start: dependencies first; stop: dependants first), and reports each container.
"""

from __future__ import annotations

from compose.model import Project
from compose.plan import levels, select
from layers.value import frozen

from .errors import NoSuchService, ServiceFailed
from .state import ProjectContainer, project_containers

__all__ = ["containers_of", "start", "stop", "restart", "kill", "remove", "pause", "unpause", "top",
           "images", "port", "ImageRow"]


def containers_of(engine, project: Project, services=(), *, oneoff: bool | None = False) -> list[ProjectContainer]:
    """The project's containers of ``services`` (all when empty); an unknown service is an error."""
    if services:
        select(project, services, with_deps=False)
    return project_containers(engine, project.name, services=tuple(services), oneoff=oneoff)


def _ordered(project: Project, containers, reverse: bool) -> list[list[ProjectContainer]]:
    groups = levels(project)
    if reverse:
        groups = list(reversed(groups))
    out = []
    for g in groups:
        part = [c for c in containers if c.service in g]
        if part:
            out.append(part)
    rest = [c for c in containers if not any(c in part for part in out)]
    return ([rest] if rest else []) + out if reverse else out + ([rest] if rest else [])


def _each(engine, groups, fn, verb: str, done: str) -> None:
    """``fn(container)`` for each, group after group, in parallel within a group; errors collected."""
    from concurrent.futures import ThreadPoolExecutor

    from layers.errors import PybuildError

    errors = []

    def one(c):
        engine.reporter.event("Container", c.name, verb)
        try:
            fn(c)
        except PybuildError as exc:
            errors.append(f"{c.name}: {exc}")
            return
        engine.reporter.event("Container", c.name, done)

    for group in groups:
        with ThreadPoolExecutor(max_workers=max(1, min(8, len(group))), thread_name_prefix="op") as pool:
            list(pool.map(one, group))
    if errors:
        raise ServiceFailed("; ".join(errors))


def start(engine, project: Project, services=()) -> None:
    from runner import containers as C

    cs = [c for c in containers_of(engine, project, services) if not c.live]
    _each(engine, _ordered(project, cs, False), lambda c: C.start(engine.containers(), c.id), "Starting", "Started")


def stop(engine, project: Project, services=(), timeout: int | None = None) -> None:
    from runner import containers as C

    cs = [c for c in containers_of(engine, project, services) if c.live or c.status == "restarting"]
    _each(engine, _ordered(project, cs, True), lambda c: C.stop(engine.containers(), c.id, timeout),
          "Stopping", "Stopped")


def restart(engine, project: Project, services=(), timeout: int | None = None) -> None:
    from runner import containers as C

    cs = containers_of(engine, project, services)
    _each(engine, _ordered(project, cs, False), lambda c: C.restart(engine.containers(), c.id, timeout),
          "Restarting", "Started")


def kill(engine, project: Project, services=(), signal: str = "SIGKILL") -> None:
    from runner import containers as C

    C.parse_signal(signal)
    cs = [c for c in containers_of(engine, project, services) if c.live]
    _each(engine, [cs], lambda c: C.kill(engine.containers(), c.id, signal), "Killing", "Killed")


def remove(engine, project: Project, services=(), *, stop_first: bool = False, volumes: bool = False) -> list[str]:
    """``rm``: stopped containers (with ``stop_first``, running ones are stopped first); returns names."""
    from runner import containers as C

    cs = containers_of(engine, project, services)
    if not stop_first:
        cs = [c for c in cs if not (c.live or c.status == "restarting")]

    def rm(c):
        store = engine.containers()
        if c.live:
            C.stop(store, c.id)
        C.remove(store, c.id, force=True, volumes=volumes)

    _each(engine, _ordered(project, cs, True), rm, "Removing", "Removed")
    return [c.name for c in cs]


def pause(engine, project: Project, services=()) -> None:
    from runner import containers as C

    cs = [c for c in containers_of(engine, project, services) if c.status == "running"]
    _each(engine, [cs], lambda c: C.pause(engine.containers(), c.id), "Pausing", "Paused")


def unpause(engine, project: Project, services=()) -> None:
    from runner import containers as C

    cs = [c for c in containers_of(engine, project, services) if c.status == "paused"]
    _each(engine, [cs], lambda c: C.unpause(engine.containers(), c.id), "Unpausing", "Unpaused")


def top(engine, project: Project, services=()) -> list[tuple[str, list]]:
    """``(container name, processes)`` of each running container."""
    from runner import containers as C

    return [(c.name, C.top(engine.containers(), c.id)) for c in containers_of(engine, project, services) if c.live]


@frozen
class ImageRow:
    container: str
    repository: str
    tag: str
    image_id: str
    size: int


def images(engine, project: Project, services=()) -> list[ImageRow]:
    """The image of each container of the project."""
    from layers.errors import NotFound
    from layers.reference import Reference

    out = []
    store = engine.images()
    for c in containers_of(engine, project, services):
        ref_text = c.info.config.image
        try:
            ref = Reference.parse(ref_text)
            repo, tag = ref.familiar.rsplit(":", 1) if ":" in ref.familiar.rsplit("/", 1)[-1] else (ref.familiar, "latest")
        except Exception:                   # noqa: BLE001 - an id, not a name: shown as is
            repo, tag = ref_text, ""
        size = 0
        try:
            record = store.images.resolve(ref_text)
            image = store.images.load(record)
            size = sum(layer.size for layer in getattr(getattr(image, "manifest", None), "layers", ()))
            iid = str(record.id)
        except NotFound:
            iid = c.info.config.image_id
        out.append(ImageRow(c.name, repo, tag, iid, size))
    return out


def port(engine, project: Project, service: str, private_port: int, protocol: str = "tcp", index: int = 1) -> str:
    """``HOST_IP:PORT`` the service's container ``index`` publishes ``private_port/protocol`` on."""
    store = engine.containers()
    cs = [c for c in containers_of(engine, project, (service,)) if c.number == index]
    if not cs:
        raise NoSuchService(f"service {service} has no container number {index}")
    cfg = store.resolve(cs[0].id)
    if not store.status(cfg.id).live:
        raise ServiceFailed(f"container {cfg.name} is not running", service)
    for p in cfg.ports:
        if p.container_port == private_port and p.protocol == protocol:
            return f"{p.host_ip}:{p.host_port}"
    raise ServiceFailed(f"no port {private_port}/{protocol} published for {cfg.name}", service)
