"""The same Dockerfile built by ``buildah bud`` and by ``pybuild build`` gives the same file tree: the
layers of each image applied in order (whiteouts and opaque dirs honoured), then paths, types, modes,
owners, contents and link targets compared.

Documented differences: mtimes are not compared (buildah stamps what it creates with the build
time); buildah 1.28 leaves the mount points of a RUN in its layer (empty ``/etc/hostname`` and
``/etc/resolv.conf``, a ``/run`` directory), which pybuild removes, as BuildKit does; Debian 12's
buildah cannot parse heredocs, so these Dockerfiles have none.
"""

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
BUILDAH_RUN_STUBS = {"etc/hostname", "etc/resolv.conf", "run"}

pytestmark = pytest.mark.skipif(shutil.which("buildah") is None, reason="buildah is not installed")


def _name(member: tarfile.TarInfo) -> str:
    return "" if member.name in (".", "./") else member.name.lstrip("./").rstrip("/")


def _merged(blobs: dict[str, bytes], manifest: dict) -> dict[str, tuple]:
    """The file tree an image's layers make, applied in order as an extractor does."""
    tree: dict[str, tuple] = {}

    def drop(prefix: str, itself: bool) -> None:
        for k in [k for k in tree if k.startswith(prefix + "/") or (itself and k == prefix)]:
            del tree[k]

    for layer in manifest["layers"]:
        with tarfile.open(fileobj=io.BytesIO(blobs[layer["digest"]]), mode="r:*") as tar:
            members = [m for m in tar.getmembers() if _name(m)]
            for m in members:  # an opaque dir hides what lower layers had in it
                head, _, base = _name(m).rpartition("/")
                if base == ".wh..wh..opq":
                    drop(head, False)
            for m in members:
                name = _name(m)
                head, _, base = name.rpartition("/")
                if base == ".wh..wh..opq":
                    continue
                if base.startswith(".wh."):
                    drop((head + "/" if head else "") + base[4:], True)
                    continue
                if not m.isdir():
                    drop(name, False)
                kind = "d" if m.isdir() else "l" if m.issym() else "h" if m.islnk() else "f" if m.isfile() else "o"
                body = hashlib.sha256(tar.extractfile(m).read()).hexdigest() if m.isfile() else m.linkname
                tree[name] = (kind, m.mode & 0o7777, m.uid, m.gid, body)
    return tree


def _tree_from_oci_tar(path: Path) -> dict[str, tuple]:
    with tarfile.open(path) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    index = json.loads(files["index.json"])
    blobs = {"sha256:" + n.rsplit("/", 1)[-1]: b for n, b in files.items() if n.startswith("blobs/sha256/")}
    return _merged(blobs, json.loads(blobs[index["manifests"][0]["digest"]]))


def _tree_from_oci_dir(path: Path) -> dict[str, tuple]:
    index = json.loads((path / "index.json").read_text())
    blobs = {"sha256:" + p.name: p.read_bytes() for p in (path / "blobs" / "sha256").iterdir()}
    return _merged(blobs, json.loads(blobs[index["manifests"][0]["digest"]]))


@pytest.fixture
def buildah(tmp_path: Path, busybox_tar: Path):
    """A buildah with its own storage holding ``busybox:latest`` made from the same rootfs tar."""
    bh = ["buildah", "--root", str(tmp_path / "bh-root"), "--runroot", str(tmp_path / "bh-run"),
          "--storage-driver", "vfs"]

    def run(*args: str) -> str:
        return subprocess.run([*bh, *args], check=True, capture_output=True, text=True, timeout=300).stdout.strip()

    ctr = run("from", "scratch")
    run("add", ctr, str(busybox_tar), "/")
    run("commit", "-q", ctr, "busybox:latest")
    run("rm", ctr)
    try:
        yield run
    finally:
        subprocess.run([*bh, "rm", "-a"], capture_output=True)
        subprocess.run([*bh, "rmi", "-a", "-f"], capture_output=True)


def _compare(bpybuild, buildah, ctx: Path, tmp_path: Path) -> tuple[dict, dict]:
    out = tmp_path / "pb.tar"
    bpybuild("build", "-q", "-t", "cmp:1", "-o", f"type=oci,dest={out}", str(ctx), check=True)
    buildah("bud", "--network", "host", "-q", "-t", "cmp:1", str(ctx))
    buildah("push", "cmp:1", f"oci:{tmp_path / 'bh-oci'}")
    return _tree_from_oci_tar(out), _tree_from_oci_dir(tmp_path / "bh-oci")


def test_same_tree_as_buildah_for_copy_rules(bpybuild, buildah, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    shutil.copytree(CASES / "dockerignore", ctx)
    (ctx / "expected.json").unlink(missing_ok=True)
    (ctx / "Dockerfile").write_text(
        "FROM scratch\nCOPY . /ctx/\nCOPY src/*.txt /globbed/\nCOPY --chmod=640 --chown=1:2 src/keep.md /owned.md\n")
    ours, theirs = _compare(bpybuild, buildah, ctx, tmp_path)
    assert ours == theirs


def test_same_tree_as_buildah_for_run_layers_and_stages(bpybuild, buildah, tmp_path: Path) -> None:
    """RUN layers with whiteouts, an opaque directory, a file replaced by a directory, a setuid bit,
    links; COPY --from a stage, --chown/--chmod; WORKDIR made for a later RUN."""
    ctx = tmp_path / "run"
    (ctx / "src").mkdir(parents=True)
    (ctx / "src" / "a.txt").write_text("aaa\n")
    (ctx / "Dockerfile").write_text(
        "FROM busybox AS build\n"
        "RUN mkdir -p /out/sub && echo built > /out/a && echo deep > /out/sub/b && chmod 4755 /out/a\n"
        "FROM busybox\n"
        "COPY --from=build /out /out\n"
        "COPY --chown=1:2 --chmod=600 src/a.txt /owned\n"
        "RUN rm -rf /var && mkdir /var && echo new > /var/new && rm /bin/ls && rm /bin/true && mkdir /bin/true "
        "&& ln -s /out/a /link && ln /owned /hard\n"
        "WORKDIR /srv/app\n"
        "RUN echo in-workdir > here\n")
    ours, theirs = _compare(bpybuild, buildah, ctx, tmp_path)
    for stub in BUILDAH_RUN_STUBS - set(ours):
        theirs.pop(stub, None)
    assert ours == theirs
    assert ours["var/new"][0] == "f" and "var/www" not in ours and "bin/ls" not in ours
    assert ours["bin/true"][0] == "d" and ours["out/a"][1] == 0o4755 and ours["owned"][1:4] == (0o600, 1, 2)
