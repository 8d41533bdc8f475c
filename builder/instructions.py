"""Typed Dockerfile instructions: one small frozen type per instruction, each with its location.

Values hold the text as written (after quote-aware splitting, before variable expansion); the planner
calls :func:`builder.expand.process_word` on the fields Docker expands. ``source`` is the instruction's
text as written, what history entries and error messages show.
"""

from __future__ import annotations

from dataclasses import field

from layers.value import frozen

__all__ = [
    "Location", "Heredoc", "Mount", "Instruction",
    "From", "Run", "Copy", "Env", "Arg", "Label", "Workdir", "User", "Expose", "Volume",
    "Cmd", "Entrypoint", "Shell", "Stopsignal", "Healthcheck", "Onbuild", "Maintainer",
]


@frozen
class Location:
    file: str
    line: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@frozen
class Heredoc:
    """``<<[-]NAME`` body. ``expand`` is False when the delimiter was quoted (no substitution)."""

    name: str
    content: str
    expand: bool = True
    chomp: bool = False  # ``<<-``: leading tabs were stripped


@frozen
class Mount:
    """One ``RUN --mount=...``. ``type`` is cache, secret, bind or tmpfs."""

    type: str
    target: str = ""
    source: str = ""
    from_: str = ""
    id: str = ""
    sharing: str = "shared"
    readonly: bool = False
    required: bool = False
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    size: int | None = None
    env: str = ""


@frozen(kw_only=True)
class Instruction:
    location: Location
    source: str

    keyword = ""

    def to_dict(self) -> dict:
        """JSON-ready form (golden files): keyword, line and the typed fields."""
        from dataclasses import asdict, fields

        out: dict = {"instruction": self.keyword, "line": self.location.line}
        for f in fields(self):
            if f.name in ("location", "source"):
                continue
            value = getattr(self, f.name)
            if isinstance(value, Instruction):
                value = value.to_dict()
            elif isinstance(value, tuple) and value and hasattr(value[0], "__dataclass_fields__"):
                value = [asdict(v) for v in value]
            elif isinstance(value, tuple):
                value = [list(v) if isinstance(v, tuple) else v for v in value]
            out[f.name.rstrip("_")] = value
        return out


@frozen(kw_only=True)
class From(Instruction):
    keyword = "FROM"
    image: str
    name: str | None = None
    platform: str | None = None


@frozen(kw_only=True)
class Run(Instruction):
    """``command`` is ``(script,)`` in shell form (run with the stage's SHELL), argv in exec form."""

    keyword = "RUN"
    command: tuple[str, ...]
    shell_form: bool
    mounts: tuple[Mount, ...] = ()
    network: str | None = None
    heredocs: tuple[Heredoc, ...] = ()


@frozen(kw_only=True)
class Copy(Instruction):
    """COPY and ADD (``add=True``). ``sources`` may name heredocs (``<<EOF``)."""

    keyword = "COPY"
    add: bool = False
    sources: tuple[str, ...]
    dest: str
    from_: str | None = None
    chown: str | None = None
    chmod: str | None = None
    link: bool = False
    checksum: str | None = None
    excludes: tuple[str, ...] = ()
    heredocs: tuple[Heredoc, ...] = ()

    @property
    def name(self) -> str:
        return "ADD" if self.add else "COPY"


@frozen(kw_only=True)
class Env(Instruction):
    keyword = "ENV"
    pairs: tuple[tuple[str, str], ...]


@frozen(kw_only=True)
class Arg(Instruction):
    """``pairs``: (name, default or None)."""

    keyword = "ARG"
    pairs: tuple[tuple[str, str | None], ...]


@frozen(kw_only=True)
class Label(Instruction):
    keyword = "LABEL"
    pairs: tuple[tuple[str, str], ...]


@frozen(kw_only=True)
class Workdir(Instruction):
    keyword = "WORKDIR"
    path: str


@frozen(kw_only=True)
class User(Instruction):
    keyword = "USER"
    user: str


@frozen(kw_only=True)
class Expose(Instruction):
    keyword = "EXPOSE"
    ports: tuple[str, ...]


@frozen(kw_only=True)
class Volume(Instruction):
    keyword = "VOLUME"
    paths: tuple[str, ...]


@frozen(kw_only=True)
class Cmd(Instruction):
    keyword = "CMD"
    command: tuple[str, ...]
    shell_form: bool


@frozen(kw_only=True)
class Entrypoint(Instruction):
    keyword = "ENTRYPOINT"
    command: tuple[str, ...]
    shell_form: bool


@frozen(kw_only=True)
class Shell(Instruction):
    keyword = "SHELL"
    shell: tuple[str, ...]


@frozen(kw_only=True)
class Stopsignal(Instruction):
    keyword = "STOPSIGNAL"
    signal: str


@frozen(kw_only=True)
class Healthcheck(Instruction):
    """``test`` is ``("NONE",)`` for HEALTHCHECK NONE, else ``("CMD", ...)`` or ``("CMD-SHELL", script)``.
    Durations in nanoseconds (0 = inherit the default)."""

    keyword = "HEALTHCHECK"
    test: tuple[str, ...]
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0


@frozen(kw_only=True)
class Onbuild(Instruction):
    """Stored in the image config as ``expression``; ``inner`` is the parsed trigger (checked now)."""

    keyword = "ONBUILD"
    expression: str
    inner: Instruction = field(compare=False)


@frozen(kw_only=True)
class Maintainer(Instruction):
    keyword = "MAINTAINER"
    name: str
