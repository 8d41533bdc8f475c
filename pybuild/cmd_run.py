"""``pybuild run``, ``pybuild create`` and ``pybuild bundle``: a few lines each over :mod:`runner`.

``run`` in the foreground records the container (so ``ps``/``inspect``/``stop`` see it), attaches
its network, mounts the overlay rootfs, runs the sandbox with this process's stdio (or a pty with
``-t``), forwards signals, exits with the container's code and, with ``--rm``, removes it.
``run -d`` hands the container to a shim (:func:`runner.containers.run_detached`).
"""

from __future__ import annotations

import os
import sys
import time

import click

from .context import Settings, pass_settings

__all__ = ["run_cmd", "create_cmd", "bundle_cmd", "exit_now"]


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
    )


def _publish(specs: tuple[str, ...]) -> tuple:
    """``-p`` values through the network room's parser (ranges, ``[IPv6]:``, port bounds)."""
    if not specs:
        return ()
    from runner.network.publish import port_specs

    return tuple(spec for text in specs for spec in port_specs(text))


def _stores(settings: Settings):
    from runner.containers import reap_abandoned
    from runner.state import ContainerStore

    cstore = ContainerStore(settings.root, settings.state_dir)
    reap_abandoned(cstore)              # what a killed foreground run left (its overlay, cgroup, --rm record)
    return settings.store(), cstore


@click.command("run", context_settings={"allow_interspersed_args": False})
@_run_options
@pass_settings
def run_cmd(settings: Settings, **kw) -> None:
    """Run a command in a new container."""
    opts = build_options(kw)
    if opts.detach:
        from runner.shim import PendingShim

        # the shim's interpreter starts now, on the other core, while the image is looked up
        with PendingShim(settings.root, settings.state_dir) as shim:
            images, containers_store = _stores(settings)
            from runner import containers

            info = containers.run_detached(containers_store, images, kw["image"], opts, shim=shim)
        _network_notes(info.config)
        click.echo(info.config.id)
        exit_now(0)
    images, containers_store = _stores(settings)
    exit_now(_run_foreground(containers_store, images, kw["image"], opts))


def exit_now(code: int) -> None:
    """End the process with ``code`` once a command is done: output flushed, then ``os._exit``.

    By then everything the command held is released (records written, locks closed, mounts and
    cgroups gone) and no pybuild module registers exit handlers; what is skipped is the interpreter's
    teardown, freeing every module and object one by one: ~20 ms of each ``run``, ``stop`` or ``rm``.
    """
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        code = code or 141
    os._exit(code)


def _run_foreground(cstore, images, image_ref: str, opts) -> int:
    """Create, attach network, mount, run in this process, record the exit; remove with ``--rm``.

    This process is the container's supervisor: its pid is the record's ``shim.json`` from before
    the record is visible until everything is released, so if it is killed (the container dies with
    it) the next pybuild that touches containers frees what it held (``reap_abandoned``).
    """
    from runner import containers, sandbox
    from runner import state as st
    from runner.rootfs import OverlayMount

    cfg = containers.create_from_image(cstore, images, image_ref, opts, supervisor=os.getpid())
    overlay = None
    code: int | None = None
    proc = None
    try:
        cfg = containers.setup_network(cstore, cfg)
        _network_notes(cfg)
        paths = containers.rootfs_paths(cstore, cfg.id)
        overlay = OverlayMount(cfg.extra["lowerdirs"], paths["upper"], paths["work"], paths["rootfs"])
        overlay.mount()
        containers.prepare_volumes(cstore, cfg)
        stdin = None if opts.interactive or opts.tty else os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        with sandbox.SignalForwarder() as forwarder:
            try:
                proc = sandbox.start(cfg.spec, container_id=cfg.id, state_dir=cstore.state_dir, stdin=stdin)
            finally:
                if stdin is not None:
                    os.close(stdin)
            forwarder.attach(proc)
            try:
                with cstore.lock(cfg.id):
                    cstore.move(cfg.id, cfg.name, st.RUNNING, pid=proc.pid, started_at=time.time(),
                                shim_pid=os.getpid())
            finally:
                code = sandbox.foreground(proc, forward_input=opts.interactive)
    finally:
        if overlay is not None:
            overlay.unmount()
        containers.release_resources(cstore, cfg)
        try:
            with cstore.lock(cfg.id):
                if code is not None:
                    cstore.move(cfg.id, cfg.name, st.EXITED, pid=0, exit_code=code, finished_at=time.time(),
                                oom_killed=code == 137 and _oom(proc), shim_pid=0)
                elif cstore.read_state(cfg.id).live:     # start failed after the record went live
                    cstore.move(cfg.id, cfg.name, st.EXITED, pid=0, exit_code=255, finished_at=time.time(),
                                shim_pid=0)
                cstore.clear_shim(cfg.id)
            if opts.rm:
                sandbox.cleanup(cfg.id, cstore.state_dir)
                cstore.remove(cfg.id)
        except st.ContainerNotFound:
            pass                        # removed meanwhile (rm -f from another shell)
    return code


def _network_notes(cfg) -> None:
    """What the network setup wants the user told (the default network moved off a busy subnet)."""
    for note in (cfg.network or {}).get("notes", ()):
        click.echo(f"pybuild: {note}", err=True)


def _oom(proc) -> bool:
    try:
        return proc.oom_killed()
    except OSError:
        return False


@click.command("create", context_settings={"ignore_unknown_options": False, "allow_interspersed_args": False})
@_run_options
@pass_settings
def create_cmd(settings: Settings, **kw) -> None:
    """Create a container without starting it; print its id."""
    opts = build_options(kw)
    images, containers_store = _stores(settings)
    from runner import containers

    cfg = containers.create_from_image(containers_store, images, kw["image"], opts)
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
