#!/usr/bin/env python3
"""Container start latency: ``pybuild run --rm IMG true`` next to ``podman run --rm`` and ``runc run``.

All three run the same busybox rootfs (``testdata/busybox/make_rootfs.py``): pybuild imports it,
podman imports the same tar (``podman import``, private ``--root``), runc runs the bundle that
``pybuild bundle`` writes. Also prints the in-process ``runner.sandbox.execute`` latency, which is
what the builder pays per RUN step. Usage: ``bench/run.py [RUNS]`` (default 20); prints medians.
Needs root. Peers that are not installed are reported as such.
"""

from __future__ import annotations

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


def timed(cmd: list[str], runs: int, **kw) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, **kw)
        out.append(time.perf_counter() - t0)
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.decode(errors='replace')[-500:]}")
    return out


def report(name: str, samples: list[float] | None, note: str = "") -> None:
    if not samples:
        print(f"{name:<44} {'-':>9}   {note}")
        return
    print(f"{name:<44} {statistics.median(samples) * 1000:8.1f}ms  (min {min(samples) * 1000:.1f}, "
          f"max {max(samples) * 1000:.1f}, n={len(samples)}) {note}")


def main(runs: int = 20) -> None:
    if os.geteuid() != 0:
        raise SystemExit("bench/run.py needs root")
    # an installed pybuild has bytecode; a dev tree under PYTHONDONTWRITEBYTECODE=1 would be timed
    # compiling every module on every start, so compile once first (pyc files are git-ignored)
    import compileall

    for package in ("layers", "runner", "pybuild", "builder", "registry_client"):
        if (ROOT / package).is_dir():
            compileall.compile_dir(str(ROOT / package), quiet=1)
    with tempfile.TemporaryDirectory(prefix="pybuild-bench-") as tmp:
        t = Path(tmp)
        tar = t / "busybox.tar"
        subprocess.run([sys.executable, str(ROOT / "testdata/busybox/make_rootfs.py"), str(tar)], check=True)
        base = [PYBUILD, "--root", str(t / "root"), "--state-dir", str(t / "state")]
        subprocess.run(base + ["import", str(tar), "bench/busybox:1"], check=True, capture_output=True)
        bundle = t / "bundle"
        subprocess.run(base + ["bundle", "bench/busybox:1", str(bundle), "true"], check=True, capture_output=True)

        # the three peers run in turn inside each round, so a load change on this shared machine
        # hits them alike (one tool's samples all taken in a busy minute would skew the comparison)
        peers: dict[str, object] = {
            "pybuild run --rm --network none IMG true":
                base + ["run", "--rm", "--network", "none", "bench/busybox:1", "true"]}
        runc = shutil.which("runc")
        if runc:
            def runc_run(i: int) -> float:
                t0 = time.perf_counter()
                r = subprocess.run([runc, "--root", str(t / "runc"), "run", "--bundle", str(bundle), f"b{i}"],
                                   capture_output=True, stdin=subprocess.DEVNULL)
                dt = time.perf_counter() - t0
                subprocess.run([runc, "--root", str(t / "runc"), "delete", "-f", f"b{i}"], capture_output=True)
                if r.returncode:
                    raise SystemExit(f"runc run failed: {r.stderr.decode(errors='replace')[-500:]}")
                return dt
            peers["runc run (bundle from pybuild bundle)"] = runc_run
        podman = shutil.which("podman")
        pod = [podman, "--root", str(t / "podroot"), "--runroot", str(t / "podrun"), "--storage-driver", "overlay"]
        if podman:
            subprocess.run(pod + ["import", str(tar), "bench-busybox"], check=True, capture_output=True)
            # podman defaults nofile/nproc above what this host lets a process raise (no CAP_SYS_RESOURCE)
            peers["podman run --rm --network none IMG true"] = pod + [
                "run", "--rm", "--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
                "bench-busybox", "true"]
        samples: dict[str, list[float]] = {name: [] for name in peers}
        for i in range(runs + 2):                     # two warm-up rounds, not counted
            for name, how in peers.items():
                dt = how(i) if callable(how) else timed(how, 1)[0]
                if i >= 2:
                    samples[name].append(dt)
        for name, got in samples.items():
            report(name, got)
        if not runc:
            report("runc run", None, "runc not installed")
        if not podman:
            report("podman run", None, "podman not installed")
        print(f"  pybuild after {runs + 2} runs: {_leftovers(t, base)}")
        report("pybuild --version (CLI start floor)", timed([PYBUILD, "--version"], runs))
        report("runner.sandbox.execute (in process)", _in_process(t, runs))
        if podman:     # its own --root only: never `system reset` (it also drops the machine's networks)
            subprocess.run(pod + ["rm", "-a", "-f"], capture_output=True)
            subprocess.run(pod + ["rmi", "-a", "-f"], capture_output=True)


def _leftovers(t: Path, base: list[str]) -> str:
    """What the runs left behind: mounts under the bench dir, container records, pybuild cgroups."""
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f if line.split()[4].startswith(str(t))]
    records = subprocess.run(base + ["ps", "-a", "-q"], capture_output=True, text=True).stdout.split()
    return "nothing left" if not mounts and not records else f"mounts={mounts} containers={records}"


def _in_process(t: Path, runs: int) -> list[float]:
    sys.path.insert(0, str(ROOT))
    import tarfile

    from runner import sandbox
    from runner.options import RunOptions
    from runner.rootfs import OverlayMount
    from runner.spec import make_spec

    lower = t / "lower"
    lower.mkdir()
    with tarfile.open(t / "busybox.tar") as tf:
        tf.extractall(lower, **({"filter": "tar"} if hasattr(tarfile, "data_filter") else {}))  # filters: Python >= 3.11.4
    samples = []
    for i in range(runs):
        d = t / f"c{i}"
        t0 = time.perf_counter()
        with OverlayMount([str(lower)], str(d / "u"), str(d / "w"), str(d / "r")) as root:
            spec = make_spec(None, RunOptions(network="none", command=("true",)), rootfs=root)
            code = sandbox.execute(spec, container_id=f"bench{os.getpid()}-{i}")
        samples.append(time.perf_counter() - t0)
        assert code == 0
    return samples


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
