"""Fuzz targets: each takes bytes and may only end normally or with the one error its contract names.

Anything else (another exception, a write outside the extraction root, a reference that does not
round-trip) is a bug the fuzzer reports. Run with atheris through ``scripts/fuzz.sh``; the test suite
replays every seed and every saved crash (``testdata/fuzz/<target>/``) through the same functions.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile

__all__ = ["TARGETS", "MODULES"]

#: What the targets exercise: imported under atheris' instrumentation by ``fuzz/run.py``.
MODULES = ("layers.archive", "layers.archive.extract", "layers.archive.reader", "layers.archive.tarformat",
           "layers.manifest", "layers.index", "layers.config", "layers.reference", "builder.dockerignore",
           "builder.parse")


def extract_layer(data: bytes) -> None:
    """``layers.archive.extract``: LayerError (or StoreError) only, and nothing lands beside the root."""
    from layers.archive import extract
    from layers.errors import LayerError

    mode = "overlay" if data[:1] == b"o" else "apply"
    compression = {b"g": "gzip", b"z": "zstd"}.get(data[1:2])
    body = data[2:]
    base = tempfile.mkdtemp(prefix="pybuild-fuzz-")
    try:
        root = os.path.join(base, "root")
        os.mkdir(root)
        try:
            extract(io.BytesIO(body), root, compression=compression, mode=mode, limit=8 << 20)
        except LayerError:
            pass
        if os.listdir(base) != ["root"]:
            raise AssertionError(f"extract wrote outside its root: {os.listdir(base)}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def parse_document(data: bytes) -> None:
    """Manifest / index parsing: InvalidInput only; what parses re-serialises and re-parses equal."""
    from layers import parse_document as parse
    from layers.errors import InvalidInput

    types = [None, "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
             "application/vnd.docker.distribution.manifest.v2+json",
             "application/vnd.docker.distribution.manifest.list.v2+json"]
    media_type = types[data[0] % len(types)] if data else None
    try:
        doc = parse(data[1:], media_type)
    except InvalidInput:
        return
    again = parse(doc.raw, doc.media_type)
    if again.digest != doc.digest:
        raise AssertionError("a parsed document does not parse back to the same digest")


def parse_config(data: bytes) -> None:
    """Image config parsing: InvalidInput only."""
    from layers.config import ImageConfig
    from layers.errors import InvalidInput

    try:
        config = ImageConfig.parse(data)
    except InvalidInput:
        return
    ImageConfig.parse(config.raw)


def parse_reference(data: bytes) -> None:
    """Reference parsing: InvalidReference only; the full form parses back to itself."""
    from layers.errors import InvalidInput
    from layers.reference import Reference

    text = data.decode("utf-8", "replace")
    try:
        ref = Reference.parse(text)
    except InvalidInput:
        return
    if str(Reference.parse(str(ref))) != str(ref):
        raise AssertionError(f"{text!r} -> {ref} does not round-trip")


def dockerignore(data: bytes) -> None:
    """``.dockerignore`` rules: InvalidInput for a malformed pattern, else any path matches without an error."""
    from builder.dockerignore import parse_ignore
    from layers.errors import InvalidInput

    text, _, path = data.decode("utf-8", "replace").partition("\x00")
    try:
        rules = parse_ignore(text)
    except InvalidInput:
        return
    rules.excluded(path.lstrip("/") or "a")
    rules.may_contain_included(path or "a")


def dockerfile(data: bytes) -> None:
    """The Dockerfile front end: DockerfileError (an InvalidInput) only."""
    from builder.parse import parse
    from layers.errors import InvalidInput

    try:
        parse(data)
    except InvalidInput:
        pass


TARGETS = {
    "extract_layer": extract_layer,
    "parse_document": parse_document,
    "parse_config": parse_config,
    "parse_reference": parse_reference,
    "dockerignore": dockerignore,
    "dockerfile": dockerfile,
}
