"""``pybuild build``: options -> :class:`builder.BuildOptions` -> :func:`builder.build`."""

from __future__ import annotations

import os
import sys

import click

from .context import Settings, pass_settings

__all__ = ["build_cmd"]


def _pairs(values: tuple[str, ...], option: str, from_env: bool = False) -> tuple[tuple[str, str], ...]:
    out = []
    for v in values:
        key, eq, value = v.partition("=")
        if not key:
            raise click.BadParameter(f"{v!r}: expected KEY=VALUE", param_hint=option)
        if not eq:
            if not from_env:
                raise click.BadParameter(f"{v!r}: expected KEY=VALUE", param_hint=option)
            if key not in os.environ:
                continue  # docker: --build-arg KEY takes KEY from the environment if set
            value = os.environ[key]
        out.append((key, value))
    return tuple(out)


def _secret(text: str):
    from builder.options import Secret

    fields = {}
    for part in text.split(","):
        k, _, v = part.partition("=")
        fields[k.strip()] = v.strip()
    sid = fields.get("id")
    src = fields.get("src") or fields.get("source")
    env = fields.get("env")
    if not sid or not (src or env):
        raise click.BadParameter(f"{text!r}: expected id=NAME,src=PATH or id=NAME,env=VAR", param_hint="--secret")
    if src and not os.path.isfile(src):
        raise click.BadParameter(f"{text!r}: {src} is not a file", param_hint="--secret")
    return Secret(id=sid, src=os.path.abspath(src) if src else "", env=env or "")


def _timestamp(value: int | None) -> int | None:
    if value is not None:
        return value
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env:
        try:
            return int(env)
        except ValueError:
            raise click.BadParameter(f"SOURCE_DATE_EPOCH={env!r} is not an integer") from None
    return None


def _process_sandbox() -> str:
    """``PYBUILD_PROCESS_SANDBOX``: auto (default), on or off (RUN steps without a PID namespace)."""
    value = os.environ.get("PYBUILD_PROCESS_SANDBOX", "auto").strip().lower() or "auto"
    if value not in ("auto", "on", "off"):
        raise click.BadParameter(f"PYBUILD_PROCESS_SANDBOX={value!r}: expected auto, on or off")
    return value


@click.command("build")
@click.argument("context", default=".")
@click.option("-f", "--file", "dockerfile", default=None, help="Dockerfile path (default: CONTEXT/Dockerfile; '-' reads stdin).")
@click.option("-t", "--tag", "tags", multiple=True, help="Name the image (repeatable).")
@click.option("--target", default=None, help="Build this stage and only what it needs.")
@click.option("--build-arg", "build_args", multiple=True, help="KEY=VALUE (or KEY from the environment).")
@click.option("--label", "labels", multiple=True, help="KEY=VALUE label on the image.")
@click.option("--no-cache", is_flag=True, help="Do not use the build cache.")
@click.option("--pull", is_flag=True, help="Pull base images even when they are present.")
@click.option("--network", type=click.Choice(["host", "none", "default"]), default="host", show_default=True,
              help="Network for RUN steps.")
@click.option("--format", "fmt", type=click.Choice(["oci", "docker"]), default="oci", show_default=True)
@click.option("--compression", type=click.Choice(["gzip", "zstd"]), default="gzip", show_default=True)
@click.option("--timestamp", type=int, default=None, help="Seconds since the epoch for every created time and file "
              "mtime (reproducible builds; default $SOURCE_DATE_EPOCH).")
@click.option("--platform", default="", help="os/arch[/variant] to build for (default: this host's); several, "
              "comma-separated, build each and commit an index (a manifest list with --format docker).")
@click.option("--secret", "secrets", multiple=True, help="id=NAME,src=PATH (or env=VAR) for RUN --mount=type=secret.")
@click.option("--iidfile", type=click.Path(dir_okay=False), default=None, help="Write the image id to this file.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the image id.")
@click.option("--progress", "progress_mode", type=click.Choice(["auto", "plain", "tty", "quiet"]), default="auto")
@click.option("--push", is_flag=True, help="Push every -t name after the build.")
@click.option("-o", "--output", "outputs", multiple=True, help="type=oci|docker,dest=PATH: also write an archive.")
@click.option("--cache-from", "cache_from", multiple=True, help="Import a build cache: type=registry,ref=REF | "
              "IMAGE (its inline cache) | type=local,src=DIR (repeatable).")
@click.option("--cache-to", "cache_to", multiple=True, help="Export the build cache: type=registry,ref=REF"
              "[,mode=min|max][,compression=gzip|zstd][,ignore-error=true] | type=inline | type=local,dest=DIR.")
@click.option("--sbom", is_flag=True, help="Write an SPDX 2.3 SBOM of the image (pushed with it as a referrer).")
@click.option("--policy", type=click.Path(dir_okay=False), default=None,
              help="Trust policy for base image pulls (default: the containers-policy.json podman reads).")
@pass_settings
def build_cmd(settings: Settings, context: str, dockerfile: str | None, tags, target, build_args, labels,
              no_cache: bool, pull: bool, network: str, fmt: str, compression: str, timestamp, platform: str,
              secrets, iidfile, quiet: bool, progress_mode: str, push: bool, outputs, cache_from, cache_to,
              sbom: bool, policy: str | None) -> None:
    """Build an image from a Dockerfile and a context: a directory, '-' (a tar of the context on stdin)
    or a git URL (https://HOST/PATH.git#REF:SUBDIR, git://, ssh://, git@HOST:PATH)."""
    import tempfile

    from builder.build import build
    from builder.contextsource import open_context
    from builder.options import BuildOptions, RegistrySettings
    from builder.progress import Progress

    with tempfile.TemporaryDirectory(prefix="pybuild-context-") as tmp:
        source = open_context(context, dockerfile, sys.stdin.buffer, tmp)
        options = BuildOptions(
            context_dir=source.context_dir, dockerfile=source.dockerfile,
            dockerfile_text=source.dockerfile_text, tags=tuple(tags), target=target,
            build_args=_pairs(build_args, "--build-arg", from_env=True), labels=_pairs(labels, "--label"),
            platform=platform, no_cache=no_cache, pull=pull, network="none" if network == "none" else "host",
            format=fmt, compression=compression, timestamp=_timestamp(timestamp),
            secrets=tuple(_secret(s) for s in secrets), outputs=tuple(outputs), push=push, sbom=sbom,
            cache_from=tuple(cache_from), cache_to=tuple(cache_to), process_sandbox=_process_sandbox(),
        )
        mode = "quiet" if quiet or progress_mode == "quiet" else progress_mode
        if mode == "auto":
            mode = "tty" if sys.stderr.isatty() else "plain"
        progress = Progress(sys.stderr if mode != "quiet" else None, mode)
        try:
            registry = RegistrySettings(insecure_registries=settings.insecure_registries, tls_ca=settings.tls_ca,
                                        policy=policy)
            outcome = build(options, settings.store, registry=registry, progress=progress,
                            state_dir=settings.state_dir)
        finally:
            progress.close()
    image_id = outcome.image_id
    if iidfile:
        with open(iidfile, "w") as f:
            f.write(image_id)
    if quiet:
        click.echo(image_id)
        return
    hits, steps = outcome.steps
    progress.line(f"# {hits}/{steps} steps cached")
    for built in outcome.platforms:
        progress.line(f"# {built.platform} {built.result.manifest.digest}")
    for line in outcome.cache_lines:
        progress.line(f"# {line}")
    progress.finish(f"# built {image_id[:19]}")
    for tag in outcome.tags:
        click.echo(f"Successfully tagged {tag}", err=True)
    for digest in outcome.pushed:
        click.echo(f"Pushed {digest}", err=True)
    click.echo(image_id)

