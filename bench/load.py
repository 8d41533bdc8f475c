#!/usr/bin/env python3
"""Load: ``run -d`` of N small containers (default 100), then ``ps``, ``stats --no-stream``, ``stop``
and ``rm`` of all of them, with pybuild and then podman doing the same work; prints how long each phase
took, the memory of the per-container helpers (pybuild's shim, podman's conmon), and what was left
behind (processes, mounts, veths, cgroups, listening ports). Exits non-zero on any leftover of pybuild's.

Every container runs busybox ``httpd`` on a user bridge network of its own test subnet; every tenth
publishes a port on 127.0.0.1 (pybuild: a userspace proxy in its shim; podman: CNI's portmap rules).
Everything lives in a temp root (podman: ``--root``/``--runroot`` there, ``--cgroup-manager cgroupfs``).
    .venv/bin/python bench/load.py [-n 100] [--no-podman]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYBUILD = str(Path(sys.executable).with_name("pybuild"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def mounts_under(path: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(path)]


def cgroups_named(ids: set[str]) -> list[str]:
    found = []
    for base in ("/sys/fs/cgroup",):
        for dirpath, dirnames, _ in os.walk(base):
            found += [os.path.join(dirpath, d) for d in dirnames if d in ids]
            if dirpath.count("/") > 6:
                dirnames[:] = []
    return found


def processes_of(ids: set[str]) -> list[int]:
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
            with open(f"/proc/{pid}/cgroup") as f:
                cg = f.read()
        except OSError:
            continue
        if any(i.encode() in cmd or i in cg for i in ids):
            out.append(int(pid))
    return out


def describe(pid: int) -> str:
    """``pid state command`` of a live process; "" if it is gone (a zombie counts as gone: it holds
    nothing but its pid, and its reaper is the host's init)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
    state = stat.rsplit(")", 1)[1].split()[0]
    return "" if state in "ZX" else f"{pid} {state} {cmd[:80]}"


def shim_pids(state_dir: Path, ids: set[str]) -> list[int]:
    """The shims' pids, from their records (a shim's command line names no container)."""
    import json

    out = []
    for cid in ids:
        try:
            out.append(int(json.loads((state_dir / cid / "shim.json").read_text())["pid"]))
        except (OSError, ValueError, KeyError):
            pass
    return out


def mem_kib(pid: int, path: str, key: str) -> int:
    """One ``key:`` figure (kB) of ``/proc/PID/<path>``; 0 if the process is gone."""
    try:
        with open(f"/proc/{pid}/{path}") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Side:
    """One tool's way of doing the load: its command line, image, network and per-container helper."""

    name = ""
    helper = ""

    def __init__(self, work: Path, tar: Path, subnet: str) -> None:
        self.work = work
        self.run_args: list[str] = []

    def cli(self, *a: str, check: bool = True) -> subprocess.CompletedProcess:
        r = subprocess.run(self.base + list(a), capture_output=True, text=True)
        if check and r.returncode:
            raise SystemExit(f"{self.name} {' '.join(a)}: {r.stderr.strip()[-400:]}")
        return r

    def helper_pids(self, ids: set[str]) -> list[int]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class PybuildSide(Side):
    name, helper = "pybuild", "shim"

    def __init__(self, work: Path, tar: Path, subnet: str) -> None:
        super().__init__(work, tar, subnet)
        self.base = [PYBUILD, "--root", str(work / "root"), "--state-dir", str(work / "state")]
        self.image = "load/busybox:1"
        self.cli("import", str(tar), self.image)
        self.cli("network", "create", "--internal", "--subnet", subnet, "loadnet")

    def helper_pids(self, ids: set[str]) -> list[int]:
        return shim_pids(self.work / "state", ids)

    def close(self) -> None:
        self.cli("network", "rm", "loadnet")


class PodmanSide(Side):
    name, helper = "podman", "conmon"

    def __init__(self, work: Path, tar: Path, subnet: str) -> None:
        super().__init__(work, tar, subnet)
        self.base = ["podman", "--root", str(work / "podman-root"), "--runroot", str(work / "podman-run"),
                     "--cgroup-manager", "cgroupfs", "--events-backend", "none"]
        self.image = "load-busybox"
        self.cli("import", str(tar), self.image)
        self.cli("network", "create", "--internal", "--subnet", subnet, "loadnet")
        # podman's default rlimits exceed what runc may set here (no CAP_SYS_RESOURCE, ENVIRONMENT.md)
        self.run_args = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]

    def helper_pids(self, ids: set[str]) -> list[int]:
        out = self.cli("inspect", "--format", "{{.State.ConmonPid}}", *ids, check=False).stdout.split()
        return [int(p) for p in out if p.isdigit() and int(p) > 0]

    def close(self) -> None:
        self.cli("network", "rm", "loadnet", check=False)
        self.cli("rm", "-a", "-f", check=False)
        self.cli("rmi", "-a", "-f", check=False)       # never `system reset`: it drops the machine's networks too


def load(side: Side, n: int, tmp: str) -> bool:
    """Run the load with one tool; print its figures; True if everything worked and nothing was left."""
    before_links = links()
    ports = []
    start_times = []
    t0 = time.perf_counter()
    for i in range(n):
        extra = []
        if i % 10 == 0:
            port = free_port()
            ports.append(port)
            extra = ["-p", f"127.0.0.1:{port}:80"]
        s = time.perf_counter()
        side.cli("run", "-d", "--name", f"load{i}", "--network", "loadnet", *side.run_args, *extra,
                 side.image, "httpd", "-f", "-p", "80")
        start_times.append(time.perf_counter() - s)
    t_run = time.perf_counter() - t0
    ids = set(side.cli("ps", "-q", "--no-trunc").stdout.split())
    s = time.perf_counter()
    listed = side.cli("ps").stdout.strip().splitlines()[1:]
    t_ps = time.perf_counter() - s
    s = time.perf_counter()
    stats = side.cli("stats", "--no-stream").stdout.strip().splitlines()[1:]
    t_stats = time.perf_counter() - s
    helpers = side.helper_pids(ids)
    rss = [mem_kib(p, "status", "VmRSS") for p in helpers]
    pss = [mem_kib(p, "smaps_rollup", "Pss") for p in helpers]
    served = 0
    for port in ports:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
                c.sendall(b"GET / HTTP/1.0\r\n\r\n")
                served += c.recv(12).startswith(b"HTTP/1.")
        except OSError:
            pass
    names = [f"load{i}" for i in range(n)]
    s = time.perf_counter()
    side.cli("stop", "-t", "2", *names)
    t_stop = time.perf_counter() - s
    s = time.perf_counter()
    side.cli("rm", *names)
    t_rm = time.perf_counter() - s
    side.close()
    left = {
        "containers": side.cli("ps", "-a", "-q", check=False).stdout.split() if side.name == "pybuild" else [],
        "processes": processes_of(ids) + [p for p in helpers if Path(f"/proc/{p}").exists()],
        "mounts": mounts_under(tmp),
        "veths": sorted(links() - before_links),
        "cgroups": cgroups_named(ids),
        "ports": [p for p in ports if not port_free(p)],
    }
    h = side.helper
    print(f"{side.name}: {n} containers (busybox httpd, user bridge network, {len(ports)} with -p)")
    print(f"  run -d, all       {t_run:7.2f} s   (per container median {statistics.median(start_times) * 1000:.0f} ms,"
          f" max {max(start_times) * 1000:.0f} ms)")
    print(f"  ps                {t_ps:7.2f} s   ({len(listed)} rows)")
    print(f"  stats --no-stream {t_stats:7.2f} s   ({len(stats)} rows)")
    print(f"  published ports answering: {served}/{len(ports)}")
    if rss:
        print(f"  {h} RSS{' ' * (12 - len(h))}median {statistics.median(rss) / 1024:.1f} MiB,"
              f" total {sum(rss) / 1024:.0f} MiB ({len(rss)} of them)")
        print(f"  {h} PSS{' ' * (12 - len(h))}median {statistics.median(pss) / 1024:.1f} MiB,"
              f" total {sum(pss) / 1024:.0f} MiB (shared pages split among them)")
    print(f"  stop -t 2, all    {t_stop:7.2f} s")
    print(f"  rm, all           {t_rm:7.2f} s")
    left["processes"] = [describe(p) for p in left["processes"] if describe(p)]
    bad = {k: v for k, v in left.items() if v}
    print("  left behind:      " + ("nothing" if not bad else repr(bad)))
    return not bad and len(listed) == n and len(stats) == n and served == len(ports)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=100)
    ap.add_argument("--no-podman", action="store_true", help="pybuild only")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/load.py needs root")
    import compileall

    for package in ("layers", "runner", "pybuild", "builder", "registry_client"):
        compileall.compile_dir(str(ROOT / package), quiet=1)
    with tempfile.TemporaryDirectory(prefix="pybuild-bench-load-") as tmp:
        t = Path(tmp)
        tar = t / "busybox.tar"
        subprocess.run([sys.executable, str(ROOT / "testdata/busybox/make_rootfs.py"), str(tar),
                        shutil.which("busybox") or "/bin/busybox"], check=True)
        ok = load(PybuildSide(t, tar, "10.213.0.0/22"), args.n, tmp)
        if args.no_podman:
            pass
        elif shutil.which("podman"):
            side = PodmanSide(t, tar, "10.217.0.0/22")
            try:
                load(side, args.n, tmp)
            finally:
                side.close()
        else:
            print("podman: not installed, no peer figures")
        if not ok:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
