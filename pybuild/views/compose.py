"""How ``pybuild compose`` shows things: ``ps`` (table, ``--format json``), ``ls``, ``images``, the
event lines of ``up``/``down`` and the prefixed, coloured log lines of ``logs`` and attached ``up``."""

from __future__ import annotations

import json
import time

from .containers import human_ago, human_status, ports_text
from .processes import tabwriter

__all__ = ["ps_lines", "ps_json", "ls_lines", "ls_json", "images_lines", "event_line", "Colours"]

PS_HEAD = ("NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS")


def _command(cfg) -> str:
    text = " ".join(cfg.spec.process.args)
    return json.dumps(text if len(text) <= 20 else text[:19] + "…", ensure_ascii=False)


def ps_lines(containers, now: float | None = None) -> list[str]:
    """``docker compose ps``: one row per container (a :class:`compose.apply.ProjectContainer`)."""
    now = time.time() if now is None else now
    rows = [PS_HEAD]
    for c in containers:
        cfg, cur = c.info.config, c.info.state
        rows.append((c.name, cfg.image, _command(cfg), c.service, f"{human_ago(cfg.created, now)} ago",
                     human_status(cur, now), ports_text(cfg.ports) if cur.live else ""))
    return tabwriter(rows, minwidth=0)


def ps_document(c) -> dict:
    """One container as ``docker compose ps --format json`` writes it (one object per line)."""
    cfg, cur = c.info.config, c.info.state
    return {
        "ID": cfg.id, "Name": c.name, "Names": c.name, "Image": cfg.image, "Command": " ".join(cfg.spec.process.args),
        "Project": cfg.labels.get("com.docker.compose.project", ""), "Service": c.service,
        "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(cfg.created)),
        "State": cur.status, "Health": cur.health.status if cur.health else "", "ExitCode": cur.exit_code,
        "Status": human_status(cur), "Labels": ",".join(f"{k}={v}" for k, v in sorted(cfg.labels.items())),
        "Publishers": [{"URL": p.host_ip, "TargetPort": p.container_port, "PublishedPort": p.host_port,
                        "Protocol": p.protocol} for p in cfg.ports],
        "Ports": ports_text(cfg.ports) if cur.live else "",
    }


def ps_json(containers) -> list[str]:
    return [json.dumps(ps_document(c)) for c in containers]


def ls_lines(projects) -> list[str]:
    rows = [("NAME", "STATUS", "CONFIG FILES")] + [(p.name, p.status_text, p.config_files) for p in projects]
    return tabwriter(rows, minwidth=0)


def ls_json(projects) -> str:
    return json.dumps([{"Name": p.name, "Status": p.status_text, "ConfigFiles": p.config_files} for p in projects])


def _size(n: int) -> str:
    for unit, div in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= div:
            return f"{n / div:.3g}{unit}"
    return f"{n}B"


def images_lines(rows) -> list[str]:
    out = [("CONTAINER", "REPOSITORY", "TAG", "IMAGE ID", "SIZE")]
    out += [(r.container, r.repository, r.tag, r.image_id.split(":")[-1][:12], _size(r.size)) for r in rows]
    return tabwriter(out, minwidth=0)


def event_line(kind: str, name: str, status: str) -> str:
    """`` ✔ Container demo-web-1  Started`` (the tick only for finished steps)."""
    done = status in ("Created", "Started", "Stopped", "Removed", "Built", "Pulled", "Pushed", "Running",
                      "Healthy", "Exited", "Restarted", "Killed", "Paused", "Unpaused")
    return f" {'✔' if done else '·'} {kind} {name}  {status}"


class Colours:
    """A colour per log prefix on a terminal, as Compose cycles them; plain text otherwise."""

    _CYCLE = (36, 33, 32, 35, 34, 96, 93, 92, 95, 94)

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._given: dict[str, int] = {}

    def paint(self, prefix: str) -> str:
        if not self.enabled:
            return prefix
        code = self._given.setdefault(prefix, self._CYCLE[len(self._given) % len(self._CYCLE)])
        return f"\x1b[{code}m{prefix}\x1b[0m"
