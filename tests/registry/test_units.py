"""Pure parts: challenge parsing, scopes, transport rules, progress renderers, error mapping."""

from __future__ import annotations

import io

import httpx

from registry_client.auth import RegistryAuth, _merge_scopes, parse_challenge
from registry_client.client import error_for
from registry_client.errors import (
    AccessDenied,
    AuthenticationRequired,
    RegistryError,
    RemoteNotFound,
)
from registry_client.progress import (
    PlainProgress,
    QuietProgress,
    TerminalProgress,
    make_progress,
)
from registry_client.transport import TransportConfig, is_loopback


def test_parse_bearer_challenge_with_quotes_and_scopes():
    c = parse_challenge('Bearer realm="https://h/service/token",service="harbor-registry",'
                        'scope="repository:proj/app:pull,push repository:proj/base:pull",error="insufficient_scope"')
    assert c.scheme == "bearer" and c.realm == "https://h/service/token" and c.service == "harbor-registry"
    assert c.scope == ("repository:proj/app:pull,push", "repository:proj/base:pull")
    assert parse_challenge('Basic realm="Harbor"').scheme == "basic"
    assert parse_challenge("") is None


def test_scopes_merge_and_request_scopes():
    assert _merge_scopes({"repository:a:pull", "repository:a:push", "repository:b:pull"}) == (
        "repository:a:pull,push", "repository:b:pull")
    auth = RegistryAuth("r.test", "https", None, TransportConfig())
    get = httpx.Request("GET", "https://r.test/v2/team/app/manifests/1")
    assert auth.scopes_for(get) == ("repository:team/app:pull",)
    mount = httpx.Request("POST", "https://r.test/v2/team/app/blobs/uploads/?mount=sha256:x&from=team/base")
    assert auth.scopes_for(mount) == ("repository:team/app:pull,push", "repository:team/base:pull")
    auth.want_push("team/app")
    assert auth.scopes_for(get) == ("repository:team/app:pull,push",)
    assert auth.scopes_for(httpx.Request("GET", "https://r.test/v2/")) == ()


def test_transport_rules():
    assert is_loopback("localhost:5000") and is_loopback("127.0.0.1:1") and is_loopback("[::1]:5000")
    assert not is_loopback("registry.example.com")
    cfg = TransportConfig(insecure_registries=("harbor.lan:8080", "other.lan"))
    assert cfg.schemes("127.0.0.1:5000") == (("https", False), ("http", False))  # insecure by default, as Docker
    assert TransportConfig(plain_http_loopback=False).schemes("127.0.0.1:5000") == (("https", True),)
    assert cfg.schemes("harbor.lan:8080") == (("https", False), ("http", False))
    assert cfg.schemes("other.lan:443") == (("https", False), ("http", False))
    assert cfg.schemes("ghcr.io") == (("https", True),)


def _response(status: int, body: bytes) -> httpx.Response:
    return httpx.Response(status, content=body, request=httpx.Request("GET", "http://r/v2/x/manifests/1"))


def test_error_mapping_carries_code_and_message():
    err = error_for(_response(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}'), "pull x")
    assert isinstance(err, RemoteNotFound) and err.code == "MANIFEST_UNKNOWN" and err.status == 404
    assert str(err) == "pull x: manifest unknown (MANIFEST_UNKNOWN)"
    assert isinstance(error_for(_response(401, b""), "x"), AuthenticationRequired)
    assert isinstance(error_for(_response(403, b'{"errors":[{"code":"DENIED","message":"no"}]}'), "x"), AccessDenied)
    other = error_for(_response(400, b"<html>nope</html>"), "x")
    assert type(other) is RegistryError and "HTTP 400" in str(other)


def test_progress_renderers():
    out = io.StringIO()
    p = PlainProgress(out)
    p.begin("abc", 100, "Downloading")
    p.advance("abc", 50)
    p.end("abc", "Pull complete")
    assert out.getvalue() == "abc: Downloading 100 bytes\nabc: Pull complete\n"
    tty = io.StringIO()
    t = TerminalProgress(tty)
    t.begin("abc", 1000, "Pushing")
    t.advance("abc", 500)
    t.end("abc", "Pushed")
    assert "Pushing [" in tty.getvalue() and "\x1b[" in tty.getvalue() and "abc: Pushed" in tty.getvalue()
    assert isinstance(make_progress(io.StringIO(), quiet=True), QuietProgress)
    assert isinstance(make_progress(io.StringIO()), PlainProgress)


def test_the_local_store_satisfies_the_protocols_pull_and_push_name(tmp_path):
    """``registry_client.store`` names what pull and push call; the real store must have every member
    (a renamed store method would otherwise surface only as an AttributeError mid-pull)."""
    import inspect

    from layers.store import Store
    from registry_client import store as protocols

    def members(proto) -> set[str]:
        names = {n for n, v in vars(proto).items() if inspect.isfunction(v) and (not n.startswith("_") or
                                                                                n in ("__enter__", "__exit__"))}
        return names | set(getattr(proto, "__annotations__", {}))

    store = Store(str(tmp_path / "root"))
    with store.blobs.ingest() as ingest:
        objects = {protocols.LocalStore: store, protocols.ContentStore: store.blobs,
                   protocols.ImageTagger: store.images, protocols.BlobIngest: ingest}
        for proto, obj in objects.items():
            missing = sorted(n for n in members(proto) if not hasattr(obj, n))
            assert not missing, f"{type(obj).__name__} lacks {missing} of {proto.__name__}"
    assert members(protocols.ContentStore) >= {"has", "open", "read_bytes", "ingest", "put_bytes"}


def test_cancelled_is_one_class_in_the_errors_module():
    from layers.errors import PybuildError
    from registry_client import errors, parallel

    assert parallel.Cancelled is errors.Cancelled and issubclass(errors.Cancelled, PybuildError)
