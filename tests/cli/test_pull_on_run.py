"""``run`` and ``create`` pull an image the store does not have (``--pull missing|always|never``),
through the real ``pybuild`` binary and a real registry."""

from __future__ import annotations

import json
import os

import pytest

from tests.registry.servers import REGISTRY_BIN, start_registry


@pytest.fixture(scope="module")
def remote(tmp_path_factory, busybox_tar):
    """busybox pushed to a fresh open registry; its reference."""
    if REGISTRY_BIN is None:
        pytest.skip("docker-registry is not installed (apt-get install docker-registry)")
    if os.geteuid() != 0:
        pytest.skip("needs root for namespaces, mounts and cgroups")
    from tests.conftest import PybuildRunner

    server = start_registry("open", tmp_path_factory.mktemp("registry-pull-on-run"))
    try:
        base = tmp_path_factory.mktemp("pusher")
        (base / "root").mkdir()
        (base / "state").mkdir()
        pusher = PybuildRunner(base / "root", base / "state")
        pusher("import", str(busybox_tar), "busybox:src", check=True)
        ref = f"{server.host}/cli/busybox:1"
        pusher("push", "busybox:src", ref, check=True)
        yield ref
    finally:
        server.stop()


@pytest.fixture
def pb(pybuild, tmp_path):
    """``pybuild`` with no credentials of this machine's user."""
    env = {"PYBUILD_CONFIG": str(tmp_path / "pbconfig"), "DOCKER_CONFIG": str(tmp_path / "docker"),
           "HOME": str(tmp_path)}

    def call(*args, **kw):
        return pybuild(*args, env=env, **kw)

    yield call
    for cid in pybuild("ps", "-a", "-q", "--no-trunc").stdout.split():
        pybuild("rm", "-f", cid)


def _image_ids(pb) -> list[str]:
    return pb("images", "-q", "--no-trunc", check=True).stdout.split()


def test_run_pulls_a_missing_image_then_runs_it(pb, remote):
    r = pb("run", "--rm", "--network", "none", remote, "echo", "hi")
    assert (r.returncode, r.stdout) == (0, "hi\n"), r.stderr
    lines = r.stderr.splitlines()
    assert lines[0] == f"Unable to find image '{remote}' locally"
    assert any(line.startswith("Digest: sha256:") for line in lines)
    assert lines[-1] == f"Status: Downloaded newer image for {remote}"
    assert len(_image_ids(pb)) == 1
    again = pb("run", "--rm", "--network", "none", remote, "echo", "again")
    assert (again.returncode, again.stdout, again.stderr) == (0, "again\n", "")


def test_pull_never_and_always(pb, remote):
    never = pb("run", "--rm", "--pull", "never", "--network", "none", remote, "true")
    assert never.returncode == 125 and never.stderr == f"pybuild: no such image: {remote}\n"
    assert _image_ids(pb) == []
    first = pb("run", "--rm", "--pull", "always", "--network", "none", remote, "true")
    assert first.returncode == 0 and "Unable to find" not in first.stderr
    assert f"Status: Downloaded newer image for {remote}" in first.stderr
    second = pb("run", "--rm", "--pull", "always", "--network", "none", remote, "true")
    assert second.returncode == 0 and f"Status: Image is up to date for {remote}" in second.stderr
    bad = pb("run", "--pull", "sometimes", remote, "true")
    assert bad.returncode == 125 and "Traceback" not in bad.stderr


@pytest.mark.parametrize("cmd", [["create"], ["run", "-d"], ["container", "create"]])
def test_create_and_detached_run_pull(pb, remote, cmd):
    r = pb(*cmd, "--network", "none", remote, "sleep", "30")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()                      # stdout is the container id alone
    assert len(cid) == 64 and f"Unable to find image '{remote}' locally" in r.stderr
    doc = json.loads(pb("container", "inspect", cid, check=True).stdout)[0]
    assert doc["Config"]["Image"] == remote


def test_unreachable_registry_is_one_line(pb):
    r = pb("run", "--network", "none", "127.0.0.1:1/none/here:1", "true")
    assert r.returncode == 125 and "Traceback" not in r.stderr
    assert r.stderr.splitlines()[-1].startswith("pybuild: ")
