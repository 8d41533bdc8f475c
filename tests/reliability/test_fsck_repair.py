"""``pybuild fsck --repair`` through the CLI: it reports first, then removes what is corrupt or
unreferenced, one line per thing; it fetches and rebuilds nothing (the registry an image came from
sees no request); what was sound is untouched and still runs."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from .helpers import fsck_clean

pytestmark = pytest.mark.timeout(300)


def _tree(root: Path) -> dict[str, bytes | None]:
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in files + dirs:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if rel.startswith("locks") or name.endswith(".lock"):
                continue
            out[rel] = p.read_bytes() if p.is_file() and not p.is_symlink() and "snapshots" not in rel else None
    return out


def _inspect(pb, name: str) -> dict:
    (doc,) = json.loads(pb("inspect", name, check=True).stdout)
    return doc


def test_fsck_repair_reports_then_removes_the_corrupt_and_the_unreferenced(rpb, tmp_path):
    from tests.registry.hostile import HostileRegistry, serve_image
    from tests.registry.images import make_image

    root = Path(rpb.root)
    # sound: busybox (and a snapshot of it, through a run)
    assert rpb("run", "--rm", "--network", "none", "busybox", "echo", "ok", check=True).stdout == "ok\n"
    # a pulled image whose layer is then tampered with
    server = HostileRegistry()
    manifest, blobs = make_image((120_000,), tag="pulled")
    serve_image(server, "fsck/pulled", "1", manifest, blobs)
    ref = f"{server.host}/fsck/pulled:1"
    try:
        rpb("pull", "-q", ref, check=True)
        layer = root / "blobs" / "sha256" / manifest.layers[0].digest.hex
        os.chmod(layer, 0o644)
        with open(layer, "r+b") as f:
            f.seek(1000)
            f.write(b"tampered")
        # a record whose config is gone
        rpb("import", "-", "noconfig:1", input=_tiny_tar(), text=False, check=True)
        (doc,) = json.loads(rpb("inspect", "noconfig:1", check=True).stdout)
        os.unlink(root / "blobs" / "sha256" / doc["Id"].split(":")[1])
        # unreferenced and left-over things
        stray = rpb("import", "-", "stray:1", input=_tiny_tar(b"stray"), text=False, check=True).stdout.decode().strip()
        (root / "images" / "index.json").write_text(
            json.dumps({"version": 1, "images": {k: v for k, v in json.loads(
                (root / "images" / "index.json").read_text())["images"].items() if "stray" not in k}}))
        (root / "ingest" / ("sha256-" + "ab" * 32)).write_bytes(b"half a blob")
        (root / "snapshots" / (".tmp-" + "cd" * 32 + "-0001")).mkdir()
        (root / "leases" / "999999-dead").write_text("blob sha256:" + "ef" * 32 + "\n")
        stale_build = root / "tmp" / "build-killed"
        stale_build.mkdir(parents=True)
        (stale_build / "pid").write_text("999999")
        before = _tree(root)
        seen_before = len(server.seen)

        check = rpb("fsck")
        assert check.returncode != 0 and check.stderr.startswith(f"pybuild: store {root}: 2 problem(s)"), check.stderr
        assert f"problem: blob {manifest.layers[0].digest}" in check.stdout
        assert "problem: image docker.io/library/noconfig:1:" in check.stdout
        assert "unreferenced blob(s)" in check.stdout and "partial ingest" in check.stdout
        assert "work directory of killed builds" in check.stdout
        assert _tree(root) == before, "fsck without --repair changed the store"

        fixed = rpb("fsck", "--repair")
        assert fixed.returncode == 0, fixed.stdout + fixed.stderr
        lines = fixed.stdout.splitlines()
        first_action = min(i for i, line in enumerate(lines) if line.startswith(("repaired:", "removed:")))
        assert all(not line.startswith("problem:") for line in lines[first_action:]), "reported after removing"
        out = fixed.stdout
        assert f"repaired: removed corrupt blob {manifest.layers[0].digest}" in out
        assert f"repaired: removed broken image record {ref} (pull or build it again)" in out
        assert "repaired: removed broken image record docker.io/library/noconfig:1" in out
        assert f"removed: unreferenced blob {stray}" in out  # the stray image's config (its id)
        assert "removed: partial ingest sha256-" + "ab" * 32 in out
        assert "removed: snapshot .tmp-" + "cd" * 32 + "-0001" in out
        assert "removed: the lease of a dead process (999999-dead)" in out
        assert "removed: 1 work directories of killed builds" in out
        assert out.rstrip().endswith(": repaired")
        assert len(server.seen) == seen_before, "fsck --repair talked to the registry"
    finally:
        server.stop()
    fsck_clean(rpb)
    assert "note:" not in rpb("fsck", check=True).stdout
    assert [json.loads(x)["Repository"] for x in rpb("images", "--format", "json", check=True).stdout.splitlines()] \
        == ["busybox"]
    assert rpb("run", "--rm", "--network", "none", "busybox", "echo", "still", check=True).stdout == "still\n"
    # nothing fetched it back silently: the user pulls it again
    assert rpb("inspect", ref).returncode != 0


def _tiny_tar(data: bytes = b"tiny") -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("f")
        info.size = len(data)
        info.mtime = time.time()
        tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_fsck_reports_a_container_whose_image_is_gone_and_repair_leaves_the_container(rpb):
    cid = rpb("create", "--network", "none", "busybox", "true", check=True).stdout.strip()
    from layers.store import Store

    root = Store(str(rpb.root)).roots.get("containers", cid)
    assert root is not None, "the runner registers a root per container (owner 'containers', key its id)"
    (digest,) = map(str, root.docs)
    os.unlink(Path(rpb.root) / "blobs" / "sha256" / digest.split(":")[1])
    for args in (("fsck",), ("fsck", "--repair")):
        out = rpb(*args)
        assert out.returncode != 0
        assert f"problem: container {cid[:12]}: its image {digest} is not in the store" in out.stdout
        assert out.stdout.rstrip().endswith("BROKEN")
    assert (Path(rpb.root) / "containers" / cid).is_dir()
    rpb("rm", cid, check=True)
    assert Store(str(rpb.root)).roots.get("containers", cid) is None, "rm left the container's root"
    rpb("system", "prune", check=True)
    fsck_clean(rpb)
