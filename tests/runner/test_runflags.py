"""``runner.runflags`` parsers: Docker's spellings in, typed values or a one-line error naming the flag out."""

from __future__ import annotations

import pytest

from runner.errors import InvalidRunOption
from runner.options import BindMount, TmpfsMount
from runner.runflags import (check_attach, host_platform, parse_expose, parse_log_opts, parse_mount,
                             parse_namespace_mode, parse_security_opts, parse_sysctl, parse_ulimit)


def test_mount_csv_keys_and_quoting(tmp_path) -> None:
    d = tmp_path / "a,b"
    d.mkdir()
    assert parse_mount(f'type=bind,"source={d}",destination=/x,ro=true') == BindMount(str(d), "/x", readonly=True)
    assert parse_mount("type=volume,src=data,dst=/d") == BindMount("", "/d", volume="data")
    assert parse_mount("source=data,target=/d,readonly") == BindMount("", "/d", readonly=True, volume="data")
    assert parse_mount("type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770") == TmpfsMount("/t", "size=1048576,mode=1770")
    for bad in ("type=bind,dst=/x", "type=tmpfs,src=a,dst=/t", "type=volume,src=v,dst=rel", "type=bind,src=/,dst=/x,foo=1",
                "type=volume,src=v,dst=/x,tmpfs-size=1m", "type=tmpfs,dst=/t,tmpfs-mode=9x"):
        with pytest.raises(InvalidRunOption, match="^--mount "):
            parse_mount(bad)


def test_ulimit_sysctl_security_log_expose() -> None:
    u = parse_ulimit("nproc=10:20")
    assert (u.rlimit, u.soft, u.hard) == ("RLIMIT_NPROC", 10, 20)
    with pytest.raises(InvalidRunOption, match="soft limit must not exceed"):
        parse_ulimit("nproc=20:10")
    assert parse_sysctl("net.ipv4.ip_forward=1") == ("net.ipv4.ip_forward", "1")
    assert parse_sysctl("kernel.sem=1 2 3 4") == ("kernel.sem", "1 2 3 4")
    with pytest.raises(InvalidRunOption, match="not a namespaced sysctl"):
        parse_sysctl("kernel.pid_max=10")
    sec = parse_security_opts(["no-new-privileges=false", "seccomp=unconfined", "label=disable"])
    assert (sec.seccomp, sec.no_new_privileges, sec.accepted) == ("unconfined", False, ("label=disable",))
    assert parse_security_opts(["no-new-privileges"]).no_new_privileges is True
    assert parse_log_opts(["max-size=2k", "max-file=4"]) == (2048, 4)
    assert parse_expose(["80", "53/udp", "7000-7001"]) == ("80/tcp", "53/udp", "7000/tcp", "7001/tcp")


def test_platform_attach_and_namespace_modes() -> None:
    from runner.platforms import parse_platform

    assert parse_platform(host_platform()) == host_platform()
    assert parse_platform("linux") == host_platform()
    assert parse_platform("Linux/aarch64") == "linux/arm64"
    assert parse_platform(None) is None
    with pytest.raises(InvalidRunOption, match="^--platform linux/: invalid platform"):
        parse_platform("linux/")
    check_attach(["STDOUT", "STDERR"], detach=False, interactive=False)
    check_attach(["stdin", "stdout", "stderr"], detach=False, interactive=True)
    with pytest.raises(InvalidRunOption, match="^--attach stdout: attaching a subset"):
        check_attach(["stdout"], detach=False, interactive=False)
    assert parse_namespace_mode("--ipc", "shareable", ("host", "private", "shareable")) == "shareable"
    assert parse_namespace_mode("--ipc", "private", ("host", "private", "shareable")) == ""
    assert parse_namespace_mode("--pid", "container:web", ("host", "container:")) == "container:web"
    with pytest.raises(InvalidRunOption, match="^--pid container:web: not supported"):
        parse_namespace_mode("--pid", "container:web", ("host",))
    assert parse_namespace_mode("--pid", "host", ("host",)) == "host"
