"""The container's root filesystem: the overlay mount, and the mounts made inside the new mount namespace.

:class:`OverlayMount` is used on the host side (``pybuild run``, the builder's RUN steps).
:func:`prepare_rootfs` runs in the sandbox's child, in its own mount namespace, and ends with
``pivot_root``: ``/proc``, ``/dev`` (tmpfs, standard device nodes, ``/dev/pts``, ``/dev/shm``,
``/dev/mqueue``), ``/sys`` read-only, ``/sys/fs/cgroup``, the spec's binds and tmpfs, Docker's masked
and read-only paths, and a read-only root when asked.

Every mount target is resolved inside the root with :func:`resolve_in_root`: symlinks in the image
are followed as if the root were ``/`` (an absolute or ``..``-climbing link is clamped to the root),
so a link such as ``/proc -> /`` can never turn a mount into a mount on the host (runc
CVE-2019-19921, CVE-2025-31133). Nothing else runs in the namespace while this happens.
"""

from __future__ import annotations

import errno
import os
import stat

from . import syscalls as sc
from . import upperfs
from .errors import SandboxError
from .ocispec import Mount, Spec
from .overlaykind import overlay_options, uses_fuse

__all__ = ["OverlayMount", "resolve_in_root", "mkdirs_in_root", "prepare_rootfs", "parse_options", "MOUNT_FLAGS",
           "seed_volume"]

_MAX_SYMLINKS = 255

# runtime-spec mount option -> (flag, clear?)
MOUNT_FLAGS: dict[str, tuple[int, bool]] = {
    "ro": (sc.MS_RDONLY, False), "rw": (sc.MS_RDONLY, True),
    "nosuid": (sc.MS_NOSUID, False), "suid": (sc.MS_NOSUID, True),
    "nodev": (sc.MS_NODEV, False), "dev": (sc.MS_NODEV, True),
    "noexec": (sc.MS_NOEXEC, False), "exec": (sc.MS_NOEXEC, True),
    "sync": (sc.MS_SYNCHRONOUS, False), "async": (sc.MS_SYNCHRONOUS, True),
    "dirsync": (sc.MS_DIRSYNC, False), "remount": (sc.MS_REMOUNT, False),
    "mand": (sc.MS_MANDLOCK, False), "nomand": (sc.MS_MANDLOCK, True),
    "atime": (sc.MS_NOATIME, True), "noatime": (sc.MS_NOATIME, False),
    "diratime": (sc.MS_NODIRATIME, True), "nodiratime": (sc.MS_NODIRATIME, False),
    "bind": (sc.MS_BIND, False), "rbind": (sc.MS_BIND | sc.MS_REC, False),
    "relatime": (sc.MS_RELATIME, False), "norelatime": (sc.MS_RELATIME, True),
    "strictatime": (sc.MS_STRICTATIME, False), "nostrictatime": (sc.MS_STRICTATIME, True),
}
_PROPAGATION = {"private": sc.MS_PRIVATE, "rprivate": sc.MS_PRIVATE | sc.MS_REC, "slave": sc.MS_SLAVE,
                "rslave": sc.MS_SLAVE | sc.MS_REC, "shared": sc.MS_SHARED, "rshared": sc.MS_SHARED | sc.MS_REC,
                "unbindable": sc.MS_UNBINDABLE, "runbindable": sc.MS_UNBINDABLE | sc.MS_REC}

# (name, mode, major, minor): the nodes runc and Docker create in every container's /dev
_DEVICES = (("null", 0o666, 1, 3), ("zero", 0o666, 1, 5), ("full", 0o666, 1, 7), ("random", 0o666, 1, 8),
            ("urandom", 0o666, 1, 9), ("tty", 0o666, 5, 0))
_DEV_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
              ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx"))


def resolve_in_root(root: str, path: str) -> str:
    """The host path of ``path`` as seen from inside ``root``, following symlinks but never leaving it.

    Components that do not exist are appended as they are. The result always starts with ``root``.
    """
    root = os.path.abspath(root)
    parts = [p for p in path.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            resolved.append(part)
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > _MAX_SYMLINKS:
                raise SandboxError(f"resolve {path} in {root}: too many levels of symbolic links")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)


def _mkdirs_in_root(root: str, path: str, mode: int = 0o755) -> str:
    """Create ``path`` (and parents) inside ``root``; every step is resolved inside the root.

    A symlink met on the way is followed as :func:`resolve_in_root` does (clamped to the root),
    so the directories are made where the link points *inside* the root.
    """
    root = os.path.abspath(root)
    for _ in range(_MAX_SYMLINKS):
        host = resolve_in_root(root, path)
        if os.path.isdir(host) and not os.path.islink(host):
            return host
        current = root
        for part in os.path.relpath(host, root).split("/"):
            if part == ".":
                continue
            current = os.path.join(current, part)
            try:
                os.mkdir(current, mode)
            except FileExistsError:
                if os.path.islink(current):
                    break                      # resolve again through the new link
                if not os.path.isdir(current):
                    raise SandboxError(f"mount target {path}: {os.path.relpath(current, root)} is not a directory") from None
    raise SandboxError(f"mount target {path}: too many levels of symbolic links")


mkdirs_in_root = _mkdirs_in_root   # public name (the builder makes WORKDIRs with it)


def _ensure_target(root: str, dest: str, want_dir: bool) -> str:
    if want_dir:
        return _mkdirs_in_root(root, dest)
    _mkdirs_in_root(root, os.path.dirname(dest.rstrip("/")) or "/")
    host = resolve_in_root(root, dest)
    if not os.path.lexists(host):
        fd = os.open(host, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        os.close(fd)
    return host


def parse_options(options: tuple[str, ...] | list[str]) -> tuple[int, int, list[str]]:
    """runtime-spec mount options -> (mount flags, propagation flags, filesystem data options)."""
    flags, prop, data = 0, 0, []
    for opt in options:
        if opt in MOUNT_FLAGS:
            bit, clear = MOUNT_FLAGS[opt]
            flags = flags & ~bit if clear else flags | bit
        elif opt in _PROPAGATION:
            prop |= _PROPAGATION[opt]
        else:
            data.append(opt)
    return flags, prop, data


class OverlayMount:
    """``with OverlayMount(lowerdirs, upper, work, target) as rootfs:`` an overlayfs at ``target``.

    ``lowerdirs`` are top-most first, as overlayfs wants them (``store.snapshots.lowerdirs``); with
    ``upper=None`` the mount is read-only (overlayfs then needs at least two lower dirs, so a single
    one is bind-mounted read-only instead). Unmounts on exit, lazily if it is still busy.
    ``volatile``: overlayfs's option, for an upper dir thrown away after one mount (a ``--rm``
    container's, as Podman does): the unmount does not ``syncfs`` the disk holding it (~10-90 ms
    here); that upper dir cannot be mounted again. Without kernel support (or with fuse), ignored.
    """

    def __init__(self, lowerdirs: list[str], upper: str | None, work: str | None, target: str, *,
                 volatile: bool = False) -> None:
        if not lowerdirs:
            raise SandboxError(f"overlay at {target}: no lower directories")
        self.lowerdirs = [os.path.abspath(d) for d in lowerdirs]
        self.upper = os.path.abspath(upper) if upper else None
        self.work = os.path.abspath(work) if work else None
        self.target = os.path.abspath(target)
        self.volatile = volatile
        self.mounted = False

    def mount(self) -> str:
        for d in self.lowerdirs:
            if any(c in d for c in ",:"):
                raise SandboxError(f"overlay lowerdir {d}: path contains ',' or ':'")
        os.makedirs(self.target, mode=0o755, exist_ok=True)
        if self.upper is None and len(self.lowerdirs) == 1:
            sc.mount(self.lowerdirs[0], self.target, None, sc.MS_BIND)
            sc.mount(None, self.target, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY)
        else:
            fds: list[int] = []
            lowers = self.lowerdirs
            upper = f",upperdir={self.upper},workdir={self.work}" if self.upper else ""
            if self.upper:
                os.makedirs(self.upper, mode=0o755, exist_ok=True)
                os.makedirs(self.work, mode=0o700, exist_ok=True)
            try:
                if len("lowerdir=" + ":".join(lowers) + upper) >= 4096:
                    # too many layers for one page of options: each as /proc/self/fd/N, held for the mount
                    fds = [os.open(d, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC) for d in lowers]
                    lowers = [f"/proc/self/fd/{fd}" for fd in fds]
                data = "lowerdir=" + ":".join(lowers) + upper + overlay_options()
                if len(data) >= 4096:
                    raise SandboxError(f"overlay at {self.target}: {len(self.lowerdirs)} layers make the "
                                       "mount options longer than a page")
                if not data.endswith(",userxattr") and uses_fuse():
                    from . import fuseoverlay

                    fuseoverlay.mount(data, self.target, tuple(fds))
                elif self.volatile and self.upper:
                    try:
                        sc.mount("overlay", self.target, "overlay", 0, data + ",volatile")
                    except OSError as exc:
                        if exc.errno != errno.EINVAL:        # EINVAL: before Linux 5.10
                            raise
                        sc.mount("overlay", self.target, "overlay", 0, data)
                else:
                    sc.mount("overlay", self.target, "overlay", 0, data)
            except OSError as exc:
                reason = upperfs.explain(self.upper, exc) if self.upper else exc.strerror
                raise SandboxError(f"mount overlay on {self.target}: {reason}") from None
            finally:
                for fd in fds:
                    os.close(fd)
        self.mounted = True
        return self.target

    def unmount(self) -> None:
        if not self.mounted:
            return
        try:
            sc.umount2(self.target)
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise SandboxError(f"unmount overlay {self.target}: {exc.strerror}") from None
            sc.umount2(self.target, sc.MNT_DETACH)
        self.mounted = False

    def __enter__(self) -> str:
        return self.mount()

    def __exit__(self, *exc) -> None:
        self.unmount()


def _mount_cgroupfs(root: str, dest: str, flags: int, cgroup_version: str, hierarchies: list[str]) -> None:
    target = _ensure_target(root, dest, True)
    if cgroup_version == "v2":
        sc.mount("cgroup2", target, "cgroup2", flags)
        return
    base = flags & ~sc.MS_RDONLY
    sc.mount("tmpfs", target, "tmpfs", base, "mode=755")
    for ctrls in hierarchies:
        sub = os.path.join(target, ctrls.replace("name=", ""))
        os.mkdir(sub, 0o755)
        data = ctrls if not ctrls.startswith("name=") else "none," + ctrls
        sc.mount("cgroup", sub, "cgroup", flags, data)
    sc.mount(None, target, None, sc.MS_REMOUNT | base | (flags & sc.MS_RDONLY))


def _mount_one(root: str, m: Mount, cgroup_version: str, hierarchies: list[str]) -> None:
    dest, kind = m.destination, m.type or "bind"
    flags, prop, data = parse_options(m.options)
    try:
        if kind == "bind" or flags & sc.MS_BIND:
            source = m.source or ""
            is_dir = os.path.isdir(source)
            target = _ensure_target(root, dest, is_dir)
            sc.mount(source, target, None, sc.MS_BIND | (flags & sc.MS_REC))
            remount = flags & ~(sc.MS_BIND | sc.MS_REC)
            if remount:
                sc.mount(None, target, None, sc.MS_REMOUNT | sc.MS_BIND | remount)
        elif kind == "cgroup":
            _mount_cgroupfs(root, dest, flags, cgroup_version, hierarchies)
            return
        elif kind == "sysfs":
            target = _ensure_target(root, dest, True)
            try:
                sc.mount(m.source or "sysfs", target, "sysfs", flags, ",".join(data) or None)
            except PermissionError:
                # sysfs cannot be mounted from a namespace that does not own the network ns (host network)
                sc.mount("/sys", target, None, sc.MS_BIND | sc.MS_REC)
                sc.mount(None, target, None, sc.MS_REMOUNT | sc.MS_BIND | (flags & ~sc.MS_REC))
        else:
            target = _ensure_target(root, dest, True)
            try:
                sc.mount(m.source or kind, target, kind, flags, ",".join(data) or None)
            except OSError as exc:
                # a rootless single-id map has no gid 5 (tty): devpts refuses gid=5, so leave it out (as runc)
                kept = [o for o in data if not o.startswith("gid=")]
                if exc.errno != errno.EINVAL or kind != "devpts" or kept == data:
                    raise
                sc.mount(m.source or kind, target, kind, flags, ",".join(kept) or None)
        if prop:
            sc.mount(None, target, None, prop)
    except OSError as exc:
        hint = _PROC_HINT if kind == "proc" and exc.errno == errno.EPERM else ""
        raise SandboxError(f"mount {kind} on {dest}: {exc.strerror}{hint}") from None


_PROC_HINT = (" (refused where the outer /proc is masked, as in an unprivileged container: builds run their "
              "RUN steps without a process sandbox there, containers cannot run)")


def _make_devices(root: str) -> None:
    dev = resolve_in_root(root, "/dev")
    for name, mode, major, minor in _DEVICES:
        path = os.path.join(dev, name)
        try:
            os.mknod(path, stat.S_IFCHR | mode, os.makedev(major, minor))
            os.chmod(path, mode)
        except PermissionError:
            fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o666)
            os.close(fd)
            sc.mount(f"/dev/{name}", path, None, sc.MS_BIND)
    for name, target in _DEV_LINKS:
        path = os.path.join(dev, name)
        if not os.path.lexists(path):
            os.symlink(target, path)


def _make_spec_devices(root: str, devices) -> None:
    """``linux.devices``: each node made at its path inside the root (parents resolved in the root)."""
    for d in devices:
        parent = _mkdirs_in_root(root, os.path.dirname(d.path) or "/")
        path = os.path.join(parent, os.path.basename(d.path))
        if os.path.lexists(path):
            os.unlink(path)
        kind = stat.S_IFCHR if d.type == "c" else stat.S_IFBLK
        mode = 0o666 if d.file_mode is None else d.file_mode
        try:
            os.mknod(path, kind | mode, os.makedev(d.major, d.minor))
        except PermissionError:  # rootless: no mknod in a user namespace; bind the host's node instead
            _bind_host_node(path, kind, d.major, d.minor)
            continue
        os.chmod(path, mode)
        os.chown(path, d.uid or 0, d.gid or 0)


def _bind_host_node(path: str, kind: int, major: int, minor: int) -> None:
    """Bind-mount the host's device node ``major:minor`` at ``path`` (found in /dev/char, /dev/block or /dev)."""
    want = os.makedev(major, minor)
    links = os.path.join("/dev", "char" if kind == stat.S_IFCHR else "block", f"{major}:{minor}")
    candidates = [links] + [os.path.join("/dev", n) for n in sorted(os.listdir("/dev"))]
    for c in candidates:
        try:
            st = os.stat(c)
        except OSError:
            continue
        if stat.S_IFMT(st.st_mode) == kind and st.st_rdev == want:
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o666))
            sc.mount(c, path, None, sc.MS_BIND)
            return
    raise SandboxError(f"device {major}:{minor}: no such node on the host to bind (rootless cannot mknod)")


def _mask(path: str) -> None:
    """Mask a path inside the (already pivoted) root: /dev/null over files, a read-only tmpfs over dirs."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    try:
        if stat.S_ISDIR(st.st_mode):
            sc.mount("tmpfs", path, "tmpfs", sc.MS_RDONLY, None)
        else:
            sc.mount("/dev/null", path, None, sc.MS_BIND)
    except OSError as exc:
        raise SandboxError(f"mask {path}: {exc.strerror}") from None


def _readonly(path: str) -> None:
    if not os.path.lexists(path):
        return
    try:
        sc.mount(path, path, None, sc.MS_BIND | sc.MS_REC)
        sc.mount(path, path, None, sc.MS_BIND | sc.MS_REC | sc.MS_REMOUNT | sc.MS_RDONLY
                 | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
    except OSError as exc:
        raise SandboxError(f"make {path} read-only: {exc.strerror}") from None


def cgroup_hierarchies() -> list[str]:
    """The cgroup v1 hierarchies of this process (``memory``, ``cpu,cpuacct``, ``name=systemd``...)."""
    out = []
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, _ = line.rstrip("\n").split(":", 2)
            if ctrls and os.path.isdir(os.path.join("/sys/fs/cgroup", ctrls.replace("name=", ""))):
                out.append(ctrls)
    return out


def prepare_rootfs(spec: Spec, cgroup_version: str) -> None:
    """Make every mount of ``spec`` under its root, ``pivot_root`` into it, then mask and protect paths.

    Runs in a fresh mount namespace (the caller has unshared it). Raises :class:`SandboxError`.
    """
    root = os.path.abspath(spec.root.path)
    hierarchies = cgroup_hierarchies() if cgroup_version == "v1" else []
    try:
        sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
        sc.mount(root, root, None, sc.MS_BIND | sc.MS_REC)
    except OSError as exc:
        raise SandboxError(f"prepare root {root}: {exc.strerror}") from None
    dev_is_tmpfs = False
    for m in spec.mounts:
        _mount_one(root, m, cgroup_version, hierarchies)
        if m.destination == "/dev" and m.type == "tmpfs":
            dev_is_tmpfs = True
    if dev_is_tmpfs:
        try:
            _make_devices(root)
            _make_spec_devices(root, spec.linux.devices)
        except OSError as exc:
            raise SandboxError(f"create device nodes in /dev: {exc.strerror}") from None
    cwd = spec.process.cwd
    try:  # Docker makes a missing working dir (root-owned) before the root can turn read-only
        _mkdirs_in_root(root, cwd)
    except OSError as exc:
        raise SandboxError(f"create working directory {cwd}: {exc.strerror}") from None
    try:
        os.chdir(root)
        sc.pivot_root(".", ".")
        sc.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC)
        sc.umount2(".", sc.MNT_DETACH)
        os.chdir("/")
    except OSError as exc:
        raise SandboxError(f"pivot_root into {root}: {exc.strerror}") from None
    _write_sysctls(spec.linux.sysctl)
    for path in spec.linux.masked_paths:
        _mask(path)
    for path in spec.linux.readonly_paths:
        _readonly(path)
    if spec.root.readonly:
        try:
            sc.mount(None, "/", None, sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY)
        except OSError as exc:
            raise SandboxError(f"make the root read-only: {exc.strerror}") from None


def _write_sysctls(sysctls) -> None:
    """``linux.sysctl`` into the container's ``/proc/sys`` (its own namespaces), before it turns read-only."""
    for key, value in sysctls:
        path = "/proc/sys/" + key.replace(".", "/")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                os.write(fd, value.encode())
            finally:
                os.close(fd)
        except OSError as exc:
            raise SandboxError(f"sysctl {key}={value}: {exc.strerror}") from None


def seed_volume(root: str, path: str, target: str) -> None:
    """Copy what the image has at ``path`` (resolved inside ``root``, the mounted rootfs) into the new,
    empty directory ``target``: an anonymous volume starts with the image's content, as Docker's do.

    Nothing is followed: directories are walked as they are, symlinks are copied as symlinks, device
    nodes and fifos are recreated (never read), sockets are skipped; modes, owners and times are kept,
    hardlinks become separate files and extended attributes are not copied. The target directory
    itself takes the mode and owner of the image's directory. A ``path`` that does not exist in the
    image leaves ``target`` empty (root-owned, 0755).
    """
    src = resolve_in_root(root, path)
    try:
        st = os.lstat(src)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        raise SandboxError(f"volume {path}: the image has a {_kind(st.st_mode)} there, not a directory")
    _copy_tree(src, target)
    _copy_meta(st, target, symlink=False)


def _kind(mode: int) -> str:
    return "symlink" if stat.S_ISLNK(mode) else "file" if stat.S_ISREG(mode) else "special file"


def _copy_meta(st: os.stat_result, path: str, *, symlink: bool) -> None:
    os.lchown(path, st.st_uid, st.st_gid)
    if not symlink:
        os.chmod(path, stat.S_IMODE(st.st_mode))      # after chown, which clears setuid bits
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _copy_tree(src: str, dst: str) -> None:
    with os.scandir(src) as entries:
        for entry in entries:
            s, d = entry.path, os.path.join(dst, entry.name)
            st = entry.stat(follow_symlinks=False)
            mode = st.st_mode
            if stat.S_ISDIR(mode):
                os.mkdir(d, 0o700)
                _copy_tree(s, d)
            elif stat.S_ISREG(mode):
                fd_in = os.open(s, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                try:
                    fd_out = os.open(d, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
                    try:
                        while os.sendfile(fd_out, fd_in, None, 1 << 30):
                            pass
                    finally:
                        os.close(fd_out)
                finally:
                    os.close(fd_in)
            elif stat.S_ISLNK(mode):
                os.symlink(os.readlink(s), d)
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
                os.mknod(d, mode, st.st_rdev)
            else:
                continue                            # sockets
            _copy_meta(st, d, symlink=stat.S_ISLNK(mode))
