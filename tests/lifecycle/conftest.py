"""Fixtures of the lifecycle tests.

``lifecycle``: a :class:`Lab` bound to the per-test ``pybuild`` runner: it records containers straight
from a busybox root filesystem directory (the overlay lower dir), so the shim, sandbox and container
commands can be tested even without the image store; ``run_d`` goes through ``pybuild run -d`` with an
imported busybox image when the store is available.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
from tests.trustedtar import extract_trusted


@pytest.fixture(scope="session")
def busybox_lower(busybox_tar: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bblower") / "rootfs"
    root.mkdir()
    with tarfile.open(busybox_tar) as tar:
        extract_trusted(tar, root, "tar")
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_for(pred, timeout: float = 10.0, what: str = "condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Lab:
    def __init__(self, pybuild, lower: Path) -> None:
        from runner.state import ContainerStore

        self.pybuild = pybuild
        self.pybuild_exe = str(Path(sys.executable).with_name("pybuild"))
        self.lower = lower
        self.store = ContainerStore(str(pybuild.root), str(pybuild.state))
        self.names: list[str] = []

    def create(self, name: str, args: list[str], *, network: str = "none", **kw) -> str:
        """Record a container running ``args`` on the busybox lower dir; return its id."""
        from layers.config import ImageConfig
        from runner import containers as C
        from runner import state as st
        from runner.options import RunOptions
        from runner.spec import make_spec

        cid = st.new_id()
        opts = RunOptions(command=tuple(args), network=network, init=kw.pop("init", False),
                          tty=kw.get("tty", False))
        paths = C.rootfs_paths(self.store, cid)
        image_cfg = ImageConfig.parse(json.dumps({"architecture": "amd64", "os": "linux",
                                                  "rootfs": {"type": "layers", "diff_ids": []},
                                                  "config": {}}).encode())
        spec = make_spec(image_cfg, opts, rootfs=paths.rootfs, container_id=cid)
        if opts.init:
            spec = spec.with_annotation("org.pybuild.init", "true")
        cfg = st.ContainerConfig(id=cid, name=name, image="busybox-dir", image_id="sha256:" + "0" * 64,
                                 spec=spec, created=time.time(), network=st.NetworkAttachment(mode=network),
                                 init=opts.init, lowerdirs=(str(self.lower),), **kw)
        C.create(self.store, cfg)
        self.names.append(name)
        return cid

    def run(self, name: str, args: list[str], **kw) -> str:
        cid = self.create(name, args, **kw)
        self.pybuild("start", name, check=True)
        return cid

    def state(self, ref: str):
        return self.store.status(self.store.resolve(ref).id)

    def inspect(self, ref: str) -> dict:
        out = self.pybuild("container", "inspect", ref, check=True).stdout
        return json.loads(out)[0]

    def cleanup(self) -> None:
        for cfg in self.store.configs():
            self.pybuild("rm", "-f", cfg.id)


@pytest.fixture
def lifecycle(pybuild, busybox_lower):
    if os.geteuid() != 0:
        pytest.skip("needs root for namespaces, mounts and cgroups")
    lab = Lab(pybuild, busybox_lower)
    yield lab
    lab.cleanup()
    # nothing of ours may stay mounted
    with open("/proc/self/mounts") as f:
        leftovers = [line for line in f if str(pybuild.root) in line]
    assert not leftovers, leftovers


@pytest.fixture
def image(pybuild, busybox_tar):
    """busybox imported through the real ``pybuild import``; every container is removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("needs root for namespaces, mounts and cgroups")
    r = pybuild("import", str(busybox_tar), "lc/busybox:1")
    assert r.returncode == 0, r.stderr
    yield "lc/busybox:1"
    for cid in pybuild("ps", "-a", "-q", "--no-trunc").stdout.split():
        pybuild("rm", "-f", cid)
