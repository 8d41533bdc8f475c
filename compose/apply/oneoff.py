"""``run`` (a one-off container of a service, in the foreground) and ``exec`` (a command in a running
container of a service).

``run`` first brings up the service's dependencies (not with ``no_deps``), then runs
``<project>-<service>-run-<12 hex>`` labelled ``com.docker.compose.oneoff=True`` through
:func:`runner.foreground.run_foreground` and returns its exit code. Like Compose, it publishes the
service's ports only when asked (``service_ports``) and never applies the restart policy.
"""

from __future__ import annotations

import os

from compose.model import Project
from compose.plan import config_hash, image_name, labels, oneoff_name, select
from layers.value import frozen

from .errors import NoSuchService, ServiceFailed
from .images import ensure_images
from .runopts import ContainerRequest, run_options
from .state import project_containers
from .up import UpOptions, ensure_networks, ensure_volumes, up

__all__ = ["RunRequest", "run", "exec_in_service"]


@frozen
class RunRequest:
    """``run``'s flags: ``command`` (None: the service's), ``env`` ``KEY=VALUE`` (a bare ``KEY`` takes
    the caller's value), ``tty`` (the caller decides: ``-T`` or no terminal turns it off)."""

    service: str
    command: tuple[str, ...] | None = None
    env: tuple[str, ...] = ()
    rm: bool = False
    no_deps: bool = False
    tty: bool = False
    interactive: bool = True
    user: str | None = None
    workdir: str | None = None
    entrypoint: tuple[str, ...] | None = None
    name: str | None = None
    service_ports: bool = False
    build: bool | None = None


def _env(items) -> tuple[str, ...]:
    out = []
    for item in items:
        if "=" in item:
            out.append(item)
        elif item in os.environ:
            out.append(f"{item}={os.environ[item]}")
    return tuple(out)


def run(engine, project: Project, req: RunRequest) -> int:
    """Run a one-off container; return its exit code."""
    from runner.foreground import run_foreground

    select(project, (req.service,), with_deps=False)
    svc = project.service(req.service)
    deps = tuple(d.service for d in svc.depends_on)
    if deps and not req.no_deps:
        up(engine, project, UpOptions(services=deps, build=req.build))
    ids = ensure_images(engine, project, (req.service,), build=req.build)
    ensure_networks(engine, project, (req.service,))
    ensure_volumes(engine, project)
    name = req.name or oneoff_name(project, svc.name, os.urandom(6).hex())
    lab = labels(project, svc, 1, config_hash(svc, ids.get(svc.name, "")), oneoff=True)
    creq = ContainerRequest(name=name, labels=lab, command=req.command, extra_env=_env(req.env),
                            entrypoint=req.entrypoint, user=req.user, workdir=req.workdir,
                            publish=req.service_ports, tty=req.tty, interactive=req.interactive,
                            rm=req.rm, restart="no")
    opts = run_options(project, svc, creq)
    return run_foreground(engine.containers(), engine.images(), image_name(project, svc), opts)


def exec_in_service(engine, project: Project, service: str, command: tuple[str, ...], *, index: int = 1,
                    env=(), user: str | None = None, workdir: str | None = None, tty: bool = False,
                    interactive: bool = True, detach: bool = False) -> int:
    """Run ``command`` in container ``index`` of ``service``; return its exit code."""
    from runner.exec import ExecOptions, exec_in

    select(project, (service,), with_deps=False)
    cs = [c for c in project_containers(engine, project.name, services=(service,)) if c.number == index]
    if not cs:
        raise NoSuchService(f"service {service} has no container number {index} (is the project up?)")
    if not cs[0].live:
        raise ServiceFailed(f"container {cs[0].name} is not running", service)
    return exec_in(engine.containers(), cs[0].id, ExecOptions(
        args=tuple(command), env=_env(env), user=user, workdir=workdir, tty=tty, interactive=interactive,
        detach=detach))
