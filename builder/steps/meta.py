"""Metadata instructions (ENV, LABEL, WORKDIR, USER, EXPOSE, VOLUME, CMD, ENTRYPOINT, SHELL,
STOPSIGNAL, HEALTHCHECK, ONBUILD, MAINTAINER, ARG) as pure edits of an :class:`ImageConfig`: one
edit per instruction type in :data:`EDITS`. A build applies them after planning expanded the
instruction; ``import --change`` applies the same edits (:mod:`builder.changes`)."""

from __future__ import annotations

from typing import Callable

from layers.config import Healthcheck, ImageConfig

from .. import instructions as I

__all__ = ["EDITS", "apply_meta", "shell_command"]

DEFAULT_SHELL = ("/bin/sh", "-c")


def shell_command(command: tuple[str, ...], shell_form: bool, shell: tuple[str, ...]) -> tuple[str, ...]:
    """Shell form runs as ``SHELL + [script]``; exec form is the argv as written."""
    return (*shell, command[0]) if shell_form else tuple(command)


def _env_set(env: tuple[str, ...], pairs) -> tuple[str, ...]:
    out = list(env)
    for key, value in pairs:
        entry = f"{key}={value}"
        for i, existing in enumerate(out):
            if existing.split("=", 1)[0] == key:
                out[i] = entry
                break
        else:
            out.append(entry)
    return tuple(out)


def _env(config: ImageConfig, inst: I.Env) -> ImageConfig:
    return config.with_config(env=_env_set(config.config.env, inst.pairs))


def _label(config: ImageConfig, inst: I.Label) -> ImageConfig:
    labels = dict(config.config.labels)
    labels.update(dict(inst.pairs))
    return config.with_config(labels=labels)


def _maintainer(config: ImageConfig, inst: I.Maintainer) -> ImageConfig:
    return config.with_fields(author=inst.name)


def _workdir(config: ImageConfig, inst: I.Workdir) -> ImageConfig:
    return config.with_config(working_dir=inst.path)


def _user(config: ImageConfig, inst: I.User) -> ImageConfig:
    return config.with_config(user=inst.user)


def _expose(config: ImageConfig, inst: I.Expose) -> ImageConfig:
    return config.with_config(exposed_ports=(*config.config.exposed_ports, *inst.ports))


def _volume(config: ImageConfig, inst: I.Volume) -> ImageConfig:
    return config.with_config(volumes=(*config.config.volumes, *inst.paths))


def _cmd(config: ImageConfig, inst: I.Cmd) -> ImageConfig:
    shell = config.config.shell or DEFAULT_SHELL
    return config.with_config(cmd=shell_command(inst.command, inst.shell_form, shell))


def _entrypoint(config: ImageConfig, inst: I.Entrypoint) -> ImageConfig:
    # as Docker: a new ENTRYPOINT resets an inherited CMD
    shell = config.config.shell or DEFAULT_SHELL
    return config.with_config(entrypoint=shell_command(inst.command, inst.shell_form, shell), cmd=None)


def _shell(config: ImageConfig, inst: I.Shell) -> ImageConfig:
    return config.with_config(shell=inst.shell)


def _stopsignal(config: ImageConfig, inst: I.Stopsignal) -> ImageConfig:
    return config.with_config(stop_signal=inst.signal)


def _healthcheck(config: ImageConfig, inst: I.Healthcheck) -> ImageConfig:
    if inst.test == ("NONE",):
        return config.with_config(healthcheck=Healthcheck(test=("NONE",)))
    return config.with_config(healthcheck=Healthcheck(
        test=inst.test, interval=inst.interval, timeout=inst.timeout, start_period=inst.start_period,
        start_interval=inst.start_interval, retries=inst.retries))


def _onbuild(config: ImageConfig, inst: I.Onbuild) -> ImageConfig:
    return config.with_config(on_build=(*config.config.on_build, inst.expression))


def _arg(config: ImageConfig, inst: I.Arg) -> ImageConfig:
    return config  # an ARG is a build-time variable: nothing of it reaches the image config


EDITS: dict[type[I.Instruction], Callable[[ImageConfig, I.Instruction], ImageConfig]] = {
    I.Env: _env,
    I.Label: _label,
    I.Maintainer: _maintainer,
    I.Workdir: _workdir,
    I.User: _user,
    I.Expose: _expose,
    I.Volume: _volume,
    I.Cmd: _cmd,
    I.Entrypoint: _entrypoint,
    I.Shell: _shell,
    I.Stopsignal: _stopsignal,
    I.Healthcheck: _healthcheck,
    I.Onbuild: _onbuild,
    I.Arg: _arg,
}


def apply_meta(config: ImageConfig, inst: I.Instruction) -> ImageConfig:
    """Return ``config`` with ``inst`` applied (history is added by the caller). ``inst`` is expanded."""
    edit = EDITS.get(type(inst))
    if edit is None:
        raise TypeError(f"not a metadata instruction: {inst.keyword}")
    return edit(config, inst)
