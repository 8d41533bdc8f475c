"""Rootless cgroup v2 decisions (runner.cgdelegate): which subtree is delegated, which controllers it
offers, where a container's cgroup goes, which limits are refused and with what message.

This host is hybrid (v1 controllers, an empty v2 tree), so there is no delegated cgroup v2 subtree to
probe. These tests run the real code against a directory tree shaped like a systemd-delegated cgroupfs
(a stand-in for the kernel feature this host lacks: same file names, and ownership as systemd sets it:
``user@UID.service`` and its ``cgroup.procs``/``cgroup.subtree_control`` chowned to the user, the
slices above and the login session's scope root's). The real-kernel path is
``test_rootless.py::test_v2_delegated_limits``, which runs on a pure v2 host.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runner import cgdelegate
from runner.errors import CgroupError
from runner.ocispec import Resources

USER = 4242          # the delegated user's id as the prober sees it
OTHER = 0 if os.geteuid() != 0 else 65534      # anyone else (root's files seen from the user namespace: 65534)
CGROUP_FILES = ("cgroup.controllers", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads")


def cgroup(path: Path, owner: int, controllers: str = "", subtree: str = "") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "cgroup.controllers").write_text(controllers + "\n")
    (path / "cgroup.subtree_control").write_text(subtree + "\n")
    (path / "cgroup.procs").write_text("")
    (path / "cgroup.threads").write_text("")
    for p in (path, *(path / f for f in CGROUP_FILES)):
        os.chown(p, owner, owner)
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """``/sys/fs/cgroup`` as systemd lays it out for user 1000 with the default ``Delegate=`` (no cpuset)."""
    if os.geteuid() != 0:
        pytest.fail("the stand-in tree needs root to give its upper levels another owner (chown)")
    root = cgroup(tmp_path, OTHER, "cpuset cpu io memory hugetlb pids rdma misc", "cpuset cpu io memory pids")
    cgroup(root / "user.slice", OTHER, "cpuset cpu io memory pids", "cpu io memory pids")
    cgroup(root / "user.slice/user-1000.slice", OTHER, "cpu io memory pids", "cpu memory pids")
    cgroup(root / "user.slice/user-1000.slice/session-3.scope", OTHER, "cpu memory pids")
    manager = cgroup(root / "user.slice/user-1000.slice/user@1000.service", USER, "cpu memory pids", "cpu memory pids")
    cgroup(manager / "init.scope", USER, "cpu memory pids")
    cgroup(manager / "app.slice", USER, "cpu memory pids", "memory pids")
    cgroup(manager / "app.slice/app-term.scope", USER, "memory pids")
    return root


def own(tmp_path: Path, path: str) -> str:
    """A ``/proc/self/cgroup`` of a hybrid host whose process sits in ``path`` of the v2 tree."""
    f = tmp_path / "proc-self-cgroup"
    f.write_text(f"4:memory:/\n1:name=systemd:{path}\n0::{path}\n")
    return str(f)


def probe(tree: Path, path: str) -> cgdelegate.Probe:
    return cgdelegate.probe(str(tree), own(tree, path), uid=USER, host_uid=1000)


MANAGER = "/user.slice/user-1000.slice/user@1000.service"


def test_the_user_managers_cgroup_is_the_delegated_root(tree: Path) -> None:
    found = probe(tree, MANAGER + "/app.slice/app-term.scope")
    d = found.delegation
    assert d is not None, found.reason
    assert d.root == str(tree) + MANAGER                     # the topmost cgroup the user owns, not its own
    assert d.controllers == {"cpu", "memory", "pids"}        # its cgroup.controllers: what systemd delegates
    assert d.leaf("abc") == str(tree) + MANAGER + "/pybuild/abc"


def test_a_login_session_is_not_delegated_and_the_error_says_what_to_do(tree: Path) -> None:
    found = probe(tree, "/user.slice/user-1000.slice/session-3.scope")
    assert found.delegation is None
    assert "session-3.scope is not delegated" in found.reason
    assert "systemd-run --user --scope" in found.reason      # user@1000.service exists and is the user's
    other = cgdelegate.probe(str(tree), own(tree, "/system.slice/cron.service"), uid=USER, host_uid=1001)
    assert other.delegation is None and "Delegate=" in other.reason


def test_a_directory_chowned_without_its_files_is_not_delegated(tree: Path) -> None:
    scope = tree / "user.slice/user-1000.slice/session-3.scope"
    os.chown(scope, USER, USER)                   # systemd chowns cgroup.procs and subtree_control too
    assert probe(tree, "/user.slice/user-1000.slice/session-3.scope").delegation is None


def test_v1_and_unknown_paths(tree: Path) -> None:
    v1 = tree / "v1"            # no cgroup.controllers at the root: v1 (or hybrid)
    v1.mkdir()
    assert "cgroup v1" in cgdelegate.probe(str(v1), own(tree, MANAGER), uid=USER).reason
    assert "outside its cgroup namespace" in probe(tree, "/../../user.slice").reason


def test_limits_need_their_controllers() -> None:
    r = Resources.from_dict({"memory": {"limit": 1 << 26, "swap": 1 << 26}, "pids": {"limit": 10},
                             "cpu": {"quota": 50000, "period": 100000, "cpus": "0"}})
    assert cgdelegate.needed(r) == (("memory", "--memory"), ("memory", "--memory-swap"),
                                    ("cpu", "--cpus/--cpu-quota"), ("cpuset", "--cpuset-cpus"),
                                    ("pids", "--pids-limit"))
    assert cgdelegate.needed(Resources()) == () and cgdelegate.needed(None) == ()


def test_undelegated_controller_refused_naming_it_and_the_dropin(tree: Path) -> None:
    d = probe(tree, MANAGER + "/app.slice/app-term.scope").delegation
    ok = Resources.from_dict({"memory": {"limit": 1 << 26}, "pids": {"limit": 10}, "cpu": {"quota": 50000}})
    cgdelegate.refuse_undelegated(ok, d)          # memory, pids, cpu are delegated: nothing refused
    with pytest.raises(CgroupError) as err:
        cgdelegate.refuse_undelegated(Resources.from_dict({"memory": {"limit": 1 << 26}, "cpu": {"cpus": "0"}}), d)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("rootless: --cpuset-cpus needs the cpuset cgroup controller, which systemd does not "
                          "delegate to this user"), msg
    assert "--memory" not in msg and "(delegated below " + d.root + ": cpu memory pids)" in msg
    assert f"'Delegate=cpu cpuset io memory pids' under [Service] in {cgdelegate.DROPIN}" in msg
    assert "systemctl daemon-reload" in msg


def test_no_memory_controller_refuses_memory_limits(tree: Path) -> None:
    d = cgdelegate.Delegation(str(tree), frozenset({"pids"}))
    with pytest.raises(CgroupError, match=r"^rootless: --memory, --memory-reservation, --cpu-shares need the cpu "
                                          r"and memory cgroup controllers, "):
        cgdelegate.refuse_undelegated(Resources.from_dict({"memory": {"limit": 1 << 26, "reservation": 1 << 20},
                                                           "cpu": {"shares": 512}}), d)


def test_enable_makes_the_pybuild_parent_and_hands_controllers_down(tree: Path) -> None:
    d = probe(tree, MANAGER + "/app.slice/app-term.scope").delegation
    manager = Path(d.root)
    assert cgdelegate.enable(d, Resources.from_dict({"memory": {"limit": 1 << 26}})) == ["memory", "pids", "cpu"]
    # the delegated root enables them already (as systemd does): left alone; the new parent gets all three
    assert (manager / "cgroup.subtree_control").read_text() == "cpu memory pids\n"
    assert (manager / "pybuild/cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    assert not (manager / "pybuild/abc").exists()     # the leaf is the caller's (cgroups.create) to make


def test_enable_adds_what_the_root_lacks_and_cpuset_only_when_asked(tree: Path) -> None:
    manager = tree / MANAGER.lstrip("/")
    (manager / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")   # a drop-in delegated cpuset
    (manager / "cgroup.subtree_control").write_text("memory\n")
    d = probe(tree, MANAGER + "/app.slice/app-term.scope").delegation
    assert "cpuset" in d.controllers
    assert cgdelegate.enable(d, Resources()) == ["memory", "pids", "cpu"]        # io is not used; cpuset unasked
    assert (manager / "cgroup.subtree_control").read_text() == "+pids +cpu"
    (manager / "cgroup.subtree_control").write_text("memory pids cpu\n")
    (manager / "pybuild/cgroup.subtree_control").write_text("memory pids cpu\n")
    assert cgdelegate.enable(d, Resources.from_dict({"cpu": {"cpus": "0"}})) == ["memory", "pids", "cpu", "cpuset"]
    assert (manager / "cgroup.subtree_control").read_text() == "+cpuset"


UNIFIED = "/sys/fs/cgroup/unified"      # a hybrid host's real v2 hierarchy: no controllers, but the kernel's rules

PROBE_AS_USER = r"""
import json, os, sys
from runner import cgdelegate
root, start, uid, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
with open(os.path.join(start, "cgroup.procs"), "w") as f:      # as root: where the user's process runs
    f.write("0")
os.setgroups([])
os.setresgid(uid, uid, uid)
os.setresuid(uid, uid, uid)
result = {}
try:
    found = cgdelegate.probe(root)
    result["reason"] = found.reason
    if found.delegation is not None:
        d = found.delegation
        result["root"] = d.root
        result["enabled"] = cgdelegate.enable(d, None)
        os.mkdir(d.leaf("ctr"))
        with open(os.path.join(d.leaf("ctr"), "cgroup.procs"), "w") as f:     # the kernel's move rules
            f.write("0")
        result["now"] = open("/proc/self/cgroup").read()
except OSError as exc:
    result["error"] = f"{exc.filename}: {exc.strerror}"
os.write(out, json.dumps(result).encode())
"""


def _as_user(root: str, start: Path, uid: int) -> dict:
    """Run :func:`cgdelegate.probe` (and on success make and join a container leaf) in a process that
    root first puts in ``start``, then drops to ``uid``."""
    import json
    import subprocess
    import sys

    r, w = os.pipe()
    try:
        subprocess.run([sys.executable, "-c", PROBE_AS_USER, root, str(start), str(uid), str(w)], pass_fds=(w,),
                       check=True, timeout=60, cwd=Path(__file__).resolve().parents[2])
        os.close(w)
        w = -1
        with os.fdopen(r, "rb") as f:
            r = -1
            return json.loads(f.read())
    finally:
        for fd in (r, w):
            if fd >= 0:
                os.close(fd)


def test_real_v2_hierarchy_delegation_move_and_refusal() -> None:
    """The kernel part that this host has: its empty v2 hierarchy, with a cgroup chowned as systemd
    delegates ``user@UID.service``. A user process in a child of it finds it, makes ``pybuild/<id>``
    (no controllers here to enable) and moves itself in (the kernel checks the common ancestor is the
    user's); one in a cgroup root keeps is told it is not delegated. Controllers and limits need a pure v2
    host (``test_rootless.py::test_v2_delegated_limits``)."""
    import secrets

    from runner.cgroups import Cgroup

    from runner.cgroups import detect_version

    v2 = Path("/sys/fs/cgroup" if detect_version() == "v2" else UNIFIED)
    if not (v2 / "cgroup.procs").exists():
        pytest.skip("host uses cgroup v1 controllers without a v2 hierarchy at /sys/fs/cgroup/unified")
    top = v2 / f"pbtest-{secrets.token_hex(4)}"       # root's, as user-UID.slice
    top.mkdir()
    try:
        delegated = top / "user@4242.service"
        for d in (delegated, delegated / "app", top / "session-1.scope"):
            d.mkdir()
        for d in (delegated, delegated / "app"):
            for p in (d, d / "cgroup.procs", d / "cgroup.subtree_control", d / "cgroup.threads"):
                os.chown(p, USER, USER)
        got = _as_user(str(v2), delegated / "app", USER)
        assert got.get("root") == str(delegated), got
        assert got["enabled"] == [], got          # none delegated: ``top`` hands no controller down
        assert f"0::/{delegated.relative_to(v2)}/pybuild/ctr\n" in got["now"], got      # it moved itself in
        assert os.stat(delegated / "pybuild" / "ctr").st_uid == USER     # the kernel made it the user's
        refused = _as_user(str(v2), top / "session-1.scope", USER)
        assert "root" not in refused and "is not delegated to this user" in refused["reason"], refused
    finally:
        leaf = delegated / "pybuild" / "ctr"
        Cgroup("v2", (str(leaf),)).destroy()
        for d in (delegated / "pybuild", delegated / "app", delegated, top / "session-1.scope", top):
            if d.exists():
                d.rmdir()


def test_find_leaf_from_the_delegation_or_the_user_manager(tree: Path) -> None:
    """``rm`` finds a container's cgroup whether it runs in the subtree that made it or in an ssh login's
    scope (not delegated) of the same user; another user's manager is not searched."""
    leaf = tree / MANAGER.lstrip("/") / "pybuild" / "abc"
    leaf.mkdir(parents=True)
    for path in (MANAGER + "/app.slice/app-term.scope", "/user.slice/user-1000.slice/session-3.scope"):
        assert cgdelegate.find_leaf("abc", str(tree), own(tree, path), uid=USER, host_uid=1000) == str(leaf)
    assert cgdelegate.find_leaf("abd", str(tree), own(tree, MANAGER), uid=USER, host_uid=1000) is None
    assert cgdelegate.find_leaf("abc", str(tree), own(tree, "/system.slice"), uid=USER, host_uid=1001) is None
