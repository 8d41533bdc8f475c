"""End to end through the real ``pybuild`` command, shim and sandbox: ``start`` a recorded busybox
container on a test network with a published port, fetch over HTTP, stop, rm, nothing left.

Containers are recorded straight from a busybox root filesystem directory (as the lifecycle tests
do) because this tests networking, not the image store.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from .conftest import free_port, free_subnet


@pytest.fixture(scope="module")
def busybox_dir(busybox_tar, tmp_path_factory):
    root = tmp_path_factory.mktemp("bbnet") / "rootfs"
    root.mkdir()
    with tarfile.open(busybox_tar) as tar:
        tar.extractall(root, filter="tar")
    return root


def _links() -> set[str]:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        return {link.get("IFLA_IFNAME") for link in ipr.get_links()}


def _get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def _wait_get(port: int, path: str, timeout: float = 15.0) -> tuple[int, bytes]:
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            return _get(port, path)
        except (OSError, http.client.HTTPException) as exc:
            last = exc
            time.sleep(0.1)
    raise AssertionError(f"no answer on 127.0.0.1:{port}{path}: {last}")


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
            return True
        except OSError:
            return False


class Net:
    def __init__(self, pybuild, lower) -> None:
        from runner.state import ContainerStore

        self.pybuild = pybuild
        self.lower = lower
        self.store = ContainerStore(str(pybuild.root), str(pybuild.state))
        self.name = f"e2e{os.getpid()}"
        self.subnet = free_subnet()
        pybuild("network", "create", "--internal", "--subnet", self.subnet, self.name, check=True)

    def record(self, name: str, args: list[str], ports=()) -> str:
        from layers.config import ImageConfig
        from runner import containers as C
        from runner import state as st
        from runner.options import RunOptions
        from runner.spec import make_spec

        cid = st.new_id()
        opts = RunOptions(command=tuple(args), network=self.name)
        paths = C.rootfs_paths(self.store, cid)
        image_cfg = ImageConfig.parse(json.dumps({"architecture": "amd64", "os": "linux",
                                                  "rootfs": {"type": "layers", "diff_ids": []},
                                                  "config": {}}).encode())
        spec = make_spec(image_cfg, opts, rootfs=paths["rootfs"], container_id=cid)
        for fname in ("hosts", "hostname", "resolv.conf"):
            spec.setdefault("mounts", []).append({
                "destination": f"/etc/{fname}", "type": "bind", "source": os.path.join(paths["etc"], fname),
                "options": ["rbind", "rprivate"]})
        cfg = st.ContainerConfig(id=cid, name=name, image="busybox-dir", image_id="sha256:" + "0" * 64,
                                 spec=spec, created=time.time(), network={"mode": self.name},
                                 ports=tuple(ports), extra={"lowerdirs": [str(self.lower)]})
        C.create(self.store, cfg)
        return cid

    def cleanup(self) -> None:
        for cfg in self.store.configs():
            self.pybuild("rm", "-f", cfg.id)
        self.pybuild("network", "rm", self.name)


@pytest.fixture
def net(kernel, pybuild, busybox_dir):
    n = Net(pybuild, busybox_dir)
    yield n
    n.cleanup()


def _port(host_port: int, ctr: int = 80) -> dict:
    return {"container_port": ctr, "protocol": "tcp", "host_ip": "127.0.0.1", "host_port": host_port}


def test_start_publish_fetch_stop_rm(net):
    before = _links()
    port = free_port()
    cid = net.record("web", ["httpd", "-f", "-p", "80", "-h", "/"], ports=[_port(port)])
    net.pybuild("start", "web", check=True)
    status, body = _wait_get(port, "/etc/hostname")
    assert status == 200 and body == cid[:12].encode() + b"\n"
    insp = json.loads(net.pybuild("network", "inspect", net.name, check=True).stdout)[0]
    assert [e["name"] for e in insp["endpoints"].values()] == ["web"]
    assert net.pybuild("port", "web", check=True).stdout == f"80/tcp -> 127.0.0.1:{port}\n"
    net.pybuild("stop", "-t", "2", "web", check=True)
    end = time.monotonic() + 10
    while not _port_free(port) and time.monotonic() < end:
        time.sleep(0.1)
    assert _port_free(port), "published port still bound after stop"
    net.pybuild("rm", "web", check=True)
    assert _links() == before
    assert not os.path.exists(os.path.join(str(net.pybuild.state), "netns", cid))


def test_containers_reach_each_other_by_name_through_pybuild(net):
    net.record("web", ["httpd", "-f", "-p", "80", "-h", "/"])
    net.pybuild("start", "web", check=True)
    client = net.record("client", ["sh", "-c", "sleep 1; wget -q -O - http://web/etc/hostname"])
    net.pybuild("start", "client", check=True)
    rc = net.pybuild("wait", "client", check=True).stdout.strip()
    logs = net.pybuild("logs", "client").stdout + net.pybuild("logs", "client").stderr
    web_id = net.store.resolve("web").id
    assert rc == "0", logs
    assert web_id[:12] in logs
    assert client


def test_busy_port_fails_start_with_clear_error_and_leaves_nothing(net):
    before = _links()
    holder = socket.create_server(("127.0.0.1", 0))
    busy = holder.getsockname()[1]
    try:
        net.record("web", ["httpd", "-f", "-p", "80"], ports=[_port(busy)])
        res = net.pybuild("start", "web")
        assert res.returncode != 0
        assert f"host port 127.0.0.1:{busy}/tcp is already in use" in res.stderr
        assert net.pybuild("ps", "-q").stdout.strip() == ""
    finally:
        holder.close()
    net.pybuild("rm", "-f", "web")
    assert _links() == before


def test_kill_9_of_the_cli_keeps_container_and_frees_port_after_rm(net):
    """SECURITY.md case 22 (with ``start``; ``run -d`` takes the same path through the shim)."""
    port = free_port()
    net.record("web", ["httpd", "-f", "-p", "80", "-h", "/"], ports=[_port(port)])
    exe = str(Path(sys.executable).with_name("pybuild"))      # the installed entry point, as the fixture uses
    cli = subprocess.Popen([exe, "--root", str(net.pybuild.root), "--state-dir", str(net.pybuild.state),
                            "start", "web"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert _wait_get(port, "/etc/hostname")[0] == 200
    finally:
        if cli.poll() is None:
            cli.send_signal(signal.SIGKILL)
        cli.wait(10)
    assert _get(port, "/etc/hostname")[0] == 200
    assert "web" in net.pybuild("ps", check=True).stdout
    net.pybuild("logs", "web", check=True)
    net.pybuild("stop", "-t", "2", "web", check=True)
    net.pybuild("rm", "web", check=True)
    assert _port_free(port)


def test_run_d_publish_get_stop_port_free(kernel, pybuild, busybox_tar):
    """The issue's own check: ``pybuild run -d -p PORT:80 IMG httpd -f -p 80``, GET, ``stop``, port free."""
    imp = pybuild("import", str(busybox_tar), "bbnet:1")
    assert imp.returncode == 0, imp.stderr
    name = f"e2erun{os.getpid()}"
    pybuild("network", "create", "--internal", "--subnet", free_subnet(), name, check=True)
    before = _links()
    port = free_port()
    try:
        run = pybuild("run", "-d", "--network", name, "-p", f"127.0.0.1:{port}:80", "bbnet:1",
                      "httpd", "-f", "-p", "80", "-h", "/", check=True)
        cid = run.stdout.strip().splitlines()[-1]
        status, body = _wait_get(port, "/etc/hostname")
        assert status == 200 and body.strip() == cid[:12].encode()
        assert f"127.0.0.1:{port}" in pybuild("port", cid, check=True).stdout
        pybuild("stop", "-t", "2", cid, check=True)
        end = time.monotonic() + 10
        while not _port_free(port) and time.monotonic() < end:
            time.sleep(0.1)
        assert _port_free(port)
        pybuild("rm", cid, check=True)
        assert _links() == before
    finally:
        for line in pybuild("ps", "-a", "-q").stdout.split():
            pybuild("rm", "-f", line)
        pybuild("network", "rm", name)


class _StandInImages:
    """The ``layers.store.Store`` calls ``runner.containers`` makes (images.resolve/load, snapshots.lowerdirs),
    over the busybox directory: stands in until the image store lands; the CLI test above covers the rest."""

    def __init__(self, lower: str, exposed: dict) -> None:
        from dataclasses import dataclass

        from layers.config import ImageConfig

        @dataclass(frozen=True)
        class Manifest:
            digest: str

        @dataclass(frozen=True)
        class Image:
            manifest: Manifest
            config: ImageConfig

        cfg = ImageConfig.parse(json.dumps({
            "architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
            "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"], "ExposedPorts": exposed}}).encode())
        image = Image(Manifest("sha256:" + "2" * 64), cfg)

        class images:
            resolve = staticmethod(lambda ref: image)
            load = staticmethod(lambda record: image)

        class snapshots:
            lowerdirs = staticmethod(lambda img: [lower])

        self.images, self.snapshots = images, snapshots


def test_run_detached_with_publish_and_publish_all(net):
    """``runner.containers.run_detached`` (what ``run -d`` calls) with ``-p`` and ``-P`` on a test network."""
    from runner import containers as C
    from runner.options import PortSpec, RunOptions

    before = _links()
    images = _StandInImages(str(net.lower), {"80/tcp": {}})
    port = free_port()
    info = C.run_detached(net.store, images, "bb:1", RunOptions(
        command=("httpd", "-f", "-p", "80", "-h", "/"), network=net.name, name="webp",
        publish=(PortSpec(80, port, "127.0.0.1"),)))
    cid = info.config.id
    status, body = _wait_get(port, "/etc/hostname")
    assert status == 200 and body == cid[:12].encode() + b"\n"
    assert json.loads(net.pybuild("network", "inspect", net.name, check=True).stdout)[0]["endpoints"][cid]["name"] == "webp"
    C.stop(net.store, "webp", timeout=2)
    end = time.monotonic() + 10
    while not _port_free(port) and time.monotonic() < end:
        time.sleep(0.1)
    assert _port_free(port)
    C.remove(net.store, "webp")
    # -P: every EXPOSEd port goes to a free host port
    info = C.run_detached(net.store, images, "bb:1", RunOptions(
        command=("httpd", "-f", "-p", "80", "-h", "/"), network=net.name, name="webP", publish_all=True))
    assert [p["container_port"] for p in info.config.ports] == [80]
    C.remove(net.store, "webP", force=True)
    end = time.monotonic() + 10
    while _links() != before and time.monotonic() < end:
        time.sleep(0.1)
    assert _links() == before
