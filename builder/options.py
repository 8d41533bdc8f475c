"""``BuildOptions``: everything ``pybuild build`` asks of the builder, one frozen value."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BuildOptions", "Secret"]


@dataclass(frozen=True)
class Secret:
    """``--secret id=NAME,src=PATH`` (or ``env=VAR``): read at RUN time, never stored in a layer or history."""

    id: str
    src: str = ""
    env: str = ""


@dataclass(frozen=True)
class BuildOptions:
    """``context_dir`` is a directory (a tar from stdin is unpacked to one by the CLI first).
    ``dockerfile`` is a path, or ``None`` with ``dockerfile_text`` given (``-f -``).
    ``timestamp`` (SOURCE_DATE_EPOCH) makes the image reproducible: created times and file mtimes
    are clamped to it. ``outputs`` are ``-o`` specs (``type=oci,dest=...``)."""

    context_dir: str
    dockerfile: str | None = None
    dockerfile_text: bytes | None = None
    tags: tuple[str, ...] = ()
    target: str | None = None
    build_args: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    platform: str = "linux/amd64"
    no_cache: bool = False
    pull: bool = False
    network: str = "host"
    format: str = "oci"
    compression: str = "gzip"
    timestamp: int | None = None
    secrets: tuple[Secret, ...] = ()
    outputs: tuple[str, ...] = ()
    push: bool = False
    jobs: int = 4

    def __post_init__(self) -> None:
        from .errors import BuildError

        if self.format not in ("oci", "docker"):
            raise BuildError(f"--format must be oci or docker, got {self.format!r}")
        if self.compression not in ("gzip", "zstd"):
            raise BuildError(f"--compression must be gzip or zstd, got {self.compression!r}")
        if self.network not in ("host", "none", "default"):
            raise BuildError(f"--network must be host or none, got {self.network!r}")
        if self.format == "docker" and self.compression == "zstd":
            raise BuildError("--format docker cannot carry zstd layers; use --compression gzip")
