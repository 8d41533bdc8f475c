"""Metadata instructions (ENV, LABEL, WORKDIR, USER, EXPOSE, VOLUME, CMD, ENTRYPOINT, SHELL,
STOPSIGNAL, HEALTHCHECK, ONBUILD, MAINTAINER, ARG) as pure edits of an :class:`ImageConfig`."""

from __future__ import annotations

from layers.config import Healthcheck, ImageConfig

from .. import instructions as I

__all__ = ["apply_meta", "shell_command"]


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


def apply_meta(config: ImageConfig, inst: I.Instruction) -> ImageConfig:
    """Return ``config`` with ``inst`` applied (history is added by the caller). ``inst`` is expanded."""
    c = config.config
    shell = c.shell or ("/bin/sh", "-c")
    if isinstance(inst, I.Env):
        return config.with_config(env=_env_set(c.env, inst.pairs))
    if isinstance(inst, I.Label):
        labels = dict(c.labels)
        labels.update(dict(inst.pairs))
        return config.with_config(labels=labels)
    if isinstance(inst, I.Maintainer):
        return config.with_fields(author=inst.name)
    if isinstance(inst, I.Workdir):
        return config.with_config(working_dir=inst.path)
    if isinstance(inst, I.User):
        return config.with_config(user=inst.user)
    if isinstance(inst, I.Expose):
        return config.with_config(exposed_ports=(*c.exposed_ports, *inst.ports))
    if isinstance(inst, I.Volume):
        return config.with_config(volumes=(*c.volumes, *inst.paths))
    if isinstance(inst, I.Cmd):
        return config.with_config(cmd=shell_command(inst.command, inst.shell_form, shell))
    if isinstance(inst, I.Entrypoint):
        # as Docker: a new ENTRYPOINT resets an inherited CMD
        return config.with_config(entrypoint=shell_command(inst.command, inst.shell_form, shell), cmd=None)
    if isinstance(inst, I.Shell):
        return config.with_config(shell=inst.shell)
    if isinstance(inst, I.Stopsignal):
        return config.with_config(stop_signal=inst.signal)
    if isinstance(inst, I.Healthcheck):
        if inst.test == ("NONE",):
            return config.with_config(healthcheck=Healthcheck(test=("NONE",)))
        return config.with_config(healthcheck=Healthcheck(
            test=inst.test, interval=inst.interval, timeout=inst.timeout, start_period=inst.start_period,
            start_interval=inst.start_interval, retries=inst.retries))
    if isinstance(inst, I.Onbuild):
        return config.with_config(on_build=(*c.on_build, inst.expression))
    if isinstance(inst, I.Arg):
        return config
    raise TypeError(f"not a metadata instruction: {inst.keyword}")
