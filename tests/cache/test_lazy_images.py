"""Images whose layers are known only lazily (registry build cache hits, a lazy base pull): ``images``
shows their size, ``save`` and ``push --compression`` fetch the bytes first (verified), and with no
registry to fetch from ``save`` refuses in one line naming what is missing. Real ``pybuild`` commands,
a real ``docker-registry`` with an access log, stores that share nothing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.conftest import BUSYBOX, TESTDATA, PybuildRunner

DOCKERFILE = "FROM {base}\nCOPY a.txt /a.txt\nCOPY b.txt /b.txt\n"


class Site:
    """A registry, the base image on it, a cache exported by machine A, and fresh machines."""

    def __init__(self, base: Path, server) -> None:
        self.base, self.server, self.host = base, server, server.host
        self.env = {"PYBUILD_INSECURE_REGISTRIES": server.host, "PYBUILD_CONFIG": str(base / "cfg"),
                    "DOCKER_CONFIG": str(base / "docker"), "HOME": str(base)}
        self.n = 0

    def machine(self) -> PybuildRunner:
        self.n += 1
        root, state = self.base / f"m{self.n}-root", self.base / f"m{self.n}-state"
        root.mkdir(mode=0o700)
        state.mkdir(mode=0o700)
        return PybuildRunner(root, state)

    def __call__(self, machine: PybuildRunner, *args: str, ok: bool = True):
        proc = machine(*args, env=self.env)
        if ok:
            assert proc.returncode == 0, proc.stderr
        return proc

    def lazy_image(self, tag: str) -> PybuildRunner:
        """A fresh machine whose ``tag`` was built entirely from the registry cache (no layer fetched)."""
        m = self.machine()
        out = self(m, "build", "--progress", "plain", "-t", tag, "--cache-from", f"type=registry,ref={self.cache}",
                   str(self.ctx))
        assert "0 cached layers downloaded" in out.stderr and out.stderr.count("CACHED (registry)") == 2, out.stderr
        return m

    def blob_gets(self, since: int) -> list[str]:
        return [l for l in self.log()[since:] if re.search(r'"GET /v2/\S+/blobs/sha256:', l) and '" 200 ' in l]

    def log(self) -> list[str]:
        return (self.server.workdir / "registry.log").read_text(errors="replace").splitlines()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from tests.registry.servers import REGISTRY_BIN, start_registry

    if REGISTRY_BIN is None:
        pytest.skip("docker-registry is not installed")
    base = tmp_path_factory.mktemp("lazy")
    server = start_registry("open", base / "registry", access_log=True)
    try:
        s = Site(base, server)
        a = s.machine()
        tar = base / "busybox.tar"
        subprocess.run([sys.executable, str(TESTDATA / "busybox" / "make_rootfs.py"), str(tar), BUSYBOX], check=True)
        s(a, "import", str(tar), "busybox:latest")
        base_ref = f"{s.host}/base/busybox:1"
        s(a, "push", "busybox:latest", base_ref)
        s.ctx = base / "ctx"
        s.ctx.mkdir()
        (s.ctx / "Dockerfile").write_text(DOCKERFILE.format(base=base_ref))
        (s.ctx / "a.txt").write_text("a" * 5000 + "\n")
        (s.ctx / "b.txt").write_text("b1\n")
        s.cache = f"{s.host}/cache/app:1"
        s(a, "build", "-t", "app:a", "--cache-to", f"type=registry,ref={s.cache},mode=max", str(s.ctx))
        s.a = a
        yield s
    finally:
        server.stop()


def test_images_shows_a_lazy_image_s_size(site: Site) -> None:
    b = site.lazy_image("app:lazy")
    rows = [json.loads(l) for l in site(b, "images", "--format", "{{json .}}").stdout.splitlines()]
    row = next(r for r in rows if r["Repository"] == "app" and r["Tag"] == "lazy")
    a_rows = [json.loads(l) for l in site(site.a, "images", "--format", "{{json .}}").stdout.splitlines()]
    a_row = next(r for r in a_rows if r["Repository"] == "app" and r["Tag"] == "a")
    assert row["Size"] == a_row["Size"] != "0B", (row, a_row)  # the same image: the same size, lazy or not
    assert row["CreatedSince"] and row["CreatedSince"] != "N/A"


def test_save_fetches_lazy_layers_first(site: Site, tmp_path: Path) -> None:
    b = site.lazy_image("app:save")
    mark = len(site.log())
    out = site(b, "save", "-o", str(tmp_path / "app.tar"), "app:save")
    assert out.returncode == 0, out.stderr
    assert len(site.blob_gets(mark)) == 3, site.log()[mark:]  # the base layer and the two COPY layers
    with tarfile.open(tmp_path / "app.tar") as tf:
        names = set(tf.getnames())
        index = json.load(tf.extractfile("index.json"))
        manifest = json.load(tf.extractfile("blobs/sha256/" + index["manifests"][0]["digest"].split(":")[1]))
    assert len(manifest["layers"]) == 3
    for layer in manifest["layers"]:
        assert f"blobs/sha256/{layer['digest'].split(':')[1]}" in names
    # the archive is whole: a machine that never saw the registry loads and runs it
    c = site.machine()
    site(c, "load", "-i", str(tmp_path / "app.tar"))
    assert site(c, "run", "--rm", "--network", "none", "app:save", "cat", "/b.txt").stdout == "b1\n"
    # saved again: nothing more to fetch
    mark = len(site.log())
    site(b, "save", "-o", str(tmp_path / "again.tar"), "app:save")
    assert site.blob_gets(mark) == []


def test_push_with_recompression_fetches_lazy_layers(site: Site) -> None:
    b = site.lazy_image("app:zstd")
    out = site(b, "push", "--compression", "zstd", "app:zstd", f"{site.host}/team/zstd:1")
    assert out.returncode == 0, out.stderr
    manifest = json.loads(site(b, "manifest", "inspect", f"{site.host}/team/zstd:1").stdout)
    assert {l["mediaType"].rsplit("+", 1)[1] for l in manifest["layers"]} == {"zstd"}
    c = site.machine()
    assert site(c, "run", "--rm", "--network", "none", f"{site.host}/team/zstd:1", "cat", "/b.txt").stdout == "b1\n"


def test_save_without_a_registry_refuses_in_one_line(site: Site, tmp_path: Path) -> None:
    """The only registry holding the layers is gone: one line naming the layer and where it was to
    come from, no archive, no traceback. Runs last in this module: it stops the registry."""
    b = site.lazy_image("app:offline")
    site.server.stop()
    out = site(b, "save", "-o", str(tmp_path / "x.tar"), "app:offline", ok=False)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert re.search(r"save: app:offline: layer sha256:[0-9a-f]{64} and 2 more is not in the store", lines[0]), lines
    assert f"{site.host}/cache/app" in lines[0] and "could not be reached" in lines[0]
    assert not (tmp_path / "x.tar").exists()
    # images still lists it with its size
    row = json.loads(site(b, "images", "--format", "{{json .}}", "app").stdout.splitlines()[0])
    assert row["Size"] != "0B"
