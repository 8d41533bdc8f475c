"""The same Dockerfile built by ``buildah bud`` and by ``pybuild build`` gives the same file tree
(paths, types, modes, owners, contents). Documented difference: directory mtimes are not compared
(buildah stamps directories it creates with the build time)."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

CASES = Path(__file__).resolve().parents[2] / "testdata" / "dockerfiles"


def _tree_from_layers(blobs: dict[str, bytes], manifest: dict) -> dict[str, tuple]:
    tree: dict[str, tuple] = {}
    for layer in manifest["layers"]:
        data = blobs[layer["digest"]]
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            for m in tar.getmembers():
                name = m.name.lstrip("./").rstrip("/")
                if not name:
                    continue
                base = name.rsplit("/", 1)[-1]
                if base.startswith(".wh."):
                    continue
                body = hashlib.sha256(tar.extractfile(m).read()).hexdigest() if m.isfile() else m.linkname
                tree[name] = (m.type, m.mode & 0o7777, m.uid, m.gid, body)
    return tree


def _tree_from_oci_tar(path: Path) -> dict[str, tuple]:
    with tarfile.open(path) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    index = json.loads(files["index.json"])
    mdesc = index["manifests"][0]["digest"]
    blobs = {"sha256:" + n.rsplit("/", 1)[-1]: b for n, b in files.items() if n.startswith("blobs/sha256/")}
    return _tree_from_layers(blobs, json.loads(blobs[mdesc]))


def _tree_from_oci_dir(path: Path) -> dict[str, tuple]:
    index = json.loads((path / "index.json").read_text())
    blobs = {"sha256:" + p.name: p.read_bytes() for p in (path / "blobs" / "sha256").iterdir()}
    return _tree_from_layers(blobs, json.loads(blobs[index["manifests"][0]["digest"]]))


@pytest.mark.skipif(shutil.which("buildah") is None, reason="buildah is not installed")
def test_same_tree_as_buildah(bpybuild, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    shutil.copytree(CASES / "dockerignore", ctx)
    (ctx / "expected.json").unlink(missing_ok=True)
    (ctx / "Dockerfile").write_text(
        # no heredoc here: Debian 12's buildah (1.28) cannot parse them (its COPY stats "/<<EOT")
        "FROM scratch\nCOPY . /ctx/\nCOPY src/*.txt /globbed/\nCOPY --chmod=640 --chown=1:2 src/keep.md /owned.md\n")
    out = tmp_path / "pb.tar"
    bpybuild("build", "-q", "-t", "cmp:1", "-o", f"type=oci,dest={out}", str(ctx), check=True)
    bh = ["buildah", "--root", str(tmp_path / "bh-root"), "--runroot", str(tmp_path / "bh-run"),
          "--storage-driver", "vfs"]
    try:
        subprocess.run([*bh, "bud", "-q", "-t", "cmp:1", str(ctx)], check=True, capture_output=True, timeout=300)
        subprocess.run([*bh, "push", "cmp:1", f"oci:{tmp_path / 'bh-oci'}"], check=True, capture_output=True,
                       timeout=300)
    finally:
        subprocess.run([*bh, "rmi", "-a", "-f"], capture_output=True)
    ours, theirs = _tree_from_oci_tar(out), _tree_from_oci_dir(tmp_path / "bh-oci")
    # buildah adds parent dirs without entries in some versions; compare what both have plus files
    files_ours = {k: v for k, v in ours.items() if v[0] != tarfile.DIRTYPE}
    files_theirs = {k: v for k, v in theirs.items() if v[0] != tarfile.DIRTYPE}
    assert files_ours == files_theirs
    dirs = lambda t: {k: v[1:4] for k, v in t.items() if v[0] == tarfile.DIRTYPE}
    common = set(dirs(ours)) & set(dirs(theirs))
    assert {k: dirs(ours)[k] for k in common} == {k: dirs(theirs)[k] for k in common}
