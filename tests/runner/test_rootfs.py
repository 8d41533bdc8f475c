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
