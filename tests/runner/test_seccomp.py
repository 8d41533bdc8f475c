"""runner.seccomp: the default profile and the cgroup-v2 device-node rules, loaded in a forked child."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from runner import seccomp


def _in_child(fn) -> int:
    """Run ``fn`` in a forked child; its return value (an errno or 0) as the exit code."""
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            code = fn()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _errno_of(call) -> int:
    try:
        call()
    except OSError as exc:
        return exc.errno
    return 0


def _host_has_seccomp() -> bool:
    """Probed here, not through pybuild: the kernel filters (``Seccomp:`` in /proc/self/status)
    and libseccomp.so.2 loads. When it does, pybuild's ``seccomp.available()`` must say so too."""
    import ctypes

    with open("/proc/self/status") as f:
        if not any(line.startswith("Seccomp:") for line in f):
            return False
    try:
        ctypes.CDLL("libseccomp.so.2")
    except OSError:
        return False
    return True


@pytest.fixture(autouse=True)
def _need():
    if not _host_has_seccomp():
        pytest.skip("libseccomp.so.2 is not installed: pybuild runs without a filter (inspect says so)")
    assert seccomp.available(), "the host has libseccomp.so.2, yet pybuild's seccomp.available() says no"
    if os.geteuid() != 0:
        pytest.skip("needs root (mknod)")


def test_default_profile_denies_namespaces_and_mounts(tmp_path: Path) -> None:
    from runner import syscalls as sc

    def unfiltered() -> int:
        return _errno_of(lambda: sc.unshare(sc.CLONE_NEWUSER | sc.CLONE_NEWNS))

    def child() -> int:
        seccomp.compile_profile(seccomp.default_profile()).load()
        if _errno_of(lambda: sc.mount("tmpfs", str(tmp_path), "tmpfs")) != errno.EPERM:
            return 1
        return unfiltered()

    assert _in_child(unfiltered) == 0                  # the kernel allows it: the filter is what refuses
    assert _in_child(child) == errno.EPERM
    assert seccomp.status() == "default"


def test_device_node_rules(tmp_path: Path) -> None:
    def child() -> int:
        seccomp.compile_profile(seccomp.default_profile(), deny_device_nodes=True).load()
        if _errno_of(lambda: os.mknod(tmp_path / "fifo", stat.S_IFIFO | 0o600)) != 0:
            return 1
        if _errno_of(lambda: os.mknod(tmp_path / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))) != errno.EPERM:
            return 2
        return _errno_of(lambda: os.mknod(tmp_path / "sda", stat.S_IFBLK | 0o600, os.makedev(8, 0)))

    assert _in_child(child) == errno.EPERM
    assert not (tmp_path / "sda").exists() and (tmp_path / "fifo").exists()
