"""Seed inputs for each fuzz target, made from the repository's own test data (no network)."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
TESTDATA = ROOT / "testdata"


def _tar(members: list[tuple[str, bytes, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind == tarfile.SYMTYPE or kind == tarfile.LNKTYPE:
                info.linkname = data.decode()
                data = b""
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return buf.getvalue()


def _layers() -> Iterator[bytes]:
    plain = [
        _tar([("etc/", tarfile.DIRTYPE, b""), ("etc/passwd", tarfile.REGTYPE, b"root:x:0:0::/root:/bin/sh\n")]),
        _tar([("a", tarfile.SYMTYPE, b"/"), ("a/tmp/x", tarfile.REGTYPE, b"x"), ("h", tarfile.LNKTYPE, b"a")]),
        _tar([("d/.wh..wh..opq", tarfile.REGTYPE, b""), ("d/.wh.gone", tarfile.REGTYPE, b""),
              ("../up", tarfile.REGTYPE, b"x")]),
    ]
    for body in plain:
        yield b"a-" + body
        yield b"o-" + body
        yield b"ag" + gzip.compress(body)
    try:
        import zstandard

        yield b"oz" + zstandard.ZstdCompressor().compress(plain[0])
    except ImportError:  # pragma: no cover
        pass


def _documents() -> Iterator[bytes]:
    from layers.config import ImageConfig
    from layers.descriptor import Descriptor, Platform
    from layers.digest import Digest
    from layers.index import Index
    from layers.manifest import Manifest
    from layers.mediatype import MediaType

    config = ImageConfig.new(Platform("linux", "amd64")).with_layer(Digest.from_bytes(b"x"), None)
    cdesc = Descriptor(MediaType.OCI_CONFIG, config.digest, len(config.raw))
    layer = Descriptor(MediaType.OCI_LAYER_GZIP, Digest.from_bytes(b"l"), 1)
    m = Manifest.build(cdesc, [layer])
    dcfg = Descriptor(MediaType.DOCKER_CONFIG, config.digest, len(config.raw))
    dm = Manifest.build(dcfg, [Descriptor(MediaType.DOCKER_LAYER_GZIP, layer.digest, 1)], docker=True)
    idx = Index.build([m.descriptor(platform=Platform("linux", "amd64"))])
    for i, raw in enumerate((m.raw, dm.raw, idx.raw, json.dumps({"schemaVersion": 2}).encode())):
        yield bytes([i]) + raw
    yield b"\x00" + config.raw


def seeds(target: str) -> Iterator[bytes]:
    """Seed inputs for ``target`` (see :data:`fuzz.targets.TARGETS`)."""
    if target == "extract_layer":
        yield from _layers()
    elif target == "parse_document":
        yield from _documents()
    elif target == "parse_config":
        for doc in _documents():
            if b'"rootfs"' in doc:
                yield doc[1:]
    elif target == "parse_reference":
        for text in ("busybox", "docker.io/library/busybox:latest", "localhost:5000/a/b:c",
                     "harbor.example.com/proj/app@sha256:" + "a" * 64, "a:b@sha256:" + "0" * 64, "UPPER/x", ""):
            yield text.encode()
    elif target == "dockerignore":
        for d in sorted((TESTDATA / "dockerfiles").glob("*/.dockerignore")):
            yield d.read_bytes() + b"\x00src/a.txt"
        yield b"**/*.tmp\n!keep/**\n[a-\n\x00keep/x.tmp"
    elif target == "dockerfile":
        for d in sorted((TESTDATA / "dockerfiles").rglob("*Dockerfile")):
            yield d.read_bytes()
        yield (TESTDATA / "app" / "Dockerfile").read_bytes()
    else:
        raise KeyError(target)
