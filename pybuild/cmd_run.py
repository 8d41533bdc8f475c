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
        click.option("--network", "--net", "network", default="bridge", show_default=True,
                     help="none, host, bridge, container:<name|id> or a network name."),
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
    return ro.RunOptions(
        command=tuple(kw["command"]) or None,
        entrypoint=entrypoint,
        env=tuple(env),
        user=kw["user"],
        workdir=kw["workdir"],
        hostname=kw["hostname"],
        mounts=tuple(ro.parse_volume(v) for v in kw["volumes"]),
        tmpfs=tuple(ro.parse_tmpfs(t) for t in kw["tmpfs"]),
        read_only=kw["read_only"],
        cap_add=tuple(kw["cap_add"]),
        cap_drop=tuple(kw["cap_drop"]),
        privileged=kw["privileged"],
        memory=ro.parse_bytes(kw["memory"]) if kw["memory"] else None,
        cpus=kw["cpus"],
        pids_limit=ro.DEFAULT_PIDS_LIMIT if pids is None else (None if pids < 0 else pids),
        network=kw["network"],
        tty=kw["tty"],
        interactive=kw["interactive"],
        init=kw["init"],
        rm=kw["rm"],
        detach=kw["detach"],
        name=kw["name"],
        publish=_publish(kw["publish"]),
        publish_all=kw["publish_all"],
        restart=kw["restart"],
        labels=tuple(tuple(label.split("=", 1)) if "=" in label else (label, "") for label in kw["labels"]),
        health=_health(kw),
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


def _stores(settings: Settings, image: str, pull: str):
    """The image store (with ``image`` in it, pulled as ``--pull`` says) and the container store."""
    from .cmd_containers import container_store

    store = settings.store()
    _ensure_image(settings, store, image, pull)
    return store, container_store(settings)


def _ensure_image(settings: Settings, store, image: str, policy: str) -> None:
    """Docker's ``--pull``: ``missing`` pulls an image the store does not have, ``always`` pulls
    every time, ``never`` leaves a missing image to fail as "no such image"."""
    if policy != "always":
        from layers.errors import NotFound

        try:
            store.images.resolve(image)
            return
        except NotFound:
            if policy == "never":
                raise
        from layers.reference import Reference

        click.echo(f"Unable to find image '{Reference.parse(image).familiar}' locally", err=True)
    from .cmd_registry import pull_image

    pull_image(settings, store, image)


@click.command("run", context_settings={"allow_interspersed_args": False})
@_run_options
@pass_settings
def run_cmd(settings: Settings, **kw) -> int:
    """Run a command in a new container."""
    opts = build_options(kw)
    if opts.detach:
        from runner.shim_client import PendingShim

        # the shim's interpreter starts now, on the other core, while the image is looked up
        with PendingShim(settings.root, settings.state_dir) as shim:
            images, containers_store = _stores(settings, kw["image"], kw["pull"])
            from runner.fromimage import run_detached

            info = run_detached(containers_store, images, kw["image"], opts, shim=shim)
        _network_notes(info.config)
        click.echo(info.config.id)
        return 0
    from runner.foreground import run_foreground

    images, containers_store = _stores(settings, kw["image"], kw["pull"])
    return run_foreground(containers_store, images, kw["image"], opts, on_network=_network_notes)


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
    images, containers_store = _stores(settings, kw["image"], kw["pull"])
    from runner.fromimage import create_from_image

    cfg = create_from_image(containers_store, images, kw["image"], opts)
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
