#!/usr/bin/env python3
"""The shim's memory with a health check running, next to the shim without one.

Usage: bench/health_memory.py [-n 3]

Imports the busybox root filesystem (testdata/busybox/make_rootfs.py) into a temp root, then, n
times: runs ``sleep 1000`` detached without a check and with ``--health-cmd true
--health-interval 200ms``, waits until the checked one has logged 5 probes (so its monitor, a probe's
fork and the state writes have all happened), and reads both shims' VmRSS and, from
``/proc/<pid>/smaps_rollup``, Pss and Private_Dirty. Prints each run and the difference of the
medians (the issue's target: within 1 MiB).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
PYBUILD = str(Path(sys.executable).with_name("pybuild"))

from lifecycle import memory_kib  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=3)
    args = ap.parse_args()
    import compileall

    for package in ("layers", "runner", "pybuild"):
        compileall.compile_dir(str(ROOT / package), quiet=1)
    with tempfile.TemporaryDirectory(prefix="pybuild-health-") as d:
        work = Path(d)
        base = [PYBUILD, "--root", str(work / "root"), "--state-dir", str(work / "state")]

        def pb(*a: str) -> str:
            return subprocess.run(base + list(a), check=True, capture_output=True, text=True).stdout

        tar = work / "busybox.tar"
        subprocess.run([sys.executable, str(ROOT / "testdata/busybox/make_rootfs.py"), str(tar),
                        shutil.which("busybox") or "/bin/busybox"], check=True)
        pb("import", str(tar), "bb:1")
        from runner.state import ContainerStore

        store = ContainerStore(str(work / "root"), str(work / "state"))
        rows: dict[str, list[dict]] = {"without": [], "with": []}
        try:
            for i in range(args.n):
                plain = pb("run", "-d", "--network", "none", "bb:1", "sleep", "1000").strip()
                checked = pb("run", "-d", "--network", "none", "--health-cmd", "true", "--health-interval",
                             "200ms", "bb:1", "sleep", "1000").strip()
                deadline = time.monotonic() + 30
                while True:
                    health = json.loads(pb("inspect", checked))[0]["State"].get("Health") or {}
                    if len(health.get("Log", ())) >= 5:
                        break
                    if time.monotonic() > deadline:
                        raise SystemExit("no 5 probes within 30 s")
                    time.sleep(0.1)
                for key, cid in (("without", plain), ("with", checked)):
                    m = memory_kib(store.status(cid).shim_pid)
                    rows[key].append(m)
                    print(f"run {i + 1} {key:>7} health check: RSS {m['rss']} KiB, PSS {m['pss']} KiB, "
                          f"private dirty {m['private_dirty']} KiB")
                pb("rm", "-f", plain, checked)
        finally:
            for cid in pb("ps", "-aq", "--no-trunc").split():
                pb("rm", "-f", cid)
        for k in ("rss", "pss", "private_dirty"):
            a = statistics.median(m[k] for m in rows["without"])
            b = statistics.median(m[k] for m in rows["with"])
            print(f"median {k}: without {a:.0f} KiB, with {b:.0f} KiB, difference {b - a:+.0f} KiB")


if __name__ == "__main__":
    main()
