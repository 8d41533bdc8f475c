"""-p / -P parsing (pure)."""

from __future__ import annotations

import pytest

from runner.network import InvalidNetworkSpec, PortMapping, parse_publish, publish_all


@pytest.mark.parametrize("spec, want", [
    ("80", [PortMapping(80, "tcp", "0.0.0.0", 0)]),
    ("8080:80", [PortMapping(80, "tcp", "0.0.0.0", 8080)]),
    ("127.0.0.1:8080:80", [PortMapping(80, "tcp", "127.0.0.1", 8080)]),
    ("127.0.0.1::80/udp", [PortMapping(80, "udp", "127.0.0.1", 0)]),
    ("[::1]:8080:80/tcp", [PortMapping(80, "tcp", "::1", 8080)]),
    ("53:53/UDP", [PortMapping(53, "udp", "0.0.0.0", 53)]),
    ("8000-8002:80-82", [PortMapping(80, "tcp", "0.0.0.0", 8000), PortMapping(81, "tcp", "0.0.0.0", 8001),
                         PortMapping(82, "tcp", "0.0.0.0", 8002)]),
    ("8000-8010:80", [PortMapping(80, "tcp", "0.0.0.0", 8000, 8010)]),
    ("1000-1001", [PortMapping(1000, "tcp", "0.0.0.0", 0), PortMapping(1001, "tcp", "0.0.0.0", 0)]),
])
def test_parse_publish(spec, want):
    assert list(parse_publish(spec)) == want


@pytest.mark.parametrize("spec, needle", [
    ("", "expected"),
    ("abc", "expected"),
    ("8080:80/sctp", "sctp"),
    ("8080:0", "out of range"),
    ("70000:80", "out of range"),
    ("8002-8000:80", "reversed"),
    ("8000-8001:80-82", "host range has 2 ports"),
    ("999.1.1.1:80:80", "not an IP address"),
    ("1.2.3.4:5:6:7", "expected"),
])
def test_parse_publish_rejects(spec, needle):
    with pytest.raises(InvalidNetworkSpec) as err:
        parse_publish(spec)
    assert needle in str(err.value) and repr(spec) in str(err.value)


def test_publish_all_maps_every_exposed_port_to_a_free_host_port():
    got = publish_all(["80/tcp", "53/udp", "8080", "80/tcp"], host_ip="127.0.0.1")
    assert got == (PortMapping(53, "udp", "127.0.0.1", 0), PortMapping(80, "tcp", "127.0.0.1", 0),
                   PortMapping(8080, "tcp", "127.0.0.1", 0))


def test_mapping_round_trips_through_dict():
    m = PortMapping(80, "udp", "127.0.0.1", 8080)
    assert PortMapping.from_dict(m.to_dict()) == m
    assert str(m) == "80/udp -> 127.0.0.1:8080"


def test_a_host_range_for_one_port_takes_its_first_free_port():
    import socket

    from runner.network import PortInUse, PortProxy

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        base = probe.getsockname()[1]
    (m,) = parse_publish(f"127.0.0.1:{base}-{base + 2}:80")
    assert m == PortMapping(80, "tcp", "127.0.0.1", base, base + 2) and PortMapping.from_dict(m.to_dict()) == m
    with socket.create_server(("127.0.0.1", base)):           # the first one is busy
        with PortProxy.bind([m], "127.0.0.1") as proxy:
            assert proxy.mappings == (PortMapping(80, "tcp", "127.0.0.1", base + 1),)
            with PortProxy.bind([m], "127.0.0.1") as second:    # and the next container gets the third
                assert second.mappings[0].host_port == base + 2
                with pytest.raises(PortInUse, match=f"127.0.0.1:{base}-{base + 2}/tcp: every one is already in use"):
                    PortProxy.bind([m], "127.0.0.1")


def test_start_proxies_hook_binds_records_ports_and_refuses_no_address():
    from types import SimpleNamespace

    from runner.network import NetworkError, start_proxies

    port = {"container_port": 80, "protocol": "tcp", "host_ip": "127.0.0.1", "host_port": 0}
    cfg = SimpleNamespace(name="web", ports=(port,), network={"mode": "bridge", "ip": "127.0.0.1"})
    proxies = start_proxies(cfg)
    try:
        assert len(proxies) == 1 and proxies[0].mappings[0].host_port > 0
    finally:
        for p in proxies:
            p.close()
    assert start_proxies(SimpleNamespace(name="h", ports=(port,), network={"mode": "host"})) == []
    assert start_proxies(SimpleNamespace(name="x", ports=(), network={})) == []
    with pytest.raises(NetworkError, match="container n: ports are published but it has no network address"):
        start_proxies(SimpleNamespace(name="n", ports=(port,), network={"mode": "none"}))


def test_cli_writes_ipv6_host_addresses_in_brackets():
    from pybuild.cmd_containers import _host_addr, _ports_text

    assert _host_addr({"host_ip": "::1", "host_port": 8080}) == "[::1]:8080"
    assert _host_addr({"host_ip": "", "host_port": 80}) == "0.0.0.0:80"
    assert _ports_text([{"host_ip": "::", "host_port": 80, "container_port": 80, "protocol": "udp"}]) == "[::]:80->80/udp"
