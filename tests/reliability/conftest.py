"""Fixtures of the reliability tests (SECURITY.md cases 19, 22, 23, 24; issue 8).

- ``registry``: a real ``docker-registry`` on 127.0.0.1 (as tests/registry starts it), for this session.
- ``seeded``: images made once per session: ``busybox:latest`` imported into a template store, and in
  the registry ``rel/busybox:1`` (the same layer), ``rel/base:1`` (busybox plus a 2 MB layer that is
  *not* in the template store) and ``rel/app-a:1``/``rel/app-b:1`` built FROM ``rel/base:1``: pulls
  and builds FROM it share its layers.
- ``rpb``: the per-test ``pybuild`` runner over a copy of the template store (busybox only), with a
  hermetic credentials environment.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import PybuildRunner


@dataclass(frozen=True)
class Seeded:
    template: Path          # a store root holding busybox:latest
    host: str               # the registry's host:port
    env: dict               # hermetic credential lookup for pybuild processes
    base: str               # "<host>/rel/base:1"
    apps: tuple[str, ...]   # images FROM base, in the registry only


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    from tests.registry.servers import REGISTRY_BIN, start_registry

    if REGISTRY_BIN is None:
        pytest.skip("docker-registry is not installed (apt-get install docker-registry)")
    server = start_registry("open", tmp_path_factory.mktemp("rel-registry"))
    yield server
    server.stop()


def _hermetic_env(base: Path) -> dict:
    return {"PYBUILD_CONFIG": str(base / "pbconfig"), "DOCKER_CONFIG": str(base / "docker"), "HOME": str(base)}


def _base_tar(busybox_tar: Path, out: Path) -> Path:
    """busybox's rootfs plus 2 MB of noise in /opt/noise: a base whose layer the template lacks."""
    shutil.copyfile(busybox_tar, out)
    with tarfile.open(out, "a") as tf:
        for name, data in (("opt/noise", os.urandom(2 << 20)), ("opt/base-release", b"rel-base 1\n")):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tf.addfile(info, io.BytesIO(data))
    return out


@pytest.fixture(scope="session")
def seeded(registry, busybox_tar: Path, tmp_path_factory) -> Seeded:
    if os.geteuid() != 0:
        pytest.skip("needs root (overlay mounts and namespaces for builds and runs)")
    work = tmp_path_factory.mktemp("rel-seed")
    env = _hermetic_env(work)
    seed = PybuildRunner(work / "seed-root", work / "seed-state")
    for d in (seed.root, seed.state):
        d.mkdir(mode=0o700)
    host = registry.host
    seed("import", str(busybox_tar), "busybox:latest", check=True)
    seed("push", "-q", "busybox:latest", f"{host}/rel/busybox:1", env=env, check=True)
    template = work / "template"
    shutil.copytree(seed.root, template, symlinks=True)
    seed("import", str(_base_tar(busybox_tar, work / "base.tar")), "rel-base:1", "--change", 'CMD ["sh"]', check=True)
    base = f"{host}/rel/base:1"
    seed("push", "-q", "rel-base:1", base, env=env, check=True)
    apps = []
    for name in ("app-a", "app-b"):
        ctx = work / name
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(f"FROM {base}\nRUN echo {name} > /app && head -c 300000 /dev/urandom > /blob\n")
        seed("build", "-q", "-t", f"{host}/rel/{name}:1", str(ctx), env=env, check=True)
        seed("push", "-q", f"{host}/rel/{name}:1", f"{host}/rel/{name}:1", env=env, check=True)
        apps.append(f"{host}/rel/{name}:1")
    return Seeded(template, host, env, base, tuple(apps))


@pytest.fixture
def rpb(pybuild, seeded: Seeded) -> PybuildRunner:
    """The per-test runner, its root a copy of the template store (``busybox:latest`` only)."""
    shutil.rmtree(pybuild.root)
    shutil.copytree(seeded.template, pybuild.root, symlinks=True)
    runner = _EnvRunner(pybuild.root, pybuild.state)
    runner.base_env = dict(seeded.env)
    return runner


class _EnvRunner(PybuildRunner):
    """A runner whose every call carries the hermetic credential environment."""

    base_env: dict = {}

    def __call__(self, *args, env=None, **kw):
        return super().__call__(*args, env={**self.base_env, **(env or {})}, **kw)
