"""``build.secrets`` (short and long syntax, read by ``RUN --mount=type=secret``, never left in the image)
and ``build.cache_from`` (a registry cache written by ``pybuild build --cache-to`` on another store is hit
by ``compose build`` on a fresh one)."""

from __future__ import annotations

import shutil

import pytest

from tests.compose.conftest import Compose
from tests.conftest import PybuildRunner
from tests.registry.servers import REGISTRY_BIN, start_registry

pytestmark = pytest.mark.timeout(300)

SECRETS = """
services:
  app:
    build:
      context: ./app
      secrets:
        - token
        - source: apikey
          target: api
secrets:
  token: {file: ./token.txt}
  apikey: {file: ./api.txt}
"""

SECRET_DOCKERFILE = """\
FROM busybox:latest
RUN --mount=type=secret,id=token --mount=type=secret,id=api \\
    cat /run/secrets/token /run/secrets/api > /seen && ls /run/secrets > /listed
"""


def test_build_secrets_short_and_long_syntax(compose, cpybuild) -> None:
    compose.write(SECRETS)
    (compose.dir / "app").mkdir()
    (compose.dir / "app" / "Dockerfile").write_text(SECRET_DOCKERFILE)
    (compose.dir / "token.txt").write_text("tok-123\n")
    (compose.dir / "api.txt").write_text("api-456\n")
    build = compose("build")
    assert build.returncode == 0, build.stderr
    image = "demo-app"
    assert cpybuild("run", "--rm", "--network", "none", image, "cat", "/seen", check=True).stdout == "tok-123\napi-456\n"
    listed = cpybuild("run", "--rm", "--network", "none", image, "sh", "-c", "cat /listed; ls /run/secrets 2>&1 || true",
                      check=True).stdout
    assert "token" in listed and "api" in listed
    assert "tok-123" not in cpybuild("history", "--no-trunc", image, check=True).stdout
    # a secret whose file is missing fails the build, naming the service and the secret
    (compose.dir / "api.txt").unlink()
    failed = compose("build")
    assert failed.returncode != 0
    assert "services.app.build.secrets[apikey]" in failed.stderr


CACHE_DOCKERFILE = """\
FROM busybox:latest
COPY a.txt /a.txt
RUN date +%s%N > /stamp && cat /a.txt >> /stamp
"""


@pytest.fixture
def registry(tmp_path):
    if REGISTRY_BIN is None:
        pytest.skip("docker-registry is not installed (apt-get install docker-registry)")
    server = start_registry("open", tmp_path / "registry")
    yield server
    server.stop()


def test_build_cache_from_registry_hit(compose, cpybuild, compose_base, registry, tmp_path) -> None:
    ctx = compose.dir / "app"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(CACHE_DOCKERFILE)
    (ctx / "a.txt").write_text("a1\n")
    cache = f"{registry.host}/cache/app:buildcache"
    # store A: an ordinary build that exports its cache to the registry
    cpybuild("build", "-t", "a-app", "--cache-to", f"type=registry,ref={cache},mode=max", str(ctx), check=True)
    stamp_a = cpybuild("run", "--rm", "--network", "none", "a-app", "cat", "/stamp", check=True).stdout
    # store B: shares nothing with A but the busybox import; compose imports the cache
    root_b, state_b = tmp_path / "b-root", tmp_path / "b-state"
    shutil.copytree(compose_base, root_b, symlinks=True)
    state_b.mkdir(mode=0o700)
    b = PybuildRunner(root_b, state_b)
    cb = Compose(b, compose.dir)
    cb.write(f"""
services:
  app:
    build:
      context: ./app
      cache_from:
        - {registry.host}/cache/absent:nothing
        - type=registry,ref={cache}
""")
    built = cb("build")
    assert built.returncode == 0, built.stderr
    stamp_b = b("run", "--rm", "--network", "none", "demo-app", "cat", "/stamp", check=True).stdout
    assert stamp_b == stamp_a                    # the RUN step came from A's cache, not run again
    # without cache_from, a fresh store runs the step itself
    cb.write("services:\n  app:\n    build: ./app\n")
    b("rmi", "demo-app", check=True)
    shutil.rmtree(root_b / "cache", ignore_errors=True)
    rebuilt = cb("build", "--no-cache")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert b("run", "--rm", "--network", "none", "demo-app", "cat", "/stamp", check=True).stdout != stamp_a
    # a malformed entry is refused, naming the service
    cb.write("services:\n  app:\n    build:\n      context: ./app\n      cache_from: ['type=s3,bucket=x']\n")
    bad = cb("build")
    assert bad.returncode != 0 and "services.app.build.cache_from[0]" in bad.stderr
