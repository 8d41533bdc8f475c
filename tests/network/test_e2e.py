"""End to end through the real ``pybuild`` command: an imported busybox image, ``run -d`` with the
shim and sandbox, the real kernel objects. Nothing is stood in for.

Tests in the host's own network namespace use a test-unique ``--internal`` network on 10.213.X.0/24
and publish on 127.0.0.1 only. Tests that need a host of their own (the default ``pybuild0`` bridge,
a route that overlaps it, outbound NAT) run the CLI inside a fresh network namespace (:class:`FreshHost`).
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .conftest import (FreshHost, Pybuild, free_port, free_subnet, http_get, nsfs_mounts, port_free,
                       shim_processes, wait_get, wait_port_free)

IMAGE = "bbnet:1"
HTTPD = ["httpd", "-f", "-p", "80", "-h", "/"]


def _links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def _our_links(pb) -> set[str]:
    """Links of this test's store still on the host: its network's bridge and its containers' veths (other
    rooms' tests make and remove links of their own meanwhile, so the whole host list is not compared)."""
    from runner.network.attach import _host_ifname

    bridge = json.loads(pb("network", "inspect", pb.net, check=True).stdout)[0]["bridge"]
    ids = set(pb("ps", "-a", "-q", "--no-trunc").stdout.split()) | pb.ids
    return _links() & ({bridge} | {_host_ifname(cid) for cid in ids})


@pytest.fixture
def pb(kernel, tmp_path, busybox_tar):
    """A store with the busybox image (EXPOSE 80/tcp 5353/udp) and a test network ``pb.net``."""
    root, state = tmp_path / "root", tmp_path / "state"
    root.mkdir(mode=0o700)
    state.mkdir(mode=0o700)
    p = Pybuild(root, state)
    p("import", "--change", "EXPOSE 80 5353/udp", str(busybox_tar), IMAGE, check=True)
    p.net = f"e2e{os.getpid()}x{os.urandom(2).hex()}"
    p.subnet = ipaddress.IPv4Network(free_subnet())
    p("network", "create", "--internal", "--subnet", str(p.subnet), p.net, check=True)
    p.ids = set()                  # every container id the test saw (removed ones included)
    yield p
    p.remove_all()


def _run_d(pb, *args: str) -> str:
    res = pb("run", "-d", *args, check=True)
    cid = res.stdout.strip().splitlines()[-1]
    if hasattr(pb, "ids"):
        pb.ids.add(cid)
    return cid


def test_run_d_publish_fetch_port_stop_rm_leaves_nothing(pb):
    """The issue's own check: ``run -d -p PORT:80 IMG httpd -f -p 80``, GET, ``port``, ``stop`` frees the port."""
    port = free_port()
    cid = _run_d(pb, "--name", "web", "--network", pb.net, "-p", f"127.0.0.1:{port}:80", IMAGE, *HTTPD)
    status, body = wait_get("127.0.0.1", port, "/etc/hostname")
    assert (status, body) == (200, cid[:12].encode() + b"\n")
    insp = pb.inspect("web")
    ip = insp["NetworkSettings"]["IPAddress"]
    assert ipaddress.IPv4Address(ip) in pb.subnet and insp["NetworkSettings"]["Gateway"] == str(pb.subnet[1])
    assert insp["NetworkSettings"]["Networks"][pb.net]["nat"] == "no NAT: internal network"
    hosts = http_get("127.0.0.1", port, "/etc/hosts")[1].decode()
    assert hosts.startswith("127.0.0.1\tlocalhost\n") and f"{ip}\t{cid[:12]} web\n" in hosts
    assert b"nameserver " in http_get("127.0.0.1", port, "/etc/resolv.conf")[1]
    assert wait_get(ip, 80, "/etc/hostname")[0] == 200        # the container address, over the bridge
    assert pb("port", "web", check=True).stdout == f"80/tcp -> 127.0.0.1:{port}\n"
    assert pb("port", "web", "80/tcp", check=True).stdout == f"127.0.0.1:{port}\n"
    missing = pb("port", "web", "81")
    assert missing.returncode == 1 and missing.stderr.strip() == "pybuild: no public port '81/tcp' published for web"
    veth = insp["NetworkSettings"]["Networks"][pb.net]["host_veth"]
    assert veth in _links()
    pb("stop", "-t", "2", "web", check=True)
    assert wait_port_free(port), "published port still bound after stop"
    assert pb("port", "web", check=True).stdout == ""            # a stopped container holds no port
    end = time.monotonic() + 10                  # the shim tears the network down as it ends, just after
    while veth in _links() and time.monotonic() < end:
        time.sleep(0.05)
    assert veth not in _links()
    # start again: a fresh attachment, the same published port
    pb("start", "web", check=True)
    assert wait_get("127.0.0.1", port, "/etc/hostname")[1] == cid[:12].encode() + b"\n"
    pb("stop", "-t", "2", "web", check=True)
    assert wait_port_free(port)
    pb("rm", "web", check=True)
    assert _our_links(pb) == set()
    assert nsfs_mounts(pb.state) == [] and not shim_processes(pb.root)
    net = json.loads(pb("network", "inspect", pb.net, check=True).stdout)[0]
    assert net["endpoints"] == {} and net["bridge_state"] == {"present": False}


def test_containers_on_a_user_network_reach_each_other_by_name(pb):
    web = _run_d(pb, "--name", "web", "--network", pb.net, IMAGE, *HTTPD)
    got = pb("run", "--rm", "--network", pb.net, IMAGE, "sh", "-c",
             "for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O - http://web/etc/hostname && exit 0; sleep 0.2; done; exit 1")
    assert got.returncode == 0, got.stderr
    assert got.stdout == web[:12] + "\n"
    # a peer that joins later is added to the running container's /etc/hosts, and dropped when it goes
    db = _run_d(pb, "--name", "db", "--network", pb.net, IMAGE, "sleep", "1000")
    db_ip = pb.inspect("db")["NetworkSettings"]["IPAddress"]
    hosts = pb("exec", "web", "cat", "/etc/hosts", check=True).stdout
    assert f"{db_ip}\t{db[:12]} db\n" in hosts
    by_name = pb("exec", "db", "wget", "-q", "-O", "-", "http://web/etc/hostname", check=True).stdout
    assert by_name == web[:12] + "\n"
    eps = json.loads(pb("network", "inspect", pb.net, check=True).stdout)[0]["endpoints"]
    assert sorted(e["name"] for e in eps.values()) == ["db", "web"]
    net = json.loads(pb("network", "inspect", pb.net, check=True).stdout)[0]
    assert sorted(c["Name"] for c in net["Containers"].values()) == ["db", "web"]
    web_doc = pb.inspect("web")
    assert net["Containers"][web]["EndpointID"] == web_doc["NetworkSettings"]["Networks"][pb.net]["EndpointID"]
    assert net["Id"] == web_doc["NetworkSettings"]["Networks"][pb.net]["NetworkID"] and web_doc["Id"] == web
    busy = pb("network", "rm", pb.net)
    assert busy.returncode != 0 and "still has containers attached: db, web" in busy.stderr
    pb("rm", "-f", "db", check=True)
    assert " db\n" not in pb("exec", "web", "cat", "/etc/hosts", check=True).stdout


def test_busy_host_port_is_a_clear_error_before_the_container_starts(pb):
    holder = socket.create_server(("127.0.0.1", 0))
    busy = holder.getsockname()[1]
    try:
        res = pb("run", "-d", "--name", "web", "--network", pb.net, "-p", f"127.0.0.1:{busy}:80", IMAGE, *HTTPD)
        assert res.returncode != 0
        assert f"host port 127.0.0.1:{busy}/tcp is already in use" in res.stderr
        assert pb("ps", "-q").stdout.strip() == ""                     # never ran
        insp = pb.inspect("web")
        assert insp["State"]["Status"] == "exited" and "already in use" in insp["State"]["Error"]
        with socket.create_connection(("127.0.0.1", busy), timeout=5):     # the holder still has it
            holder.accept()[0].close()
    finally:
        holder.close()
    end = time.monotonic() + 10
    pb.ids.add(insp["Id"])
    while _our_links(pb) and time.monotonic() < end:      # the shim released the network
        time.sleep(0.05)
    assert _our_links(pb) == set()
    pb("rm", "web", check=True)


def test_kill_9_of_the_cli_during_run_d_keeps_the_container_and_rm_frees_the_port(pb):
    """SECURITY.md case 22: SIGKILL the CLI while ``run -d -p`` waits for its shim."""
    port = free_port()

    def run_and_kill(name: str, until) -> None:
        cli = pb.popen("run", "-d", "--name", name, "--network", pb.net, "-p", f"127.0.0.1:{port}:80", IMAGE, *HTTPD)
        end = time.monotonic() + 30
        while not until(cli.pid) and cli.poll() is None and time.monotonic() < end:
            time.sleep(0.002)
        killed_while_running = cli.poll() is None
        cli.kill()
        cli.wait(10)
        assert killed_while_running, "run -d finished before it could be killed"

    def supervisors() -> list[int]:
        out = []
        for f in Path(pb.state).glob("*/shim.json"):
            try:
                out.append(json.loads(f.read_text())["pid"])
            except (OSError, ValueError):
                pass
        return out

    # killed before it handed the container to a shim (while it records it and sets up its network):
    # the container never runs; rm -f clears whatever it had set up
    run_and_kill("early", lambda cli_pid: any(Path(pb.root).glob("containers/*/config.json")))
    pb.ids.update(p.parent.name for p in Path(pb.root).glob("containers/*/config.json"))
    left = pb("ps", "-a", "-q", "--no-trunc", check=True).stdout.split()
    if left:                                   # (killed before the record was complete: nothing to list)
        pb("rm", "-f", *left, check=True)
    assert _our_links(pb) == set() and nsfs_mounts(pb.state) == [] and port_free(port)
    # killed while it waits for the shim's word: the shim carries on
    run_and_kill("web", lambda cli_pid: any(pid != cli_pid for pid in supervisors()))
    assert wait_get("127.0.0.1", port, "/etc/hostname")[0] == 200
    assert "web" in pb("ps", check=True).stdout
    pb.ids.add(pb.inspect("web")["Id"])
    pb("logs", "web", check=True)
    pb("stop", "-t", "2", "web", check=True)
    pb("rm", "web", check=True)
    assert port_free(port)
    assert _our_links(pb) == set() and not shim_processes(pb.root)


def _udp_echo_in(netns_path: str, port: int) -> tuple[socket.socket, threading.Thread]:
    """A UDP echo server inside a container's network namespace (busybox has no UDP server)."""
    from runner.network import netns

    sock = netns.run_in(netns_path, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    sock.bind(("0.0.0.0", port))
    sock.settimeout(10)

    def echo():
        try:
            while True:
                data, addr = sock.recvfrom(2048)
                sock.sendto(data.upper(), addr)
        except OSError:
            return

    t = threading.Thread(target=echo, daemon=True)
    t.start()
    return sock, t


def test_publish_all_ranges_and_udp_through_the_shim(pb):
    # -P: every EXPOSEd port (80/tcp, 5353/udp) on a free host port, recorded for `pybuild port`
    _run_d(pb, "--name", "all", "--network", pb.net, "-P", IMAGE, *HTTPD)
    lines = pb("port", "all", check=True).stdout.splitlines()
    assert sorted(line.split(" -> ")[0] for line in lines) == ["5353/udp", "80/tcp"]
    ports = {line.split(" -> ")[0]: int(line.rsplit(":", 1)[1]) for line in lines}
    assert all(p > 0 for p in ports.values())
    assert wait_get("127.0.0.1", ports["80/tcp"], "/etc/hostname")[0] == 200
    sock, t = _udp_echo_in(pb.inspect("all")["NetworkSettings"]["SandboxKey"], 5353)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            c.settimeout(5)
            for msg in (b"one", b"two"):
                c.sendto(msg, ("127.0.0.1", ports["5353/udp"]))
                assert c.recvfrom(2048) == (msg.upper(), ("127.0.0.1", ports["5353/udp"]))
    finally:
        sock.close()
        t.join(5)
    # a range, HOST-RANGE:CTR-RANGE, one proxy per port
    for _ in range(50):
        base = free_port()
        if base < 65000 and port_free(base + 1) and port_free(base + 2):
            break
    _run_d(pb, "--name", "range", "--network", pb.net, "-p", f"127.0.0.1:{base}-{base + 1}:80-81", IMAGE,
           "sh", "-c", "httpd -p 81 -h /etc; exec httpd -f -p 80 -h /")
    assert pb("port", "range", check=True).stdout == f"80/tcp -> 127.0.0.1:{base}\n81/tcp -> 127.0.0.1:{base + 1}\n"
    assert wait_get("127.0.0.1", base, "/etc/hostname")[0] == 200
    assert wait_get("127.0.0.1", base + 1, "/hostname")[0] == 200
    # HOST-RANGE:CTR, Docker's "the first free port of the range": the first two are the range's
    _run_d(pb, "--name", "pick", "--network", pb.net, "-p", f"127.0.0.1:{base}-{base + 2}:80", IMAGE, *HTTPD)
    assert pb("port", "pick", check=True).stdout == f"80/tcp -> 127.0.0.1:{base + 2}\n"
    assert wait_get("127.0.0.1", base + 2, "/etc/hostname")[0] == 200
    bad = pb("run", "-d", "--network", pb.net, "-p", "8000-8001:80-82", IMAGE, "true")
    assert bad.returncode == 125 and "host range has 2 ports, container range has 3" in bad.stderr
    pb("rm", "-f", "all", "range", "pick", check=True)
    assert wait_port_free(base) and wait_port_free(base + 1) and wait_port_free(base + 2)
    assert wait_port_free(ports["80/tcp"])
    assert wait_port_free(ports["5353/udp"], kind=socket.SOCK_DGRAM)


def test_network_modes_none_host_and_container(pb):
    none = pb("run", "--rm", "--network", "none", IMAGE, "cat", "/proc/net/dev", check=True).stdout
    assert [line.split(":")[0].strip() for line in none.splitlines()[2:]] == ["lo"]
    web = _run_d(pb, "--name", "web", "--network", pb.net, IMAGE, *HTTPD)
    veth = pb.inspect("web")["NetworkSettings"]["Networks"][pb.net]["host_veth"]
    host = pb("run", "--rm", "--network", "host", IMAGE, "cat", "/proc/net/dev", check=True).stdout
    assert veth in {line.split(":")[0].strip() for line in host.splitlines()[2:]}     # the host's own links
    side = pb("run", "--rm", "--network", "container:web", IMAGE, "sh", "-c",
              "hostname; echo $HOSTNAME; cat /etc/hostname; for i in 1 2 3 4 5 6 7 8 9 10; do"
              " wget -q -O - http://127.0.0.1/etc/hostname && exit 0; sleep 0.2; done; exit 1")
    assert side.returncode == 0, side.stderr
    assert side.stdout == f"{web[:12]}\n" * 4          # web's hostname (UTS, $HOSTNAME, file), web's loopback
    clash = pb("run", "--rm", "--network", "container:web", "--hostname", "other", IMAGE, "true")
    assert clash.returncode == 125 and "--hostname: conflicts with --network container:web" in clash.stderr
    # targets without a namespace of pybuild's making: --network none and host (their PID 1's is joined)
    for mode in ("none", "host"):
        _run_d(pb, "--name", f"t{mode}", "--network", mode, IMAGE, "sleep", "1000")
        pid = pb.inspect(f"t{mode}")["State"]["Pid"]
        joined = pb("run", "--rm", "--network", f"container:t{mode}", IMAGE, "sh", "-c",
                    "readlink /proc/self/ns/net; hostname", check=True).stdout.split()
        assert joined == [os.readlink(f"/proc/{pid}/ns/net"), pb.inspect(f"t{mode}")["Config"]["Hostname"]]
    missing = pb("run", "--rm", "--network", "container:nosuch", IMAGE, "true")
    assert missing.returncode != 0 and "container:nosuch: no running container" in missing.stderr


def test_fifty_cycles_leave_no_veth_address_proxy_or_namespace(pb):
    """``run -d -p`` + GET + (``stop`` + ``rm`` | ``rm -f``), 50 times on one host port."""
    port = free_port()
    for i in range(50):
        cid = _run_d(pb, "--init", "--network", pb.net, "-p", f"127.0.0.1:{port}:80", IMAGE, *HTTPD)
        assert wait_get("127.0.0.1", port, "/etc/hostname")[1] == cid[:12].encode() + b"\n"
        if i % 2:
            pb("rm", "-f", cid, check=True)
        else:
            pb("stop", cid, check=True)      # --init: httpd gets the SIGTERM (a bare PID 1 ignores it)
            pb("rm", cid, check=True)
        assert port_free(port), f"cycle {i}: port still bound after the container was removed"
    assert _our_links(pb) == set()                  # no veth left, and the bridge went with the last one
    assert nsfs_mounts(pb.state) == [] and os.listdir(pb.state / "netns") == []
    assert not shim_processes(pb.root)
    net = json.loads(pb("network", "inspect", pb.net, check=True).stdout)[0]
    assert net["endpoints"] == {} and net["bridge_state"] == {"present": False}
    assert not any(ipaddress.IPv4Address(a.split("/")[0]) in pb.subnet
                   for a in _host_addresses()), "an address of the test subnet is left on the host"


def _host_addresses() -> list[str]:
    from runner.network.rtnl import Rtnl

    with Rtnl() as rt:
        return [f"{a}/{p}" for _, a, p in rt.addresses()]


# ---------------------------------------------------------------------------------------------
# a host of their own: the default network, a route in its way, outbound NAT

@pytest.fixture
def fresh(kernel, tmp_path, busybox_tar):
    """A fresh host namespace and a store whose CLI runs in it."""
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


def test_default_bridge_network_in_a_fresh_host(fresh):
    cid = _run_d(fresh, IMAGE, *HTTPD)                      # --network bridge is the default
    net = fresh.inspect(cid)["NetworkSettings"]
    assert ipaddress.IPv4Address(net["IPAddress"]) in ipaddress.IPv4Network("10.90.0.0/16")
    assert net["Gateway"] == "10.90.0.1" and list(net["Networks"]) == ["pybuild"]
    doc = json.loads(fresh("network", "inspect", "pybuild", check=True).stdout)[0]
    assert (doc["bridge"], doc["subnet"], doc["note"]) == ("pybuild0", "10.90.0.0/16", None)
    assert doc["bridge_state"]["addresses"] == ["10.90.0.1/16"] and doc["bridge_state"]["up"]
    assert wait_get(net["IPAddress"], 80, "/etc/hostname", runner=fresh.host.run)[0] == 200
    fresh("rm", "-f", cid, check=True)
    assert "pybuild0" not in fresh.host.links()


def test_default_network_moves_off_a_subnet_a_host_route_uses_and_says_so(fresh):
    def occupy(ipr):
        ipr.link("add", ifname="occupied0", kind="bridge")
        idx = ipr.link_lookup(ifname="occupied0")[0]
        ipr.addr("add", index=idx, address="10.90.7.1", prefixlen=16)
        ipr.link("set", index=idx, state="up")

    fresh.host.ipr(occupy)
    res = fresh("run", "-d", IMAGE, *HTTPD, check=True)
    note = ("10.90.0.0/16 on pybuild0 is unavailable (10.90.0.0/16 overlaps route 10.90.0.0/16 dev occupied0); "
            "using 10.91.0.0/16 on pybuild1")
    assert f"pybuild: {note}" in res.stderr
    cid = res.stdout.split()[-1]
    ip = fresh.inspect(cid)["NetworkSettings"]["IPAddress"]
    assert ipaddress.IPv4Address(ip) in ipaddress.IPv4Network("10.91.0.0/16")
    doc = json.loads(fresh("network", "inspect", "pybuild", check=True).stdout)[0]
    assert (doc["bridge"], doc["subnet"], doc["gateway"], doc["note"]) == ("pybuild1", "10.91.0.0/16", "10.91.0.1", note)
    clash = fresh("network", "create", "--subnet", "10.90.8.0/24", "clash")
    assert clash.returncode == 2 and "subnet 10.90.8.0/24: overlaps host route 10.90.0.0/16 dev occupied0" in clash.stderr
    second = fresh("run", "-d", IMAGE, "sleep", "100", check=True)
    assert "unavailable" not in second.stderr                 # said once, when the bridge came up
    assert wait_get(ip, 80, "/etc/hostname", runner=fresh.host.run)[0] == 200


def _host_nat_tool() -> str | None:
    """Probed here, not through pybuild: "nft" or "iptables" when one is installed and can read the
    host's NAT rules, else None."""
    probes = {"nft": ["list", "tables"], "iptables": ["-t", "nat", "-S", "POSTROUTING"]}
    for name, args in probes.items():
        path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
        if path and subprocess.run([path, *args], capture_output=True, timeout=30).returncode == 0:
            return name
    return None


def test_outbound_nat_lets_a_container_reach_past_the_host(fresh):
    """A second namespace "upstream" (198.18.0.2, benchmark range) is reachable from the fresh host only;
    it has no route back to the bridge subnet, so a container reaches it only through masquerade."""
    from runner.network import nat, netns

    host_tool = _host_nat_tool()
    if host_tool is None:
        pytest.skip("neither nft nor iptables works here (Debian: apt-get install iptables)")
    assert nat.available() is not None, f"{host_tool} works on this host, yet pybuild's nat.available() says no"
    up_path = str(Path(fresh.host.path).with_name("upstream-netns"))
    netns.create(up_path)
    try:
        def uplink(ipr):
            ipr.link("add", ifname="uplink0", kind="veth", peer={"ifname": "uplink1"})
            fd = os.open(up_path, os.O_RDONLY)
            try:
                ipr.link("set", index=ipr.link_lookup(ifname="uplink1")[0], net_ns_fd=fd)
            finally:
                os.close(fd)
            idx = ipr.link_lookup(ifname="uplink0")[0]
            ipr.addr("add", index=idx, address="198.18.0.1", prefixlen=24)
            ipr.link("set", index=idx, state="up")

        def far_end():
            from pyroute2 import IPRoute

            with IPRoute() as ipr:
                for name in ("lo", "uplink1"):
                    ipr.link("set", index=ipr.link_lookup(ifname=name)[0], state="up")
                ipr.addr("add", index=ipr.link_lookup(ifname="uplink1")[0], address="198.18.0.2", prefixlen=24)
            return socket.create_server(("198.18.0.2", 8000))

        fresh.host.ipr(uplink)
        server = netns.run_in(up_path, far_end)
        peers = []

        def serve():
            server.settimeout(30)
            try:
                conn, addr = server.accept()
            except OSError:
                return
            with conn:
                peers.append(addr[0])
                conn.recv(4096)
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 9\r\n\r\nupstream\n")

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        fresh("network", "create", "--subnet", "10.213.200.0/24", "out", check=True)
        keeper = _run_d(fresh, "--network", "out", IMAGE, "sleep", "1000")     # holds the bridge up
        res = fresh("run", "--rm", "--network", "out", IMAGE, "wget", "-q", "-O", "-",    # (-T crashes busybox 1.35)
                    "http://198.18.0.2:8000/")
        t.join(30)
        server.close()
        assert res.returncode == 0, res.stderr
        assert res.stdout == "upstream\n" and peers == ["198.18.0.1"]       # masqueraded behind the host
        want = f"masquerade 10.213.200.0/24 via {nat.available()}"
        assert json.loads(fresh("network", "inspect", "out", check=True).stdout)[0]["nat"] == want
        bridge = fresh.inspect(keeper)["NetworkSettings"]["Networks"]["out"]["bridge"]
        assert fresh.inspect(keeper)["NetworkSettings"]["Networks"]["out"]["nat"] == want
        assert fresh.host.run(lambda: nat.status(bridge, "10.213.200.0/24").active)
        fresh("rm", "-f", keeper, check=True)                 # the last endpoint: bridge and rule go
        assert not fresh.host.run(lambda: nat.status(bridge, "10.213.200.0/24").active)
        assert json.loads(fresh("network", "inspect", "out", check=True).stdout)[0]["nat"] == \
            "no NAT rule installed (bridge is down)"
    finally:
        netns.remove(up_path)


_NO_NAT_SCENARIO = r"""
import json, os, subprocess, sys
from runner import syscalls
# a fresh host without nft/iptables: own network and mount namespaces, the sbin directories hidden
syscalls.unshare(syscalls.CLONE_NEWNS | syscalls.CLONE_NEWNET)
syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)
for d in ("/usr/sbin", "/sbin"):
    if os.path.isdir(d) and not os.path.islink(d):
        syscalls.mount("tmpfs", d, "tmpfs", 0, "size=64k")
os.environ["PATH"] = os.path.dirname(sys.executable)
pybuild, root, state, image = sys.argv[1:5]
def pb(*args):
    res = subprocess.run([pybuild, "--root", root, "--state-dir", state, *args], capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"pybuild {args}: {res.stderr}")
    return res.stdout
pb("network", "create", "--subnet", "10.213.201.0/24", "pub")
cid = pb("run", "-d", "--network", "pub", image, "sleep", "100").split()[-1]
try:
    out = {"container": json.loads(pb("inspect", cid))[0]["NetworkSettings"]["Networks"]["pub"]["nat"],
           "network": json.loads(pb("network", "inspect", "pub"))[0]["nat"]}
finally:
    pb("rm", "-f", cid)
    pb("network", "rm", "pub")
print(json.dumps(out))
"""


def test_without_nft_or_iptables_inspect_says_there_is_no_nat(kernel, tmp_path, busybox_tar):
    import subprocess

    root, state = tmp_path / "root", tmp_path / "state"
    root.mkdir(mode=0o700)
    state.mkdir(mode=0o700)
    p = Pybuild(root, state)
    p("import", str(busybox_tar), IMAGE, check=True)
    res = subprocess.run([sys.executable, "-c", _NO_NAT_SCENARIO, p.argv()[0], str(root), str(state), IMAGE],
                         capture_output=True, text=True, timeout=120, cwd=str(Path(__file__).parents[2]))
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {"container": "no NAT: nft/iptables not found",
                                      "network": "no NAT: nft/iptables not found"}
