#!/usr/bin/env python3
"""``stats --no-stream`` of N running containers (default 100): pybuild next to podman, in one run.

Each tool starts N busybox ``sleep`` containers with ``--network none`` (cheap to create), then
``stats --no-stream`` is run ``-r`` times per tool, alternating the tools so both see the same load;
prints the median and range of wall time and of CPU time (user + sys of the command and its children),
the rows each printed, and the load average before and after. Everything lives in a temp root
(podman: ``--root``/``--runroot`` there, ``--cgroup-manager cgroupfs``) and is removed at the end.
    .venv/bin/python bench/stats.py [-n 100] [-r 7] [--no-podman] [--keep DIR]
``--keep DIR`` leaves pybuild's containers running under DIR for profiling (no podman, no cleanup).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYBUILD = str(Path(sys.executable).with_name("pybuild"))


class Tool:
    def __init__(self, name: str, base: list[str], image: str, run_args: list[str],
                 rm_args: tuple[str, ...] = ("-f",)) -> None:
        self.name, self.base, self.image, self.run_args, self.rm_args = name, base, image, run_args, rm_args

    def cli(self, *a: str, check: bool = True) -> subprocess.CompletedProcess:
        r = subprocess.run(self.base + list(a), capture_output=True, text=True)
        if check and r.returncode:
            raise SystemExit(f"{self.name} {' '.join(a)}: {r.stderr.strip()[-400:]}")
        return r

    def start(self, n: int) -> None:
        for i in range(n):
            self.cli("run", "-d", "--name", f"st{i}", "--network", "none", *self.run_args, self.image,
                     "sleep", "3600")

    def sample(self) -> tuple[float, float, int]:
        """One ``stats --no-stream``: wall seconds, CPU seconds (user + sys of the command and the
        children it waited for, from ``wait4``), rows printed."""
        t0 = time.perf_counter()
        p = subprocess.Popen(self.base + ["stats", "--no-stream"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL)
        out = p.stdout.read()
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        p.stdout.close()
        if p.returncode:
            raise SystemExit(f"{self.name} stats --no-stream: exit {p.returncode}")
        return wall, ru.ru_utime + ru.ru_stime, len(out.decode().strip().splitlines()[1:])

    def cleanup(self, n: int) -> list[str]:
        """Remove the containers (twice if need be); what is still listed after that."""
        names = [f"st{i}" for i in range(n)]
        for _ in range(2):
            self.cli("rm", *self.rm_args, *names, check=False)
            left = self.cli("ps", "-a", "-q", check=False).stdout.split()
            if not left:
                break
        return left


def pybuild_tool(work: Path, tar: Path) -> Tool:
    t = Tool("pybuild", [PYBUILD, "--root", str(work / "root"), "--state-dir", str(work / "state")],
             "stats/busybox:1", [])
    t.cli("import", str(tar), t.image)
    return t


def podman_tool(work: Path, tar: Path) -> Tool:
    t = Tool("podman", ["podman", "--root", str(work / "podman-root"), "--runroot", str(work / "podman-run"),
                        "--cgroup-manager", "cgroupfs", "--events-backend", "none"], "stats-busybox",
             # podman's default rlimits exceed what runc may set here (no CAP_SYS_RESOURCE, ENVIRONMENT.md)
             ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"],
             ("-f", "-t", "0"))       # sleep as PID 1 ignores SIGTERM: podman's rm -f would wait 10 s each
    t.cli("import", str(tar), t.image)
    return t


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def fmt(xs: list[float]) -> str:
    return f"median {statistics.median(xs):.3f} s (min {min(xs):.3f}, max {max(xs):.3f})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=100)
    ap.add_argument("-r", type=int, default=7, help="samples per tool")
    ap.add_argument("--no-podman", action="store_true", help="pybuild only")
    ap.add_argument("--keep", metavar="DIR", help="start pybuild's containers under DIR and leave them")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/stats.py needs root")
    import compileall

    for package in ("layers", "runner", "pybuild"):
        compileall.compile_dir(str(ROOT / package), quiet=1)
    if args.keep:
        work = Path(args.keep)
        work.mkdir(parents=True, exist_ok=True)
        tar = work / "busybox.tar"
        subprocess.run([sys.executable, str(ROOT / "testdata/busybox/make_rootfs.py"), str(tar),
                        shutil.which("busybox") or "/bin/busybox"], check=True)
        t = pybuild_tool(work, tar)
        t.start(args.n)
        print(" ".join(t.base))
        return
    tmp = tempfile.mkdtemp(prefix="pybuild-bench-stats-")
    left: dict[str, list[str]] = {}
    try:
        work = Path(tmp)
        tar = work / "busybox.tar"
        subprocess.run([sys.executable, str(ROOT / "testdata/busybox/make_rootfs.py"), str(tar),
                        shutil.which("busybox") or "/bin/busybox"], check=True)
        tools = [pybuild_tool(work, tar)]
        if not args.no_podman:
            if shutil.which("podman"):
                tools.append(podman_tool(work, tar))
            else:
                print("podman: not installed, no peer figures")
        try:
            for t in tools:
                t.start(args.n)
            print(f"load average before sampling: {loadavg()} ({os.cpu_count()} CPUs)")
            results: dict[str, list[tuple[float, float, int]]] = {t.name: [] for t in tools}
            for t in tools:
                t.sample()                                  # warm the page cache once each
            for _ in range(args.r):
                for t in tools:
                    results[t.name].append(t.sample())
            print(f"load average after sampling:  {loadavg()}")
            print(f"stats --no-stream of {args.n} running containers (busybox sleep, --network none), "
                  f"{args.r} samples each, alternating:")
            for t in tools:
                rs = results[t.name]
                print(f"  {t.name:8} wall {fmt([r[0] for r in rs])}; CPU {fmt([r[1] for r in rs])}; "
                      f"rows {sorted({r[2] for r in rs})}")
            bad = [t.name for t in tools if any(r[2] != args.n for r in results[t.name])]
        finally:
            left = {t.name: t.cleanup(args.n) for t in tools}
            if len(tools) > 1:
                tools[1].cli("rmi", "-a", "-f", check=False)   # no `system reset`: it touches shared state
    finally:
        if any(left.values()):          # the temp root must not go while containers still run from it
            print(f"containers left, temp root {tmp} kept: {left}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if any(left.values()):
        raise SystemExit(1)
    if bad:
        raise SystemExit(f"wrong row count from {bad}")


if __name__ == "__main__":
    main()
