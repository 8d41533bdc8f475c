"""The trust policy podman reads (containers-policy.json + registries.d), enforced by ``pybuild pull``,
``run`` and ``build`` before anything is stored. The tests never touch /etc/containers: they give
``--policy FILE`` or ``PYBUILD_POLICY`` / ``PYBUILD_REGISTRIES_D``."""

from __future__ import annotations

import base64
import json
import os

from registry_client.policy import SYSTEM_POLICY

from .test_pull_push import _env
from .test_signing import PASSPHRASE, _image_on, keys  # noqa: F401  (keys: the session key pairs)


import pytest


@pytest.fixture(autouse=True)
def _registry_scope(open_registry, monkeypatch):
    """The policy scope the tests write: the open registry's host:port (as podman scopes a registry)."""
    monkeypatch.setenv("PYBUILD_TEST_REGISTRY", open_registry.host)


def _stored(pybuild) -> list[str]:
    """Every blob file and image record in the per-test store (empty when a pull left nothing)."""
    found = []
    for sub in ("blobs", "images"):
        for top, _dirs, files in os.walk(pybuild.root / sub):
            found += [os.path.join(top, f) for f in files]
    return found


def _setup(tmp_path, pub, identity: dict | None = None, attachments: bool = True,
           scope: str = "") -> tuple[dict, str]:
    """A policy requiring sigstore signatures by ``pub`` for ``scope`` (the registry host:port of the
    tests' registries by default; insecureAcceptAnything elsewhere)
    and a registries.d enabling sigstore attachments; the env pointing pybuild at both, and the policy path."""
    req = {"type": "sigstoreSigned", "keyPath": str(pub)}
    if identity is not None:
        req["signedIdentity"] = identity
    scope = scope or os.environ["PYBUILD_TEST_REGISTRY"]
    policy = {"default": [{"type": "insecureAcceptAnything"}], "transports": {"docker": {scope: [req]}}}
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policy))
    regd = tmp_path / "registries.d"
    regd.mkdir(exist_ok=True)
    (regd / "default.yaml").write_text(f"default-docker:\n  use-sigstore-attachments: {str(attachments).lower()}\n")
    return {**_env(tmp_path), "PYBUILD_REGISTRIES_D": str(regd)}, str(path)


def test_sigstore_signed_policy_accepts_signed_and_refuses_unsigned(pybuild, open_registry, keys, tmp_path):  # noqa: F811
    env, policy = _setup(tmp_path, keys["pub"], {"type": "matchRepository"})
    _image_on(open_registry, "policy/signed")
    signed = f"{open_registry.host}/policy/signed:1"
    pybuild("sign", signed, "--key", str(keys["key"]), env={**env, "COSIGN_PASSWORD": PASSPHRASE}, check=True)
    _image_on(open_registry, "policy/unsigned")
    unsigned = f"{open_registry.host}/policy/unsigned:1"

    refused = pybuild("pull", "--policy", policy, unsigned, env=env)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "rejected by policy" in refused.stderr and "no valid signature" in refused.stderr
    assert [line for line in refused.stderr.splitlines() if line.startswith("pybuild:")] == \
        [refused.stderr.strip().splitlines()[-1]]  # one line of error, after the "Pulling" note
    assert _stored(pybuild) == []

    pybuild("pull", "--policy", policy, signed, env=env, check=True)
    assert _stored(pybuild) != []
    assert "policy/signed" in pybuild("images", env=env, check=True).stdout

    # signed by another key than the policy's: refused
    env2, other_policy = _setup(tmp_path / "o", keys["other_pub"], {"type": "matchRepository"})
    out = pybuild("pull", "--policy", other_policy, signed, env=env2)
    assert out.returncode != 0 and "does not verify" in out.stderr

    # PYBUILD_POLICY is what pull reads without --policy (never /etc/containers/policy.json in tests)
    out = pybuild("pull", unsigned, env={**env, "PYBUILD_POLICY": policy})
    assert out.returncode != 0 and "rejected by policy" in out.stderr

    # without use-sigstore-attachments in registries.d, podman sees no signature: neither do we
    env3, policy3 = _setup(tmp_path / "n", keys["pub"], {"type": "matchRepository"}, attachments=False)
    out = pybuild("pull", "--policy", policy3, signed, env=env3)
    assert out.returncode != 0 and "use-sigstore-attachments" in out.stderr


def test_signed_identity_rules(pybuild, open_registry, keys, tmp_path):  # noqa: F811
    """cosign signs the repository without a tag: podman's default (matchRepoDigestOrExact) refuses
    it for a tag and accepts it for a digest; exactRepository names the repository."""
    manifest = _image_on(open_registry, "policy/ident")
    image = f"{open_registry.host}/policy/ident:1"
    env, _ = _setup(tmp_path, keys["pub"])
    pybuild("sign", image, "--key", str(keys["key"]), env={**env, "COSIGN_PASSWORD": PASSPHRASE}, check=True)

    _, default = _setup(tmp_path, keys["pub"])
    out = pybuild("pull", "--policy", default, image, env=env)
    assert out.returncode != 0 and "signedIdentity matchRepoDigestOrExact" in out.stderr
    pybuild("pull", "--policy", default, f"{open_registry.host}/policy/ident@{manifest.digest}", env=env, check=True)

    _, wrong = _setup(tmp_path, keys["pub"], {"type": "exactRepository",
                                             "dockerRepository": f"{open_registry.host}/policy/other"})
    out = pybuild("pull", "--policy", wrong, image, env=env)
    assert out.returncode != 0 and "exactRepository" in out.stderr
    _, right = _setup(tmp_path, keys["pub"], {"type": "exactRepository",
                                             "dockerRepository": f"{open_registry.host}/policy/ident"})
    pybuild("pull", "--policy", right, image, env=env, check=True)


def test_reject_accept_and_bad_policy_files(pybuild, open_registry, keys, tmp_path):  # noqa: F811
    _image_on(open_registry, "policy/plain")
    image = f"{open_registry.host}/policy/plain:1"
    env = _env(tmp_path)

    def policy(name: str, text: str) -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    reject = policy("reject.json", json.dumps({"default": [{"type": "reject"}]}))
    out = pybuild("pull", "--policy", reject, image, env=env)
    assert out.returncode != 0 and "'reject'" in out.stderr and _stored(pybuild) == []

    for name, text, words in [
        ("syntax.json", '{"default": [{"type": "insecureAcceptAnything"}],\n  "transports": {', ("line 2", "syntax.json")),
        ("gpg.json", json.dumps({"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k.gpg"}]}),
         ("signedBy", "not supported")),
        ("unknown.json", json.dumps({"default": [{"type": "sometimesSigned"}]}), ("sometimesSigned",)),
        ("nodefault.json", json.dumps({"transports": {}}), ("'default' is missing",)),
        ("keydata.json", json.dumps({"default": [{"type": "sigstoreSigned", "keyData": "!!"}]}), ("not base64",)),
    ]:
        bad = policy(name, text)
        out = pybuild("pull", "--policy", bad, f"{open_registry.host}/policy/plain:1", env=env)
        assert out.returncode == 2, (name, out.stderr)
        assert all(w in out.stderr for w in words), (name, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
        assert _stored(pybuild) == []  # a policy that cannot be read pulls nothing

    scoped = policy("scoped.json", json.dumps({"default": [{"type": "reject"}], "transports": {"docker": {
        f"{open_registry.host}/policy": [{"type": "insecureAcceptAnything"}]}}}))
    pybuild("pull", "--policy", scoped, image, env=env, check=True)

    out = pybuild("pull", "--policy", str(tmp_path / "absent.json"), image, env=env)
    assert out.returncode == 2 and "no policy file" in out.stderr

    # keyData: the base64 of the PEM, as podman takes it
    data = base64.b64encode(keys["pub"].read_bytes()).decode()
    kd = policy("kd.json", json.dumps({"default": [{"type": "sigstoreSigned", "keyData": data,
                                                    "signedIdentity": {"type": "matchRepository"}}]}))
    regd = tmp_path / "kd-registries.d"
    regd.mkdir()
    (regd / "x.yaml").write_text(f"docker:\n  {open_registry.host}:\n    use-sigstore-attachments: true\n")
    out = pybuild("pull", "--policy", kd, image, env={**env, "PYBUILD_REGISTRIES_D": str(regd)})
    assert out.returncode != 0 and "no valid signature" in out.stderr


def test_run_and_build_refuse_what_the_policy_rejects(pybuild, open_registry, keys, tmp_path):  # noqa: F811
    _image_on(open_registry, "policy/base")
    image = f"{open_registry.host}/policy/base:1"
    env, policy = _setup(tmp_path, keys["pub"], {"type": "matchRepository"})
    env = {**env, "PYBUILD_POLICY": policy}

    out = pybuild("run", "--rm", image, "true", env=env)
    assert out.returncode == 125 and "rejected by policy" in out.stderr and _stored(pybuild) == []

    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {image}\nLABEL a=b\n")
    out = pybuild("build", "--policy", policy, "-t", "child:1", str(ctx), env=env)
    assert out.returncode != 0 and "rejected by policy" in out.stderr and _stored(pybuild) == []


def test_default_policy_file_is_podmans():
    """Without --policy or PYBUILD_POLICY pybuild reads the file podman reads (the user's first)."""
    from registry_client.policy import policy_path

    saved = os.environ.pop("PYBUILD_POLICY", None)
    try:
        user = os.path.expanduser("~/.config/containers/policy.json")
        assert policy_path() == (user if os.path.exists(user) else SYSTEM_POLICY)
        assert policy_path("/x/p.json") == "/x/p.json"
    finally:
        if saved is not None:
            os.environ["PYBUILD_POLICY"] = saved
