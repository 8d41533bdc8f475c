#!/usr/bin/env python3
"""Rootless pybuild next to rootless podman, as the same non-root user, in the same run.

Usage (as root): bench/rootless.py --user NAME [--pybuild PATH] [-n 10]

NAME must exist with subordinate ranges (``usermod --add-subuids ... --add-subgids ...``); PATH is a
pybuild that user can execute (default: the rootless tests' venv, /var/tmp/pybuild-rootless/venv).
Both tools get a fresh store and a fresh XDG_RUNTIME_DIR in a temp dir owned by the user, import the
busybox root filesystem (testdata/busybox/make_rootfs.py), then repeat: a ``build --no-cache`` of a
one-RUN Dockerfile, ``run --rm --network none IMG true``, and the cycle ``run -d`` + ``stop -t 0`` +
``rm``. Prints the median of each and the resident size of each tool's pause process. At the end the
pause processes (from their pid files) are killed and the temp dir is removed.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--user", required=True)
    ap.add_argument("--pybuild", default="/var/tmp/pybuild-rootless/venv/bin/pybuild")
    ap.add_argument("-n", type=int, default=10)
    args = ap.parse_args()
    pw = pwd.getpwnam(args.user)
    work = Path(tempfile.mkdtemp(prefix="pbrb-", dir="/tmp"))  # podman: runroot under 50 chars
    os.chmod(work, 0o755)
    xdg, ctx = work / "xdg", work / "ctx"
    for d in (xdg, ctx):
        d.mkdir()
    os.chmod(xdg, 0o700)
    tar = work / "busybox.tar"
    subprocess.run([sys.executable, str(ROOT / "testdata/busybox/make_rootfs.py"), str(tar),
                    shutil.which("busybox") or "/bin/busybox"], check=True)
    (ctx / "Dockerfile").write_text("FROM bb\nRUN echo hi > /hi && chown 1000:1000 /hi\n")
    for p in (work, xdg, ctx, ctx / "Dockerfile", tar):
        os.chown(p, pw.pw_uid, pw.pw_gid)
    env = ["env", "-i", f"HOME={pw.pw_dir}", f"XDG_RUNTIME_DIR={xdg}", "PATH=/usr/bin:/bin"]
    as_user = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups", *env]
    tools = {
        "pybuild": [args.pybuild, "--root", str(work / "pb-root")],
        "podman": ["podman", "--root", str(work / "pd-root"), "--runroot", str(xdg / "pd")],
    }

    def run(cmd: list[str]) -> tuple[float, str]:
        t = time.perf_counter()
        r = subprocess.run(as_user + cmd, capture_output=True, text=True, cwd=str(work))
        dt = time.perf_counter() - t
        if r.returncode:
            raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()[-400:]}")
        return dt, r.stdout.strip()

    try:
        for name, base in tools.items():
            run(base + ["import", str(tar), "bb"])
        results: dict[str, dict[str, list[float]]] = {t: {"build": [], "run --rm": [], "run-d+stop+rm": []}
                                                      for t in tools}
        for i in range(args.n):
            for name, base in tools.items():
                net = ["--network", "none"]
                results[name]["build"].append(run(base + ["build", "--no-cache", "-q", *([] if name == "pybuild" else net),
                                                         "-t", f"app{i}", str(ctx)])[0])
                results[name]["run --rm"].append(run(base + ["run", "--rm", *net, "bb", "true"])[0])
                t0, cid = run(base + ["run", "-d", *net, "bb", "sleep", "1000"])
                t1, _ = run(base + ["stop", "-t", "0", cid])
                t2, _ = run(base + ["rm", cid])
                results[name]["run-d+stop+rm"].append(t0 + t1 + t2)
        print(f"rootless, user {args.user}, {args.n} rounds (median):")
        for step in ("build", "run --rm", "run-d+stop+rm"):
            cells = "   ".join(f"{t} {statistics.median(results[t][step]) * 1000:7.1f} ms" for t in tools)
            print(f"  {step:<14} {cells}")
        for name, pidfile in (("pybuild", xdg / "pybuild/userns/pause.pid"), ("podman", xdg / "libpod/tmp/pause.pid")):
            try:
                pid = int(pidfile.read_text())
                rss = next(l.split()[1] for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:"))
                print(f"  pause process  {name} {rss} KiB")
            except (OSError, ValueError, StopIteration):
                print(f"  pause process  {name}: not found at {pidfile}")
    finally:
        for pidfile in (xdg / "pybuild/userns/pause.pid", xdg / "libpod/tmp/pause.pid"):
            try:
                os.kill(int(pidfile.read_text()), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        time.sleep(0.3)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
