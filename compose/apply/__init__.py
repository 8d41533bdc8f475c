"""The engine: a loaded :class:`compose.model.Project` applied to pybuild's runner, builder and
registry client, in-process. One import for the CLI:

    compose.apply.engine    Engine (stores, registry settings), Reporter (where progress goes)
    compose.apply.up        up: images, networks, volumes, containers in dependency order, --wait
    compose.apply.down      down: containers in reverse order, networks, volumes (-v), images (--rmi)
    compose.apply.state     the project's containers (by label), the projects on this host (ls)
    compose.apply.ops       start, stop, restart, kill, rm, pause, unpause, top, images, port
    compose.apply.oneoff    run (one-off container), exec
    compose.apply.logs      logs, and up's attached mode (prefixed lines, Ctrl-C stops the project)
    compose.apply.images    build, pull, push
    compose.apply.runopts   a service -> runner.options.RunOptions
"""

from __future__ import annotations

from .down import DownOptions, down
from .engine import Engine, Reporter
from .errors import NoSuchService, ServiceFailed, Unsupported
from .images import build_service, ensure_images, pull_image, push_image
from .logs import attach, stream_logs
from .oneoff import RunRequest, exec_in_service, run
from .state import ProjectContainer, ProjectSummary, list_projects, project_containers
from .up import UpOptions, UpResult, up

__all__ = ["Engine", "Reporter", "UpOptions", "UpResult", "up", "DownOptions", "down", "RunRequest", "run",
           "exec_in_service", "attach", "stream_logs", "build_service", "ensure_images", "pull_image",
           "push_image", "ProjectContainer", "ProjectSummary", "list_projects", "project_containers",
           "NoSuchService", "ServiceFailed", "Unsupported"]
