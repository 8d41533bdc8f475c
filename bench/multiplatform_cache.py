#!/usr/bin/env python3
"""A two-platform build's cache through a registry, pybuild next to ``buildah bud``, in one run:

    machine A:  build --platform linux/amd64,linux/arm64 --cache-to REGISTRY/cache  (cold)
    machine B:  build --platform linux/amd64,linux/arm64 --cache-from REGISTRY/cache (a fresh store)

pybuild writes one BuildKit cache manifest with both platforms' records; buildah pushes one tag per
layer (``--cache-to`` with ``--layers``). Machine B has nothing but the base (pulled before the timed
run). The Dockerfile, base and registry are those of bench/multiplatform.py (arm64 under
qemu-aarch64). Prints each tool's A and B times and how many steps B took from the cache. Usage:

    .venv/bin/python bench/multiplatform_cache.py
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from multiplatform import ARM64_DEB, DOCKERFILE, PYBUILD, ROOT  # noqa: E402

PLATFORMS = "linux/amd64,linux/arm64"


def run(cmd: list[str], env: dict | None = None) -> tuple[float, str]:
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:12])}... failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return elapsed, proc.stdout + proc.stderr


def base_index(t: Path, host: str, env: dict) -> str:
    """The busybox index for both platforms, pushed to the registry (as bench/multiplatform.py)."""
    pb = [PYBUILD, "--root", str(t / "seed-root"), "--state-dir", str(t / "seed-state")]
    x = t / "deb"
    subprocess.run(["dpkg-deb", "-x", str(ARM64_DEB), str(x)], check=True)
    make = str(ROOT / "testdata" / "busybox" / "make_rootfs.py")
    subprocess.run([sys.executable, make, str(t / "amd64.tar"), "/bin/busybox"], check=True)
    subprocess.run([sys.executable, make, str(t / "arm64.tar"), str(x / "bin" / "busybox"), "/bin/busybox"], check=True)
    base = f"{host}/bench/busybox:multi"
    for cmd in (["import", str(t / "amd64.tar"), "bb:amd64"],
                ["import", "--platform", "linux/arm64", str(t / "arm64.tar"), "bb:arm64"],
                ["manifest", "create", base, "bb:amd64", "bb:arm64"], ["manifest", "push", "-q", base]):
        subprocess.run(pb + cmd, check=True, capture_output=True, env=env)
    return base


def main() -> None:
    from runner import binfmt
    from tests.registry.servers import start_registry

    binfmt.require("linux", "arm64")
    buildah = shutil.which("buildah")
    with tempfile.TemporaryDirectory(prefix="mpcache-", dir="/var/tmp") as tmp:
        t = Path(tmp)
        registry = start_registry("open", t / "registry")
        bh_roots: list[Path] = []
        try:
            host = registry.host
            env = dict(os.environ, PYBUILD_INSECURE_REGISTRIES=host)
            base = base_index(t, host, env)
            ctx = t / "ctx"
            (ctx / "data").mkdir(parents=True)
            for i in range(200):
                (ctx / "data" / f"f{i:03d}.txt").write_text(f"file {i}\n" * 500)
            (ctx / "Dockerfile").write_text(DOCKERFILE.format(base=base))
            out: dict[str, tuple[float, float, str]] = {}

            def pybuild(name: str, *extra: str) -> tuple[float, str]:
                pb = [PYBUILD, "--root", str(t / f"{name}-root"), "--state-dir", str(t / f"{name}-state")]
                subprocess.run(pb + ["pull", "--all-platforms", base], check=True, capture_output=True, env=env)
                return run(pb + ["build", "--progress", "plain", "--platform", PLATFORMS, *extra, "-t", "mp:1",
                                 str(ctx)], env)

            a, _ = pybuild("pbA", "--cache-to", f"type=registry,ref={host}/bench/pbcache:1")
            b, log = pybuild("pbB", "--cache-from", f"type=registry,ref={host}/bench/pbcache:1")
            out["pybuild"] = (a, b, re.search(r"# (\d+/\d+) steps cached", log).group(1))
            if buildah:
                def bh(name: str, *extra: str) -> tuple[float, str]:
                    root = t / f"{name}-root"
                    bh_roots.append(root)
                    cmd = [buildah, "--root", str(root), "--runroot", str(t / f"{name}-run"), "--storage-driver",
                           "overlay"]
                    for arch in ("amd64", "arm64"):
                        subprocess.run(cmd + ["pull", "--tls-verify=false", "--arch", arch, base], check=True,
                                       capture_output=True)
                    return run(cmd + ["bud", "--platform", PLATFORMS, "--tls-verify=false", "--layers",
                                      "--ulimit", "nofile=1024:1024", *extra, "--manifest", "mp:1", str(ctx)])

                a, _ = bh("bhA", "--cache-to", f"{host}/bench/bhcache")
                b, log = bh("bhB", "--cache-from", f"{host}/bench/bhcache")
                used = len(re.findall(r"Using cache|Cache pulled from remote", log))
                out["buildah"] = (a, b, f"{used} 'cache' lines")
            print(f"two-platform build ({PLATFORMS}) with a registry cache, one run:")
            for tool, (a, b, hits) in out.items():
                print(f"  {tool:8s} A cold + --cache-to {a:6.2f} s; B fresh + --cache-from {b:6.2f} s ({hits})")
            if not buildah:
                print("  buildah: not installed")
        finally:
            registry.stop()
            for root in bh_roots:
                subprocess.run([buildah, "--root", str(root), "--runroot", str(root.with_name(root.name[:-5] + "-run")),
                                "rm", "--all"], capture_output=True)
                subprocess.run(["umount", "-R", str(root / "overlay")], capture_output=True)


if __name__ == "__main__":
    main()
