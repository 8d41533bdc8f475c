#!/usr/bin/env python3
"""Sign and verify an image on a local registry: pybuild next to the peers this machine has, same run.

Usage: ``.venv/bin/python bench/sign.py [--runs 5]``

Debian 12 builds skopeo and podman with sigstore disabled and has no cosign, so the peers are:

- signing: ``skopeo copy --sign-by-sigstore-private-key`` (run to show its answer; it signs nothing here);
- verifying the bundle: the Sigstore project's ``@sigstore/verify`` under node (installed from npm into
  a temp dir), on the same bundle ``pybuild verify --form bundle`` checks.

Prints the median wall time of each (every run alternates the tools), and every run.
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

from tests.registry.servers import start_registry  # noqa: E402

PB = str(Path(sys.executable).with_name("pybuild"))


def timed(cmd: list[str], **kw) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    return time.perf_counter() - start, proc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-sign-"))
    server = start_registry("open", work / "registry")
    try:
        from tests.registry.images import make_image
        from tests.registry.test_pull_push import _push_library

        manifest, blobs = make_image((200_000,), tag="bench")
        _push_library(server, "bench/app", "1", manifest, blobs)
        image = f"{server.host}/bench/app:1"
        env = {**os.environ, "COSIGN_PASSWORD": "bench", "HOME": str(work), "PYBUILD_CONFIG": str(work / "cfg")}
        base = [PB, "--root", str(work / "root"), "--state-dir", str(work / "state")]
        subprocess.run(base + ["key", "generate", "--output-key-prefix", str(work / "k")], env=env, check=True,
                       capture_output=True)

        js = work / "js"
        npm = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--no-package-lock", "--prefix", str(js),
                              "@sigstore/verify@3", "@sigstore/bundle@4"], capture_output=True, text=True)
        have_js = npm.returncode == 0
        if have_js:
            shutil.copy(ROOT / "tests" / "registry" / "js" / "verify_bundle.js", js / "verify_bundle.js")

        (work / "pw").write_text("bench\n")
        skopeo = subprocess.run(["skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--sign-by-sigstore-private-key",
                                 str(work / "k.key"), "--sign-passphrase-file", str(work / "pw"), f"docker://{image}", f"docker://{server.host}/bench/copy:1"],
                                capture_output=True, text=True, env=env) if shutil.which("skopeo") else None

        sign, verify, verify_bundle, node = [], [], [], []
        bundle = work / "bundle.json"
        for _ in range(args.runs):
            t, p = timed(base + ["sign", image, "--key", str(work / "k.key")], env=env)
            assert p.returncode == 0, p.stderr
            sign.append(t)
            t, p = timed(base + ["verify", image, "--key", str(work / "k.pub")], env=env)
            assert p.returncode == 0, p.stderr
            verify.append(t)
            t, p = timed(base + ["verify", image, "--key", str(work / "k.pub"), "--form", "bundle"], env=env)
            assert p.returncode == 0, p.stderr
            verify_bundle.append(t)
        if have_js:
            from layers.manifest import Manifest
            from registry_client.client import Registry
            from registry_client.referrers import fetch_small, list_referrers

            with Registry(server.host) as reg:
                repo = reg.repository("bench/app")
                first = list_referrers(repo, manifest.digest, "application/vnd.dev.sigstore.bundle.v0.3+json")[0]
                art = Manifest.parse(repo.get_manifest(str(first.descriptor.digest)).raw)
                bundle.write_bytes(fetch_small(repo, art.layers[0]))
            for _ in range(args.runs):
                t, p = timed(["node", str(js / "verify_bundle.js"), str(bundle), str(work / "k.pub"),
                              manifest.digest.hex], cwd=js)
                assert p.returncode == 0, p.stderr
                node.append(t)

        def ms(xs):
            return f"{statistics.median(xs) * 1000:.0f} ms  (runs: {', '.join(f'{x * 1000:.0f}' for x in xs)})"

        print(f"pybuild sign (simple signing + bundle referrer, tag fallback): {ms(sign)}")
        print(f"pybuild verify (both forms; {args.runs * 2} signatures by the last run): {ms(verify)}")
        print(f"pybuild verify --form bundle: {ms(verify_bundle)}")
        print(f"node @sigstore/verify on one bundle (no registry traffic): {ms(node) if node else 'npm install failed'}")
        if skopeo is not None:
            print(f"skopeo copy --sign-by-sigstore-private-key: exit {skopeo.returncode}: "
                  f"{(skopeo.stderr.strip().splitlines() or [''])[-1][:160]}")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
