"""Log output of a project: ``logs`` (``-f``, ``--tail``, ``-t``) and the attached mode of ``up``.

Each container's log is read through :func:`runner.logs.read_logs` (following in one thread per
container); lines go to ``sink(prefix, stream, text)`` whole, one at a time, so lines of different
containers never mix. The prefix is the container name padded to the longest one, then ``| ``.
``attach`` returns when every container has exited, when one has and ``abort_on_exit`` is set, or on
Ctrl-C (SIGINT); it then stops the project (dependants first) and returns the exit code
(``exit_code_from`` service's; with ``abort_on_exit`` alone, the first container's to exit; 130 after
Ctrl-C; else 0).
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from compose.model import Project

from .state import ProjectContainer

__all__ = ["stream_logs", "attach", "prefixes"]

Sink = Callable[[str, str, str], None]


def prefixes(containers) -> dict[str, str]:
    width = max((len(c.name) for c in containers), default=0)
    return {c.name: c.name.ljust(width) + "  | " for c in containers}


def _pump(engine, c: ProjectContainer, prefix: str, sink: Sink, lock: threading.Lock, *, follow: bool,
          tail: int | None, since: float | None, timestamps: bool) -> None:
    from runner.logs import read_logs, while_running

    store = engine.containers()
    partial = {"stdout": "", "stderr": ""}
    for e in read_logs(store.log_path(c.id), tail=tail, since=since, follow=follow, alive=while_running(store, c.id)):
        text = partial[e.stream] + e.text
        lines = text.split("\n")
        partial[e.stream] = lines.pop()
        with lock:
            for line in lines:
                sink(prefix, e.stream, (e.time + " " if timestamps else "") + line)
    with lock:
        for stream, rest in partial.items():
            if rest:
                sink(prefix, stream, rest)


def stream_logs(engine, containers, sink: Sink, *, follow: bool = False, tail: int | None = None,
                timestamps: bool = False, since: float | None = None) -> None:
    """Write the logs of ``containers`` to ``sink``; with ``follow`` until every one has stopped."""
    lock = threading.Lock()
    pre = prefixes(containers)
    if not follow:
        for c in containers:
            _pump(engine, c, pre[c.name], sink, lock, follow=False, tail=tail, since=since, timestamps=timestamps)
        return
    threads = [threading.Thread(target=_pump, args=(engine, c, pre[c.name], sink, lock),
                                kwargs=dict(follow=True, tail=tail, since=since, timestamps=timestamps),
                                daemon=True, name=f"logs-{c.name}") for c in containers]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.2)


def attach(engine, project: Project, containers, sink: Sink, *, since: float, abort_on_exit: bool = False,
           exit_code_from: str | None = None, stop_timeout: int | None = None) -> int:
    """``up`` without ``-d``: stream the containers' output until they have all exited (or one,
    with ``abort_on_exit``), or Ctrl-C; then stop the project's containers and return the exit code."""
    from .ops import stop

    lock = threading.Lock()
    pre = prefixes(containers)
    store = engine.containers()
    threads = {c.name: threading.Thread(target=_pump, args=(engine, c, pre[c.name], sink, lock),
                                        kwargs=dict(follow=True, tail=None, since=since, timestamps=False),
                                        daemon=True, name=f"attach-{c.name}") for c in containers}
    for t in threads.values():
        t.start()
    interrupted = False
    first_ended = None
    try:
        while True:
            ended = [n for n, t in threads.items() if not t.is_alive()]
            first_ended = first_ended or (ended[0] if ended else None)
            if len(ended) == len(threads) or (abort_on_exit and ended):
                break
            time.sleep(0.1)
    except KeyboardInterrupt:
        interrupted = True
        engine.reporter.note("Gracefully stopping... (press Ctrl+C again to force)")
    code = 130 if interrupted else 0
    if abort_on_exit and not interrupted and not exit_code_from and first_ended:
        exit_code_from = next(c.service for c in containers if c.name == first_ended)
    if exit_code_from and not interrupted:
        for c in containers:
            if c.service == exit_code_from:
                try:
                    code = store.status(c.id).exit_code
                except Exception:           # noqa: BLE001 - removed meanwhile: no code to give
                    pass
    if interrupted or abort_on_exit:
        stop(engine, project, timeout=stop_timeout)
    for t in threads.values():
        t.join(2.0)
    return code
