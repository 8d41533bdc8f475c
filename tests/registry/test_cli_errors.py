"""Bad input to the registry commands, through the real ``pybuild``: one line naming what was wrong,
a non-zero exit, never a traceback, and nothing sent or written that should not be."""

from __future__ import annotations

import json

import pytest

from layers.mediatype import MediaType

from .hostile import HostileRegistry, send
from .images import make_image


def _one_line_error(out, *needles: str, code: int | None = None) -> None:
    assert out.returncode != 0, out.stdout
    if code is not None:
        assert out.returncode == code, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.startswith(("pybuild:", "Error:"))]
    assert len(lines) == 1, out.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def hostile():
    server = HostileRegistry()
    yield server
    server.stop()


@pytest.fixture
def env(tmp_path):
    return {"PYBUILD_CONFIG": str(tmp_path / "cfg"), "DOCKER_CONFIG": str(tmp_path / "docker"), "HOME": str(tmp_path)}


def _store_image(pybuild, name: str):
    from layers.store import Store

    manifest, blobs = make_image((20_000,), tag=name.replace(":", "-"))
    store = Store(str(pybuild.root))
    with store.lease():
        for digest, data in blobs.items():
            store.blobs.put_bytes(data, expected=digest)
        store.blobs.put_bytes(manifest.raw, expected=manifest.digest)
        store.images.tag(name, manifest.digest)
    return manifest


@pytest.mark.parametrize("args, needles", [
    (["pull", "127.0.0.1:5000/x@sha256:../../x"], ["invalid sha256 digest"]),
    (["pull", "127.0.0.1:5000/x@sha256:" + "A" * 64], ["digest"]),
    (["pull", "127.0.0.1:5000/UPPER:1"], ["lowercase"]),
    (["pull", "--platform", "linux", "127.0.0.1:5000/x:1"], ["invalid platform 'linux'"]),
    (["push", "no-such-image:1", "127.0.0.1:5000/x:1"], ["no-such-image:1"]),
    (["push", "x:1", "ftp://x"], ["ftp:"]),
    (["login", "127.0.0.1:5000", "-u", "a", "--password-stdin"], ["password is empty"]),
    (["manifest", "inspect", "::"], ["'::'"]),
])
def test_bad_arguments(pybuild, env, args, needles):
    _one_line_error(pybuild(*args, env=env, input=""), *needles)


def test_unusable_tls_ca_names_the_file(pybuild, env, tmp_path):
    bad = tmp_path / "not-a-ca.pem"
    bad.write_text("hello\n")
    out = pybuild("--tls-ca", str(bad), "manifest", "inspect", "registry.invalid/x:1", env=env)
    _one_line_error(out, "--tls-ca", str(bad))


def test_unreachable_registry(pybuild, env):
    from .servers import free_port

    out = pybuild("pull", f"127.0.0.1:{free_port()}/x:1", env=env)
    _one_line_error(out, "ConnectError")


def test_manifest_that_is_not_json(pybuild, env, hostile):
    hostile.routes[("GET", "/v2/x/manifests/v1")] = lambda r: send(r, 200, b"\xff<html>", {"Content-Type": MediaType.OCI_MANIFEST})
    ref = f"{hostile.host}/x:v1"
    _one_line_error(pybuild("manifest", "inspect", ref, env=env), "not JSON", "--raw")
    raw = pybuild("manifest", "inspect", "--raw", ref, env=env, text=False)
    assert raw.returncode == 0 and raw.stdout == b"\xff<html>"
    _one_line_error(pybuild("pull", ref, env=env), ref.split("/")[0])
    _one_line_error(pybuild("inspect", "--remote", ref, env=env))


def test_manifest_both_index_and_image(pybuild, env, hostile):  # CVE-2021-41190
    body = json.dumps({"schemaVersion": 2, "mediaType": MediaType.OCI_MANIFEST,
                       "config": {"mediaType": MediaType.OCI_CONFIG, "digest": "sha256:" + "a" * 64, "size": 2},
                       "layers": [], "manifests": []}).encode()
    hostile.routes[("GET", "/v2/x/manifests/v1")] = lambda r: send(r, 200, body, {"Content-Type": MediaType.OCI_MANIFEST})
    _one_line_error(pybuild("pull", f"{hostile.host}/x:v1", env=env), "manifests")
    assert not hostile.requests("GET", "/blobs/")


def test_push_to_a_digest_that_is_not_the_content_sends_nothing(pybuild, env, hostile):
    _store_image(pybuild, "local:1")
    target = f"{hostile.host}/x@sha256:{'0' * 64}"
    _one_line_error(pybuild("push", "local:1", target, env=env), "names digest", code=2)
    assert not [s for s in hostile.seen if s.path != "/v2/"]  # refused before any blob HEAD or upload


def test_digestfile_in_a_missing_directory_is_refused_before_pushing(pybuild, env, hostile, tmp_path):
    _store_image(pybuild, "local:2")
    out = pybuild("push", "--digestfile", str(tmp_path / "nope" / "digest"), "local:2", f"{hostile.host}/x:1", env=env)
    _one_line_error(out, "--digestfile")
    assert not hostile.seen
