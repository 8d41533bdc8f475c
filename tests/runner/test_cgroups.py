"""runner.cgroups on this host: v1 controllers here (hybrid), the v2 path where the host is pure v2."""

from __future__ import annotations

import os
import secrets
import signal
import time

import pytest

from runner import cgroups
from runner.errors import CgroupError
from runner.ocispec import Resources

RESOURCES = Resources.from_dict({
    "memory": {"limit": 64 << 20, "swap": 64 << 20}, "pids": {"limit": 77}, "cpu": {"quota": 50000, "period": 100000},
    "devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}],
})


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
            cgroups.create(cid, Resources())
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


V2_CHILD = r"""
import json, os, sys
from runner import cgroups, sandbox, syscalls as sc
from runner.errors import CgroupError
from runner.ocispec import Memory, Resources
from runner.options import RunOptions
from runner.spec import make_spec

root, cid, out = sys.argv[1:4]
sc.unshare(sc.CLONE_NEWNS)
sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
# the host's unified (v2) hierarchy, where the v1 trees were: this process now sees a pure-v2 layout
sc.mount("cgroup2", "/sys/fs/cgroup", "cgroup2", 0)
result = {"version": cgroups.detect_version()}
try:
    cgroups.create(cid + "-mem", Resources(memory=Memory(limit=64 << 20)))
except CgroupError as exc:
    result["memory_error"] = str(exc)
result["leftover"] = os.path.exists(f"/sys/fs/cgroup/pybuild/{cid}-mem")
spec = make_spec(None, RunOptions(network="none", pids_limit=None, command=(
    "sh", "-c", "grep '^0::' /proc/self/cgroup; grep ' /sys/fs/cgroup ' /proc/mounts | cut -d' ' -f3; "
                "head -1 /sys/fs/cgroup/cgroup.procs; mknod /tmp/d c 1 3 2>/dev/null || echo denied")),
    rootfs=root)
with open(out + ".log", "w") as log:
    result["code"] = sandbox.execute(spec, container_id=cid, stdout=log, forward_signals=False)
result["after"] = os.path.exists(f"/sys/fs/cgroup/pybuild/{cid}")
json.dump(result, open(out, "w"))
"""


def test_v2_path_on_this_hosts_unified_tree(cid: str, busybox_rootfs, tmp_path) -> None:
    """The v2 code path for real, where a pure-v2 host is not available: in a private mount
    namespace the host's (controller-less) unified hierarchy is mounted at /sys/fs/cgroup. A container
    runs there in its own v2 cgroup and cgroup namespace, sees a cgroup2 /sys/fs/cgroup, cannot mknod
    (the seccomp rule that stands in for v2's missing device cgroup), and leaves no cgroup behind; a
    limit whose controller is not enabled is a one-line error naming it, with nothing created."""
    import json
    import subprocess
    import sys

    if cgroups.detect_version() != "v1" or not os.path.isdir("/sys/fs/cgroup/unified"):
        pytest.skip("needs a hybrid host (v1 controllers, empty v2 tree at /sys/fs/cgroup/unified)")
    from runner.rootfs import OverlayMount

    out = tmp_path / "result.json"
    with OverlayMount([str(busybox_rootfs)], str(tmp_path / "u"), str(tmp_path / "w"), str(tmp_path / "r")) as root:
        r = subprocess.run([sys.executable, "-c", V2_CHILD, root, cid, str(out)], capture_output=True, text=True,
                           timeout=60)
    assert r.returncode == 0, r.stderr
    result = json.loads(out.read_text())
    assert result["version"] == "v2" and result["code"] == 0 and result["after"] is False
    assert result["memory_error"].startswith("cgroup v2: the memory controller is not enabled") \
        and result["leftover"] is False
    assert (tmp_path / "result.json.log").read_text().splitlines() == ["0::/", "cgroup2", "1", "denied"]
    assert not os.path.exists(f"/sys/fs/cgroup/unified/pybuild/{cid}")
