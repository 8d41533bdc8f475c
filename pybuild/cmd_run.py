"""``pybuild run``, ``pybuild create`` and ``pybuild bundle``: a few lines each over :mod:`runner`.

``run`` in the foreground is :func:`runner.foreground.run_foreground` (this process supervises the
container; the command returns its exit code); ``run -d`` hands the container to a shim
(:func:`runner.fromimage.run_detached`). Commands return their exit code; ``pybuild.cli.main`` exits.
"""

from __future__ import annotations

import os

import click

from .context import Settings, pass_settings

__all__ = ["run_cmd", "create_cmd", "bundle_cmd"]


def _run_options(f):
    """The option set shared by ``run`` and ``create`` (Docker's spellings)."""
    options = [
        click.option("-d", "--detach", is_flag=True, help="Run in the background and print the container id."),
        click.option("--name", help="Assign a name to the container."),
        click.option("-e", "--env", "env", multiple=True, help="Set an environment variable (KEY=VALUE or KEY)."),
        click.option("--env-file", "env_files", multiple=True, help="Read environment variables from a file."),
        click.option("-u", "--user", help="Username or UID (format: name|uid[:group|gid])."),
        click.option("-w", "--workdir", help="Working directory inside the container."),
        click.option("-v", "--volume", "volumes", multiple=True, help="Bind mount /host:/container[:ro]."),
        click.option("--tmpfs", "tmpfs", multiple=True, help="Mount a tmpfs (/path[:options])."),
        click.option("--read-only", is_flag=True, help="Mount the container's root filesystem read-only."),
        click.option("--cap-add", multiple=True, help="Add a Linux capability."),
        click.option("--cap-drop", multiple=True, help="Drop a Linux capability."),
        click.option("--privileged", is_flag=True, help="Give all capabilities; lift masked paths and seccomp."),
        click.option("-m", "--memory", help="Memory limit (e.g. 512m, 1g)."),
        click.option("--cpus", type=float, help="Number of CPUs (CFS quota)."),
        click.option("--pids-limit", type=int, default=None, help="Process limit (default 4096, -1 unlimited)."),
        click.option("-h", "--hostname", help="Container host name."),
        click.option("--entrypoint", default=None, help="Override the image's entrypoint (\"\" clears it)."),
        click.option("-i", "--interactive", is_flag=True, help="Keep stdin open."),
        click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-terminal."),
        click.option("--rm", is_flag=True, help="Remove the container when it exits."),
        click.option("--init", is_flag=True, help="Run an init as PID 1 that forwards signals and reaps zombies."),
        click.option("--network", "--net", "network", multiple=True,
                     help="none, host, bridge (default), container:<name|id> or a network name; again to join "
                          "more networks (name=NET,alias=A,ip=IP)."),
        click.option("-p", "--publish", multiple=True,
                     help="Publish a port or range ([ip:][host[-host]:]container[-container][/tcp|udp])."),
        click.option("-P", "--publish-all", is_flag=True, help="Publish every exposed port to a random port."),
        click.option("--restart", default="no", show_default=True, help="Restart policy (no, on-failure[:N], always, unless-stopped)."),
        click.option("-l", "--label", "labels", multiple=True, help="Set a label (KEY=VALUE)."),
        click.option("--health-cmd", help="Command to run to check health."),
        click.option("--health-interval", help="Time between running the check (ms|s|m|h)."),
        click.option("--health-timeout", help="Maximum time to allow one check to run (ms|s|m|h)."),
        click.option("--health-retries", type=int, help="Consecutive failures needed to report unhealthy."),
        click.option("--health-start-period", help="Start period for the container to initialize (ms|s|m|h)."),
        click.option("--health-start-interval", help="Time between checks during the start period (ms|s|m|h)."),
        click.option("--no-healthcheck", is_flag=True, help="Disable any container-specified HEALTHCHECK."),
        click.option("--pull", type=click.Choice(["missing", "always", "never"]), default="missing",
                     show_default=True, help="Pull the image before running: missing, always or never."),
        click.option("--mount", "mounts", multiple=True, help="Attach a mount (type=bind|volume|tmpfs,source=..,target=..)."),
        click.option("--shm-size", help="Size of /dev/shm (e.g. 64m)."),
        click.option("--add-host", "add_hosts", multiple=True, help="Add a host-to-IP mapping (host:ip)."),
        click.option("--dns", multiple=True, help="Set a DNS server."),
        click.option("--dns-search", multiple=True, help="Set a DNS search domain."),
        click.option("--dns-option", "--dns-opt", "dns_options", multiple=True, help="Set a DNS option."),
        click.option("--network-alias", "network_aliases", multiple=True, help="Add a network-scoped alias."),
        click.option("--ip", help="IPv4 address on a user-defined network."),
        click.option("--expose", multiple=True, help="Expose a port or a range of ports."),
        click.option("--ulimit", "ulimits", multiple=True, help="Ulimit (name=soft[:hard])."),
        click.option("--memory-swap", help="Memory plus swap limit (-1: unlimited swap)."),
        click.option("--memory-reservation", help="Memory soft limit."),
        click.option("-c", "--cpu-shares", type=int, help="CPU shares (relative weight)."),
        click.option("--cpuset-cpus", help="CPUs in which to allow execution (0-3, 0,1)."),
        click.option("--device", "devices", multiple=True, help="Add a host device (/dev/x[:/dev/y][:rwm])."),
        click.option("--security-opt", "security_opts", multiple=True, help="Security options."),
        click.option("--sysctl", "sysctls", multiple=True, help="Namespaced kernel parameter (KEY=VALUE)."),
        click.option("--group-add", multiple=True, help="Add an additional group to join."),
        click.option("--pid", "pid_mode", help="PID namespace to use (host, container:NAME|ID)."),
        click.option("--ipc", "ipc_mode", help="IPC mode to use (host, private, shareable, none)."),
        click.option("--uts", "uts_mode", help="UTS namespace to use (host)."),
        click.option("--stop-signal", help="Signal to stop the container."),
        click.option("--stop-timeout", type=int, help="Timeout (in seconds) to stop a container."),
        click.option("--cidfile", help="Write the container ID to the file."),
        click.option("-a", "--attach", "attach", multiple=True, help="Attach to STDIN, STDOUT or STDERR."),
        click.option("--label-file", "label_files", multiple=True, help="Read in a line delimited file of labels."),
        click.option("--platform", help="Set platform if server is multi-platform capable."),
        click.option("--log-opt", "log_opts", multiple=True, help="Log driver options (max-size, max-file)."),
        click.argument("image"),
        click.argument("command", nargs=-1, type=click.UNPROCESSED),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def build_options(kw: dict):
    """click keyword arguments -> :class:`runner.options.RunOptions`."""
    from runner import options as ro

    env: list[str] = []
    for path in kw["env_files"]:
        env += ro.parse_env_file(path)
    for item in kw["env"]:
        if "=" in item:
            env.append(item)
        elif item in os.environ:
            env.append(f"{item}={os.environ[item]}")
    entrypoint = None
    if kw["entrypoint"] is not None:
        entrypoint = (kw["entrypoint"],) if kw["entrypoint"] else ()
    pids = kw["pids_limit"]
    flags = _docker_flags(kw)
    return ro.RunOptions(
        command=tuple(kw["command"]) or None,
        entrypoint=entrypoint,
        env=tuple(env),
        user=kw["user"],
        workdir=kw["workdir"],
        hostname=kw["hostname"],
        mounts=tuple(ro.parse_volume(v) for v in kw["volumes"]) + flags.pop("extra_mounts"),
        tmpfs=tuple(ro.parse_tmpfs(t) for t in kw["tmpfs"]) + flags.pop("extra_tmpfs"),
        read_only=kw["read_only"],
        cap_add=tuple(kw["cap_add"]),
        cap_drop=tuple(kw["cap_drop"]),
        privileged=kw["privileged"],
        memory=ro.parse_bytes(kw["memory"]) if kw["memory"] else None,
        cpus=kw["cpus"],
        pids_limit=ro.default_pids_limit() if pids is None else (None if pids < 0 else pids),
        network=flags.pop("network"),
        extra_networks=flags.pop("extra_networks"),
        tty=kw["tty"],
        interactive=kw["interactive"],
        init=kw["init"],
        rm=kw["rm"],
        detach=kw["detach"],
        name=kw["name"],
        publish=_publish(kw["publish"]),
        publish_all=kw["publish_all"],
        restart=kw["restart"],
        labels=_labels(kw),
        health=_health(kw),
        **flags,
    )


def _labels(kw: dict) -> tuple:
    from runner.runflags import parse_label_file

    out = [pair for path in kw.get("label_files") or () for pair in parse_label_file(path)]
    out += [tuple(label.split("=", 1)) if "=" in label else (label, "") for label in kw["labels"]]
    return tuple(out)


def _docker_flags(kw: dict) -> dict:
    """The further Docker ``run`` flags -> RunOptions keyword arguments; what cannot be honoured is
    refused here, naming the flag."""
    from runner import options as ro
    from runner import runflags as rf
    from runner.errors import InvalidRunOption
    from runner.platforms import parse_platform

    if kw.get("cidfile") and os.path.exists(kw["cidfile"]):
        raise InvalidRunOption(f"--cidfile {kw['cidfile']}: file exists (container already running?)")
    rf.check_attach(kw.get("attach") or (), detach=kw["detach"], interactive=kw["interactive"])
    sec = rf.parse_security_opts(kw.get("security_opts") or ())
    log_size, log_files = rf.parse_log_opts(kw.get("log_opts") or ())
    binds, tmpfs = [], []
    for text in kw.get("mounts") or ():
        m = rf.parse_mount(text)
        (tmpfs if isinstance(m, ro.TmpfsMount) else binds).append(m)

    def size(name: str, flag: str, allow_unlimited: bool = False):
        value = kw.get(name)
        if value is None:
            return None
        if allow_unlimited and value.strip() == "-1":
            return -1
        return ro.parse_bytes(value, flag)

    network, aliases, ip, extra_networks = ro.parse_networks(
        kw.get("network") or (), tuple(kw.get("network_aliases") or ()), kw.get("ip"))
    if kw.get("stop_signal"):
        from layers.errors import InvalidInput
        from runner.stopping import parse_signal

        try:
            parse_signal(kw["stop_signal"])
        except InvalidInput as exc:
            raise InvalidRunOption(f"--stop-signal: {exc}") from None
    return dict(
        extra_mounts=tuple(binds), extra_tmpfs=tuple(tmpfs),
        shm_size=size("shm_size", "--shm-size"),
        add_hosts=tuple(kw.get("add_hosts") or ()), dns=tuple(kw.get("dns") or ()),
        dns_search=tuple(kw.get("dns_search") or ()), dns_options=tuple(kw.get("dns_options") or ()),
        network=network, extra_networks=extra_networks,
        network_aliases=aliases, ip=ip, expose=rf.parse_expose(kw.get("expose") or ()),
        ulimits=tuple(rf.parse_ulimit(u) for u in kw.get("ulimits") or ()),
        memory_swap=size("memory_swap", "--memory-swap", allow_unlimited=True),
        memory_reservation=size("memory_reservation", "--memory-reservation"),
        cpu_shares=kw.get("cpu_shares"), cpuset_cpus=kw.get("cpuset_cpus"),
        seccomp=sec.seccomp, no_new_privileges=sec.no_new_privileges, security_opts=sec.accepted,
        sysctls=tuple(rf.parse_sysctl(s) for s in kw.get("sysctls") or ()),
        group_add=tuple(kw.get("group_add") or ()),
        devices=tuple(rf.parse_device(d) for d in kw.get("devices") or ()),
        pid_mode=rf.parse_namespace_mode("--pid", kw.get("pid_mode"), ("host", "container:")),
        ipc_mode=rf.parse_namespace_mode("--ipc", kw.get("ipc_mode"),
                                         ("host", "private", "shareable", "none", "container:")),
        uts_mode=rf.parse_namespace_mode("--uts", kw.get("uts_mode"), ("host",)),
        stop_signal=kw.get("stop_signal"), stop_timeout=kw.get("stop_timeout"),
        platform=parse_platform(kw.get("platform")),
        log_max_size=log_size, log_max_files=log_files,
    )


def _health(kw: dict):
    """``--health-*`` and ``--no-healthcheck`` -> :class:`runner.options.HealthOptions`."""
    from runner.options import HealthOptions, parse_duration

    def duration(name: str):
        value = kw[name]
        return None if value is None else parse_duration(value, "--" + name.replace("_", "-"))

    return HealthOptions(cmd=kw["health_cmd"], interval=duration("health_interval"),
                         timeout=duration("health_timeout"), start_period=duration("health_start_period"),
                         start_interval=duration("health_start_interval"), retries=kw["health_retries"],
                         disable=kw["no_healthcheck"])


def _publish(specs: tuple[str, ...]) -> tuple:
    """``-p`` values through the network room's parser (ranges, ``[IPv6]:``, port bounds)."""
    if not specs:
        return ()
    from runner.network.publish import port_specs

    return tuple(spec for text in specs for spec in port_specs(text))


def _stores(settings: Settings, image: str, pull: str, platform: str | None = None):
    """The image store (with ``image`` in it, pulled as ``--pull`` says) and the container store.
    An image of another platform than this host's: refused without an emulator, warned of without
    ``--platform``."""
    from runner.platforms import load_image, platform_warning

    from .cmd_containers import container_store

    store = settings.store()
    _ensure_image(settings, store, image, pull, platform)
    warning = platform_warning(load_image(store.images, store.images.resolve(image), platform), platform)
    if warning:
        click.echo(warning, err=True)
    return store, container_store(settings)


def _ensure_image(settings: Settings, store, image: str, policy: str, platform: str | None = None) -> None:
    """Docker's ``--pull``: ``missing`` pulls an image the store does not have, ``always`` pulls
    every time, ``never`` leaves a missing image to fail as "no such image"."""
    if policy != "always":
        from layers.errors import NotFound

        try:
            store.images.resolve(image)
            _complete(settings, store, image)
            return
        except NotFound:
            if policy == "never":
                raise
        from layers.reference import Reference

        click.echo(f"Unable to find image '{Reference.parse(image).familiar}' locally", err=True)
    from .cmd_registry import pull_image

    pull_image(settings, store, image, platform=platform)


def _complete(settings: Settings, store, image: str) -> None:
    """Layers a build's shared cache left in the registry come down now, checked against their digests
    (the registry client is loaded only when one is missing)."""
    if not store.images.missing_layers(image):
        return
    from registry_client.cache import complete_image
    from registry_client.transport import TransportConfig

    complete_image(store, image, TransportConfig(insecure_registries=settings.insecure_registries,
                                                 tls_ca=settings.tls_ca))


@click.command("run", context_settings={"allow_interspersed_args": False})
@_run_options
@pass_settings
def run_cmd(settings: Settings, **kw) -> int:
    """Run a command in a new container."""
    opts = build_options(kw)
    if opts.detach:
        import contextlib

        from runner.shim_client import PendingShim

        # the shim is a fork of this process once the record is written (runner.shim_client); an
        # --init container's is a fresh interpreter, started now while the image is looked up. (A
        # fork made now instead costs the CLI ~16 ms of copy-on-write faults and imports made twice,
        # for ~4 ms of wall time on an idle machine: docs/HOTPATH.md)
        with PendingShim(settings.root, settings.state_dir) if opts.init else contextlib.nullcontext() as shim:
            images, containers_store = _stores(settings, kw["image"], kw["pull"], opts.platform)
            from runner.fromimage import run_detached

            info = run_detached(containers_store, images, kw["image"], opts, shim=shim)
        _network_notes(info.config)
        _write_cidfile(kw, info.config.id)
        click.echo(info.config.id)
        return 0
    from runner.foreground import run_foreground

    images, containers_store = _stores(settings, kw["image"], kw["pull"], opts.platform)
    return run_foreground(containers_store, images, kw["image"], opts,
                          on_network=lambda cfg: (_write_cidfile(kw, cfg.id), _network_notes(cfg)))


def _write_cidfile(kw: dict, container_id: str) -> None:
    """``--cidfile``: the id into a new file (an existing one is refused, as Docker does)."""
    path = kw.get("cidfile")
    if not path:
        return
    from runner.errors import InvalidRunOption

    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise InvalidRunOption(f"--cidfile {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w") as f:
        f.write(container_id)


def _network_notes(cfg) -> None:
    """What the network setup wants the user told (the default network moved off a busy subnet)."""
    for note in cfg.network.notes:
        click.echo(f"pybuild: {note}", err=True)


@click.command("create", context_settings={"ignore_unknown_options": False, "allow_interspersed_args": False})
@_run_options
@pass_settings
def create_cmd(settings: Settings, **kw) -> None:
    """Create a container without starting it; print its id."""
    opts = build_options(kw)
    images, containers_store = _stores(settings, kw["image"], kw["pull"], opts.platform)
    from runner.fromimage import create_from_image

    cfg = create_from_image(containers_store, images, kw["image"], opts)
    _write_cidfile(kw, cfg.id)
    click.echo(cfg.id)


@click.command("bundle", context_settings={"allow_interspersed_args": False})
@click.option("--network", default="none", show_default=True, help="none (a new network namespace) or host.")
@click.option("-u", "--user", help="Username or UID (format: name|uid[:group|gid]).")
@click.option("--hostname", help="Container host name.")
@click.argument("image")
@click.argument("directory", type=click.Path(file_okay=False))
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@pass_settings
def bundle_cmd(settings: Settings, network: str, user: str | None, hostname: str | None, image: str,
               directory: str, command: tuple[str, ...]) -> None:
    """Write an OCI runtime bundle (config.json + rootfs/) for IMAGE into DIRECTORY."""
    from runner.bundle import write_bundle
    from runner.options import RunOptions

    opts = RunOptions(command=command or None, user=user, hostname=hostname, network=network)
    write_bundle(settings.store(), image, directory, opts)
    click.echo(os.path.abspath(directory))
