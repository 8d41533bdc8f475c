#!/usr/bin/env python3
"""A build cache shared through a registry: a fresh CI machine rebuilding an unchanged project,
pybuild next to buildah, same Dockerfile, same registry, one run.

Usage: ``.venv/bin/python bench/cache.py [--mb 200]``

The Dockerfile is ``FROM <registry>/base/busybox:1``, a ``COPY`` of ``--mb`` MB of random data and a
``RUN`` that writes the time. Every request goes through a counting TCP proxy in front of Debian's
``docker-registry`` on 127.0.0.1, so "bytes" is everything each job moved over the wire, both ways.

For each tool, three jobs, each on a fresh store that shares nothing with the others:

- A (seeds the cache): build with ``--cache-to``, push;
- B (the measured CI job): build with ``--cache-from``, push under a new repository;
- cold: build without a cache, push under a new repository.

pybuild: ``--cache-to type=registry,ref=R/cache/app:c,mode=max`` / ``--cache-from type=registry,ref=...``.
buildah: ``bud --layers --cache-to R/bcache/app`` / ``--cache-from R/bcache/app``, overlay storage in a
temporary ``--root``. Prints seconds and bytes per job, and B's ratio to buildah's B.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.registry.servers import free_port, start_registry  # noqa: E402

PYBUILD = str(Path(sys.executable).with_name("pybuild"))


class CountingProxy:
    """127.0.0.1:port -> target, counting the bytes each way."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.bytes = 0
        self._lock = threading.Lock()
        self._sock = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
                with self._lock:
                    self.bytes += len(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._sock.close()


def run(cmd: list[str], env: dict | None = None) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")


def job(proxy: CountingProxy, steps: list[list[str]], env: dict | None = None) -> tuple[float, int]:
    before, start = proxy.bytes, time.monotonic()
    for cmd in steps:
        run(cmd, env)
    return time.monotonic() - start, proxy.bytes - before


def pybuild_store(work: Path, name: str) -> list[str]:
    root, state = work / f"{name}-root", work / f"{name}-state"
    root.mkdir(mode=0o700)
    state.mkdir(mode=0o700)
    return [PYBUILD, "--root", str(root), "--state-dir", str(state)]


def buildah_store(work: Path, name: str) -> list[str]:
    root, runroot = work / f"{name}-broot", work / f"{name}-brun"
    return ["buildah", "--root", str(root), "--runroot", str(runroot), "--storage-driver", "overlay"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=200)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-cache-"))
    server = start_registry("open", work / "registry")
    proxy = None
    try:
        host, port = server.host.split(":")
        proxy = CountingProxy((host, int(port)))
        reg = f"127.0.0.1:{proxy.port}"
        env = {"PYBUILD_INSECURE_REGISTRIES": reg, "PYBUILD_CONFIG": str(work / "cfg"), "HOME": str(work)}
        tar = work / "busybox.tar"
        busybox = shutil.which("busybox") or "/bin/busybox"
        run([sys.executable, str(ROOT / "testdata" / "busybox" / "make_rootfs.py"), str(tar), busybox])
        seed = pybuild_store(work, "seed")
        run(seed + ["import", str(tar), "busybox:latest"], env)
        run(seed + ["push", "busybox:latest", f"{reg}/base/busybox:1"], env)
        ctx = work / "ctx"
        ctx.mkdir()
        with open(ctx / "big.bin", "wb") as f:
            for _ in range(args.mb):
                f.write(os.urandom(1 << 20))
        (ctx / "Dockerfile").write_text(f"FROM {reg}/base/busybox:1\nCOPY big.bin /data/big.bin\n"
                                        "RUN date > /stamp\n")
        cache = f"type=registry,ref={reg}/cache/app:c"
        results: dict[str, tuple[float, int]] = {}

        def pb(name: str, tag: str, *extra: str) -> tuple[float, int]:
            s = pybuild_store(work, name)
            return job(proxy, [s + ["build", "-q", "-t", f"{reg}/{tag}", "--push", *extra, str(ctx)]], env)

        results["pybuild A (cache-to, push)"] = pb("pa", "team/app:a", "--cache-to", cache + ",mode=max")
        results["pybuild B (cache-from, push)"] = pb("pb", "team/b:1", "--cache-from", cache)
        results["pybuild cold (push)"] = pb("pc", "team/cold:1")

        bcache = f"{reg}/bcache/app"

        def bh(name: str, tag: str, *extra: str) -> tuple[float, int]:
            s = buildah_store(work, name)
            return job(proxy, [s + ["bud", "-q", "--layers", "--tls-verify=false", "-t", f"{reg}/{tag}", *extra,
                                    str(ctx)],
                               s + ["push", "-q", "--tls-verify=false", f"{reg}/{tag}"]])

        buildah = shutil.which("buildah") is not None
        if buildah:
            try:
                results["buildah A (cache-to, push)"] = bh("ba", "bteam/app:a", "--cache-to", bcache)
                results["buildah B (cache-from, push)"] = bh("bb", "bteam/b:1", "--cache-from", bcache)
                results["buildah cold (push)"] = bh("bc", "bteam/cold:1")
            finally:
                for name in ("ba", "bb", "bc"):
                    subprocess.run(buildah_store(work, name) + ["rm", "--all"], capture_output=True)
                    subprocess.run(buildah_store(work, name) + ["rmi", "--all", "--force"], capture_output=True)
        print(f"image: busybox + {args.mb} MB COPY + RUN date; registry docker-registry via a counting proxy")
        print(f"{'job':32} {'seconds':>8} {'MB moved':>10}")
        for name, (secs, nbytes) in results.items():
            print(f"{name:32} {secs:8.2f} {nbytes / 1e6:10.2f}")
        if buildah:
            pb_b, bh_b = results["pybuild B (cache-from, push)"], results["buildah B (cache-from, push)"]
            print(f"pybuild B / buildah B: {pb_b[0] / bh_b[0]:.2f}x time, "
                  f"{pb_b[1] / max(bh_b[1], 1):.3f}x bytes")
    finally:
        if proxy is not None:
            proxy.close()
        server.stop()
        subprocess.run(["umount", "-R", str(work)], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
