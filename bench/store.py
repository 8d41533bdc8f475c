#!/usr/bin/env python3
"""Store throughput: ``pybuild import`` / ``save`` / ``load`` next to ``podman import`` / ``save`` / ``load``.

Both import the same rootfs tar (made here from a copy of this machine's ``/usr/lib``, up to
SIZE MB, mixed text and binaries), then save it to an archive and load it into a fresh store.
podman uses a private ``--root``/``--runroot``. Usage: ``bench/store.py [SIZE_MB]`` (default 200).
Needs root for podman; peers that are not installed are reported as such.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

PYBUILD = str(Path(sys.executable).with_name("pybuild"))


def make_tree_tar(out: Path, limit: int) -> int:
    total = 0
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tf:
        for dirpath, dirs, files in os.walk("/usr/lib"):
            dirs.sort()
            for name in sorted(files):
                p = os.path.join(dirpath, name)
                if not os.path.isfile(p) or os.path.islink(p):
                    continue
                try:
                    tf.add(p, arcname=os.path.relpath(p, "/"))
                except OSError:
                    continue
                total += os.path.getsize(p)
                if total >= limit:
                    return total
    return total


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {r.stderr.strip()[:300]}")
    return dt


def main() -> None:
    size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        t = Path(tmp)
        src = t / "rootfs.tar"
        n = make_tree_tar(src, size_mb * 1_000_000)
        mb = os.path.getsize(src) / 1e6
        print(f"rootfs tar: {mb:.0f} MB ({n / 1e6:.0f} MB of file data)")
        pb = [PYBUILD, "--root", str(t / "pb"), "--state-dir", str(t / "pbs")]
        pb2 = [PYBUILD, "--root", str(t / "pb2"), "--state-dir", str(t / "pbs2")]
        rows = []
        dt = timed(pb + ["import", str(src), "bench:1"])
        rows.append(("pybuild import (gzip)", dt))
        rows.append(("pybuild save", timed(pb + ["save", "bench:1", "-o", str(t / "pb.tar")])))
        rows.append(("pybuild load", timed(pb2 + ["load", "-i", str(t / "pb.tar")])))
        rows.append(("pybuild fsck", timed(pb + ["fsck"])))
        if shutil.which("podman"):
            pm = ["podman", "--root", str(t / "pm"), "--runroot", str(t / "pmr"), "--storage-driver", "vfs"]
            pm2 = ["podman", "--root", str(t / "pm2"), "--runroot", str(t / "pmr2"), "--storage-driver", "vfs"]
            rows.append(("podman import", timed(pm + ["import", str(src), "bench:1"])))
            rows.append(("podman save (oci-archive)", timed(pm + ["save", "--format", "oci-archive", "-o",
                                                                   str(t / "pm.tar"), "bench:1"])))
            rows.append(("podman load", timed(pm2 + ["load", "-i", str(t / "pm.tar")])))
        else:
            print("podman: not installed")
        for name, dt in rows:
            print(f"{name:28s} {dt:7.2f} s   {mb / dt:7.1f} MB/s")


if __name__ == "__main__":
    main()
