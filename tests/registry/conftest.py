"""Session-scoped registries (no auth, htpasswd Basic, token auth as Harbor does it)."""

from __future__ import annotations

import pytest

from .servers import REGISTRY_BIN, start_registry


@pytest.fixture(scope="session")
def registries(tmp_path_factory):
    if REGISTRY_BIN is None:
        pytest.skip("docker-registry is not installed (apt-get install docker-registry)")
    started = {}
    try:
        for kind in ("open", "basic", "token"):
            started[kind] = start_registry(kind, tmp_path_factory.mktemp(f"registry-{kind}"))
        yield started
    finally:
        for server in started.values():
            server.stop()


@pytest.fixture(scope="session")
def open_registry(registries):
    return registries["open"]


@pytest.fixture(scope="session")
def basic_registry(registries):
    return registries["basic"]


@pytest.fixture(scope="session")
def token_registry(registries):
    return registries["token"]
