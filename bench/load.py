#!/usr/bin/env python3
"""Load: ``pybuild run -d`` of N small containers (default 100), then ``ps``, ``stats --no-stream``,
``stop`` and ``rm`` of all of them; prints how long each phase took, the shims' memory, and what was
left behind (processes, mounts, veths, cgroups, listening ports). Exits non-zero on any leftover.

Every container runs busybox ``httpd`` on a user bridge network of its own test subnet; every tenth
publishes a port on 127.0.0.1 (a userspace proxy in its shim). Everything lives in a temp root.
    .venv/bin/python bench/load.py [-n 100]
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=100)
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/load.py needs root")
    import compileall

    for package in ("layers", "runner", "pybuild", "builder", "registry_client"):
        compileall.compile_dir(str(ROOT / package), quiet=1)
    with tempfile.TemporaryDirectory(prefix="pybuild-bench-load-") as tmp:
        t = Path(tmp)
        base = [PYBUILD, "--root", str(t / "root"), "--state-dir", str(t / "state")]

        def pb(*a: str, check: bool = True) -> subprocess.CompletedProcess:
            r = subprocess.run(base + list(a), capture_output=True, text=True)
            if check and r.returncode:
                raise SystemExit(f"pybuild {' '.join(a)}: {r.stderr.strip()[-400:]}")
            return r

        tar = t / "busybox.tar"
        subprocess.run([sys.executable, str(ROOT / "testdata/busybox/make_rootfs.py"), str(tar),
                        shutil.which("busybox") or "/bin/busybox"], check=True)
        pb("import", str(tar), "load/busybox:1")
        net = "loadnet"
        pb("network", "create", "--internal", "--subnet", "10.213.0.0/22", net)
        before_links = links()
        ports = []
        start_times = []
        t0 = time.perf_counter()
        for i in range(args.n):
            extra = []
            if i % 10 == 0:
                port = free_port()
                ports.append(port)
                extra = ["-p", f"127.0.0.1:{port}:80"]
            s = time.perf_counter()
            pb("run", "-d", "--name", f"load{i}", "--network", net, *extra, "load/busybox:1",
               "httpd", "-f", "-p", "80")
            start_times.append(time.perf_counter() - s)
        t_run = time.perf_counter() - t0
        ids = set(pb("ps", "-q", "--no-trunc").stdout.split())
        s = time.perf_counter()
        listed = pb("ps").stdout.strip().splitlines()[1:]
        t_ps = time.perf_counter() - s
        s = time.perf_counter()
        stats = pb("stats", "--no-stream").stdout.strip().splitlines()[1:]
        t_stats = time.perf_counter() - s
        shims = shim_pids(t / "state", ids)
        rss = [mem_kib(p, "status", "VmRSS") for p in shims]
        pss = [mem_kib(p, "smaps_rollup", "Pss") for p in shims]
        served = 0
        for port in ports:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
                    c.sendall(b"GET / HTTP/1.0\r\n\r\n")
                    served += c.recv(12).startswith(b"HTTP/1.")
            except OSError:
                pass
        names = [f"load{i}" for i in range(args.n)]
        s = time.perf_counter()
        pb("stop", "-t", "2", *names)
        t_stop = time.perf_counter() - s
        s = time.perf_counter()
        pb("rm", *names)
        t_rm = time.perf_counter() - s
        pb("network", "rm", net)
        left = {
            "containers": pb("ps", "-a", "-q").stdout.split(),
            "processes": processes_of(ids) + [p for p in shims if Path(f"/proc/{p}").exists()],
            "mounts": mounts_under(tmp),
            "veths": sorted(links() - before_links),
            "cgroups": cgroups_named(ids),
            "ports": [p for p in ports if not port_free(p)],
        }
        print(f"{args.n} containers (busybox httpd, user bridge network, {len(ports)} with -p)")
        print(f"  run -d, all       {t_run:7.2f} s   (per container median {statistics.median(start_times) * 1000:.0f} ms,"
              f" max {max(start_times) * 1000:.0f} ms)")
        print(f"  ps                {t_ps:7.2f} s   ({len(listed)} rows)")
        print(f"  stats --no-stream {t_stats:7.2f} s   ({len(stats)} rows)")
        print(f"  published ports answering: {served}/{len(ports)}")
        if rss:
            print(f"  shim RSS          median {statistics.median(rss) / 1024:.1f} MiB, total {sum(rss) / 1024:.0f} MiB"
                  f" ({len(rss)} shims)")
            print(f"  shim PSS          median {statistics.median(pss) / 1024:.1f} MiB, total {sum(pss) / 1024:.0f} MiB"
                  " (shared pages split among the shims)")
        print(f"  stop, all         {t_stop:7.2f} s")
        print(f"  rm, all           {t_rm:7.2f} s")
        bad = {k: v for k, v in left.items() if v}
        print("  left behind:      " + ("nothing" if not bad else repr(bad)))
        if bad or len(listed) != args.n or len(stats) != args.n or served != len(ports):
            raise SystemExit(1)


if __name__ == "__main__":
    main()
