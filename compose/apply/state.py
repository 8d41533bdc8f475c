"""What exists of a project: its containers, found by their ``com.docker.compose.project`` label
through the runner's listing (never by reading the runner's folders), and the projects on this host.
"""

from __future__ import annotations

from collections import Counter

from compose.plan import LABEL_FILES, LABEL_HASH, LABEL_NUMBER, LABEL_ONEOFF, LABEL_PROJECT, LABEL_SERVICE
from layers.value import frozen

__all__ = ["ProjectContainer", "ProjectSummary", "project_containers", "list_projects", "by_service"]


@frozen
class ProjectContainer:
    """One container of a project, with its record and state as the listing read them."""

    info: object                      # runner.records.ContainerInfo

    @property
    def id(self) -> str:
        return self.info.config.id

    @property
    def name(self) -> str:
        return self.info.config.name

    @property
    def labels(self) -> dict:
        return self.info.config.labels

    @property
    def service(self) -> str:
        return self.labels.get(LABEL_SERVICE, "")

    @property
    def number(self) -> int:
        try:
            return int(self.labels.get(LABEL_NUMBER, "0"))
        except ValueError:
            return 0

    @property
    def config_hash(self) -> str:
        return self.labels.get(LABEL_HASH, "")

    @property
    def oneoff(self) -> bool:
        return self.labels.get(LABEL_ONEOFF) == "True"

    @property
    def status(self) -> str:
        return self.info.state.status

    @property
    def live(self) -> bool:
        return self.info.state.live

    @property
    def health(self) -> str:
        h = self.info.state.health
        return h.status if h else ""


def project_containers(engine, project: str, *, services=(), oneoff: bool | None = False) -> list[ProjectContainer]:
    """The project's containers (every state), by service then number. ``services``: only these;
    ``oneoff``: False the service containers, True the ``run`` ones, None both."""
    from runner.listing import list_containers

    infos = list_containers(engine.containers(), all=True, filters=(f"label={LABEL_PROJECT}={project}",))
    out = [ProjectContainer(i) for i in infos]
    if services:
        out = [c for c in out if c.service in services]
    if oneoff is not None:
        out = [c for c in out if c.oneoff == oneoff]
    out.sort(key=lambda c: (c.service, c.oneoff, c.number, c.name))
    return out


def by_service(containers) -> dict[str, list[ProjectContainer]]:
    out: dict[str, list[ProjectContainer]] = {}
    for c in containers:
        out.setdefault(c.service, []).append(c)
    return out


@frozen
class ProjectSummary:
    """A project as ``compose ls`` shows it: ``statuses`` counts its containers by status."""

    name: str
    statuses: tuple[tuple[str, int], ...]
    config_files: str

    @property
    def status_text(self) -> str:
        return ", ".join(f"{s}({n})" for s, n in self.statuses)

    @property
    def running(self) -> bool:
        return any(s in ("running", "paused", "restarting") for s, _ in self.statuses)


def list_projects(engine, *, all: bool = False) -> list[ProjectSummary]:
    """Projects with at least one container (``all``: stopped ones too, else only running ones)."""
    from runner.listing import list_containers

    counts: dict[str, Counter] = {}
    files: dict[str, str] = {}
    for info in list_containers(engine.containers(), all=True, filters=(f"label={LABEL_PROJECT}",)):
        name = info.config.labels[LABEL_PROJECT]
        counts.setdefault(name, Counter())[info.state.status] += 1
        files.setdefault(name, info.config.labels.get(LABEL_FILES, ""))
    out = [ProjectSummary(n, tuple(sorted(c.items())), files[n]) for n, c in sorted(counts.items())]
    return out if all else [p for p in out if p.running]
