"""Rootless networking (issue 14): the pasta/slirp4netns adapter, the rootless network namespace that
holds a user's bridges, outbound traffic, names between containers of a user network, and ``-p``.

Every body runs as root in a user namespace the test makes (:mod:`tests.network.userns`): no
privilege over the host's network namespace, as for a rootless user. Outbound traffic goes only to a
TCP server these tests run on the host's 127.0.0.1, reached through the tool's host-loopback address.
"""

from __future__ import annotations

import os
import socket
import threading
from types import SimpleNamespace

import pytest

from tests.rootless.support import host_tcp_server

from .conftest import free_subnet
from .userns import in_userns, kill_leftovers, tool_pids

TOOLS = ["pasta", "slirp4netns"]


@pytest.fixture
def host_server():
    """A TCP server on the host's 127.0.0.1 that answers ``hello`` to every connection."""
    with host_tcp_server(b"hello\n") as port:
        yield port


@pytest.fixture
def store(kernel, tmp_path, monkeypatch):
    """A store root for the body; afterwards no pasta/slirp4netns of this test may be left running."""
    root = tmp_path / "root"
    state = tmp_path / "state"
    root.mkdir()
    state.mkdir()
    yield SimpleNamespace(root=str(root), state=str(state), tmp=tmp_path)
    assert kill_leftovers(str(tmp_path)) == [], "a pasta/slirp4netns process outlived its test"


def _ended(net, timeout: float = 5.0) -> bool:
    """The tool of ``net`` has exited (release sends SIGKILL and does not wait for the exit)."""
    import time

    from runner.network import usernet

    deadline = time.monotonic() + timeout
    while usernet.alive(net):
        usernet._reap(net.pid)
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _recv_from(host: str, port: int) -> bytes:
    with socket.create_connection((host, port), timeout=5) as s:
        return s.recv(64)


def test_find_honours_the_environment(monkeypatch):
    from runner.network import usernet
    from runner.network.errors import NetworkError

    for name in TOOLS:
        monkeypatch.setenv(usernet.ENV, name)
        tool = usernet.find()
        assert tool.name == name and os.access(tool.path, os.X_OK)
        assert usernet.describe().startswith(name)
    monkeypatch.setenv(usernet.ENV, "vpnkit")
    with pytest.raises(NetworkError, match="expected one of pasta, slirp4netns"):
        usernet.find()
    monkeypatch.delenv(usernet.ENV)
    assert usernet.find().name == "pasta"           # both are installed here: pasta first


def test_active_only_in_a_user_namespace(kernel):
    from runner.network import rootless

    assert rootless.active() is False
    assert in_userns(rootless.active) is True


@pytest.mark.parametrize("tool", TOOLS)
def test_rootless_netns_up_reaches_host_loopback_and_goes(store, host_server, tool):
    def body():
        from runner.network import netns, rootless, usernet
        from runner.network.rtnl import Rtnl

        os.environ[usernet.ENV] = tool
        with rootless.session(store.root) as net:
            assert net.tool == tool and usernet.alive(net)
            assert netns.is_netns(rootless.netns_path(store.root))

            def inside():
                with Rtnl() as rt:
                    routes = rt.routes()
                with open("/proc/sys/net/ipv4/ip_forward") as f:
                    forward = f.read().strip()
                return routes, forward, _recv_from(net.host_loopback, host_server)

            routes, forward, got = netns.run_in(net.netns, inside)
        assert any(dst is None and gw for dst, _len, _oif, gw in routes), routes    # a default route
        assert forward == "1"
        assert got == b"hello\n"
        pid = net.pid
        assert rootless.release_if_idle(store.root, lambda: True)
        return pid, _ended(net), netns.is_netns(rootless.netns_path(store.root)), rootless.status(store.root)

    pid, ended, mounted, record = in_userns(body)
    assert (ended, mounted, record) == (True, False, None)
    assert pid not in tool_pids(str(store.tmp))


@pytest.mark.parametrize("tool", TOOLS)
def test_user_network_rootless_outbound_and_names(store, host_server, tool):
    subnet = free_subnet()

    def body():
        from runner import network
        from runner.network import bridge, netns, rootless, usernet

        os.environ[usernet.ENV] = tool
        cfg = network.create_network(store.root, "un", subnet=subnet)
        web = network.setup(root=store.root, state_dir=store.state, container_id="a" * 64,
                            etc_dir=str(store.tmp / "etc-web"), mode="un", name="web")
        db = network.setup(root=store.root, state_dir=store.state, container_id="b" * 64,
                           etc_dir=str(store.tmp / "etc-db"), mode="un", name="db")
        facts = {"dial": web.dial_netns, "nat": web.nat, "host_bridge": bridge.lookup(cfg.bridge)}
        facts["tool"] = rootless.status(store.root).tool
        with open(dict(web.etc_files)["hosts"]) as f:
            facts["web_hosts"] = f.read()
        # db listens on its own address; web dials it by the address its hosts file gives for "db"
        listener = netns.run_in(db.netns_path, lambda: socket.create_server((db.ip, 0)))
        served = threading.Thread(target=lambda: listener.accept()[0].sendall(b"db\n"), daemon=True)
        served.start()
        by_name = next(line.split()[0] for line in facts["web_hosts"].splitlines() if " db" in f" {line} "
                       or "\tdb" in line)
        facts["web_to_db"] = netns.run_in(web.netns_path, lambda: _recv_from(by_name, listener.getsockname()[1]))
        facts["db_ip"] = db.ip
        host = rootless.status(store.root).host_loopback
        facts["web_out"] = netns.run_in(web.netns_path, lambda: _recv_from(host, host_server))
        network.teardown(root=store.root, state_dir=store.state, container_id="a" * 64)
        facts["kept_for_db"] = rootless.status(store.root) is not None
        network.teardown(root=store.root, state_dir=store.state, container_id="b" * 64)
        facts["released"] = rootless.status(store.root) is None and \
            not netns.is_netns(rootless.netns_path(store.root))
        network.remove_network(store.root, "un")
        return facts

    facts = in_userns(body)
    assert facts["tool"] == tool
    assert facts["dial"].endswith("/networks/.rootless/ns")
    assert facts["host_bridge"] is None, "the bridge must live in the rootless namespace, not the host's"
    if tool == "pasta":
        assert facts["nat"] == "no NAT: outbound through pasta"
    else:
        assert facts["nat"].startswith("masquerade"), facts["nat"]
    assert facts["web_to_db"] == b"db\n"
    assert facts["web_out"] == b"hello\n"
    assert facts["kept_for_db"] and facts["released"]


@pytest.mark.parametrize("tool", TOOLS)
def test_published_port_dials_from_the_rootless_namespace(store, tool):
    subnet = free_subnet()

    def body():
        from runner import network
        from runner.network import netns, usernet

        os.environ[usernet.ENV] = tool
        network.create_network(store.root, "pn", subnet=subnet)
        att = network.setup(root=store.root, state_dir=store.state, container_id="c" * 64,
                            etc_dir=str(store.tmp / "etc"), mode="pn", name="web")
        server = netns.run_in(att.netns_path, lambda: socket.create_server((att.ip, 8080)))

        def serve():
            conn, _ = server.accept()
            with conn:
                conn.sendall(b"HTTP/1.0 200 OK\r\n\r\nfrom the container " + conn.recv(100).split(b" ")[1])

        threading.Thread(target=serve, daemon=True).start()
        client = socket.socket()            # made in the host's namespace, before this process leaves it
        here = os.stat("/proc/thread-self/ns/net").st_ino
        ports = ({"host_ip": "127.0.0.1", "host_port": 0, "container_port": 8080, "protocol": "tcp"},)
        [proxy] = network.start_proxies(SimpleNamespace(name="web", ports=ports, network=att.to_dict()))
        proxy.start()
        port = proxy.mappings[0].host_port
        moved = os.stat("/proc/thread-self/ns/net").st_ino == os.stat(att.dial_netns).st_ino != here
        client.settimeout(5)
        client.connect(("127.0.0.1", port))
        client.sendall(b"GET /hello HTTP/1.0\r\n\r\n")
        reply = b""
        while chunk := client.recv(4096):
            reply += chunk
        client.close()
        proxy.close()
        network.teardown(root=store.root, state_dir=store.state, container_id="c" * 64)
        return moved, reply

    moved, reply = in_userns(body)
    assert moved, "the proxy's thread should have joined the rootless namespace to dial from there"
    assert reply == b"HTTP/1.0 200 OK\r\n\r\nfrom the container /hello"


@pytest.mark.parametrize("tool", TOOLS)
def test_session_restarts_a_dead_tool_and_remakes_a_lost_namespace(store, tool):
    def body():
        import signal
        import time

        from runner import syscalls
        from runner.network import netns, rootless, usernet

        os.environ[usernet.ENV] = tool
        with rootless.session(store.root) as first:
            pass
        os.kill(first.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while usernet.alive(first) and time.monotonic() < deadline:
            usernet._reap(first.pid)
            time.sleep(0.01)
        with rootless.session(store.root) as second:
            pass
        # the bind mount lost (a new mount namespace) while the tool still runs: it is stopped, all remade
        syscalls.umount2(rootless.netns_path(store.root), syscalls.MNT_DETACH)
        with rootless.session(store.root) as third:
            pass
        out = (usernet.alive(first), second.pid != first.pid, usernet.alive(second), usernet.alive(third),
               netns.is_netns(third.netns))
        rootless.release_if_idle(store.root, lambda: True)
        return out

    assert in_userns(body) == (False, True, False, True, True)


def test_reaper_stops_a_tool_left_without_containers(store):
    """A pybuild killed between starting the tool and recording its container leaves the tool running:
    the next command's ``reap_abandoned`` finds no container in the store and stops it."""
    def body():
        from runner.network import netns, rootless, usernet
        from runner.reaping import reap_abandoned
        from runner.state import ContainerStore

        with rootless.session(store.root) as net:
            pass
        running = usernet.alive(net)
        reap_abandoned(ContainerStore(store.root, store.state))
        return running, _ended(net), rootless.status(store.root), netns.is_netns(rootless.netns_path(store.root))

    assert in_userns(body) == (True, True, None, False)


def test_connect_inspect_and_remove_in_the_rootless_namespace(store):
    """``network connect``/``disconnect``, ``network inspect`` and ``network rm`` find the bridges in
    the rootless namespace (pasta: no NAT there), and the namespace goes with the last endpoint."""
    nets = (free_subnet(), free_subnet())

    def body():
        from runner import network
        from runner.network import multi, netns, rootless, usernet

        os.environ[usernet.ENV] = "pasta"
        network.create_network(store.root, "one", subnet=nets[0])
        network.create_network(store.root, "two", subnet=nets[1])
        att = network.setup(root=store.root, state_dir=store.state, container_id="d" * 64,
                            etc_dir=str(store.tmp / "etc"), mode="one", name="c")
        extra = multi.connect(root=store.root, container_id="d" * 64, netns_path=att.netns_path,
                              etc_dir=str(store.tmp / "etc"), network="two", ifname="eth1", name="c", hostname="c")
        inspected = network.inspect_network(store.root, "two")
        multi.disconnect(root=store.root, container_id="d" * 64, network="two")
        after = network.inspect_network(store.root, "two")
        network.remove_network(store.root, "two")
        network.teardown(root=store.root, state_dir=store.state, container_id="d" * 64)
        gone = rootless.status(store.root) is None and not netns.is_netns(rootless.netns_path(store.root))
        idle = network.inspect_network(store.root, "one")
        network.remove_network(store.root, "one")
        return extra.ip, inspected, after, gone, idle

    ip, inspected, after, gone, idle = in_userns(body)
    assert inspected["bridge_state"]["present"] and inspected["bridge_state"]["owned"]
    assert inspected["nat"] == "no NAT: outbound through pasta"
    assert [e["ip"].split("/")[0] for e in inspected["endpoints"].values()] == [ip]
    assert after["bridge_state"] == {"present": False} and after["endpoints"] == {}
    assert gone and idle["bridge_state"] == {"present": False}


@pytest.mark.parametrize("tool", TOOLS)
def test_a_tool_that_cannot_attach_is_one_clear_error(store, tool):
    """Given a path that is no network namespace, each tool fails to come up: a NetworkError naming
    the tool and its last message, and nothing left running."""
    from runner.network import usernet
    from runner.network.errors import NetworkError

    bogus = store.tmp / "not-a-netns"
    bogus.write_text("")
    with pytest.raises(NetworkError, match=rf"^rootless networking: {tool} .+: .+") as err:
        usernet.start(usernet.find(tool), str(bogus), str(store.tmp / "tool.log"))
    assert "\n" not in str(err.value)


def test_published_udp_port_dials_from_the_rootless_namespace(store):
    """``-p 127.0.0.1::53/udp``: a datagram to the host port reaches a UDP server inside the container
    and its answer comes back from the published port."""
    subnet = free_subnet()

    def body():
        from runner import network
        from runner.network import netns

        network.create_network(store.root, "un", subnet=subnet)
        att = network.setup(root=store.root, state_dir=store.state, container_id="f" * 64,
                            etc_dir=str(store.tmp / "etc"), mode="un", name="dns")

        def udp_server():
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((att.ip, 5353))
            return s

        server = netns.run_in(att.netns_path, udp_server)

        def echo():
            data, peer = server.recvfrom(100)
            server.sendto(b"answer to " + data, peer)

        threading.Thread(target=echo, daemon=True).start()
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)     # in the host's namespace
        ports = ({"host_ip": "127.0.0.1", "host_port": 0, "container_port": 5353, "protocol": "udp"},)
        [proxy] = network.start_proxies(SimpleNamespace(name="dns", ports=ports, network=att.to_dict()))
        proxy.start()
        client.settimeout(5)
        client.sendto(b"query", ("127.0.0.1", proxy.mappings[0].host_port))
        reply, source = client.recvfrom(100)
        proxy.close()
        network.teardown(root=store.root, state_dir=store.state, container_id="f" * 64)
        return reply, source[1] == proxy.mappings[0].host_port

    assert in_userns(body) == (b"answer to query", True)
