"""TLS to a real registry: verification against --tls-ca, refusal without it, insecure fallbacks.

Loopback hosts speak plain http by default (as the issue asks); these tests turn that off
(``plain_http_loopback=False``) so that 127.0.0.1 is treated like any remote host.
"""

from __future__ import annotations

import pytest

from registry_client.client import Registry
from registry_client.errors import RegistryUnavailable
from registry_client.transport import TransportConfig

from .servers import REGISTRY_BIN, start_registry


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory):
    if REGISTRY_BIN is None:
        pytest.skip("docker-registry is not installed")
    server = start_registry("open", tmp_path_factory.mktemp("registry-tls"), tls=True)
    yield server
    server.stop()


def test_verified_with_tls_ca(tls_registry):
    config = TransportConfig(tls_ca=str(tls_registry.cert), plain_http_loopback=False, retries=1)
    with Registry(tls_registry.host, config=config) as reg:
        reg.ping()
        assert reg.base_url.startswith("https://")


def test_refused_without_the_ca(tls_registry):
    config = TransportConfig(plain_http_loopback=False, retries=1)
    with Registry(tls_registry.host, config=config) as reg:
        with pytest.raises(RegistryUnavailable, match="ConnectError"):
            reg.ping()


def test_insecure_registry_skips_verification(tls_registry):
    config = TransportConfig(insecure_registries=(tls_registry.host,), plain_http_loopback=False, retries=1)
    with Registry(tls_registry.host, config=config) as reg:
        reg.ping()
        assert reg.base_url.startswith("https://")


def test_insecure_registry_falls_back_to_plain_http(open_registry):
    config = TransportConfig(insecure_registries=("127.0.0.1",), plain_http_loopback=False, retries=1)
    with Registry(open_registry.host, config=config) as reg:
        reg.ping()
        assert reg.base_url.startswith("http://")
