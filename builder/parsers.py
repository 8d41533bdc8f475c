"""One parser per Dockerfile keyword (:data:`PARSERS`): the text after the keyword -> a typed
instruction. Each parser takes ``(rest, common, err, escape, heredocs)``: the argument text, the
fields every instruction has (location, source), the located-error factory, the escape character
and the heredocs cut out of the instruction."""

from __future__ import annotations

import posixpath
import re

from . import instructions as I
from .errors import DockerfileError
from . import lex

__all__ = ["PARSERS", "instruction"]


def instruction(keyword: str, value: str, loc: I.Location, source: str, escape: str,
                heredocs: tuple[I.Heredoc, ...]) -> I.Instruction:
    """``KEYWORD value`` (``source`` as written, for history and messages) -> its typed instruction.
    Raises :class:`DockerfileError` at ``loc`` for an unknown keyword or a malformed argument."""

    def err(reason: str) -> DockerfileError:
        return DockerfileError(loc.file, loc.line, keyword, reason)

    rest = value.strip()
    common = {"location": loc, "source": source}
    if keyword not in PARSERS:
        raise err("unknown instruction")
    if not rest and keyword not in ("RUN", "COPY", "ADD") or (not rest and not heredocs):
        raise err("needs at least one argument")
    return PARSERS[keyword](rest, common, err, escape, heredocs)


def _from(rest, common, err, escape, heredocs):
    flags, rest = lex.flags(rest, {"platform": True}, err)
    words = rest.split()
    if len(words) == 3 and words[1].lower() == "as":
        name = words[2].lower()
        if not re.fullmatch(r"[a-z][a-z0-9._-]*", name):
            raise err(f"invalid stage name {words[2]!r}")
        return I.From(image=words[0], name=name, platform=lex.one(flags, "platform", err), **common)
    if len(words) != 1:
        raise err(f"expects 'FROM image [AS name]', got {rest!r}")
    return I.From(image=words[0], platform=lex.one(flags, "platform", err), **common)


def _run(rest, common, err, escape, heredocs):
    flags, rest = lex.flags(rest, {"mount": True, "network": True, "security": True}, err)
    network = lex.one(flags, "network", err)
    if network not in (None, "default", "host", "none"):
        raise err(f"--network must be default, host or none, got {network!r}")
    if lex.one(flags, "security", err) not in (None, "sandbox"):
        raise err("--security=insecure is not supported")
    mounts = tuple(lex.mount(m, err) for m in flags.get("mount", ()))
    if heredocs:
        only = lex.HEREDOC.fullmatch(rest.strip())
        if only and len(heredocs) == 1:
            script = heredocs[0].content
        else:
            script = rest + "\n" + "".join(f"{h.content}{h.name}\n" for h in heredocs)
        return I.Run(command=(script,), shell_form=True, mounts=mounts, network=network,
                     heredocs=heredocs, **common)
    if not rest:
        raise err("needs a command")
    command, shell_form = lex.json_or_shell(rest, err)
    return I.Run(command=command, shell_form=shell_form, mounts=mounts, network=network, **common)


def _copy_like(add: bool):
    def parse_copy(rest, common, err, escape, heredocs):
        allowed = {"chown": True, "chmod": True, "link": False, "exclude": True, "parents": False}
        if add:
            allowed.update({"checksum": True, "keep-git-dir": False})
        else:
            allowed["from"] = True
        flags, rest = lex.flags(rest, allowed, err)
        if rest.startswith("["):
            words, _ = lex.json_or_shell(rest, err)
        else:
            words = tuple(lex.words(rest, escape, err))
        if len(words) < 2:
            raise err("needs at least one source and a destination")
        for src in words[:-1]:
            clean = posixpath.normpath(src.strip("\"'")) if "$" not in src else ""
            if not flags.get("from") and (clean == ".." or clean.startswith("../")):
                raise err(f"source {src} is outside the build context")
        if flags.get("parents"):
            raise err("--parents is not supported")
        return I.Copy(add=add, sources=tuple(words[:-1]), dest=words[-1], from_=lex.one(flags, "from", err),
                      chown=lex.one(flags, "chown", err), chmod=lex.one(flags, "chmod", err),
                      link=bool(flags.get("link")), checksum=lex.one(flags, "checksum", err),
                      excludes=tuple(flags.get("exclude", ())), heredocs=heredocs, **common)

    return parse_copy


def _env(rest, common, err, escape, heredocs):
    return I.Env(pairs=lex.pairs(rest, escape, err, "ENV"), **common)


def _label(rest, common, err, escape, heredocs):
    return I.Label(pairs=lex.pairs(rest, escape, err, "LABEL"), **common)


def _arg(rest, common, err, escape, heredocs):
    out = []
    for w in lex.words(rest, escape, err):
        name, eq, default = w.partition("=")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise err(f"invalid argument name {name!r}")
        out.append((name, default if eq else None))
    return I.Arg(pairs=tuple(out), **common)


def _single(cls, field_name):
    def parse_single(rest, common, err, escape, heredocs):
        return cls(**{field_name: rest}, **common)

    return parse_single


def _list_form(cls, field_name):
    def parse_list(rest, common, err, escape, heredocs):
        if rest.startswith("["):
            words, _ = lex.json_or_shell(rest, err)
        else:
            words = tuple(lex.words(rest, escape, err))
        return cls(**{field_name: tuple(words)}, **common)

    return parse_list


def _command(cls):
    def parse_command(rest, common, err, escape, heredocs):
        command, shell_form = lex.json_or_shell(rest, err)
        return cls(command=command, shell_form=shell_form, **common)

    return parse_command


def _shell(rest, common, err, escape, heredocs):
    words, _ = lex.json_or_shell(rest, err, allow_shell=False)
    if not words:
        raise err("needs a non-empty JSON array")
    return I.Shell(shell=words, **common)


def _healthcheck(rest, common, err, escape, heredocs):
    flags, rest = lex.flags(rest, {"interval": True, "timeout": True, "start-period": True,
                                "start-interval": True, "retries": True}, err)
    if rest.upper() == "NONE":
        if flags:
            raise err("HEALTHCHECK NONE takes no flags")
        return I.Healthcheck(test=("NONE",), **common)
    word, _, cmd = rest.partition(" ")
    if word.upper() != "CMD" or not cmd.strip():
        raise err(f"expects 'NONE' or 'CMD command', got {rest!r}")
    command, shell_form = lex.json_or_shell(cmd.strip(), err)
    test = ("CMD-SHELL", command[0]) if shell_form else ("CMD", *command)
    durations = {}
    for flag in ("interval", "timeout", "start-period", "start-interval"):
        text = lex.one(flags, flag, err)
        if text is not None:
            try:
                durations[flag.replace("-", "_")] = lex.parse_duration(text)
            except ValueError as exc:
                raise err(f"--{flag}: {exc}") from None
    retries = lex.one(flags, "retries", err)
    try:
        n = int(retries) if retries is not None else 0
    except ValueError:
        raise err(f"--retries must be a number, got {retries!r}") from None
    if n < 0:
        raise err("--retries must not be negative")
    return I.Healthcheck(test=test, retries=n, **durations, **common)


def _onbuild(rest, common, err, escape, heredocs):
    word, _, inner_rest = rest.partition(" ")
    inner_kw = word.upper()
    if inner_kw in ("ONBUILD", "FROM", "MAINTAINER"):
        raise err(f"{inner_kw} is not allowed as an ONBUILD trigger")
    inner = instruction(inner_kw, inner_rest, common["location"], rest, escape, heredocs)
    return I.Onbuild(expression=rest, inner=inner, **common)


def _stopsignal(rest, common, err, escape, heredocs):
    return I.Stopsignal(signal=rest, **common)


PARSERS = {
    "FROM": _from,
    "RUN": _run,
    "COPY": _copy_like(False),
    "ADD": _copy_like(True),
    "ENV": _env,
    "ARG": _arg,
    "LABEL": _label,
    "WORKDIR": _single(I.Workdir, "path"),
    "USER": _single(I.User, "user"),
    "EXPOSE": _list_form(I.Expose, "ports"),
    "VOLUME": _list_form(I.Volume, "paths"),
    "CMD": _command(I.Cmd),
    "ENTRYPOINT": _command(I.Entrypoint),
    "SHELL": _shell,
    "STOPSIGNAL": _stopsignal,
    "HEALTHCHECK": _healthcheck,
    "ONBUILD": _onbuild,
    "MAINTAINER": _single(I.Maintainer, "name"),
}
