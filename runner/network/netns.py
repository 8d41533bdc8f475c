"""Named network namespaces kept alive by a bind mount at ``<state_dir>/netns/<id>``.

The namespace is created on a short-lived thread: ``unshare(CLONE_NEWNET)`` and ``setns`` act on the
calling thread only, so the process' own namespace never changes. The same trick runs a function
inside a namespace (:func:`run_in`): sockets it opens stay in that namespace after it returns.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from .. import syscalls
from .errors import NetworkError

__all__ = ["create", "remove", "run_in", "on_thread", "enter", "netns_path", "is_netns"]

TYPE_CHECKING = False     # not typing.TYPE_CHECKING: the shim imports this module, typing costs 2 MiB
if TYPE_CHECKING:
    from typing import TypeVar

    T = TypeVar("T")


def netns_path(state_dir: str, container_id: str) -> str:
    """Where the namespace of ``container_id`` is bind-mounted."""
    return os.path.join(state_dir, "netns", container_id)


def _nsfs_dev() -> int:
    return os.stat("/proc/self/ns/net").st_dev


def is_netns(path: str) -> bool:
    """True when ``path`` is a mounted namespace (an nsfs bind mount: nsfs has one device number)."""
    try:
        return os.stat(path).st_dev == _nsfs_dev()
    except OSError:
        return False


def on_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` on a fresh thread (whose namespaces may change) and return or raise its result."""
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # re-raised on the caller's thread below
            box["error"] = exc

    t = threading.Thread(target=target, name="pybuild-netns")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def create(path: str) -> str:
    """Create a new network namespace with loopback down, bind-mounted at ``path``; return ``path``.

    Fails with :class:`NetworkError` if ``path`` is already a namespace.
    """
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    if is_netns(path):
        raise NetworkError(f"network namespace {path}: already exists")
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o444)
    os.close(fd)

    def make() -> None:
        syscalls.unshare(syscalls.CLONE_NEWNET)
        syscalls.mount(f"/proc/self/task/{threading.get_native_id()}/ns/net", path, "none", syscalls.MS_BIND)

    try:
        on_thread(make)
    except OSError as exc:
        _unlink_quiet(path)
        raise NetworkError(f"create network namespace {path}: {exc.strerror or exc}") from exc
    return path


def remove(path: str) -> bool:
    """Unmount and delete the namespace file at ``path``; True if something was removed. Idempotent."""
    removed = False
    while is_netns(path):
        try:
            syscalls.umount2(path, syscalls.MNT_DETACH)
        except OSError as exc:
            raise NetworkError(f"unmount network namespace {path}: {exc.strerror}") from None
        removed = True
    return _unlink_quiet(path) or removed


def _unlink_quiet(path: str) -> bool:
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False


def enter(path: str) -> None:
    """``setns`` the calling thread (or a freshly forked child) into the namespace at ``path``."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        syscalls.setns(fd, syscalls.CLONE_NEWNET)
    finally:
        os.close(fd)


def run_in(path: str, fn: Callable[[], T]) -> T:
    """Call ``fn`` on a thread that has joined the namespace at ``path``; return its result.

    File descriptors ``fn`` opens (sockets, netlink) stay bound to that namespace.
    """
    if not is_netns(path):
        raise NetworkError(f"network namespace {path}: not found")

    def inner() -> T:
        try:
            enter(path)
        except OSError as exc:
            raise NetworkError(f"join network namespace {path}: {exc.strerror or exc}") from exc
        return fn()

    return on_thread(inner)
