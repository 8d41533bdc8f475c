"""``ps`` without click: the body of the ``ps`` command, and its plain forms answered before the click
group is built (as ``pybuild --help`` is), since ``ps`` is what scripts run most often.

:func:`ps_lines` is the command: ``pybuild.cmd_containers.ps_cmd`` (the click command, every
option) and :func:`try_fast` both print what it yields. :func:`try_fast` takes a command line only
when it is exactly ``[--root R] [--state-dir S] ps [-a|--all] [-q|--quiet] [--no-trunc]`` (short
flags may be combined, ``--opt=value`` spellings accepted) with no ``PYBUILD_DEBUG``; anything else,
including every mistake, returns ``None`` and the click group parses it, so options, errors, help
and exit codes stay click's. :func:`container_store` opens the container store for every command.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

from .commands import DEFAULT_ROOT, DEFAULT_STATE

__all__ = ["container_store", "ps_lines", "try_fast"]

_GLOBAL = {"--root": "root", "--state-dir": "state_dir"}
_FLAGS = {"-a": "all", "--all": "all", "-q": "quiet", "--quiet": "quiet", "--no-trunc": "no_trunc"}


def container_store(settings):
    """The container store, after finishing what killed pybuild processes left (``reap_abandoned``)."""
    from runner.reaping import reap_abandoned
    from runner.state import ContainerStore

    def report(cid: str, exc: Exception) -> None:
        sys.stderr.write(f"pybuild: container {cid[:12]}: cleaning up after a killed pybuild: {exc}\n")

    store = ContainerStore(settings.root, settings.state_dir)
    reap_abandoned(store, on_error=report)
    return store


def ps_lines(settings, *, show_all: bool = False, quiet: bool = False, no_trunc: bool = False,
             fmt: str | None = None, filters: tuple[str, ...] = (), last: int = -1, latest: bool = False,
             size: bool = False) -> Iterator[str]:
    """The lines ``docker ps`` prints for these options."""
    from runner.listing import list_containers

    template = None
    if fmt is not None:
        from .views import contexts as ctx

        template = ctx.template_for(fmt, ctx.PS_TABLE)
    store = container_store(settings)
    infos = list_containers(store, all=show_all, filters=filters, last=1 if latest else last)
    if quiet:
        for i in infos:
            yield i.config.id if no_trunc else i.config.short_id
        return
    if template is not None:
        from runner.listing import container_size

        measure = size or ".Size" in (fmt or "")                    # Docker measures for {{.Size}} too
        rows = [ctx.ContainerFields(i, trunc=not no_trunc, size=container_size(store, i.config) if measure else None)
                for i in infos]
        yield from template.lines(rows, ctx.CONTAINER_TITLES)
        return
    yield from _table(store, infos, no_trunc, size)


def _table(store, infos, no_trunc: bool, size: bool) -> Iterator[str]:
    from .views.containers import human_ago, human_status, ports_text

    rows = [("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES") + (("SIZE",) if size else ())]
    for i in infos:
        cmd = " ".join(i.config.command)
        if not no_trunc and len(cmd) > 20:
            cmd = cmd[:19] + "…"
        row = (i.config.id if no_trunc else i.config.short_id, i.config.image, f'"{cmd}"',
               human_ago(i.config.created) + " ago", human_status(i.state),
               ports_text(i.config.ports), i.config.name)
        if size:
            from layers.store.space import human
            from runner.listing import container_size

            sz = container_size(store, i.config)
            row += (f"{human(sz.rw)} (virtual {human(sz.virtual)})",)
        rows.append(row)
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for r in rows:
        yield "   ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip()


def _parse(args: list[str]) -> dict | None:
    """The options of a plain ``ps`` command line, or None when click must parse it."""
    opts: dict = {"root": os.environ.get("PYBUILD_ROOT") or DEFAULT_ROOT,
                  "state_dir": os.environ.get("PYBUILD_STATE") or DEFAULT_STATE}
    i = 0
    while i < len(args) and args[i] != "ps":
        name, eq, value = args[i].partition("=")
        if name not in _GLOBAL:
            return None
        if not eq:
            if i + 1 >= len(args) or args[i + 1].startswith("-"):
                return None
            value, i = args[i + 1], i + 1
        if not value:
            return None
        opts[_GLOBAL[name]] = value
        i += 1
    if i >= len(args):
        return None
    for arg in args[i + 1:]:
        if arg in _FLAGS:
            opts[_FLAGS[arg]] = True
        elif len(arg) > 2 and arg[0] == "-" and arg[1] != "-" and all(f"-{c}" in _FLAGS for c in arg[1:]):
            for c in arg[1:]:
                opts[_FLAGS[f"-{c}"]] = True
        else:
            return None
    return opts


def try_fast(args: list[str]) -> int | None:
    """Run a plain ``ps`` command line and return 0, or ``None`` (nothing done) for click to take it.
    Errors are raised for the caller to report as every command's are."""
    if os.environ.get("PYBUILD_DEBUG"):
        return None
    opts = _parse(args)
    if opts is None:
        return None
    from .context import Settings, enter_namespaces, env_list

    enter_namespaces(os.path.abspath(opts["state_dir"]))
    settings = Settings(root=os.path.abspath(opts["root"]), state_dir=os.path.abspath(opts["state_dir"]),
                        insecure_registries=env_list("PYBUILD_INSECURE_REGISTRIES"))
    out = sys.stdout
    for line in ps_lines(settings, show_all=opts.get("all", False), quiet=opts.get("quiet", False),
                         no_trunc=opts.get("no_trunc", False)):
        out.write(line + "\n")
    return 0
