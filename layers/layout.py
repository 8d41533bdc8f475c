"""OCI image layouts and docker-archive tarballs, in and out.

Writing (:func:`write_archive`, :func:`write_layout_dir`) produces an OCI image layout
(``oci-layout``, ``index.json``, ``blobs/<alg>/<hex>``); the tar form also carries Docker's
``manifest.json`` and ``repositories`` so ``docker load`` and ``podman load`` read it, as
``docker save`` has written since Docker 25. Every blob is read through the source's verifying
reader, so a corrupt store blob fails the save instead of being copied.

Reading (:func:`read_archive`, :func:`read_layout_dir`) accepts an OCI layout (a directory or a
tar of one) and a docker-archive tar (``manifest.json`` + config + layer tars, legacy
``<id>/layer.tar`` names and symlinks included). A tar is read once, as a stream (stdin works):
each blob goes to the sink while it is hashed; blobs named by digest are verified against the
name, the others are named by their content. Nothing is trusted until the whole archive is in:
then every document is parsed and every referenced blob must be present. Docker-archive layers
are kept as they are (an uncompressed layer becomes an ``application/vnd.oci.image.layer.v1.tar``
blob) and each layer's uncompressed digest must equal the config's ``rootfs.diff_ids`` entry.

The functions speak to a blob store through :class:`BlobSource` / :class:`BlobStore` (the
``store.blobs`` contract of ``docs/INTERFACES.md``), never to the CLI.
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import re
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol, Sequence

import zstandard

from .descriptor import Descriptor, Platform
from .archive.compression import open_decompressed, sniff
from .atomic import atomic_writer
from .config import ImageConfig
from .digest import Digest, VerifyingReader
from .errors import (
    IntegrityError,
    InvalidDigest,
    InvalidDocument,
    InvalidInput,
    InvalidReference,
    NotFound,
    StoreError,
)
from .index import Index
from .jsonutil import MAX_DOCUMENT_SIZE, canonical, load_object
from .manifest import Manifest, parse_document
from .mediatype import INDEX_TYPES, MANIFEST_TYPES, MediaType
from .reference import Reference

__all__ = [
    "ArchiveImage",
    "BlobSource",
    "BlobStore",
    "LoadedImage",
    "REF_NAME",
    "IMAGE_NAME",
    "read_archive",
    "read_layout_dir",
    "read_path",
    "write_archive",
    "write_layout_dir",
]

#: OCI annotation: the reference (pybuild writes the tag) an index entry stands for.
REF_NAME = "org.opencontainers.image.ref.name"
#: containerd's annotation: the full image name, as ``docker save`` writes it beside REF_NAME.
IMAGE_NAME = "io.containerd.image.name"
LAYOUT_VERSION = "1.0.0"
_KIND = "image archive"
_BLOB_PATH = re.compile(r"blobs/([a-z0-9]+)/([a-f0-9]+)")
_META = frozenset({"oci-layout", "index.json", "manifest.json", "repositories"})
_COPY_CHUNK = 1 << 20
#: Default upper bound on an uncompressed docker-archive layer while its diff_id is checked: a zstd
#: frame of a few bytes can claim terabytes, and hashing stops here instead.
MAX_LAYER_SIZE = 64 << 30


class BlobSource(Protocol):
    """Where blobs are read from: ``open`` returns a reader that fails at EOF on a digest/size mismatch."""

    def open(self, digest: Digest, size: int | None = None) -> BinaryIO: ...


class BlobStore(BlobSource, Protocol):
    """A content-addressed sink. ``put_stream`` computes the digest itself and checks ``expected``/``size``."""

    def has(self, digest: Digest) -> bool: ...

    def put_stream(
        self, stream: BinaryIO, expected: Digest | None = None, size: int | None = None
    ) -> tuple[Digest, int]: ...


@dataclass(frozen=True, slots=True)
class ArchiveImage:
    """One image to save: a manifest, or an index (multi-platform), and the names to record.

    An index is saved whole when every entry is in the source; otherwise a new index of the
    runnable entries that are there is saved in its place (as after a one-platform pull).
    """

    manifest: Manifest | Index
    names: tuple[Reference, ...] = ()


@dataclass(frozen=True, slots=True)
class LoadedImage:
    """An image read from an archive; every blob it references is in the store and verified.

    ``names`` are full references (``docker.io/library/busybox:latest``) when the archive says
    which; ``ref_names`` are bare ``org.opencontainers.image.ref.name`` values (often only a
    tag, as ``skopeo copy ... oci:DIR:TAG`` writes) that the caller may turn into names.
    """

    manifest: Manifest
    config: ImageConfig
    names: tuple[str, ...] = ()
    ref_names: tuple[str, ...] = ()

    def tags(self) -> tuple[str, ...]:
        """The full names to give this image in a store, as ``podman load`` chooses them: ``names``;
        else each usable ``ref_names`` value (a bare ``name`` or ``tag`` goes under ``localhost/``);
        else ``localhost/<short config digest>:latest``. Never empty, no duplicates."""
        names = list(self.names)
        for value in self.ref_names if not names else ():
            try:
                names.append(str(Reference.parse(value if (":" in value or "/" in value) else f"localhost/{value}")))
            except InvalidInput:
                continue  # not a reference (a bare digest, a stray annotation): the fallback below
        if not names:
            names = [f"localhost/{self.config.digest.short}:latest"]
        return tuple(dict.fromkeys(names))


# ------------------------------------------------------------------------------------------------
# writing
# ------------------------------------------------------------------------------------------------


def _blob_name(digest: Digest) -> str:
    return f"blobs/{digest.algorithm}/{digest.hex}"


@dataclass
class _Plan:
    """What an archive of some images holds: store blobs, in-memory documents, index.json, manifest.json."""

    blobs: dict[Digest, Descriptor] = field(default_factory=dict)
    documents: dict[Digest, bytes] = field(default_factory=dict)
    entries: list[Descriptor] = field(default_factory=list)
    docker: list[dict] = field(default_factory=list)
    repositories: dict[str, dict[str, str]] = field(default_factory=dict)

    def add_manifest(self, manifest: Manifest) -> None:
        for desc in (manifest.config, *manifest.layers):
            self.blobs.setdefault(desc.digest, desc)
        self.documents.setdefault(manifest.digest, manifest.raw)

    def index_json(self) -> Index:
        return Index.build(self.entries)


def _read_child(source: BlobSource, desc: Descriptor) -> Manifest | None:
    """The manifest an index entry points to, or ``None`` when the source does not have it."""
    if desc.media_type not in MANIFEST_TYPES:
        return None
    try:
        return Manifest.parse(_read_blob(source, desc), desc.media_type)
    except NotFound:
        return None


def _expand_index(plan: _Plan, index: Index, source: BlobSource) -> tuple[Index, Manifest]:
    """Add an index and its manifests to ``plan``; returns the index written and the child for manifest.json."""
    children = [(desc, _read_child(source, desc)) for desc in index.manifests]
    present = [(desc, child) for desc, child in children if child is not None]
    if len(present) != len(children):
        present = [(desc, child) for desc, child in present if desc in index.images()]
        if not present:
            raise NotFound(f"index {index.digest}: none of its manifests is in the store")
        index = Index.build([desc for desc, _ in present], docker=index.media_type == MediaType.DOCKER_MANIFEST_LIST,
                            annotations=None if index.media_type == MediaType.DOCKER_MANIFEST_LIST
                            else index.annotation_map or None)
    for _, child in present:
        assert child is not None
        plan.add_manifest(child)
    plan.documents.setdefault(index.digest, index.raw)
    host = Platform.host()
    for desc, child in present:
        if desc.platform is not None and desc.platform.matches(host):
            return index, child  # type: ignore[return-value]
    return index, present[0][1]  # type: ignore[return-value]


def _plan(images: Sequence[ArchiveImage], source: BlobSource) -> _Plan:
    """Every blob once (layers and configs from ``source``, then manifests, then indexes)."""
    plan = _Plan()
    for image in images:
        top: Manifest | Index = image.manifest
        if isinstance(top, Index):
            top, runnable = _expand_index(plan, top, source)
        else:
            plan.add_manifest(top)
            runnable = top
        if image.names:
            for ref in image.names:
                ann = {IMAGE_NAME: str(ref)}
                if ref.tag is not None:
                    ann[REF_NAME] = ref.tag
                plan.entries.append(top.descriptor(annotations=ann))
        else:
            plan.entries.append(top.descriptor())
        tags = [ref for ref in image.names if ref.tag is not None]
        plan.docker.append(
            {
                "Config": _blob_name(runnable.config.digest),
                "RepoTags": [ref.familiar for ref in tags],
                "Layers": [_blob_name(layer.digest) for layer in runnable.layers],
            }
        )
        if runnable.layers:
            for ref in tags:  # Docker's legacy file: familiar name -> tag -> top layer id
                plan.repositories.setdefault(ref.familiar_name, {})[ref.tag] = runnable.layers[-1].digest.hex
    for digest in plan.blobs:
        plan.documents.pop(digest, None)  # a manifest that is also a layer/config blob is copied once
    return plan


def _tar_info(name: str, size: int = 0, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if directory:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    else:
        info.mode = 0o644
    return info


def _copy_blob(tar: tarfile.TarFile, source: BlobSource, desc: Descriptor) -> None:
    reader = source.open(desc.digest, desc.size)
    try:
        tar.addfile(_tar_info(_blob_name(desc.digest), desc.size), reader)
        if isinstance(reader, VerifyingReader):
            reader.verify_rest()  # reads to EOF: digest and size checked before the next entry
    finally:
        reader.close()


def write_archive(out: BinaryIO, images: Sequence[ArchiveImage], source: BlobSource) -> None:
    """Write ``images`` as a tar of an OCI layout plus ``manifest.json``/``repositories`` to ``out``.

    Deterministic: the same images give the same bytes. On any error the stream is incomplete;
    the caller writes to a temporary file and renames it only after success.
    """
    if not images:
        raise InvalidInput("nothing to save: no images given")
    try:
        _write_tar(out, _plan(images, source), source)
    except OSError as exc:
        raise StoreError(f"write image archive: {exc.strerror or exc}") from None


def _write_tar(out: BinaryIO, plan: _Plan, source: BlobSource) -> None:
    digests = [*plan.blobs, *plan.documents]
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.USTAR_FORMAT) as tar:
        layout = canonical({"imageLayoutVersion": LAYOUT_VERSION})
        tar.addfile(_tar_info("oci-layout", len(layout)), io.BytesIO(layout))
        tar.addfile(_tar_info("blobs", directory=True))
        for alg in sorted({d.algorithm for d in digests}):
            tar.addfile(_tar_info(f"blobs/{alg}", directory=True))
        for desc in plan.blobs.values():
            _copy_blob(tar, source, desc)
        for digest, raw in plan.documents.items():
            tar.addfile(_tar_info(_blob_name(digest), len(raw)), io.BytesIO(raw))
        for name, data in (
            ("index.json", plan.index_json().raw),
            ("manifest.json", canonical(plan.docker)),
            ("repositories", canonical(plan.repositories)),
        ):
            tar.addfile(_tar_info(name, len(data)), io.BytesIO(data))


def _atomic_write(path: Path, data: bytes | None = None, stream: BinaryIO | None = None) -> None:
    """Write ``data`` (or all of ``stream``) to ``path`` atomically; an OSError becomes a StoreError."""
    try:
        with atomic_writer(str(path), 0o644) as f:
            if data is not None:
                f.write(data)
            else:
                assert stream is not None
                while chunk := stream.read(_COPY_CHUNK):
                    f.write(chunk)
    except OSError as exc:
        raise StoreError(f"write {path}: {exc.strerror or exc}") from None


def _file_matches(path: Path, desc: Descriptor) -> bool:
    """True when ``path`` holds exactly the bytes of ``desc`` (re-hashed, never trusted by size)."""
    try:
        with open(path, "rb", buffering=0) as f:
            VerifyingReader(f, desc.digest, desc.size, f"blob {path}").verify_rest()
        return True
    except (FileNotFoundError, IntegrityError):
        return False


def write_layout_dir(path: str | os.PathLike[str], images: Sequence[ArchiveImage], source: BlobSource) -> None:
    """Write or extend the OCI layout directory at ``path`` (what ``skopeo copy ... oci:DIR`` makes).

    Blobs already there are re-hashed and rewritten if they do not match. ``index.json`` is
    replaced atomically, last; earlier entries whose ``ref.name`` is not reused are kept.
    """
    root = Path(path)
    try:
        root.mkdir(parents=True, exist_ok=True)
        (root / "blobs").mkdir(exist_ok=True)
    except OSError as exc:
        raise StoreError(f"create OCI layout {root}: {exc.strerror or exc}") from None
    previous: list[Descriptor] = []
    if (root / "index.json").exists():
        _check_layout_version((root / "oci-layout").read_bytes() if (root / "oci-layout").exists() else None)
        previous = list(Index.parse((root / "index.json").read_bytes()).manifests)
    plan = _plan(images, source)
    index = plan.index_json()
    for desc in plan.blobs.values():
        target = root / _blob_name(desc.digest)
        target.parent.mkdir(exist_ok=True)
        if not _file_matches(target, desc):
            reader = source.open(desc.digest, desc.size)
            try:
                _atomic_write(target, stream=reader)
            finally:
                reader.close()
    for digest, raw in plan.documents.items():
        target = root / _blob_name(digest)
        target.parent.mkdir(exist_ok=True)
        if not _file_matches(target, Descriptor(MediaType.OCI_MANIFEST, digest, len(raw))):
            _atomic_write(target, raw)
    taken = {d.annotation_map.get(REF_NAME) for d in index.manifests} - {None}
    kept = [d for d in previous if d.annotation_map.get(REF_NAME) not in taken or REF_NAME not in d.annotation_map]
    kept = [d for d in kept if d not in index.manifests]
    _atomic_write(root / "oci-layout", canonical({"imageLayoutVersion": LAYOUT_VERSION}))
    _atomic_write(root / "index.json", Index.build(kept + list(index.manifests)).raw)


# ------------------------------------------------------------------------------------------------
# reading
# ------------------------------------------------------------------------------------------------


@dataclass
class _Ingested:
    """What one pass over a tar left behind: metadata documents and where each file's blob went."""

    meta: dict[str, bytes] = field(default_factory=dict)
    files: dict[str, tuple[Digest, int]] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)

    def blob(self, name: str, what: str) -> tuple[Digest, int]:
        """The blob stored for archive path ``name``, following symlinks and hardlinks inside the archive."""
        seen: set[str] = set()
        current = _clean_name(name, what)
        while current in self.links:
            if current in seen:
                raise InvalidDocument(_KIND, what, f"{name!r} is a link loop")
            seen.add(current)
            current = self.links[current]
        try:
            return self.files[current]
        except KeyError:
            raise InvalidDocument(_KIND, what, f"names {name!r}, which is not a file in the archive") from None


def _clean_name(name: str, what: str = "") -> str:
    """An archive member name as a relative, normalised path; ``..`` or absolute names are refused."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") or ".." in parts:
        raise InvalidDocument(_KIND, what or name, f"path {name[:200]!r} leaves the archive")
    return "/".join(parts)


def _link_target(name: str, member: tarfile.TarInfo) -> str:
    """Where a symlink or hardlink member points, as an archive path; links out of the archive are refused."""
    target = member.linkname
    if member.issym() and not target.startswith("/"):
        target = posixpath.join(posixpath.dirname(name), target)
    normal = posixpath.normpath(target) if target else ""
    if not target or target.startswith("/") or normal == ".." or normal.startswith("../"):
        raise InvalidDocument(_KIND, name, f"link to {member.linkname[:200]!r} leaves the archive")
    return normal


class _Prefixed:
    """A read-only stream that first returns ``head`` (bytes already read to sniff it), then ``rest``."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n is None or n < 0:
                data, self._head = self._head + self._rest.read(), b""
                return data
            data, self._head = self._head[:n], self._head[n:]
            return data + self._rest.read(n - len(data)) if len(data) < n else data
        return self._rest.read(n)


def _open_tar(stream: BinaryIO) -> tarfile.TarFile:
    """A streaming tar reader; a gzip, bzip2, xz or zstd compressed archive (``docker save | gzip``) is inflated."""
    head = b""
    while len(head) < 4:
        chunk = stream.read(4 - len(head))
        if not chunk:
            break
        head += chunk
    source: BinaryIO = _Prefixed(head, stream)  # type: ignore[assignment]
    if head == b"\x28\xb5\x2f\xfd":
        source = zstandard.ZstdDecompressor(max_window_size=1 << 27).stream_reader(source, read_across_frames=True)
    try:
        return tarfile.open(fileobj=source, mode="r|*")
    except tarfile.TarError as exc:
        raise InvalidDocument(_KIND, "", f"is not a tar archive: {exc}") from None


def _ingest_tar(stream: BinaryIO, store: BlobStore) -> _Ingested:
    got = _Ingested()
    tar = _open_tar(stream)
    try:
        for member in tar:
            name = _clean_name(member.name)
            if member.isdir() or not name:
                continue
            if member.issym() or member.islnk():
                got.links[name] = _link_target(name, member)
                continue
            if not member.isreg():
                raise InvalidDocument(_KIND, name, "is neither a file, a directory nor a link")
            if name in got.files or name in got.meta:
                raise InvalidDocument(_KIND, name, "appears twice in the archive")
            data = tar.extractfile(member)
            assert data is not None
            if name in _META:
                if member.size > MAX_DOCUMENT_SIZE:
                    raise InvalidDocument(_KIND, name, f"is {member.size} bytes, more than {MAX_DOCUMENT_SIZE}")
                got.meta[name] = data.read()
                continue
            if posixpath.basename(name) in ("json", "VERSION"):
                continue  # legacy docker-archive per-layer metadata: superseded by manifest.json
            got.files[name] = _put(store, name, data, member.size)
    except (tarfile.TarError, zlib.error, zstandard.ZstdError) as exc:
        raise InvalidDocument(_KIND, "", f"is a broken tar: {exc}") from None
    except EOFError:
        raise InvalidDocument(_KIND, "", "ends in the middle of an entry (truncated)") from None
    finally:
        tar.close()
    return got


def _put(store: BlobStore, name: str, data: BinaryIO, size: int) -> tuple[Digest, int]:
    """Store one archive file; one named ``blobs/<alg>/<hex>`` must hash to its name."""
    expected = None
    m = _BLOB_PATH.fullmatch(name)
    if m:
        try:
            expected = Digest(m.group(1), m.group(2))
        except InvalidDigest:
            expected = None  # not a digest name: stored by content like any other file
    if expected is not None and store.has(expected):
        return expected, size
    try:
        return store.put_stream(data, expected=expected, size=size)
    except IntegrityError as exc:
        raise IntegrityError(f"archive member {name}: {exc}") from None


def _check_layout_version(raw: bytes | None) -> None:
    if raw is None:
        raise InvalidDocument("oci-layout", "", "file is missing")
    body = load_object(raw, "oci-layout")
    version = body.get("imageLayoutVersion")
    if not isinstance(version, str) or not version.startswith("1."):
        raise InvalidDocument("oci-layout", "imageLayoutVersion", f"must be 1.x, got {version!r}")


def _read_blob(store: BlobSource, desc: Descriptor, limit: int = MAX_DOCUMENT_SIZE) -> bytes:
    if desc.size > limit:
        raise InvalidDocument(_KIND, str(desc.digest), f"document of {desc.size} bytes is larger than {limit}")
    parts = []
    with store.open(desc.digest, desc.size) as reader:
        while chunk := reader.read(_COPY_CHUNK):  # to EOF, where the reader checks digest and size
            parts.append(chunk)
    return b"".join(parts)


def _require_blob(store: BlobStore, desc: Descriptor, what: str) -> None:
    if not store.has(desc.digest):
        raise NotFound(f"{what} {desc.digest} is not in the archive")


def _resolve_image(store: BlobStore, desc: Descriptor, platform: Platform, depth: int = 0) -> tuple[Manifest, ImageConfig]:
    """Manifest and config for an index entry; a nested index is narrowed to ``platform``."""
    if depth > 4:
        raise InvalidDocument(_KIND, "index.json", "indexes nest more than 4 deep")
    _require_blob(store, desc, "manifest")
    doc = parse_document(_read_blob(store, desc), desc.media_type)
    if isinstance(doc, Index):
        return _resolve_image(store, doc.select(platform), platform, depth + 1)
    _require_blob(store, doc.config, f"config of manifest {doc.digest}:")
    config = ImageConfig.parse(_read_blob(store, doc.config))
    for i, layer in enumerate(doc.layers):
        if layer.urls and not store.has(layer.digest):
            continue  # a foreign (non-distributable) layer fetched from its urls on use
        _require_blob(store, layer, f"layer {i} of manifest {doc.digest}:")
    if len(config.diff_ids) != len(doc.layers):
        raise InvalidDocument(
            "manifest", "layers", f"has {len(doc.layers)} entries but config {doc.config.digest} has "
            f"{len(config.diff_ids)} diff_ids"
        )
    return doc, config


def _from_oci_index(raw_index: bytes, store: BlobStore, platform: Platform) -> list[LoadedImage]:
    index = Index.parse(raw_index)
    found: dict[Digest, tuple[Manifest, ImageConfig, list[str], list[str]]] = {}
    for i, desc in enumerate(index.manifests):
        if desc.media_type not in MANIFEST_TYPES and desc.media_type not in INDEX_TYPES:
            continue  # artifacts and other content the layout may hold
        manifest, config = _resolve_image(store, desc, platform)
        entry = found.setdefault(manifest.digest, (manifest, config, [], []))
        ann = desc.annotation_map
        name = ann.get(IMAGE_NAME)
        ref_name = ann.get(REF_NAME)
        if name is None and ref_name and ("/" in ref_name or ":" in ref_name):
            name = ref_name  # a full reference written into ref.name
        if name is not None:
            try:
                ref = Reference.parse(name)
            except InvalidReference as exc:
                raise InvalidDocument("index", f"manifests[{i}].annotations", str(exc)) from None
            if str(ref) not in entry[2]:
                entry[2].append(str(ref))
        if ref_name and ref_name not in entry[3]:
            entry[3].append(ref_name)
    return [LoadedImage(m, c, tuple(n), tuple(r)) for m, c, n, r in found.values()]


def _sniff(store: BlobSource, digest: Digest, size: int) -> str | None:
    """``"gzip"``, ``"zstd"`` or ``None`` from a blob's first bytes."""
    reader = store.open(digest, size)
    try:
        return sniff(reader.read(4))
    finally:
        reader.close()


def _uncompressed_digest(store: BlobSource, digest: Digest, size: int, compression: str, limit: int) -> Digest:
    """The digest of a compressed blob's content, decompressed as a stream; stops past ``limit`` bytes."""
    hasher = digest.hasher()
    reader = store.open(digest, size)
    try:
        plain = open_decompressed(reader, compression, limit, f"layer {digest}")
        while block := plain.read(_COPY_CHUNK):
            hasher.update(block)
        if isinstance(reader, VerifyingReader):
            reader.verify_rest()
    finally:
        reader.close()
    return Digest(digest.algorithm, hasher.hexdigest())


def _from_docker_manifest(got: _Ingested, store: BlobStore, max_layer_size: int) -> list[LoadedImage]:
    raw = got.meta["manifest.json"]
    try:
        entries = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidDocument("manifest.json", "", f"is not JSON: {exc}") from None
    if not isinstance(entries, list) or not entries:
        raise InvalidDocument("manifest.json", "", "must be a non-empty list")
    out: list[LoadedImage] = []
    for i, entry in enumerate(entries):
        where = f"[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
            raise InvalidDocument("manifest.json", f"{where}.Config", "must be a string path")
        layers = entry.get("Layers")
        if not isinstance(layers, list) or not all(isinstance(p, str) for p in layers):
            raise InvalidDocument("manifest.json", f"{where}.Layers", "must be a list of paths")
        tags = entry.get("RepoTags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise InvalidDocument("manifest.json", f"{where}.RepoTags", "must be a list of strings")
        cfg_digest, cfg_size = got.blob(entry["Config"], f"manifest.json{where}.Config")
        config_desc = Descriptor(MediaType.OCI_CONFIG, cfg_digest, cfg_size)
        config = ImageConfig.parse(_read_blob(store, config_desc))
        if len(layers) != len(config.diff_ids):
            raise InvalidDocument(
                "manifest.json", f"{where}.Layers",
                f"lists {len(layers)} layers but config {cfg_digest} has {len(config.diff_ids)} diff_ids",
            )
        descs = []
        for j, (path, diff_id) in enumerate(zip(layers, config.diff_ids)):
            digest, size = got.blob(path, f"manifest.json{where}.Layers[{j}]")
            compression = _sniff(store, digest, size)
            content = digest if compression is None else _uncompressed_digest(
                store, digest, size, compression, max_layer_size)
            if content != diff_id:
                raise IntegrityError(
                    f"docker archive layer {path}: content hashes to {content}, config {cfg_digest} says {diff_id}"
                )
            descs.append(Descriptor(MediaType.layer_type(compression), digest, size))
        manifest = Manifest.build(config_desc, descs)
        store.put_stream(io.BytesIO(manifest.raw), expected=manifest.digest, size=len(manifest.raw))
        names = []
        for tag in tags:
            try:
                names.append(str(Reference.parse(tag)))
            except InvalidReference as exc:
                raise InvalidDocument("manifest.json", f"{where}.RepoTags", str(exc)) from None
        out.append(LoadedImage(manifest, config, tuple(names)))
    return out


def read_archive(stream: BinaryIO, store: BlobStore, *, platform: Platform | None = None,
                 max_layer_size: int = MAX_LAYER_SIZE) -> list[LoadedImage]:
    """Load an OCI-layout tar or a docker-archive tar from ``stream`` (read once, front to back).

    Blobs land in ``store`` as they stream by (verified); the images are returned only when
    every one of them resolves. An OCI layout is preferred when the tar is both. Nested indexes
    are narrowed to ``platform`` (default: this machine's). A compressed docker-archive layer is
    inflated to check its diff_id, up to ``max_layer_size`` bytes.
    """
    try:
        got = _ingest_tar(stream, store)
    except OSError as exc:
        raise InvalidInput(f"read image archive: {exc.strerror or exc}") from None
    want = platform or Platform.host()
    if "index.json" in got.meta and ("oci-layout" in got.meta or "manifest.json" not in got.meta):
        _check_layout_version(got.meta.get("oci-layout"))
        images = _from_oci_index(got.meta["index.json"], store, want)
    elif "manifest.json" in got.meta:
        images = _from_docker_manifest(got, store, max_layer_size)
    else:
        raise InvalidDocument(_KIND, "", "has neither an OCI index.json nor a docker manifest.json")
    if not images:
        raise InvalidDocument(_KIND, "index.json", "lists no images")
    return images


def read_layout_dir(path: str | os.PathLike[str], store: BlobStore, *,
                    platform: Platform | None = None) -> list[LoadedImage]:
    """Load every image of the OCI layout directory at ``path``; only referenced blobs are copied."""
    root = Path(path)
    try:
        _check_layout_version((root / "oci-layout").read_bytes())
    except FileNotFoundError:
        raise NotFound(f"{root} is not an OCI image layout: oci-layout is missing") from None
    try:
        raw_index = (root / "index.json").read_bytes()
    except FileNotFoundError:
        raise NotFound(f"{root} is not an OCI image layout: index.json is missing") from None
    want = platform or Platform.host()
    dir_store = _DirImporter(root, store)
    return _from_oci_index(raw_index, dir_store, want)


class _DirImporter:
    """A :class:`BlobStore` view that copies a layout directory's blobs into ``store`` on first use."""

    def __init__(self, root: Path, store: BlobStore) -> None:
        self._root = root
        self._store = store

    def _fetch(self, digest: Digest, size: int | None) -> None:
        if self._store.has(digest):
            return
        source = self._root / _blob_name(digest)
        try:
            f = open(source, "rb")
        except FileNotFoundError:
            return
        with f:
            try:
                self._store.put_stream(f, expected=digest, size=size)
            except IntegrityError as exc:
                raise IntegrityError(f"{source}: {exc}") from None

    def has(self, digest: Digest) -> bool:
        self._fetch(digest, None)
        return self._store.has(digest)

    def open(self, digest: Digest, size: int | None = None) -> BinaryIO:
        self._fetch(digest, size)
        return self._store.open(digest, size)

    def put_stream(self, stream: BinaryIO, expected: Digest | None = None,
                   size: int | None = None) -> tuple[Digest, int]:
        return self._store.put_stream(stream, expected=expected, size=size)


def read_path(path: str | os.PathLike[str], store: BlobStore, *,
              platform: Platform | None = None) -> list[LoadedImage]:
    """Load from a layout directory or an archive file, whichever ``path`` is."""
    if os.path.isdir(path):
        return read_layout_dir(path, store, platform=platform)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise NotFound(f"{path}: no such file or directory") from None
    with f:
        return read_archive(f, store, platform=platform)
