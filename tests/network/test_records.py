"""Network records, address allocation and /etc files: no kernel objects are made here."""

from __future__ import annotations

import ipaddress
import multiprocessing
import os
import re

import pytest

from runner.network import config, files, ipam
from runner.network.attach import parse_mode
from runner.network.errors import AddressExhausted, InvalidNetworkSpec, NetworkExists, NetworkNotFound


def _no_overlap(net):
    return None


def test_default_network_record_is_created_on_first_use(tmp_path):
    cfg = config.load(str(tmp_path), "pybuild")
    assert (cfg.name, cfg.bridge, cfg.subnet, cfg.gateway, cfg.default) == (
        "pybuild", "pybuild0", "10.90.0.0/16", "10.90.0.1", True)
    assert config.load(str(tmp_path), "pybuild") == cfg
    assert [n.name for n in config.list_networks(str(tmp_path))] == ["pybuild"]


def test_default_network_moves_to_next_free_16_and_says_so(tmp_path):
    cfg = config.load(str(tmp_path), "pybuild")

    def taken(bridge, net):
        if net.overlaps(ipaddress.ip_network("10.90.0.0/15")):
            return f"{net} overlaps route 10.90.0.0/15 dev eth9"
        return None

    moved = config.relocate_default(cfg, taken)
    assert (moved.subnet, moved.gateway, moved.bridge) == ("10.92.0.0/16", "10.92.0.1", "pybuild2")
    assert "10.90.0.0/16 on pybuild0 is unavailable" in moved.note and "10.92.0.0/16 on pybuild2" in moved.note


def test_create_user_network_picks_free_24_and_refuses_clashes(tmp_path):
    root = str(tmp_path)
    a = config.create(root, "a", overlaps=_no_overlap)
    b = config.create(root, "b", overlaps=lambda n: "route x" if n == ipaddress.ip_network("10.150.1.0/24") else None)
    assert (a.subnet, b.subnet) == ("10.150.0.0/24", "10.150.2.0/24")
    assert a.bridge.startswith("pbr-") and len(a.bridge) <= 15 and a.bridge != b.bridge
    with pytest.raises(NetworkExists):
        config.create(root, "a", overlaps=_no_overlap)
    with pytest.raises(InvalidNetworkSpec, match=r"overlaps network subnet 10\.150\."):
        config.create(root, "c", subnet="10.150.0.0/16", overlaps=_no_overlap)
    with pytest.raises(InvalidNetworkSpec, match=r"overlaps network subnet 10\.90\.0\.0/16"):
        config.create(root, "c", subnet="10.90.3.0/24", overlaps=_no_overlap)
    with pytest.raises(InvalidNetworkSpec, match="overlaps host route 1"):
        config.create(root, "c", subnet="10.213.0.0/24", overlaps=lambda n: "route 1")
    with pytest.raises(InvalidNetworkSpec, match="not a host address"):
        config.create(root, "c", subnet="10.213.0.0/24", gateway="10.213.1.1", overlaps=_no_overlap)
    for bad in ("", "-x", "a/b", "x" * 65, "host", "bridge", "pybuild"):
        with pytest.raises(InvalidNetworkSpec):
            config.create(root, bad, overlaps=_no_overlap)
    config.remove(root, "a")
    with pytest.raises(NetworkNotFound):
        config.load(root, "a")


def test_parse_mode():
    assert (parse_mode(None).kind, parse_mode(None).target) == ("bridge", "pybuild")
    assert parse_mode("bridge").target == "pybuild"
    assert parse_mode("host").kind == "host" and parse_mode("none").kind == "none"
    assert (parse_mode("container:web").kind, parse_mode("container:web").target) == ("container", "web")
    assert parse_mode("mynet").target == "mynet"
    with pytest.raises(InvalidNetworkSpec):
        parse_mode("container:")
    with pytest.raises(InvalidNetworkSpec):
        parse_mode("bad/name")


def _ep(cid, ip):
    return ipam.Endpoint(cid, cid, str(ip), "02:00:00:00:00:00", "pbx", cid)


def test_allocation_survives_restart_and_does_not_reuse_at_once(tmp_path):
    root = str(tmp_path)
    cfg = config.create(root, "n", subnet="10.213.250.0/29", overlaps=_no_overlap)   # hosts .1-.6, .1 gateway
    got = []
    for i in range(5):
        with ipam.locked(root, cfg) as alloc:       # a fresh load each time: a "restart"
            ip = alloc.allocate()
            alloc.add(_ep(f"c{i}", ip))
            alloc.save()
            got.append(str(ip))
    assert got == [f"10.213.250.{i}" for i in range(2, 7)]
    with ipam.locked(root, cfg) as alloc:
        with pytest.raises(AddressExhausted, match="10.213.250.0/29"):
            alloc.allocate()
        alloc.pop("c1")                             # frees .3
        alloc.pop("c3")                             # frees .5
        alloc.save()
    with ipam.locked(root, cfg) as alloc:
        assert str(alloc.allocate()) == "10.213.250.3"   # wraps around after .6
        assert str(alloc.allocate()) == "10.213.250.5"
        with pytest.raises(Exception, match="already in use"):
            alloc.reserve("10.213.250.2")
        with pytest.raises(InvalidNetworkSpec):
            alloc.reserve("10.213.250.1")            # the gateway


def _grab(root, cfg, prefix, n, out):
    for i in range(n):
        with ipam.locked(root, cfg) as alloc:
            ip = alloc.allocate()
            alloc.add(_ep(f"{prefix}-{i}", ip))
            alloc.save()
    out.put(prefix)


def test_concurrent_processes_never_get_the_same_address(tmp_path):
    root = str(tmp_path)
    cfg = config.create(root, "n", subnet="10.213.251.0/24", overlaps=_no_overlap)
    q = multiprocessing.get_context("fork").Queue()
    procs = [multiprocessing.get_context("fork").Process(target=_grab, args=(root, cfg, f"p{k}", 25, q))
             for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with ipam.locked(root, cfg) as alloc:
        ips = [e.ip for e in alloc.endpoints.values()]
    assert len(ips) == 100 and len(set(ips)) == 100


def test_resolv_conf_drops_loopback_servers(tmp_path):
    host = tmp_path / "resolv.conf"
    host.write_text("# c\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch example.com\noptions ndots:2\n")
    assert files.resolv_text(str(host)) == "nameserver 10.0.0.2\nsearch example.com\noptions ndots:2\n"
    host.write_text("nameserver 127.0.0.53\n")
    assert files.resolv_text(str(host)) == "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
    assert files.resolv_text(str(host), keep_loopback=True) == "nameserver 127.0.0.53\n"
    assert files.resolv_text(str(host), dns=["1.1.1.1"], search=["a.b"]) == "nameserver 1.1.1.1\nsearch a.b\n"


def test_hosts_rewrite_keeps_the_inode(tmp_path):
    paths = files.write_all(str(tmp_path), hostname="h", hosts=files.hosts_text(("10.0.0.2", ["h", "web"])),
                            resolv="nameserver 10.0.0.1\n")
    ino = os.stat(paths["hosts"]).st_ino
    text = files.hosts_text(("10.0.0.2", ["h", "web"]), [("10.0.0.3", ["db"])], [("extra", "1.2.3.4")])
    assert files.rewrite_hosts(paths["hosts"], text)
    assert os.stat(paths["hosts"]).st_ino == ino
    content = open(paths["hosts"]).read()
    assert content.endswith("10.0.0.2\th web\n10.0.0.3\tdb\n1.2.3.4\textra\n")
    assert content.startswith("127.0.0.1\tlocalhost\n")
    assert open(paths["hostname"]).read() == "h\n"
    assert not files.rewrite_hosts(str(tmp_path / "gone"), text)


def test_listing_networks_does_not_import_pyroute2(tmp_path):
    """``pybuild network ls`` and ``--help`` stay cheap: pyroute2 is imported only when touching the kernel."""
    import subprocess
    import sys

    code = ("import sys; from runner import network; network.list_networks(sys.argv[1]); "
            "import pybuild.cmd_network; assert 'pyroute2' not in sys.modules, 'pyroute2 imported'")
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_rtnetlink_uses_pyroute2_messages_without_its_package_init():
    """The kernel side loads only pyroute2's rtnetlink message classes (~25 ms), not the package
    ``__init__`` with every netlink family and asyncio (~180 ms per ``pybuild run``), and a later
    ``from pyroute2 import IPRoute`` in the same process still gets the whole package."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from runner.network.rtnl import Rtnl\n"
        "with Rtnl() as rt:\n"
        "    lo = rt.link('lo')\n"
        "    assert lo is not None and lo.name == 'lo' and rt.link('pbnosuch0') is None\n"
        "    assert any(a[1] == '127.0.0.1' for a in rt.addresses(lo.index)), rt.addresses(lo.index)\n"
        "heavy = sorted(m for m in ('asyncio', 'pyroute2.ndb', 'pyroute2.ipdb', 'pyroute2.iproute') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
        "from pyroute2 import IPRoute, NetlinkError\n"
        "with IPRoute() as ipr:\n"
        "    assert ipr.link_lookup(ifname='lo') == [lo.index]\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_delete_link_is_hand_encoded_and_works(tmp_path):
    """``delete_link`` (all a shim's teardown sends) needs none of pyroute2's classes; it deletes a
    real link and says False for a missing one. In a private network namespace of its own."""
    import subprocess
    import sys

    code = (
        "import os, sys\n"
        "from runner import syscalls; syscalls.unshare(syscalls.CLONE_NEWNET)\n"
        "from runner.network.rtnl import Rtnl\n"
        "with Rtnl() as rt:\n"
        "    assert rt.delete_link('pbnosuch0') is False\n"
        "    assert not [m for m in sys.modules if m.startswith('pyroute2')], 'pyroute2 loaded'\n"
        "    rt.add_bridge('pbtestdel0', alias='test')\n"
        "    assert rt.link('pbtestdel0') is not None\n"
        "    assert rt.delete_link('pbtestdel0') is True and rt.link('pbtestdel0') is None\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_cli_network_commands(pybuild):
    import json

    assert pybuild("network", "create", "--internal", "--subnet", "10.213.252.0/24", "web", check=True).stdout.strip()
    dup = pybuild("network", "create", "web")
    assert dup.returncode != 0 and "pybuild: network 'web': already exists" in dup.stderr
    bad = pybuild("network", "create", "--subnet", "10.213.252.0/33", "x")
    assert bad.returncode == 2 and "subnet '10.213.252.0/33'" in bad.stderr
    ls = pybuild("network", "ls", check=True).stdout.splitlines()
    assert ls[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    assert [line.split()[1] for line in ls[1:]] == ["pybuild", "web"]
    assert pybuild("network", "ls", "--format", "{{.Name}}", check=True).stdout.split() == ["pybuild", "web"]
    ids = pybuild("network", "ls", "-q", check=True).stdout.split()
    assert len(ids) == 2 and all(re.fullmatch(r"[0-9a-f]{12}", i) for i in ids)
    assert pybuild("network", "ls", "--filter", "type=custom", "--format", "{{.Name}}").stdout.split() == ["web"]
    assert pybuild("network", "ls", "-f", "name=pyb", "-q").stdout.split() == ids[:1]
    assert pybuild("network", "ls", "-f", f"id={ids[1][:5]}", "--format", "{{.Name}}").stdout.split() == ["web"]
    assert pybuild("network", "ls", "-f", "label=x", "-q").stdout == ""
    bad = pybuild("network", "ls", "-f", "colour=red")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--filter" in bad.stderr
    doc = json.loads(pybuild("network", "inspect", "web", check=True).stdout)[0]
    assert (doc["subnet"], doc["gateway"], doc["Internal"], doc["endpoints"]) == ("10.213.252.0/24", "10.213.252.1", True, {})
    assert doc["nat"] == "no NAT: internal network" and doc["bridge_state"] == {"present": False}
    assert (doc["Name"], doc["Driver"], doc["Scope"], doc["Containers"]) == ("web", "bridge", "local", {})
    assert doc["IPAM"]["Config"] == [{"Subnet": "10.213.252.0/24", "Gateway": "10.213.252.1"}] and ids[1] == doc["Id"][:12]
    rm = pybuild("network", "rm", "web", "pybuild", "nosuch")
    assert rm.returncode != 0 and rm.stdout.split() == ["web"]
    assert "default network cannot be removed" in rm.stderr and "network 'nosuch': not found" in rm.stderr
    assert pybuild("network", "ls", "--format", "{{.Name}}", check=True).stdout.split() == ["pybuild"]


def test_same_network_name_in_two_stores_gets_two_bridges(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = config.create(str(tmp_path / "a"), "web", overlaps=_no_overlap)
    b = config.create(str(tmp_path / "b"), "web", overlaps=_no_overlap)
    assert a.bridge != b.bridge


def test_names_that_could_inject_hosts_lines_are_refused(tmp_path):
    from runner.network import setup

    base = dict(root=str(tmp_path / "r"), state_dir=str(tmp_path / "s"), container_id="c" * 64,
                etc_dir=str(tmp_path / "etc"), mode="host")
    for kw, needle in [({"hostname": "a\n1.2.3.4 bank"}, "hostname"), ({"name": "x y"}, "name"),
                       ({"aliases": ("ok", "bad\tname")}, "alias"), ({"dns": ("8.8.8.8\nsearch evil",)}, "dns"),
                       ({"dns_search": ("a b",)}, "search"), ({"extra_hosts": ("a\nb:1.2.3.4",)}, "--add-host"),
                       ({"extra_hosts": ("name:notanip",)}, "--add-host")]:
        with pytest.raises(InvalidNetworkSpec, match=needle):
            setup(**base, **kw)
    att = setup(**base, hostname="box", extra_hosts=("db:10.0.0.9",), dns=("10.0.0.53",))
    assert att.netns_path is None
    etc = dict(att.etc_files)
    hosts = open(etc["hosts"]).read()
    assert hosts.endswith("10.0.0.9\tdb\n") and open(etc["resolv.conf"]).read().startswith("nameserver 10.0.0.53\n")
