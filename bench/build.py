#!/usr/bin/env python3
"""Build times, pybuild next to ``buildah bud``, on the same work in one run:

1. a 500 MB context ``COPY`` (one 460 MiB file of random bytes + 2,000 text files of ~9 KB) into
   ``FROM scratch``, cold (empty storage);
2. the same build again with nothing changed (target: under 1 s);
3. a Debian base with ``apt-get install`` (``debootstrap --variant=minbase bookworm`` from
   http://deb.debian.org/debian into a tar, imported into each tool's storage first), cold, and its
   no-change rebuild. The import is timed too but is not a build: buildah unpacks the base there,
   pybuild keeps it compressed and unpacks it at the first build or run that needs it.

Targets: pybuild no slower than buildah on every cold build; a no-change rebuild under 1 s.
Each tool gets its own temporary storage under /var/tmp; nothing under /var/lib is touched. Both run
``RUN`` with the host network. Every timed command starts after ``sync`` (no write-back of an earlier
step in its time); each tool runs its whole sequence (cold, rebuild; import, cold, rebuild) before the
other starts, pybuild first, so a warmed mirror helps buildah. Usage:

    .venv/bin/python bench/build.py [--size-mb 460] [--files 2000] [--debian-tar rootfs.tar | --no-debian]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

PYBUILD = str(Path(sys.executable).with_name("pybuild"))
MIRROR = "http://deb.debian.org/debian"
APT_DOCKERFILE = ("FROM debian:bookworm\n"
                  "RUN apt-get update && apt-get install -y --no-install-recommends nginx-light "
                  "&& rm -rf /var/lib/apt/lists/*\n")


def timed(cmd: list[str], **kw) -> float:
    os.sync()  # nothing an earlier step wrote is still being flushed while this one is timed
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:8])}... failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return elapsed


def make_context(path: Path, size_mb: int, files: int) -> int:
    path.mkdir(parents=True)
    chunk = os.urandom(1 << 20)
    with open(path / "big.bin", "wb") as f:
        for i in range(size_mb):
            f.write(chunk[:-8] + i.to_bytes(8, "little"))
    texts = path / "texts"
    texts.mkdir()
    for i in range(files):
        (texts / f"file-{i:05d}.txt").write_text(f"line {i}\n" * (i % 50 + 1) + "x" * 9000)
    (path / "Dockerfile").write_text("FROM scratch\nCOPY . /data/\n")
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def debootstrap(work: Path) -> Path:
    rootfs = work / "debian-rootfs"  # kept until the end: its removal would slow whoever comes next
    print(f"debootstrap --variant=minbase bookworm {MIRROR} (not timed) ...", flush=True)
    timed(["debootstrap", "--variant=minbase", "bookworm", str(rootfs), MIRROR], timeout=1800)
    out = work / "debian.tar"
    with tarfile.open(out, "w") as tar:  # a rootfs we just made ourselves
        tar.add(rootfs, arcname=".")
    return out


class Pybuild:
    name = "pybuild"

    def __init__(self, work: Path) -> None:
        self.cmd = [PYBUILD, "--root", str(work / "pb-root"), "--state-dir", str(work / "pb-state")]

    def build(self, ctx: Path, tag: str) -> float:
        return timed([*self.cmd, "build", "-q", "--network", "host", "-t", tag, str(ctx)], timeout=3600)

    def import_base(self, tar: Path, ref: str) -> float:
        return timed([*self.cmd, "import", str(tar), ref])

    def close(self) -> None:
        pass


class Buildah:
    name = "buildah bud"

    def __init__(self, work: Path) -> None:
        self.cmd = ["buildah", "--root", str(work / "bh-root"), "--runroot", str(work / "bh-run"),
                    "--storage-driver", "overlay"]

    def build(self, ctx: Path, tag: str) -> float:
        return timed([*self.cmd, "bud", "--layers", "--network", "host", "-q", "-t", tag, str(ctx)], timeout=3600)

    def import_base(self, tar: Path, ref: str) -> float:
        ctr = subprocess.run([*self.cmd, "from", "scratch"], capture_output=True, text=True, check=True).stdout.strip()
        took = timed([*self.cmd, "add", ctr, str(tar), "/"]) + timed([*self.cmd, "commit", "-q", ctr, ref])
        subprocess.run([*self.cmd, "rm", ctr], capture_output=True)
        return took

    def close(self) -> None:
        subprocess.run([*self.cmd, "rmi", "-a", "-f"], capture_output=True)
        subprocess.run([*self.cmd, "rm", "-a"], capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=460, help="size of the one large context file (MiB)")
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--debian-tar", default=None, help="a Debian rootfs tar (default: debootstrap one now)")
    ap.add_argument("--no-debian", action="store_true", help="skip the Debian + apt-get case")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-build-", dir="/var/tmp"))
    tools = [Pybuild(work)]
    if shutil.which("buildah"):
        tools.append(Buildah(work))
    else:
        print("buildah is not installed: pybuild figures only")
    rows: list[tuple[str, list[float]]] = []
    try:
        ctx = work / "ctx"
        size = make_context(ctx, args.size_mb, args.files)
        print(f"context: {size / 1e6:.0f} MB, {args.files + 2} files")
        # each tool does its whole sequence before the next starts, so what one tool's steps leave to the
        # disk (mass deletes are slow to settle on this VM) lands in its own figures, not the other's
        copy = [[t.build(ctx, "bench:1"), t.build(ctx, "bench:2")] for t in tools]
        rows.append(("500 MB context COPY, cold", [c[0] for c in copy]))
        rows.append(("  no-change rebuild", [c[1] for c in copy]))
        if not args.no_debian:
            tar = Path(args.debian_tar) if args.debian_tar else debootstrap(work)
            deb = work / "deb"
            deb.mkdir()
            (deb / "Dockerfile").write_text(APT_DOCKERFILE)
            # the import is not a build and not in the targets: shown because the tools unpack the base at
            # different times (buildah here, at import; pybuild at the first build or run that needs it)
            runs = [[t.import_base(tar, "debian:bookworm"), t.build(deb, "deb:1"), t.build(deb, "deb:2")]
                    for t in tools]
            rows.append(("(import the debootstrap tar: not a build)", [r[0] for r in runs]))
            rows.append(("debian + apt-get install nginx-light, cold", [r[1] for r in runs]))
            rows.append(("  no-change rebuild", [r[2] for r in runs]))
            rows.append(("  (import + cold build, summed)", [r[0] + r[1] for r in runs]))
    finally:
        for t in tools:
            t.close()
        shutil.rmtree(work, ignore_errors=True)
    width = max(len(r[0]) for r in rows) + 2
    print(f"{'case':<{width}}" + "".join(f"{t.name:>14}" for t in tools))
    for label, times in rows:
        print(f"{label:<{width}}" + "".join(f"{x:>13.2f}s" for x in times))
    if len(tools) == 2:
        cold = [(label.strip(), ts) for label, ts in rows if label.endswith("cold")]
        ok = all(ts[0] <= ts[1] for _, ts in cold)
        print("target: pybuild no slower than buildah cold: " + ("met" if ok else "MISSED ("
              + ", ".join(f"{label}: {ts[0]:.2f}s vs {ts[1]:.2f}s" for label, ts in cold if ts[0] > ts[1]) + ")"))
    rebuilds = [ts[0] for label, ts in rows if "rebuild" in label]
    print("target: no-change rebuild under 1 s: " + ("met" if all(x < 1 for x in rebuilds) else "MISSED")
          + " (" + ", ".join(f"{x:.2f}s" for x in rebuilds) + ")")


if __name__ == "__main__":
    main()
