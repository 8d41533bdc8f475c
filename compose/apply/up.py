"""``up``: converge a project's containers to its model, in dependency order.

1. Images: built or pulled as :mod:`compose.apply.images` says (before anything is created).
2. Networks and named volumes of the project: created when missing (external ones must exist).
3. One thread per service. A service's thread waits for each dependency's thread to finish and
   then for the dependency's condition: ``service_started`` (its containers run),
   ``service_healthy`` (their health check passed; unhealthy or exited fails), or
   ``service_completed_successfully`` (they exited 0; another exit code fails). Services with no
   dependency between them start at the same time.
4. Converge each service: a container whose ``config-hash`` label matches the plan is kept (started
   if stopped); a changed one (or every one with ``force_recreate``) is stopped, removed and made
   again under the same name; replicas beyond the scale are removed. A service whose dependency was
   recreated is restarted when its ``depends_on`` says ``restart: true``.
5. ``wait``: return once every container runs (and is healthy, if it has a check); a container that
   exited (other than a one-shot whose dependants wait for its completion) or turned unhealthy is a
   :class:`ServiceFailed` naming its service.

A failing service does not stop the others; its dependants fail with it; the first failure is raised
at the end.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from compose.errors import ComposeError
from compose.model import Project, Service
from compose.plan import ServicePlan, container_name, labels, parse_scale, plan_services, select
from layers.errors import PybuildError
from layers.value import frozen

from .errors import ServiceFailed, Unsupported
from .images import ensure_images
from .runopts import ContainerRequest, run_options
from .state import ProjectContainer, by_service, project_containers

__all__ = ["UpOptions", "UpResult", "up", "ensure_networks", "ensure_volumes", "wait_condition",
           "remove_container", "orphans"]

_POLL = 0.05


@frozen
class UpOptions:
    """``up``'s flags. ``build``: None (build missing images), True (``--build``), False (``--no-build``);
    ``pull``: None, "always", "missing" or "never"; ``scale``: ``SERVICE=N`` strings; ``timeout``:
    seconds to stop a container being replaced; ``wait_timeout``: None waits as long as it takes."""

    services: tuple[str, ...] = ()
    no_deps: bool = False
    build: bool | None = None
    pull: str | None = None
    no_cache: bool = False
    force_recreate: bool = False
    remove_orphans: bool = False
    scale: tuple[str, ...] = ()
    wait: bool = False
    wait_timeout: float | None = None
    timeout: int | None = None


@frozen
class UpResult:
    """The containers of each service after ``up`` (names in number order) and the services recreated."""

    containers: tuple[tuple[str, tuple[str, ...]], ...]
    recreated: tuple[str, ...] = ()
    started_at: float = 0.0

    def names(self) -> tuple[str, ...]:
        return tuple(n for _, names in self.containers for n in names)


def ensure_networks(engine, project: Project, services) -> None:
    """Create the project networks the ``services`` use (external ones must exist)."""
    from runner import network as rn

    used = {sn.name for n in services for sn in project.service(n).networks}
    existing = {n.name for n in rn.list_networks(engine.root)}
    for net in project.networks:
        if net.name not in used or net.real_name in existing:
            continue
        if net.external:
            raise ServiceFailed(f"network {net.real_name} declared as external, but could not be found")
        if net.driver not in ("bridge", "", None):
            raise Unsupported(f"networks.{net.name}.driver: {net.driver!r} is not supported (bridge only)")
        try:
            rn.create_network(engine.root, net.real_name, subnet=net.subnets[0] if net.subnets else None,
                              gateway=net.gateways[0] if net.gateways else None, internal=net.internal)
        except rn.NetworkExists:
            pass                            # made by a parallel up meanwhile
        engine.reporter.event("Network", net.real_name, "Created")


def ensure_volumes(engine, project: Project) -> None:
    """Create the project's named volumes, labelled with the project (external ones must exist)."""
    from runner.volumes import VolumeStore

    from compose.plan import LABEL_PROJECT

    vols = VolumeStore(engine.root)
    names = set(vols.names())
    for vol in project.volumes:
        if vol.real_name in names:
            continue
        if vol.external:
            raise ServiceFailed(f"volume {vol.real_name} declared as external, but could not be found")
        if vol.driver not in ("local", "", None) or vol.driver_opts:
            raise Unsupported(f"volumes.{vol.name}: driver {vol.driver!r} with options is not supported (local only)")
        vols.create(vol.real_name, dict(vol.labels) | {LABEL_PROJECT: project.name,
                                                      "com.docker.compose.volume": vol.name}, exist_ok=True)
        engine.reporter.event("Volume", vol.real_name, "Created")


def remove_container(engine, c: ProjectContainer, timeout: int | None = None, *, volumes: bool = False) -> None:
    """Stop (``timeout`` seconds, then SIGKILL) and remove one container."""
    from runner import containers as C
    from runner.errors import ContainerNotFound

    store = engine.containers()
    try:
        if c.live or c.status == "restarting":
            engine.reporter.event("Container", c.name, "Stopping")
            C.stop(store, c.id, timeout)
        engine.reporter.event("Container", c.name, "Removing")
        C.remove(store, c.id, force=True, volumes=volumes)
    except ContainerNotFound:
        return
    engine.reporter.event("Container", c.name, "Removed")


def orphans(project: Project, containers) -> list[ProjectContainer]:
    known = set(project.service_names()) | set(project.disabled)
    return [c for c in containers if c.service not in known]


def _create_and_start(engine, project: Project, plan: ServicePlan, number: int, image_id: str) -> str:
    from runner import containers as C

    svc = plan.service
    name = container_name(project, svc, number)
    req = ContainerRequest(name=name, labels=labels(project, svc, number, plan.config_hash, image_id=image_id))
    opts = run_options(project, svc, req)
    from runner.shim_client import PendingShim

    # the shim's interpreter starts now, while the container is recorded (as ``run -d`` does)
    with PendingShim(engine.root, engine.state_dir) as shim:
        engine.reporter.event("Container", name, "Creating")
        cfg = C.create_from_image(engine.containers(), engine.images(), plan.image, opts)
        engine.reporter.event("Container", name, "Created")
        _start(engine, cfg.id, name, shim)
    return name


def _start(engine, cid: str, name: str, shim=None) -> None:
    from runner import containers as C

    engine.reporter.event("Container", name, "Starting")
    C.start(engine.containers(), cid, shim=shim)
    engine.reporter.event("Container", name, "Started")


@dataclass
class _Run:
    """Shared by the service threads of one ``up``."""

    engine: object
    project: Project
    opts: UpOptions
    plans: dict[str, ServicePlan]
    existing: dict[str, list[ProjectContainer]]
    image_ids: dict[str, str]
    done: dict[str, threading.Event] = field(default_factory=dict)
    failed: dict[str, BaseException] = field(default_factory=dict)
    recreated: set[str] = field(default_factory=set)
    names: dict[str, tuple[str, ...]] = field(default_factory=dict)
    cancel: threading.Event = field(default_factory=threading.Event)


def _converge(run: _Run, plan: ServicePlan, deps_recreated: bool) -> tuple[str, ...]:
    """Make the service's containers match ``plan``; return their names."""
    from runner import containers as C

    engine, svc = run.engine, plan.service
    have = {c.number: c for c in run.existing.get(svc.name, [])}
    names = []
    recreate_all = run.opts.force_recreate
    restart_for_deps = deps_recreated and any(d.restart for d in svc.depends_on if d.service in run.recreated)
    for number in range(1, plan.replicas + 1):
        if run.cancel.is_set():
            raise ServiceFailed(f"service {svc.name}: interrupted", svc.name)
        c = have.pop(number, None)
        if c is not None and (recreate_all or c.config_hash != plan.config_hash):
            engine.reporter.event("Container", c.name, "Recreate")
            remove_container(engine, c, run.opts.timeout)
            run.recreated.add(svc.name)
            c = None
        if c is None:
            names.append(_create_and_start(engine, run.project, plan, number, run.image_ids.get(svc.name, "")))
            continue
        names.append(c.name)
        if c.live and restart_for_deps:
            engine.reporter.event("Container", c.name, "Restarting")
            C.restart(engine.containers(), c.id, run.opts.timeout)
            engine.reporter.event("Container", c.name, "Restarted")
        elif c.live:
            engine.reporter.event("Container", c.name, "Running")
        else:
            _start(engine, c.id, c.name)
    for number in sorted(have, reverse=True):                 # scaled down
        remove_container(engine, have[number], run.opts.timeout)
    return tuple(names)


def wait_condition(engine, service: str, names, condition: str, *, timeout: float | None = None,
                   dependant: str = "", cancel: threading.Event | None = None) -> None:
    """Block until every container of ``names`` meets ``condition``; :class:`ServiceFailed` if one
    cannot (exited, unhealthy, exited non-zero) or ``timeout`` passes."""
    from runner.errors import ContainerNotFound

    store = engine.containers()
    deadline = None if timeout is None else time.monotonic() + timeout
    who = f"dependency {service} of {dependant}" if dependant else f"service {service}"
    pending = list(names)
    while pending:
        still = []
        for name in pending:
            try:
                cfg = store.resolve(name)
                cur = store.status(cfg.id)
            except ContainerNotFound:
                raise ServiceFailed(f"{who}: container {name} is gone", service) from None
            ok = _meets(cfg, cur, condition, who, name, service)
            if not ok:
                still.append(name)
        pending = still
        if not pending:
            return
        if deadline is not None and time.monotonic() > deadline:
            raise ServiceFailed(f"{who}: container {pending[0]} is not {_WORD[condition]} after {timeout:g}s", service)
        if cancel is not None and cancel.is_set():
            raise ServiceFailed(f"{who}: interrupted", service)
        time.sleep(_POLL)


_WORD = {"service_started": "running", "service_healthy": "healthy",
         "service_completed_successfully": "completed", "running_or_healthy": "running or healthy"}


def _meets(cfg, cur, condition: str, who: str, name: str, service: str) -> bool:
    if condition == "service_completed_successfully":
        if cur.status == "exited":
            if cur.exit_code != 0:
                raise ServiceFailed(f"{who} didn't complete successfully: container {name} exited with "
                                    f"code {cur.exit_code}", service)
            return True
        return False
    if condition == "service_started":
        return cur.status in ("running", "exited", "paused", "restarting") and cur.started_at is not None
    wants_health = condition == "service_healthy" or cfg.healthcheck is not None
    if cur.status in ("exited", "dead"):
        raise ServiceFailed(f"{who}: container {name} exited with code {cur.exit_code}", service)
    if condition == "service_healthy" and cfg.healthcheck is None:
        raise ServiceFailed(f"{who}: container {name} has no healthcheck (condition: service_healthy)", service)
    if not wants_health:
        return cur.status == "running"
    status = cur.health.status if cur.health else "starting"
    if status == "unhealthy":
        raise ServiceFailed(f"{who}: container {name} is unhealthy", service)
    return status == "healthy"


def _service_thread(run: _Run, name: str) -> None:
    svc: Service = run.project.service(name)
    try:
        deps_recreated = False
        for dep in svc.depends_on:
            if dep.service not in run.plans:
                continue                    # --no-deps, or not selected: not waited for
            run.done[dep.service].wait()
            if dep.service in run.failed:
                if dep.required:
                    raise ServiceFailed(f"service {name}: dependency {dep.service} failed to start", name)
                continue
            deps_recreated |= dep.service in run.recreated
            try:
                wait_condition(run.engine, dep.service, run.names[dep.service], dep.condition, dependant=name,
                               cancel=run.cancel)
            except ServiceFailed:
                if dep.required:
                    raise
        run.names[name] = _converge(run, run.plans[name], deps_recreated)
    except (PybuildError, OSError) as exc:
        if not isinstance(exc, ComposeError):          # a runner or store error: say which service it hit
            exc = ServiceFailed(f"service {name}: {exc}", name)
        run.failed[name] = exc
        run.names.setdefault(name, ())
    except BaseException as exc:            # a bug: still release the dependants, then re-raise in up()
        run.failed[name] = exc
        run.names.setdefault(name, ())
    finally:
        run.done[name].set()


def up(engine, project: Project, opts: UpOptions = UpOptions()) -> UpResult:
    """Bring the project (or ``opts.services`` and, unless ``no_deps``, their dependencies) up."""
    begun = time.time()
    names = select(project, opts.services, with_deps=not opts.no_deps)
    scale = parse_scale(opts.scale, project)
    image_ids = ensure_images(engine, project, names, build=opts.build, pull=opts.pull, no_cache=opts.no_cache)
    plans = {p.service.name: p for p in plan_services(project, names, scale, image_ids)}
    for p in plans.values():                # refuse what cannot be honoured before anything is made
        run_options(project, p.service, ContainerRequest(name=container_name(project, p.service, 1), labels=()))
    ensure_networks(engine, project, names)
    ensure_volumes(engine, project)
    current = project_containers(engine, project.name)
    stray = orphans(project, current)
    if stray and opts.remove_orphans:
        for c in stray:
            remove_container(engine, c, opts.timeout)
    elif stray:
        engine.reporter.note(f"Found orphan containers ({', '.join(c.name for c in stray)}) for this project. "
                             "If you removed or renamed this service in your compose file, you can run this "
                             "command with the --remove-orphans flag to clean it up.")
    run = _Run(engine, project, opts, plans, by_service(current), image_ids)
    for n in plans:
        run.done[n] = threading.Event()
    threads = [threading.Thread(target=_service_thread, args=(run, n), name=f"up-{n}", daemon=True) for n in plans]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.2)                 # a short join keeps Ctrl-C deliverable to this thread
    except KeyboardInterrupt:
        run.cancel.set()                    # threads finish the step they are in, start nothing new
        for t in threads:
            t.join()
        raise
    for n in plans:
        exc = run.failed.get(n)
        if exc is not None and not isinstance(exc, (PybuildError, OSError)):
            raise exc
    first = next((run.failed[n] for n in plans if n in run.failed), None)
    if first is not None:
        raise first
    if opts.wait:
        _wait_all(engine, project, run, opts.wait_timeout)
    return UpResult(tuple((n, run.names.get(n, ())) for n in plans), tuple(sorted(run.recreated)), begun)


def _wait_all(engine, project: Project, run: _Run, timeout: float | None) -> None:
    """``--wait``: every container running (healthy if it has a check); a one-shot that others wait
    to complete must have exited 0."""
    oneshots = {d.service for s in project.services for d in s.depends_on
                if d.condition == "service_completed_successfully"}
    deadline = None if timeout is None else time.monotonic() + timeout
    for n, names in run.names.items():
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        cond = "service_completed_successfully" if n in oneshots else "running_or_healthy"
        wait_condition(engine, n, names, cond, timeout=left)
        engine.reporter.event("Service", n, "Healthy" if cond != "service_completed_successfully" else "Exited")
