"""The command table and the top-level help rendered from it, without importing click.

``COMMANDS`` maps each subcommand to the module and attribute that define it and its one-line
help; :mod:`pybuild.group` builds the click group from it. ``pybuild``, ``pybuild --help`` and
``pybuild -h`` need nothing else, so :func:`top_help` writes the same text click would (same
width rule, same wrapping) and the process never imports click: tests compare the two.
"""

from __future__ import annotations

import os
import sys

__all__ = ["COMMANDS", "GROUPS", "ALIASES", "DOCKER_EXIT_CODES", "OPTION_HELP", "DEFAULT_ROOT", "DEFAULT_STATE", "DESCRIPTION", "USAGE", "top_help"]

from layers.store.location import default_location as _default_location

_LOCATION = _default_location()  # root: /var/lib/pybuild and /run/pybuild; rootless: the user's XDG dirs
DEFAULT_ROOT = _LOCATION.root
DEFAULT_STATE = _LOCATION.state

DESCRIPTION = "pybuild: build, ship and run OCI container images, without a daemon."
USAGE = "Usage: pybuild [OPTIONS] COMMAND [ARGS]..."

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
    "system": ("pybuild.group", "system_group", "Manage pybuild (info, df, prune, events)"),
    "image": ("pybuild.group", "image_group", "Manage images"),
    "fsck": ("pybuild.cmd_images", "fsck_cmd", "Check the local store"),
    # registries (cmd_registry)
    "pull": ("pybuild.cmd_registry", "pull_cmd", "Pull an image from a registry"),
    "push": ("pybuild.cmd_registry", "push_cmd", "Push an image to a registry"),
    "login": ("pybuild.cmd_registry", "login_cmd", "Log in to a registry"),
    "logout": ("pybuild.cmd_registry", "logout_cmd", "Log out from a registry"),
    "manifest": ("pybuild.cmd_manifest", "manifest_group", "Make, inspect and push manifest lists"),
    # signatures, referrers, SBOMs (cmd_sign)
    "key": ("pybuild.cmd_sign", "key_group", "Manage signing keys (cosign's format)"),
    "sign": ("pybuild.cmd_sign", "sign_cmd", "Sign an image on its registry (cosign formats)"),
    "verify": ("pybuild.cmd_sign", "verify_cmd", "Verify the signatures of an image on its registry"),
    "referrers": ("pybuild.cmd_sign", "referrers_cmd", "List the artifacts attached to an image"),
    "sbom": ("pybuild.cmd_sign", "sbom_cmd", "Print the SBOM of an image (local, or attached on its registry)"),
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
    "update": ("pybuild.cmd_events", "update_cmd", "Update the limits and restart policy of containers"),
    "container": ("pybuild.group", "container_group", "Manage containers"),
    "network": ("pybuild.cmd_network", "network_group", "Manage networks"),
    "volume": ("pybuild.cmd_volume", "volume_group", "Manage named volumes"),
    # files of a container (cmd_fs)
    "cp": ("pybuild.cmd_fs", "cp_cmd", "Copy files between a container and the host"),
    "diff": ("pybuild.cmd_fs", "diff_cmd", "Show the changes to a container's filesystem"),
    "commit": ("pybuild.cmd_fs", "commit_cmd", "Create an image from a container's changes"),
    "export": ("pybuild.cmd_fs", "export_cmd", "Export a container's filesystem as a tar archive"),
    # about pybuild itself (cmd_system)
    "info": ("pybuild.cmd_system", "info_cmd", "Show system-wide information"),
    "version": ("pybuild.cmd_system", "version_cmd", "Show the pybuild version information"),
    "events": ("pybuild.cmd_events", "events_cmd", "Show container and image events"),
    # building (cmd_build)
    "build": ("pybuild.cmd_build", "build_cmd", "Build an image from a Dockerfile"),
    "kube": ("pybuild.cmd_kube", "kube_group", "Kubernetes manifests for builds in a cluster"),
    # multi-container projects (cmd_compose, over the compose room)
    "compose": ("pybuild.cmd_compose", "compose_group", "Define and run multi-container applications"),
}

# Docker's management groups: group -> subcommand -> a top-level command's name (the same command
# under another name), or (module, attribute, help[, preset arguments put before the user's]).
# Adding a subcommand is one line; the module is imported only when the subcommand runs.
GROUPS: dict[str, dict[str, str | tuple]] = {
    "image": {
        "build": "build", "history": "history", "import": "import", "load": "load",
        "ls": "images", "list": "images", "pull": "pull", "push": "push", "rm": "rmi", "remove": "rmi",
        "save": "save", "tag": "tag",
        "inspect": ("pybuild.cmd_images", "inspect_cmd", "Show low-level information on images",
                    ("--type", "image")),
        "prune": ("pybuild.cmd_prune", "image_prune_cmd", "Remove unused images"),
    },
    "container": {
        "attach": "attach", "commit": "commit", "cp": "cp", "create": "create", "diff": "diff",
        "exec": "exec", "export": "export", "kill": "kill", "logs": "logs", "ls": "ps", "list": "ps",
        "ps": "ps", "pause": "pause", "port": "port", "rename": "rename", "restart": "restart",
        "rm": "rm", "remove": "rm", "run": "run", "start": "start", "stats": "stats", "stop": "stop",
        "top": "top", "unpause": "unpause", "update": "update", "wait": "wait",
        "inspect": ("pybuild.cmd_images", "inspect_cmd", "Show low-level information on containers",
                    ("--type", "container")),
        "prune": ("pybuild.cmd_containers", "container_prune", "Remove all stopped containers"),
    },
    "system": {
        "info": "info", "events": "events",
        "df": ("pybuild.cmd_images", "system_df_cmd", "Show disk usage"),
        "prune": ("pybuild.cmd_images", "system_prune_cmd", "Remove unused data"),
    },
}

# commands that fail with Docker's exit codes (pybuild.exitcodes): (module, attribute) -> the code of
# pybuild's own failures (None: the error's own code); 126/127 when the command cannot be run
DOCKER_EXIT_CODES: dict[tuple[str, str], int | None] = {
    ("pybuild.cmd_run", "run_cmd"): 125,
    ("pybuild.cmd_run", "create_cmd"): 125,
    ("pybuild.cmd_containers", "start_cmd"): None,
    ("pybuild.cmd_containers", "exec_cmd"): None,
}

# subcommand aliases in the groups that modules define themselves: group -> alias -> subcommand
ALIASES: dict[str, dict[str, str]] = {
    "network": {"remove": "rm", "list": "ls"},
    "volume": {"remove": "rm", "list": "ls"},
}

# global option -> its help; the click group declares the options with these texts
OPTION_HELP: dict[str, str] = {
    "--root": "Store root (images, blobs, snapshots, containers).",
    "--state-dir": "Runtime state directory.",
    "--insecure-registry": "Registry host allowed over plain http or unverified TLS (also PYBUILD_INSECURE_REGISTRIES).",
    "--tls-ca": "CA bundle to verify registries with.",
    "--debug": "Show tracebacks for errors.",
    "--version": "Show the version and exit.",
    "--help": "Show this message and exit.",
}

# the Options section as click renders it: (term, help) rows in declaration order
_OPTION_ROWS = (
    ("--root TEXT", f"{OPTION_HELP['--root']}  [default: {DEFAULT_ROOT}]"),
    ("--state-dir TEXT", f"{OPTION_HELP['--state-dir']}  [default: {DEFAULT_STATE}]"),
    ("--insecure-registry TEXT", OPTION_HELP["--insecure-registry"]),
    ("--tls-ca FILE", OPTION_HELP["--tls-ca"]),
    ("--debug", OPTION_HELP["--debug"]),
    ("--version", OPTION_HELP["--version"]),
    ("-h, --help", OPTION_HELP["--help"]),
)


def _help_width() -> int:
    """click's rule: the terminal's columns (``COLUMNS`` first, as :func:`shutil.get_terminal_size`
    reads them, 80 when unknown) capped at 80, minus 2, at least 50."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
        columns = columns or 80
    return max(min(columns, 80) - 2, 50)


def _definition_list(rows: tuple[tuple[str, str], ...] | list[tuple[str, str]], width: int) -> list[str]:
    """click's ``HelpFormatter.write_dl`` at indent 2: terms padded to the widest (at most 30)."""
    import textwrap          # here: every command imports this module, only help wraps text

    first_col = min(max(len(term) for term, _ in rows), 30) + 2
    text_width = max(width - first_col - 2, 10)
    lines = []
    for term, text in rows:
        wrapped = textwrap.wrap(text, text_width, replace_whitespace=False) or [""]
        if len(term) <= first_col - 2:
            lines.append(f"  {term}{' ' * (first_col - len(term))}{wrapped[0]}")
        else:
            lines.append(f"  {term}")
            lines.append(f"{' ' * (first_col + 2)}{wrapped[0]}")
        lines.extend(f"{' ' * (first_col + 2)}{line}" for line in wrapped[1:])
    return lines


def top_help() -> str:
    """The text of ``pybuild --help``, as click would write it on this terminal."""
    import textwrap

    width = _help_width()
    lines = [USAGE, ""]
    lines += textwrap.wrap(DESCRIPTION, width, initial_indent="  ", subsequent_indent="  ",
                           replace_whitespace=False)
    lines += ["", "Options:"] + _definition_list(_OPTION_ROWS, width)
    lines += ["", "Commands:"] + _definition_list([(name, COMMANDS[name][2]) for name in sorted(COMMANDS)], width)
    return "\n".join(lines) + "\n"
