#!/usr/bin/env python3
"""Build times, pybuild next to ``buildah bud``, on the same work in one run:

1. a ~500 MB context COPY (one 400 MB file + 2,000 small text files) into ``FROM scratch``, cold;
2. the same build again with nothing changed (target: under 1 s);
3. (with ``--debian ROOTFS_TAR``) a Debian base with ``apt-get install`` (needs the mirror).

Every tool gets its own temporary storage; nothing under /var/lib is touched. Usage:
    .venv/bin/python bench/build.py [--size-mb 400] [--files 2000] [--debian rootfs.tar]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PYBUILD = str(Path(sys.executable).with_name("pybuild"))


def timed(cmd: list[str], **kw) -> float:
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:6])}... failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed


def make_context(path: Path, size_mb: int, files: int) -> None:
    path.mkdir(parents=True)
    chunk = os.urandom(1 << 20)
    with open(path / "big.bin", "wb") as f:
        for i in range(size_mb):
            f.write(chunk[:-8] + i.to_bytes(8, "little"))
    texts = path / "texts"
    texts.mkdir()
    for i in range(files):
        (texts / f"file-{i:05d}.txt").write_text(f"line {i}\n" * (i % 50 + 1))
    (path / "Dockerfile").write_text("FROM scratch\nCOPY . /data/\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=400)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--debian", default=None, help="a Debian rootfs tar for the apt-get case")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-build-", dir="/var/tmp"))
    try:
        ctx = work / "ctx"
        make_context(ctx, args.size_mb, args.files)
        size = sum(p.stat().st_size for p in ctx.rglob("*") if p.is_file())
        print(f"context: {size / 1e6:.0f} MB, {args.files + 2} files")
        pb = [PYBUILD, "--root", str(work / "pb-root"), "--state-dir", str(work / "pb-state")]
        rows = []
        t_cold = timed([*pb, "build", "-q", "-t", "bench:1", str(ctx)])
        t_warm = timed([*pb, "build", "-q", "-t", "bench:2", str(ctx)])
        rows.append(("pybuild", t_cold, t_warm))
        if shutil.which("buildah"):
            bh = ["buildah", "--root", str(work / "bh-root"), "--runroot", str(work / "bh-run"),
                  "--storage-driver", "overlay"]
            b_cold = timed([*bh, "bud", "--layers", "-q", "-t", "bench:1", str(ctx)])
            b_warm = timed([*bh, "bud", "--layers", "-q", "-t", "bench:2", str(ctx)])
            rows.append(("buildah bud", b_cold, b_warm))
            subprocess.run([*bh, "rmi", "-a", "-f"], capture_output=True)
        else:
            print("buildah is not installed: pybuild figures only")
        print(f"{'tool':<12} {'500MB COPY cold':>16} {'no-change rebuild':>18}")
        for name, cold, warm in rows:
            print(f"{name:<12} {cold:>15.2f}s {warm:>17.2f}s")
        if args.debian:
            deb = work / "deb"
            deb.mkdir()
            (deb / "Dockerfile").write_text(
                "FROM debian:bookworm\nRUN apt-get update && apt-get install -y --no-install-recommends nginx-light\n")
            timed([*pb, "import", args.debian, "debian:bookworm"])
            t = timed([*pb, "build", "-q", "-t", "deb:1", str(deb)])
            print(f"debian + apt-get install nginx-light: pybuild {t:.2f}s "
                  "(buildah: 4.7 s measured on this machine, ENVIRONMENT.md)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
