"""``BuildOptions``: everything ``pybuild build`` asks of the builder, one frozen value; and
``RegistrySettings``: how the build reaches registries (its own type: the builder never sees the CLI's)."""

from __future__ import annotations

from layers.value import frozen

__all__ = ["BuildOptions", "RegistrySettings", "Secret"]


@frozen
class Secret:
    """``--secret id=NAME,src=PATH`` (or ``env=VAR``): read at RUN time, never stored in a layer or history."""

    id: str
    src: str = ""
    env: str = ""


@frozen
class RegistrySettings:
    """How a build talks to registries (base image pulls, ``--push``) and HTTPS servers (``ADD URL``):
    hosts allowed over plain HTTP or unverified TLS, and an extra CA bundle. A build given none of
    these never reaches the network for images: a base image must already be in the store."""

    insecure_registries: tuple[str, ...] = ()
    tls_ca: str | None = None
    #: the trust policy file base-image pulls obey (None: the containers-policy.json podman reads)
    policy: str | None = None

    def transport(self):
        """The :class:`registry_client.transport.TransportConfig` for these settings."""
        from registry_client.transport import TransportConfig

        return TransportConfig(insecure_registries=self.insecure_registries, tls_ca=self.tls_ca)


@frozen
class BuildOptions:
    """``context_dir`` is a directory (a tar from stdin is unpacked to one by the CLI first).
    ``dockerfile`` is a path, or ``None`` with ``dockerfile_text`` given (``-f -``).
    ``timestamp`` (SOURCE_DATE_EPOCH) makes the image reproducible: created times and file mtimes
    are clamped to it. ``outputs`` are ``-o`` specs (``type=oci,dest=...``). ``platform`` is one
    ``os/arch[/variant]`` or several joined by commas (each built, then an index); empty is this host's."""

    context_dir: str
    dockerfile: str | None = None
    dockerfile_text: bytes | None = None
    tags: tuple[str, ...] = ()
    target: str | None = None
    build_args: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    platform: str = ""
    no_cache: bool = False
    pull: bool = False
    network: str = "host"
    format: str = "oci"
    compression: str = "gzip"
    timestamp: int | None = None
    secrets: tuple[Secret, ...] = ()
    outputs: tuple[str, ...] = ()
    push: bool = False
    #: write an SPDX 2.3 SBOM of the image (kept beside the store; pushed as a referrer with the image)
    sbom: bool = False
    jobs: int = 4
    cache_from: tuple[str, ...] = ()  # --cache-from specs (builder.remotecache.spec)
    cache_to: tuple[str, ...] = ()  # --cache-to specs
    #: RUN steps' process sandbox (runner.procsandbox): auto (probe), on (required), off (none)
    process_sandbox: str = "auto"

    def __post_init__(self) -> None:
        from .errors import BuildError

        if self.format not in ("oci", "docker"):
            raise BuildError(f"--format must be oci or docker, got {self.format!r}")
        if self.compression not in ("gzip", "zstd"):
            raise BuildError(f"--compression must be gzip or zstd, got {self.compression!r}")
        if self.network not in ("host", "none", "default"):
            raise BuildError(f"--network must be host or none, got {self.network!r}")
        if self.process_sandbox not in ("auto", "on", "off"):
            raise BuildError(f"process sandbox must be auto, on or off, got {self.process_sandbox!r}")
        if self.format == "docker" and self.compression == "zstd":
            raise BuildError("--format docker cannot carry zstd layers; use --compression gzip")
        self.platforms  # refuse a malformed --platform before any work

    @property
    def platforms(self) -> tuple[str, ...]:
        """The target platforms in normal form (``linux/aarch64`` -> ``linux/arm64``), duplicates removed."""
        from layers.descriptor import Platform
        from layers.errors import InvalidInput

        from .errors import BuildError

        out: list[str] = []
        for text in (self.platform or str(Platform.host())).split(","):
            try:
                name = str(Platform.parse(text.strip().lower()))
            except InvalidInput as exc:
                raise BuildError(f"--platform {self.platform}: {exc}") from None
            if name not in out:
                out.append(name)
        return tuple(out)
