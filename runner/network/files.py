"""Per-container ``/etc/hosts``, ``/etc/hostname`` and ``/etc/resolv.conf``.

The files live in the container's ``etc_dir``; the sandbox bind-mounts them over the image's. On a
user network every container's hosts file lists all its peers by name, and is rewritten in place
whenever a peer joins or leaves (in place, not by rename, because a bind mount pins the inode).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable

from layers.atomic import write_atomic

from ..hosts import LOCALHOST_LINES

__all__ = ["hosts_text", "host_hosts_text", "resolv_text", "write_all", "rewrite_hosts", "HOST_RESOLV"]

HOST_RESOLV = "/etc/resolv.conf"
FALLBACK_DNS = ("8.8.8.8", "8.8.4.4")


def hosts_text(own: tuple[str, Iterable[str]] | None, peers: Iterable[tuple[str, Iterable[str]]] = (),
               extra: Iterable[tuple[str, str]] = ()) -> str:
    """Hosts file: localhost lines, then ``own`` (ip, names), then ``peers``, then ``--add-host`` pairs."""
    lines = [LOCALHOST_LINES]
    if own is not None:
        lines.append(f"{own[0]}\t{' '.join(own[1])}\n")
    for ip, names in peers:
        lines.append(f"{ip}\t{' '.join(names)}\n")
    for name, ip in extra:
        lines.append(f"{ip}\t{name}\n")
    return "".join(lines)


def host_hosts_text(extra: Iterable[tuple[str, str]] = (), host_hosts: str = "/etc/hosts") -> str:
    """Hosts file for ``--network host``: the host's own, then ``--add-host`` pairs."""
    try:
        with open(host_hosts, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        text = LOCALHOST_LINES
    if text and not text.endswith("\n"):
        text += "\n"
    return text + "".join(f"{ip}\t{name}\n" for name, ip in extra)


def resolv_text(host_resolv: str = HOST_RESOLV, dns: Iterable[str] = (), search: Iterable[str] = (),
                keep_loopback: bool = False, options: Iterable[str] = ()) -> str:
    """A resolv.conf for a container: the host's, minus loopback nameservers (unreachable from a
    separate namespace), falling back to public resolvers when none remain; ``dns``/``search``/``options``
    (``--dns-option``) override the host's.
    """
    options = list(options)
    try:
        with open(host_resolv, encoding="utf-8", errors="replace") as f:
            host = f.read().splitlines()
    except FileNotFoundError:
        host = []
    servers, other = [], []
    for line in host:
        parts = line.split()
        if parts[:1] == ["nameserver"] and len(parts) >= 2:
            try:
                if not keep_loopback and ipaddress.ip_address(parts[1].split("%")[0]).is_loopback:
                    continue
            except ValueError:
                continue
            servers.append(parts[1])
        elif parts[:1] == ["search"] and search or parts[:1] == ["options"] and options:
            continue
        elif parts and not parts[0].startswith(("#", ";")):
            other.append(line)
    servers = list(dns) or servers or list(FALLBACK_DNS)
    out = [f"nameserver {s}" for s in servers]
    if search:
        out.append("search " + " ".join(search))
    if options:
        out.append("options " + " ".join(options))
    out.extend(other)
    return "\n".join(out) + "\n"


def write_all(etc_dir: str, *, hostname: str, hosts: str, resolv: str) -> dict[str, str]:
    """Write the three files into ``etc_dir`` atomically; return their paths by name.

    Not fsynced: every start writes them again, so a crash can cost nothing but a stale copy.
    """
    os.makedirs(etc_dir, mode=0o755, exist_ok=True)
    paths = {
        "hostname": os.path.join(etc_dir, "hostname"),
        "hosts": os.path.join(etc_dir, "hosts"),
        "resolv.conf": os.path.join(etc_dir, "resolv.conf"),
    }
    write_atomic(paths["hostname"], (hostname + "\n").encode(), 0o644, durable=False)
    write_atomic(paths["hosts"], hosts.encode(), 0o644, durable=False)
    write_atomic(paths["resolv.conf"], resolv.encode(), 0o644, durable=False)
    return paths


def rewrite_hosts(path: str, text: str) -> bool:
    """Replace the contents of an existing hosts file in place (keeps the inode a bind mount pins).

    Returns False when the file is gone (its container was removed meanwhile). Unchanged contents are
    not written again; nothing is fsynced (the endpoint table, which is, can always rebuild it).
    """
    data = text.encode()
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        if os.pread(fd, len(data) + 1, 0) != data:
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
    finally:
        os.close(fd)
    return True
