"""Fixtures for kernel-level network tests: a test-unique internal network on 10.213.X.0/24."""

from __future__ import annotations

import ipaddress
import os
import random
import shutil
import socket
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
