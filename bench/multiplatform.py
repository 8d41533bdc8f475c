#!/usr/bin/env python3
"""A two-platform build, pybuild next to ``buildah bud``, on the same Dockerfile in one run:

    pybuild build --platform linux/amd64,linux/arm64 -t IMG --no-cache CTX
    buildah bud   --platform linux/amd64,linux/arm64 --manifest IMG --no-cache CTX

The base is a busybox index (Debian's ``busybox-static`` for amd64 and ``busybox-static:arm64``, see
tests/multiplatform/conftest.py) pushed to a ``docker-registry`` on 127.0.0.1 that both tools pull
from. The Dockerfile's RUN steps do a little shell work (so the arm64 half runs under qemu-aarch64
through binfmt_misc) and a COPY. Each tool pulls the base once before the timed runs; each timed run
is cold (``--no-cache``), and the tools alternate; medians are printed. Both also do a no-change
rebuild (pybuild from its cache; buildah with its layer cache, ``--layers``). Usage:

    .venv/bin/python bench/multiplatform.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PYBUILD = str(Path(sys.executable).with_name("pybuild"))
ARM64_DEB = Path("/var/cache/pybuild-test/busybox-static_arm64.deb")

DOCKERFILE = """\
FROM {base}
ARG TARGETARCH
RUN i=0; while [ $i -lt 3000 ]; do echo "$TARGETARCH $i"; i=$((i+1)); done > /numbers && md5sum /numbers > /sum
COPY data/ /data/
RUN uname -m > /arch && tar -cf /data.tar /data && wc -c /data.tar > /size
CMD ["cat", "/arch", "/sum", "/size"]
"""


def timed(cmd: list[str], env: dict | None = None) -> float:
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:10])}... failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from runner import binfmt
    from tests.registry.servers import start_registry

    binfmt.require("linux", "arm64")
    buildah = shutil.which("buildah")
    with tempfile.TemporaryDirectory(prefix="mpbench-", dir="/var/tmp") as tmp:
        t = Path(tmp)
        registry = start_registry("open", t / "registry")
        try:
            host = registry.host
            env = dict(os.environ, PYBUILD_INSECURE_REGISTRIES=host)
            pb = [PYBUILD, "--root", str(t / "pb-root"), "--state-dir", str(t / "pb-state")]
            # the base: busybox for both platforms, one index in the registry
            x = t / "deb"
            subprocess.run(["dpkg-deb", "-x", str(ARM64_DEB), str(x)], check=True)
            make = str(ROOT / "testdata" / "busybox" / "make_rootfs.py")
            subprocess.run([sys.executable, make, str(t / "amd64.tar"), "/bin/busybox"], check=True)
            subprocess.run([sys.executable, make, str(t / "arm64.tar"), str(x / "bin" / "busybox"), "/bin/busybox"],
                           check=True)
            base = f"{host}/bench/busybox:multi"
            subprocess.run(pb + ["import", str(t / "amd64.tar"), "bb:amd64"], check=True, capture_output=True)
            subprocess.run(pb + ["import", "--platform", "linux/arm64", str(t / "arm64.tar"), "bb:arm64"], check=True,
                           capture_output=True)
            subprocess.run(pb + ["manifest", "create", base, "bb:amd64", "bb:arm64"], check=True, capture_output=True)
            subprocess.run(pb + ["manifest", "push", "-q", base], check=True, capture_output=True, env=env)
            subprocess.run(pb + ["rmi", base, "bb:amd64", "bb:arm64"], check=True, capture_output=True)

            ctx = t / "ctx"
            (ctx / "data").mkdir(parents=True)
            for i in range(200):
                (ctx / "data" / f"f{i:03d}.txt").write_text(f"file {i}\n" * 500)
            (ctx / "Dockerfile").write_text(DOCKERFILE.format(base=base))
            platforms = "linux/amd64,linux/arm64"
            pb_build = pb + ["build", "-q", "--platform", platforms, "-t", "mp:1", str(ctx)]
            pb_cold = pb + ["build", "-q", "--no-cache", "--platform", platforms, "-t", "mp:1", str(ctx)]
            bh = [buildah, "--root", str(t / "bh-root"), "--runroot", str(t / "bh-run"), "--storage-driver", "overlay"] \
                if buildah else None
            bh_build = (bh + ["bud", "--quiet", "--platform", platforms, "--tls-verify=false", "--layers",
                              "--ulimit", "nofile=1024:1024", "--manifest", "mp:1", str(ctx)]) if bh else None
            # warm-up: each tool pulls the base for both platforms
            timed(pb_build, env)
            if bh_build:
                timed(bh_build)
            cold: dict[str, list[float]] = {"pybuild": [], "buildah": []}
            for _ in range(args.runs):
                cold["pybuild"].append(timed(pb_cold, env))
                if bh_build:
                    subprocess.run(bh + ["manifest", "rm", "mp:1"], capture_output=True)
                    cold["buildah"].append(timed(bh_build[:-1] + ["--no-cache", str(ctx)]))
            warm = {"pybuild": timed(pb_build, env)}
            if bh_build:
                subprocess.run(bh + ["manifest", "rm", "mp:1"], capture_output=True)
                warm["buildah"] = timed(bh_build)
            check = subprocess.run(pb + ["run", "--rm", "--network", "none", "--platform", "linux/arm64", "mp:1"],
                                   capture_output=True, text=True)
            print(f"pybuild's arm64 image says: {check.stdout.splitlines()[:1]}")
            print(f"two-platform build ({platforms}), {args.runs} cold runs each, median:")
            for tool, times in cold.items():
                if times:
                    print(f"  {tool:8s} cold {statistics.median(times):6.2f} s  (runs: "
                          f"{', '.join(f'{x:.2f}' for x in times)}); no-change rebuild {warm[tool]:.2f} s")
            if not bh_build:
                print("  buildah: not installed")
        finally:
            registry.stop()
            if buildah:
                subprocess.run([buildah, "--root", str(t / "bh-root"), "--runroot", str(t / "bh-run"), "rm", "--all"],
                               capture_output=True)
                subprocess.run(["umount", "-R", str(t / "bh-root" / "overlay")], capture_output=True)


if __name__ == "__main__":
    main()
