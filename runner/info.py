"""Facts about the host and the runtime that ``pybuild info`` and ``pybuild version`` report: the
kernel, the OS, CPUs and memory, the cgroup version, which security features the sandbox can use,
and how many containers are in each state. Read from /proc, /sys, /etc and the container store;
nothing is changed."""

from __future__ import annotations

import os
import socket

from layers.value import frozen

from .records import CREATED, DEAD, EXITED, PAUSED, RESTARTING, RUNNING

__all__ = ["HostFacts", "ContainerCounts", "host_facts", "container_counts", "RUNTIME_NAME"]

RUNTIME_NAME = "pybuild-sandbox"


@frozen(slots=True)
class HostFacts:
    kernel_version: str
    operating_system: str
    os_version: str
    os_type: str
    architecture: str          # uname's machine: x86_64, aarch64
    ncpu: int
    mem_total: int             # bytes
    name: str                  # host name
    cgroup_version: str        # "1" or "2", as Docker reports it
    cgroup_driver: str
    security_options: tuple[str, ...]   # Docker's "name=seccomp,profile=builtin" form
    oci_version: str           # the runtime-spec version the sandbox implements


@frozen(slots=True)
class ContainerCounts:
    total: int
    running: int
    paused: int
    stopped: int


def _os_release() -> dict[str, str]:
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        out = {}
        for line in lines:
            key, sep, value = line.partition("=")
            if sep:
                out[key.strip()] = value.strip().strip('"')
        return out
    return {}


def host_facts() -> HostFacts:
    """What this host offers the sandbox."""
    from . import seccomp
    from .cgroups import detect_version
    from .listing import host_memory
    from .spec import OCI_VERSION

    rel = _os_release()
    cgroup = detect_version()
    security = []
    if seccomp.available():
        security.append("name=seccomp,profile=builtin")
    if cgroup == "v2":
        security.append("name=cgroupns")
    uname = os.uname()
    return HostFacts(
        kernel_version=uname.release,
        operating_system=rel.get("PRETTY_NAME", uname.sysname),
        os_version=rel.get("VERSION_ID", ""),
        os_type=uname.sysname.lower(),
        architecture=uname.machine,
        ncpu=os.cpu_count() or 1,
        mem_total=host_memory(),
        name=socket.gethostname(),
        cgroup_version=cgroup.removeprefix("v"),
        cgroup_driver="cgroupfs",
        security_options=tuple(security),
        oci_version=OCI_VERSION,
    )


def container_counts(store) -> ContainerCounts:
    """Containers of a :class:`runner.state.ContainerStore` by state, as ``docker info`` counts them
    (restarting ones are running; created, exited and dead ones are stopped)."""
    from .listing import list_containers

    infos = list_containers(store, all=True)
    states = [i.state.status for i in infos]
    running = sum(s in (RUNNING, RESTARTING) for s in states)
    paused = sum(s == PAUSED for s in states)
    stopped = sum(s in (CREATED, EXITED, DEAD) for s in states)
    return ContainerCounts(total=len(infos), running=running, paused=paused, stopped=stopped)
