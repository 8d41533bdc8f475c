"""Rootless pybuild on the host, end to end, as real non-root users (see conftest.py).

Everything runs the installed ``pybuild`` as ``pbrl-a`` (subordinate ranges), ``pbrl-b`` (another
user, for isolation) or ``pbrl-single`` (no ranges), against a real registry on 127.0.0.1 that root
fills with the busybox base first. Root's build of the same Dockerfile gives the digest to match.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import pytest

from runner import cgroups

from tests.conftest import PybuildRunner
from tests.rootless.support import BASE, kill_pids

EPOCH = "1700000000"
DOCKERFILE = (
    "FROM {base}\n"
    "RUN echo 'app:x:1000:1000:app:/home/app:/bin/sh' >> /etc/passwd && echo 'app:x:1000:' >> /etc/group"
    " && mkdir -p /home/app && echo hi > /home/app/f && chown -R 1000:1000 /home/app"
    " && rm -rf /var && mkdir /var && touch /var/x && mkdir /wd && echo a > /wd/a\n"
    "RUN rm /bin/vi /wd/a\n"
)


@pytest.fixture(scope="module")
def world(tmp_path_factory, busybox_tar, rootless_venv, rootless_users):
    """The registry (with ``base/busybox:1`` pushed by root), the context dir, and root's build digest."""
    from tests.registry.servers import REGISTRY_BIN, start_registry

    if REGISTRY_BIN is None:
        pytest.fail("docker-registry is not installed (scripts/install.sh installs it)")
    tmp = tmp_path_factory.mktemp("rootless")
    server = start_registry("open", tmp / "registry")
    try:
        host = server.host
        env = {"PYBUILD_INSECURE_REGISTRIES": host, "SOURCE_DATE_EPOCH": EPOCH}
        root, state = tmp / "root", tmp / "state"
        root.mkdir(mode=0o700)
        state.mkdir(mode=0o700)
        asroot = PybuildRunner(root, state)
        asroot("import", str(busybox_tar), "busybox:latest", env=env, check=True)
        asroot("push", "busybox:latest", f"{host}/base/busybox:1", env=env, check=True)
        ctx = BASE / "ctx"
        ctx.mkdir(parents=True, exist_ok=True)
        (ctx / "Dockerfile").write_text(DOCKERFILE.format(base=f"{host}/base/busybox:1"))
        os.chmod(ctx, 0o755)
        os.chmod(ctx / "Dockerfile", 0o644)
        built = asroot("build", "-q", "--no-cache", "-t", "app:root", str(ctx), env=env, check=True)
        yield {"host": host, "env": env, "ctx": str(ctx), "root_id": built.stdout.strip().splitlines()[-1],
               "pybuild": rootless_venv, "users": rootless_users, "asroot": asroot}
    finally:
        server.stop()


def _run(world, user: str, *args, **kw):
    return world["users"][user].run(world["pybuild"], *args, env={**world["env"], **kw.pop("env", {})}, **kw)


def _xattr(path: Path, name: str) -> bytes | None:
    try:
        return os.getxattr(path, name, follow_symlinks=False)
    except OSError:
        return None


def test_store_paths_and_info(world) -> None:
    a = world["users"]["pbrl-a"]
    info = _run(world, "pbrl-a", "info", check=True).stdout
    assert "Rootless: true" in info
    assert f"Docker Root Dir: {a.home}/.local/share/pybuild" in info
    assert f"State Dir: /tmp/pybuild-{a.uid}" in info
    assert f"Subordinate UIDs: {a.subuid[0]}:{a.subuid[1]}" in info
    assert "Overlay: native-userxattr" in info
    st = os.stat(f"/tmp/pybuild-{a.uid}")
    assert st.st_uid == a.uid and st.st_mode & 0o777 == 0o700
    pid = int(Path(f"/tmp/pybuild-{a.uid}/userns/pause.pid").read_text())
    status = Path(f"/proc/{pid}/status").read_text()
    assert f"Uid:\t{a.uid}\t" in status
    assert Path(f"/proc/{pid}/uid_map").read_text().split() == ["0", str(a.uid), "1", "1", str(a.subuid[0]),
                                                                 str(a.subuid[1])]
    # XDG_RUNTIME_DIR, when set, holds the state instead
    xdg = BASE / f"xdg-{a.uid}"
    xdg.mkdir(exist_ok=True)
    os.chown(xdg, a.uid, a.gid)
    os.chmod(xdg, 0o700)
    info = a.run(world["pybuild"], "info", xdg=str(xdg), check=True).stdout
    assert f"State Dir: {xdg}/pybuild" in info
    assert (xdg / "pybuild" / "userns" / "pause.pid").exists()
    os.kill(int((xdg / "pybuild" / "userns" / "pause.pid").read_text()), 9)


def _owned_by(top: str, uids: set[int], depth: int = 3) -> list[str]:
    """Entries under ``top`` (``depth`` levels) owned by one of ``uids``."""
    out, level = [], [top]
    for _ in range(depth):
        nxt = []
        for d in level:
            try:
                entries = list(os.scandir(d))
            except OSError:
                continue
            for e in entries:
                st = e.stat(follow_symlinks=False)
                if st.st_uid in uids:
                    out.append(e.path)
                if e.is_dir(follow_symlinks=False):
                    nxt.append(e.path)
        level = nxt
    return out


def test_build_owner_ids_and_digest_identity(world) -> None:
    a = world["users"]["pbrl-a"]
    _run(world, "pbrl-a", "pull", f"{world['host']}/base/busybox:1", check=True)
    built = _run(world, "pbrl-a", "build", "-q", "--no-cache", "-t", "app:1", world["ctx"], check=True)
    assert built.stdout.strip().splitlines()[-1] == world["root_id"]
    out = _run(world, "pbrl-a", "run", "--rm", "--network", "none", "app:1", "stat", "-c", "%u:%g", "/home/app/f",
               "/var/x", check=True).stdout.split()
    assert out == ["1000:1000", "0:0"]
    gone = _run(world, "pbrl-a", "run", "--rm", "--network", "none", "app:1", "ls", "/wd", "/bin/vi")
    assert gone.stdout == "/wd:\n" and "/bin/vi" in gone.stderr  # whiteouts made and honoured rootless
    snaps = Path(a.home) / ".local/share/pybuild/snapshots"
    owners = {os.stat(p).st_uid for p in snaps.glob("*/fs/home/app/f")}
    assert owners == {a.subuid[0] + 999}
    opaque = [p for p in snaps.glob("*/fs/var") if _xattr(p, "user.overlay.opaque") == b"y"]
    assert opaque, "the rootless snapshot of a replaced directory is marked opaque with user.overlay.opaque"


def test_fuse_overlayfs_fallback_gives_the_same_digest(world) -> None:
    """The fallback for kernels without overlay in a user namespace, forced here: same layers, same digest."""
    fuse = {"PYBUILD_OVERLAY": "fuse-overlayfs"}
    assert "Overlay: fuse-overlayfs" in _run(world, "pbrl-a", "info", env=fuse, check=True).stdout
    _run(world, "pbrl-a", "pull", f"{world['host']}/base/busybox:1", check=True)
    built = _run(world, "pbrl-a", "build", "-q", "--no-cache", "-t", "app:fuse", world["ctx"], env=fuse, check=True)
    assert built.stdout.strip().splitlines()[-1] == world["root_id"]
    gone = _run(world, "pbrl-a", "run", "--rm", "--network", "none", "app:fuse", "sh", "-c",
                "ls /wd; stat -c %u /home/app/f", env=fuse, check=True)
    assert gone.stdout == "1000\n"
    bad = _run(world, "pbrl-a", "info", env={"PYBUILD_OVERLAY": "aufs"})
    assert bad.returncode != 0 and "PYBUILD_OVERLAY='aufs'" in bad.stderr


def test_run_ids_and_lifecycle(world) -> None:
    a = world["users"]["pbrl-a"]
    _run(world, "pbrl-a", "pull", f"{world['host']}/base/busybox:1", check=True)
    img = f"{world['host']}/base/busybox:1"
    assert _run(world, "pbrl-a", "run", "--rm", "--network", "none", img, "id", "-u", check=True).stdout == "0\n"
    cid = _run(world, "pbrl-a", "run", "-d", "--network", "none", "--name", "lc", img, "sh", "-c",
               "echo started; exec sleep 300", check=True).stdout.strip()
    try:
        pid = int(_run(world, "pbrl-a", "inspect", "--format", "{{.State.Pid}}", "lc", check=True).stdout)
        status = Path(f"/proc/{pid}/status").read_text()
        uids = next(l for l in status.splitlines() if l.startswith("Uid:")).split()[1:]
        assert uids == [str(a.uid)] * 4, status
        for _ in range(50):
            if _run(world, "pbrl-a", "logs", "lc").stdout == "started\n":
                break
            time.sleep(0.1)
        assert _run(world, "pbrl-a", "logs", "lc", check=True).stdout == "started\n"
        assert _run(world, "pbrl-a", "exec", "lc", "id", "-u", check=True).stdout == "0\n"
        _run(world, "pbrl-a", "stop", "-t", "1", "lc", check=True)
    finally:
        _run(world, "pbrl-a", "rm", "-f", cid)
    assert cid[:12] not in _run(world, "pbrl-a", "ps", "-a", check=True).stdout
    init = _run(world, "pbrl-a", "run", "--rm", "--init", "--network", "none", img, "sh", "-c", "cat /proc/1/cmdline",
                check=True)
    assert "init" in init.stdout.replace("\0", " ") and "cat" not in init.stdout.split("\0")[0]


def test_host_and_default_network(world) -> None:
    img = f"{world['host']}/base/busybox:1"
    _run(world, "pbrl-a", "pull", img, check=True)
    out = _run(world, "pbrl-a", "run", "--rm", "--network", "host", img, "cat", "/proc/net/dev", check=True).stdout
    assert "lo:" in out
    # the default network works rootless (tests/rootless/test_rootless_net.py covers it in depth)
    out = _run(world, "pbrl-a", "run", "--rm", img, "cat", "/proc/net/dev", check=True).stdout
    assert "eth0:" in out


def test_restart_policy(world) -> None:
    img = f"{world['host']}/base/busybox:1"
    _run(world, "pbrl-a", "pull", img, check=True)
    _run(world, "pbrl-a", "run", "-d", "--network", "none", "--name", "rs", "--restart", "on-failure:2", img, "sh",
         "-c", "echo run; exit 3", check=True)
    try:
        for _ in range(100):
            got = _run(world, "pbrl-a", "inspect", "--format", "{{.RestartCount}} {{.State.Status}}", "rs").stdout.split()
            if got == ["2", "exited"]:
                break
            time.sleep(0.1)
        assert got == ["2", "exited"]
        assert _run(world, "pbrl-a", "logs", "rs", check=True).stdout == "run\n" * 3
    finally:
        _run(world, "pbrl-a", "rm", "-f", "rs")


def test_concurrent_first_runs_make_one_pause_process(world) -> None:
    import subprocess

    b = world["users"]["pbrl-b"]
    state = Path(f"/tmp/pybuild-{b.uid}")
    pid_file = state / "userns" / "pause.pid"
    if pid_file.exists():
        os.kill(int(pid_file.read_text()), 9)
        time.sleep(0.2)
    procs = [subprocess.Popen(b.argv(world["pybuild"], "images"), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(4)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    pauses = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                argv0 = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")[0]
                owner = os.stat(f"/proc/{entry}").st_uid
            except OSError:
                continue
            if argv0 == b"pybuild-pause" and owner == b.uid:
                pauses.append(int(entry))
    assert pauses == [int(pid_file.read_text())]


def test_help_and_version_join_nothing(world) -> None:
    b = world["users"]["pbrl-b"]
    pid_file = Path(f"/tmp/pybuild-{b.uid}/userns/pause.pid")
    if pid_file.exists():
        os.kill(int(pid_file.read_text()), 9)
        pid_file.unlink()
    for args in (["--help"], ["build", "--help"], ["run", "--help"], ["image", "ls", "--help"], ["network", "ls", "--help"],
                 ["version"], ["--version"], ["run", "--no-such-flag", "x"]):
        assert b.run(world["pybuild"], *args).returncode in (0, 125), args
    assert not pid_file.exists()
    b.run(world["pybuild"], "ps", check=True)  # the click-free ps joins, as every store command
    assert pid_file.exists()
    os.kill(int(pid_file.read_text()), 9)
    pid_file.unlink()
    b.run(world["pybuild"], "network", "ls", check=True)  # a module's group: its leaves join
    assert pid_file.exists()


def test_device_option_binds_the_host_node(world) -> None:
    img = f"{world['host']}/base/busybox:1"
    _run(world, "pbrl-a", "pull", img, check=True)
    out = _run(world, "pbrl-a", "run", "--rm", "--network", "none", "--device", "/dev/null:/dev/xnull", img, "sh", "-c",
               "echo hi > /dev/xnull && stat -c '%t:%T %F' /dev/xnull", check=True).stdout
    assert out == "1:3 character special file\n"


def test_limits_refused(world) -> None:
    """v1 (this host), or v2 with the user's processes outside any delegated subtree (the test's own
    cgroup): every limit is refused, saying why."""
    img = f"{world['host']}/base/busybox:1"
    why = "cgroup v1" if cgroups.detect_version() == "v1" else "is not delegated to this user"
    for flag in (["--memory", "64m"], ["--pids-limit", "10"], ["--cpus", "1"]):
        p = _run(world, "pbrl-a", "run", "--rm", "--network", "none", *flag, img, "true")
        assert p.returncode != 0, flag
        assert "rootless" in p.stderr and why in p.stderr, p.stderr
        assert "Traceback" not in p.stderr
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr


def _delegate(path: Path, user) -> None:
    """Chown a new cgroup to ``user`` as systemd delegates ``user@UID.service``: the directory and the
    files that let the user manage it."""
    path.mkdir()
    for p in (path, path / "cgroup.procs", path / "cgroup.subtree_control", path / "cgroup.threads"):
        os.chown(p, user.uid, user.gid)


def test_v2_delegated_limits(world) -> None:
    """Pure cgroup v2: a subtree delegated to the user as systemd delegates ``user@UID.service``
    (``memory pids cpu`` offered, the user's process in a child of it) holds each container in
    ``<delegated>/pybuild/<id>`` with its limits and the default pids limit; ``--cpuset-cpus`` (cpuset
    not delegated) is refused naming the controller and the drop-in."""
    if cgroups.detect_version() != "v2":
        pytest.skip("host uses cgroup v1 controllers (hybrid: empty v2 tree at /sys/fs/cgroup/unified); "
                    "the rootless delegated v2 path runs only on a pure v2 host")
    user = world["users"]["pbrl-a"]
    img = f"{world['host']}/base/busybox:1"
    _run(world, "pbrl-a", "pull", img, check=True)     # also starts the pause process outside the test's cgroups
    top = Path(cgroups.CGROUP_ROOT) / f"pbtest-{secrets.token_hex(4)}"      # root's, like user-UID.slice
    top.mkdir()
    try:
        Path(cgroups.CGROUP_ROOT, "cgroup.subtree_control").write_text("+memory +pids +cpu")
        (top / "cgroup.subtree_control").write_text("+memory +pids +cpu")
        delegated = top / "user@.service"
        _delegate(delegated, user)
        _delegate(delegated / "shell", user)        # where the user's processes run, as app.slice/...
        wrap = ("sh", "-c", f'echo $$ > {delegated}/shell/cgroup.procs && exec "$@"', "sh")
        files = "/sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max"   # its cgroup namespace
        out = _run(world, "pbrl-a", "run", "--rm", "--network", "none", "--memory", "64m", "--pids-limit", "10",
                   "--cpus", "0.5", img, "cat", *files.split(), wrap=wrap,
                   check=True).stdout.splitlines()
        assert out[:3] == [str(64 << 20), "10", "50000 100000"], out
        assert _run(world, "pbrl-a", "run", "--rm", "--network", "none", img, "cat", "/sys/fs/cgroup/pids.max",
                    wrap=wrap, check=True).stdout == "4096\n"
        assert not [d for d in (delegated / "pybuild").iterdir() if d.is_dir()]      # --rm removed its cgroups
        p = _run(world, "pbrl-a", "run", "--rm", "--network", "none", "--cpuset-cpus", "0", img, "true", wrap=wrap)
        assert p.returncode != 0 and "cpuset cgroup controller" in p.stderr and "user@.service.d" in p.stderr, p.stderr
        assert "Traceback" not in p.stderr
    finally:
        for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            procs = d / "cgroup.procs"
            kill_pids(procs.read_text().split() if procs.exists() else ())
            for _ in range(100):
                try:
                    d.rmdir()
                    break
                except OSError:
                    time.sleep(0.05)
        top.rmdir()


def test_push_and_pull(world) -> None:
    host = world["host"]
    _run(world, "pbrl-a", "pull", f"{host}/base/busybox:1", check=True)
    _run(world, "pbrl-a", "build", "-q", "-t", "app:1", world["ctx"], check=True)
    _run(world, "pbrl-a", "push", "app:1", f"{host}/rootless/app:1", check=True)
    fresh = world["asroot"]
    fresh("pull", f"{host}/rootless/app:1", env=world["env"], check=True)
    out = fresh("run", "--rm", "--network", "none", f"{host}/rootless/app:1", "stat", "-c", "%u", "/home/app/f",
                env=world["env"], check=True)
    assert out.stdout == "1000\n"


def test_second_user_sees_nothing_of_the_first(world) -> None:
    img = f"{world['host']}/base/busybox:1"
    _run(world, "pbrl-a", "pull", img, check=True)
    cid = _run(world, "pbrl-a", "create", "--network", "none", "--name", "mine", img, "true", check=True).stdout.strip()
    try:
        assert "base/busybox" in _run(world, "pbrl-a", "images", check=True).stdout
        b_images = _run(world, "pbrl-b", "images", check=True).stdout
        assert "base/busybox" not in b_images
        b_ps = _run(world, "pbrl-b", "ps", "-a", check=True).stdout
        assert "mine" not in b_ps and cid[:12] not in b_ps
        assert _run(world, "pbrl-b", "rm", "mine").returncode != 0
    finally:
        _run(world, "pbrl-a", "rm", "-f", cid)


def test_single_id_fallback(world) -> None:
    s = world["users"]["pbrl-single"]
    assert s.subuid is None
    img = f"{world['host']}/base/busybox:1"
    first = _run(world, "pbrl-single", "pull", img, check=True)
    assert "no subordinate ids for pbrl-single" in first.stderr and "usermod --add-subuids" in first.stderr
    out = _run(world, "pbrl-single", "run", "--rm", "--network", "none", img, "id", "-u", check=True)
    assert out.stdout == "0\n"
    assert "no subordinate ids" not in out.stderr
    pid = int(Path(f"/tmp/pybuild-{s.uid}/userns/pause.pid").read_text())
    assert Path(f"/proc/{pid}/uid_map").read_text().split() == ["0", str(s.uid), "1"]


def test_nothing_in_the_system_store(world) -> None:
    """Last in the module: after everything the users did, /var/lib/pybuild and /run/pybuild hold
    nothing of theirs (their uid or subordinate ids)."""
    uids = set().union(*(u.ids() for u in world["users"].values()))
    _run(world, "pbrl-a", "pull", f"{world['host']}/base/busybox:1", check=True)
    _run(world, "pbrl-a", "run", "--rm", "--network", "none", f"{world['host']}/base/busybox:1", "true", check=True)
    assert (Path(world["users"]["pbrl-a"].home) / ".local/share/pybuild/blobs").is_dir()
    for top in ("/var/lib/pybuild", "/run/pybuild"):
        assert _owned_by(top, uids) == []


def _busybox_plus(path: Path, busybox_tar: Path, extra, data: bytes | None = None) -> None:
    """busybox plus the member ``extra`` (a TarInfo; ``data``: its content)."""
    import io
    import tarfile

    with tarfile.open(busybox_tar) as src, tarfile.open(path, "w") as out:
        for m in src.getmembers():
            out.addfile(m, src.extractfile(m) if m.isfile() else None)
        out.addfile(extra, io.BytesIO(data) if data is not None else None)


def test_device_nodes_skipped_and_ids_outside_the_map_refused(world, busybox_tar, tmp_path_factory) -> None:
    import tarfile

    d = BASE / "tars"
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o755)
    dev = tarfile.TarInfo("dev/odd")      # a character device (1:3)
    dev.type, dev.devmajor, dev.devminor, dev.mode = tarfile.CHRTYPE, 1, 3, 0o666
    dev_tar = d / "dev.tar"
    _busybox_plus(dev_tar, busybox_tar, dev)
    far = tarfile.TarInfo("etc/far")
    far.uid = far.gid = 70000  # beyond the 65536 subordinate ids (+1) the user has
    far.size = 2
    far_tar = d / "far.tar"
    _busybox_plus(far_tar, busybox_tar, far, b"x\n")
    for t in (dev_tar, far_tar):
        os.chmod(t, 0o644)
    _run(world, "pbrl-a", "import", str(dev_tar), "odd:dev", check=True)
    p = _run(world, "pbrl-a", "run", "--rm", "--network", "none", "odd:dev", "ls", "/dev/odd", "/bin/sh")
    assert p.returncode != 0 or "/dev/odd" not in p.stdout
    assert p.stderr.count("device nodes cannot be created in a rootless user namespace, skipped: dev/odd") == 1, p.stderr
    _run(world, "pbrl-a", "import", str(far_tar), "odd:far", check=True)
    p = _run(world, "pbrl-a", "run", "--rm", "--network", "none", "odd:far", "true")
    assert p.returncode != 0
    assert "'etc/far': owner 70000:70000 is outside this user's id map" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr
