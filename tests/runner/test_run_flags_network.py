"""``--dns``, ``--dns-search``, ``--dns-option``, ``--add-host`` (default bridge) and ``--network-alias``
with ``--ip`` (a user network) through the real ``pybuild`` command: what the container's resolver sees."""

from __future__ import annotations

import json
import os

import pytest

IMG = "rfn/busybox:1"


@pytest.fixture
def image(pybuild, busybox_tar):
    if os.geteuid() != 0:
        pytest.skip("needs root for namespaces, mounts and cgroups")
    pybuild("import", str(busybox_tar), IMG, check=True)
    yield IMG
    for cid in pybuild("ps", "-a", "-q", "--no-trunc").stdout.split():
        pybuild("rm", "-f", cid)
    for name in pybuild("network", "ls", "--format", "{{.Name}}").stdout.split():
        pybuild("network", "rm", name)


def test_dns_flags_and_add_host_on_the_default_network(pybuild, image) -> None:
    r = pybuild("run", "--rm", "--dns", "192.0.2.53", "--dns", "192.0.2.54", "--dns-search", "example.test",
                "--dns-option", "ndots:2", "--add-host", "db.local:192.0.2.10", image,
                "cat", "/etc/resolv.conf", "/etc/hosts")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert [ln for ln in lines if ln.startswith("nameserver")] == ["nameserver 192.0.2.53", "nameserver 192.0.2.54"]
    assert "search example.test" in lines and "options ndots:2" in lines
    assert "192.0.2.10\tdb.local" in lines


def test_network_alias_and_ip_on_a_user_network(pybuild, image) -> None:
    pybuild("network", "create", "rfnet", check=True)
    subnet = json.loads(pybuild("network", "inspect", "rfnet", check=True).stdout)[0]["subnet"]
    ip = subnet.rsplit(".", 1)[0] + ".77"
    pybuild("run", "-d", "--network", "rfnet", "--name", "srv", "--network-alias", "db", "--ip", ip,
            image, "sleep", "60", check=True)
    r = pybuild("run", "--rm", "--network", "rfnet", image, "sh", "-c", "ping -c1 -W5 db >/dev/null && "
                "grep -w db /etc/hosts")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [ip, r.stdout.split()[1], "srv", "db"]
    assert pybuild("inspect", "--format", "{{.NetworkSettings.IPAddress}}", "srv").stdout.strip() == ip


def test_add_host_host_gateway_is_the_bridge_gateway(pybuild, image) -> None:
    """Docker's ``NAME:host-gateway``: the host's address on the container's bridge, reachable from it."""
    pybuild("network", "create", "rfgw", check=True)
    gateway = json.loads(pybuild("network", "inspect", "rfgw", check=True).stdout)[0]["gateway"]
    r = pybuild("run", "--rm", "--network", "rfgw", "--add-host", "host.docker.internal:host-gateway", image,
                "sh", "-c", "grep host.docker.internal /etc/hosts && ping -c1 -W5 host.docker.internal >/dev/null")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [gateway, "host.docker.internal"]
