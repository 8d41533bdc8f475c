"""``top`` rows as ``ps -ef`` prints them (Docker runs the host's ``ps`` over the container's PIDs),
and Docker's tabwriter layout for them."""

from __future__ import annotations

import time

__all__ = ["TOP_HEAD", "top_row", "tabwriter"]

TOP_HEAD = ("UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD")


def _user(uid: int) -> str:
    import pwd

    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
    return name if len(name) <= 8 else str(uid)          # procps prints long names as the number


def _stime(started: float, now: float) -> str:
    """procps' STIME: ``HH:MM`` within a day, ``MonDD`` within the year, else the year."""
    t = time.localtime(started)
    if now - started < 24 * 3600:
        return time.strftime("%H:%M", t)
    if t.tm_year == time.localtime(now).tm_year:
        return time.strftime("%b%d", t)
    return str(t.tm_year)


def _tty(nr: int) -> str:
    major, minor = (nr >> 8) & 0xFFF, (nr & 0xFF) | ((nr >> 12) & 0xFFF00)
    if nr == 0:
        return "?"
    if 136 <= major <= 143:
        return f"pts/{minor + (major - 136) * 256}"
    if major == 4:
        return f"tty{minor}" if minor < 64 else f"ttyS{minor - 64}"
    return "?"


def _cputime(seconds: float) -> str:
    """``[DD-]HH:MM:SS``."""
    s = int(seconds)
    days, s = divmod(s, 86400)
    text = f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{days}-{text}" if days else text


def top_row(p, now: float | None = None) -> tuple[str, ...]:
    """A :class:`runner.procinfo.Process` as a ``ps -ef`` row (C: CPU % over its lifetime)."""
    now = time.time() if now is None else now
    life = now - p.started
    c = int(p.cpu_seconds * 100 / life) if life > 0 else 0
    cmd = p.cmd + (" <defunct>" if p.state == "Z" else "")
    return (_user(p.uid), str(p.pid), str(p.ppid), str(min(c, 99)), _stime(p.started, now), _tty(p.tty_nr),
            _cputime(p.cpu_seconds), cmd)


def tabwriter(rows: list[tuple[str, ...]], *, minwidth: int = 20, padding: int = 3) -> list[str]:
    """Go's ``tabwriter.NewWriter(out, minwidth, 1, padding, ' ', 0)`` over tab-separated cells: every
    column but the last padded to its widest cell plus ``padding``, at least ``minwidth``."""
    if not rows:
        return []
    n = max(len(r) for r in rows)
    widths = [max(minwidth, max(len(r[c]) for r in rows if c < len(r)) + padding) for c in range(n - 1)]
    return ["".join(v.ljust(w) for v, w in zip(r[:-1], widths)) + r[-1] for r in rows]
