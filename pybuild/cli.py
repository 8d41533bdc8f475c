"""Entry point: the ``pybuild`` click group, lazy subcommand loading, and error-to-exit mapping.

Subcommands live in ``pybuild/cmd_*.py`` and are imported only when invoked, so ``pybuild --help``
does not import httpx, cryptography or pyroute2. This module is the only place that turns a
library error into a message and an exit code.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from .context import DEFAULT_ROOT, DEFAULT_STATE, Settings, env_list

# command name -> (module, attribute, one-line help shown by --help without importing it)
COMMANDS: dict[str, tuple[str, str, str]] = {
    # images and the local store (cmd_images)
    "import": ("pybuild.cmd_images", "import_cmd", "Create an image from a root filesystem tarball"),
    "images": ("pybuild.cmd_images", "images_cmd", "List images"),
    "tag": ("pybuild.cmd_images", "tag_cmd", "Give an image another name"),
    "rmi": ("pybuild.cmd_images", "rmi_cmd", "Remove images"),
    "inspect": ("pybuild.cmd_images", "inspect_cmd", "Show low-level information on images or containers"),
    "history": ("pybuild.cmd_images", "history_cmd", "Show the history of an image"),
    "save": ("pybuild.cmd_images", "save_cmd", "Save images to a tar archive (OCI layout + manifest.json)"),
    "load": ("pybuild.cmd_images", "load_cmd", "Load images from an OCI layout or docker-archive tar"),
    "system": ("pybuild.cmd_images", "system_group", "Manage the local store (df, prune)"),
    "fsck": ("pybuild.cmd_images", "fsck_cmd", "Check the local store"),
    # registries (cmd_registry)
    "pull": ("pybuild.cmd_registry", "pull_cmd", "Pull an image from a registry"),
    "push": ("pybuild.cmd_registry", "push_cmd", "Push an image to a registry"),
    "login": ("pybuild.cmd_registry", "login_cmd", "Log in to a registry"),
    "logout": ("pybuild.cmd_registry", "logout_cmd", "Log out from a registry"),
    "manifest": ("pybuild.cmd_registry", "manifest_group", "Inspect remote manifests"),
    # running (cmd_run, cmd_containers, cmd_network)
    "run": ("pybuild.cmd_run", "run_cmd", "Run a command in a new container"),
    "create": ("pybuild.cmd_run", "create_cmd", "Create a container without starting it"),
    "bundle": ("pybuild.cmd_run", "bundle_cmd", "Write an OCI runtime bundle for an image"),
    "ps": ("pybuild.cmd_containers", "ps_cmd", "List containers"),
    "logs": ("pybuild.cmd_containers", "logs_cmd", "Fetch the logs of a container"),
    "exec": ("pybuild.cmd_containers", "exec_cmd", "Run a command in a running container"),
    "start": ("pybuild.cmd_containers", "start_cmd", "Start stopped containers"),
    "stop": ("pybuild.cmd_containers", "stop_cmd", "Stop running containers"),
    "restart": ("pybuild.cmd_containers", "restart_cmd", "Restart containers"),
    "kill": ("pybuild.cmd_containers", "kill_cmd", "Send a signal to containers"),
    "rm": ("pybuild.cmd_containers", "rm_cmd", "Remove containers"),
    "pause": ("pybuild.cmd_containers", "pause_cmd", "Pause all processes in containers"),
    "unpause": ("pybuild.cmd_containers", "unpause_cmd", "Unpause containers"),
    "wait": ("pybuild.cmd_containers", "wait_cmd", "Wait for containers to stop, print exit codes"),
    "attach": ("pybuild.cmd_containers", "attach_cmd", "Attach to a running container's output"),
    "top": ("pybuild.cmd_containers", "top_cmd", "Show the processes of a container"),
    "stats": ("pybuild.cmd_containers", "stats_cmd", "Show resource usage of containers"),
    "port": ("pybuild.cmd_containers", "port_cmd", "List port mappings of a container"),
    "rename": ("pybuild.cmd_containers", "rename_cmd", "Rename a container"),
    "container": ("pybuild.cmd_containers", "container_group", "Manage containers (prune)"),
    "network": ("pybuild.cmd_network", "network_group", "Manage networks"),
    "volume": ("pybuild.cmd_volume", "volume_group", "Manage named volumes"),
    # building (cmd_build)
    "build": ("pybuild.cmd_build", "build_cmd", "Build an image from a Dockerfile"),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        entry = COMMANDS.get(name)
        if entry is None:
            return None
        module, attr, _ = entry
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--root", envvar="PYBUILD_ROOT", default=DEFAULT_ROOT, show_default=True,
              help="Store root (images, blobs, snapshots, containers).")
@click.option("--state-dir", envvar="PYBUILD_STATE", default=DEFAULT_STATE, show_default=True,
              help="Runtime state directory.")
@click.option("--insecure-registry", "insecure", multiple=True,
              help="Registry host allowed over plain http or unverified TLS (also PYBUILD_INSECURE_REGISTRIES).")
@click.option("--tls-ca", type=click.Path(exists=True, dir_okay=False), default=None,
              help="CA bundle to verify registries with.")
@click.option("--debug", is_flag=True, envvar="PYBUILD_DEBUG", help="Show tracebacks for errors.")
@click.version_option(package_name="pybuild", prog_name="pybuild")
@click.pass_context
def cli(ctx: click.Context, root: str, state_dir: str, insecure: tuple[str, ...], tls_ca: str | None,
        debug: bool) -> None:
    """pybuild: build, ship and run OCI container images, without a daemon."""
    ctx.obj = Settings(
        root=os.path.abspath(root),
        state_dir=os.path.abspath(state_dir),
        insecure_registries=tuple(insecure) + env_list("PYBUILD_INSECURE_REGISTRIES"),
        tls_ca=tls_ca,
        debug=debug,
    )


def _reset_inherited_signals() -> None:
    """SIGCHLD ignored by whatever started us (it survives execve) makes the kernel reap our
    children at once: every wait for a container, shim or exec'd process would then fail."""
    import signal

    if signal.getsignal(signal.SIGCHLD) == signal.SIG_IGN:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; map :class:`layers.errors.PybuildError` to ``pybuild: message`` and its exit code."""
    from layers.errors import PybuildError

    _reset_inherited_signals()
    try:
        rv = cli.main(args=argv, prog_name="pybuild", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("pybuild: aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    except PybuildError as exc:
        if os.environ.get("PYBUILD_DEBUG"):
            raise
        click.echo(f"pybuild: {exc}", err=True)
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.exit(141)
    except OSError as exc:  # an I/O failure no library turned into a PybuildError: still one line
        if os.environ.get("PYBUILD_DEBUG"):
            raise
        where = f": {exc.filename}" if exc.filename else ""
        click.echo(f"pybuild: {exc.strerror or exc}{where}", err=True)
        sys.exit(1)
    if isinstance(rv, int) and not isinstance(rv, bool):
        # a command that returned its exit code is done with everything it held: skip the
        # interpreter's teardown (~20 ms of each run, stop or rm), output flushed first
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BrokenPipeError:
            rv = rv or 141
        os._exit(rv)
    sys.exit(0)
