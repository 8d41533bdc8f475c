"""``pybuild key generate``, ``sign``, ``verify``, ``referrers`` and ``sbom``: cosign-compatible
signatures and OCI 1.1 referrers of images on a registry."""

from __future__ import annotations

import json
import os

import click

from .context import Settings, pass_settings

__all__ = ["key_group", "sign_cmd", "verify_cmd", "referrers_cmd", "sbom_cmd"]

_PASSPHRASE_HELP = "Read the key's passphrase from this file (default: the COSIGN_PASSWORD variable)."


def _registry(settings: Settings, ref):
    from .cmd_registry import _open_registry

    return _open_registry(settings, ref)


@click.group("key")
def key_group() -> None:
    """Manage signing keys (cosign's key files)."""


@key_group.command("generate")
@click.option("--output-key-prefix", "prefix", default="cosign", show_default=True,
              help="Write PREFIX.key (encrypted private key) and PREFIX.pub.")
@click.option("--passphrase-file", type=click.Path(dir_okay=False), default=None, help=_PASSPHRASE_HELP)
def key_generate_cmd(prefix: str, passphrase_file: str | None) -> None:
    """Generate an ECDSA P-256 key pair in cosign's format."""
    from layers.atomic import write_atomic
    from registry_client.errors import KeyFileError
    from registry_client.keys import generate, passphrase_from

    private_path, public_path = f"{prefix}.key", f"{prefix}.pub"
    for path in (private_path, public_path):
        if os.path.exists(path):
            raise KeyFileError(f"{path} exists; remove it or choose another --output-key-prefix")
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise KeyFileError(f"{path}: directory {directory} does not exist")
    private_pem, public_pem = generate(passphrase_from(passphrase_file))
    write_atomic(private_path, private_pem, 0o600)
    write_atomic(public_path, public_pem, 0o644)
    click.echo(f"Private key written to {private_path}")
    click.echo(f"Public key written to {public_path}")


@click.command("sign")
@click.argument("image")
@click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False), help="cosign.key to sign with.")
@click.option("--passphrase-file", type=click.Path(dir_okay=False), default=None, help=_PASSPHRASE_HELP)
@pass_settings
def sign_cmd(settings: Settings, image: str, key_path: str, passphrase_file: str | None) -> None:
    """Sign IMAGE on its registry: a cosign simple-signing signature and a Sigstore bundle referrer."""
    from layers.reference import Reference
    from registry_client.trust import sign_image

    from registry_client.keys import load_signing_key

    key = load_signing_key(key_path, passphrase_file)
    ref = Reference.parse(image)
    with _registry(settings, ref) as registry:
        result = sign_image(registry.repository(ref.repository), ref, key)
    click.echo(f"Signed {ref.name}@{result.digest}")
    click.echo(f"  simple signing: {ref.name}:{result.signature_tag}")
    click.echo(f"  bundle:         {ref.name}@{result.bundle} (referrer, found by {result.bundle_found_by})")


@click.command("verify")
@click.argument("image")
@click.option("--key", "key_paths", required=True, multiple=True, type=click.Path(dir_okay=False),
              help="cosign.pub to verify with (repeatable: any one may match).")
@click.option("--form", "forms", multiple=True, type=click.Choice(["simple-signing", "bundle"]),
              help="Only this signature form (default: both).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@pass_settings
def verify_cmd(settings: Settings, image: str, key_paths: tuple[str, ...], forms: tuple[str, ...], fmt: str) -> None:
    """Verify IMAGE's signatures against the digest its registry serves now; fail if none is valid."""
    from layers.reference import Reference
    from registry_client.keys import load_public, read_key_file
    from registry_client.trust import verify_image

    from .views.trust import verified_lines

    keys = [load_public(read_key_file(p), p) for p in key_paths]
    ref = Reference.parse(image)
    with _registry(settings, ref) as registry:
        verified = verify_image(registry.repository(ref.repository), ref, keys, forms or ("simple-signing", "bundle"))
    if fmt == "json":
        click.echo(json.dumps([{"form": s.form, "identity": s.identity, "digest": str(s.digest), "key": s.key_source}
                               for s in verified.signatures], indent=2))
        return
    for line in verified_lines(verified):
        click.echo(line)


@click.command("referrers")
@click.argument("image")
@click.option("--artifact-type", default="", help="Only artifacts of this type.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@pass_settings
def referrers_cmd(settings: Settings, image: str, artifact_type: str, fmt: str) -> None:
    """List the artifacts attached to IMAGE (OCI 1.1 referrers, or the referrers tag)."""
    from layers.reference import Reference
    from registry_client.referrers import list_referrers
    from registry_client.trust import resolve_digest

    from .views.trust import referrer_rows, referrer_table

    ref = Reference.parse(image)
    with _registry(settings, ref) as registry:
        repo = registry.repository(ref.repository)
        found = list_referrers(repo, resolve_digest(repo, ref).digest, artifact_type)
    if fmt == "json":
        click.echo(json.dumps(referrer_rows(found), indent=2))
        return
    for line in referrer_table(found):
        click.echo(line)


@click.command("sbom")
@click.argument("image")
@click.option("--remote", is_flag=True, help="Read it from the registry even when the local store has one.")
@click.option("--platform", default=None,
              help="For a multi-platform image: the platform whose SBOM to print (default: this host's).")
@pass_settings
def sbom_cmd(settings: Settings, image: str, remote: bool, platform: str | None) -> None:
    """Print the SPDX SBOM of IMAGE: the one `build --sbom` saved for a local image, else the one
    attached to IMAGE on its registry (for an index, to its image for --platform)."""
    from layers.descriptor import Platform
    from layers.reference import Reference
    from layers.sbom import local_sbom
    from registry_client.sbom import fetch_sbom

    want = Platform.parse(platform) if platform else None  # a bad one: a one-line error
    data = None if remote else local_sbom(settings.store(), image, want)
    if data is None:
        ref = Reference.parse(image)
        with _registry(settings, ref) as registry:
            data = fetch_sbom(registry.repository(ref.repository), ref, want)
    click.echo(json.dumps(json.loads(data), indent=2))

