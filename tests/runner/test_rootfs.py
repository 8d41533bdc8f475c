"""runner.rootfs.resolve_in_root and mount option parsing: symlinks never lead out of the root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runner import syscalls as sc
from runner.errors import SandboxError
from runner.rootfs import _mkdirs_in_root, parse_options, resolve_in_root


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "usr" / "lib").mkdir(parents=True)
    os.symlink("/", r / "abs")                       # absolute: means the root itself
    os.symlink("../../../../..", r / "usr" / "up")   # climbs far above: clamped
    os.symlink("usr/lib", r / "lib")                 # relative, inside
    os.symlink("a/../../x", r / "chain")            # SECURITY.md case 3 shape
    os.symlink("loop2", r / "loop1")
    os.symlink("loop1", r / "loop2")
    os.symlink(str(tmp_path / "outside"), r / "hostpath")
    return r


@pytest.mark.parametrize("path,expected", [
    ("/etc/passwd", "etc/passwd"),
    ("/abs/etc", "etc"),
    ("/usr/up/etc", "etc"),
    ("/lib/x", "usr/lib/x"),
    ("/chain", "x"),
    ("/../../etc", "etc"),
    ("/hostpath/f", "{outside}/f"),
])
def test_resolution_stays_inside(root: Path, path: str, expected: str) -> None:
    outside = str(root.parent / "outside").lstrip("/")
    got = resolve_in_root(str(root), path)
    assert got == os.path.join(str(root), expected.format(outside=outside))
    assert got.startswith(str(root) + "/")


def test_symlink_loop_is_an_error(root: Path) -> None:
    with pytest.raises(SandboxError, match="too many levels"):
        resolve_in_root(str(root), "/loop1/x")


def test_mkdirs_follows_links_inside(root: Path, tmp_path: Path) -> None:
    made = _mkdirs_in_root(str(root), "/hostpath/deeper")
    assert made.startswith(str(root) + "/") and os.path.isdir(made)
    assert not (tmp_path / "outside").exists()


def test_parse_options() -> None:
    flags, prop, data = parse_options(["nosuid", "ro", "rbind", "rprivate", "size=1m", "mode=755", "rw"])
    assert flags == sc.MS_NOSUID | sc.MS_BIND | sc.MS_REC
    assert prop == sc.MS_PRIVATE | sc.MS_REC and data == ["size=1m", "mode=755"]


def test_seed_volume_copies_without_following(tmp_path: Path) -> None:
    """An anonymous volume's seed: modes, owners and times kept; symlinks copied as links (one to the
    host's /etc/passwd stays a link), a device node recreated and never read, a fifo recreated, and
    the image path itself resolved inside the root (a link that climbs out is clamped)."""
    import stat

    from runner.rootfs import seed_volume

    if os.geteuid() != 0:
        pytest.skip("needs root to chown and mknod")
    root = tmp_path / "root"
    v = root / "srv" / "data"
    (v / "sub").mkdir(parents=True)
    (v / "sub" / "f").write_text("seed\n")
    os.chown(v / "sub" / "f", 1234, 5678)
    os.chmod(v / "sub" / "f", 0o4750)                        # after chown, which clears setuid
    os.chown(v, 33, 33)
    os.chmod(v, 0o1770)
    os.utime(v / "sub" / "f", (1000, 2000))
    os.symlink("/etc/passwd", v / "passwd")
    os.mknod(v / "zero", stat.S_IFCHR | 0o666, os.makedev(1, 5))
    os.mkfifo(v / "pipe")
    os.symlink("../../../../srv", root / "climb")            # resolved inside: /climb/data = /srv/data
    target = tmp_path / "vol"
    target.mkdir()
    seed_volume(str(root), "/climb/data", str(target))
    st = os.lstat(target / "sub" / "f")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), st.st_mtime) == (1234, 5678, 0o4750, 2000)
    assert (target / "sub" / "f").read_text() == "seed\n"
    assert os.readlink(target / "passwd") == "/etc/passwd"
    z = os.lstat(target / "zero")
    assert stat.S_ISCHR(z.st_mode) and z.st_rdev == os.makedev(1, 5)
    assert stat.S_ISFIFO(os.lstat(target / "pipe").st_mode)
    t = os.stat(target)
    assert (t.st_uid, stat.S_IMODE(t.st_mode)) == (33, 0o1770)
    empty = tmp_path / "empty"
    empty.mkdir()
    seed_volume(str(root), "/not/there", str(empty))          # nothing in the image: stays empty
    assert os.listdir(empty) == []
    (root / "file").write_text("x")
    with pytest.raises(SandboxError, match="not a directory"):
        seed_volume(str(root), "/file", str(empty))


def _volatile(options: str) -> bool:
    """Does an overlay's option list say volatile (``volatile``, or ``fsync=volatile`` since Linux 6.5)?"""
    return bool({"volatile", "fsync=volatile"} & set(options.split(",")))


@pytest.mark.parametrize("volatile", [True, False])
def test_overlay_volatile_only_when_asked(tmp_path: Path, volatile: bool) -> None:
    """A --rm container's overlay is mounted ``volatile`` (its unmount does not sync the disk holding
    the upper dir); any other is not, and the kernel would refuse to mount a volatile one's upper again."""
    from runner.rootfs import OverlayMount

    lower, upper, work, target = (tmp_path / n for n in ("lower", "upper", "work", "mnt"))
    lower.mkdir()
    (lower / "f").write_text("from the image\n")
    overlay = OverlayMount([str(lower)], str(upper), str(work), str(target), volatile=volatile)
    overlay.mount()
    try:
        (target / "g").write_text("written\n")
        with open("/proc/self/mountinfo") as f:
            line = next(x for x in f if x.split()[4] == str(target))
        assert _volatile(line.split(" - ")[1].split()[2]) == volatile
    finally:
        overlay.unmount()
    assert (upper / "g").read_text() == "written\n" and not os.path.ismount(target)
    again = OverlayMount([str(lower)], str(upper), str(work), str(target))
    if volatile:
        with pytest.raises(SandboxError):
            again.mount()
    else:
        again.mount()
        again.unmount()


def test_run_rm_mounts_its_root_volatile(pybuild, busybox_tar) -> None:
    assert pybuild("import", str(busybox_tar), "vol/busybox:1").returncode == 0
    rm = pybuild("run", "--rm", "--network", "none", "vol/busybox:1", "grep", " / ", "/proc/mounts", check=True)
    kept = pybuild("run", "--name", "kept", "--network", "none", "vol/busybox:1", "grep", " / ", "/proc/mounts",
                   check=True)
    assert _volatile(rm.stdout.split()[3]) and not _volatile(kept.stdout.split()[3])
    pybuild("rm", "kept", check=True)
