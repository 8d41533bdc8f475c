"""compose.apply.runopts: a service -> the runner's RunOptions (pure), and every key the runner cannot
honour refused naming ``services.<name>.<key>``."""

from __future__ import annotations

import dataclasses

import pytest

from compose.apply.errors import Unsupported
from compose.apply.runopts import ContainerRequest, anonymous_volume, run_options
from compose.model import (FileRef, HealthSpec, MountSpec, NetworkSpec, PortSpec, Project, ResourceLimits, Service,
                           ServiceNetwork, Ulimit, VolumeSpec)

NETS = (NetworkSpec("default", "demo_default"), NetworkSpec("back", "demo_back"))


def _opts(svc: Service, **req):
    p = Project(name="demo", working_dir="/srv", services=(svc,), networks=NETS,
                volumes=(VolumeSpec("data", "demo_data"),))
    return run_options(p, svc, ContainerRequest(name="demo-web-1", labels=(("k", "v"),), **req))


def test_fields_map_to_run_options() -> None:
    svc = Service(
        name="web", image="busybox", command=("sh", "-c", "echo hi"), entrypoint=(), environment=(("A", "1"),),
        working_dir="/w", user="1000", hostname="h", init=True, read_only=True, stop_signal="SIGINT",
        stop_grace_period=2.5, ports=(PortSpec(80, 8080, "127.0.0.1"), PortSpec(53, None, None, "udp")),
        expose=("9000",), networks=(ServiceNetwork("back", aliases=("api",)),), extra_hosts=(("db", "10.0.0.1"),),
        dns=("1.1.1.1",), volumes=(MountSpec("bind", "/etc/x", "/srv/x", read_only=True), MountSpec("volume", "/data", "data"),
                                   MountSpec("volume", "/cache")),
        tmpfs=(MountSpec("tmpfs", "/tmp", tmpfs_size=1 << 20, tmpfs_mode=0o1777),),
        restart="on-failure:3", limits=ResourceLimits(memory=64 << 20, cpus=0.5, pids=100),
        ulimits=(Ulimit("nofile", 512, 1024),), cap_add=("NET_ADMIN",), cap_drop=("MKNOD",),
        secrets=(FileRef("token", "/run/secrets/token", "/srv/token.txt"),))
    o = _opts(svc)
    assert o.command == ("sh", "-c", "echo hi") and o.entrypoint == ()
    assert o.env == ("A=1",) and o.workdir == "/w" and o.user == "1000" and o.hostname == "h"
    assert o.init and o.read_only and o.stop_signal == "SIGINT" and o.stop_timeout == 2
    assert [(p.container_port, p.host_port, p.host_ip, p.protocol) for p in o.publish] == [
        (80, 8080, "127.0.0.1", "tcp"), (53, 0, "", "udp")]
    assert o.expose == ("9000/tcp",)
    assert o.network == "demo_back" and o.network_aliases == ("web", "api")
    assert o.add_hosts == ("db:10.0.0.1",) and o.dns == ("1.1.1.1",)
    binds = {m.target: m for m in o.mounts}
    assert binds["/etc/x"].source == "/srv/x" and binds["/etc/x"].readonly
    assert binds["/data"].volume == "demo_data"
    assert binds["/cache"].volume == anonymous_volume("demo-web-1", "/cache")
    assert binds["/run/secrets/token"].source == "/srv/token.txt" and binds["/run/secrets/token"].readonly
    assert [(t.target, t.options) for t in o.tmpfs] == [("/tmp", "size=1048576,mode=1777")]
    assert o.restart == "on-failure:3" and o.memory == 64 << 20 and o.cpus == 0.5 and o.pids_limit == 100
    assert [(u.name, u.soft, u.hard) for u in o.ulimits] == [("nofile", 512, 1024)]
    assert o.labels == (("k", "v"),) and o.name == "demo-web-1"
    # run: its command and environment win, no ports unless asked, never a restart policy
    r = _opts(svc, command=("true",), extra_env=("B=2",), publish=False, restart="no")
    assert r.command == ("true",) and r.env == ("A=1", "B=2") and r.publish == () and r.restart == "no"


@pytest.mark.parametrize("test, cmd, disable", [
    (("CMD", "redis-cli", "ping"), "redis-cli ping", False),
    (("CMD", "sh", "-c", "a b"), "sh -c 'a b'", False),
    (("CMD-SHELL", "curl -f localhost || exit 1"), "curl -f localhost || exit 1", False),
    (("NONE",), None, True),
])
def test_healthcheck_forms(test, cmd, disable) -> None:
    o = _opts(Service(name="web", image="x", healthcheck=HealthSpec(test=test, interval=0.5, retries=2)))
    assert o.health.cmd == cmd and o.health.disable == disable
    if not disable:
        assert o.health.interval == 0.5 and o.health.retries == 2


@pytest.mark.parametrize("change, key", [
    (dict(networks=(ServiceNetwork("default"), ServiceNetwork("back", ipv6_address="fd00::3"))),
     "services.web.networks.back.ipv6_address"),
    (dict(networks=(ServiceNetwork("default", ipv6_address="fd00::2"),)), "ipv6_address"),
    (dict(mac_address="02:42:ac:11:00:02"), "services.web.mac_address"),
    (dict(domainname="example.com"), "services.web.domainname"),
    (dict(logging_driver="syslog"), "services.web.logging.driver"),
    (dict(ports=(PortSpec(80, 80, mode="host"),)), "services.web.ports"),
    (dict(volumes=(MountSpec("bind", "/x", "/y", bind_propagation="rshared"),)), "services.web.volumes[/x]"),
    (dict(volumes=(MountSpec("npipe", "/x", "/y"),)), "services.web.volumes[/x]"),
    (dict(secrets=(FileRef("s", "/run/secrets/s"),)), "services.web.secrets[s]"),
    (dict(network_mode="slirp4netns"), "services.web.network_mode"),
])
def test_what_the_runner_cannot_do_is_refused_by_name(change, key) -> None:
    svc = dataclasses.replace(Service(name="web", image="x", networks=(ServiceNetwork("default"),)), **change)
    with pytest.raises(Unsupported) as err:
        _opts(svc)
    assert key in str(err.value)


def test_several_networks_first_by_priority_then_name() -> None:
    svc = Service(name="web", image="x", networks=(ServiceNetwork("default", aliases=("d",)),
                                                     ServiceNetwork("back", aliases=("api",), ipv4_address="10.9.0.5")))
    o = _opts(svc)
    assert o.network == "demo_back" and o.network_aliases == ("web", "api") and o.ip == "10.9.0.5"
    assert [(n.name, n.aliases, n.ip) for n in o.extra_networks] == [("demo_default", ("web", "d"), None)]
    first = dataclasses.replace(svc, networks=(ServiceNetwork("default", priority=10), ServiceNetwork("back")))
    o = _opts(first)
    assert o.network == "demo_default" and [n.name for n in o.extra_networks] == ["demo_back"]


def test_network_modes() -> None:
    assert _opts(Service(name="web", image="x", network_mode="host")).network == "host"
    assert _opts(Service(name="web", image="x", network_mode="service:db")).network == "container:demo-db-1"
