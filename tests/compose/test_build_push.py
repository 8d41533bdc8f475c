"""``compose build``, ``up --build`` (a rebuilt image recreates the container: the image id is part of
the config hash), ``images``, ``push`` to a real registry, ``down --rmi all`` and ``pull`` back."""

from __future__ import annotations

import pytest

from tests.registry.servers import REGISTRY_BIN, start_registry

pytestmark = pytest.mark.timeout(300)

COMPOSE = """
services:
  app:
    build: ./app
    image: {ref}
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.2; done"]
"""


@pytest.fixture
def registry(tmp_path):
    if REGISTRY_BIN is None:
        pytest.skip("docker-registry is not installed (apt-get install docker-registry)")
    server = start_registry("open", tmp_path / "registry")
    yield server
    server.stop()


def _dockerfile(compose, version: str) -> None:
    (compose.dir / "app").mkdir(exist_ok=True)
    (compose.dir / "app" / "Dockerfile").write_text(f"FROM busybox:latest\nRUN echo {version} > /version\n")


def test_build_rebuild_recreates_push_rmi_pull(compose, cpybuild, registry) -> None:
    ref = f"{registry.host}/compose/app:1"
    compose.write(COMPOSE.format(ref=ref))
    _dockerfile(compose, "v1")
    compose("build", check=True)
    assert ref in cpybuild("images", "--format", "{{.Repository}}:{{.Tag}}", check=True).stdout
    compose("up", "-d", check=True)
    first = compose.ids()["demo-app-1"]
    assert compose("exec", "-T", "app", "cat", "/version", check=True).stdout == "v1\n"
    _dockerfile(compose, "v2")
    compose("up", "-d", check=True)                         # the image exists: not rebuilt, not recreated
    assert compose.ids()["demo-app-1"] == first
    rebuilt = compose("up", "-d", "--build", "-t", "2")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert compose.ids()["demo-app-1"] != first             # a new image id: a new container
    assert compose("exec", "-T", "app", "cat", "/version", check=True).stdout == "v2\n"
    images = compose("images", check=True).stdout
    assert "demo-app-1" in images and f"{registry.host}/compose/app" in images
    push = compose("push")
    assert push.returncode == 0, push.stderr
    compose("down", "--rmi", "all", "-t", "2", check=True)
    assert ref not in cpybuild("images", "--format", "{{.Repository}}:{{.Tag}}").stdout
    pull = compose("pull")
    assert pull.returncode == 0, pull.stderr
    assert ref in cpybuild("images", "--format", "{{.Repository}}:{{.Tag}}", check=True).stdout
    assert cpybuild("run", "--rm", "--network", "none", ref, "cat", "/version", check=True).stdout == "v2\n"
