"""What ``images --format json`` says of an index record (its platforms, as ``inspect`` shows them,
each marked pulled or not), and what a one-platform ``pull`` of an index records. A real
``docker-registry``; the index made by ``manifest create/add/push`` from two one-platform images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import PybuildRunner


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    from tests.registry.servers import start_registry

    server = start_registry("open", tmp_path_factory.mktemp("idx-registry"))
    yield server
    server.stop()


def _fresh(path: Path) -> PybuildRunner:
    pb = PybuildRunner(path / "root", path / "state")
    pb.root.mkdir(mode=0o700, parents=True)
    pb.state.mkdir(mode=0o700)
    return pb


def _json_rows(pb: PybuildRunner, env) -> list[dict]:
    out = pb("images", "--format", "json", env=env, check=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_images_json_lists_an_index_s_platforms(mpybuild, registry, tmp_path: Path) -> None:
    env = {"PYBUILD_INSECURE_REGISTRIES": registry.host}
    amd, arm = f"{registry.host}/idx/bb:amd64", f"{registry.host}/idx/bb:arm64"
    for local, remote in (("busybox:amd64", amd), ("busybox:arm64", arm)):
        mpybuild("push", "-q", local, remote, env=env, check=True)
    lst = f"{registry.host}/idx/bb:list"
    maker = _fresh(tmp_path / "maker")
    maker("manifest", "create", lst, amd, arm, env=env, check=True)
    index_digest = maker("manifest", "push", lst, env=env, check=True).stdout.strip()
    entries = {m["platform"]["architecture"]: m["digest"]
               for m in json.loads(maker("manifest", "inspect", "--raw", lst, check=True).stdout)["manifests"]}

    # every platform pulled: one record, both platforms, both pulled, as inspect lists them
    whole = _fresh(tmp_path / "whole")
    whole("pull", "-q", "--all-platforms", lst, env=env, check=True)
    [row] = _json_rows(whole, env)
    assert row["Digest"] == index_digest
    assert [(p["platform"], p["digest"], p["Pulled"]) for p in row["Platforms"]] == [
        ("linux/amd64", entries["amd64"], True), ("linux/arm64", entries["arm64"], True)]
    doc = json.loads(whole("inspect", lst, check=True).stdout)[0]
    assert [(p["platform"], p["digest"], p["size"]) for p in doc["Index"]["Platforms"]] == [
        (p["platform"], p["digest"], p["size"]) for p in row["Platforms"]]

    # one platform pulled: the name holds that platform's image (no Platforms), as Docker's classic
    # store and Podman's image record do; its Digest is the repo digest, the index's, as Docker shows it
    one = _fresh(tmp_path / "one")
    one("pull", "-q", "--platform", "linux/arm64", lst, env=env, check=True)
    [row] = _json_rows(one, env)
    assert row["Digest"] == index_digest and "Platforms" not in row
    assert json.loads(one("inspect", lst, check=True).stdout)[0]["Descriptor"]["digest"] == entries["arm64"]
