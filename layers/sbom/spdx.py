"""SPDX 2.3 JSON for an image: a package for the image itself, one per installed package (name,
version, PURL, licence), and the files of the layers the build made (path, SHA-1 and SHA-256)."""

from __future__ import annotations

import hashlib
import os
import re
import stat
import uuid

from layers.value import frozen

from ..jsonutil import canonical
from .packages import Package, scan_packages

__all__ = ["ImageFacts", "FileEntry", "layer_files", "spdx_document", "image_sbom"]

_ID_BAD = re.compile(r"[^A-Za-z0-9.-]+")
_FILES_MAX = 200_000


@frozen
class ImageFacts:
    name: str            # what the document names (a tag, else the image id)
    digest: str          # the manifest digest
    created: str         # ISO 8601 UTC, "...Z"


@frozen
class FileEntry:
    path: str
    sha1: str
    sha256: str


def _spdx_id(prefix: str, text: str, n: int) -> str:
    return f"SPDXRef-{prefix}-{n}-{_ID_BAD.sub('-', text)[:60].strip('-') or 'x'}"


def layer_files(layer_dirs: list[str]) -> list[FileEntry]:
    """Regular files of ``layer_dirs`` (the build's layers), hashed; top-most layer wins a path."""
    seen: dict[str, FileEntry] = {}
    for base in layer_dirs:
        for top, dirs, files in os.walk(base):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(top, name)
                rel = "./" + os.path.relpath(path, base)
                st = os.lstat(path)
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    seen.pop(rel, None)
                    continue
                if not stat.S_ISREG(st.st_mode):
                    continue
                h1, h256 = hashlib.sha1(usedforsecurity=False), hashlib.sha256()
                with open(path, "rb") as fh:
                    while chunk := fh.read(1 << 20):
                        h1.update(chunk)
                        h256.update(chunk)
                seen[rel] = FileEntry(rel, h1.hexdigest(), h256.hexdigest())
                if len(seen) > _FILES_MAX:
                    break
    return [seen[k] for k in sorted(seen)]


def _package(p: Package, n: int) -> dict:
    out = {
        "SPDXID": _spdx_id("Package", f"{p.ecosystem}-{p.name}", n),
        "name": p.name,
        "versionInfo": p.version,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "licenseDeclared": p.license or "NOASSERTION",
        "licenseConcluded": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": p.purl}],
        "sourceInfo": f"found in {p.source}",
    }
    return out


def spdx_document(image: ImageFacts, packages: list[Package], files: list[FileEntry], release: dict[str, str]) -> dict:
    """The SPDX 2.3 document (a dict ready for JSON)."""
    root_id = "SPDXRef-Image"
    root = {"SPDXID": root_id, "name": image.name, "versionInfo": image.digest, "downloadLocation": "NOASSERTION",
            "filesAnalyzed": bool(files), "licenseConcluded": "NOASSERTION", "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION", "primaryPackagePurpose": "CONTAINER",
            "checksums": [{"algorithm": "SHA256", "checksumValue": image.digest.split(":", 1)[-1]}]}
    if files:
        h = hashlib.sha1(usedforsecurity=False)
        for f in sorted(files, key=lambda f: f.sha1):
            h.update(f.sha1.encode())
        root["packageVerificationCode"] = {"packageVerificationCodeValue": h.hexdigest()}
    if release.get("PRETTY_NAME"):
        root["comment"] = f"operating system: {release['PRETTY_NAME']}"
    pkgs = [_package(p, i) for i, p in enumerate(packages)]
    file_docs = [{"SPDXID": f"SPDXRef-File-{i}", "fileName": f.path,
                  "checksums": [{"algorithm": "SHA1", "checksumValue": f.sha1},
                                {"algorithm": "SHA256", "checksumValue": f.sha256}],
                  "licenseConcluded": "NOASSERTION", "copyrightText": "NOASSERTION"} for i, f in enumerate(files)]
    relationships = [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                      "relatedSpdxElement": root_id}]
    relationships += [{"spdxElementId": root_id, "relationshipType": "CONTAINS", "relatedSpdxElement": p["SPDXID"]}
                      for p in pkgs]
    relationships += [{"spdxElementId": root_id, "relationshipType": "CONTAINS", "relatedSpdxElement": f["SPDXID"]}
                      for f in file_docs]
    namespace_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{image.name}@{image.digest}")
    doc = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"sbom-{image.name}",
        "documentNamespace": f"https://pybuild.invalid/spdx/{namespace_id}",
        "creationInfo": {"created": image.created, "creators": ["Tool: pybuild"]},
        "packages": [root, *pkgs],
        "relationships": relationships,
    }
    if file_docs:
        doc["files"] = file_docs
    return doc


def image_sbom(image: ImageFacts, layer_dirs: list[str], own_layers: int) -> bytes:
    """The SPDX JSON bytes for an image whose unpacked layers are ``layer_dirs`` (bottom first); the
    files of the last ``own_layers`` layers (what the build made) are listed by path and digest."""
    packages, release = scan_packages(layer_dirs)
    own = layer_dirs[len(layer_dirs) - own_layers:] if own_layers > 0 else []
    return canonical(spdx_document(image, packages, layer_files(own), release))
