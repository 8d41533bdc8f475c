"""``pybuild login/logout/manifest inspect`` through the real CLI; credentials files and helpers (case 26)."""

from __future__ import annotations

import base64
import io
import json
import os
import stat
import subprocess
import sys
import time

import pytest

from layers.descriptor import Descriptor
from layers.digest import Digest
from layers.manifest import Manifest
from layers.mediatype import MediaType
from registry_client.client import Registry
from registry_client.credentials import Credentials, CredentialStore

from .servers import ROBOT_PASSWORD, ROBOT_USER


def _seed(server, repo_name: str) -> Manifest:
    """Put a tiny image in ``repo_name`` with the library (so these tests do not need the store)."""
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    cdesc = Descriptor(MediaType.OCI_CONFIG, Digest.from_bytes(config), len(config))
    creds = Credentials(server.user, server.password) if server.user else None
    with Registry(server.host, credentials=creds) as reg:
        repo = reg.repository(repo_name)
        repo.upload_blob(cdesc, lambda: io.BytesIO(config))
        manifest = Manifest.build(cdesc, [])
        repo.put_manifest("v1", manifest.raw, manifest.media_type)
    return manifest


@pytest.fixture
def env(tmp_path):
    cfg = tmp_path / "pybuild-config"
    docker = tmp_path / "docker-config"
    docker.mkdir()
    return {"PYBUILD_CONFIG": str(cfg), "DOCKER_CONFIG": str(docker), "HOME": str(tmp_path)}


@pytest.mark.parametrize("kind", ["basic", "token"])
def test_login_stdin_then_inspect_then_logout(registries, pybuild, env, kind):
    server = registries[kind]
    manifest = _seed(server, f"cli/{kind}")
    ref = f"{server.host}/cli/{kind}:v1"
    denied = pybuild("manifest", "inspect", ref, env=env)
    assert denied.returncode != 0 and "pybuild:" in denied.stderr

    out = pybuild("login", server.host, "-u", server.user, "--password-stdin", input=server.password + "\n", env=env)
    assert out.returncode == 0, out.stderr
    assert "Login Succeeded" in out.stdout
    assert server.password not in out.stdout + out.stderr
    auth_file = os.path.join(env["PYBUILD_CONFIG"], "auth.json")
    assert stat.S_IMODE(os.stat(auth_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(env["PYBUILD_CONFIG"]).st_mode) == 0o700
    saved = json.load(open(auth_file))["auths"][server.host]["auth"]
    assert base64.b64decode(saved).decode() == f"{server.user}:{server.password}"

    raw = pybuild("manifest", "inspect", "--raw", ref, env=env, text=False)
    assert raw.returncode == 0, raw.stderr
    assert raw.stdout == manifest.raw
    pretty = pybuild("manifest", "inspect", ref, env=env)
    assert json.loads(pretty.stdout)["config"]["digest"] == str(manifest.config.digest)

    out = pybuild("logout", server.host, env=env)
    assert out.returncode == 0 and "Removed" in out.stdout
    assert server.host not in json.load(open(auth_file))["auths"]
    assert pybuild("manifest", "inspect", ref, env=env).returncode != 0


def test_wrong_password_fails_and_never_shows_it(registries, pybuild, env):
    for kind in ("basic", "token"):
        server = registries[kind]
        secret = "Wrong-Secret-1234"
        out = pybuild("login", server.host, "-u", server.user, "--password-stdin", input=secret, env=env)
        assert out.returncode != 0
        assert secret not in out.stdout + out.stderr
        assert "pybuild:" in out.stderr and server.host in out.stderr
        assert not os.path.exists(os.path.join(env["PYBUILD_CONFIG"], "auth.json"))


def _argv_holding(secret: bytes) -> list[int]:
    """Pids of every process on the machine whose arguments contain ``secret``."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    if secret in fh.read():
                        found.append(int(pid))
            except OSError:
                continue
    return found


def test_robot_password_not_in_process_arguments(token_registry, pybuild, env, monkeypatch):
    """Case 26: while pybuild uses the password, no process on the machine has it in its argv.

    The scan runs inside the token server's handler, when the login request carrying the password
    has arrived and pybuild (and anything it started) is waiting for the answer."""
    server = token_registry
    _seed(server, "cli/argv")
    from tests.conftest import pybuild_exe

    secret = ROBOT_PASSWORD.encode()
    holder = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()", ROBOT_PASSWORD],
                              stdin=subprocess.PIPE)
    try:  # the scan can see a password in argv: a process that has one is found (once it has exec'd:
        # until then its cmdline is the forking parent's)
        deadline = time.monotonic() + 10
        while holder.pid not in _argv_holding(secret) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert holder.pid in _argv_holding(secret)
    finally:
        holder.communicate(b"", timeout=10)

    scans: list[list[int]] = []
    handle = server.token._handle

    def scan_then_handle(req):
        auth = req.headers.get("Authorization", "")
        if auth.startswith("Basic ") and base64.b64decode(auth[6:]).endswith(b":" + secret):
            scans.append(_argv_holding(secret))
        handle(req)

    monkeypatch.setattr(server.token, "_handle", scan_then_handle)
    proc = subprocess.Popen(
        [pybuild_exe(), "--root", str(pybuild.root), "--state-dir", str(pybuild.state),
         "login", server.host, "-u", ROBOT_USER, "--password-stdin"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **env})
    out, err = proc.communicate(secret, timeout=60)
    assert proc.returncode == 0, err
    assert scans, "the login never sent the password to the token server"
    assert scans == [[]] * len(scans), f"password in the arguments of pids {scans}"
    assert secret not in out + err


def test_docker_config_auths_and_cred_helper(registries, pybuild, env, tmp_path):
    basic, token = registries["basic"], registries["token"]
    _seed(basic, "cli/docker-auths")
    _seed(token, "cli/helper")
    # a credential helper speaking the docker-credential-helpers protocol: server URL on stdin
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "helper.log"
    helper = bindir / "docker-credential-pbtest"
    helper.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"log = open({str(log)!r}, 'a')\n"
        "server = sys.stdin.read().strip()\n"
        "log.write(' '.join(sys.argv[1:]) + ' ' + server + '\\n')\n"
        f"if server.endswith({token.host!r}):\n"
        f"    print(json.dumps({{'ServerURL': server, 'Username': {ROBOT_USER!r}, 'Secret': {ROBOT_PASSWORD!r}}}))\n"
        "else:\n"
        "    print('credentials not found in native keychain'); sys.exit(1)\n")
    helper.chmod(0o755)
    auth = base64.b64encode(f"{basic.user}:{basic.password}".encode()).decode()
    config = {"auths": {f"https://{basic.host}": {"auth": auth}}, "credHelpers": {token.host: "pbtest"}}
    (tmp_path / "docker-config" / "config.json").write_text(json.dumps(config))
    env = {**env, "PATH": f"{bindir}:{os.environ['PATH']}"}
    out = pybuild("manifest", "inspect", f"{basic.host}/cli/docker-auths:v1", env=env)
    assert out.returncode == 0, out.stderr
    out = pybuild("manifest", "inspect", f"{token.host}/cli/helper:v1", env=env)
    assert out.returncode == 0, out.stderr
    assert log.read_text().startswith(f"get {token.host}")
    assert ROBOT_PASSWORD not in log.read_text()
    # the same helper as the default store (credsStore) instead of a per-host helper
    (tmp_path / "docker-config" / "config.json").write_text(json.dumps({"credsStore": "pbtest"}))
    out = pybuild("manifest", "inspect", f"{token.host}/cli/helper:v1", env=env)
    assert out.returncode == 0, out.stderr
    out = pybuild("manifest", "inspect", f"{basic.host}/cli/docker-auths:v1", env=env)
    assert out.returncode != 0  # the store has nothing for it: anonymous, refused


def test_credentials_repr_hides_password():
    creds = Credentials("robot$proj+ci", "s3cr3t")
    assert "s3cr3t" not in repr(creds) and "s3cr3t" not in str(creds)


def test_credential_store_normalizes_hosts(tmp_path):
    store = CredentialStore(tmp_path / "a" / "auth.json", tmp_path / "none.json")
    store.save("https://Registry.Example:5000/v1/", Credentials("u", "p"))
    assert store.get("registry.example:5000") == Credentials("u", "p")
    assert store.erase("registry.example:5000") and store.get("registry.example:5000") is None


def test_docker_identitytoken_uses_the_oauth2_refresh_flow(token_registry, pybuild, env, tmp_path):
    """``auths[host].identitytoken`` (what ``docker login`` stores for OAuth2 registries) is sent as a
    refresh token in a POST to the realm, never as a password; the token never shows in output."""
    from .servers import REFRESH_TOKEN

    server = token_registry
    manifest = _seed(server, "cli/identity")
    config = {"auths": {server.host: {"identitytoken": REFRESH_TOKEN}}}
    (tmp_path / "docker-config" / "config.json").write_text(json.dumps(config))
    before = len(server.token.issued)
    out = pybuild("manifest", "inspect", "--raw", f"{server.host}/cli/identity:v1", env=env, text=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout == manifest.raw
    issued = server.token.issued[before:]
    assert issued and all(i["method"] == "POST" and i["user"] == ROBOT_USER for i in issued), issued
    assert REFRESH_TOKEN.encode() not in out.stdout + out.stderr
    # a refresh token the server does not know: refused, one line, not shown
    config = {"auths": {server.host: {"identitytoken": "stale-refresh-token-123"}}}
    (tmp_path / "docker-config" / "config.json").write_text(json.dumps(config))
    bad = pybuild("manifest", "inspect", f"{server.host}/cli/identity:v1", env=env)
    assert bad.returncode != 0 and bad.stderr.count("\n") == 1 and "stale-refresh" not in bad.stderr, bad.stderr


def test_password_on_the_command_line_works_but_warns(basic_registry, pybuild, env):
    server = basic_registry
    out = pybuild("login", server.host, "-u", server.user, "-p", server.password, env=env)
    assert out.returncode == 0, out.stderr
    assert "WARNING! Using --password via the CLI is insecure. Use --password-stdin." in out.stderr
    assert server.password not in out.stdout + out.stderr
    both = pybuild("login", server.host, "-u", server.user, "-p", "x", "--password-stdin", input="y", env=env)
    assert both.returncode == 2 and "mutually exclusive" in both.stderr and "Traceback" not in both.stderr
