"""The container's terminal: the pty made inside it, and the relay between it and the caller's terminal.

:func:`open_pty` runs in the container's init after ``pivot_root`` (the pair comes from the
container's own ``/dev/pts`` instance); :func:`relay_pty` and :func:`copy_winsize` run in the caller.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import struct
import termios

__all__ = ["open_pty", "relay_pty", "copy_winsize", "drain"]

_TIOCSPTLCK = 0x40045431
_TIOCGPTN = 0x80045430


def open_pty() -> tuple[int, int]:
    """A pty pair from the container's own ``/dev/pts`` instance (after pivot_root)."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, _TIOCSPTLCK, struct.pack("i", 0))
    number = struct.unpack("I", fcntl.ioctl(master, _TIOCGPTN, struct.pack("I", 0)))[0]
    slave = os.open(f"/dev/pts/{number}", os.O_RDWR | os.O_NOCTTY)
    return master, slave


def relay_pty(master: int, stdin_fd: int, stdout_fd: int, *, forward_input: bool = True,
              wakeup_fd: int | None = None) -> None:
    """Copy between the caller's terminal and the container's pty ``master`` until the container side closes.

    With ``forward_input`` the caller's terminal is raw meanwhile (restored on return). A readable
    ``wakeup_fd`` (a signal arrived, see :class:`runner.signals.SignalForwarder`) is drained, so the
    forwarder's handler runs while the relay waits.
    """
    saved = None
    if os.isatty(stdin_fd):
        copy_winsize(stdin_fd, master)
        if forward_input:
            saved = termios.tcgetattr(stdin_fd)
            import tty

            tty.setraw(stdin_fd, termios.TCSANOW)   # keep input typed before the container started
    watch = [master, stdin_fd] if forward_input else [master]
    if wakeup_fd is not None:
        watch.append(wakeup_fd)
    try:
        while True:
            try:
                ready, _, _ = select.select(watch, [], [])
            except InterruptedError:
                continue
            if wakeup_fd is not None and wakeup_fd in ready:
                drain(wakeup_fd)
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError as exc:
                    if exc.errno == errno.EIO:
                        return
                    raise
                if not data:
                    return
                os.write(stdout_fd, data)
            if stdin_fd in ready:
                data = os.read(stdin_fd, 65536)
                if not data:
                    watch.remove(stdin_fd)
                    os.write(master, b"\x04")
                else:
                    os.write(master, data)
    finally:
        if saved is not None:
            termios.tcsetattr(stdin_fd, termios.TCSADRAIN, saved)


def drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def copy_winsize(src: int, dst: int) -> None:
    try:
        size = fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(dst, termios.TIOCSWINSZ, size)
    except OSError:
        pass
