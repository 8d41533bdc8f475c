"""Rootless networking end to end (issue 14), as a real non-root user: ``run -d -p`` reached with HTTP
requests on the host's loopback and on its own address, outbound traffic to a server on the host's
127.0.0.1 (``--add-host NAME:host-gateway``), names on a user network, ``compose up``/``down``; once with
pasta and once with slirp4netns. Afterwards no tool process or rootless namespace is left.

A user without subordinate ranges (``pbrn-single``, the single-id mapping) reaches out and publishes too.
The users (``pbrn-a``, ``pbrn-single``) are this module's own, so it can run while ``test_rootless.py``
(whose fixtures delete and remake their users) runs; they run the rootless tests' one installed pybuild.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.network.userns import tool_pids
from tests.rootless.support import BASE, host_tcp_server, make_user, remove_users

NAME = "pbrn-a"
WEB = ["sh", "-c", "echo hello-from-$(hostname) > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"]


@pytest.fixture(scope="module")
def user(busybox_tar, rootless_venv):
    """``pbrn-a`` with subordinate ranges, pybuild installed for it, ``busybox:latest`` in its store."""
    if not os.access("/dev/net/tun", os.R_OK | os.W_OK) or os.stat("/dev/net/tun").st_mode & 0o006 != 0o006:
        pytest.fail("/dev/net/tun must be usable by users (scripts/install.sh makes it 0666)")
    u = make_user(NAME, "3000000-3065535")
    tar = BASE / "busybox-net.tar"
    try:
        shutil.copy(busybox_tar, tar)
        os.chmod(tar, 0o644)
        u.run(rootless_venv, "import", str(tar), "busybox:latest", check=True)
        yield u, rootless_venv
    finally:
        remove_users([u])
        tar.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def single_user(user):
    """``pbrn-single``: no subordinate ranges (the single-id mapping), the same installed pybuild."""
    u = make_user("pbrn-single", None)
    try:
        u.run(user[1], "import", str(BASE / "busybox-net.tar"), "busybox:latest", check=True)
        yield u, user[1]
    finally:
        remove_users([u])


def _pb(user, *args, tool: str | None = None, check: bool = False, timeout: float = 120):
    u, pybuild = user
    env = {"PYBUILD_ROOTLESS_NET": tool} if tool else None
    return u.run(pybuild, *args, env=env, check=check, timeout=timeout)


def _tools_of(user, settle: float = 5.0) -> list[int]:
    """pasta/slirp4netns processes attached to the user's store (their command line names its home),
    once none is left or after ``settle`` seconds (a released tool gets SIGKILL, its exit is not waited for)."""
    deadline = time.monotonic() + settle
    while (found := tool_pids(user[0].home)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _host_address() -> str:
    """One of this host's own non-loopback IPv4 addresses (traffic to it stays on this machine)."""
    from runner.network.rtnl import Rtnl

    with Rtnl() as rt:
        names = {link.index: link.name for link in rt.links()}
        for index, addr, _plen in rt.addresses():
            if not addr.startswith("127.") and names.get(index, "").startswith(("eth", "en")):
                return addr
    pytest.fail("no non-loopback address on this host")


def _get(url: str, timeout: float = 20.0) -> tuple[int, str]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.status, r.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture
def host_server():
    """A TCP server on the host's 127.0.0.1 answering ``hello-host`` over HTTP/1.0."""
    with host_tcp_server(b"HTTP/1.0 200 OK\r\nContent-Length: 11\r\n\r\nhello-host\n", read_request=True) as port:
        yield port


@pytest.mark.parametrize("tool", ["pasta", "slirp4netns"])
def test_publish_and_outbound(user, host_server, tool):
    lo_port, addr_port = _free_port(), _free_port()
    addr = _host_address()
    run = _pb(user, "run", "-d", "--name", f"web-{tool}", "-p", f"127.0.0.1:{lo_port}:8080",
              "-p", f"{addr}:{addr_port}:8080", "busybox:latest", *WEB, tool=tool)
    assert run.returncode == 0, run.stderr
    try:
        cid = run.stdout.strip()
        assert _get(f"http://127.0.0.1:{lo_port}/index.html") == (200, f"hello-from-{cid[:12]}\n")
        assert _get(f"http://{addr}:{addr_port}/index.html") == (200, f"hello-from-{cid[:12]}\n")
        info = json.loads(_pb(user, "inspect", f"web-{tool}", check=True).stdout)[0]
        net = info["NetworkSettings"]
        assert net["IPAddress"] and net["Ports"]["8080/tcp"][0]["HostPort"] == str(lo_port)
        assert len(tool_pids(user[0].home)) == 1
        out = _pb(user, "run", "--rm", "--add-host", "hg:host-gateway", "busybox:latest",
                  "wget", "-q", "-O", "-", f"http://hg:{host_server}/", tool=tool)
        assert (out.returncode, out.stdout) == (0, "hello-host\n"), out.stderr
        described = _pb(user, "info", "--format", "{{json .}}", check=True).stdout
        assert json.loads(described)["RootlessNetwork"].startswith(f"{tool} (")
        assert "running as pid" in json.loads(described)["RootlessNetwork"]
    finally:
        _pb(user, "rm", "-f", f"web-{tool}")
    assert _tools_of(user) == [], "the tool must stop with the last container"
    root = Path(user[0].home) / ".local/share/pybuild/networks/.rootless"
    assert not (root / "usernet.json").exists()


def test_names_on_a_user_network_none_and_host(user):
    _pb(user, "network", "create", "un", check=True)
    try:
        web = _pb(user, "run", "-d", "--name", "web", "--network", "un", "busybox:latest", *WEB, check=True)
        got = _pb(user, "run", "--rm", "--network", "un", "busybox:latest", "sh", "-c",
                  "for i in $(seq 50); do wget -q -O - http://web:8080/index.html && exit 0; sleep 0.2; done; exit 1")
        assert (got.returncode, got.stdout) == (0, f"hello-from-{web.stdout.strip()[:12]}\n"), got.stderr
        none = _pb(user, "run", "--rm", "--network", "none", "busybox:latest", "cat", "/proc/net/dev", check=True)
        assert "lo:" in none.stdout and "eth0" not in none.stdout
    finally:
        _pb(user, "rm", "-f", "web")
        _pb(user, "network", "rm", "un")
    assert _tools_of(user) == []


COMPOSE = """\
services:
  web:
    image: busybox:latest
    command: ["sh", "-c", "echo web-says-hi > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"]
    ports: ["127.0.0.1:{port}:8080"]
  client:
    image: busybox:latest
    command: ["sleep", "1000"]
    init: true
"""


def test_compose_up_and_down(user):
    u, _ = user
    port = _free_port()
    project = Path(u.home) / "proj"
    u.run("mkdir", "-p", str(project), check=True)
    (project / "compose.yaml").write_text(COMPOSE.format(port=port))
    os.chown(project / "compose.yaml", u.uid, u.gid)
    cf = ["compose", "-f", str(project / "compose.yaml"), "-p", "demo"]
    up = _pb(user, *cf, "up", "-d")
    try:
        assert up.returncode == 0, up.stderr
        assert _get(f"http://127.0.0.1:{port}/index.html") == (200, "web-says-hi\n")
        got = _pb(user, *cf, "exec", "-T", "client", "sh", "-c",
                  "for i in $(seq 50); do wget -q -O - http://web:8080/index.html && exit 0; sleep 0.2; done; exit 1")
        assert (got.returncode, got.stdout) == (0, "web-says-hi\n"), got.stderr
    finally:
        down = _pb(user, *cf, "down", "-t", "2")
    assert down.returncode == 0, down.stderr
    assert _pb(user, "ps", "-aq", check=True).stdout == ""
    assert "demo_default" not in _pb(user, "network", "ls", "--format", "{{.Name}}", check=True).stdout.split()
    assert _tools_of(user) == []


@pytest.mark.parametrize("tool", ["pasta", "slirp4netns"])
def test_single_id_user_reaches_out_and_publishes(single_user, host_server, tool):
    """Without subordinate ranges only root is mapped: the tools still run (pasta would drop to an
    unmapped "nobody") and the default network reaches the host's loopback; -p is served."""
    out = _pb(single_user, "run", "--rm", "--add-host", "hg:host-gateway", "busybox:latest",
              "wget", "-q", "-O", "-", f"http://hg:{host_server}/", tool=tool)
    assert (out.returncode, out.stdout) == (0, "hello-host\n"), out.stderr
    port = _free_port()
    run = _pb(single_user, "run", "-d", "--name", "w", "-p", f"127.0.0.1:{port}:8080", "busybox:latest", *WEB,
              tool=tool)
    try:
        assert run.returncode == 0, run.stderr
        assert _get(f"http://127.0.0.1:{port}/index.html")[0] == 200
    finally:
        _pb(single_user, "rm", "-f", "w")
    assert _tools_of(single_user) == []


def test_concurrent_runs_share_one_namespace_and_leave_nothing(user, host_server):
    """Four ``run --rm`` at once on the default network: one of them makes the rootless namespace and
    its tool (the others wait on its lock), each reaches the host, and whichever ends last releases it."""
    u, pybuild = user
    argv = u.argv(pybuild, "run", "--rm", "--add-host", "hg:host-gateway", "busybox:latest", "sh", "-c",
                  f"sleep 0.5; wget -q -O - http://hg:{host_server}/")
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=u.home)
             for _ in range(4)]
    results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert all(r[:2] == (0, "hello-host\n") for r in results), results
    assert _tools_of(user) == []
