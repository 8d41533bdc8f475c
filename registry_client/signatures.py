"""The documents of image signatures, as cosign writes and reads them (no network here).

Two forms, both over the digest of the image manifest the registry holds:

1. **simple signing** (cosign 2, what Harbor shows): the payload is the JSON
   ``{"critical": {"identity": {"docker-reference": REPO}, "image": {"docker-manifest-digest": D},
   "type": "cosign container image signature"}, "optional": {...}}``; it is a layer of media type
   :data:`SIMPLESIGNING` of an OCI manifest tagged ``sha256-<hex>.sig``, and the base64 DER signature
   over the payload bytes is the layer's ``dev.cosignproject.cosign/signature`` annotation. Every
   signature is one more layer of that manifest.
2. **Sigstore bundle v0.3** (cosign 3): a DSSE envelope (PAE over an in-toto statement whose subject
   is the manifest digest, predicate type :data:`PREDICATE_SIGN`) with ``verificationMaterial.publicKey``
   a key hint and no transparency-log entry; attached as an OCI 1.1 referrer (``subject`` +
   ``artifactType`` :data:`BUNDLE`).

Parsing never trusts a field it did not check: :func:`check_payload` and :func:`check_bundle` return
what verified, or raise :class:`SignatureError` saying what did not.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from layers.descriptor import Descriptor
from layers.digest import Digest
from layers.jsonutil import canonical
from layers.manifest import Manifest
from layers.mediatype import MediaType
from layers.value import frozen

from .errors import SignatureError
from .keys import SigningKey, VerificationKey

__all__ = ["SIMPLESIGNING", "SIGNATURE_ANNOTATION", "BUNDLE", "PREDICATE_SIGN", "INTOTO", "STATEMENT",
           "Blob", "SignedPayload", "payload", "check_payload", "signature_tag", "signature_manifest",
           "make_bundle", "check_bundle", "bundle_manifest", "pae", "EMPTY_CONFIG"]

SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
PAYLOAD_TYPE = "cosign container image signature"
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PREDICATE_SIGN = "https://sigstore.dev/cosign/sign/v1"
INTOTO = "application/vnd.in-toto+json"
STATEMENT = "https://in-toto.io/Statement/v1"
EMPTY_CONFIG = b"{}"


@frozen
class Blob:
    """Bytes to upload beside a manifest, with their descriptor."""

    descriptor: Descriptor
    data: bytes


@frozen
class SignedPayload:
    """What a verified signature says: the signed manifest digest and the signed identity."""

    digest: Digest
    identity: str
    form: str          # "simple-signing" or "bundle"
    key_source: str


def payload(identity: str, digest: Digest, optional: dict[str, Any] | None = None) -> bytes:
    """The simple-signing payload bytes cosign writes (same key order, compact JSON)."""
    body = {"critical": {"identity": {"docker-reference": identity},
                         "image": {"docker-manifest-digest": str(digest)}, "type": PAYLOAD_TYPE},
            "optional": optional}
    return json.dumps(body, separators=(",", ":")).encode()


def check_payload(data: bytes, signature_b64: str, key: VerificationKey, where: str) -> SignedPayload:
    """Verify ``signature_b64`` over ``data`` with ``key``, then parse the payload strictly."""
    try:
        signature = base64.b64decode("".join(signature_b64.split()), validate=True)
    except ValueError:
        raise SignatureError(f"{where}: the signature annotation is not base64") from None
    if not key.verify(signature, data):
        raise SignatureError(f"{where}: the signature does not verify with {key.source or 'the key'}")
    try:
        body = json.loads(data)
        critical = body["critical"]
        kind = critical["type"]
        identity = critical["identity"]["docker-reference"]
        digest = Digest.parse(critical["image"]["docker-manifest-digest"])
    except (ValueError, KeyError, TypeError) as exc:
        raise SignatureError(f"{where}: the signed payload is not a cosign simple-signing document "
                             f"({type(exc).__name__}: {str(exc)[:80]})") from None
    if kind != PAYLOAD_TYPE:
        raise SignatureError(f"{where}: signed payload type {str(kind)[:60]!r} is not {PAYLOAD_TYPE!r}")
    if not isinstance(identity, str):
        raise SignatureError(f"{where}: signed docker-reference is not a string")
    return SignedPayload(digest, identity, "simple-signing", key.source)


def signature_tag(digest: Digest, suffix: str = "sig") -> str:
    """cosign's tag for what is attached to ``digest``: ``sha256-<hex>.sig``."""
    return f"{digest.algorithm}-{digest.hex}.{suffix}" if suffix else f"{digest.algorithm}-{digest.hex}"


def _config_for(layers: list[Descriptor]) -> bytes:
    """The image config cosign puts in a signature manifest: one diff_id per (uncompressed) layer."""
    return canonical({"architecture": "", "config": {}, "created": "0001-01-01T00:00:00Z",
                      "history": [{"created": "0001-01-01T00:00:00Z"} for _ in layers], "os": "",
                      "rootfs": {"type": "layers", "diff_ids": [str(d.digest) for d in layers]}})


def signature_manifest(previous: Manifest | None, data: bytes, signature: bytes) -> tuple[Manifest, list[Blob]]:
    """The ``.sig`` manifest with one more simple-signing layer (``previous``'s layers kept first);
    the blobs the registry must have for it. A layer with the same payload and signature is not added twice."""
    sig_b64 = base64.b64encode(signature).decode()
    layer = Descriptor(SIMPLESIGNING, Digest.from_bytes(data), len(data),
                       annotations=((SIGNATURE_ANNOTATION, sig_b64),))
    layers = list(previous.layers) if previous is not None else []
    if not any(d.digest == layer.digest and d.annotation_map.get(SIGNATURE_ANNOTATION) == sig_b64 for d in layers):
        layers.append(layer)
    config_raw = _config_for(layers)
    config = Descriptor(MediaType.OCI_CONFIG, Digest.from_bytes(config_raw), len(config_raw))
    manifest = Manifest.build(config, layers)
    return manifest, [Blob(config, config_raw), Blob(layer, data)]


def pae(payload_type: str, body: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what the signature is over."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)


def make_bundle(key: SigningKey, name: str, digest: Digest) -> bytes:
    """A Sigstore bundle v0.3: DSSE over an in-toto statement naming ``digest``; public-key hint, no tlog."""
    statement = canonical({"_type": STATEMENT, "predicate": {}, "predicateType": PREDICATE_SIGN,
                           "subject": [{"digest": {digest.algorithm: digest.hex}, "name": name}]})
    signature = key.sign(pae(INTOTO, statement))
    bundle = {
        "mediaType": BUNDLE,
        "verificationMaterial": {"publicKey": {"hint": key.public.hint}, "tlogEntries": [],
                                 "timestampVerificationData": {}},
        "dsseEnvelope": {"payload": base64.b64encode(statement).decode(), "payloadType": INTOTO,
                         "signatures": [{"sig": base64.b64encode(signature).decode()}]},
    }
    return json.dumps(bundle, separators=(",", ":")).encode()


def check_bundle(data: bytes, key: VerificationKey, where: str) -> SignedPayload:
    """Verify a bundle's DSSE signature with ``key`` and return the digest and name its statement signs."""
    try:
        bundle = json.loads(data)
        if not str(bundle.get("mediaType", "")).startswith("application/vnd.dev.sigstore.bundle"):
            raise ValueError(f"mediaType {str(bundle.get('mediaType'))[:60]!r}")
        envelope = bundle["dsseEnvelope"]
        payload_type = envelope["payloadType"]
        body = base64.b64decode(envelope["payload"], validate=True)
        signatures = [base64.b64decode(s["sig"], validate=True) for s in envelope["signatures"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SignatureError(f"{where}: not a Sigstore bundle with a DSSE envelope "
                             f"({type(exc).__name__}: {str(exc)[:80]})") from None
    if payload_type != INTOTO:
        raise SignatureError(f"{where}: DSSE payload type {str(payload_type)[:60]!r} is not {INTOTO}")
    if not any(key.verify(sig, pae(payload_type, body)) for sig in signatures):
        raise SignatureError(f"{where}: the bundle's signature does not verify with {key.source or 'the key'}")
    try:
        statement = json.loads(body)
        predicate = statement["predicateType"]
        subjects = statement["subject"]
        first = subjects[0]
        digest = Digest.parse(f"sha256:{first['digest']['sha256']}")
        name = first.get("name", "")
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise SignatureError(f"{where}: the signed statement has no sha256 subject "
                             f"({type(exc).__name__}: {str(exc)[:80]})") from None
    if predicate != PREDICATE_SIGN:
        raise SignatureError(f"{where}: predicate type {str(predicate)[:80]!r} is not {PREDICATE_SIGN}")
    return SignedPayload(digest, name if isinstance(name, str) else "", "bundle", key.source)


def bundle_manifest(subject: Descriptor, bundle: bytes, created: str) -> tuple[Manifest, list[Blob]]:
    """The OCI 1.1 referrer cosign 3 pushes for a bundle: empty config, the bundle as the one layer."""
    empty = Descriptor(MediaType.OCI_EMPTY, Digest.from_bytes(EMPTY_CONFIG), len(EMPTY_CONFIG))
    layer = Descriptor(BUNDLE, Digest.from_bytes(bundle), len(bundle))
    manifest = Manifest.build(empty, [layer], subject=subject, artifact_type=BUNDLE,
                              annotations={"dev.sigstore.bundle.content": "dsse-envelope",
                                           "dev.sigstore.bundle.predicateType": PREDICATE_SIGN,
                                           "org.opencontainers.image.created": created})
    return manifest, [Blob(empty, EMPTY_CONFIG), Blob(layer, bundle)]
