"""A user network's subnet against a host route that appears after ``network create``, through the real
``pybuild`` command in a fresh network namespace standing in for the host (:class:`FreshHost`), so the
clashing link, the bridges and NAT rules all go away with it.

An auto-chosen subnet of a network with no container yet moves to the next free /24 at first attach
(saved in the record, said once); a ``--subnet`` one never moves: the attach fails with one line naming
the clashing route.
"""

from __future__ import annotations

import ipaddress
import json

import pytest

from .conftest import FreshHost, Pybuild

IMAGE = "bbmove:1"


@pytest.fixture
def fresh(kernel, tmp_path, busybox_tar):
    host = FreshHost(str(tmp_path / "host-netns"))
    root, state = tmp_path / "root", tmp_path / "state"
    root.mkdir(mode=0o700)
    state.mkdir(mode=0o700)
    p = Pybuild(root, state, netns_path=host.path)
    p("import", str(busybox_tar), IMAGE, check=True)
    p.host = host
    yield p
    p.remove_all()
    host.close()


def _occupy(host: FreshHost, ifname: str, address: str, prefixlen: int) -> None:
    """A bridge with ``address/prefixlen``, up: the host route another tool would leave."""
    def add(ipr):
        ipr.link("add", ifname=ifname, kind="bridge")
        idx = ipr.link_lookup(ifname=ifname)[0]
        ipr.addr("add", index=idx, address=address, prefixlen=prefixlen)
        ipr.link("set", index=idx, state="up")

    host.ipr(add)


def _unoccupy(host: FreshHost, ifname: str) -> None:
    host.ipr(lambda ipr: ipr.link("del", index=ipr.link_lookup(ifname=ifname)[0]))


def _network(p: Pybuild, name: str) -> dict:
    return json.loads(p("network", "inspect", name, check=True).stdout)[0]


def test_idle_auto_subnet_moves_off_a_route_that_appeared_after_create(fresh):
    fresh("network", "create", "auto", check=True)
    before = _network(fresh, "auto")
    assert (before["subnet"], before["auto_subnet"]) == ("10.150.0.0/24", True)
    _occupy(fresh.host, "clash0", "10.150.0.77", 24)
    try:
        res = fresh("run", "-d", "--network", "auto", IMAGE, "sleep", "100", check=True)
        note = "network auto: subnet 10.150.0.0/24 now overlaps host route 10.150.0.0/24 dev clash0; moved to 10.150.1.0/24"
        assert f"pybuild: {note}" in res.stderr
        cid = res.stdout.split()[-1]
        ip = fresh.inspect(cid)["NetworkSettings"]["Networks"]["auto"]["IPAddress"]
        assert ipaddress.IPv4Address(ip) in ipaddress.IPv4Network("10.150.1.0/24")
        after = _network(fresh, "auto")
        assert (after["subnet"], after["gateway"], after["note"]) == ("10.150.1.0/24", "10.150.1.1", note)
        assert after["bridge_state"]["addresses"] == ["10.150.1.1/24"]
        # a second container joins the moved subnet; nothing is said again
        second = fresh("run", "-d", "--network", "auto", IMAGE, "sleep", "100", check=True)
        assert "overlaps" not in second.stderr
        ip2 = fresh.inspect(second.stdout.split()[-1])["NetworkSettings"]["Networks"]["auto"]["IPAddress"]
        assert ipaddress.IPv4Address(ip2) in ipaddress.IPv4Network("10.150.1.0/24") and ip2 != ip
        # a new network skips both the clashing /24 and the moved network's
        fresh("network", "create", "later", check=True)
        assert _network(fresh, "later")["subnet"] == "10.150.2.0/24"
    finally:
        _unoccupy(fresh.host, "clash0")
    assert "clash0" not in fresh.host.links()


def test_given_subnet_never_moves_and_the_attach_names_the_clash(fresh):
    fresh("network", "create", "--subnet", "10.150.7.0/24", "fixed", check=True)
    assert _network(fresh, "fixed")["auto_subnet"] is False
    _occupy(fresh.host, "clash1", "10.150.7.77", 24)
    try:
        res = fresh("run", "-d", "--network", "fixed", IMAGE, "sleep", "100")
        assert res.returncode != 0 and "Traceback" not in res.stderr
        line = ("network fixed: subnet 10.150.7.0/24 overlaps host route 10.150.7.0/24 dev clash1 "
                "(given with --subnet; it is never moved)")
        assert line in res.stderr and len([ln for ln in res.stderr.splitlines() if "overlaps" in ln]) == 1
        doc = _network(fresh, "fixed")
        assert (doc["subnet"], doc["note"], doc["bridge_state"]) == ("10.150.7.0/24", None, {"present": False})
    finally:
        _unoccupy(fresh.host, "clash1")
    assert "clash1" not in fresh.host.links()
