#!/usr/bin/env python3
"""Cold builds of ``FROM debian`` + ``apt-get install nginx-light``: pybuild next to ``buildah bud``,
same Dockerfile, same local registry, one run (issue 18's targets: build at most 0.8x buildah's,
pull + build at most 0.6x).

Usage: ``.venv/bin/python bench/coldbuild.py [--runs 3] [--debian-tar TAR]``

The base is a ``debootstrap --variant=minbase bookworm`` tar (``--debian-tar``; by default the one cached
at /var/cache/pybuild-test/debian-bookworm-minbase.tar, made there first when missing), imported by
pybuild and pushed (gzip) to Debian's ``docker-registry`` on 127.0.0.1, where both tools find it. Each
run, for each tool, on fresh storage of its own under /var/tmp (pybuild: a new ``--root``/``--state-dir``;
buildah: its own ``--root``/``--runroot``, never the machine's):

- build: the base pulled first (not timed: ``pybuild pull`` / ``buildah pull``), then the timed build;
- pull + build: timing starts at an empty store; the build pulls the base itself.

``RUN`` uses the host network for both, to the same Debian mirror (its latency is noise that both
pay: hence several runs, the tools alternating which goes first, and medians). Every timed command
starts after ``sync``. Every store is kept until the end (see ``one_run``). Prints every run, the medians,
the ratios and whether the targets are met.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.registry.servers import start_registry  # noqa: E402

PYBUILD = str(Path(sys.executable).with_name("pybuild"))
MIRROR = "http://deb.debian.org/debian"
CACHED_TAR = Path("/var/cache/pybuild-test/debian-bookworm-minbase.tar")
RUN = "RUN apt-get update && apt-get install -y --no-install-recommends nginx-light && rm -rf /var/lib/apt/lists/*\n"
TARGETS = {"build": 0.8, "pull + build": 0.6}


def run(cmd: list[str], timeout: float = 1800) -> float:
    """Run ``cmd`` after a ``sync``; its wall time. A failure ends the bench with the tool's stderr."""
    os.sync()  # nothing an earlier step wrote is still being flushed while this one is timed
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:8])}... failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return elapsed


def debian_tar(path: Path) -> Path:
    """The cached debootstrap tar, made (about 30 s from the mirror) when it is not there."""
    if path.exists():
        return path
    work = Path(tempfile.mkdtemp(prefix="debootstrap-", dir="/var/tmp"))
    try:
        print(f"debootstrap --variant=minbase bookworm {MIRROR} -> {path} (not timed) ...", flush=True)
        run(["debootstrap", "--variant=minbase", "bookworm", str(work / "rootfs"), MIRROR])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with tarfile.open(tmp, "w") as tar:  # a rootfs we just made ourselves
            tar.add(work / "rootfs", arcname=".")
        tmp.rename(path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return path


class Pybuild:
    name = "pybuild"

    def __init__(self, work: Path, tag: str) -> None:
        self.cmd = [PYBUILD, "--root", str(work / "root"), "--state-dir", str(work / "state")]
        self.work = work

    def pull(self, image: str) -> float:
        return run([*self.cmd, "pull", "-q", image])

    def build(self, ctx: Path) -> float:
        return run([*self.cmd, "build", "-q", "--network", "host", "-t", "bench/deb:1", str(ctx)])

    def close(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)


class Buildah:
    name = "buildah"

    def __init__(self, work: Path, tag: str) -> None:
        self.cmd = ["buildah", "--root", str(work / "root"), "--runroot", str(work / "run"),
                    "--storage-driver", "overlay"]
        self.work = work

    def pull(self, image: str) -> float:
        return run([*self.cmd, "pull", "-q", "--tls-verify=false", image])

    def build(self, ctx: Path) -> float:
        return run([*self.cmd, "bud", "--layers", "--network", "host", "--tls-verify=false", "-q",
                    "-t", "bench/deb:1", str(ctx)])

    def close(self) -> None:
        subprocess.run([*self.cmd, "rm", "--all"], capture_output=True)
        subprocess.run([*self.cmd, "rmi", "--all", "--force"], capture_output=True)
        with open("/proc/self/mounts") as f:  # nothing of this storage may stay mounted
            mounted = [line.split()[1] for line in f if line.split()[1].startswith(str(self.work))]
        if mounted:
            raise SystemExit(f"buildah left mounts under {self.work}: {mounted[:3]}")
        shutil.rmtree(self.work, ignore_errors=True)


def seed(work: Path, tar: Path, registry: str) -> str:
    """Import the tar with pybuild and push it to the registry; the image reference both tools use."""
    image = f"{registry}/debian:bookworm"
    cmd = [PYBUILD, "--root", str(work / "seed"), "--state-dir", str(work / "seed-state")]
    run([*cmd, "import", str(tar), "debian:bookworm"])
    run([*cmd, "push", "-q", "debian:bookworm", image])
    shutil.rmtree(work / "seed", ignore_errors=True)
    return image


def one_run(tool_cls, work: Path, image: str, ctx: Path, times: dict[str, list[float]], i: int, used: list) -> None:
    """Both cases for one tool, each on fresh storage; the storage is kept (``used``) until the end: on an
    ext4 without a journal (this VM's) every new inode is allocated past the inodes deleted in the last
    60 s in its group, so removing one store right before the next unpack would slow that unpack for
    reasons a fresh CI machine does not have."""
    name = tool_cls.name
    tool = tool_cls(work / f"{name}-{i}-b", image)
    used.append(tool)
    times[f"{name} pull + build"].append(tool.build(ctx))
    tool = tool_cls(work / f"{name}-{i}-a", image)
    used.append(tool)
    times[f"{name} pull (untimed step)"].append(tool.pull(image))
    times[f"{name} build"].append(tool.build(ctx))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="runs of each case and tool; medians are reported")
    ap.add_argument("--debian-tar", type=Path, default=CACHED_TAR)
    args = ap.parse_args()
    if shutil.which("buildah") is None:
        raise SystemExit("buildah is not installed: nothing to compare with")
    tar = debian_tar(args.debian_tar)
    work = Path(tempfile.mkdtemp(prefix="bench-coldbuild-", dir="/var/tmp"))
    registry = start_registry("open", work / "registry")
    times: dict[str, list[float]] = {f"{t} {c}": [] for t in ("pybuild", "buildah")
                                     for c in ("build", "pull + build", "pull (untimed step)")}
    used: list = []
    try:
        image = seed(work, tar, registry.host)
        ctx = work / "ctx"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(f"FROM {image}\n{RUN}")
        for i in range(args.runs):
            order = [Pybuild, Buildah] if i % 2 == 0 else [Buildah, Pybuild]
            for tool_cls in order:
                one_run(tool_cls, work, image, ctx, times, i, used)
            print(f"run {i + 1}/{args.runs}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()), flush=True)
    finally:
        registry.stop()
        for tool in used:
            tool.close()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nDebian bookworm minbase ({tar.stat().st_size / 1e6:.0f} MB tar, one gzip layer) + apt-get install "
          f"nginx-light; median of {args.runs} run(s), fresh storage each")
    print(f"{'case':<22}{'pybuild':>10}{'buildah':>10}{'ratio':>8}  target   runs (pybuild | buildah)")
    for case in ("build", "pull + build", "pull (untimed step)"):
        ours, theirs = times[f"pybuild {case}"], times[f"buildah {case}"]
        ratio = statistics.median(ours) / statistics.median(theirs)
        target = TARGETS.get(case)
        verdict = "" if target is None else (f"<= {target}x {'met' if ratio <= target else 'MISSED'}")
        every = " ".join(f"{t:.2f}" for t in ours) + " | " + " ".join(f"{t:.2f}" for t in theirs)
        print(f"{case:<22}{statistics.median(ours):>9.2f}s{statistics.median(theirs):>9.2f}s{ratio:>7.2f}x  "
              f"{verdict:<14} {every}")


if __name__ == "__main__":
    main()
