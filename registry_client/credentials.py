"""Registry credentials: pybuild's own auth file, Docker's ``config.json`` and credential helpers.

Lookup order for a registry host: pybuild's auth file (written by ``pybuild login``), then
Docker's config: ``credHelpers[host]``, ``credsStore``, ``auths[host]``. Helpers are
``docker-credential-<name>`` speaking the docker-credential-helpers protocol: the server URL on
stdin, JSON ``{"ServerURL", "Username", "Secret"}`` on stdout. Secrets never go on argv.

pybuild's auth file is ``$PYBUILD_CONFIG/auth.json`` (else ``~/.config/pybuild/auth.json``), in
Docker's ``{"auths": {host: {"auth": base64(user:pass)}}}`` shape, written atomically with mode
0600 in a 0700 directory. The Docker config is ``$DOCKER_CONFIG/config.json`` (else
``~/.docker/config.json``); pybuild only reads it.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import subprocess
import tempfile
from dataclasses import field
from pathlib import Path
from typing import Any

from layers.value import frozen

from .errors import CredentialsError

__all__ = ["Credentials", "CredentialStore", "normalize_host"]

_DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")
_HELPER_TIMEOUT = 30.0
_MAX_FILE = 4 << 20


@frozen(slots=True)
class Credentials:
    """A username and secret. ``repr`` and ``str`` never show the secret."""

    username: str
    password: str = field(repr=False)
    #: an OAuth2 refresh token (``identitytoken``) instead of a password, if that is what we have
    identity_token: str = field(default="", repr=False)

    def __str__(self) -> str:
        return f"Credentials(username={self.username!r})"


def normalize_host(key: str) -> str:
    """``https://host:port/v1/`` -> ``host:port``; every Docker Hub spelling -> ``docker.io``."""
    text = key.strip()
    for prefix in ("https://", "http://"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    text = text.split("/", 1)[0].lower()
    if text in ("index.docker.io", "registry-1.docker.io"):
        return "docker.io"
    return text


def _decode_auth(host: str, entry: dict[str, Any], source: str) -> Credentials | None:
    auth = entry.get("auth")
    if isinstance(auth, str) and auth:
        try:
            user, sep, password = base64.b64decode(auth, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise CredentialsError(f"{source}: auths[{host!r}].auth is not base64 of 'user:password'") from None
        if not sep:
            raise CredentialsError(f"{source}: auths[{host!r}].auth has no ':' between user and password")
        return Credentials(user, password)
    user, password = entry.get("username"), entry.get("password")
    if isinstance(user, str) and isinstance(password, str) and user:
        return Credentials(user, password)
    token = entry.get("identitytoken")
    if isinstance(token, str) and token:
        return Credentials("<token>", "", identity_token=token)
    return None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            raw = fh.read(_MAX_FILE + 1)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise CredentialsError(f"read {path}: {exc.strerror}") from None
    if len(raw) > _MAX_FILE:
        raise CredentialsError(f"{path}: larger than {_MAX_FILE} bytes")
    try:
        body = json.loads(raw or b"{}")
    except ValueError as exc:
        raise CredentialsError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(body, dict):
        raise CredentialsError(f"{path}: must hold a JSON object")
    return body


def _run_helper(helper: str, action: str, payload: bytes) -> subprocess.CompletedProcess:
    exe = f"docker-credential-{helper}"
    try:
        return subprocess.run([exe, action], input=payload, capture_output=True, timeout=_HELPER_TIMEOUT, check=False)
    except FileNotFoundError:
        raise CredentialsError(f"credential helper {exe} is not installed (named in the Docker config)") from None
    except subprocess.TimeoutExpired:
        raise CredentialsError(f"credential helper {exe} {action}: no answer in {_HELPER_TIMEOUT:.0f}s") from None


def helper_get(helper: str, host: str) -> Credentials | None:
    """Ask ``docker-credential-<helper>`` for ``host``; ``None`` when it has nothing."""
    for server in _server_urls(host):
        proc = _run_helper(helper, "get", server.encode())
        if proc.returncode != 0:
            out = proc.stdout.decode(errors="replace").strip().lower()
            if "not found" in out or "no credentials" in out:
                continue
            raise CredentialsError(f"credential helper docker-credential-{helper} get {host}: exit {proc.returncode}")
        try:
            body = json.loads(proc.stdout)
            user, secret = body["Username"], body["Secret"]
        except (ValueError, KeyError, TypeError):
            raise CredentialsError(f"credential helper docker-credential-{helper}: malformed answer for {host}") from None
        if not isinstance(user, str) or not isinstance(secret, str):
            raise CredentialsError(f"credential helper docker-credential-{helper}: malformed answer for {host}")
        if user == "<token>":
            return Credentials(user, "", identity_token=secret)
        return Credentials(user, secret)
    return None


def _server_urls(host: str) -> tuple[str, ...]:
    if host == "docker.io":
        return ("https://index.docker.io/v1/",)
    return (host, f"https://{host}")


class CredentialStore:
    """Find and save registry credentials. Paths come from the arguments, else the environment."""

    def __init__(self, auth_file: str | os.PathLike | None = None, docker_config: str | os.PathLike | None = None):
        if auth_file is None:
            base = os.environ.get("PYBUILD_CONFIG") or os.path.join(Path.home(), ".config", "pybuild")
            auth_file = os.path.join(base, "auth.json")
        if docker_config is None:
            base = os.environ.get("DOCKER_CONFIG") or os.path.join(Path.home(), ".docker")
            docker_config = os.path.join(base, "config.json")
        self.auth_file = Path(auth_file)
        self.docker_config = Path(docker_config)

    # -- lookup ------------------------------------------------------------------------------------

    def get(self, registry: str) -> Credentials | None:
        """Credentials for ``registry`` (``host[:port]``), or ``None`` for anonymous access."""
        host = normalize_host(registry)
        own = self._find_auth(_read_json(self.auth_file), host, str(self.auth_file))
        if own is not None:
            return own
        docker = _read_json(self.docker_config)
        helpers = docker.get("credHelpers") or {}
        if isinstance(helpers, dict):
            for key, helper in helpers.items():
                if normalize_host(key) == host and isinstance(helper, str) and helper:
                    return helper_get(helper, host)
        store = docker.get("credsStore")
        if isinstance(store, str) and store:
            found = helper_get(store, host)
            if found is not None:
                return found
        return self._find_auth(docker, host, str(self.docker_config))

    @staticmethod
    def _find_auth(body: dict[str, Any], host: str, source: str) -> Credentials | None:
        auths = body.get("auths") or {}
        if not isinstance(auths, dict):
            raise CredentialsError(f"{source}: 'auths' must be an object")
        for key, entry in auths.items():
            if normalize_host(key) == host and isinstance(entry, dict):
                found = _decode_auth(host, entry, source)
                if found is not None:
                    return found
        return None

    # -- pybuild's own file ------------------------------------------------------------------------

    def save(self, registry: str, creds: Credentials) -> Path:
        """Record ``creds`` for ``registry`` in pybuild's auth file (mode 0600, atomic)."""
        body = _read_json(self.auth_file)
        auths = body.setdefault("auths", {})
        if not isinstance(auths, dict):
            raise CredentialsError(f"{self.auth_file}: 'auths' must be an object")
        token = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
        auths[normalize_host(registry)] = {"auth": token}
        self._write(body)
        return self.auth_file

    def erase(self, registry: str) -> bool:
        """Forget ``registry``; True when there was something to forget."""
        body = _read_json(self.auth_file)
        auths = body.get("auths") or {}
        host = normalize_host(registry)
        keys = [k for k in auths if normalize_host(k) == host]
        if not keys:
            return False
        for key in keys:
            del auths[key]
        self._write(body)
        return True

    def _write(self, body: dict[str, Any]) -> None:
        directory = self.auth_file.parent
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".auth-", dir=directory)
        except OSError as exc:
            raise CredentialsError(f"create {directory}: {exc.strerror}") from None
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(json.dumps(body, indent=2, sort_keys=True).encode() + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.auth_file)
            dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError as exc:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise CredentialsError(f"write {self.auth_file}: {exc.strerror}") from None
