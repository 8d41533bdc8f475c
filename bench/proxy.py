#!/usr/bin/env python3
"""Port publishing benchmark: 1 GiB through a published port (``pybuild run -d -p``: the PortProxy in the
container's shim) vs. straight to the container address over the bridge (and vs. ``socat``, the classic
userspace forwarder, when it is installed: the peer docker-proxy is not packaged without the Docker engine).

A busybox container (``sleep``) runs on a throwaway internal network (10.213.X.0/24) with
``-p 127.0.0.1::9000``; a sink/echo server is started inside its network namespace (busybox has none
that counts bytes). Then, in one run: bulk throughput (client -> server, 1 GiB, N rounds, interleaved)
and connection latency (connect + 1-byte round trip + close, median and p99). Traffic stays on loopback
and the test bridge.

    .venv/bin/python bench/proxy.py [--gib 1] [--rounds 3] [--conns 500]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
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
sys.path.insert(0, str(ROOT))

from runner.network import netns  # noqa: E402

CHUNK = 1 << 20


def server(path: str, ready) -> None:
    netns.enter(path)
    srv = socket.create_server(("0.0.0.0", 9000), backlog=512)
    ready.send(True)
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    while True:
        conn, _ = srv.accept()
        mode = conn.recv(1)
        if mode == b"P":
            conn.sendall(b"p")
        elif mode == b"S":
            total = 0
            while True:
                n = conn.recv_into(view)
                if not n:
                    break
                total += n
            conn.sendall(str(total).encode())
        conn.close()


def bulk(addr, nbytes: int) -> float:
    payload = memoryview(os.urandom(CHUNK))
    with socket.create_connection(addr) as s:
        s.sendall(b"S")
        t0 = time.perf_counter()
        left = nbytes
        while left:
            n = min(left, CHUNK)
            s.sendall(payload[:n])
            left -= n
        s.shutdown(socket.SHUT_WR)
        reply = s.recv(64)
        dt = time.perf_counter() - t0
    if int(reply) != nbytes:
        raise SystemExit(f"server saw {reply!r} bytes, sent {nbytes}")
    return nbytes / dt


def latency(addr, count: int) -> list[float]:
    out = []
    for _ in range(count):
        t0 = time.perf_counter()
        with socket.create_connection(addr) as s:
            s.sendall(b"P")
            if s.recv(1) != b"p":
                raise SystemExit("bad ping reply")
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--conns", type=int, default=500)
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/proxy.py needs root (network namespaces, bridges)")
    sys.path.insert(0, str(ROOT / "tests"))
    from network.conftest import free_subnet

    tmp = tempfile.mkdtemp(prefix="pybuild-bench-proxy-")
    base = [PYBUILD, "--root", os.path.join(tmp, "root"), "--state-dir", os.path.join(tmp, "state")]

    def pb(*a: str) -> str:
        r = subprocess.run(base + list(a), capture_output=True, text=True)
        if r.returncode:
            raise SystemExit(f"pybuild {' '.join(a)}: {r.stderr.strip()[-400:]}")
        return r.stdout

    name = f"bench{os.getpid()}"
    ctx = multiprocessing.get_context("fork")
    procs = []
    cid = None
    try:
        tar = os.path.join(tmp, "busybox.tar")
        subprocess.run([sys.executable, str(ROOT / "testdata/busybox/make_rootfs.py"), tar,
                        shutil.which("busybox") or "/bin/busybox"], check=True)
        pb("import", tar, "bench/busybox:1")
        pb("network", "create", "--internal", "--subnet", free_subnet(), name)
        cid = pb("run", "-d", "--network", name, "-p", "127.0.0.1::9000", "bench/busybox:1", "sleep", "100000").split()[-1]
        net = json.loads(pb("inspect", cid))[0]["NetworkSettings"]
        ip, port = net["IPAddress"], int(net["Ports"]["9000/tcp"][0]["HostPort"])
        r, w = ctx.Pipe(False)
        procs.append(ctx.Process(target=server, args=(net["SandboxKey"], w), daemon=True))
        procs[-1].start()
        r.recv()
        targets = {"direct": (ip, 9000), "proxy": ("127.0.0.1", port)}
        socat = shutil.which("socat")
        if socat:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                sport = s.getsockname()[1]
            procs.append(subprocess.Popen([socat, f"TCP-LISTEN:{sport},bind=127.0.0.1,fork,reuseaddr",
                                           f"TCP:{ip}:9000"]))
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", sport), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.02)
            targets["socat"] = ("127.0.0.1", sport)
        nbytes = int(args.gib * (1 << 30))
        for addr in targets.values():
            latency(addr, 20)                                # warm up
        res = {k: [] for k in targets}
        for _ in range(args.rounds):                         # interleave to share the machine's noise
            for k, addr in targets.items():
                res[k].append(bulk(addr, nbytes))
        lat = {k: latency(addr, args.conns) for k, addr in targets.items()}
        print(f"{args.gib:g} GiB x {args.rounds} rounds, {args.conns} connections; "
              f"direct = {ip}:9000 over the bridge, proxy = 127.0.0.1:{port} -> the shim's PortProxy (splice)"
              + (", socat = socat TCP-LISTEN,fork" if socat else " (socat not installed)"))
        print(f"{'path':8} {'best GB/s':>10} {'median GB/s':>12} {'conn p50 ms':>12} {'conn p99 ms':>12}")
        for k in targets:
            tp = res[k]
            ls = sorted(lat[k])
            print(f"{k:8} {max(tp) / 1e9:10.2f} {statistics.median(tp) / 1e9:12.2f} "
                  f"{statistics.median(ls) * 1e3:12.3f} {ls[int(len(ls) * 0.99) - 1] * 1e3:12.3f}")
        ratio = statistics.median(res["proxy"]) / statistics.median(res["direct"])
        print(f"proxy/direct throughput: {ratio:.2f} (target >= 0.50)")
    finally:
        for p in procs:
            p.kill()
            if isinstance(p, subprocess.Popen):
                p.wait()
            else:
                p.join()
        if cid:
            pb("rm", "-f", cid)
        subprocess.run(base + ["network", "rm", name], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
