"""``pybuild bundle``: an OCI runtime bundle (``config.json`` + ``rootfs/``) that runc or crun can run.

The rootfs is the union of the image's layer snapshots, seen through a read-only overlay mount and
copied out file by file (owners, modes, times, hardlinks, symlinks, devices, fifos and
``user.``/``security.`` xattrs kept). ``config.json`` is :func:`runner.spec.make_spec` with a relative
root path, rlimits clamped to this process's hard limits (another runtime cannot raise them either)
and no ``cgroupsPath`` (the runtime picks one from the container id).
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile

from layers.atomic import write_atomic

from .errors import RuntimeFailure
from .options import RunOptions
from .rootfs import OverlayMount, resolve_in_root
from .spec import clamp_rlimits, make_spec

__all__ = ["write_bundle", "copy_tree"]


def _copy_xattrs(src: str, dst: str) -> None:
    try:
        names = os.listxattr(src, follow_symlinks=False)
    except OSError:
        return
    for name in names:
        if name.startswith(("user.", "security.")):
            try:
                os.setxattr(dst, name, os.getxattr(src, name, follow_symlinks=False), follow_symlinks=False)
            except OSError:
                continue  # a filesystem without that namespace: the file itself is still right


def copy_tree(src: str, dst: str) -> None:
    """Copy ``src`` into the existing directory ``dst`` exactly (no symlink is followed)."""
    links: dict[tuple[int, int], str] = {}
    for dirpath, dirnames, filenames in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        out_dir = dst if rel == "." else os.path.join(dst, rel)
        for name in dirnames + filenames:
            s = os.path.join(dirpath, name)
            d = os.path.join(out_dir, name)
            st = os.lstat(s)
            mode = st.st_mode
            if stat.S_ISDIR(mode):
                os.mkdir(d, 0o700)
            elif stat.S_ISLNK(mode):
                os.symlink(os.readlink(s), d)
            elif st.st_nlink > 1 and (st.st_dev, st.st_ino) in links:
                os.link(links[(st.st_dev, st.st_ino)], d)
                continue
            elif stat.S_ISREG(mode):
                with open(s, "rb") as fi, open(d, "xb") as fo:
                    shutil.copyfileobj(fi, fo, 1 << 20)
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
                os.mknod(d, mode, st.st_rdev)
            else:
                continue  # sockets are not part of an image
            if st.st_nlink > 1 and not stat.S_ISDIR(mode):
                links[(st.st_dev, st.st_ino)] = d
            os.chown(d, st.st_uid, st.st_gid, follow_symlinks=False)
            _copy_xattrs(s, d)
            if not stat.S_ISLNK(mode):
                os.chmod(d, stat.S_IMODE(mode))
            os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
    # directory times last: filling a directory changes its mtime
    for dirpath, dirnames, _ in os.walk(src):
        for name in dirnames:
            s = os.path.join(dirpath, name)
            st = os.lstat(s)
            os.utime(os.path.join(dst, os.path.relpath(s, src)), ns=(st.st_atime_ns, st.st_mtime_ns))


def write_bundle(store, image_ref: str, directory: str, opts: RunOptions | None = None) -> str:
    """Write ``directory/config.json`` and ``directory/rootfs`` for ``image_ref``; the bundle path.

    ``directory`` may exist but must not already hold a ``rootfs`` or ``config.json``.
    """
    opts = opts or RunOptions(network="none")
    directory = os.path.abspath(directory)
    rootfs = os.path.join(directory, "rootfs")
    config_path = os.path.join(directory, "config.json")
    if os.path.lexists(rootfs) or os.path.lexists(config_path):
        raise RuntimeFailure(f"bundle {directory}: already holds rootfs or config.json")
    record = store.images.resolve(image_ref)
    image = store.images.load(record)
    lowerdirs = [str(p) for p in store.snapshots.lowerdirs(image)]
    os.makedirs(directory, mode=0o755, exist_ok=True)
    os.mkdir(rootfs, 0o755)
    with tempfile.TemporaryDirectory(prefix=".mnt-", dir=directory) as mnt:
        with OverlayMount(lowerdirs, None, None, mnt) as merged:
            copy_tree(merged, rootfs)
    image_config = getattr(image, "config", image)
    etc = resolve_in_root(rootfs, "/etc")
    spec = make_spec(image_config, opts, rootfs="rootfs", etc_dir=etc if os.path.isdir(etc) else None,
                     container_id=os.path.basename(directory))
    write_atomic(config_path, clamp_rlimits(spec).to_json(indent=2), 0o644)
    return directory
