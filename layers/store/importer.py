"""``import``: turn a root filesystem tarball into a one-layer image in the store (like ``docker import``).

The input (plain, gzip or zstd tar, detected by magic; a file or a pipe) is read once: the
uncompressed bytes are hashed for the diff_id, checked to be a well-formed tar, and compressed
(gzip via python-isal when present, else zlib; or zstd) straight into an ingest. Config and
manifest follow; the name is tagged last, inside a lease, so a crash at any step leaves only
unreferenced blobs (GC fodder) and never a broken record.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import tarfile
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import BinaryIO, Iterable

from layers.config import History, ImageConfig, format_time
from layers.descriptor import Descriptor, Platform
from layers.digest import Digest
from layers.errors import InvalidInput, LayerError
from layers.manifest import Manifest
from layers.mediatype import MediaType
from layers.reference import Reference

from .pause import pause_point

__all__ = ["import_rootfs", "apply_changes", "ImportResult"]

_CHUNK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@dataclass(frozen=True)
class ImportResult:
    manifest: Manifest
    config: ImageConfig
    reference: Reference


class _Peek:
    """A reader that can look at its first bytes without losing them (stdin is not seekable)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._head = b""

    def peek(self, n: int) -> bytes:
        while len(self._head) < n:
            more = self._raw.read(n - len(self._head))
            if not more:
                break
            self._head += more
        return self._head[:n]

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n < 0:
                out, self._head = self._head + self._raw.read(), b""
                return out
            out, self._head = self._head[:n], self._head[n:]
            return out
        return self._raw.read(n)

    def readinto(self, buf) -> int:
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True


def _decompressed(stream: BinaryIO) -> tuple[BinaryIO, tuple[type[BaseException], ...]]:
    """The uncompressed view of ``stream`` (gzip/zstd by magic) and the errors its decoder raises."""
    peek = _Peek(stream)
    head = peek.peek(4)
    if head.startswith(_GZIP_MAGIC):
        try:
            from isal import igzip as gzmod
            from isal.isal_zlib import error as isal_error
        except ImportError:  # pragma: no cover - isal is a dependency
            import gzip as gzmod

            isal_error = zlib.error
        return gzmod.GzipFile(fileobj=peek, mode="rb"), (OSError, EOFError, zlib.error, isal_error)
    if head == _ZSTD_MAGIC:
        import zstandard

        return (zstandard.ZstdDecompressor().stream_reader(peek, read_across_frames=True),
                (OSError, zstandard.ZstdError))
    return peek, (OSError,)


def _compressor(compression: str | None):
    if compression == "gzip":
        try:
            from isal import isal_zlib

            c = isal_zlib.compressobj(2, isal_zlib.DEFLATED, 31)
        except ImportError:  # pragma: no cover
            c = zlib.compressobj(6, zlib.DEFLATED, 31)
        return c.compress, c.flush
    if compression == "zstd":
        import zstandard

        c = zstandard.ZstdCompressor(level=3).compressobj()
        return c.compress, c.flush
    if compression is None:
        return (lambda b: b), (lambda: b"")
    raise InvalidInput(f"unknown compression {compression!r} (want gzip, zstd or none)")


class _Tee:
    """Reads uncompressed tar bytes; hashes them (diff_id) and feeds the compressed form to ``sink``."""

    def __init__(self, src: BinaryIO, errors: tuple[type[BaseException], ...], sink,
                 compression: str | None) -> None:
        self._src = src
        self._errors = errors
        self._sink = sink
        self._compress, self._flush = _compressor(compression)
        self.diff = hashlib.sha256()
        self.count = 0
        self._first = True

    def read(self, n: int = -1) -> bytes:
        try:
            data = self._src.read(n if n and n > 0 else _CHUNK)
        except self._errors as exc:
            raise LayerError(f"rootfs tarball: cannot read or decompress: {exc}") from None
        if data:
            self.diff.update(data)
            self.count += len(data)
            out = self._compress(data)
            if out:
                self._sink(out)
            if self._first:
                self._first = False
                pause_point("import-layer-write")
        return data

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass
        tail = self._flush()
        if tail:
            self._sink(tail)


def _check_tar(tee: _Tee) -> int:
    """Walk the tar headers as the bytes stream by; the member count. Raises LayerError if it is no tar."""
    members = 0
    try:
        with tarfile.open(fileobj=tee, mode="r|") as tf:
            for _member in tf:
                members += 1
    except tarfile.TarError as exc:
        raise LayerError(f"rootfs tarball: not a valid tar archive: {exc}") from None
    if members == 0:
        raise LayerError("rootfs tarball: the archive holds no files")
    tee.drain()
    return members


# -- --change ------------------------------------------------------------------------------------

_CHANGES = ("CMD", "ENTRYPOINT", "ENV", "WORKDIR", "USER", "EXPOSE", "LABEL", "VOLUME", "STOPSIGNAL")


def _exec_form(value: str, what: str) -> list[str]:
    value = value.strip()
    if value.startswith("["):
        try:
            parsed = json.loads(value)
        except ValueError:
            raise InvalidInput(f"--change {what}: {value!r} is not a JSON array of strings") from None
        if not isinstance(parsed, list) or not all(isinstance(x, str) for x in parsed):
            raise InvalidInput(f"--change {what}: {value!r} is not a JSON array of strings")
        return parsed
    return ["/bin/sh", "-c", value]


def _pairs(value: str, what: str) -> dict[str, str]:
    try:
        words = shlex.split(value)
    except ValueError as exc:
        raise InvalidInput(f"--change {what}: {exc}") from None
    if len(words) == 2 and "=" not in words[0]:
        return {words[0]: words[1]}  # legacy "ENV KEY value"
    out = {}
    for w in words:
        key, sep, val = w.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--change {what}: {w!r} is not KEY=VALUE")
        out[key] = val
    return out


def apply_changes(config: ImageConfig, changes: Iterable[str]) -> ImageConfig:
    """Apply Dockerfile-style ``--change`` lines (CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, VOLUME, STOPSIGNAL)."""
    for line in changes:
        word, _, rest = line.strip().partition(" ")
        op = word.upper()
        rest = rest.strip()
        if op not in _CHANGES:
            raise InvalidInput(f"--change {line!r}: unsupported instruction (want one of {', '.join(_CHANGES)})")
        if not rest:
            raise InvalidInput(f"--change {line!r}: {op} needs an argument")
        c = config.config
        if op == "CMD":
            config = config.with_config(cmd=_exec_form(rest, op))
        elif op == "ENTRYPOINT":
            config = config.with_config(entrypoint=_exec_form(rest, op))
        elif op == "ENV":
            env = dict(e.partition("=")[::2] for e in c.env)
            env.update(_pairs(rest, op))
            config = config.with_config(env=[f"{k}={v}" for k, v in env.items()])
        elif op == "WORKDIR":
            config = config.with_config(working_dir=rest)
        elif op == "USER":
            config = config.with_config(user=rest)
        elif op == "STOPSIGNAL":
            config = config.with_config(stop_signal=rest)
        elif op == "EXPOSE":
            ports = set(c.exposed_ports or ())
            for p in rest.split():
                ports.add(p if "/" in p else f"{p}/tcp")
            config = config.with_config(exposed_ports=sorted(ports))
        elif op == "LABEL":
            labels = dict(c.labels)
            labels.update(_pairs(rest, op))
            config = config.with_config(labels=labels)
        elif op == "VOLUME":
            vols = set(c.volumes or ())
            vols.update(_exec_form(rest, op) if rest.startswith("[") else rest.split())
            config = config.with_config(volumes=sorted(vols))
    return config


# -- import ----------------------------------------------------------------------------------------


def import_rootfs(store, stream: BinaryIO, ref: Reference | str, *, changes: Iterable[str] = (),
                  message: str = "", compression: str | None = "gzip", source: str = "-",
                  platform: Platform | None = None) -> ImportResult:
    """Store ``stream`` (a rootfs tar, any compression) as a one-layer image named ``ref``."""
    if isinstance(ref, str):
        ref = Reference.parse(ref)
    if ref.digest is not None:
        raise InvalidInput(f"import: {ref} names a digest; give NAME[:TAG]")
    now = format_time(datetime.now(timezone.utc))
    base = apply_changes(ImageConfig.new(platform or Platform.host(), created=now), changes)
    media_type = MediaType.layer_type(compression)
    with store.lease():
        with store.blobs.ingest() as ing:
            src, errors = _decompressed(stream)
            tee = _Tee(src, errors, ing.write, compression)
            _check_tar(tee)
            layer_digest = ing.commit()
            layer_size = ing.written
        diff_id = Digest("sha256", tee.diff.hexdigest())
        history = History(created=now, created_by=f"pybuild import {source}", comment=message or "")
        config = base.with_layer(diff_id, history)
        pause_point("import-config")
        config_digest = store.blobs.put_bytes(config.raw)
        manifest = Manifest.build(
            Descriptor(MediaType.OCI_CONFIG, config_digest, len(config.raw)),
            [Descriptor(media_type, layer_digest, layer_size)],
        )
        store.blobs.put_bytes(manifest.raw, expected=manifest.digest)
        pause_point("import-tag")
        store.images.tag(ref, manifest.digest)
    return ImportResult(manifest, config, ref)
