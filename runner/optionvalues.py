"""The values of ``-v``/``--mount`` (:class:`BindMount`), ``--tmpfs`` (:class:`TmpfsMount`), ``-p``
(:class:`PortSpec`), ``--ulimit`` (:class:`Ulimit`) and ``--device`` (:class:`DeviceMapping`) in
:class:`runner.options.RunOptions`.

Apart from :mod:`runner.options` and :mod:`runner.runflags` (their parsers) so that a ``run`` without
them does not build their classes; those modules re-export them.
"""

from __future__ import annotations

from layers.value import frozen

__all__ = ["BindMount", "TmpfsMount", "PortSpec", "Ulimit", "DeviceMapping"]


@frozen
class BindMount:
    """``-v source:target[:ro]``: a host path bound into the container, or with ``volume`` set
    (``-v NAME:target``) a named volume, whose ``source`` the lifecycle fills in at create."""

    source: str
    target: str
    readonly: bool = False
    volume: str = ""


@frozen
class TmpfsMount:
    """``--tmpfs target[:options]``; ``options`` is the mount data string (``size=64m,mode=1777``)."""

    target: str
    options: str = ""


@frozen
class PortSpec:
    """``-p [ip:][host_port[-host_port_end]:]container_port[/proto]``; ``host_port`` 0 means pick a
    free port, a ``host_port_end`` the first free one of the range (parsed by ``runner.network.publish``)."""

    container_port: int
    host_port: int = 0
    host_ip: str = ""
    protocol: str = "tcp"
    host_port_end: int = 0


@frozen
class Ulimit:
    """``--ulimit name=soft[:hard]``: ``name`` is Docker's (``nofile``), ``rlimit`` the OCI one."""

    name: str
    soft: int
    hard: int

    @property
    def rlimit(self) -> str:
        return "RLIMIT_" + self.name.upper()


@frozen
class DeviceMapping:
    """``--device /dev/x[:/dev/y][:rwm]``: a host device node made at ``path`` in the container
    (same type, numbers and mode) and allowed in the device cgroup with ``access``."""

    host_path: str
    path: str
    type: str           # c | b
    major: int
    minor: int
    file_mode: int
    access: str = "rwm"
