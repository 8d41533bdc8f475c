#!/usr/bin/env python3
"""``network connect`` + ``network disconnect`` of a running container: pybuild against podman, same work.

Usage: bench/netconnect.py [-n 10]

Each tool gets temp roots, the busybox root filesystem (testdata/busybox/make_rootfs.py) imported,
two networks (unique names; podman's CNI keeps its network files in /etc/cni/net.d for every root,
so they are removed by name, never by ``system reset``), and one running container on the first; then ``n`` rounds of
connecting it to the second network and disconnecting it, each command timed. Rounds alternate the
tools; prints the medians and the ratio.
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
LOOP = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]


def run(cmd: list[str]) -> float:
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return dt


class Tool:
    def __init__(self, name: str, base: list[str]) -> None:
        self.name, self.base = name, base
        self.a, self.b = f"bn{os.getpid()}a", f"bn{os.getpid()}b"

    def setup(self, image: str, tar: Path, subnets: tuple[str, str]) -> None:
        import_cmd = ["import", str(tar), image]
        run(self.base + import_cmd)
        for net, subnet in zip((self.a, self.b), subnets):
            run(self.base + ["network", "create", "--subnet", subnet, net])
        # the ulimits: podman's runc cannot raise them above this host's limits (as bench/compose.py)
        run(self.base + ["run", "-d", "--name", "bc", "--ulimit", "nofile=1024", "--ulimit", "nproc=1024",
                         "--network", self.a, image, *LOOP])

    def round(self) -> tuple[float, float]:
        return (run(self.base + ["network", "connect", self.b, "bc"]),
                run(self.base + ["network", "disconnect", self.b, "bc"]))

    def close(self) -> None:
        subprocess.run(self.base + ["rm", "-f", "bc"], capture_output=True)
        subprocess.run(self.base + ["network", "rm", self.a, self.b], capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=10, help="rounds per tool")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    work = Path(tempfile.mkdtemp(prefix="bench-netconnect-"))
    tools: list[Tool] = []      # appended before setup: close() undoes whatever part of it was made
    try:
        tar = work / "busybox.tar"
        subprocess.run([sys.executable, str(ROOT / "testdata" / "busybox" / "make_rootfs.py"), str(tar),
                        shutil.which("busybox") or "/bin/busybox"], check=True, capture_output=True)
        tools.append(Tool("pybuild", [PYBUILD, "--root", str(work / "pb-root"), "--state-dir", str(work / "pb-state")]))
        tools[-1].setup("bench-busybox:latest", tar, ("10.231.1.0/24", "10.231.2.0/24"))
        if shutil.which("podman"):
            tools.append(Tool("podman", ["podman", "--root", str(work / "podman-root"), "--runroot",
                                         str(work / "podman-run"), "--cgroup-manager", "cgroupfs",
                                         "--events-backend", "none"]))
            tools[-1].setup("localhost/bench-busybox:latest", tar, ("10.231.3.0/24", "10.231.4.0/24"))
        times = {t.name: ([], []) for t in tools}
        for i in range(args.n):
            for t in tools if i % 2 == 0 else reversed(tools):
                c, d = t.round()
                times[t.name][0].append(c)
                times[t.name][1].append(d)
        med = {name: (statistics.median(c), statistics.median(d)) for name, (c, d) in times.items()}
        for name, (c, d) in med.items():
            print(f"{name:<8} median connect {c * 1000:7.0f} ms   disconnect {d * 1000:7.0f} ms   ({args.n} rounds)")
        if len(med) == 2:
            print(f"ratio pybuild/podman: connect {med['pybuild'][0] / med['podman'][0]:.2f}   "
                  f"disconnect {med['pybuild'][1] / med['podman'][1]:.2f}")
    finally:
        for t in tools:
            t.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
