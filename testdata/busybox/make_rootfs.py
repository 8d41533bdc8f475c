#!/usr/bin/env python3
"""Make a busybox root filesystem tarball from Debian's ``busybox-static`` (``/bin/busybox``).

Usage: ``make_rootfs.py OUT.tar [BUSYBOX [LISTER]]``: LISTER is a busybox this machine runs that
lists the applets (for a BUSYBOX of another architecture, e.g. Debian's ``busybox-static:arm64``). The tar is deterministic (sorted, mtime 0, uid 0),
so the same busybox binary always gives the same layer digest. It holds the static binary,
one symlink per applet in /bin, a minimal /etc (passwd, group, hosts) and the usual empty dirs.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile

DIRS = ["bin", "dev", "etc", "home", "proc", "root", "sys", "tmp", "usr", "usr/bin", "usr/sbin", "sbin", "var", "var/www", "www"]
FILES = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
    "www-data:x:33:33:www-data:/var/www:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    "etc/group": "root:x:0:\ndaemon:x:1:\nwww-data:x:33:\nnogroup:x:65534:\n",
    "etc/hosts": "127.0.0.1\tlocalhost\n",
    "www/index.html": "<h1>hello from busybox</h1>\n",
}


def applets(busybox: str) -> list[str]:
    out = subprocess.run([busybox, "--list"], check=True, capture_output=True, text=True).stdout
    return sorted({a.strip() for a in out.split() if a.strip() and a.strip() != "busybox"})


def main(out: str, busybox: str = "/bin/busybox", lister: str | None = None) -> None:
    with open(busybox, "rb") as f:
        binary = f.read()
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        def add(info: tarfile.TarInfo, data: bytes | None = None) -> None:
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data) if data is not None else None)

        entries: list[tuple[str, tarfile.TarInfo, bytes | None]] = []
        for d in DIRS:
            ti = tarfile.TarInfo(d)
            ti.type = tarfile.DIRTYPE
            ti.mode = 0o1777 if d == "tmp" else 0o755
            entries.append((d, ti, None))
        ti = tarfile.TarInfo("bin/busybox")
        ti.mode = 0o755
        ti.size = len(binary)
        entries.append(("bin/busybox", ti, binary))
        for applet in applets(lister or busybox):
            ti = tarfile.TarInfo(f"bin/{applet}")
            ti.type = tarfile.SYMTYPE
            ti.linkname = "busybox"
            ti.mode = 0o777
            entries.append((ti.name, ti, None))
        for name, text in FILES.items():
            data = text.encode()
            ti = tarfile.TarInfo(name)
            ti.mode = 0o644
            ti.size = len(data)
            entries.append((name, ti, data))
        for _, ti, data in sorted(entries, key=lambda e: e[0]):
            add(ti, data)


if __name__ == "__main__":
    main(*sys.argv[1:])
