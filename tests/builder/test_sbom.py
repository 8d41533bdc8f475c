"""``pybuild build --sbom``: SPDX 2.3 JSON of the built image, valid against the SPDX schema
(``testdata/spdx``), naming the packages of every layer (dpkg, apk, Python dist-info/egg-info, npm)
with version, PURL and licence, and the files of the layers the build made; pushed with the image as
an OCI 1.1 referrer (to Debian's docker-registry: the referrers tag fallback), read back by
``pybuild sbom`` and listed by ``pybuild referrers``.

The Debian case (slow: the session ``debian_tar`` from debootstrap) installs a package with apt in
the build and finds it, with the version dpkg reports inside the image and its ``pkg:deb`` PURL."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

SCHEMA = Path(__file__).resolve().parents[2] / "testdata" / "spdx" / "spdx-schema.json"


def _validate(doc: dict) -> None:
    import jsonschema

    jsonschema.Draft201909Validator(json.loads(SCHEMA.read_text())).validate(doc)


def _sbom_file(pybuild, tag: str) -> dict:
    """The SBOM the build saved beside the store for ``tag``'s manifest."""
    from layers.store import Store

    store = Store(str(pybuild.root))
    digest = store.images.resolve(tag).manifest_digest
    return json.loads((pybuild.root / "sboms" / f"{digest.hex}.spdx.json").read_text())


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    from tests.registry.servers import REGISTRY_BIN, start_registry

    if REGISTRY_BIN is None:
        pytest.skip("docker-registry is not installed (apt-get install docker-registry)")
    server = start_registry("open", tmp_path_factory.mktemp("sbom-registry"))
    yield server
    server.stop()


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_sbom_of_every_package_kind_pushed_as_referrer(bpybuild, registry, tmp_path):
    ctx = tmp_path / "ctx"
    tree = ctx / "tree"
    _write(tree, "etc/os-release", 'ID=debian\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n')
    _write(tree, "var/lib/dpkg/status",
           "Package: fakepkg\nStatus: install ok installed\nVersion: 1:1.2-3+deb12u1\nArchitecture: amd64\n"
           "Description: a package\n multi-line: description\n\n"
           "Package: removed\nStatus: deinstall ok config-files\nVersion: 0.1\nArchitecture: amd64\n")
    _write(tree, "usr/share/doc/fakepkg/copyright",
           "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: GPL-2+\n"
           "\nFiles: lib/*\nLicense: Expat or public-domain\n")
    _write(tree, "lib/apk/db/installed", "P:musl\nV:1.2.4-r2\nA:x86_64\nL:MIT\n\nP:busybox\nV:1.36.1-r5\nA:x86_64\nL:GPL-2.0-only\n")
    _write(tree, "usr/lib/python3/dist-packages/Requests_Thing-2.31.0.dist-info/METADATA",
           "Metadata-Version: 2.1\nName: Requests_Thing\nVersion: 2.31.0\nLicense: Apache-2.0\n")
    _write(tree, "usr/lib/python3.11/site-packages/oldegg-0.9.egg-info/PKG-INFO",
           "Metadata-Version: 1.0\nName: oldegg\nVersion: 0.9\n")
    _write(tree, "app/node_modules/left-pad/package.json", json.dumps({"name": "left-pad", "version": "1.3.0",
                                                                       "license": "WTFPL"}))
    _write(tree, "app/node_modules/@scope/thing/package.json", json.dumps({"name": "@scope/thing", "version": "2.0.0"}))
    (ctx / "Dockerfile").write_text("FROM busybox:latest\nCOPY tree/ /\nRUN echo built > /app/made-by-run\n")
    image = f"{registry.host}/sbom/app:1"
    bpybuild("build", "--sbom", "--progress", "plain", "-t", image, str(ctx), check=True)

    doc = _sbom_file(bpybuild, image)
    _validate(doc)
    assert doc["spdxVersion"] == "SPDX-2.3" and doc["dataLicense"] == "CC0-1.0"
    purls = {p["name"]: p["externalRefs"][0]["referenceLocator"] for p in doc["packages"] if p.get("externalRefs")}
    assert purls == {
        "fakepkg": "pkg:deb/debian/fakepkg@1:1.2-3%2Bdeb12u1?arch=amd64",
        "musl": "pkg:apk/debian/musl@1.2.4-r2?arch=x86_64",
        "busybox": "pkg:apk/debian/busybox@1.36.1-r5?arch=x86_64",
        "Requests_Thing": "pkg:pypi/requests-thing@2.31.0",
        "oldegg": "pkg:pypi/oldegg@0.9",
        "left-pad": "pkg:npm/left-pad@1.3.0",
        "@scope/thing": "pkg:npm/%40scope/thing@2.0.0",
    }
    by_name = {p["name"]: p for p in doc["packages"]}
    assert by_name["fakepkg"]["versionInfo"] == "1:1.2-3+deb12u1" and by_name["fakepkg"]["licenseDeclared"] == "GPL-2.0-or-later AND MIT"
    assert by_name["musl"]["licenseDeclared"] == "MIT" and by_name["left-pad"]["licenseDeclared"] == "WTFPL"
    assert by_name["Requests_Thing"]["licenseDeclared"] == "Apache-2.0"
    assert "removed" not in by_name
    # files of the build's own layers (COPY and RUN), none of busybox's
    files = {f["fileName"]: f for f in doc["files"]}
    assert "./app/made-by-run" in files and "./etc/os-release" in files and "./bin/busybox" not in files
    sha = {c["algorithm"]: c["checksumValue"] for c in files["./app/node_modules/left-pad/package.json"]["checksums"]}
    assert sha["SHA256"] == hashlib.sha256((tree / "app/node_modules/left-pad/package.json").read_bytes()).hexdigest()

    assert json.loads(bpybuild("sbom", image, check=True).stdout) == doc  # the local image's, before a push
    # pushed with the image as a referrer; `sbom` and `referrers` read it back from the registry
    bpybuild("push", image, check=True)
    listed = json.loads(bpybuild("referrers", image, "--format", "json", check=True).stdout)
    assert [(r["artifactType"], r["foundBy"]) for r in listed] == [("application/spdx+json", "tag")]
    fetched = json.loads(bpybuild("sbom", "--remote", image, check=True).stdout)
    assert fetched == doc

    missing = bpybuild("sbom", f"{registry.host}/sbom/none:1")
    assert missing.returncode != 0 and "Traceback" not in missing.stderr


def test_build_push_attaches_the_sbom(bpybuild, registry, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox:latest\nRUN echo hi > /hi\n")
    image = f"{registry.host}/sbom/pushed:1"
    bpybuild("build", "--sbom", "--push", "-t", image, str(ctx), check=True)
    fetched = json.loads(bpybuild("sbom", "--remote", image, check=True).stdout)
    _validate(fetched)
    assert [f["fileName"] for f in fetched["files"]] == ["./hi"]


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_sbom_of_a_debian_image_names_the_apt_installed_package(bpybuild, debian_tar, tmp_path):
    bpybuild("import", str(debian_tar), "debian:bookworm", check=True)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM debian:bookworm\n"
        "RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends hello && rm -rf /var/lib/apt/lists/*\n")
    bpybuild("build", "--sbom", "--progress", "plain", "-t", "deb-hello:1", str(ctx), check=True, timeout=1200)
    version = bpybuild("run", "--rm", "--network", "none", "deb-hello:1", "dpkg-query", "-W", "-f", "${Version}",
                       "hello", check=True).stdout.strip()
    assert version
    doc = _sbom_file(bpybuild, "deb-hello:1")
    _validate(doc)
    (hello,) = [p for p in doc["packages"] if p["name"] == "hello"]
    assert hello["versionInfo"] == version
    assert hello["externalRefs"][0]["referenceLocator"] == f"pkg:deb/debian/hello@{version}?arch=amd64"
    # hello's copyright file is free-form text (not copyright-format 1.0): no licence is claimed for it;
    # dpkg's is machine-readable and names GPL-2+ among others
    assert hello["licenseDeclared"] == "NOASSERTION"
    (dpkg,) = [p for p in doc["packages"] if p["name"] == "dpkg"]
    assert "GPL-2.0-or-later" in dpkg["licenseDeclared"].split(" AND ")
    names = {p["name"] for p in doc["packages"]}
    assert {"bash", "dpkg", "libc6"} <= names  # the base image's packages too
    assert "./usr/bin/hello" in {f["fileName"] for f in doc["files"]}  # a file of the layer the build made
    assert "./usr/bin/dpkg" not in {f["fileName"] for f in doc["files"]}


def test_sbom_scan_never_reads_outside_the_layers(tmp_path):
    """A hostile image: its package database is a symlink to a host directory, a package name climbs
    out with ``..``, a dist-info directory links out, a METADATA file is a fifo. Nothing of the host is
    read; the layers' own packages are still found, and a whiteout in an upper layer hides a file."""
    import os

    from layers.sbom import scan_packages

    host = tmp_path / "host"
    (host / "dist").mkdir(parents=True)
    (host / "status").write_text("Package: host-secret\nStatus: install ok installed\nVersion: 1\n")
    (host / "dist" / "METADATA").write_text("Name: host-secret-py\nVersion: 1\n")
    (host / "copyright").write_text("Format: x\nLicense: GPL-3+\n")
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "var/lib").mkdir(parents=True)
    (lower / "var/lib/dpkg").symlink_to(host)                     # the whole database dir links out
    _write(lower, "lib/apk/db/installed", "P:evil\nV:1\n")
    _write(upper, "lib/apk/db/.keep", "")
    os.mknod(upper / "lib/apk/db/installed", 0o20000 | 0o600, os.makedev(0, 0))  # whited out above
    site = lower / "usr/lib/python3/site-packages"
    site.mkdir(parents=True)
    (site / "linked-1.0.dist-info").symlink_to(host / "dist")
    (site / "fifo-1.0.dist-info").mkdir()
    os.mkfifo(site / "fifo-1.0.dist-info" / "METADATA")
    _write(lower, "usr/lib/python3/site-packages/ok-2.0.dist-info/METADATA", "Name: ok\nVersion: 2.0\n")
    packages, _ = scan_packages([str(lower), str(upper)])
    names = {p.name for p in packages}
    assert names == {"ok"}, names
    # a dpkg database whose package name climbs out of usr/share/doc: its licence is not read from the host
    db = tmp_path / "db"
    _write(db, "var/lib/dpkg/status", "Package: ../../../../host\nStatus: install ok installed\nVersion: 1\n")
    (packages,), _ = scan_packages([str(db)])
    assert packages.license == ""
