"""A container on several networks, through the real ``pybuild``: repeated ``--network`` at create
(one interface per network, names resolved on each network shared with the peer, the first network's
gateway the only default route), ``network connect``/``disconnect`` of a running and of a created
container (peers' hosts files follow, ``inspect`` lists every network), and nothing left behind
(veths, endpoints, bridges) once the containers are gone."""

from __future__ import annotations

import ipaddress
import json
import os

import pytest

from .conftest import Pybuild, free_subnet

IMAGE = "bbmulti:1"
SLEEP = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.2; done"]


@pytest.fixture
def pb(kernel, tmp_path, busybox_tar):
    """A store with busybox and two internal networks ``pb.a`` and ``pb.b`` on free subnets."""
    root, state = tmp_path / "root", tmp_path / "state"
    root.mkdir(mode=0o700)
    state.mkdir(mode=0o700)
    p = Pybuild(root, state)
    p("import", str(busybox_tar), IMAGE, check=True)
    tag = f"{os.getpid()}x{os.urandom(2).hex()}"
    p.a, p.b = f"ma{tag}", f"mb{tag}"
    p.subnets = {}
    for name in (p.a, p.b):
        subnet = free_subnet()
        p("network", "create", "--internal", "--subnet", subnet, name, check=True)
        p.subnets[name] = ipaddress.IPv4Network(subnet)
    yield p
    p.remove_all()


def _run(pb, name: str, *networks: str, extra: tuple[str, ...] = ()) -> str:
    args = [a for n in networks for a in ("--network", n)]
    return pb("run", "-d", "--name", name, *args, *extra, IMAGE, *SLEEP, check=True).stdout.strip()


def _resolves(pb, container: str, name: str) -> str | None:
    """The address ``name`` resolves to inside ``container`` (None: it does not), as busybox's ``ping``
    prints it (``PING name (ip)``; "bad address" when the resolver finds nothing)."""
    import re

    res = pb("exec", container, "ping", "-c", "1", "-W", "1", name)
    m = re.search(r"^PING \S+ \(([0-9.]+)\)", res.stdout, re.M)
    return m.group(1) if m else None


def _reaches(pb, container: str, name: str) -> bool:
    return pb("exec", container, "ping", "-c", "1", "-W", "2", name).returncode == 0


def _bridge(pb, net: str) -> str:
    return json.loads(pb("network", "inspect", net, check=True).stdout)[0]["bridge"]


def test_two_networks_at_create_each_peer_by_name(pb) -> None:
    _run(pb, "pa", pb.a)
    _run(pb, "pbb", pb.b)
    both = _run(pb, "both", pb.a, f"name={pb.b},alias=second")
    links = pb("exec", "both", "ip", "-o", "-4", "addr", "show", check=True).stdout
    assert " eth0 " in links and " eth1 " in links
    doc = pb.inspect("both")
    nets = doc["NetworkSettings"]["Networks"]
    assert list(nets) == [pb.a, pb.b]
    ip_a, ip_b = nets[pb.a]["IPAddress"], nets[pb.b]["IPAddress"]
    assert ipaddress.IPv4Address(ip_a) in pb.subnets[pb.a] and ipaddress.IPv4Address(ip_b) in pb.subnets[pb.b]
    assert nets[pb.b]["Aliases"] == ["second"]
    # one default route: the first network's gateway
    routes = pb("exec", "both", "ip", "route", check=True).stdout
    assert routes.count("default") == 1 and "dev eth0" in routes.split("default", 1)[1].splitlines()[0]
    # names resolve on each network the two share, and the peers reach it back by name and alias
    assert _reaches(pb, "both", "pa") and _reaches(pb, "both", "pbb")
    assert _resolves(pb, "pa", "both") == ip_a and _resolves(pb, "pbb", "both") == ip_b
    assert _resolves(pb, "pbb", "second") == ip_b and _resolves(pb, "pa", "second") is None
    # a and b share no network: neither resolves the other by name (isolation by address between
    # bridges is the host's forwarding policy, as before: not this feature's)
    assert _resolves(pb, "pa", "pbb") is None and _resolves(pb, "pbb", "pa") is None
    # a restart attaches both again
    pb("stop", "-t", "1", "both", check=True)
    pb("start", "both", check=True)
    assert _reaches(pb, "both", "pa") and _reaches(pb, "both", "pbb")
    assert pb("ps", "--filter", "name=both", "--format", "{{.Networks}}", check=True).stdout.strip() == f"{pb.a},{pb.b}"
    assert both


def test_connect_disconnect_running_and_created(pb) -> None:
    _run(pb, "pa", pb.a)
    _run(pb, "pbb", pb.b)
    _run(pb, "web", pb.a)
    assert _resolves(pb, "web", "pbb") is None
    pb("network", "connect", "--alias", "webby", pb.b, "web", check=True)
    nets = pb.inspect("web")["NetworkSettings"]["Networks"]
    veth = nets[pb.b]["host_veth"]
    assert veth in os.listdir("/sys/class/net")
    assert list(nets) == [pb.a, pb.b] and nets[pb.b]["IPAddress"]
    assert nets[pb.b]["Aliases"] == ["webby"]
    assert " eth1 " in pb("exec", "web", "ip", "-o", "-4", "addr", "show", check=True).stdout
    assert _reaches(pb, "web", "pbb") and _resolves(pb, "pbb", "webby") == nets[pb.b]["IPAddress"]
    again = pb("network", "connect", pb.b, "web")
    assert again.returncode != 0 and "already connected" in again.stderr
    missing = pb("network", "connect", "nosuchnet", "web")
    assert missing.returncode != 0 and "nosuchnet" in missing.stderr and "Traceback" not in missing.stderr
    pb("network", "disconnect", pb.b, "web", check=True)
    assert list(pb.inspect("web")["NetworkSettings"]["Networks"]) == [pb.a]
    assert " eth1 " not in pb("exec", "web", "ip", "-o", "-4", "addr", "show", check=True).stdout
    assert _resolves(pb, "web", "pbb") is None and _resolves(pb, "pbb", "web") is None
    assert _resolves(pb, "web", "pa") is not None                      # its first network is untouched
    assert veth not in os.listdir("/sys/class/net")                   # the veth went (other jobs make links too)
    evs = [json.loads(line) for line in pb("events", "--since", "1h", "--until", "0s", "--filter", "type=network",
                                           "--filter", f"network={pb.b}", "--format", "{{json .}}",
                                           check=True).stdout.splitlines()]
    web_id = pb.inspect("web")["Id"]
    assert [e["Action"] for e in evs if e["Actor"]["Attributes"].get("container") == web_id] == ["connect", "disconnect"]
    first = pb("network", "disconnect", pb.a, "web")
    assert first.returncode != 0 and "first network" in first.stderr
    assert pb("network", "disconnect", pb.b, "web").returncode != 0
    pb("network", "disconnect", "-f", pb.b, "web", check=True)
    # a created container records the request and joins at its start
    pb("create", "--name", "later", "--network", pb.a, IMAGE, *SLEEP, check=True)
    pb("network", "connect", pb.b, "later", check=True)
    nets = pb.inspect("later")["NetworkSettings"]["Networks"]           # recorded, no address before its start
    assert list(nets) == [pb.b] and nets[pb.b]["IPAddress"] == ""
    pb("start", "later", check=True)
    assert _resolves(pb, "pbb", "later") and _resolves(pb, "later", "pa")
    # removing everything leaves no endpoint, veth or bridge of the store
    bridges = {_bridge(pb, pb.a), _bridge(pb, pb.b)}
    pb("rm", "-f", "pa", "pbb", "web", "later", check=True)
    for net in (pb.a, pb.b):
        assert json.loads(pb("network", "inspect", net, check=True).stdout)[0]["endpoints"] == {}
    assert not bridges & set(os.listdir("/sys/class/net"))
