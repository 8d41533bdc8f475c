#!/usr/bin/env python3
"""Layer packing speed: ``layers.archive.pack`` next to ``tar | gzip`` and ``tar | zstd`` on one tree.

Makes a ~500 MB mixed tree (one big file of half random, half text-like data, and thousands of
small text files with some hardlinks and symlinks), then packs it:

* pybuild: plain tar + sha256 (diff_id), gzip (python-isal) and zstd (level 3), each with both
  digests computed in the same pass, into /dev/null-like sinks;
* the peers on the same tree: ``tar -cf - | sha256sum``, ``tar -cf - | gzip -6`` (Docker's and
  containerd's default level), ``tar -cf - | gzip -1``, ``tar -cf - | zstd -3 -T0``, ``pigz`` when installed.

The page cache is warmed first so every tool reads from memory. Usage:
    .venv/bin/python bench/pack.py [--mb 500] [--files 5000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class _Null:
    def write(self, data: bytes) -> int:
        return len(data)


def make_tree(root: Path, mb: int, files: int) -> int:
    rnd = random.Random(42)
    words = [bytes(rnd.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 9))) for _ in range(4000)]
    small_total = 0
    for i in range(files):
        d = root / f"pkg{i % 97:02d}" / f"sub{i % 7}"
        d.mkdir(parents=True, exist_ok=True)
        body = b" ".join(rnd.choice(words) for _ in range(rnd.randint(50, 3000))) + b"\n"
        (d / f"file{i}.txt").write_bytes(body)
        small_total += len(body)
        if i % 50 == 0:
            os.link(d / f"file{i}.txt", d / f"hard{i}.txt")
        if i % 60 == 0:
            (d / f"link{i}").symlink_to(f"file{i}.txt")
    big = max(mb * 1024 * 1024 - small_total, 1 << 20)
    with open(root / "big.bin", "wb") as f:
        chunk_text = b" ".join(rnd.choice(words) for _ in range(200_000))[: 1 << 20]
        written = 0
        while written < big:
            data = os.urandom(1 << 20) if (written // (1 << 20)) % 2 else chunk_text
            f.write(data[: big - written])
            written += len(data)
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def best(fn, runs: int) -> float:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return min(samples), statistics.median(samples)


def shell(cmd: str, cwd: Path) -> None:
    subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=500)
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    from layers.archive import pack

    with tempfile.TemporaryDirectory(prefix="pybuild-bench-pack-") as tmp:
        tree = Path(tmp) / "tree"
        tree.mkdir()
        size = make_tree(tree, args.mb, args.files)
        print(f"tree: {size / 1e6:.0f} MB in {args.files} small files + one big file; best of {args.runs} runs "
              f"(median in brackets), MB/s of input")
        shell("tar -cf - . > /dev/null", tree)  # warm the page cache

        def row(name: str, fn) -> None:
            lo, med = best(fn, args.runs)
            print(f"  {name:<38} {size / lo / 1e6:8.0f} MB/s   ({size / med / 1e6:.0f})   {lo:6.2f} s")

        print("pybuild (layers.archive.pack, diff_id and blob digest in one pass)")
        for comp, label in ((None, "tar + sha256"), ("gzip", "tar + gzip (isal level 1) + 2x sha256"),
                            ("zstd", "tar + zstd -3 + 2x sha256")):
            row(label, lambda c=comp: pack(str(tree), _Null(), compression=c))
        print("peers on the same tree")
        row("tar | sha256sum", lambda: shell("tar -cf - . | sha256sum", tree))
        row("tar | gzip -6 (Docker's level)", lambda: shell("tar -cf - . | gzip -6", tree))
        row("tar | gzip -1", lambda: shell("tar -cf - . | gzip -1", tree))
        if shutil.which("pigz"):
            row("tar | pigz -6", lambda: shell("tar -cf - . | pigz -6", tree))
        if shutil.which("zstd"):
            row("tar | zstd -3 -T0", lambda: shell("tar -cf - . | zstd -q -3 -T0", tree))
        else:
            print("  tar | zstd: zstd is not installed")
        # how big each comes out
        sizes = {}
        for comp in ("gzip", "zstd"):
            class _Count:
                n = 0

                def write(self, data: bytes) -> int:
                    self.n += len(data)
                    return len(data)
            c = _Count()
            pack(str(tree), c, compression=comp)
            sizes[comp] = c.n
        gz6 = subprocess.run(["bash", "-o", "pipefail", "-c", "tar -cf - . | gzip -6 | wc -c"], cwd=tree,
                             capture_output=True, text=True, check=True).stdout.strip()
        print(f"output sizes: pybuild gzip {sizes['gzip'] / 1e6:.0f} MB, zstd {sizes['zstd'] / 1e6:.0f} MB; "
              f"gzip -6 {int(gz6) / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
