"""SECURITY.md cases 13-18 against a hostile in-process registry (client level; the store-level
cases, 13 and 19, are in test_pull_push.py)."""

from __future__ import annotations

import base64
import json
import os
import time

import pytest

from layers.descriptor import Descriptor
from layers.digest import Digest
from layers.errors import IntegrityError, InvalidDocument
from layers.manifest import Manifest
from layers.mediatype import MediaType
from layers.reference import Reference
from registry_client.client import MANIFEST_MAX, Registry
from registry_client.credentials import Credentials
from registry_client.errors import (
    AuthenticationRequired,
    RegistryUnavailable,
    ResponseTooLarge,
    UnsafeRedirect,
)
from registry_client.pull import resolve
from registry_client.transport import TransportConfig

from .hostile import HostileRegistry, endless, send

FAST = TransportConfig(retries=2, backoff=0.01)


@pytest.fixture
def hostile():
    server = HostileRegistry()
    yield server
    server.stop()


def _desc(data: bytes) -> Descriptor:
    return Descriptor(MediaType.OCI_LAYER_GZIP, Digest.from_bytes(data), len(data))


def test_blob_with_other_bytes_is_refused(hostile):  # case 13 (client level)
    real = os.urandom(4096)
    desc = _desc(real)
    hostile.routes[("GET", f"/v2/x/blobs/{desc.digest}")] = lambda r: send(r, 200, os.urandom(4096))
    with Registry(hostile.host, config=FAST) as reg:
        with pytest.raises(IntegrityError, match="does not match"):
            reg.repository("x").read_blob(desc, 1 << 20)


def test_endless_blob_stops_past_size(hostile):  # case 14
    desc = _desc(b"a" * 1000)
    hostile.routes[("GET", f"/v2/x/blobs/{desc.digest}")] = lambda r: endless(r)
    got = bytearray()
    start = time.monotonic()
    with Registry(hostile.host, config=FAST) as reg:
        with pytest.raises(IntegrityError, match="more than the 1000 bytes"):
            reg.repository("x").fetch_blob(desc, got.extend)
    assert len(got) <= 1000
    assert time.monotonic() - start < 10


def test_short_blob_is_refused(hostile):  # case 14
    data = b"b" * 1000
    desc = _desc(data)
    hostile.routes[("GET", f"/v2/x/blobs/{desc.digest}")] = lambda r: send(r, 200, data[:900])
    with Registry(hostile.host, config=FAST) as reg:
        with pytest.raises(IntegrityError, match="900 bytes"):
            reg.repository("x").fetch_blob(desc, bytearray().extend)


def _manifest() -> Manifest:
    cfg = _desc(b"{}")
    return Manifest.build(Descriptor(MediaType.OCI_CONFIG, cfg.digest, cfg.size), [_desc(b"layer")])


def test_pull_by_digest_answered_with_other_manifest(hostile):  # case 15
    wanted, served = _manifest(), Manifest.build(_desc(b"x"), [])
    hostile.routes[("GET", f"/v2/x/manifests/{wanted.digest}")] = lambda r: send(
        r, 200, served.raw, {"Content-Type": served.media_type, "Docker-Content-Digest": str(wanted.digest)})
    with Registry(hostile.host, config=FAST) as reg:
        with pytest.raises(IntegrityError, match=str(served.digest)):
            reg.repository("x").get_manifest(str(wanted.digest))


def test_tag_with_lying_content_digest_header(hostile):  # case 15, by tag
    served, claimed = _manifest(), Manifest.build(_desc(b"y"), [])
    hostile.routes[("GET", "/v2/x/manifests/v1")] = lambda r: send(
        r, 200, served.raw, {"Content-Type": served.media_type, "Docker-Content-Digest": str(claimed.digest)})
    with Registry(hostile.host, config=FAST) as reg:
        with pytest.raises(IntegrityError):
            reg.repository("x").get_manifest("v1")


def test_endless_manifest_is_cut_at_the_cap(hostile):  # case 16
    hostile.routes[("GET", "/v2/x/manifests/v1")] = lambda r: endless(r, headers={"Content-Type": MediaType.OCI_MANIFEST})
    start = time.monotonic()
    with Registry(hostile.host, config=FAST) as reg:
        with pytest.raises(ResponseTooLarge, match=str(MANIFEST_MAX)):
            reg.repository("x").get_manifest("v1")
    assert time.monotonic() - start < 10


def test_declared_huge_manifest_refused_before_reading(hostile):  # case 16
    hostile.routes[("GET", "/v2/x/manifests/v1")] = lambda r: send(r, 200, b"{}", length=1 << 40)
    with Registry(hostile.host, config=FAST) as reg:
        with pytest.raises(ResponseTooLarge):
            reg.repository("x").get_manifest("v1")


def test_endless_error_body_is_capped(hostile):
    hostile.routes[("GET", "/v2/x/manifests/v1")] = lambda r: endless(r, status=400)
    with Registry(hostile.host, config=FAST) as reg:
        with pytest.raises(Exception) as info:
            reg.repository("x").get_manifest("v1")
    assert "HTTP 400" in str(info.value)


@pytest.mark.parametrize("bad", ["sha256:../../x", "sha256:" + "A" * 64, "sha256:" + "a" * 63, "md5:" + "a" * 32])
def test_path_like_digest_refused_before_any_url(hostile, bad):  # case 17
    body = json.dumps({"schemaVersion": 2, "mediaType": MediaType.OCI_MANIFEST,
                       "config": {"mediaType": MediaType.OCI_CONFIG, "digest": bad, "size": 2},
                       "layers": []}).encode()
    hostile.routes[("GET", "/v2/x/manifests/v1")] = lambda r: send(r, 200, body, {"Content-Type": MediaType.OCI_MANIFEST})
    with Registry(hostile.host, config=FAST) as reg:
        with pytest.raises(InvalidDocument, match="config.digest"):
            resolve(reg.repository("x"), Reference.parse(f"{hostile.host}/x:v1"))
    assert not hostile.requests("GET", "/blobs/")


def test_bad_digest_in_reference_refused():  # case 17
    from layers.errors import InvalidReference

    with pytest.raises(InvalidReference):
        Reference.parse("localhost:5000/x@sha256:../../etc")


def test_redirect_to_other_host_drops_authorization(hostile):  # case 18
    other = HostileRegistry()
    try:
        data = os.urandom(2048)
        desc = _desc(data)
        path = f"/v2/x/blobs/{desc.digest}"
        creds = Credentials("user", "pa55word")
        token = base64.b64encode(b"user:pa55word").decode()

        def protected(r):
            if r.headers.get("Authorization") != f"Basic {token}":
                return send(r, 401, b"{}", {"WWW-Authenticate": 'Basic realm="hostile"'})
            send(r, 307, b"", {"Location": f"http://{other.host}/storage/blob?sig=1"})

        hostile.routes[("GET", path)] = protected
        other.routes[("GET", "/storage/blob")] = lambda r: send(r, 200, data)
        with Registry(hostile.host, config=FAST, credentials=creds) as reg:
            got = reg.repository("x").read_blob(desc, 1 << 20)
        assert got == data
        assert hostile.requests("GET", path)[-1].headers.get("authorization") == f"Basic {token}"
        assert other.seen and all("authorization" not in s.headers for s in other.seen)
    finally:
        other.stop()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    from .servers import make_tls_cert

    return make_tls_cert(tmp_path_factory.mktemp("hostile-tls"))


def _tls_config(cert) -> TransportConfig:
    """127.0.0.1 treated as a remote https registry, verified against the test CA."""
    return TransportConfig(retries=1, backoff=0.01, tls_ca=str(cert), plain_http_loopback=False)


def test_https_to_http_redirect_refused(tls_files, hostile):  # case 18: a real TLS origin redirecting to http
    tls = HostileRegistry(tls=tls_files)
    try:
        data = b"z" * 100
        desc = _desc(data)
        tls.routes[("GET", f"/v2/x/blobs/{desc.digest}")] = lambda r: send(
            r, 302, b"", {"Location": f"http://{hostile.host}/storage/blob"})
        hostile.routes[("GET", "/storage/blob")] = lambda r: send(r, 200, data)
        with Registry(tls.host, config=_tls_config(tls_files[0]), credentials=Credentials("u", "p")) as reg:
            assert reg.base_url.startswith("https://")
            with pytest.raises(UnsafeRedirect, match="https to plain http"):
                reg.repository("x").read_blob(desc, 1 << 20)
        assert tls.requests("GET", "/blobs/")
        assert not hostile.seen  # the plain-http target was never contacted
    finally:
        tls.stop()


def test_plain_http_token_realm_refused_for_https_registry(tls_files, hostile):
    tls = HostileRegistry(tls=tls_files)
    try:
        tls.routes[("GET", "/v2/x/manifests/v1")] = lambda r: send(
            r, 401, b"{}", {"WWW-Authenticate": f'Bearer realm="http://{hostile.host}/token",service="s"'})
        with Registry(tls.host, config=_tls_config(tls_files[0]), credentials=Credentials("u", "secret-pw")) as reg:
            with pytest.raises(UnsafeRedirect, match="plain-http token realm"):
                reg.repository("x").get_manifest("v1")
        assert not hostile.seen  # no credentials (nor anything else) went to the plain-http realm
    finally:
        tls.stop()


def test_blob_head_follows_storage_redirect_without_credentials(hostile):  # case 18, HEAD on push
    storage = HostileRegistry()
    try:
        data = os.urandom(3000)
        desc, missing = _desc(data), _desc(b"not there")
        token = base64.b64encode(b"user:pa55word").decode()

        def protected(target):
            def handler(r):
                if r.headers.get("Authorization") != f"Basic {token}":
                    return send(r, 401, b"{}", {"WWW-Authenticate": 'Basic realm="hostile"'})
                send(r, 307, b"", {"Location": f"http://{storage.host}{target}"})
            return handler

        hostile.routes[("HEAD", f"/v2/x/blobs/{desc.digest}")] = protected("/s/have")
        hostile.routes[("HEAD", f"/v2/x/blobs/{missing.digest}")] = protected("/s/missing")
        storage.routes[("HEAD", "/s/have")] = lambda r: send(r, 200, data)
        with Registry(hostile.host, config=FAST, credentials=Credentials("user", "pa55word")) as reg:
            repo = reg.repository("x")
            assert repo.blob_exists(desc)
            assert not repo.blob_exists(missing)  # the storage answers 404
            assert not repo.blob_exists(Descriptor(desc.media_type, desc.digest, desc.size + 1))  # size differs
        assert storage.seen and all("authorization" not in s.headers for s in storage.seen)
    finally:
        storage.stop()


def test_retries_on_503_then_succeeds(hostile):
    manifest = _manifest()
    calls = []

    def flaky(r):
        calls.append(1)
        if len(calls) < 3:
            return send(r, 503, b'{"errors":[{"code":"UNAVAILABLE","message":"busy"}]}', {"Retry-After": "0"})
        send(r, 200, manifest.raw, {"Content-Type": manifest.media_type})

    hostile.routes[("GET", "/v2/x/manifests/v1")] = flaky
    with Registry(hostile.host, config=TransportConfig(retries=4, backoff=0.01)) as reg:
        assert reg.repository("x").get_manifest("v1").digest == manifest.digest
    assert len(calls) == 3


def test_persistent_429_maps_to_unavailable_with_code(hostile):
    hostile.routes[("GET", "/v2/x/manifests/v1")] = lambda r: send(
        r, 429, b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}', {"Content-Type": "application/json"})
    with Registry(hostile.host, config=FAST) as reg:
        with pytest.raises(RegistryUnavailable) as info:
            reg.repository("x").get_manifest("v1")
    assert info.value.code == "TOOMANYREQUESTS" and "slow down" in str(info.value)


def test_connection_refused_is_retried_then_reported():
    from .servers import free_port

    with Registry(f"127.0.0.1:{free_port()}", config=FAST) as reg:
        with pytest.raises(RegistryUnavailable, match="ConnectError"):
            reg.repository("x").get_manifest("v1")


def test_basic_challenge_after_bearer_is_retried_with_basic(hostile):
    """Harbor answers a request that carried a Bearer token with a Basic challenge."""
    manifest = _manifest()
    token = base64.b64encode("robot$proj+ci:pw".encode()).decode()

    def harbor(r):
        auth = r.headers.get("Authorization", "")
        if auth == f"Basic {token}":
            return send(r, 200, manifest.raw, {"Content-Type": manifest.media_type})
        if auth.startswith("Bearer"):
            return send(r, 401, b"{}", {"WWW-Authenticate": 'Basic realm="harbor"'})
        send(r, 401, b"{}", {"WWW-Authenticate": f'Bearer realm="http://{hostile.host}/service/token",service="harbor-registry"'})

    hostile.routes[("GET", "/v2/x/manifests/v1")] = harbor
    hostile.routes[("GET", "/service/token")] = lambda r: send(r, 200, b'{"token":"opaque","expires_in":1800}')
    with Registry(hostile.host, config=FAST, credentials=Credentials("robot$proj+ci", "pw")) as reg:
        assert reg.repository("x").get_manifest("v1").digest == manifest.digest
    # wrong Basic credentials after a Basic challenge: an error, not a loop
    with Registry(hostile.host, config=FAST, credentials=Credentials("robot$proj+ci", "wrong")) as reg:
        with pytest.raises(AuthenticationRequired):
            reg.repository("x").get_manifest("v1")


def test_endless_token_response_is_capped(hostile):
    from .hostile import endless

    hostile.routes[("GET", "/v2/x/manifests/v1")] = lambda r: send(
        r, 401, b"{}", {"WWW-Authenticate": f'Bearer realm="http://{hostile.host}/token",service="s"'})
    hostile.routes[("GET", "/token")] = lambda r: endless(r)
    with Registry(hostile.host, config=FAST, credentials=Credentials("u", "p")) as reg:
        with pytest.raises(ResponseTooLarge, match="token response"):
            reg.repository("x").get_manifest("v1")


def test_endless_401_body_is_not_read(hostile):
    from .hostile import endless

    hostile.routes[("GET", "/v2/x/manifests/v1")] = lambda r: endless(
        r, status=401, headers={"WWW-Authenticate": f'Bearer realm="http://{hostile.host}/token",service="s"'})
    start = time.monotonic()
    with Registry(hostile.host, config=FAST, credentials=Credentials("u", "p")) as reg:
        with pytest.raises(AuthenticationRequired):
            reg.repository("x").get_manifest("v1")
    assert time.monotonic() - start < 10
    assert not hostile.requests("GET", "/token")


def test_announced_length_other_than_the_descriptor_is_refused_unread(hostile):  # case 14
    data = os.urandom(5000)
    desc = _desc(data)
    hostile.routes[("GET", f"/v2/x/blobs/{desc.digest}")] = lambda r: send(r, 200, data + b"x" * 100)
    got = bytearray()
    with Registry(hostile.host, config=FAST) as reg:
        with pytest.raises(IntegrityError, match="announces 5100 bytes, the descriptor leaves 5000"):
            reg.repository("x").fetch_blob(desc, got.extend)
    assert not got  # refused from the headers, before a body byte reached the sink


def test_resume_answered_with_another_range_is_refused(hostile):  # case 14, resume
    data = os.urandom(5000)
    desc = _desc(data)

    # the client resumes at 3000; the registry answers with the range from 1000, same length
    hostile.routes[("GET", f"/v2/x/blobs/{desc.digest}")] = lambda r: send(
        r, 206, data[1000:3000], {"Content-Range": "bytes 1000-2999/5000"})
    got = bytearray()
    with Registry(hostile.host, config=FAST) as reg:
        with pytest.raises(IntegrityError, match="asked for bytes from 3000"):
            reg.repository("x").fetch_blob(desc, got.extend, offset=3000)
    assert not got


def test_sockets_are_read_in_big_pieces(open_registry):
    """The pool runs on the read-ahead backend, and a big blob arrives in pieces over httpcore's 64 KiB."""
    import io

    from registry_client.readahead import ReadAheadBackend
    from registry_client.transport import READ_SIZE

    data = os.urandom(16 << 20)
    desc = _desc(data)
    with Registry(open_registry.host) as reg:
        client = reg._connect()
        assert isinstance(client._transport._pool._network_backend, ReadAheadBackend)
        repo = reg.repository("x/readahead")
        repo.upload_blob(desc, lambda: io.BytesIO(data))
        sizes: list[int] = []
        buf = bytearray()
        repo.fetch_blob(desc, buf.extend, on_bytes=sizes.append)
    assert bytes(buf) == data
    assert max(sizes) > 64 << 10 and max(sizes) <= READ_SIZE


@pytest.mark.parametrize("realm, refused", [
    ("https://auth.example.com/token", False),             # another public host: Docker Hub does this
    ("https://10.1.2.3/service/token", False),             # private addresses: Harbor on a LAN
    ("https://user:pw@auth.example.com/token", True),      # user info
    ("https://127.0.0.1:5001/token", True),                # loopback, from a registry that is not
    ("https://localhost/token", True),
    ("http://169.254.169.254/latest/meta-data", True),     # link-local: cloud metadata
    ("https://[::ffff:127.0.0.1]/token", True),
    ("https://0.0.0.0/token", True),
    ("https://100.100.100.200/token", True),
])
def test_token_realms_never_legitimate_are_refused(realm, refused):  # case 18, realm side
    from registry_client.auth import RegistryAuth

    auth = RegistryAuth("harbor.example.com", "https", Credentials("u", "p"), TransportConfig())
    if refused:
        with pytest.raises(UnsafeRedirect, match="refusing token realm"):
            auth._check_realm(realm)
    else:
        assert auth._check_realm(realm) == (realm, True)
    # a registry on loopback may keep its realm on loopback (a local registry and token server)
    local = RegistryAuth("127.0.0.1:5000", "http", Credentials("u", "p"), TransportConfig())
    assert local._check_realm("http://127.0.0.1:5001/token") == ("http://127.0.0.1:5001/token", True)


def test_remote_registry_pointing_its_realm_at_loopback_gets_nothing(hostile):  # case 18, end to end
    from .servers import non_loopback_ipv4

    ip = non_loopback_ipv4()
    if ip is None:
        pytest.skip("no non-loopback IPv4 address on this machine to stand in for a remote registry")
    remote = HostileRegistry(ip=ip)
    try:
        remote.routes[("GET", "/v2/x/manifests/v1")] = lambda r: send(
            r, 401, b"{}", {"WWW-Authenticate": f'Bearer realm="http://{hostile.host}/token",service="s"'})
        config = TransportConfig(insecure_registries=(remote.host,), retries=1, backoff=0.01)
        with Registry(remote.host, config=config, credentials=Credentials("u", "secret-pw")) as reg:
            with pytest.raises(UnsafeRedirect, match="internal address"):
                reg.repository("x").get_manifest("v1")
        assert not hostile.seen  # the loopback "token server" never heard from us
    finally:
        remote.stop()
