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


def _seed(server, config: TransportConfig, repo: str = "tls/app"):
    import io

    from layers.descriptor import Descriptor
    from layers.digest import Digest
    from layers.manifest import Manifest
    from layers.mediatype import MediaType

    raw = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    desc = Descriptor(MediaType.OCI_CONFIG, Digest.from_bytes(raw), len(raw))
    with Registry(server.host, config=config) as reg:
        r = reg.repository(repo)
        r.upload_blob(desc, lambda: io.BytesIO(raw))
        manifest = Manifest.build(desc, [])
        r.put_manifest("1", manifest.raw, manifest.media_type)
    return manifest


def test_loopback_https_registry_is_reached_by_default(tls_registry, pybuild):
    """Loopback is insecure by default, as in Docker: https (unverified) first, then plain http."""
    manifest = _seed(tls_registry, TransportConfig(tls_ca=str(tls_registry.cert), plain_http_loopback=False))
    with Registry(tls_registry.host) as reg:
        assert reg.base_url.startswith("https://")
    out = pybuild("manifest", "inspect", "--raw", f"{tls_registry.host}/tls/app:1", text=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout == manifest.raw


@pytest.fixture(scope="module")
def remote_ip():
    from .servers import non_loopback_ipv4

    ip = non_loopback_ipv4()
    if ip is None:
        pytest.skip("no non-loopback IPv4 address on this machine to stand in for a remote registry")
    return ip


def test_cli_tls_ca_and_insecure_registry_on_a_non_loopback_host(tmp_path_factory, remote_ip, pybuild):
    """A registry on a non-loopback address is verified https: refused without the CA, reached with
    ``--tls-ca``, and with ``--insecure-registry`` / ``PYBUILD_INSECURE_REGISTRIES`` without it."""
    tls = start_registry("open", tmp_path_factory.mktemp("registry-tls-ip"), tls=True, ip=remote_ip)
    plain = start_registry("open", tmp_path_factory.mktemp("registry-plain-ip"), ip=remote_ip)
    try:
        manifest = _seed(tls, TransportConfig(tls_ca=str(tls.cert), retries=1))
        ref = f"{tls.host}/tls/app:1"
        refused = pybuild("manifest", "inspect", ref)
        assert refused.returncode != 0 and "Traceback" not in refused.stderr
        assert refused.stderr.count("\n") == 1 and "CERTIFICATE_VERIFY_FAILED" in refused.stderr, refused.stderr
        for args, env in ((["--tls-ca", str(tls.cert)], None), (["--insecure-registry", tls.host], None),
                          ([], {"PYBUILD_INSECURE_REGISTRIES": f"other.example,{remote_ip}"})):
            out = pybuild(*args, "manifest", "inspect", "--raw", ref, env=env, text=False)
            assert out.returncode == 0, (args, out.stderr)
            assert out.stdout == manifest.raw
        # a plain-http registry off loopback: only when named insecure
        _seed(plain, TransportConfig(insecure_registries=(plain.host,), retries=1))
        pref = f"{plain.host}/tls/app:1"
        no = pybuild("manifest", "inspect", pref)
        assert no.returncode != 0 and "Traceback" not in no.stderr
        yes = pybuild("--insecure-registry", plain.host, "manifest", "inspect", pref)
        assert yes.returncode == 0, yes.stderr
    finally:
        tls.stop()
        plain.stop()
