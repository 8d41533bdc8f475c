"""Units of signing and policy (no registry, no subprocess): key files (cosign's format, hostile ones),
payload and bundle checks, policy scopes and signedIdentity rules, registries.d scoping."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from layers.digest import Digest
from layers.reference import Reference
from registry_client import keys as K
from registry_client.errors import KeyFileError, PolicyFileError, SignatureError
from registry_client.policy import SignedIdentity, _scopes, attachments_enabled, load_policy
from registry_client.signatures import check_bundle, check_payload, make_bundle, payload

COSIGN = Path(__file__).resolve().parents[2] / "testdata" / "cosign"
D = Digest.from_bytes(b"manifest")


@pytest.fixture(scope="module")
def pair():
    private_pem, public_pem = K.generate(b"pw")
    return K.load_private(private_pem, b"pw", "k"), K.load_public(public_pem, "k.pub"), private_pem


def _reencode(private_pem: bytes, edit) -> bytes:
    lines = private_pem.decode().strip().splitlines()
    body = json.loads(base64.b64decode("".join(lines[1:-1])))
    kind = edit(body) or "ENCRYPTED SIGSTORE PRIVATE KEY"
    return K._pem(kind, json.dumps(body).encode())


def test_key_files(pair):
    key, pub, private_pem = pair
    assert key.public.pem == pub.pem and pub.verify(key.sign(b"x"), b"x") and not pub.verify(key.sign(b"x"), b"y")
    legacy = _reencode(private_pem, lambda body: "ENCRYPTED COSIGN PRIVATE KEY")
    assert K.load_private(legacy, b"pw").public.pem == pub.pem
    cosign = K.load_private((COSIGN / "cosign-hello.key").read_bytes(), b"hello", "cosign-hello.key")
    assert cosign.private_key.curve.name == "secp256r1"
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        K.load_private(private_pem, b"nope")
    huge = _reencode(private_pem, lambda body: body["kdf"]["params"].update(N=1 << 30))
    with pytest.raises(KeyFileError, match="out of range"):  # refused before scrypt allocates 1 TiB
        K.load_private(huge, b"pw")
    other_cipher = _reencode(private_pem, lambda body: body["cipher"].update(name="aes-gcm"))
    with pytest.raises(KeyFileError, match="unsupported"):
        K.load_private(other_cipher, b"pw")
    with pytest.raises(KeyFileError, match="no 'ENCRYPTED SIGSTORE PRIVATE KEY'"):
        K.load_private(pub.pem, b"pw")
    with pytest.raises(KeyFileError, match="private key"):
        K.load_public(private_pem.replace(b"ENCRYPTED SIGSTORE PRIVATE KEY", b"PRIVATE KEY"))
    assert K.passphrase_from(None, env={"COSIGN_PASSWORD": "a b"}) == b"a b"
    with pytest.raises(KeyFileError, match="COSIGN_PASSWORD"):
        K.passphrase_from(None, env={})


def test_payload_and_bundle_checks(pair):
    key, pub, _ = pair
    other = K.load_public(K.generate(b"o")[1], "other.pub")
    data = payload("reg.example/app", D)
    sig = base64.b64encode(key.sign(data)).decode()
    assert check_payload(data, sig, pub, "t").digest == D
    with pytest.raises(SignatureError, match="does not verify with other.pub"):
        check_payload(data, sig, other, "t")
    wrong_type = data.replace(b"cosign container image signature", b"something else")
    with pytest.raises(SignatureError, match="payload type"):
        check_payload(wrong_type, base64.b64encode(key.sign(wrong_type)).decode(), pub, "t")
    with pytest.raises(SignatureError, match="not base64"):
        check_payload(data, "!!", pub, "t")

    bundle = make_bundle(key, "reg.example/app", D)
    signed = check_bundle(bundle, pub, "b")
    assert (signed.digest, signed.identity, signed.form) == (D, "reg.example/app", "bundle")
    doc = json.loads(bundle)
    assert doc["verificationMaterial"]["publicKey"]["hint"] == pub.hint and doc["verificationMaterial"]["tlogEntries"] == []
    statement = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    statement["subject"][0]["digest"]["sha256"] = "0" * 64
    doc["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    with pytest.raises(SignatureError, match="does not verify"):
        check_bundle(json.dumps(doc).encode(), pub, "b")


def test_policy_scopes_and_identities():
    ref = Reference.parse("reg.example.com:5000/ns/sub/app:1")
    assert _scopes(ref) == ["reg.example.com:5000/ns/sub/app:1", "reg.example.com:5000/ns/sub/app",
                            "reg.example.com:5000/ns/sub", "reg.example.com:5000/ns", "reg.example.com:5000",
                            "*.example.com", "*.com"]
    tagged, by_digest = Reference.parse("reg.example/app:1"), Reference.parse(f"reg.example/app@{D}")
    cosign_identity = "reg.example/app"   # cosign signs the repository, without a tag
    assert SignedIdentity("matchRepository").accepts(cosign_identity, tagged)
    assert not SignedIdentity("matchRepository").accepts("reg.example/other", tagged)
    assert not SignedIdentity().accepts(cosign_identity, tagged)          # matchRepoDigestOrExact, by tag
    assert SignedIdentity().accepts(cosign_identity, by_digest)           # ... by digest
    assert SignedIdentity().accepts("reg.example/app:1", tagged)
    assert not SignedIdentity("matchExact").accepts(cosign_identity, tagged)
    assert SignedIdentity("exactRepository", "reg.example/app").accepts(cosign_identity, by_digest)
    assert SignedIdentity("exactReference", "reg.example/app:1").accepts("reg.example/app:1", by_digest)
    assert not SignedIdentity("matchRepository").accepts("not a reference!", tagged)


def test_policy_files(tmp_path, pair):
    key_data = base64.b64encode(pair[1].pem).decode()

    def write(body) -> str:
        path = tmp_path / "p.json"
        path.write_text(body if isinstance(body, str) else json.dumps(body))
        return str(path)

    policy = load_policy(write({"default": [{"type": "reject"}], "transports": {
        "docker": {"reg.example/team": [{"type": "insecureAcceptAnything"}]},
        "docker-daemon": {"": [{"type": "insecureAcceptAnything"}]}}}))
    assert policy.scope_for(Reference.parse("reg.example/team/app:1"))[0] == "reg.example/team"
    assert policy.scope_for(Reference.parse("reg.example/other:1"))[0] == "default"
    for body, words in [
        ("[", "line 1 column 2"),
        ({"default": [{"type": "sigstoreSigned", "keyPath": "rel.pub"}]}, "rel.pub"),
        ({"default": [{"type": "sigstoreSigned", "keyData": base64.b64encode(b"x").decode(), "fulcio": {}}]}, "fulcio"),
        ({"default": [{"type": "reject", "extra": 1}]}, "extra"),
        ({"default": {}}, "list of requirements"),
        ({"default": [], "other": 1}, "unknown field 'other'"),
        ({"default": [{"type": "sigstoreSigned", "keyData": "eA=="}]}, "not a PEM public key"),
        ({"default": [{"type": "insecureAcceptAnything"}], "transports": {"docker": {"x": [{"type": "sigstoreSigned",
          "keyData": key_data, "signedIdentity": {"type": "remapIdentity"}}]}}}, "remapIdentity"),
        ({"default": [{"type": "sigstoreSigned", "keyData": key_data,
                       "signedIdentity": {"type": "exactReference", "dockerReference": "bad ref!"}}]}, "dockerReference"),
    ]:
        with pytest.raises(PolicyFileError, match=words):
            load_policy(write(body))


def test_registries_d_scopes(tmp_path):
    (tmp_path / "a.yaml").write_text("default-docker:\n  use-sigstore-attachments: false\n"
                                     "docker:\n  reg.example/team:\n    use-sigstore-attachments: true\n")
    assert attachments_enabled(Reference.parse("reg.example/team/app:1"), str(tmp_path))
    assert not attachments_enabled(Reference.parse("reg.example/other:1"), str(tmp_path))
    assert not attachments_enabled(Reference.parse("reg.example/team/app:1"), str(tmp_path / "absent"))
    (tmp_path / "b.yaml").write_text("docker: [unclosed\n")
    with pytest.raises(PolicyFileError, match="b.yaml"):
        attachments_enabled(Reference.parse("reg.example/team/app:1"), str(tmp_path))


def test_no_policy_file_installed_accepts_as_docker_but_a_named_one_must_exist(tmp_path, monkeypatch) -> None:
    from registry_client import policy as pol
    from registry_client.errors import PolicyFileError

    monkeypatch.setattr(pol, "SYSTEM_POLICY", str(tmp_path / "etc-containers-policy.json"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("PYBUILD_POLICY", raising=False)
    accept = pol.load_policy()
    assert [r.kind for r in accept.default] == ["insecureAcceptAnything"] and accept.docker == ()
    with pytest.raises(PolicyFileError, match="no policy file"):
        pol.load_policy(str(tmp_path / "named.json"))
    monkeypatch.setenv("PYBUILD_POLICY", str(tmp_path / "env.json"))
    with pytest.raises(PolicyFileError, match="no policy file"):
        pol.load_policy()
