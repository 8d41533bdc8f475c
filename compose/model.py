"""The compose project model: frozen value types, the one thing ``compose.load`` hands out.

Contract (what the engine may rely on):

- Everything is loaded, interpolated, merged (several ``-f`` files, ``extends``), validated against the
  Compose Specification schema and normalised before a :class:`Project` exists. No dicts, no lists:
  sequences are tuples, mappings are tuples of ``(key, value)`` pairs in file order (labels, args,
  environment) with a ``dict`` view where handy.
- Paths are absolute host paths (build contexts, bind sources, env files, secret and config files).
- Durations are seconds (``float``), sizes are bytes (``int``).
- ``Project.services`` holds only the services enabled by the active profiles (a service named on
  the command line is the engine's business), in file order. ``Service.depends_on`` names only
  services of the project; a dependency on a disabled service is an error at load time unless
  ``required: false`` (then it is dropped).
- ``Service.environment`` is the final container environment: ``env_file`` contents first, then
  ``environment`` over them; a bare ``KEY`` takes its value from the project environment or is left out.
- ``Service.networks`` is never empty unless ``network_mode`` is set: a service that names no
  network joins ``default``, and ``Project.networks`` then holds a ``default`` NetworkSpec.
- Names: ``NetworkSpec.real_name`` is ``<project>_<key>`` (or ``name:``, or the external name);
  ``VolumeSpec.real_name`` likewise. Container names are the engine's (``<project>-<service>-<n>``).
"""

from __future__ import annotations

from dataclasses import field

from layers.value import frozen

__all__ = ["Project", "Service", "BuildSpec", "PortSpec", "ServiceNetwork", "MountSpec", "Dependency",
           "HealthSpec", "Ulimit", "FileRef", "NetworkSpec", "VolumeSpec", "SecretSpec", "ConfigSpec",
           "ResourceLimits"]

Pairs = tuple[tuple[str, str], ...]


@frozen
class BuildSpec:
    """``build:``. ``context`` is an absolute directory; ``dockerfile`` is relative to it (as written,
    default ``Dockerfile``) unless ``dockerfile_inline`` holds the text. ``args`` values are None
    for a bare ``ARG`` name without value in the file (the builder then uses the environment)."""

    context: str
    dockerfile: str = "Dockerfile"
    dockerfile_inline: str | None = None
    args: tuple[tuple[str, str | None], ...] = ()
    target: str | None = None
    cache_from: tuple[str, ...] = ()
    secrets: tuple[FileRef, ...] = ()
    labels: Pairs = ()
    network: str | None = None
    no_cache: bool = False
    pull: bool = False
    tags: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()


@frozen
class PortSpec:
    """One published or exposed port; ranges are expanded to one PortSpec per port.
    ``published`` None means an ephemeral host port; ``host_ip`` None means all addresses."""

    target: int
    published: int | None = None
    host_ip: str | None = None
    protocol: str = "tcp"
    name: str | None = None
    app_protocol: str | None = None
    mode: str = "ingress"


@frozen
class ServiceNetwork:
    """The service's attachment to the project network whose key is ``name``."""

    name: str
    aliases: tuple[str, ...] = ()
    ipv4_address: str | None = None
    ipv6_address: str | None = None
    priority: int = 0


@frozen
class MountSpec:
    """A ``volumes:`` entry (short syntax normalised to this long form) or a ``tmpfs:`` entry.

    - ``type == "bind"``: ``source`` is an absolute host path.
    - ``type == "volume"``: ``source`` is the key in ``Project.volumes`` (look up its ``real_name``),
      or None for an anonymous volume.
    - ``type == "tmpfs"``: ``source`` is None; ``tmpfs_size`` bytes and ``tmpfs_mode`` if given.
    """

    type: str
    target: str
    source: str | None = None
    read_only: bool = False
    bind_create_host_path: bool = True
    bind_propagation: str | None = None
    bind_selinux: str | None = None
    volume_nocopy: bool = False
    volume_subpath: str | None = None
    tmpfs_size: int | None = None
    tmpfs_mode: int | None = None
    consistency: str | None = None


@frozen
class Dependency:
    """``depends_on`` entry. ``condition`` is ``service_started`` | ``service_healthy`` |
    ``service_completed_successfully``; ``restart`` asks to restart this service when the
    dependency is restarted; ``required`` False lets ``up`` go on without it."""

    service: str
    condition: str = "service_started"
    restart: bool = False
    required: bool = True


@frozen
class HealthSpec:
    """``healthcheck``. ``test`` keeps Docker's form: ``("CMD", arg, ...)``, ``("CMD-SHELL", cmd)``
    or ``("NONE",)``; empty means "inherit the image's test". Durations in seconds, None = default."""

    test: tuple[str, ...] = ()
    interval: float | None = None
    timeout: float | None = None
    retries: int | None = None
    start_period: float | None = None
    start_interval: float | None = None
    disable: bool = False


@frozen
class Ulimit:
    name: str
    soft: int
    hard: int


@frozen
class FileRef:
    """A service's use of a top-level secret or config: ``source`` is the top-level key, ``target``
    the absolute path inside the container (secrets default ``/run/secrets/<source>``, configs
    ``/<source>``), ``file`` the absolute host file holding the content (None when the top-level
    entry gives ``environment`` or ``content`` instead)."""

    source: str
    target: str
    file: str | None = None
    uid: str | None = None
    gid: str | None = None
    mode: int | None = None


@frozen
class ResourceLimits:
    """``deploy.resources.limits`` merged with ``mem_limit``/``cpus``/``pids_limit`` (the service-level
    keys and deploy limits must agree when both are given). ``memory`` in bytes."""

    memory: int | None = None
    cpus: float | None = None
    pids: int | None = None
    memory_reservation: int | None = None
    memswap_limit: int | None = None
    shm_size: int | None = None


@frozen
class Service:
    """One normalised service. See the module docstring for the rules every field follows."""

    name: str
    image: str | None = None
    build: BuildSpec | None = None
    pull_policy: str | None = None
    container_name: str | None = None
    # process
    command: tuple[str, ...] | None = None      # None = the image's CMD; a string was split like a shell
    entrypoint: tuple[str, ...] | None = None   # None = the image's ENTRYPOINT; () = reset to empty
    environment: Pairs = ()
    working_dir: str | None = None
    user: str | None = None
    hostname: str | None = None
    domainname: str | None = None
    init: bool | None = None
    tty: bool = False
    stdin_open: bool = False
    privileged: bool = False
    stop_signal: str | None = None
    stop_grace_period: float | None = None
    # network
    ports: tuple[PortSpec, ...] = ()
    expose: tuple[str, ...] = ()                 # "80", "8000/udp", ranges expanded
    networks: tuple[ServiceNetwork, ...] = ()
    network_mode: str | None = None             # "host", "none", "service:<name>"; None = networks
    extra_hosts: Pairs = ()                      # (hostname, ip)
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_opt: tuple[str, ...] = ()
    mac_address: str | None = None
    # storage
    volumes: tuple[MountSpec, ...] = ()
    tmpfs: tuple[MountSpec, ...] = ()
    read_only: bool = False
    # order and health
    depends_on: tuple[Dependency, ...] = ()
    healthcheck: HealthSpec | None = None
    restart: str = "no"                          # no | always | on-failure[:N] | unless-stopped
    # scale and limits
    replicas: int = 1
    limits: ResourceLimits = field(default_factory=ResourceLimits)
    ulimits: tuple[Ulimit, ...] = ()
    # the rest
    labels: Pairs = ()
    annotations: Pairs = ()
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ()
    sysctls: Pairs = ()
    group_add: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()
    secrets: tuple[FileRef, ...] = ()
    configs: tuple[FileRef, ...] = ()
    platform: str | None = None
    logging_driver: str | None = None

    def env(self) -> dict[str, str]:
        """The environment as a new dict (later entries win)."""
        return dict(self.environment)

    def label_map(self) -> dict[str, str]:
        return dict(self.labels)

    @property
    def mem_limit(self) -> int | None:
        return self.limits.memory

    @property
    def cpus(self) -> float | None:
        return self.limits.cpus

    @property
    def pids_limit(self) -> int | None:
        return self.limits.pids


@frozen
class NetworkSpec:
    """A top-level network. ``real_name`` is what the runner creates or, if ``external``, must find."""

    name: str
    real_name: str
    driver: str = "bridge"
    internal: bool = False
    external: bool = False
    attachable: bool = False
    enable_ipv6: bool = False
    subnets: tuple[str, ...] = ()
    gateways: tuple[str, ...] = ()
    driver_opts: Pairs = ()
    labels: Pairs = ()


@frozen
class VolumeSpec:
    """A top-level named volume. ``real_name`` is ``<project>_<name>`` unless ``name:`` or ``external``."""

    name: str
    real_name: str
    driver: str = "local"
    external: bool = False
    driver_opts: Pairs = ()
    labels: Pairs = ()


@frozen
class SecretSpec:
    """A top-level secret: exactly one of ``file`` (absolute), ``environment`` (a variable's name,
    resolved into ``content`` at load time) or ``external``."""

    name: str
    file: str | None = None
    environment: str | None = None
    content: str | None = None
    external: bool = False


@frozen
class ConfigSpec:
    """A top-level config: ``file``, ``environment``, inline ``content`` or ``external``."""

    name: str
    file: str | None = None
    environment: str | None = None
    content: str | None = None
    external: bool = False


@frozen
class Project:
    """A loaded project. ``environment`` is the interpolation environment that was used (process
    environment over ``.env``/``--env-file``, as Compose v2); ``files`` the compose files in merge
    order; ``disabled`` the services left out by profiles (name only, so ``run`` can say why);
    ``warnings`` what the CLI should print to stderr (the loader never prints)."""

    name: str
    working_dir: str
    services: tuple[Service, ...] = ()
    networks: tuple[NetworkSpec, ...] = ()
    volumes: tuple[VolumeSpec, ...] = ()
    secrets: tuple[SecretSpec, ...] = ()
    configs: tuple[ConfigSpec, ...] = ()
    environment: Pairs = ()
    files: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()
    disabled: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()   # e.g. 'The "TAG" variable is not set. Defaulting to a blank string.'

    def service(self, name: str) -> Service:
        """The service called ``name``; KeyError if the project has none (or it is disabled)."""
        for svc in self.services:
            if svc.name == name:
                return svc
        raise KeyError(name)

    def service_names(self) -> tuple[str, ...]:
        return tuple(svc.name for svc in self.services)

    def network(self, name: str) -> NetworkSpec:
        for net in self.networks:
            if net.name == name:
                return net
        raise KeyError(name)

    def volume(self, name: str) -> VolumeSpec:
        for vol in self.volumes:
            if vol.name == name:
                return vol
        raise KeyError(name)
