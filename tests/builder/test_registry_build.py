"""``FROM`` of an image that is only in a registry (pulled at plan time), and ``build --push``,
against a real ``docker-registry`` on 127.0.0.1 (plain http, allowed with PYBUILD_INSECURE_REGISTRIES)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import PybuildRunner


@pytest.fixture
def registry(tmp_path: Path):
    from tests.registry.servers import REGISTRY_BIN, start_registry

    if REGISTRY_BIN is None:
        pytest.skip("docker-registry is not installed")
    server = start_registry("open", tmp_path / "registry")
    try:
        yield server
    finally:
        server.stop()


def test_from_remote_image_and_push(bpybuild, registry, tmp_path: Path) -> None:
    host = registry.host
    env = {"PYBUILD_INSECURE_REGISTRIES": host}
    bpybuild("push", "busybox:latest", f"{host}/base/busybox:1", env=env, check=True)
    # a fresh store: the base image must come from the registry
    root, state = tmp_path / "fresh-root", tmp_path / "fresh-state"
    root.mkdir(mode=0o700)
    state.mkdir(mode=0o700)
    fresh = PybuildRunner(root, state)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {host}/base/busybox:1\nRUN echo pulled-and-built > /msg\n")
    proc = fresh("build", "--progress", "plain", "-t", f"{host}/team/app:1", "--push", str(ctx), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "Pushed sha256:" in proc.stderr
    # a third store pulls the pushed result and runs it
    root3, state3 = tmp_path / "r3", tmp_path / "s3"
    root3.mkdir(mode=0o700)
    state3.mkdir(mode=0o700)
    third = PybuildRunner(root3, state3)
    third("pull", f"{host}/team/app:1", env=env, check=True)
    out = third("run", "--rm", "--network", "none", f"{host}/team/app:1", "cat", "/msg", env=env, check=True)
    assert out.stdout == "pulled-and-built\n"


def test_pull_refreshes_a_base_that_moved_in_the_registry(bpybuild, registry, tmp_path: Path) -> None:
    host = registry.host
    env = {"PYBUILD_INSECURE_REGISTRIES": host}
    base = f"{host}/base/moving:1"
    bpybuild("push", "busybox:latest", base, env=env, check=True)
    root, state = tmp_path / "b-root", tmp_path / "b-state"
    root.mkdir(mode=0o700)
    state.mkdir(mode=0o700)
    builder = PybuildRunner(root, state)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {base}\nRUN cat /version 2>/dev/null > /seen; true\n")
    builder("build", "-q", "-t", "app:1", str(ctx), env=env, check=True)
    # the base moves on in the registry
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "Dockerfile").write_text("FROM busybox\nRUN echo v2 > /version\n")
    bpybuild("build", "-q", "-t", base, "--push", str(tmp_path / "v2"), env=env, check=True)
    stale = builder("build", "--progress", "plain", "-t", "app:2", str(ctx), env=env, check=True)
    assert "1/1 steps cached" in stale.stderr  # without --pull the local base is used
    fresh = builder("build", "--progress", "plain", "--pull", "-t", "app:3", str(ctx), env=env, check=True)
    assert "0/1 steps cached" in fresh.stderr and "pulling" in fresh.stderr
    out = builder("run", "--rm", "--network", "none", "app:3", "cat", "/seen", env=env, check=True).stdout
    assert out == "v2\n"


def test_base_pulled_by_a_build_is_unpacked_as_it_downloads(bpybuild, registry, tmp_path: Path) -> None:
    """The build's pull leaves the base's snapshot ready (unpacked while it came down, see
    tests/registry/test_pull_unpack.py); its RUN overlay is volatile (a throw-away upper dir), a kept
    container's is not (a restart mounts it again)."""
    from layers.store import Store

    host = registry.host
    env = {"PYBUILD_INSECURE_REGISTRIES": host}
    bpybuild("push", "busybox:latest", f"{host}/base/unpacked:1", env=env, check=True)
    root, state = tmp_path / "u-root", tmp_path / "u-state"
    root.mkdir(mode=0o700)
    state.mkdir(mode=0o700)
    fresh = PybuildRunner(root, state)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {host}/base/unpacked:1\nRUN grep ' / / ' /proc/self/mountinfo > /root-mount\n")
    fresh("build", "-q", "-t", "unpacked:1", str(ctx), env=env, check=True)
    store = Store(str(root))
    base = store.images.load(store.images.resolve(f"{host}/base/unpacked:1"))
    assert all(store.snapshots.ready(d) for d in base.config.diff_ids)
    during_build = fresh("run", "--rm", "--network", "none", "unpacked:1", "cat", "/root-mount", check=True).stdout
    assert "overlay" in during_build and "volatile" in during_build, during_build
    # a container that is kept (not --rm) may be started again: its overlay is not volatile
    in_container = fresh("run", "--name", "kept", "--network", "none", "unpacked:1", "grep", " / / ",
                         "/proc/self/mountinfo", check=True).stdout
    fresh("rm", "kept", check=True)
    assert "overlay" in in_container and "volatile" not in in_container, in_container
