#!/usr/bin/env python3
"""``compose up -d`` and ``down`` of a 10-service project: pybuild against podman-compose, same file.

Usage: bench/compose.py [-n 3] [--podman-compose PATH]

podman-compose comes from PyPI, in its own venv (default /tmp/bench-venv: ``python3 -m venv
/tmp/bench-venv && /tmp/bench-venv/bin/pip install podman-compose``). The busybox root filesystem
(testdata/busybox/make_rootfs.py) is imported into both tools; each tool gets temp roots only.
The file: ``svc0`` and nine services that depend on it, each a shell loop that exits on SIGTERM,
on the project's default network. Rounds alternate the tools; prints every time and the medians
and the ratio (target: pybuild's ``up -d`` at most 0.5x podman-compose's).
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

SERVICE = """\
  svc{i}:
    image: {image}
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]
    ulimits:
      nofile: 1024
      nproc: 1024
{deps}"""


def compose_file(image: str) -> str:
    services = [SERVICE.format(i=i, image=image, deps="" if i == 0 else "    depends_on: [svc0]\n") for i in range(10)]
    return "services:\n" + "".join(services)


def timed(cmd: list[str], env=None) -> float:
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return dt


class Pybuild:
    name = "pybuild compose"

    def __init__(self, tar: Path, work: Path) -> None:
        self.dir = work / "pb"
        self.dir.mkdir()
        self.base = [PYBUILD, "--root", str(work / "pb-root"), "--state-dir", str(work / "pb-state")]
        subprocess.run(self.base + ["import", str(tar), "bench-busybox:latest"], check=True, capture_output=True)
        (self.dir / "compose.yaml").write_text(compose_file("bench-busybox:latest"))
        self.cmd = self.base + ["compose", "-f", str(self.dir / "compose.yaml"), "-p", "bench"]

    def up(self) -> float:
        return timed(self.cmd + ["up", "-d"])

    def down(self) -> float:
        return timed(self.cmd + ["down", "-t", "0"])

    def running(self) -> int:
        out = subprocess.run(self.cmd + ["ps", "-q"], capture_output=True, text=True).stdout
        return len(out.split())


class PodmanCompose:
    name = "podman-compose"

    def __init__(self, tar: Path, work: Path, exe: str) -> None:
        self.dir = work / "pc"
        self.dir.mkdir()
        self.podman = ["--root", str(work / "podman-root"), "--runroot", str(work / "podman-run"),
                       "--cgroup-manager", "cgroupfs", "--events-backend", "none"]
        r = subprocess.run(["podman", *self.podman, "import", str(tar), "localhost/bench-busybox:latest"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"podman import failed: {r.stderr.strip()[:300]}")
        (self.dir / "compose.yaml").write_text(compose_file("localhost/bench-busybox:latest"))
        self.cmd = [exe, "--podman-args", " ".join(self.podman), "-f", str(self.dir / "compose.yaml"), "-p", "bench"]

    def up(self) -> float:
        return timed(self.cmd + ["up", "-d"])

    def down(self) -> float:
        return timed(self.cmd + ["down", "-t", "0"])

    def running(self) -> int:
        out = subprocess.run(["podman", *self.podman, "ps", "-q", "--filter", "label=io.podman.compose.project=bench"],
                             capture_output=True, text=True).stdout
        return len(out.split())

    def close(self) -> None:
        subprocess.run(["podman", *self.podman, "system", "reset", "-f"], capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=3, help="rounds per tool")
    ap.add_argument("--podman-compose", default="/tmp/bench-venv/bin/podman-compose")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    work = Path(tempfile.mkdtemp(prefix="bench-compose-"))
    try:
        tar = work / "busybox.tar"
        subprocess.run([sys.executable, str(ROOT / "testdata" / "busybox" / "make_rootfs.py"), str(tar),
                        shutil.which("busybox") or "/bin/busybox"], check=True)
        tools = [Pybuild(tar, work)]
        if shutil.which("podman") and os.path.exists(args.podman_compose):
            tools.append(PodmanCompose(tar, work, args.podman_compose))
        else:
            print(f"podman-compose: not available at {args.podman_compose} (see the module docstring)")
        times = {t.name: {"up -d": [], "down": []} for t in tools}
        for i in range(args.n):
            for t in tools if i % 2 == 0 else reversed(tools):
                up = t.up()
                n = t.running()
                down = t.down()
                if n != 10:
                    raise SystemExit(f"{t.name}: {n} containers running after up -d, expected 10")
                times[t.name]["up -d"].append(up)
                times[t.name]["down"].append(down)
                print(f"round {i + 1} {t.name:<16} up -d {up:6.2f} s   down {down:6.2f} s", flush=True)
        print()
        med = {name: {k: statistics.median(v) for k, v in d.items()} for name, d in times.items()}
        for name, d in med.items():
            print(f"{name:<16} median up -d {d['up -d']:6.2f} s   down {d['down']:6.2f} s")
        if len(med) == 2:
            pb, pc = med["pybuild compose"], med["podman-compose"]
            print(f"ratio pybuild/podman-compose: up -d {pb['up -d'] / pc['up -d']:.2f}   "
                  f"down {pb['down'] / pc['down']:.2f}   (target up -d <= 0.50)")
    finally:
        for t in locals().get("tools", []):
            if hasattr(t, "close"):
                t.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
