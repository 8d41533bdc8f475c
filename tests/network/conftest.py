"""Fixtures for the network tests: a test-unique internal network on 10.213.X.0/24, the real
``pybuild`` command (optionally run inside a network namespace that stands in for a fresh host),
and such a test host.

All test traffic stays on loopback, on bridges the tests make, or inside namespaces they create.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

BUSYBOX = shutil.which("busybox") or "/bin/busybox"


def _kernel_ok() -> str | None:
    if os.geteuid() != 0:
        return "needs root for network namespaces and bridges"
    if not os.path.exists("/proc/self/ns/net"):
        return "kernel without network namespaces"
    return None


@pytest.fixture
def kernel():
    why = _kernel_ok()
    if why:
        pytest.skip(why)


class NetEnv:
    """A store root + state dir + one user network; records every container it set up for cleanup."""

    def __init__(self, tmp: Path, name: str, subnet: str, internal: bool = True) -> None:
        from runner import network

        self.tmp = tmp
        self.root = str(tmp / "root")
        self.state = str(tmp / "state")
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        os.makedirs(self.state, mode=0o700, exist_ok=True)
        self.name = name
        self.cfg = network.create_network(self.root, name, subnet=subnet, internal=internal)
        self.ids: list[str] = []

    def attach(self, cid: str, name: str | None = None, mode: str | None = None, **kw):
        from runner import network

        self.ids.append(cid)
        return network.setup(root=self.root, state_dir=self.state, container_id=cid,
                             etc_dir=str(self.tmp / "etc" / cid), mode=mode or self.name, name=name, **kw)

    def detach(self, cid: str) -> None:
        from runner import network

        network.teardown(root=self.root, state_dir=self.state, container_id=cid)

    def close(self) -> None:
        from runner import network

        for cid in self.ids:
            network.teardown(root=self.root, state_dir=self.state, container_id=cid)
        network.remove_network(self.root, self.name)


def free_subnet() -> str:
    from runner.network.bridge import route_overlaps

    for _ in range(200):
        net = ipaddress.IPv4Network(f"10.213.{random.randint(1, 254)}.0/24")
        if route_overlaps(net) is None:
            return str(net)
    raise RuntimeError("no free 10.213.x.0/24")


@pytest.fixture
def netenv(kernel, tmp_path):
    env = NetEnv(tmp_path, f"t{os.getpid()}x{random.randint(0, 1 << 30):x}", free_subnet())
    yield env
    env.close()


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PYBUILD = str(Path(sys.executable).with_name("pybuild"))


class Pybuild:
    """The installed ``pybuild`` entry point on one store; inside ``netns_path`` when given (so the
    CLI, its shims and their bridges, NAT rules and published ports all live in that namespace)."""

    def __init__(self, root: Path, state: Path, netns_path: str | None = None) -> None:
        self.root, self.state, self.netns_path = Path(root), Path(state), netns_path

    def argv(self, *args: str) -> list[str]:
        return [PYBUILD, "--root", str(self.root), "--state-dir", str(self.state), *args]

    def _preexec(self):
        if self.netns_path is None:
            return None
        from runner.network import netns

        return lambda: netns.enter(self.netns_path)

    def __call__(self, *args: str, check: bool = False, timeout: float = 120) -> subprocess.CompletedProcess:
        env = dict(os.environ)
        env.pop("PYBUILD_DEBUG", None)
        res = subprocess.run(self.argv(*args), capture_output=True, text=True, timeout=timeout, env=env,
                             preexec_fn=self._preexec())
        if check and res.returncode != 0:
            raise AssertionError(f"pybuild {' '.join(args)} exited {res.returncode}:\n{res.stdout}\n{res.stderr}")
        return res

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(self.argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=self._preexec())

    def inspect(self, ref: str) -> dict:
        return json.loads(self("inspect", ref, check=True).stdout)[0]

    def remove_all(self) -> None:
        """``rm -f`` every container, then ``network rm`` every user network (test cleanup)."""
        ids = self("ps", "-a", "-q", "--no-trunc").stdout.split()
        if ids:
            self("rm", "-f", *ids)
        names = [n for n in self("network", "ls", "--format", "{{.Name}}").stdout.split() if n != "pybuild"]
        if names:
            self("network", "rm", *names)


class FreshHost:
    """A fresh network namespace standing in for a host of its own: only ``lo``, up. Whatever pybuild
    makes in it (default bridge, NAT rules, ip_forward) goes away with it."""

    def __init__(self, path: str) -> None:
        from runner.network import netns, veth

        self.path = netns.create(path)
        veth.setup_loopback(path)

    def run(self, fn):
        """Call ``fn`` on a thread inside this host; sockets it opens stay here."""
        from runner.network import netns

        return netns.run_in(self.path, fn)

    def ipr(self, fn):
        """Call ``fn(ipr)`` with a full pyroute2 ``IPRoute`` of this host (test-side set-up only)."""
        def inner():
            from pyroute2 import IPRoute

            with IPRoute() as ipr:
                return fn(ipr)

        return self.run(inner)

    def links(self) -> set[str]:
        return self.ipr(lambda ipr: {link.get("IFLA_IFNAME") for link in ipr.get_links()})

    def close(self) -> None:
        from runner.network import netns

        netns.remove(self.path)


def http_get(host: str, port: int, path: str = "/", timeout: float = 5.0) -> tuple[int, bytes]:
    import http.client

    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def wait_get(host: str, port: int, path: str = "/", timeout: float = 15.0, runner=None) -> tuple[int, bytes]:
    """GET until it answers (a container's server takes a moment); ``runner`` runs it elsewhere (FreshHost.run)."""
    import http.client

    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            if runner is None:
                return http_get(host, port, path)
            return runner(lambda: http_get(host, port, path))
        except (OSError, http.client.HTTPException) as exc:
            last = exc
            time.sleep(0.05)
    raise AssertionError(f"no answer on {host}:{port}{path}: {last}")


def port_free(port: int, host: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def wait_port_free(port: int, timeout: float = 10.0, kind: int = socket.SOCK_STREAM) -> bool:
    end = time.monotonic() + timeout
    while not port_free(port, kind=kind):
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


def nsfs_mounts(under: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(str(under))]


def shim_processes(root: str) -> list[int]:
    """Shims of the store at ``root`` still running."""
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if b"runner.shim" in argv and os.fsencode(str(root)) in argv:
                out.append(int(pid))
    return out
