"""Container commands: ps, logs, exec, start, stop, restart, kill, rm, pause, unpause, wait, attach,
top, stats, port, rename, container prune. Each is a few lines over :mod:`runner.containers`; a
command that decides its exit code returns it (``pybuild.cli.main`` exits)."""

from __future__ import annotations

import json
import sys

import click

from .context import Settings, pass_settings

__all__ = ["inspect_container", "container_store"]


def _host_addr(mapping: dict) -> str:
    """``IP:PORT`` of a port mapping given as its record's dict (``pybuild.views.containers.host_addr``)."""
    from runner.records import PublishedPort

    from .views.containers import host_addr

    return host_addr(PublishedPort.from_dict({"container_port": 0, **mapping}))


def _ports_text(ports) -> str:
    from runner.records import PublishedPort

    from .views.containers import ports_text

    return ports_text([PublishedPort.from_dict(p) for p in ports])


def container_store(settings: Settings):
    """The container store, after finishing what killed pybuild processes left (``reap_abandoned``)."""
    from .fastps import container_store as open_store

    return open_store(settings)




def inspect_container(settings: Settings, name: str) -> dict:
    """Docker-like inspect document of one container (used by ``pybuild inspect``)."""
    from runner.details import details

    from .views.containers import inspect_document

    return inspect_document(details(container_store(settings), name))


def _each(store, refs: tuple[str, ...], fn, *, parallel: bool = False) -> int:
    """Apply ``fn`` to the full id of every ref, print each ref done (in the order given); report
    failures and return 1 after trying all (else 0). The refs are resolved together (one read of the
    records, not one per ref). ``parallel``: the refs are handled at once (``docker stop a b c`` does
    not wait for ``a``'s timeout before signalling ``b``); each container has its own lock."""
    from layers.errors import PybuildError

    def one(target) -> str | None:
        if isinstance(target, PybuildError):
            return str(target)
        try:
            fn(target.id)
        except PybuildError as exc:
            return str(exc)
        return None

    targets = store.resolve_many(refs)
    if parallel and len(refs) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(32, len(refs)), thread_name_prefix="ctr") as pool:
            results = list(pool.map(one, targets))
    else:
        results = [one(t) for t in targets]
    failed = 0
    for ref, error in zip(refs, results):
        if error is None:
            click.echo(ref)
        else:
            click.echo(f"pybuild: {error}", err=True)
            failed += 1
    return 1 if failed else 0


@click.command("ps")
@click.option("-a", "--all", "show_all", is_flag=True, help="Show all containers (default: running only).")
@click.option("-q", "--quiet", is_flag=True, help="Only show container ids.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate ids and commands.")
@click.option("--format", "fmt", default=None,
              help="'table', 'json', or a Go template ('table {{.ID}}\\t{{.Names}}', '{{json .}}').")
@click.option("-f", "--filter", "filters", multiple=True,
              help="Filter: id=, name=, status=, label=, ancestor=, exited=.")
@click.option("-n", "--last", type=int, default=-1, help="Show the N last created containers (all states).")
@click.option("-l", "--latest", is_flag=True, help="Show the latest created container (all states).")
@click.option("-s", "--size", is_flag=True, help="Show the SIZE column: written bytes (virtual: with the image).")
@pass_settings
def ps_cmd(settings: Settings, show_all: bool, quiet: bool, no_trunc: bool, fmt: str | None,
           filters: tuple[str, ...], last: int, latest: bool, size: bool) -> None:
    """List containers."""
    from .fastps import ps_lines

    for line in ps_lines(settings, show_all=show_all, quiet=quiet, no_trunc=no_trunc, fmt=fmt, filters=filters,
                         last=last, latest=latest, size=size):
        click.echo(line)


@click.command("logs")
@click.option("-f", "--follow", is_flag=True, help="Follow log output.")
@click.option("-n", "--tail", default="all", help="Number of lines to show from the end (default all).")
@click.option("--since", default=None, help="Show logs since a time (RFC3339, Unix time) or duration (10m).")
@click.option("--until", default=None, help="Show logs before a time or duration.")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps.")
@click.argument("container")
@pass_settings
def logs_cmd(settings: Settings, follow: bool, tail: str, since: str | None, until: str | None,
             timestamps: bool, container: str) -> None:
    """Fetch the logs of a container (stdout to stdout, stderr to stderr)."""
    from layers.errors import InvalidInput
    from runner.logs import parse_since, read_logs, while_running

    store = container_store(settings)
    cfg = store.resolve(container)
    if tail != "all" and not tail.lstrip("-").isdigit():
        raise InvalidInput(f"--tail {tail!r}: expected a number or 'all'")
    n = None if tail == "all" or int(tail) < 0 else int(tail)

    out, err = sys.stdout.buffer, sys.stderr.buffer
    for e in read_logs(store.log_path(cfg.id), tail=n, follow=follow, alive=while_running(store, cfg.id),
                       since=parse_since(since) if since else None,
                       until=parse_since(until) if until else None):
        stream = err if e.stream == "stderr" else out
        stream.write(((e.time + " ") if timestamps else "").encode() + e.text.encode())
        if follow:
            stream.flush()
    out.flush()


@click.command("start")
@click.option("-a", "--attach", is_flag=True, help="Attach to output and wait; exit with the container's code.")
@click.argument("containers", nargs=-1, required=True)
@pass_settings
def start_cmd(settings: Settings, attach: bool, containers: tuple[str, ...]) -> int:
    """Start one or more stopped containers."""
    from runner import containers as C

    store = container_store(settings)
    if attach:
        if len(containers) != 1:
            raise click.UsageError("start -a takes exactly one container")
        import time

        begun = time.time()              # output of this run is logged after this instant
        info = C.start(store, containers[0])
        return _attach(store, info.config.id, since=begun)
    return _each(store, containers, lambda ref: C.start(store, ref))


def _attach(store, cid: str, since: float | None = None) -> int:
    """Stream the container's output from ``since`` until it exits; return its exit code."""
    from runner import containers as C
    from runner.logs import read_logs, while_running

    store.event(cid, "attach")
    out, err = sys.stdout.buffer, sys.stderr.buffer
    for e in read_logs(store.log_path(cid), since=since, follow=True, alive=while_running(store, cid)):
        stream = err if e.stream == "stderr" else out
        stream.write(e.text.encode())
        stream.flush()
    return C.wait(store, cid)


@click.command("attach")
@click.argument("container")
@pass_settings
def attach_cmd(settings: Settings, container: str) -> int:
    """Attach to a running container's output (read-only; stdin is not forwarded) until it exits."""
    import time

    from runner import containers as C

    store = container_store(settings)
    cfg = store.resolve(container)
    s = store.status(cfg.id)
    if not s.live:
        raise C.StateConflict(f"container {cfg.name} is not running", current=s.status)
    return _attach(store, cfg.id, since=time.time())


@click.command("stop")
@click.option("-t", "--time", "timeout", type=int, default=None, help="Seconds to wait before SIGKILL.")
@click.argument("containers", nargs=-1, required=True)
@pass_settings
def stop_cmd(settings: Settings, timeout: int | None, containers: tuple[str, ...]) -> int:
    """Stop containers: their stop signal, then SIGKILL after the timeout."""
    from runner.stopping import stop      # not the runner.containers facade: fewer modules to load

    store = container_store(settings)
    return _each(store, containers, lambda ref: stop(store, ref, timeout), parallel=True)


@click.command("restart")
@click.option("-t", "--time", "timeout", type=int, default=None, help="Seconds to wait before SIGKILL.")
@click.argument("containers", nargs=-1, required=True)
@pass_settings
def restart_cmd(settings: Settings, timeout: int | None, containers: tuple[str, ...]) -> int:
    """Restart containers."""
    from runner import containers as C

    store = container_store(settings)
    return _each(store, containers, lambda ref: C.restart(store, ref, timeout), parallel=True)


@click.command("kill")
@click.option("-s", "--signal", "sig", default="SIGKILL", help="Signal to send (default SIGKILL).")
@click.argument("containers", nargs=-1, required=True)
@pass_settings
def kill_cmd(settings: Settings, sig: str, containers: tuple[str, ...]) -> int:
    """Send a signal to containers."""
    from runner import containers as C

    store = container_store(settings)
    C.parse_signal(sig)
    return _each(store, containers, lambda ref: C.kill(store, ref, sig))


@click.command("rm")
@click.option("-f", "--force", is_flag=True, help="Kill a running container first.")
@click.option("-v", "--volumes", is_flag=True, help="Also remove anonymous volumes.")
@click.argument("containers", nargs=-1, required=True)
@pass_settings
def rm_cmd(settings: Settings, force: bool, volumes: bool, containers: tuple[str, ...]) -> int:
    """Remove containers."""
    from runner.lifecycle import remove   # not the runner.containers facade: fewer modules to load

    store = container_store(settings)
    return _each(store, containers, lambda ref: remove(store, ref, force=force, volumes=volumes), parallel=True)


@click.command("pause")
@click.argument("containers", nargs=-1, required=True)
@pass_settings
def pause_cmd(settings: Settings, containers: tuple[str, ...]) -> int:
    """Pause all processes in containers (freezer cgroup)."""
    from runner import containers as C

    store = container_store(settings)
    return _each(store, containers, lambda ref: C.pause(store, ref))


@click.command("unpause")
@click.argument("containers", nargs=-1, required=True)
@pass_settings
def unpause_cmd(settings: Settings, containers: tuple[str, ...]) -> int:
    """Unpause containers."""
    from runner import containers as C

    store = container_store(settings)
    return _each(store, containers, lambda ref: C.unpause(store, ref))


@click.command("wait")
@click.argument("containers", nargs=-1, required=True)
@pass_settings
def wait_cmd(settings: Settings, containers: tuple[str, ...]) -> None:
    """Wait until containers stop; print their exit codes."""
    from runner import containers as C

    store = container_store(settings)
    for ref in containers:
        click.echo(C.wait(store, ref))


@click.command("top", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("container")
@click.argument("ps_options", nargs=-1, type=click.UNPROCESSED)
@pass_settings
def top_cmd(settings: Settings, container: str, ps_options: tuple[str, ...]) -> None:
    """Show the processes of a container (host PIDs) as ``ps -ef`` does."""
    from layers.errors import InvalidInput
    from runner import containers as C

    from .views.processes import TOP_HEAD, tabwriter, top_row

    if ps_options not in ((), ("-ef",), ("-e", "-f"), ("-f", "-e"), ("-fe",), ("ef",)):
        raise InvalidInput(f"top: ps options {' '.join(ps_options)!r} are not supported (only the default, -ef)")
    procs = C.top(container_store(settings), container)
    for line in tabwriter([TOP_HEAD] + [top_row(p) for p in procs]):
        click.echo(line)


@click.command("stats")
@click.option("--no-stream", is_flag=True, help="Print one sample and exit.")
@click.option("--no-trunc", is_flag=True, help="Accepted for Docker's scripts (ids are always 12 characters).")
@click.option("--format", "fmt", default=None,
              help="'table', 'json', or a Go template ('table {{.Name}}\\t{{.CPUPerc}}\\t{{.MemUsage}}').")
@click.argument("containers", nargs=-1)
@pass_settings
def stats_cmd(settings: Settings, no_stream: bool, no_trunc: bool, fmt: str | None, containers: tuple[str, ...]) -> None:
    """Show CPU %, memory and pids of running containers (from cgroups)."""
    from runner.cgroupview import Window          # light: opens the window before the records load

    template = None
    if fmt is not None and fmt != "json":
        from .views import contexts as ctx

        template = ctx.template_for(fmt, ctx.STATS_TABLE, ("table", "json"))
    store = None
    refs = list(containers) or None               # None: every running one, each record read once
    while True:
        # one CPU window shared by all (Docker's --no-stream waits ~1 s for its collector's second
        # sample; 0.1 s gives the same figure sooner), opened first: the store, the records and the
        # output's modules are loaded inside it
        window = Window(0.1 if no_stream else 0.5)
        if store is None:
            store = container_store(settings)
        from runner.listing import StatsWindow

        from layers.errors import PybuildError

        sampling = StatsWindow(store, refs, window)
        if fmt == "json":
            from .views.contexts import StatsFields
        elif template is None:
            from .views.stats import stats_table
        samples = sampling.close()
        for s in samples:
            if isinstance(s, PybuildError):
                raise s
        if fmt == "json":
            for s in samples:
                f = StatsFields(s)
                click.echo(json.dumps({"ID": s.id, "Name": s.name, "CPUPerc": s.cpu_percent,
                                       "MemUsage": s.memory_usage, "MemLimit": s.memory_limit, "PIDs": s.pids,
                                       "MemPerc": f.MemPerc(), "NetIO": f.NetIO(), "BlockIO": f.BlockIO()}))
        else:
            lines = stats_table(samples) if template is None else template.lines(
                [ctx.StatsFields(s) for s in samples], ctx.STATS_TITLES)
            click.echo("\n".join(lines))
        if no_stream:
            return
        sys.stdout.flush()


@click.command("port")
@click.option("--format", "fmt", default=None,
              help="A Go template per mapping ('{{.PrivatePort}}/{{.Type}} -> {{.IP}}:{{.PublicPort}}').")
@click.argument("container")
@click.argument("private_port", required=False, metavar="[PRIVATE_PORT[/PROTO]]")
@pass_settings
def port_cmd(settings: Settings, fmt: str | None, container: str, private_port: str | None) -> None:
    """List port mappings of a running container (a stopped one holds none), or the host addresses
    of one container port."""
    from layers.errors import InvalidInput, NotFound

    from .views.containers import host_addr

    template = None
    if fmt:
        from .template import Template

        template = Template(fmt)
    store = container_store(settings)
    cfg = store.resolve(container)
    ports = cfg.ports if store.status(cfg.id).live else ()
    if private_port is not None:
        number, _, proto = private_port.partition("/")
        if not number.isdigit() or proto not in ("", "tcp", "udp"):
            raise InvalidInput(f"port {private_port!r}: want PORT or PORT/tcp or PORT/udp")
        ports = [p for p in ports if str(p.container_port) == number and p.protocol == (proto or "tcp")]
        if not ports:
            raise NotFound(f"no public port '{number}/{proto or 'tcp'}' published for {cfg.name}")
    if template is not None:
        from .views.contexts import PortFields

        for line in template.lines([PortFields(p) for p in ports]):
            click.echo(line)
        return
    for p in ports:
        click.echo(host_addr(p) if private_port is not None else f"{p.container_port}/{p.protocol} -> {host_addr(p)}")


@click.command("rename")
@click.argument("container")
@click.argument("new_name")
@pass_settings
def rename_cmd(settings: Settings, container: str, new_name: str) -> None:
    """Rename a container."""
    from runner import containers as C

    C.rename(container_store(settings), container, new_name)


@click.command("exec", context_settings={"allow_interspersed_args": False})   # options end at CONTAINER
@click.option("-i", "--interactive", is_flag=True, help="Keep stdin open.")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-terminal.")
@click.option("-e", "--env", "env", multiple=True, help="Set environment variables.")
@click.option("-u", "--user", default=None, help="uid[:gid] to run as.")
@click.option("-w", "--workdir", default=None, help="Working directory inside the container.")
@click.option("-d", "--detach", is_flag=True, help="Run in the background.")
@click.argument("container")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@pass_settings
def exec_cmd(settings: Settings, interactive: bool, tty: bool, env: tuple[str, ...], user: str | None,
             workdir: str | None, detach: bool, container: str, command: tuple[str, ...]) -> int:
    """Run a command in a running container (joins its namespaces and cgroup)."""
    from runner.exec import ExecOptions, exec_in

    return exec_in(container_store(settings), container, ExecOptions(
        args=command, env=env, user=user, workdir=workdir, tty=tty, interactive=interactive, detach=detach))


@click.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation (there is no prompt).")
@pass_settings
def container_prune(settings: Settings, force: bool) -> None:
    """Remove all stopped containers."""
    from runner import containers as C

    from layers.store.space import human

    gone = C.prune(container_store(settings))
    if gone:
        click.echo("Deleted Containers:")
        for cfg, _ in gone:
            click.echo(cfg.id)
        click.echo()
    click.echo(f"Total reclaimed space: {human(sum(size for _, size in gone))}")
