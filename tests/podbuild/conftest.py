"""Fixtures of the in-container build tests: the pybuild image, built once per session by pybuild from
the repository's ``Dockerfile`` on the debootstrapped Debian base (``debian_tar``), pushed to a
registry on 127.0.0.1, and a rootful podman with storage of its own (never the machine's) that runs it.

- ``podbuild_registry``: an open ``docker-registry`` on 127.0.0.1 (session).
- ``podman``: :class:`Podman`, podman with ``--root``/``--runroot``/``--tmpdir`` in a fresh dir (session);
  its overlay storage driver gives containers an overlayfs root, as in a cluster.
- ``pybuild_image``: :class:`PybuildImage`: the image's reference in the registry, pulled into
  ``podman``, with the seconds the build took (apt + pip from the mirrors, ~25 s here).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, PybuildRunner

# Docker's 14 default capabilities (podman's own default set lacks the last three), no CAP_SYS_ADMIN;
# seccomp unconfined as a Kubernetes pod without a profile; the host's network to reach the registry.
# The ulimits: this host's hard limits are below podman's defaults, which runc cannot raise.
POD = ("--security-opt", "seccomp=unconfined", "--network", "host", "--cap-add", "MKNOD,NET_RAW,AUDIT_WRITE",
       "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096")
UNPRIVILEGED = ("--user", "1000:1000", *POD)
STORE = "/home/pybuild/.local/share/pybuild"   # the image's VOLUME for the store


class Podman:
    """``podman`` with storage in ``base`` (overlay driver, cgroupfs, no events): nobody else's."""

    def __init__(self, base: Path) -> None:
        self.base = base

    def __call__(self, *args: str, timeout: float = 600, check: bool = False,
                 input: bytes | None = None) -> subprocess.CompletedProcess:
        """Run podman; ``input`` goes to its stdin (give ``-i``); stdout and stderr come back as text."""
        cmd = ["podman", "--root", str(self.base / "root"), "--runroot", str(self.base / "run"),
               "--tmpdir", str(self.base / "tmp"), "--storage-driver", "overlay", "--events-backend", "none",
               "--cgroup-manager", "cgroupfs", *args]
        proc = subprocess.run(cmd, capture_output=True, input=input, timeout=timeout)
        proc.stdout, proc.stderr = proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
        if check and proc.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc


@dataclass(frozen=True)
class PybuildImage:
    ref: str
    registry: str        # host:port on 127.0.0.1
    base_ref: str        # the Debian base in the same registry: the inner builds' base image
    build_seconds: float


@pytest.fixture(scope="session")
def podbuild_registry(tmp_path_factory: pytest.TempPathFactory):
    from tests.registry.servers import REGISTRY_BIN, start_registry

    if REGISTRY_BIN is None:
        pytest.skip("docker-registry is not installed (apt-get install docker-registry)")
    server = start_registry("open", tmp_path_factory.mktemp("podbuild-registry"))
    try:
        yield server
    finally:
        server.stop()


def _unmount_under(base: Path) -> None:
    """Unmount whatever podman left mounted under our own storage dir (deepest first)."""
    from runner import syscalls as sc

    prefix = str(base) + "/"
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f if line.split()[4].startswith(prefix)]
    for point in sorted(points, key=len, reverse=True):
        try:
            sc.umount2(point, sc.MNT_DETACH)
        except OSError:
            pass


@pytest.fixture(scope="session")
def podman():
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (apt-get install podman)")
    if os.geteuid() != 0:
        pytest.skip("needs root: rootful podman with storage of its own")
    base = Path(tempfile.mkdtemp(prefix="pbpod-", dir="/tmp"))  # podman wants a runroot under 50 characters
    try:
        yield Podman(base)
    finally:
        Podman(base)("rm", "-af", timeout=120)
        Podman(base)("rmi", "-af", timeout=120)
        _unmount_under(base)
        shutil.rmtree(base, ignore_errors=True)


def _ca_secret() -> list[str]:
    # behind this machine's TLS-intercepting proxy pip needs the host's CA bundle: a build secret
    ca = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt"
    return ["--secret", f"id=pip-ca,src={ca}"] if os.path.isfile(ca) else []


@pytest.fixture(scope="session")
def pybuild_image(debian_tar: Path, podbuild_registry, podman: Podman,
                  tmp_path_factory: pytest.TempPathFactory) -> PybuildImage:
    """The repository's Dockerfile built by pybuild (as root) on the debootstrapped Debian, pushed, pulled
    into ``podman``; and that Debian pushed beside it (the inner builds' base)."""
    base = tmp_path_factory.mktemp("podbuild-host")
    host = PybuildRunner(base / "root", base / "state")
    host.root.mkdir(mode=0o700)
    host.state.mkdir(mode=0o700)
    registry = podbuild_registry.host
    env = {"PYBUILD_INSECURE_REGISTRIES": registry}
    host("import", str(debian_tar), "debian:bookworm", check=True)
    host("tag", "debian:bookworm", f"{registry}/base/debian:bookworm", check=True)
    host("push", f"{registry}/base/debian:bookworm", env=env, check=True)
    ref = f"{registry}/pybuild/pybuild:test"
    started = time.monotonic()
    host("build", "--progress", "plain", *_ca_secret(), "--build-arg", "BASE=debian:bookworm", "-t", ref, "--push",
         str(ROOT), env=env, timeout=1200, check=True)
    seconds = time.monotonic() - started
    podman("pull", "-q", "--tls-verify=false", ref, check=True)
    return PybuildImage(ref, registry, f"{registry}/base/debian:bookworm", seconds)
