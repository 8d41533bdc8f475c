"""The one entry point of loading: files on disk -> a validated, frozen :class:`Project`.

Contract of :func:`load_project`:

- ``files``: the ``-f`` values (relative to the current directory; ``-`` reads ``stdin``), or empty to
  look for ``compose.yaml`` & co. (and ``COMPOSE_FILE``) as :mod:`compose.find` does.
- The interpolation environment is ``environ`` (default ``os.environ``) over the ``--env-file`` files
  (later files win) or, without them, the project directory's ``.env``.
- Each file is parsed (lines kept), interpolated, validated against the Compose schema, expanded,
  has its ``extends`` resolved, and is merged over the previous files. Relative paths of every
  ``-f`` file are relative to the project directory (``--project-directory``, else the first
  file's directory), as in Compose v2.
- Profiles: ``profiles`` (default ``COMPOSE_PROFILES``; ``*`` = all) choose the services; a service
  named in ``targets`` enables its own profiles, as ``docker compose run tool`` does.
- Any problem raises :class:`compose.errors.ComposeError`; nothing is created on disk, ever.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace

from compose.canon import Where, canon_service
from compose.errors import ComposeFileError
from compose.extends import resolve_extends
from compose.find import find_files
from compose.interpolate import interpolate_tree, path_text, read_env_file
from compose.merge import merge_documents, strip_tags
from compose.model import NetworkSpec, Project
from compose.normalize import Context, build_service
from compose.resources import config_specs, network_specs, secret_specs, volume_specs
from compose.resources import project_name as _resolve_name
from compose.schema import validate
from compose.yamlload import Override, Parsed, Reset, parse

__all__ = ["load_project"]

_TOP_KEYS = {"version", "name", "services", "networks", "volumes", "secrets", "configs"}


class _MergedWhere:
    """Errors about the merged document point at the last file that wrote the path."""

    def __init__(self, parsed: list[Parsed]) -> None:
        self.parsed = parsed

    def error(self, why: str, path, line_path=None) -> ComposeFileError:
        look = tuple(path if line_path is None else line_path)
        while True:
            for p in reversed(self.parsed):
                if look in p.lines:
                    return ComposeFileError(why, file=_show(p.file), path=path_text(path), line=p.lines[look])
            if not look:
                break
            look = look[:-1]
        first = self.parsed[0].file if self.parsed else None
        return ComposeFileError(why, file=_show(first) if first else None, path=path_text(path))


def _show(file: str) -> str:
    if file == "-":
        return "-"
    rel = os.path.relpath(file)
    return rel if not rel.startswith("..") else file


def _dotenv(env_files, directory: str, environ) -> dict:
    out: dict = {}
    if env_files:
        for f in env_files:
            path = os.path.abspath(f)
            for k, v in read_env_file(path, env={**out, **environ}):
                if v is not None:
                    out[k] = v
        return out
    path = os.path.join(directory, ".env")
    if os.path.isfile(path):
        for k, v in read_env_file(path, env=environ):
            if v is not None:
                out[k] = v
    return out


def load_project(files=(), project_name=None, project_dir=None, env_files=(), profiles=(), environ=None, *,
                 targets=(), stdin=None) -> Project:
    """Load a project. ``project_name`` is ``-p``; see the module docstring for the rest."""
    environ = dict(os.environ if environ is None else environ)
    cli_name = project_name
    cwd = os.getcwd()
    files = tuple(files or ())
    guess_dir = os.path.abspath(project_dir) if project_dir else (
        os.path.dirname(os.path.abspath(files[0])) if files and files[0] != "-" else cwd)
    env = {**_dotenv(env_files, guess_dir, environ), **environ}
    paths = find_files(files, cwd, env)
    if project_dir is None:
        project_dir = os.path.dirname(paths[0]) if paths[0] != "-" else cwd
        if not env_files and project_dir != guess_dir:
            env = {**_dotenv((), project_dir, environ), **environ}
    project_dir = os.path.abspath(project_dir)

    missing: set = set()
    parsed_all: list[Parsed] = []

    def read(path: str, base_dir: str):
        text = _read_text(path, stdin)
        parsed = parse(text, _show(path))
        parsed.data = interpolate_tree(parsed.data, env, _show(path), parsed.line, missing)
        if parsed.data is not None and not isinstance(parsed.data, dict):
            raise ComposeFileError("top-level object must be a mapping", file=_show(path), line=1)
        where = Where(_show(path), parsed.line)
        validate(strip_tags(parsed.data), where)
        data = dict(parsed.data or {})
        services = data.get("services") or {}
        data["services"] = {name: _canon(svc, base_dir, where, name, env) for name, svc in services.items()}
        return parsed, data, where

    def load_other(path: str):
        parsed, data, where = read(path, os.path.dirname(path))
        parsed_all.append(parsed)
        return resolve_extends(data["services"], where, load_other, path), where

    merged: dict = {}
    for path in paths:
        parsed, data, where = read(path, project_dir)
        parsed_all.append(parsed)
        data["services"] = resolve_extends(data["services"], where, load_other, path)
        merged = merge_documents(merged, data) if merged else data
    merged = strip_tags(merged)  # a !reset with nothing beneath it (first file, extends base) is just gone
    where = _MergedWhere(parsed_all)
    return _project(merged, where, cli_name, project_dir, env, paths, profiles, targets, missing)


def _canon(svc, base_dir, where, name, env):
    if isinstance(svc, Reset):
        return svc
    if isinstance(svc, Override):
        return Override(canon_service(svc.value, base_dir, where, ("services", name), env))
    return canon_service(svc, base_dir, where, ("services", name), env)


def _read_text(path: str, stdin) -> str:
    if path == "-":
        return (stdin or sys.stdin).read()
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except UnicodeDecodeError:
        raise ComposeFileError("not UTF-8 text", file=_show(path)) from None
    except OSError as exc:
        raise ComposeFileError(f"cannot read: {exc.strerror}", file=_show(path)) from None


def _active_profiles(profiles, env, services: dict, targets) -> set:
    active = set(profiles or ())
    if not active and env.get("COMPOSE_PROFILES"):
        active = {p.strip() for p in env["COMPOSE_PROFILES"].split(",") if p.strip()}
    for t in targets or ():
        svc = services.get(t)
        if svc is None:
            raise ComposeFileError(f"no such service: {t}")
        active.update(svc.get("profiles") or ())
    return active


def _enabled(svc: dict, active: set) -> bool:
    mine = svc.get("profiles") or ()
    return not mine or "*" in active or bool(active.intersection(mine))


def _project(merged, where, cli_name, project_dir, env, paths, profiles, targets, missing) -> Project:
    for key in merged:
        if key not in _TOP_KEYS and not key.startswith("x-"):
            raise where.error(f"{key} is not supported by pybuild", (key,))
    name = _resolve_name(cli_name, merged.get("name"), env, project_dir)
    raw_services = merged.get("services") or {}
    declared_nets = dict(merged.get("networks") or {})
    nets = network_specs(declared_nets, name, where)
    if "default" not in nets:
        nets["default"] = NetworkSpec(name="default", real_name=f"{name}_default")
    vols = volume_specs(merged.get("volumes"), name, where)
    secrets = secret_specs(merged.get("secrets"), project_dir, env, where)
    configs = config_specs(merged.get("configs"), project_dir, env, where)
    ctx = Context(where=where, environ=env, networks=set(nets), volumes=set(vols), secrets=secrets,
                  configs=configs, services=set(raw_services))
    active = _active_profiles(profiles, env, raw_services, targets)
    built = {n: build_service(n, svc, ctx) for n, svc in raw_services.items()}
    enabled = [n for n in raw_services if _enabled(raw_services[n], active)]
    services = []
    for n in enabled:
        svc = built[n]
        deps = []
        for dep in svc.depends_on:
            if dep.service in enabled:
                deps.append(dep)
            elif dep.required:
                raise where.error(f"depends on {dep.service}, which is not enabled by the active profiles "
                                  f"({', '.join(sorted(active)) or 'none'})", ("services", n, "depends_on", dep.service))
        if len(deps) != len(svc.depends_on):
            svc = replace(svc, depends_on=tuple(deps))
        services.append(svc)
    _check_cycles(services, where)
    used_nets = {sn.name for s in services for sn in s.networks}
    used_vols = {m.source for s in services for m in s.volumes if m.type == "volume" and m.source}
    used_secrets = {r.source for s in services for r in s.secrets} | {
        r.source for s in services if s.build for r in s.build.secrets}
    used_configs = {r.source for s in services for r in s.configs}
    warnings = tuple(f'The "{v}" variable is not set. Defaulting to a blank string.' for v in sorted(missing))
    return Project(
        name=name, working_dir=project_dir, services=tuple(services),
        networks=tuple(spec for k, spec in nets.items() if k in used_nets),
        volumes=tuple(spec for k, spec in vols.items() if k in used_vols),
        secrets=tuple(spec for k, spec in secrets.items() if k in used_secrets),
        configs=tuple(spec for k, spec in configs.items() if k in used_configs),
        environment=tuple(sorted(env.items())), files=tuple(paths),
        profiles=tuple(sorted(active)), disabled=tuple(n for n in raw_services if n not in enabled),
        warnings=warnings)


def _check_cycles(services, where) -> None:
    graph = {s.name: [d.service for d in s.depends_on] for s in services}
    for s in services:
        if s.network_mode and s.network_mode.startswith("service:"):
            graph[s.name].append(s.network_mode.split(":", 1)[1])
    state: dict = {}

    def visit(n, stack):
        if state.get(n) == 2:
            return
        if state.get(n) == 1:
            cycle = stack[stack.index(n):] + [n]
            raise where.error("dependency cycle: " + " -> ".join(cycle), ("services", n, "depends_on"))
        state[n] = 1
        for d in graph.get(n, ()):
            visit(d, stack + [n])
        state[n] = 2

    for n in graph:
        visit(n, [])
