"""The Sigstore project's own verifier accepts the bundle pybuild attaches: ``@sigstore/verify`` (from
npm, run with Debian's node) with pybuild's public key and no transparency log. It refuses a bundle
whose signed statement was changed and a key that did not sign it.

The npm packages are installed once per session into a temp directory (npm's own cache makes a
re-run quick). An npm install that fails is an environment failure and fails the test: it never skips.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from registry_client.client import Registry

from .test_signing import PASSPHRASE, _image_on, keys  # noqa: F401  (keys: the session key pairs)
from .test_pull_push import _env

SCRIPT = Path(__file__).resolve().parent / "js" / "verify_bundle.js"
PACKAGES = ("@sigstore/verify@3", "@sigstore/bundle@4")


@pytest.fixture(scope="session")
def sigstore_js(tmp_path_factory) -> Path:
    """A directory with ``node_modules/@sigstore/{verify,bundle}`` and the verify script."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("node and npm are needed (apt-get install nodejs npm): they are in scripts/install.sh")
    where = tmp_path_factory.mktemp("sigstore-js")
    proc = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--no-package-lock", "--prefix", str(where),
                           *PACKAGES], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"npm install {' '.join(PACKAGES)} failed (no access to the npm registry?): "
                    f"{proc.stderr[-1500:]}")
    shutil.copy(SCRIPT, where / "verify_bundle.js")
    return where


def _node(where: Path, bundle: Path, key: Path, digest_hex: str) -> subprocess.CompletedProcess:
    return subprocess.run(["node", str(where / "verify_bundle.js"), str(bundle), str(key), digest_hex],
                          capture_output=True, text=True, timeout=120, cwd=where)


def test_sigstore_verify_accepts_pybuilds_bundle(pybuild, open_registry, keys, sigstore_js, tmp_path):  # noqa: F811
    from registry_client.referrers import fetch_small, list_referrers
    from layers.manifest import Manifest

    manifest = _image_on(open_registry, "js/app")
    image = f"{open_registry.host}/js/app:1"
    pybuild("sign", image, "--key", str(keys["key"]), env={**_env(tmp_path), "COSIGN_PASSWORD": PASSPHRASE},
            check=True)
    with Registry(open_registry.host) as reg:
        repo = reg.repository("js/app")
        (ref,) = list_referrers(repo, manifest.digest, "application/vnd.dev.sigstore.bundle.v0.3+json")
        artifact = Manifest.parse(repo.get_manifest(str(ref.descriptor.digest)).raw)
        data = fetch_small(repo, artifact.layers[0])
    bundle = tmp_path / "bundle.json"
    bundle.write_bytes(data)

    ok = _node(sigstore_js, bundle, keys["pub"], manifest.digest.hex)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("verified https://sigstore.dev/cosign/sign/v1 for ")

    # another key: refused
    other = _node(sigstore_js, bundle, keys["other_pub"], manifest.digest.hex)
    assert other.returncode == 1 and "SIGNATURE_ERROR" in other.stderr

    # the signed statement changed to name another image: the signature no longer covers it
    doc = json.loads(data)
    statement = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    statement["subject"][0]["digest"]["sha256"] = "0" * 64
    doc["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(doc))
    bad = _node(sigstore_js, tampered, keys["pub"], "0" * 64)
    assert bad.returncode == 1 and "SIGNATURE_ERROR" in bad.stderr

    # a bundle for this image checked against another digest: refused by the subject check
    wrong = _node(sigstore_js, bundle, keys["pub"], "1" * 64)
    assert wrong.returncode == 1 and "not sha256:" in wrong.stderr
