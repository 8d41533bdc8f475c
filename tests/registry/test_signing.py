"""Signatures through the real ``pybuild``: ``key generate``, ``sign``, ``push --sign-by-sigstore-private-key``,
``verify`` and ``referrers``, against Debian's ``docker-registry`` (no referrers API: the tag-schema
fallback) and the in-test OCI 1.1 registry (:mod:`.oci_registry`, a deliberate fake with the referrers
API). Keys and signatures made by the real cosign come from cosign's and sigstore-rs's public test data
(``testdata/cosign``). Tampering: a signature over another digest, a payload naming another identity,
a signature layer that does not match its digest, another key, an unsigned image, a moved tag."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from pathlib import Path

import pytest

from layers.digest import Digest
from layers.manifest import Manifest
from layers.reference import Reference
from registry_client.client import Registry

from .images import make_image
from .oci_registry import OciRegistry
from .test_pull_push import _env, _push_library

COSIGN = Path(__file__).resolve().parents[2] / "testdata" / "cosign"
PASSPHRASE = "correct horse battery staple"


@pytest.fixture(scope="session")
def keys(tmp_path_factory) -> dict[str, Path]:
    """Two key pairs made by ``pybuild key generate`` (``main`` and ``other``), and the passphrase file."""
    from tests.conftest import PybuildRunner

    d = tmp_path_factory.mktemp("keys")
    (d / "root").mkdir()
    (d / "state").mkdir()
    run = PybuildRunner(d / "root", d / "state")
    pw = d / "passphrase"
    pw.write_text(PASSPHRASE + "\n")
    for name in ("main", "other"):
        out = run("key", "generate", "--output-key-prefix", str(d / name), "--passphrase-file", str(pw), check=True)
        assert PASSPHRASE not in out.stdout + out.stderr
    return {"key": d / "main.key", "pub": d / "main.pub", "other_key": d / "other.key",
            "other_pub": d / "other.pub", "pw": pw}


@pytest.fixture(scope="module")
def oci_registry():
    server = OciRegistry()
    yield server
    server.stop()


def _image_on(server, repo: str, tag: str = "1") -> Manifest:
    manifest, blobs = make_image((2000,), tag=f"{repo}-{tag}".replace("/", "-"))
    _push_library(server, repo, tag, manifest, blobs)
    return manifest


def _get(server, repo: str, identifier: str) -> bytes:
    with Registry(server.host) as reg:
        return reg.repository(repo).get_manifest(identifier).raw


def _decrypt(key_file: Path, passphrase: bytes):
    """The private key in a cosign key file, decrypted here independently of pybuild's code."""
    import nacl.secret
    from cryptography.hazmat.primitives import serialization

    lines = key_file.read_text().strip().splitlines()
    assert lines[0] in ("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----", "-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----")
    body = json.loads(base64.b64decode("".join(lines[1:-1])))
    assert body["kdf"]["name"] == "scrypt" and body["cipher"]["name"] == "nacl/secretbox"
    p = body["kdf"]["params"]
    secret = hashlib.scrypt(passphrase, salt=base64.b64decode(body["kdf"]["salt"]), n=p["N"], r=p["r"], p=p["p"],
                            dklen=32, maxmem=1 << 28)
    der = nacl.secret.SecretBox(secret).decrypt(base64.b64decode(body["ciphertext"]),
                                                base64.b64decode(body["cipher"]["nonce"]))
    return serialization.load_der_private_key(der, None)


def test_key_generate_writes_cosigns_encrypted_format(pybuild, keys, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = _decrypt(keys["key"], PASSPHRASE.encode())
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    pub = serialization.load_pem_public_key(keys["pub"].read_bytes())
    assert pub.public_numbers() == key.public_key().public_numbers()
    assert keys["pub"].read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert keys["key"].stat().st_mode & 0o777 == 0o600
    # COSIGN_PASSWORD works too; an existing file is never overwritten; no passphrase is an error
    out = pybuild("key", "generate", "--output-key-prefix", str(tmp_path / "env"), env={"COSIGN_PASSWORD": "pw1"})
    assert out.returncode == 0, out.stderr
    _decrypt(tmp_path / "env.key", b"pw1")
    again = pybuild("key", "generate", "--output-key-prefix", str(tmp_path / "env"), env={"COSIGN_PASSWORD": "pw1"})
    assert again.returncode != 0 and "exists" in again.stderr
    none = pybuild("key", "generate", "--output-key-prefix", str(tmp_path / "none"), env={"COSIGN_PASSWORD": ""})
    assert none.returncode == 0  # an empty passphrase is a passphrase (cosign allows it)
    import os

    env = {k: v for k, v in os.environ.items() if k != "COSIGN_PASSWORD"}
    missing = pybuild("key", "generate", "--output-key-prefix", str(tmp_path / "x"), env=env)
    assert missing.returncode == 2 and "COSIGN_PASSWORD" in missing.stderr and "Traceback" not in missing.stderr


def test_key_written_by_cosign_signs_and_verifies(pybuild, open_registry, tmp_path):
    """cosign's own encrypted test key (pkg/cosign/keys_test.go, passphrase "hello") signs with pybuild."""
    from cryptography.hazmat.primitives import serialization

    cosign_key = COSIGN / "cosign-hello.key"
    pub = tmp_path / "cosign-hello.pub"
    pub.write_bytes(_decrypt(cosign_key, b"hello").public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    _image_on(open_registry, "sig/cosignkey")
    image = f"{open_registry.host}/sig/cosignkey:1"
    env = _env(tmp_path)
    wrong = pybuild("sign", image, "--key", str(cosign_key), env={**env, "COSIGN_PASSWORD": "nope"})
    assert wrong.returncode == 2 and "wrong passphrase" in wrong.stderr and "nope" not in wrong.stderr
    pybuild("sign", image, "--key", str(cosign_key), env={**env, "COSIGN_PASSWORD": "hello"}, check=True)
    out = pybuild("verify", image, "--key", str(pub), env=env, check=True)
    assert "simple-signing:" in out.stdout and "bundle:" in out.stdout


def test_sign_both_forms_with_tag_schema_fallback(pybuild, open_registry, keys, tmp_path):
    """docker-registry 2.8 has no referrers API: the bundle is found through the sha256-<hex> tag index."""
    manifest = _image_on(open_registry, "sig/app")
    image = f"{open_registry.host}/sig/app:1"
    env = {**_env(tmp_path), "COSIGN_PASSWORD": PASSPHRASE}
    first = pybuild("sign", image, "--key", str(keys["key"]), env=env, check=True)
    assert f"Signed {open_registry.host}/sig/app@{manifest.digest}" in first.stdout
    pybuild("sign", image, "--key", str(keys["key"]), "--passphrase-file", str(keys["pw"]), env=_env(tmp_path), check=True)

    sig = json.loads(_get(open_registry, "sig/app", f"sha256-{manifest.digest.hex}.sig"))
    assert [layer["mediaType"] for layer in sig["layers"]] == ["application/vnd.dev.cosign.simplesigning.v1+json"] * 2
    assert all(layer["annotations"]["dev.cosignproject.cosign/signature"] for layer in sig["layers"])
    fallback = json.loads(_get(open_registry, "sig/app", f"sha256-{manifest.digest.hex}"))
    assert [m["artifactType"] for m in fallback["manifests"]] == ["application/vnd.dev.sigstore.bundle.v0.3+json"] * 2

    listed = json.loads(pybuild("referrers", image, "--format", "json", env=env, check=True).stdout)
    assert {(r["artifactType"], r["foundBy"]) for r in listed} == {("application/vnd.dev.sigstore.bundle.v0.3+json", "tag")}
    table = pybuild("referrers", image, env=env, check=True).stdout
    assert table.startswith("ARTIFACT TYPE") and table.count("application/vnd.dev.sigstore.bundle.v0.3+json") == 2

    out = pybuild("verify", image, "--key", str(keys["pub"]), env=env, check=True).stdout
    assert f"the signed digest is {manifest.digest}" in out
    assert out.count("simple-signing: ") == 2 and out.count("bundle: ") == 2
    for form in ("simple-signing", "bundle"):
        only = json.loads(pybuild("verify", image, "--key", str(keys["pub"]), "--form", form, "--format", "json",
                                  env=env, check=True).stdout)
        assert {s["form"] for s in only} == {form} and {s["digest"] for s in only} == {str(manifest.digest)}

    other = pybuild("verify", image, "--key", str(keys["other_pub"]), env=env)
    assert other.returncode != 0 and "does not verify with" in other.stderr and "Traceback" not in other.stderr

    _image_on(open_registry, "sig/unsigned")
    unsigned = pybuild("verify", f"{open_registry.host}/sig/unsigned:1", "--key", str(keys["pub"]), env=env)
    assert unsigned.returncode != 0 and "no valid signature" in unsigned.stderr

    # the tag moves to another (unsigned) image: the old signatures do not cover it
    moved = _image_on(open_registry, "sig/app")
    assert moved.digest != manifest.digest
    after = pybuild("verify", image, "--key", str(keys["pub"]), env=env)
    assert after.returncode != 0 and str(moved.digest) in after.stderr


def test_push_signs_with_sigstore_private_key(pybuild, open_registry, keys, tmp_path):
    from .test_pull_push import _store_image

    _store_image(pybuild, "pushme:1", (3000,))
    env = _env(tmp_path)
    target = f"{open_registry.host}/sig/pushed:1"
    bad = pybuild("push", "pushme:1", target, "--sign-by-sigstore-private-key", str(keys["key"]),
                  env={**env, "COSIGN_PASSWORD": "wrong"})
    assert bad.returncode == 2 and "wrong passphrase" in bad.stderr
    with Registry(open_registry.host) as reg:  # refused before a byte went up
        assert reg.repository("sig/pushed").head_manifest("1") is None
    out = pybuild("push", "pushme:1", target, "--sign-by-sigstore-private-key", str(keys["key"]),
                  "--passphrase-file", str(keys["pw"]), env=env, check=True)
    assert "Signed " in out.stderr
    pybuild("verify", target, "--key", str(keys["pub"]), env=env, check=True)


def test_referrers_api_registry(pybuild, oci_registry, keys, tmp_path):
    """A registry with the referrers API indexes the bundle itself: no fallback tag is written."""
    manifest = _image_on(oci_registry, "sig/api")
    image = f"{oci_registry.host}/sig/api:1"
    env = {**_env(tmp_path), "COSIGN_PASSWORD": PASSPHRASE}
    out = pybuild("sign", image, "--key", str(keys["key"]), env=env, check=True).stdout
    assert "found by api" in out
    assert ("sig/api", f"sha256-{manifest.digest.hex}") not in oci_registry.tags
    listed = json.loads(pybuild("referrers", image, "--format", "json", env=env, check=True).stdout)
    assert [(r["artifactType"], r["foundBy"]) for r in listed] == [("application/vnd.dev.sigstore.bundle.v0.3+json", "api")]
    pybuild("verify", image, "--key", str(keys["pub"]), "--form", "bundle", env=env, check=True)


def _put_signature(server, repo: str, digest: Digest, payload: bytes, signature: bytes) -> str:
    """Write a .sig manifest for ``digest`` carrying ``payload``/``signature`` (no check of what they say)."""
    from registry_client.referrers import put_blobs
    from registry_client.signatures import signature_manifest, signature_tag

    manifest, blobs = signature_manifest(None, payload, signature)
    with Registry(server.host) as reg:
        r = reg.repository(repo)
        put_blobs(r, blobs)
        r.put_manifest(signature_tag(digest), manifest.raw, manifest.media_type)
    return str(manifest.layers[0].digest)


def test_tampered_signatures_are_refused(pybuild, oci_registry, keys, tmp_path):
    from registry_client.keys import load_private
    from registry_client.signatures import payload

    key = load_private(keys["key"].read_bytes(), PASSPHRASE.encode())
    env = _env(tmp_path)
    form = ("--form", "simple-signing")

    # 1. a valid signature by the right key, over another digest
    target = _image_on(oci_registry, "tamper/digest")
    elsewhere = Digest.from_bytes(b"another manifest")
    data = payload(f"{oci_registry.host}/tamper/digest", elsewhere)
    _put_signature(oci_registry, "tamper/digest", target.digest, data, key.sign(data))
    out = pybuild("verify", f"{oci_registry.host}/tamper/digest:1", "--key", str(keys["pub"]), *form, env=env)
    assert out.returncode != 0 and f"signs {elsewhere}" in out.stderr

    # 2. a valid signature over the right digest, naming another repository
    target = _image_on(oci_registry, "tamper/identity")
    data = payload(f"{oci_registry.host}/someone/else", target.digest)
    _put_signature(oci_registry, "tamper/identity", target.digest, data, key.sign(data))
    out = pybuild("verify", f"{oci_registry.host}/tamper/identity:1", "--key", str(keys["pub"]), *form, env=env)
    assert out.returncode != 0 and "someone/else" in out.stderr and "identity" in out.stderr

    # 3. a signature layer whose bytes do not match its digest (the registry serves other bytes)
    target = _image_on(oci_registry, "tamper/layer")
    data = payload(f"{oci_registry.host}/tamper/layer", target.digest)
    layer = _put_signature(oci_registry, "tamper/layer", target.digest, data, key.sign(data))
    pybuild("verify", f"{oci_registry.host}/tamper/layer:1", "--key", str(keys["pub"]), *form, env=env, check=True)
    oci_registry.tamper[layer] = data.replace(b"critical", b"CRITICAL")
    out = pybuild("verify", f"{oci_registry.host}/tamper/layer:1", "--key", str(keys["pub"]), *form, env=env)
    assert out.returncode != 0 and "does not match its digest" in out.stderr


def test_signature_made_by_cosign_verifies(pybuild, oci_registry, tmp_path):
    """A simple-signing signature the real cosign made (sigstore-rs test data: its key, payload and
    signature for registry-testing.svc.lan/busybox@sha256:f3cfc9...) verifies with pybuild's code; put
    beside another image through the CLI, it verifies cryptographically and is refused for naming
    another digest (the check pybuild makes after the signature check)."""
    from registry_client.keys import load_public
    from registry_client.signatures import check_payload

    data = (COSIGN / "busybox.payload.json").read_bytes()
    sig = (COSIGN / "busybox.payload.sig").read_text()
    key = load_public((COSIGN / "sigstore-rs-cosign.pub").read_bytes(), "sigstore-rs-cosign.pub")
    signed = check_payload(data, sig, key, "cosign test data")
    assert signed.identity == "registry-testing.svc.lan/busybox"
    assert str(signed.digest) == "sha256:f3cfc9d0dbf931d3db4685ec659b7ac68e2a578219da4aae65427886e649b06b"
    assert not key.verify(base64.b64decode(sig), data + b" ")

    target = _image_on(oci_registry, "cosign/real")
    _put_signature(oci_registry, "cosign/real", target.digest, data, base64.b64decode(sig))
    out = pybuild("verify", f"{oci_registry.host}/cosign/real:1", "--key", str(COSIGN / "sigstore-rs-cosign.pub"),
                  "--form", "simple-signing", env=_env(tmp_path))
    assert out.returncode != 0 and f"signs {signed.digest}" in out.stderr and str(target.digest) in out.stderr
    other = pybuild("verify", f"{oci_registry.host}/cosign/real:1", "--key", str(COSIGN / "sigstore-rs-cosign.pub"),
                    "--form", "simple-signing", env=_env(tmp_path))
    assert "does not verify" not in other.stderr
