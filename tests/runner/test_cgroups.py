"""runner.cgroups on this host: v1 controllers here (hybrid), the v2 path where the host is pure v2."""

from __future__ import annotations

import os
import secrets
import signal
import time

import pytest

from runner import cgroups
from runner.errors import CgroupError

RESOURCES = {"memory": {"limit": 64 << 20, "swap": 64 << 20}, "pids": {"limit": 77},
             "cpu": {"quota": 50000, "period": 100000},
             "devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 3,
                                                           "access": "rwm"}]}


def read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


@pytest.fixture
def cid():
    if os.geteuid() != 0:
        pytest.skip("needs root to create cgroups")
    name = "cgtest-" + secrets.token_hex(6)
    yield name
    leftover = cgroups.open_existing(name)
    if leftover is not None:
        leftover.destroy()


def test_v1_limits_join_and_destroy(cid: str) -> None:
    if cgroups.detect_version() != "v1":
        pytest.skip("host is pure cgroup v2; the v1 path cannot run here")
    cg = cgroups.create(cid, RESOURCES)
    assert read(os.path.join(cg.path_for("memory"), "memory.limit_in_bytes")) == str(64 << 20)
    assert read(os.path.join(cg.path_for("pids"), "pids.max")) == "77"
    assert read(os.path.join(cg.path_for("cpu"), "cpu.cfs_quota_us")) == "50000"
    assert read(os.path.join(cg.path_for("devices"), "devices.list")) == "c 1:3 rwm"
    pid = os.fork()
    if pid == 0:
        try:
            cg.join(0)
            signal.pause()
        except BaseException as exc:
            os.write(2, f"child: {exc}\n".encode())
        finally:
            os._exit(0)
    try:
        deadline = time.monotonic() + 5
        while cg.pids() != [pid] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert cg.pids() == [pid]
        with pytest.raises(CgroupError, match="already exists"):
            cgroups.create(cid, {})
        assert cg.pids() == [pid]                   # the failed duplicate left the existing one alone
        assert all(os.path.isdir(p) for p in cg.paths)
    finally:
        cg.destroy()            # kills what is left, then removes every directory
        os.waitpid(pid, 0)
    assert cgroups.open_existing(cid) is None


def test_v2_limits(cid: str) -> None:
    if cgroups.detect_version() != "v2":
        pytest.skip("host uses cgroup v1 controllers (hybrid: empty v2 tree at /sys/fs/cgroup/unified); "
                    "the v2 path runs only on a pure v2 host")
    cg = cgroups.create(cid, RESOURCES)
    try:
        assert read(os.path.join(cg.paths[0], "memory.max")) == str(64 << 20)
        assert read(os.path.join(cg.paths[0], "pids.max")) == "77"
        assert read(os.path.join(cg.paths[0], "cpu.max")) == "50000 100000"
    finally:
        cg.destroy()


def test_detect_version_reads_the_root(tmp_path) -> None:
    assert cgroups.detect_version(str(tmp_path)) == "v1"
    (tmp_path / "cgroup.controllers").write_text("memory pids\n")
    assert cgroups.detect_version(str(tmp_path)) == "v2"
