#!/usr/bin/env python3
"""Fixed start-up cost of a command: ``pybuild --help`` and ``pybuild ps`` on an empty store,
next to ``podman --help``, in one run.

Usage: bench/startup.py [-n 40]

Runs each command ``n`` times, interleaved so that load on the machine hits all of them alike,
output discarded, and prints min, median and p90 wall time with issue 18's targets
(``--help`` <= 40 ms, ``ps`` <= 60 ms), and the min and median CPU time (user + system) of the
command, which a loaded machine inflates far less than wall time. A plain ``subprocess.run`` loop
(its own overhead, ~1 ms, is in every wall figure; hyperfine is not needed). Uses a temp store only.
Source edited since its bytecode was written is compiled again on every run when
``PYTHONDONTWRITEBYTECODE`` is set: run ``python -m compileall`` on the tree first.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PYBUILD = str(Path(sys.executable).with_name("pybuild"))
TARGETS_MS = {"pybuild --help": 40.0, "pybuild ps": 60.0}


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def once(cmd: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run."""
    c, t = _cpu(), time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt, dc = time.perf_counter() - t, _cpu() - c
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.decode().strip()}")
    return dt, dc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=40, help="runs of each command")
    n = ap.parse_args().n
    with tempfile.TemporaryDirectory(prefix="pybuild-bench-startup-") as tmp:
        cases = {
            "pybuild --help": [PYBUILD, "--help"],
            "pybuild ps": [PYBUILD, "--root", f"{tmp}/root", "--state-dir", f"{tmp}/state", "ps"],
        }
        if shutil.which("podman"):
            cases["podman --help"] = ["podman", "--help"]
        else:
            print("podman not installed: no peer figure")
        for cmd in cases.values():          # warm the page cache and bytecode
            once(cmd)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
        for _ in range(n):
            for name, cmd in cases.items():
                times[name].append(once(cmd))
    print(f"{'command':<16} {'min':>8} {'median':>8} {'p90':>8} {'cpu min':>8} {'cpu med':>8}   target (wall median)"
          f"   ({n} runs each)")
    for name, runs in times.items():
        xs = sorted(w * 1000 for w, _ in runs)
        cpu = sorted(c * 1000 for _, c in runs)
        target = TARGETS_MS.get(name)
        verdict = "" if target is None else f"<= {target:.0f} ms {'met' if statistics.median(xs) <= target else 'MISSED'}"
        print(f"{name:<16} {xs[0]:6.1f}ms {statistics.median(xs):6.1f}ms {xs[int(len(xs) * 0.9) - 1]:6.1f}ms "
              f"{cpu[0]:6.1f}ms {statistics.median(cpu):6.1f}ms   {verdict}")


if __name__ == "__main__":
    main()
