"""Real namespaces, veths and bridges: reachability, publishing, names, teardown.

Everything runs on a test-unique internal network on 10.213.X.0/24 and on loopback.
"""

from __future__ import annotations

import hashlib
import ipaddress
import http.client
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from runner import network
from runner.network import bridge, netns
from runner.network.bridge import lookup
from runner.ocispec import Namespace

from .conftest import BUSYBOX, FreshHost, free_port, free_subnet


def _links() -> set[str]:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        return {link.get("IFLA_IFNAME") for link in ipr.get_links()}


def _nsfs_mounts(under: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(under)]


def _httpd(att, docroot, port=80) -> subprocess.Popen:
    if not os.path.exists(BUSYBOX):
        pytest.skip("busybox-static is not installed")
    proc = subprocess.Popen([BUSYBOX, "httpd", "-f", "-p", str(port), "-h", str(docroot)],
                            preexec_fn=lambda: netns.enter(att.netns_path))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            socket.create_connection((att.ip, port), timeout=0.5).close()
            return proc
        except OSError:
            time.sleep(0.02)
    proc.kill()
    raise AssertionError("httpd in the namespace did not come up")


def _get(host, port, path="/") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def _stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait(5)


def test_namespace_is_wired_and_reachable_from_host(netenv):
    att = netenv.attach("a" * 64, name="web")
    assert att.mode == "bridge" and att.netns_path == os.path.join(netenv.state, "netns", "a" * 64)
    assert netns.is_netns(att.netns_path)
    assert att.spec_namespace() == Namespace("network", att.netns_path)
    assert att.ip == str(netenv.cfg.network.network_address + 2) and att.gateway == netenv.cfg.gateway

    def inside():
        from pyroute2 import IPRoute

        with IPRoute() as ipr:
            links = {l.get("IFLA_IFNAME"): l for l in ipr.get_links()}
            addrs = [(a.get("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(family=2, label="eth0")]
            routes = [r.get("RTA_GATEWAY") for r in ipr.get_routes(family=2, table=254) if r["dst_len"] == 0]
        return ({n: (l["flags"] & 1, l.get("IFLA_ADDRESS")) for n, l in links.items()}, addrs, routes)

    links, addrs, routes = netns.run_in(att.netns_path, inside)
    assert set(links) == {"lo", "eth0"}
    assert links["lo"][0] and links["eth0"][0]
    assert links["eth0"][1] == att.mac
    assert addrs == [(att.ip, 24)] and routes == [att.gateway]
    br = lookup(att.bridge)
    assert br is not None and br.up and f"{att.gateway}/24" in br.addresses
    assert att.host_veth in _links()

    server = netns.run_in(att.netns_path, lambda: socket.create_server(("0.0.0.0", 7777)))
    try:
        c = socket.create_connection((att.ip, 7777), timeout=5)
        s, peer = server.accept()
        c.sendall(b"ping")
        assert s.recv(4) == b"ping" and peer[0] == att.gateway
        s.close()
        c.close()
    finally:
        server.close()
    hosts = open(dict(att.etc_files)["hosts"]).read()
    assert f"{att.ip}\t{'a' * 12} web\n" in hosts
    assert open(dict(att.etc_files)["hostname"]).read() == "a" * 12 + "\n"
    assert "nameserver" in open(dict(att.etc_files)["resolv.conf"]).read()


def test_published_port_serves_page_from_httpd(netenv, tmp_path):
    att = netenv.attach("b" * 64)
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("hello from the container\n")
    blob = os.urandom(8 << 20)
    (www / "big.bin").write_bytes(blob)
    httpd = _httpd(att, www)
    try:
        with network.PortProxy.bind(network.parse_publish("127.0.0.1::80"), att.ip) as proxy:
            proxy.start()
            port = proxy.mappings[0].host_port
            assert port > 0
            assert _get("127.0.0.1", port) == (200, b"hello from the container\n")
            status, body = _get("127.0.0.1", port, "/big.bin")
            assert status == 200 and hashlib.sha256(body).digest() == hashlib.sha256(blob).digest()
            # concurrent clients
            results = []
            ts = [threading.Thread(target=lambda: results.append(_get("127.0.0.1", port)[0])) for _ in range(8)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(30)
            assert results == [200] * 8
            fds = len(os.listdir("/proc/self/fd"))
            for _ in range(50):
                assert _get("127.0.0.1", port)[0] == 200
            time.sleep(0.2)
            assert len(os.listdir("/proc/self/fd")) <= fds      # flows close their sockets and pipes
        with socket.socket() as s:   # released at close(): another server can bind it
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            s.listen()
    finally:
        _stop(httpd)


def test_published_udp_port_round_trips(netenv):
    att = netenv.attach("c" * 64)
    server = netns.run_in(att.netns_path, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    server.bind((att.ip, 5353))
    server.settimeout(5)

    def echo():
        for _ in range(3):
            data, addr = server.recvfrom(2048)
            server.sendto(data.upper(), addr)

    t = threading.Thread(target=echo, daemon=True)
    t.start()
    try:
        with network.PortProxy.bind(network.parse_publish("127.0.0.1::5353/udp"), att.ip) as proxy:
            proxy.start()
            port = proxy.mappings[0].host_port
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
                c.settimeout(5)
                for msg in (b"one", b"two", b"three"):
                    c.sendto(msg, ("127.0.0.1", port))
                    assert c.recvfrom(2048) == (msg.upper(), ("127.0.0.1", port))
    finally:
        t.join(5)
        server.close()


def test_busy_host_port_is_a_clear_error_and_nothing_stays_bound(netenv):
    att = netenv.attach("d" * 64)
    holder = socket.create_server(("127.0.0.1", 0))
    busy = holder.getsockname()[1]
    free = free_port()
    try:
        with pytest.raises(network.PortInUse) as err:
            network.PortProxy.bind(network.parse_publish(f"127.0.0.1:{free}:80")
                                   + network.parse_publish(f"127.0.0.1:{busy}:81"), att.ip)
        assert str(err.value) == f"host port 127.0.0.1:{busy}/tcp is already in use"
        with socket.socket() as s:   # the first port of the failed bind was released again
            s.bind(("127.0.0.1", free))
    finally:
        holder.close()


def _resolve_and_fetch(att, etc_hosts: str, name: str, port: int) -> subprocess.CompletedProcess:
    """In a child: join the container's netns, bind-mount its hosts file over /etc/hosts in a private
    mount namespace (as the sandbox does), resolve ``name`` with the C library and fetch a page."""
    code = f"""
import ctypes, os, socket, sys, urllib.request
libc = ctypes.CDLL(None, use_errno=True)
assert libc.unshare(0x00020000) == 0                       # CLONE_NEWNS
assert libc.mount(b"none", b"/", None, 0x4000 | 0x40000, None) == 0   # MS_REC|MS_PRIVATE
assert libc.mount({etc_hosts.encode()!r}, b"/etc/hosts", None, 4096, None) == 0
fd = os.open({att.netns_path!r}, os.O_RDONLY)
assert libc.setns(fd, 0x40000000) == 0
ip = socket.gethostbyname({name!r})
body = urllib.request.urlopen(f"http://{name}:{port}/", timeout=5).read()
print(ip, body.decode().strip())
"""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)


def test_containers_on_a_user_network_reach_each_other_by_name(netenv, tmp_path):
    web = netenv.attach("e" * 64, name="web")
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("web says hi\n")
    httpd = _httpd(web, www)
    try:
        db = netenv.attach("f" * 64, name="db", aliases=("database",))
        web_hosts_inode = os.stat(dict(web.etc_files)["hosts"]).st_ino
        res = _resolve_and_fetch(db, dict(db.etc_files)["hosts"], "web", 80)
        assert res.returncode == 0, res.stderr
        assert res.stdout.split() == [web.ip, "web", "says", "hi"]
        # web's hosts file learnt about db in place (same inode: bind mounts keep seeing it)
        hosts = open(dict(web.etc_files)["hosts"]).read()
        assert f"{db.ip}\t{'f' * 12} db database\n" in hosts
        assert os.stat(dict(web.etc_files)["hosts"]).st_ino == web_hosts_inode
        netenv.detach(db.container_id)
        assert "db" not in open(dict(web.etc_files)["hosts"]).read().split()
    finally:
        _stop(httpd)


def test_network_modes_none_host_container(netenv, tmp_path):
    none = netenv.attach("1" * 64, mode="none")
    assert none.ip is None and netns.is_netns(none.netns_path)

    def links():
        from pyroute2 import IPRoute

        with IPRoute() as ipr:
            return {l.get("IFLA_IFNAME"): bool(l["flags"] & 1) for l in ipr.get_links()}

    assert netns.run_in(none.netns_path, links) == {"lo": True}
    host = netenv.attach("2" * 64, mode="host", hostname="hosty")
    assert host.netns_path is None and host.spec_namespace() is None
    assert open(dict(host.etc_files)["hostname"]).read() == "hosty\n"
    web = netenv.attach("3" * 64, name="web")
    side = netenv.attach("4" * 64, mode="container:web")
    assert (side.mode, side.netns_path, side.ip) == ("container", web.netns_path, web.ip)
    with pytest.raises(network.NetworkNotFound):
        netenv.attach("5" * 64, mode="container:nosuch")
    with pytest.raises(network.NetworkNotFound):
        netenv.attach("6" * 64, mode="nosuchnet")
    netenv.detach("1" * 64)
    assert not os.path.exists(none.netns_path)


def test_fifty_cycles_leave_no_veth_address_proxy_or_netns(netenv, tmp_path):
    before = _links()
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("cycle\n")
    port = free_port()
    for i in range(50):
        cid = f"{i:064x}"
        att = netenv.attach(cid, name=f"c{i}")
        httpd = _httpd(att, www)
        try:
            with network.PortProxy.bind(network.parse_publish(f"127.0.0.1:{port}:80"), att.ip) as proxy:
                proxy.start()
                assert _get("127.0.0.1", port) == (200, b"cycle\n")
        finally:
            _stop(httpd)
        netenv.detach(cid)
        assert not os.path.exists(att.netns_path)
        assert att.host_veth not in _links()
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            s.listen()
    assert _links() == before                      # bridge went with its last endpoint, no veths left
    assert _nsfs_mounts(netenv.state) == []
    assert os.listdir(os.path.join(netenv.state, "netns")) == []
    assert network.inspect_network(netenv.root, netenv.name)["endpoints"] == {}


def test_teardown_is_idempotent_and_cleans_a_half_done_setup(netenv):
    cid = "9" * 64
    att = netenv.attach(cid)
    netenv.detach(cid)
    netenv.detach(cid)
    # a crash after the netns and veth were made but before the endpoint was recorded
    from runner.network import attach as attach_mod, veth

    host_if = attach_mod._host_ifname(cid)
    from runner.network import bridge

    bridge.ensure(att.bridge, att.gateway, 24, bridge.owner_tag(netenv.root, netenv.name))
    netns.create(att.netns_path)
    veth.attach(veth.VethPlan(host_if, att.bridge, att.netns_path, att.ip, 24, att.gateway, att.mac))
    netenv.detach(cid)
    assert host_if not in _links() and not os.path.exists(att.netns_path)
    bridge.delete(att.bridge, bridge.owner_tag(netenv.root, netenv.name))


def test_network_rm_refused_while_attached(netenv):
    netenv.attach("7" * 64, name="busy")
    with pytest.raises(network.NetworkInUse, match="busy"):
        network.remove_network(netenv.root, netenv.name)


def test_default_network_two_stores_get_separate_bridges(kernel, tmp_path):
    """The default network (pybuild0, 10.90.0.0/16) is per store; a second store on the same host whose
    bridge or subnet is taken moves to the next free /16 and bridge and says so, and both bridges (and
    their NAT rules, where nft/iptables exists) go away with their last container. In a fresh host
    namespace: the host's own iptables and ip_forward are not touched."""
    from runner.network import nat

    host = FreshHost(str(tmp_path / "host-netns"))
    roots = [(str(tmp_path / f"root{k}"), str(tmp_path / f"state{k}")) for k in range(2)]
    for root, state in roots:
        os.makedirs(root)
        os.makedirs(state)

    def scenario():
        atts = []
        try:
            for k, (root, state) in enumerate(roots):
                atts.append(network.setup(root=root, state_dir=state, container_id=f"{k}" * 64,
                                          etc_dir=str(tmp_path / f"etc{k}")))
            a, b = atts
            assert a.network == b.network == "pybuild"
            assert (a.bridge, b.bridge) == ("pybuild0", "pybuild1")
            assert ipaddress.IPv4Address(a.ip) in ipaddress.IPv4Network("10.90.0.0/16")
            assert ipaddress.IPv4Address(b.ip) in ipaddress.IPv4Network("10.91.0.0/16")
            assert not a.notes
            assert b.notes == ("10.90.0.0/16 on pybuild0 is unavailable (bridge pybuild0 belongs to "
                               f"{bridge.owner_tag(roots[0][0], 'pybuild')}); using 10.91.0.0/16 on pybuild1",)
            want = [f"masquerade {n} via {nat.available()}" if nat.available() else nat.NO_NAT
                    for n in ("10.90.0.0/16", "10.91.0.0/16")]
            assert [a.nat, b.nat] == want
            assert all(lookup(att.bridge) is not None for att in atts)
        finally:
            for k, (root, state) in enumerate(roots):
                network.teardown(root=root, state_dir=state, container_id=f"{k}" * 64)
        return [(lookup(att.bridge), nat.status(att.bridge, n).active)
                for att, n in zip(atts, ("10.90.0.0/16", "10.91.0.0/16"))]

    try:
        assert host.run(scenario) == [(None, False), (None, False)]
    finally:
        host.close()


def _attach_many(root, state, tmp, name, prefix, n, q):
    try:
        ips = []
        for i in range(n):
            att = network.setup(root=root, state_dir=state, container_id=f"{prefix}{i:062x}",
                                etc_dir=f"{tmp}/etc-{prefix}{i}", mode=name, name=f"{prefix}{i}")
            ips.append(att.ip)
        q.put(("ok", ips))
    except BaseException as exc:  # reported to the parent, which fails the test
        q.put(("error", repr(exc)))


def test_parallel_processes_attach_and_detach_cleanly(netenv, tmp_path):
    import multiprocessing

    before = _links()
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_attach_many, args=(netenv.root, netenv.state, str(tmp_path), netenv.name,
                                                     f"p{k}", 5, q)) for k in range(4)]
    for p in procs:
        p.start()
    results = [q.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    assert all(kind == "ok" for kind, _ in results), results
    ips = [ip for _, batch in results for ip in batch]
    assert len(ips) == 20 and len(set(ips)) == 20
    ids = [f"p{k}{i:062x}" for k in range(4) for i in range(5)]
    netenv.ids.extend(ids)
    eps = network.inspect_network(netenv.root, netenv.name)["endpoints"]
    assert sorted(eps) == sorted(ids)
    hosts = open(tmp_path / "etc-p00" / "hosts").read()
    assert all(f"\tp{k}{i}\n" in hosts or f" p{k}{i}\n" in hosts for k in range(4) for i in range(5))
    # tear down in parallel too
    tprocs = [ctx.Process(target=lambda cid=cid: network.teardown(root=netenv.root, state_dir=netenv.state,
                                                                   container_id=cid)) for cid in ids]
    for p in tprocs:
        p.start()
    for p in tprocs:
        p.join(60)
        assert p.exitcode == 0
    assert _links() == before
    assert _nsfs_mounts(netenv.state) == []


def test_proxy_in_a_foreign_selector_survives_refused_and_reset_peers(netenv, tmp_path):
    """As the shim runs it: registered into the caller's selector, every key.data a callable."""
    import selectors

    att = netenv.attach("a1" * 32)
    sel = selectors.DefaultSelector()
    proxy = network.PortProxy.bind(network.parse_publish("127.0.0.1::80") + network.parse_publish("127.0.0.1::81"),
                                   att.ip)
    proxy.register(sel)
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            for key, mask in sel.select(timeout=0.05):
                key.data(key.fileobj, mask)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    p80, p81 = (m.host_port for m in proxy.mappings)
    try:
        # nothing listens in the container yet: the client sees the connection closed, nothing crashes
        with socket.create_connection(("127.0.0.1", p80), timeout=5) as c:
            assert c.recv(10) == b""
        www = tmp_path / "www"
        www.mkdir()
        (www / "index.html").write_text("still here\n")
        httpd = _httpd(att, www)
        try:
            # a client that resets mid-transfer
            s = socket.create_connection(("127.0.0.1", p80), timeout=5)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.sendall(b"GET / HTTP/1.0\r\n")
            s.close()
            for _ in range(3):
                assert _get("127.0.0.1", p80) == (200, b"still here\n")
            with socket.create_connection(("127.0.0.1", p81), timeout=5) as c:   # refused port 81
                assert c.recv(10) == b""
        finally:
            _stop(httpd)
    finally:
        stop.set()
        t.join(5)
        proxy.close()
        sel.close()
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", p80))


def test_publish_on_ipv6_loopback_forwards_to_the_ipv4_container(netenv):
    try:
        socket.create_server(("::1", 0), family=socket.AF_INET6).close()
    except OSError:
        pytest.skip("no IPv6 loopback on this host")
    att = netenv.attach("b1" * 32)
    server = netns.run_in(att.netns_path, lambda: socket.create_server(("0.0.0.0", 8000)))
    try:
        with network.PortProxy.bind(network.parse_publish("[::1]::8000"), att.ip) as proxy:
            proxy.start()
            port = proxy.mappings[0].host_port
            assert proxy.mappings[0].host_ip == "::1"
            with socket.create_connection(("::1", port), timeout=5) as c:
                s, peer = server.accept()
                with s:
                    c.sendall(b"v6")
                    assert s.recv(2) == b"v6" and peer[0] == att.gateway
    finally:
        server.close()


def test_idle_udp_flows_are_dropped(netenv):
    att = netenv.attach("c1" * 32)
    server = netns.run_in(att.netns_path, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    server.bind((att.ip, 5300))
    server.settimeout(5)
    try:
        with network.PortProxy.bind(network.parse_publish("127.0.0.1::5300/udp"), att.ip, udp_timeout=0.2) as proxy:
            proxy.start()
            port = proxy.mappings[0].host_port
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
                c.sendto(b"a", ("127.0.0.1", port))
                _, first = server.recvfrom(16)
                assert len(proxy._udp) == 1
                deadline = time.monotonic() + 5
                while proxy._udp and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert not proxy._udp, "idle UDP flow was not dropped"
                c.sendto(b"b", ("127.0.0.1", port))      # a new flow, from a new upstream socket
                _, second = server.recvfrom(16)
                assert second != first
    finally:
        server.close()
