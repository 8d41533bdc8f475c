"""The distribution client against the real registry: auth flows, manifests, blobs, error mapping."""

from __future__ import annotations

import io
import os

import pytest

from layers.descriptor import Descriptor
from layers.digest import Digest
from layers.errors import IntegrityError
from layers.manifest import Manifest
from layers.mediatype import MediaType
from registry_client.client import Registry
from registry_client.credentials import Credentials
from registry_client.errors import AuthenticationRequired, RemoteNotFound

from .servers import ROBOT_PASSWORD, ROBOT_USER


def _blob(data: bytes, media_type: str = MediaType.OCI_LAYER_GZIP) -> Descriptor:
    return Descriptor(media_type, Digest.from_bytes(data), len(data))


def _push_image(repo, layer: bytes, chunk_size: int = 1 << 20) -> Manifest:
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    cdesc, ldesc = _blob(config, MediaType.OCI_CONFIG), _blob(layer)
    for desc, data in ((cdesc, config), (ldesc, layer)):
        if not repo.blob_exists(desc):
            repo.upload_blob(desc, lambda data=data: io.BytesIO(data), chunk_size=chunk_size)
    manifest = Manifest.build(cdesc, [ldesc])
    repo.put_manifest("v1", manifest.raw, manifest.media_type)
    return manifest


def _creds(server):
    return Credentials(server.user, server.password) if server.user else None


@pytest.mark.parametrize("kind", ["open", "basic", "token"])
def test_blob_and_manifest_round_trip(registries, kind):
    server = registries[kind]
    layer = os.urandom(300_000)
    with Registry(server.host, credentials=_creds(server)) as reg:
        repo = reg.repository(f"client/{kind}")
        manifest = _push_image(repo, layer, chunk_size=100_000)  # chunked PATCH path
        doc = repo.get_manifest("v1")
        assert doc.raw == manifest.raw and doc.digest == manifest.digest
        assert doc.media_type == MediaType.OCI_MANIFEST
        assert repo.get_manifest(str(manifest.digest)).raw == manifest.raw
        buf = bytearray()
        repo.fetch_blob(manifest.layers[0], buf.extend)
        assert bytes(buf) == layer
        # resume from an offset with Range
        tail = bytearray()
        repo.fetch_blob(manifest.layers[0], tail.extend, offset=123_456)
        assert bytes(tail) == layer[123_456:]
        assert repo.head_manifest("v1").digest == manifest.digest
        assert "v1" in repo.tags()


def test_token_auth_caches_per_scope_and_sends_robot_name(token_registry):
    server = token_registry
    before = len(server.token.issued)
    with Registry(server.host, credentials=Credentials(ROBOT_USER, ROBOT_PASSWORD)) as reg:
        repo = reg.repository("client/cache")
        repo.want_push()
        _push_image(repo, os.urandom(1000))
        for _ in range(3):
            repo.get_manifest("v1")
        issued = server.token.issued[before:]
        assert len(issued) == 1, issued  # one pull,push token served every request
        assert issued[0]["user"] == ROBOT_USER and issued[0]["account"] == ROBOT_USER


def test_token_refreshed_when_refused_mid_session(token_registry):
    server = token_registry
    with Registry(server.host, credentials=Credentials(ROBOT_USER, ROBOT_PASSWORD)) as reg:
        repo = reg.repository("client/refresh")
        repo.want_push()
        _push_image(repo, os.urandom(1000))
        # Make every cached token stale, as a Harbor token that expired during a long push.
        for key in list(reg.auth._tokens):
            reg.auth._tokens[key] = type(reg.auth._tokens[key])("not-a-valid-token", reg.auth._tokens[key].expires)
        before = reg.auth.token_requests
        assert repo.get_manifest("v1").raw
        assert reg.auth.token_requests == before + 1


def test_wrong_password_is_refused_without_leaking_it(registries):
    for kind in ("basic", "token"):
        server = registries[kind]
        secret = "definitely-Wrong-pw-9731"
        with Registry(server.host, credentials=Credentials(server.user, secret)) as reg:
            with pytest.raises(AuthenticationRequired) as info:
                reg.repository("client/x").get_manifest("v1")
        assert secret not in str(info.value)


def test_anonymous_is_refused_on_protected_registries(registries):
    for kind in ("basic", "token"):
        with Registry(registries[kind].host) as reg:
            with pytest.raises(AuthenticationRequired):
                reg.repository("client/x").get_manifest("v1")


def test_missing_manifest_maps_to_typed_error(open_registry):
    with Registry(open_registry.host) as reg:
        with pytest.raises(RemoteNotFound) as info:
            reg.repository("client/none").get_manifest("nope")
    assert info.value.status == 404 and info.value.code in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN")
    assert "client/none" in str(info.value)


def test_cross_repository_mount(open_registry):
    with Registry(open_registry.host) as reg:
        src = reg.repository("client/mount-src")
        manifest = _push_image(src, os.urandom(5000))
        dst = reg.repository("client/mount-dst")
        layer = manifest.layers[0]
        assert not dst.blob_exists(layer)
        assert dst.mount_blob(layer, "client/mount-src")
        assert dst.blob_exists(layer)
        missing = _blob(b"never uploaded")
        assert not dst.mount_blob(missing, "client/mount-src")


def test_lying_blob_size_refused(open_registry):
    with Registry(open_registry.host) as reg:
        repo = reg.repository("client/size")
        manifest = _push_image(repo, os.urandom(2000))
        real = manifest.layers[0]
        shorter = Descriptor(real.media_type, real.digest, real.size - 10)
        with pytest.raises(IntegrityError):
            repo.fetch_blob(shorter, bytearray().extend)
        longer = Descriptor(real.media_type, real.digest, real.size + 10)
        with pytest.raises(IntegrityError):
            repo.fetch_blob(longer, bytearray().extend)


def test_token_expiring_during_streamed_upload_restarts_the_blob(token_registry):
    """Harbor tokens can expire during a long push: the streamed chunk cannot be replayed, so the
    blob restarts in a new session with a fresh token, and the push still succeeds."""
    server = token_registry
    data = os.urandom(12 << 20)  # over MONOLITHIC_MAX: streamed PATCH chunks
    desc = _blob(data)
    with Registry(server.host, credentials=Credentials(ROBOT_USER, ROBOT_PASSWORD)) as reg:
        repo = reg.repository("client/expiry")
        repo.want_push()
        spoiled = []

        def spoil(n):
            if not spoiled:  # the first chunk is under way: make every cached token stale for the next one
                spoiled.append(n)
                for key, tok in list(reg.auth._tokens.items()):
                    reg.auth._tokens[key] = type(tok)("expired-token", tok.expires)

        before = reg.auth.token_requests
        repo.upload_blob(desc, lambda: io.BytesIO(data), chunk_size=4 << 20, on_bytes=spoil)
        assert repo.blob_exists(desc)
        assert reg.auth.token_requests >= before + 2  # the first token, then a refresh
        buf = bytearray()
        repo.fetch_blob(desc, buf.extend)
        assert bytes(buf) == data


def test_parallel_requests_share_one_token(token_registry):
    from concurrent.futures import ThreadPoolExecutor

    server = token_registry
    with Registry(server.host, credentials=Credentials(ROBOT_USER, ROBOT_PASSWORD)) as reg:
        repo = reg.repository("client/parallel")
        repo.want_push()
        descs = [_blob(os.urandom(100)) for _ in range(8)]
        with ThreadPoolExecutor(8) as pool:
            assert not any(pool.map(repo.blob_exists, descs))
        assert reg.auth.token_requests == 1
