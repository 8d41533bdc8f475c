"""Planning: what ``up``/``down`` will do to a :class:`compose.model.Project`, as pure functions.

- The dependency graph (``depends_on``) with its cycles refused (:class:`DependencyCycle` names the
  cycle ``a -> b -> a``), the services a command acts on (:func:`select`: the named ones and,
  unless ``no_deps``, everything they depend on), and the order: :func:`levels` groups services
  whose dependencies are all in earlier groups (``up`` walks them forwards, ``down`` backwards).
- Names as Docker Compose v2 gives them: containers ``<project>-<service>-<n>`` (or the service's
  ``container_name``), one-off containers ``<project>-<service>-run-<id>``, images built for a
  service without ``image:`` ``<project>-<service>``.
- The labels every container carries (``com.docker.compose.*``) and the configuration hash: the
  sha256 of a canonical serialisation (sorted-key JSON) of the normalised service, leaving out what
  does not change a container (``build``, ``pull_policy``, ``replicas``, ``depends_on``,
  ``profiles``, as compose-go's ``ServiceHash``) and with the image id put in, so a rebuilt or
  re-pulled image recreates the container too.

Nothing here touches the store or the kernel.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

from compose.errors import ComposeError
from compose.model import Project, Service
from layers.errors import InvalidInput, NotFound
from layers.value import frozen

__all__ = ["DependencyCycle", "NoSuchService", "ServicePlan", "LABEL_PROJECT", "LABEL_SERVICE", "LABEL_NUMBER",
           "LABEL_HASH", "LABEL_ONEOFF", "LABEL_WORKDIR", "LABEL_FILES", "LABEL_IMAGE", "LABEL_VERSION",
           "LABEL_DEPENDS", "check_cycles", "select", "levels", "up_order", "down_order", "dependents",
           "container_name", "oneoff_name", "image_name", "config_hash", "labels", "parse_scale",
           "replicas", "plan_services"]

LABEL_PROJECT = "com.docker.compose.project"
LABEL_SERVICE = "com.docker.compose.service"
LABEL_NUMBER = "com.docker.compose.container-number"
LABEL_HASH = "com.docker.compose.config-hash"
LABEL_ONEOFF = "com.docker.compose.oneoff"
LABEL_WORKDIR = "com.docker.compose.project.working_dir"
LABEL_FILES = "com.docker.compose.project.config_files"
LABEL_IMAGE = "com.docker.compose.image"
LABEL_VERSION = "com.docker.compose.version"
LABEL_DEPENDS = "com.docker.compose.depends_on"
VERSION = "pybuild-0.1.0"


class DependencyCycle(ComposeError, InvalidInput):
    """``depends_on`` goes round: the message names the cycle."""

    exit_code = 15


class NoSuchService(ComposeError, NotFound):
    """A service named on the command line is not in the project (or its profile is not active)."""


@frozen
class ServicePlan:
    """One service as ``up`` will converge it: how many replicas, the image to run, the config hash."""

    service: Service
    replicas: int
    image: str
    config_hash: str


def _graph(project: Project) -> dict[str, tuple[str, ...]]:
    return {s.name: tuple(d.service for d in s.depends_on) for s in project.services}


def check_cycles(project: Project) -> None:
    """Raise :class:`DependencyCycle` naming the first cycle found (``a -> b -> a``); a dependency
    on a service not in the project is an error naming both."""
    graph = _graph(project)
    for name, deps in graph.items():
        for dep in deps:
            if dep not in graph:
                raise NoSuchService(f"service {name!r} depends on undefined service {dep!r}")
    state: dict[str, int] = {}          # 1: on the path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        path.append(name)
        for dep in graph[name]:
            if state.get(dep) == 1:
                cycle = path[path.index(dep):] + [dep]
                raise DependencyCycle("dependency cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep, path)
        path.pop()
        state[name] = 2

    for name in graph:
        if name not in state:
            visit(name, [])


def select(project: Project, names=(), *, with_deps: bool = True) -> tuple[str, ...]:
    """The services a command acts on, in file order: all of them when ``names`` is empty, else the
    named ones plus (``with_deps``) everything they depend on, transitively."""
    check_cycles(project)
    known = set(project.service_names())
    for n in names:
        if n not in known:
            why = " (its profile is not active)" if n in project.disabled else ""
            raise NoSuchService(f"no such service: {n}{why}")
    if not names:
        return project.service_names()
    graph = _graph(project)
    wanted: set[str] = set()
    todo = list(names)
    while todo:
        n = todo.pop()
        if n in wanted:
            continue
        wanted.add(n)
        if with_deps:
            todo.extend(graph[n])
    return tuple(n for n in project.service_names() if n in wanted)


def levels(project: Project, names=None) -> list[tuple[str, ...]]:
    """``names`` (default: every service) in groups: each group's services depend only on services
    of earlier groups (or on services outside ``names``). Within a group, file order."""
    check_cycles(project)
    names = project.service_names() if names is None else tuple(names)
    graph = _graph(project)
    inside = set(names)
    placed: dict[str, int] = {}

    def level(n: str) -> int:
        if n not in placed:
            placed[n] = 1 + max((level(d) for d in graph[n] if d in inside), default=-1)
        return placed[n]

    out: dict[int, list[str]] = {}
    for n in names:
        out.setdefault(level(n), []).append(n)
    return [tuple(out[i]) for i in sorted(out)]


def up_order(project: Project, names=None) -> tuple[str, ...]:
    """Dependencies first."""
    return tuple(n for group in levels(project, names) for n in group)


def down_order(project: Project, names=None) -> tuple[str, ...]:
    """Dependants first (the reverse of :func:`up_order`)."""
    return tuple(reversed(up_order(project, names)))


def dependents(project: Project, name: str) -> tuple[str, ...]:
    """The services that depend on ``name`` directly."""
    return tuple(s.name for s in project.services if any(d.service == name for d in s.depends_on))


def container_name(project: Project | str, service: Service, number: int) -> str:
    """``<project>-<service>-<n>``, or the service's ``container_name``."""
    if service.container_name:
        return service.container_name
    pname = project if isinstance(project, str) else project.name
    return f"{pname}-{service.name}-{number}"


def oneoff_name(project: Project | str, service: str, token: str) -> str:
    pname = project if isinstance(project, str) else project.name
    return f"{pname}-{service}-run-{token[:12]}"


def image_name(project: Project | str, service: Service) -> str:
    """The image a service runs: its ``image:``, else the one ``build`` makes, ``<project>-<service>``."""
    if service.image:
        return service.image
    pname = project if isinstance(project, str) else project.name
    return f"{pname}-{service.name}"


_NOT_HASHED = ("build", "pull_policy", "replicas", "depends_on", "profiles")


def config_hash(service: Service, image_id: str = "") -> str:
    """sha256 hex of the service's canonical serialisation (see the module docstring)."""
    doc = dataclasses.asdict(service)
    for key in _NOT_HASHED:
        doc.pop(key, None)
    doc["__image_id"] = image_id
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def labels(project: Project, service: Service, number: int, chash: str, *, oneoff: bool = False,
           image_id: str = "") -> tuple[tuple[str, str], ...]:
    """The service's own labels, then the ``com.docker.compose.*`` ones (which win)."""
    deps = ",".join(f"{d.service}:{d.condition}:{str(d.restart).lower()}" for d in service.depends_on)
    own = {
        LABEL_PROJECT: project.name,
        LABEL_SERVICE: service.name,
        LABEL_NUMBER: str(number),
        LABEL_HASH: chash,
        LABEL_ONEOFF: "True" if oneoff else "False",
        LABEL_WORKDIR: project.working_dir,
        LABEL_FILES: ",".join(project.files),
        LABEL_VERSION: VERSION,
        LABEL_DEPENDS: deps,
    }
    if image_id:
        own[LABEL_IMAGE] = image_id
    return tuple((k, v) for k, v in service.labels if k not in own) + tuple(own.items())


def parse_scale(items, project: Project) -> dict[str, int]:
    """``--scale SERVICE=N`` values -> {service: N}; a bad spelling or unknown service is an error."""
    out: dict[str, int] = {}
    known = set(project.service_names())
    for item in items:
        name, sep, number = item.partition("=")
        if not sep or not number.strip().isdigit():
            raise InvalidInput(f"--scale {item!r}: expected SERVICE=NUMBER")
        if name not in known:
            raise NoSuchService(f"--scale {item}: no such service: {name}")
        out[name] = int(number)
    return out


def replicas(service: Service, scale: dict[str, int]) -> int:
    """How many containers ``up`` keeps for the service (``--scale`` over ``scale``/``deploy.replicas``);
    a fixed ``container_name`` allows one."""
    n = scale.get(service.name, service.replicas)
    if n > 1 and service.container_name:
        raise InvalidInput(f"service {service.name}: container_name {service.container_name!r} allows only "
                           f"one container, asked for {n}")
    return n


def plan_services(project: Project, names, scale: dict[str, int], image_ids: dict[str, str]) -> tuple[ServicePlan, ...]:
    """A :class:`ServicePlan` per service of ``names``, in :func:`up_order`; ``image_ids`` maps a
    service to the id of the image it runs (its part of the hash)."""
    out = []
    for n in up_order(project, names):
        svc = project.service(n)
        iid = image_ids.get(n, "")
        out.append(ServicePlan(svc, replicas(svc, scale), image_name(project, svc), config_hash(svc, iid)))
    return tuple(out)
