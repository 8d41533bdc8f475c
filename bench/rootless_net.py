#!/usr/bin/env python3
"""Rootless networking: pybuild next to rootless podman, as the same non-root user, in the same run.

Usage (as root): bench/rootless_net.py --user NAME [--pybuild PATH] [-n 7]

NAME must exist with subordinate ranges; PATH is a pybuild that user can execute (default: the
rootless tests' venv, /var/tmp/pybuild-rootless/venv). Both tools get a fresh store and
XDG_RUNTIME_DIR in a temp dir owned by the user and import the busybox root filesystem; then, medians
of N: ``run --rm IMG true`` with ``--network none`` and on the default network (pybuild through pasta
and through slirp4netns, podman through slirp4netns: Debian 12's podman 4.3 has no pasta mode);
``run -d -p 127.0.0.1:P:8080`` of busybox httpd until the first HTTP 200 (then ``rm -f``); and MB/s of
four 200 MiB downloads through the published port of another container, after a first one. Traffic stays on 127.0.0.1.
At the end the containers, pause processes and the temp dir are removed.
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import time
import urllib.request

from _users import parse_args, user_work

WEB = ["sh", "-c", "echo hi > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"]
BIG = ["sh", "-c", "dd if=/dev/zero of=/tmp/big bs=1M count=200 2>/dev/null; exec httpd -f -p 8080 -h /tmp"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        try:
            n = 0
            with urllib.request.urlopen(url, timeout=30) as r:
                while chunk := r.read(1 << 20):
                    n += len(chunk)
            return n
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def main() -> None:
    args = parse_args(rounds=7)
    with user_work(args.user, "pbrn-") as w:
        pybuild, podman = w.pybuild(args.pybuild), w.podman()

        def run(cmd: list[str], tool_env: str | None = None) -> float:
            return w.timed(cmd, {"PYBUILD_ROOTLESS_NET": tool_env} if tool_env else None)[0]

        def median_ms(samples: list[float]) -> str:
            return f"{statistics.median(samples) * 1000:7.0f} ms"

        try:
            run(pybuild + ["import", str(w.tar), "bb"])
            run(podman + ["import", str(w.tar), "bb"])
            rows = [
                ("run --rm true, --network none",
                 lambda: run(pybuild + ["run", "--rm", "--network", "none", "bb", "true"]),
                 lambda: run(podman + ["run", "--rm", "--network", "none", "bb", "true"])),
                ("run --rm true, default network (pasta)",
                 lambda: run(pybuild + ["run", "--rm", "bb", "true"], "pasta"), None),
                ("run --rm true, default network (slirp4netns)",
                 lambda: run(pybuild + ["run", "--rm", "bb", "true"], "slirp4netns"),
                 lambda: run(podman + ["run", "--rm", "--network", "slirp4netns", "bb", "true"])),
            ]
            print(f"{'':<48} {'pybuild':>10} {'podman':>10}")
            for label, mine, theirs in rows:
                a = [mine() for _ in range(args.n)]
                b = [theirs() for _ in range(args.n)] if theirs else None
                print(f"{label:<48} {median_ms(a):>10} {median_ms(b) if b else '-':>10}", flush=True)
            first, rates = {}, {}
            for name, cmd in (("pybuild", pybuild), ("podman", podman)):
                first[name], rates[name] = [], []
                for i in range(args.n):
                    port = _free_port()
                    t = time.perf_counter()
                    run(cmd + ["run", "-d", "--name", f"w{i}", "-p", f"127.0.0.1:{port}:8080", "bb", *WEB])
                    _get(f"http://127.0.0.1:{port}/index.html")
                    first[name].append(time.perf_counter() - t)
                    run(cmd + ["rm", "-f", f"w{i}"])
                port = _free_port()
                run(cmd + ["run", "-d", "--name", "big", "-p", f"127.0.0.1:{port}:8080", "bb", *BIG])
                _get(f"http://127.0.0.1:{port}/big", timeout=120)         # the warm-up: dd has written it
                for _ in range(4):
                    t = time.perf_counter()
                    n = _get(f"http://127.0.0.1:{port}/big")
                    rates[name].append(n / (time.perf_counter() - t) / 1e6)
                run(cmd + ["rm", "-f", "big"])
            print(f"{'run -d -p + first HTTP 200 (pasta / slirp4netns)':<48} {median_ms(first['pybuild']):>10} "
                  f"{median_ms(first['podman']):>10}")
            print(f"{'200 MiB through -p, warm, MB/s (median of 4)':<48} {statistics.median(rates['pybuild']):10.0f} "
                  f"{statistics.median(rates['podman']):10.0f}")
        finally:
            for cmd in (pybuild, podman):
                subprocess.run(w.argv(cmd + ["rm", "-f", "big", *[f"w{i}" for i in range(args.n)]]),
                               capture_output=True)


if __name__ == "__main__":
    main()
