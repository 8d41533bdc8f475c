"""``inspect`` shows the run flags as Docker's ``HostConfig``/``Config`` fields, read back from the
container's record (created through the real ``pybuild`` command, never started)."""

from __future__ import annotations

import json
import os

import pytest

IMG = "ihc/busybox:1"


@pytest.fixture
def image(pybuild, busybox_tar):
    if os.geteuid() != 0:
        pytest.skip("needs root for namespaces, mounts and cgroups")
    pybuild("import", str(busybox_tar), IMG, check=True)
    yield IMG
    for cid in pybuild("ps", "-a", "-q", "--no-trunc").stdout.split():
        pybuild("rm", "-f", cid)


def _inspect(pybuild, *args: str) -> dict:
    r = pybuild("create", *args)
    assert r.returncode == 0, r.stderr
    return json.loads(pybuild("inspect", r.stdout.strip(), check=True).stdout)[0]


def test_run_flags_as_host_config(pybuild, image) -> None:
    dev = next(d for d in ("/dev/fuse", "/dev/loop-control") if os.path.exists(d))
    doc = _inspect(pybuild, "--dns", "10.0.0.53", "--dns-search", "example.test",
                   "--dns-option", "ndots:2", "--add-host", "db:10.0.0.9", "--ulimit", "nproc=100:200",
                   "--shm-size", "16m", "--cpu-shares", "512", "--cpuset-cpus", "0", "--memory", "64m",
                   "--memory-reservation", "32m", "--memory-swap", "128m", "--sysctl", "net.ipv4.ip_forward=1",
                   "--device", f"{dev}:/dev/mydev:r", "--group-add", "1234", "--pid", "host",
                   "--uts", "host", "--expose", "80", "--expose", "53/udp", "--stop-timeout", "7", image, "true")
    hc = doc["HostConfig"]
    assert (hc["Dns"], hc["DnsSearch"], hc["DnsOptions"]) == (["10.0.0.53"], ["example.test"], ["ndots:2"])
    assert hc["ExtraHosts"] == ["db:10.0.0.9"]
    assert hc["Ulimits"] == [{"Name": "nproc", "Soft": 100, "Hard": 200}]
    assert hc["ShmSize"] == 16 * 1024 * 1024
    assert (hc["CpuShares"], hc["CpusetCpus"]) == (512, "0")
    assert (hc["MemoryReservation"], hc["MemorySwap"]) == (32 * 1024 * 1024, 128 * 1024 * 1024)
    assert hc["Sysctls"] == {"net.ipv4.ip_forward": "1"}
    assert hc["Devices"] == [{"PathOnHost": dev, "PathInContainer": "/dev/mydev", "CgroupPermissions": "r"}]
    assert hc["GroupAdd"] == ["1234"]
    assert (hc["PidMode"], hc["IpcMode"], hc["UTSMode"]) == ("host", "private", "host")
    assert doc["Config"]["ExposedPorts"] == {"53/udp": {}, "80/tcp": {}}
    assert doc["Config"]["StopTimeout"] == 7


def test_defaults_as_docker_shows_them(pybuild, image) -> None:
    hc = _inspect(pybuild, "--network", "none", image, "true")["HostConfig"]
    assert hc["ShmSize"] == 64 * 1024 * 1024 and hc["Ulimits"] == [] and hc["Devices"] == []
    assert (hc["PidMode"], hc["IpcMode"], hc["UTSMode"]) == ("", "private", "")
    assert (hc["Dns"], hc["GroupAdd"], hc["Sysctls"], hc["CpuShares"]) == ([], [], {}, 0)
    hc = _inspect(pybuild, "--network", "none", "--ipc", "none", image, "true")["HostConfig"]
    assert (hc["IpcMode"], hc["ShmSize"]) == ("none", 64 * 1024 * 1024)
    hc = _inspect(pybuild, "--network", "none", "--ipc", "host", image, "true")["HostConfig"]
    assert hc["IpcMode"] == "host"
