#!/usr/bin/env python3
"""Push and pull a ~500 MB image through a local registry: pybuild next to ``skopeo copy``, same run.

Usage: ``.venv/bin/python bench/registry.py [--mb 500] [--layers 5] [--runs 3]``

Makes an OCI layout of random (incompressible) gzip layers, seeds registry A with it by
``skopeo copy``, then, ``--runs`` times (the two tools in alternating order):

- pull: ``pybuild pull --no-unpack A/bench:1`` into an empty root  vs  ``skopeo copy docker://A/bench:1 oci:DIR``
- push: ``pybuild push`` of that image to a fresh registry B  vs  ``skopeo copy oci:DIR docker://C/bench:1``

Registries are Debian's ``docker-registry`` on 127.0.0.1 (fresh storage each, so nothing is
skipped or mounted). Prints the median seconds and MB/s for both tools, and every run.
"""

from __future__ import annotations

import argparse
import json
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


def make_layout(path: Path, total_mb: int, nlayers: int) -> int:
    """An OCI layout with ``nlayers`` gzip layers of random data, ``total_mb`` MB in all."""
    import gzip
    import hashlib

    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    layers, diff_ids, total = [], [], 0
    per = total_mb * 1_000_000 // nlayers
    for _ in range(nlayers):
        raw = os.urandom(per)
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        blob = gzip.compress(raw, compresslevel=0, mtime=0)  # stored deflate blocks: size ~ raw size
        desc = put(blob)
        total += desc["size"]
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **desc})
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **put(config)},
                           "layers": layers}).encode()
    mdesc = put(manifest)
    (path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", **mdesc,
         "annotations": {"org.opencontainers.image.ref.name": "1"}}]}))
    return total


def timed(argv: list[str], env: dict | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])}... failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=500)
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3, help="rounds of each measure; the median is printed")
    args = parser.parse_args()
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        raise SystemExit("skopeo is not installed: nothing to compare with")
    pybuild = str(Path(sys.executable).with_name("pybuild"))
    tls = ["--src-tls-verify=false", "--dest-tls-verify=false"]
    times: dict[str, list[float]] = {"pull": [], "skopeo pull": [], "push": [], "skopeo push": []}
    with tempfile.TemporaryDirectory(prefix="bench-registry-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        size = make_layout(work / "layout", args.mb, args.layers)
        source = start_registry("open", work / "a")
        try:
            a = source.host
            timed([skopeo, "copy", "-q", *tls, f"oci:{work / 'layout'}:1", f"docker://{a}/bench:1"])
            for i in range(args.runs):
                # fresh destinations every round (nothing skipped or mounted), the order alternating
                root, pulled = work / f"root{i}", work / f"pulled{i}"
                base = [pybuild, "--root", str(root), "--state-dir", str(work / f"state{i}")]
                # --no-unpack: skopeo copy stores the blobs only (bench/coldbuild.py times pull + unpack)
                pulls = [("pull", [*base, "pull", "-q", "--no-unpack", f"{a}/bench:1"]),
                         ("skopeo pull", [skopeo, "copy", "-q", *tls, f"docker://{a}/bench:1", f"oci:{pulled}:1"])]
                for name, argv in pulls if i % 2 == 0 else pulls[::-1]:
                    times[name].append(timed(argv))
                dests = [start_registry("open", work / f"{name}{i}") for name in ("b", "c")]
                try:
                    b, c = (r.host for r in dests)
                    pushes = [("push", [*base, "push", "-q", f"{a}/bench:1", f"{b}/bench:1"]),
                              ("skopeo push", [skopeo, "copy", "-q", *tls, f"oci:{pulled}:1", f"docker://{c}/bench:1"])]
                    for name, argv in pushes if i % 2 == 0 else pushes[::-1]:
                        times[name].append(timed(argv))
                finally:
                    for r in dests:
                        r.stop()
                for path in (root, pulled, work / f"b{i}", work / f"c{i}"):
                    shutil.rmtree(path, ignore_errors=True)
        finally:
            source.stop()
    mb = size / 1e6
    print(f"image: {args.layers} layers, {mb:.0f} MB compressed; local docker-registry on 127.0.0.1; "
          f"median of {args.runs} run(s), each into a fresh store/layout/registry")
    print(f"{'':6}{'pybuild s':>11}{'MB/s':>8}{'skopeo s':>11}{'MB/s':>8}   runs (pybuild | skopeo)")
    for name in ("pull", "push"):
        ours, theirs = statistics.median(times[name]), statistics.median(times[f"skopeo {name}"])
        runs = " ".join(f"{t:.2f}" for t in times[name]) + " | " + " ".join(f"{t:.2f}" for t in times[f"skopeo {name}"])
        print(f"{name:6}{ours:11.2f}{mb / ours:8.0f}{theirs:11.2f}{mb / theirs:8.0f}   {runs}")


if __name__ == "__main__":
    main()
