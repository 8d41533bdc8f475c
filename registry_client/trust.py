"""Sign images on a registry and verify their signatures (both forms of :mod:`.signatures`).

:func:`sign_image` signs the manifest the registry holds for a reference (as ``cosign sign`` does):
it appends a simple-signing layer to ``sha256-<hex>.sig`` and attaches a Sigstore bundle as a
referrer. :func:`verify_image` resolves the reference *now*, then accepts a signature only when it
verifies with one of the keys, signs exactly that digest, and names that repository. Every blob it
reads is checked against its descriptor's digest before it is parsed.
"""

from __future__ import annotations

import datetime

from layers.descriptor import Descriptor
from layers.digest import Digest
from layers.errors import IntegrityError, InvalidDocument, InvalidReference
from layers.manifest import Manifest
from layers.reference import Reference
from layers.value import frozen

from .errors import RemoteNotFound, SignatureError
from .keys import SigningKey, VerificationKey
from .referrers import fetch_small, list_referrers, push_artifact, put_blobs
from .repository import Repository
from .signatures import (BUNDLE, SIMPLESIGNING, SIGNATURE_ANNOTATION, SignedPayload, bundle_manifest,
                         check_bundle, check_payload, make_bundle, payload, signature_manifest, signature_tag)

__all__ = ["SignResult", "Verified", "sign_image", "sign_digest", "verify_image", "verify_digest", "resolve_digest"]


@frozen
class SignResult:
    reference: Reference
    digest: Digest
    signature_tag: str
    bundle: Digest
    bundle_found_by: str   # "api" or "tag"


@frozen
class Verified:
    """Signatures that verified for ``digest`` (what ``reference`` names on the registry now)."""

    reference: Reference
    digest: Digest
    signatures: tuple[SignedPayload, ...]


def resolve_digest(repo: Repository, ref: Reference) -> Descriptor:
    """The descriptor of the manifest or index ``ref`` names on the registry now (verified bytes)."""
    doc = repo.get_manifest(ref.identifier)
    return Descriptor(doc.media_type or "application/vnd.oci.image.manifest.v1+json", doc.digest, len(doc.raw))


def sign_image(repo: Repository, ref: Reference, key: SigningKey) -> SignResult:
    """Sign what ``ref`` names on the registry now (both forms)."""
    return sign_digest(repo, ref, resolve_digest(repo, ref), key)


def sign_digest(repo: Repository, ref: Reference, subject: Descriptor, key: SigningKey) -> SignResult:
    """Sign the manifest ``subject`` of ``repo`` (both forms); ``ref`` gives the signed identity."""
    repo.want_push()
    identity = ref.name
    data = payload(identity, subject.digest)
    tag = signature_tag(subject.digest)
    try:
        previous_doc = repo.get_manifest(tag)
        previous = Manifest.parse(previous_doc.raw, previous_doc.media_type or None)
    except RemoteNotFound:
        previous = None
    manifest, blobs = signature_manifest(previous, data, key.sign(data))
    put_blobs(repo, blobs)
    repo.put_manifest(tag, manifest.raw, manifest.media_type)
    created = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    bundle, bundle_blobs = bundle_manifest(subject, make_bundle(key, identity, subject.digest), created)
    found_by = push_artifact(repo, bundle, bundle_blobs)
    return SignResult(ref, subject.digest, tag, bundle.digest, found_by)


def _identity_ok(signed: str, ref: Reference) -> bool:
    """cosign signs the repository (``registry/repo``, no tag); accept that or the exact name:tag."""
    if not signed:
        return False
    try:
        parsed = Reference.parse(signed)
    except InvalidReference:  # a malformed identity never matches
        return False
    return parsed.name == ref.name


def _simple_signatures(repo: Repository, ref: Reference, digest: Digest, keys: list[VerificationKey],
                       problems: list[str]) -> list[SignedPayload]:
    tag = signature_tag(digest)
    try:
        doc = repo.get_manifest(tag)
    except RemoteNotFound:
        problems.append(f"no simple-signing signatures ({repo.name}:{tag} does not exist)")
        return []
    manifest = Manifest.parse(doc.raw, doc.media_type or None)
    found = []
    for i, layer in enumerate(manifest.layers):
        where = f"{repo.name}:{tag} layer {i}"
        if layer.media_type != SIMPLESIGNING:
            continue
        sig = layer.annotation_map.get(SIGNATURE_ANNOTATION)
        if not sig:
            problems.append(f"{where}: no {SIGNATURE_ANNOTATION} annotation")
            continue
        try:
            data = fetch_small(repo, layer)
        except IntegrityError as exc:
            problems.append(f"{where}: payload does not match its digest ({exc})")
            continue
        found.extend(_check_each(keys, problems, lambda k: check_payload(data, sig, k, where), ref, digest, where))
    return found


def _check_each(keys, problems, check, ref: Reference, digest: Digest, where: str) -> list[SignedPayload]:
    errors = []
    for key in keys:
        try:
            signed = check(key)
        except SignatureError as exc:
            errors.append(str(exc))
            continue
        if signed.digest != digest:
            problems.append(f"{where}: signs {signed.digest}, but {ref} is {digest} now")
            return []
        if not _identity_ok(signed.identity, ref):
            problems.append(f"{where}: signs identity {signed.identity[:120]!r}, not {ref.name}")
            return []
        return [signed]
    problems.append(errors[-1] if errors else f"{where}: no key to check it with")
    return []


def _bundle_signatures(repo: Repository, ref: Reference, digest: Digest, keys: list[VerificationKey],
                       problems: list[str]) -> list[SignedPayload]:
    found = []
    referrers = list_referrers(repo, digest, BUNDLE)
    if not referrers:
        problems.append(f"no Sigstore bundle attached to {digest.short}")
    for referrer in referrers:
        where = f"bundle {referrer.descriptor.digest.short}"
        try:
            doc = repo.get_manifest(str(referrer.descriptor.digest))
            manifest = Manifest.parse(doc.raw, doc.media_type or None)
            if manifest.subject is None or manifest.subject.digest != digest:
                problems.append(f"{where}: its subject is not {digest}")
                continue
            layers = [d for d in manifest.layers if d.media_type == BUNDLE]
            if not layers:
                problems.append(f"{where}: no {BUNDLE} layer")
                continue
            data = fetch_small(repo, layers[0])
        except (IntegrityError, RemoteNotFound, InvalidDocument) as exc:
            problems.append(f"{where}: {exc}")
            continue
        found.extend(_check_each(keys, problems, lambda k: check_bundle(data, k, where), ref, digest, where))
    return found


def verify_digest(repo: Repository, ref: Reference, digest: Digest, keys: list[VerificationKey],
                  forms: tuple[str, ...] = ("simple-signing", "bundle")) -> Verified:
    """Signatures over ``digest`` that verify with one of ``keys``; :class:`SignatureError` when none does."""
    problems: list[str] = []
    found: list[SignedPayload] = []
    if "simple-signing" in forms:
        found += _simple_signatures(repo, ref, digest, keys, problems)
    if "bundle" in forms:
        found += _bundle_signatures(repo, ref, digest, keys, problems)
    if not found:
        detail = "; ".join(dict.fromkeys(problems)) or "no signatures"
        raise SignatureError(f"{ref}: no valid signature for {digest}: {detail}")
    return Verified(ref, digest, tuple(found))


def verify_image(repo: Repository, ref: Reference, keys: list[VerificationKey],
                 forms: tuple[str, ...] = ("simple-signing", "bundle")) -> Verified:
    """Resolve ``ref`` on the registry now and verify the signatures of that digest."""
    desc = resolve_digest(repo, ref)
    if ref.digest is not None and ref.digest != desc.digest:
        raise SignatureError(f"{ref}: the registry serves {desc.digest}")
    return verify_digest(repo, ref, desc.digest, keys, forms)
