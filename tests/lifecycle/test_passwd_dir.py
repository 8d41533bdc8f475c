"""Which layer's /etc/passwd a container's user lookup reads (runner.fromimage.passwd_dir)."""

from __future__ import annotations

import os

from runner.fromimage import passwd_dir


def _layer(tmp_path, name: str, passwd: str | None = None, whiteout: bool = False, opaque: bool = False) -> str:
    d = tmp_path / name
    (d / "etc").mkdir(parents=True)
    if passwd is not None:
        (d / "etc" / "passwd").write_text(passwd)
    if whiteout:
        os.mknod(d / "etc" / "passwd", 0o600 | 0o020000, os.makedev(0, 0))
    if opaque:
        os.setxattr(d / "etc", "trusted.overlay.opaque", b"y")
    return str(d)


def test_topmost_regular_passwd_wins(tmp_path):
    low = _layer(tmp_path, "low", passwd="root:x:0:0::/root:/bin/sh\n")
    mid = _layer(tmp_path, "mid")
    top = _layer(tmp_path, "top", passwd="app:x:1:1::/:/bin/sh\n")
    assert passwd_dir([top, mid, low]) == os.path.join(top, "etc")
    assert passwd_dir([mid, low]) == os.path.join(low, "etc")


def test_a_deleted_passwd_is_none_not_the_whiteout(tmp_path):
    low = _layer(tmp_path, "low", passwd="root:x:0:0::/root:/bin/sh\n")
    top = _layer(tmp_path, "top", whiteout=True)
    assert passwd_dir([top, low]) is None


def test_an_opaque_etc_hides_the_layers_below(tmp_path):
    low = _layer(tmp_path, "low", passwd="root:x:0:0::/root:/bin/sh\n")
    top = _layer(tmp_path, "top", opaque=True)
    assert passwd_dir([top, low]) is None
