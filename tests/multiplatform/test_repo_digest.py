"""A one-platform pull out of a multi-platform index names the index as the image's repo digest, as
Docker does: ``RepoDigests``, ``images --digests`` / ``{{.Digest}}`` / json show the digest the
registry serves for the tag (skopeo's ``inspect --raw`` bytes hash to it), ``pull``/``run``/
``inspect``/``rmi`` of ``repo@<index digest>`` find the local image, ``push`` elsewhere sends the
platform's own manifest, ``save``/``load`` keep the repo digest. Single manifests, ``pull
--all-platforms`` and local index records keep their own digest.

Against a real ``docker-registry`` (with an access log to count blob downloads) and skopeo."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import PybuildRunner


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    from tests.registry.servers import start_registry

    server = start_registry("open", tmp_path_factory.mktemp("rd-registry"), access_log=True)
    yield server
    server.stop()


def _env(host: str) -> dict[str, str]:
    return {"PYBUILD_INSECURE_REGISTRIES": host}


def _fresh(tmp_path: Path, name: str) -> PybuildRunner:
    pb = PybuildRunner(tmp_path / f"{name}-root", tmp_path / f"{name}-state")
    pb.root.mkdir(mode=0o700)
    pb.state.mkdir(mode=0o700)
    return pb


def _raw(ref: str) -> bytes:
    return subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
                          capture_output=True, check=True).stdout


def _digest(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _log(registry) -> list[str]:
    """The registry's access log, read once it stopped growing (a line is written after the response)."""
    log, lines = registry.workdir / "registry.log", None
    for _ in range(20):
        now = log.read_text(errors="replace").splitlines()
        if lines is not None and len(now) == len(lines):
            break
        lines = now
        time.sleep(0.1)
    return now


def _blob_gets(lines: list[str]) -> list[str]:
    return [line for line in lines if re.search(r'"GET /v2/\S+/blobs/sha256:', line) and '" 200 ' in line]


def _inspect(pb: PybuildRunner, ref: str) -> dict:
    return json.loads(pb("inspect", "--type", "image", ref, check=True).stdout)[0]


@pytest.mark.parametrize("fmt", ["oci", "docker"])
def test_one_platform_pull_names_the_index_digest(mpybuild, registry, tmp_path: Path, fmt: str) -> None:
    env, host = _env(registry.host), registry.host
    ref, repo = f"{host}/rd-{fmt}/bb:1", f"{host}/rd-{fmt}/bb"
    # an OCI index, or a Docker manifest list of the same images (skopeo converts them to schema 2)
    if fmt == "oci":
        mpybuild("push", "-q", "busybox:multi", ref, env=env, check=True)
    else:
        mpybuild("push", "-q", "busybox:multi", f"{repo}:oci", env=env, check=True)
        subprocess.run(["skopeo", "copy", "-q", "--all", "--format", "v2s2", "--src-tls-verify=false",
                        "--dest-tls-verify=false", f"docker://{repo}:oci", f"docker://{ref}"], check=True)
    raw = _raw(ref)
    body = json.loads(raw)
    assert body["mediaType"] == {"oci": "application/vnd.oci.image.index.v1+json",
                                 "docker": "application/vnd.docker.distribution.manifest.list.v2+json"}[fmt]
    index = _digest(raw)  # what the registry serves for the tag, as Docker Hub / Harbor show it
    amd64 = next(m["digest"] for m in body["manifests"] if m["platform"]["architecture"] == "amd64")
    assert amd64 != index

    pb = _fresh(tmp_path, "pull")
    pulled = pb("pull", ref, env=env, check=True)
    assert f"Digest: {index}" in pulled.stderr
    doc = _inspect(pb, ref)
    assert doc["RepoDigests"] == [f"{repo}@{index}"]
    assert doc["Descriptor"]["digest"] == amd64 and doc["Architecture"] == "amd64"  # the platform's manifest
    assert "Index" not in doc  # one image, not an index record
    table = pb("images", "--digests", repo, check=True).stdout.splitlines()
    assert table[0].split()[:3] == ["REPOSITORY", "TAG", "DIGEST"] and table[1].split()[:3] == [repo, "1", index]
    assert pb("images", "--format", "{{.Digest}}", repo, check=True).stdout == f"{index}\n"
    assert json.loads(pb("images", "--format", "json", repo, check=True).stdout)["Digest"] == index
    image_id = doc["Id"]
    pb("system", "prune", "-f", check=True)  # GC keeps the index document beside the record
    assert (pb.root / "blobs" / "sha256" / index.split(":")[1]).is_file()

    # by the index digest: pull finds the image (no blob downloaded), inspect and run resolve it
    mark = len(_log(registry))
    again = pb("pull", f"{repo}@{index}", env=env, check=True)
    assert "Image is up to date" in again.stderr and _blob_gets(_log(registry)[mark:]) == [], again.stderr
    assert _inspect(pb, f"{repo}@{index}")["Id"] == image_id
    assert _inspect(pb, index)["Id"] == image_id
    out = pb("run", "--rm", "--network", "none", f"{repo}@{index}", "echo", "by-index", check=True)
    assert out.stdout == "by-index\n"
    rows = pb("images", "--digests", repo, check=True).stdout.splitlines()[1:]
    assert sorted(r.split()[1:3] for r in rows) == [["1", index], ["<none>", index]]

    # push elsewhere: the single platform image goes up, its digest there is its own manifest's
    copy = f"{host}/rd-{fmt}/copy:1"
    pushed = pb("push", "-q", ref, copy, env=env, check=True).stdout.strip()
    copy_raw = _raw(copy)
    assert pushed == _digest(copy_raw) == amd64
    assert "layers" in json.loads(copy_raw) and "manifests" not in json.loads(copy_raw)

    # save / load: the name keeps its repo digest
    archive = tmp_path / "bb.tar"
    pb("save", "-o", str(archive), ref, check=True)
    loaded = _fresh(tmp_path, "load")
    loaded("load", "-i", str(archive), check=True)
    doc = _inspect(loaded, ref)
    assert doc["RepoDigests"] == [f"{repo}@{index}"] and doc["Id"] == image_id
    assert doc["Descriptor"]["digest"] == amd64
    assert loaded("images", "--format", "{{.Digest}}", repo, check=True).stdout == f"{index}\n"
    out = loaded("run", "--rm", "--network", "none", f"{repo}@{index}", "echo", "loaded", check=True)
    assert out.stdout == "loaded\n"

    # rmi by the index digest: the name given by digest first, then the tag the digest is the repo digest of
    first = pb("rmi", f"{repo}@{index}", check=True).stdout
    assert first == f"Untagged: {repo}@{index}\n"
    assert pb("images", "--format", "{{.Tag}} {{.Digest}}", repo, check=True).stdout == f"1 {index}\n"
    second = pb("rmi", f"{repo}@{index}", check=True).stdout
    assert f"Untagged: {ref}\n" in second
    assert pb("images", "-q", repo, check=True).stdout == ""
    gone = pb("inspect", "--type", "image", f"{repo}@{index}")
    assert gone.returncode != 0 and "no such image" in gone.stderr


def test_single_manifests_and_whole_indexes_keep_their_own_digest(mpybuild, registry, tmp_path: Path) -> None:
    env, host = _env(registry.host), registry.host
    single, multi = f"{host}/rd-keep/single:1", f"{host}/rd-keep/multi:1"
    mpybuild("push", "-q", "busybox:amd64", single, env=env, check=True)
    mpybuild("push", "-q", "busybox:multi", multi, env=env, check=True)
    manifest, index = _digest(_raw(single)), _digest(_raw(multi))

    pb = _fresh(tmp_path, "keep")
    pb("pull", "-q", single, env=env, check=True)
    pb("pull", "-q", "--all-platforms", multi, env=env, check=True)
    # one image id (the index's host image is busybox:amd64): each name with its own repo digest, the
    # name asked for first
    single_at, multi_at = f"{host}/rd-keep/single@{manifest}", f"{host}/rd-keep/multi@{index}"
    assert _inspect(pb, single)["RepoDigests"] == [single_at, multi_at]
    doc = _inspect(pb, multi)
    assert doc["RepoDigests"] == [multi_at, single_at] and doc["Index"]["digest"] == index
    digests = pb("images", "--format", "{{.Repository}} {{.Digest}}", check=True).stdout.splitlines()
    assert sorted(digests) == sorted([f"{host}/rd-keep/single {manifest}", f"{host}/rd-keep/multi {index}"])
    records = json.loads((pb.root / "images" / "index.json").read_text())["images"]
    assert all("index" not in entry for entry in records.values()), records

    # a local index record (manifest create; build --platform a,b makes the same kind): its own digest
    local, amd = _inspect(mpybuild, "busybox:multi"), _inspect(mpybuild, "busybox:amd64")
    assert local["RepoDigests"] == [f"busybox@{local['Index']['digest']}", f"busybox@{amd['Descriptor']['digest']}"]
    rows = mpybuild("images", "--format", "{{.Tag}} {{.Digest}}", "busybox", check=True).stdout.splitlines()
    assert f"multi {local['Index']['digest']}" in rows and f"amd64 {amd['Descriptor']['digest']}" in rows
    records = json.loads((mpybuild.root / "images" / "index.json").read_text())["images"]
    assert records["docker.io/library/busybox:multi"]["digest"] == local["Index"]["digest"]
    assert "index" not in records["docker.io/library/busybox:multi"]
