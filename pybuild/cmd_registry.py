"""``pybuild pull|push|login|logout|manifest inspect``, and :func:`inspect_remote` for ``inspect --remote``."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any

import click

from .context import Settings, pass_settings

if TYPE_CHECKING:
    from layers.store import Store

__all__ = ["pull_cmd", "pull_image", "push_cmd", "login_cmd", "logout_cmd", "inspect_remote", "open_registry"]


def _transport(settings: Settings):
    from registry_client.transport import TransportConfig

    return TransportConfig(insecure_registries=settings.insecure_registries, tls_ca=settings.tls_ca)


def open_registry(settings: Settings, ref, credentials=None):
    """A :class:`registry_client.client.Registry` for ``ref``'s host with the settings' transport and
    the stored credentials (or ``credentials``)."""
    return _open_registry(settings, ref, credentials)


def _open_registry(settings: Settings, ref, credentials=None):
    from registry_client.client import Registry
    from registry_client.credentials import CredentialStore

    creds = credentials if credentials is not None else CredentialStore().get(ref.registry)
    return Registry(ref.api_host, config=_transport(settings), credentials=creds)


def _progress(quiet: bool):
    from registry_client.progress import make_progress

    return make_progress(sys.stderr, quiet=quiet)


def _parse_ref(text: str):
    from layers.reference import Reference

    return Reference.parse(text)


def _local_document(store: Store, name: str):
    """The manifest or index a local image name or id stands for, read from the store."""
    from layers.manifest import parse_document

    record = store.images.resolve(name)
    return parse_document(store.blobs.read_bytes(record.manifest_digest, 4 << 20))


# -- pull ---------------------------------------------------------------------------------------


@click.command("pull")
@click.argument("reference")
@click.option("--platform", "platform", default=None, help="os/arch[/variant] to pull from an index (default: this host).")
@click.option("--all-platforms", "-a", is_flag=True, help="Pull every platform of an index.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the image reference.")
@click.option("--jobs", "-j", type=click.IntRange(1, 16), default=4, show_default=True, help="Blobs fetched at once.")
@click.option("--policy", "policy", type=click.Path(dir_okay=False), default=None,
              help="Trust policy file (default: ~/.config/containers/policy.json, /etc/containers/policy.json).")
@click.option("--unpack/--no-unpack", default=True, show_default=True,
              help="Also unpack the layers (while they download) for run and build; not with --all-platforms.")
@pass_settings
def pull_cmd(settings: Settings, reference: str, platform: str | None, all_platforms: bool, quiet: bool,
             jobs: int, policy: str | None, unpack: bool) -> None:
    """Pull an image (or every platform of an index) from a registry into the local store."""
    ref = pull_image(settings, settings.store(), reference, platform=platform, all_platforms=all_platforms,
                     quiet=quiet, jobs=jobs, policy=policy, unpack=unpack and not all_platforms)
    click.echo(str(ref))


def pull_image(settings: Settings, store: Store, reference: str, *, platform: str | None = None,
               all_platforms: bool = False, quiet: bool = False, jobs: int = 4, policy: str | None = None,
               unpack: bool = True):
    """Pull ``reference`` into ``store``, Docker's progress on stderr unless ``quiet``; the parsed
    reference (``pull``, and ``run``/``create`` of an image not in the store). The trust policy
    (``policy``, else the containers-policy.json podman reads) is enforced before anything is stored.
    ``unpack``: the layers are unpacked as they download (see ``PullOptions.unpack``)."""
    from layers.descriptor import Platform
    from registry_client.policy import load_policy
    from registry_client.pull import PullOptions, pull

    ref = _parse_ref(reference)
    options = PullOptions(platform=Platform.parse(platform) if platform else None, all_platforms=all_platforms,
                          jobs=jobs, policy=load_policy(policy), unpack=unpack and not all_platforms)
    progress = _progress(quiet)
    with _open_registry(settings, ref) as registry:
        if not quiet:
            progress.note(f"Pulling {ref.familiar}")
        result = pull(store, registry.repository(ref.repository), ref, options, progress)
    if not quiet:
        progress.note(f"Digest: {result.digest}")
        status = "Downloaded newer image" if result.fetched else "Image is up to date"
        progress.note(f"Status: {status} for {ref.familiar}")
    return ref


# -- push ---------------------------------------------------------------------------------------


@click.command("push")
@click.argument("local")
@click.argument("remote", required=False)
@click.option("--compression", type=click.Choice(["gzip", "zstd"]), default=None,
              help="Layer compression on the registry (default: as stored).")
@click.option("--format", "fmt", type=click.Choice(["oci", "docker"]), default=None,
              help="Manifest format on the registry (default: as stored).")
@click.option("--quiet", "-q", is_flag=True, help="Print only the pushed digest.")
@click.option("--jobs", "-j", type=click.IntRange(1, 16), default=4, show_default=True, help="Blobs sent at once.")
@click.option("--digestfile", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the manifest digest to this file.")
@click.option("--sign-by-sigstore-private-key", "sign_key", type=click.Path(dir_okay=False), default=None,
              help="Sign the pushed image with this cosign.key (simple signing + Sigstore bundle).")
@click.option("--passphrase-file", type=click.Path(dir_okay=False), default=None,
              help="Passphrase of the signing key (default: the COSIGN_PASSWORD variable).")
@pass_settings
def push_cmd(settings: Settings, local: str, remote: str | None, compression: str | None, fmt: str | None,
             quiet: bool, jobs: int, digestfile: str | None, sign_key: str | None,
             passphrase_file: str | None) -> None:
    """Push a local image to a registry (REMOTE defaults to LOCAL's name)."""
    from registry_client.push import PushOptions, push

    target = _parse_ref(remote or local)
    if digestfile and not os.path.isdir(os.path.dirname(os.path.abspath(digestfile))):
        raise click.BadParameter(f"directory of {digestfile} does not exist", param_hint="--digestfile")
    key = None
    if sign_key is not None:  # a wrong passphrase fails before a byte goes up
        from registry_client.keys import load_signing_key

        key = load_signing_key(sign_key, passphrase_file)
    store = settings.store()
    progress = _progress(quiet)
    options = PushOptions(compression=compression, format=fmt, jobs=jobs)
    # a lease from the lookup to the last upload: GC keeps the image and any re-encoded layers meanwhile
    with store.lease():
        document = _local_document(store, local)
        with _open_registry(settings, target) as registry:
            if not quiet:
                progress.note(f"Pushing {target.familiar}")
            repo = registry.repository(target.repository)
            result = push(store, repo, document, target, options, progress)
            from builder.attest import attach_sboms

            attach_sboms(store, repo, target, document, result.digest)  # the SBOMs `build --sbom` made
            if key is not None:
                from registry_client.trust import resolve_digest, sign_digest

                subject = resolve_digest(repo, target.with_digest(result.digest))  # what the registry holds
                signed = sign_digest(repo, target, subject, key)
    if not quiet:
        progress.note(f"{target.tag or 'digest'}: digest: {result.digest} size: {result.size}")
        if key is not None:
            progress.note(f"Signed {target.name}@{result.digest}: {signed.signature_tag}, bundle {signed.bundle.short}")
    if digestfile:
        try:
            with open(digestfile, "w") as fh:
                fh.write(f"{result.digest}\n")
        except OSError as exc:
            raise click.ClickException(f"pushed {result.digest}, but writing --digestfile {digestfile} failed: "
                                       f"{exc.strerror}") from None
    click.echo(str(result.digest))


# -- login / logout -----------------------------------------------------------------------------


def _registry_host(text: str) -> str:
    from registry_client.credentials import normalize_host

    host = normalize_host(text)
    if not host:
        raise click.BadParameter("registry host is empty", param_hint="REGISTRY")
    return host


@click.command("login")
@click.argument("registry", required=False, default="docker.io")
@click.option("--username", "-u", default=None, help="Username (Harbor robot names like robot$proj+ci work).")
@click.option("--password", "-p", default=None, help="Password (insecure: visible in the process list; prefer --password-stdin).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@pass_settings
def login_cmd(settings: Settings, registry: str, username: str | None, password: str | None,
              password_stdin: bool) -> None:
    """Check credentials against REGISTRY and store them (mode 0600) for pull and push."""
    from layers.reference import Reference
    from registry_client.credentials import Credentials, CredentialStore

    host = _registry_host(registry)
    if password is not None and password_stdin:
        raise click.UsageError("--password and --password-stdin are mutually exclusive")
    if password is not None:
        click.echo("WARNING! Using --password via the CLI is insecure. Use --password-stdin.", err=True)
    if password_stdin:
        if not username:
            raise click.UsageError("--password-stdin needs --username")
        password = sys.stdin.read().rstrip("\r\n")
    if not username:
        username = click.prompt("Username")
    if password is None:
        password = click.prompt("Password", hide_input=True)
    if not password:
        raise click.UsageError("password is empty")
    creds = Credentials(username, password)
    ref = Reference(host, "library/login-check", "latest")
    from registry_client.errors import AuthenticationRequired

    with _open_registry(settings, ref, credentials=creds) as reg:
        try:
            reg.login_check()
        except AuthenticationRequired as exc:
            raise AuthenticationRequired(f"login to {host} as {username!r} failed: the registry refused the "
                                         f"credentials (HTTP {exc.status or 401})", status=exc.status) from None
    path = CredentialStore().save(host, creds)
    click.echo(f"Login Succeeded (credentials saved in {path})")


@click.command("logout")
@click.argument("registry", required=False, default="docker.io")
def logout_cmd(registry: str) -> None:
    """Forget the credentials pybuild stored for REGISTRY."""
    from registry_client.credentials import CredentialStore

    host = _registry_host(registry)
    if CredentialStore().erase(host):
        click.echo(f"Removed login credentials for {host}")
    else:
        click.echo(f"Not logged in to {host}")


# -- inspect --remote (``manifest`` is in cmd_manifest) -------------------------------------------


def inspect_remote(settings: Settings, reference: str) -> dict:
    """What ``pybuild inspect --remote REF`` prints (the shape of ``skopeo inspect``), fetched without pulling.

    For an index, the image for this host's platform is described and ``Platforms`` lists all.
    """
    from layers.config import ImageConfig
    from layers.descriptor import Platform
    from layers.errors import NotFound
    from layers.index import Index
    from layers.manifest import Manifest
    from registry_client.pull import PullOptions, resolve, select_manifests

    ref = _parse_ref(reference)
    with _open_registry(settings, ref) as registry:
        repo = registry.repository(ref.repository)
        doc, top = resolve(repo, ref)
        out: dict[str, Any] = {"Name": ref.name, "Digest": str(doc.digest), "MediaType": top.media_type}
        manifest = top
        if isinstance(top, Index):
            out["Platforms"] = [str(d.platform) for d in top.images() if d.platform is not None]
            try:
                chosen = select_manifests(top, PullOptions(platform=Platform.host()))[0]
            except NotFound:  # no image for this host: describe the index only
                out["RawIndex"] = top.to_dict()
                return out
            child_doc = repo.get_manifest(str(chosen.digest))
            manifest = Manifest.parse(child_doc.raw, child_doc.media_type or chosen.media_type)
            out["ManifestDigest"] = str(manifest.digest)
        config = ImageConfig.parse(repo.read_blob(manifest.config, 8 << 20))
    cc = config.config
    out.update({
        "Created": config.created or None,
        "Architecture": config.architecture,
        "Os": config.os,
        "Variant": config.variant or None,
        "Labels": dict(cc.labels) if cc is not None else {},
        "Env": list(cc.env) if cc is not None else [],
        "Entrypoint": list(cc.entrypoint) if cc is not None and cc.entrypoint is not None else None,
        "Cmd": list(cc.cmd) if cc is not None and cc.cmd is not None else None,
        "Layers": [str(d.digest) for d in manifest.layers],
        "LayersData": [{"MIMEType": d.media_type, "Digest": str(d.digest), "Size": d.size} for d in manifest.layers],
        "Config": {"Digest": str(manifest.config.digest), "MediaType": manifest.config.media_type},
    })
    return out
