"""OCI layout / docker-archive writer and reader: round trips, determinism, hostile archives."""

from __future__ import annotations

import gzip
import io
import json
import tarfile

import pytest

from layers import Descriptor, Digest, IntegrityError, InvalidDocument, LayerError, MediaType, NotFound, Reference
from layers.layout import ArchiveImage, read_archive, read_layout_dir, read_path, write_archive, write_layout_dir

from . import schemas
from .blobs import MemoryBlobs, make_image

REF = Reference.parse("localhost:5000/team/bb:1.0")
REF2 = Reference.parse("busybox")


@pytest.fixture
def image(busybox_tar):
    store = MemoryBlobs()
    return store, make_image(store, busybox_tar)


def _save(store, *images) -> bytes:
    out = io.BytesIO()
    write_archive(out, list(images), store)
    return out.getvalue()


def _members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: (tar.extractfile(m).read() if m.isreg() else b"") for m in tar}


def _tar(entries: list[tuple[str, bytes]] | list, links=()) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target, kind in links:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = target
            tar.addfile(info)
    return out.getvalue()


def test_archive_layout_is_valid_and_complete(image):
    store, img = image
    data = _save(store, ArchiveImage(img.manifest, (REF, REF2)))
    files = _members(data)
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    schemas.validate(files["oci-layout"], schemas.LAYOUT)
    schemas.validate(files["index.json"], schemas.INDEX)
    index = json.loads(files["index.json"])
    assert [m["annotations"] for m in index["manifests"]] == [
        {"io.containerd.image.name": str(REF), "org.opencontainers.image.ref.name": "1.0"},
        {"io.containerd.image.name": "docker.io/library/busybox:latest", "org.opencontainers.image.ref.name": "latest"},
    ]
    for name, content in files.items():
        if name.startswith("blobs/sha256/"):
            assert Digest.from_bytes(content).hex == name.rsplit("/", 1)[1]
    schemas.validate(files[f"blobs/sha256/{img.manifest.digest.hex}"], schemas.MANIFEST)
    schemas.validate(files[f"blobs/sha256/{img.manifest.config.digest.hex}"], schemas.CONFIG)
    docker = json.loads(files["manifest.json"])
    assert docker == [{
        "Config": f"blobs/sha256/{img.manifest.config.digest.hex}",
        "RepoTags": ["localhost:5000/team/bb:1.0", "busybox:latest"],
        "Layers": [f"blobs/sha256/{img.manifest.layers[0].digest.hex}"],
    }]
    assert json.loads(files["repositories"]) == {
        "busybox": {"latest": img.manifest.layers[0].digest.hex},
        "localhost:5000/team/bb": {"1.0": img.manifest.layers[0].digest.hex},
    }


def test_save_is_deterministic_and_dedups_blobs(busybox_tar):
    store = MemoryBlobs()
    one = make_image(store, busybox_tar)
    two = make_image(store, busybox_tar, extra_layer=_tar([("hello", b"hi\n")]))
    a = _save(store, ArchiveImage(one.manifest, (REF,)), ArchiveImage(two.manifest, (REF2,)))
    b = _save(store, ArchiveImage(one.manifest, (REF,)), ArchiveImage(two.manifest, (REF2,)))
    assert a == b
    names = [m.name for m in tarfile.open(fileobj=io.BytesIO(a))]
    assert len(names) == len(set(names))
    assert names.count(f"blobs/sha256/{one.manifest.layers[0].digest.hex}") == 1


def test_round_trip_through_archive(image):
    store, img = image
    data = _save(store, ArchiveImage(img.manifest, (REF, REF2)))
    fresh = MemoryBlobs()
    loaded = read_archive(io.BytesIO(data), fresh)
    assert len(loaded) == 1
    got = loaded[0]
    assert got.manifest.raw == img.manifest.raw and got.config.raw == img.config.raw
    assert got.names == (str(REF), "docker.io/library/busybox:latest") and got.ref_names == ("1.0", "latest")
    assert set(fresh.blobs) == set(store.blobs)


def test_round_trip_untagged_and_docker_schema2(busybox_tar):
    store = MemoryBlobs()
    img = make_image(store, busybox_tar, docker=True)
    loaded = read_archive(io.BytesIO(_save(store, ArchiveImage(img.manifest))), MemoryBlobs())
    assert loaded[0].manifest.is_docker and loaded[0].names == () and loaded[0].ref_names == ()


def test_round_trip_through_directory(image, tmp_path):
    store, img = image
    write_layout_dir(tmp_path / "oci", [ArchiveImage(img.manifest, (REF,))], store)
    # a second write adds a name without losing the first, and re-hashes what is there
    write_layout_dir(tmp_path / "oci", [ArchiveImage(img.manifest, (REF2,))], store)
    schemas.validate((tmp_path / "oci" / "index.json").read_bytes(), schemas.INDEX)
    fresh = MemoryBlobs()
    loaded = read_layout_dir(tmp_path / "oci", fresh)
    assert loaded[0].manifest.digest == img.manifest.digest
    assert set(loaded[0].names) == {str(REF), "docker.io/library/busybox:latest"}
    assert read_path(tmp_path / "oci", MemoryBlobs())[0].config.digest == img.config.digest


def test_directory_with_a_corrupt_blob_is_refused_and_rewritten_on_save(image, tmp_path):
    store, img = image
    layout = tmp_path / "oci"
    write_layout_dir(layout, [ArchiveImage(img.manifest, (REF,))], store)
    blob = layout / "blobs" / "sha256" / img.manifest.layers[0].digest.hex
    good = blob.read_bytes()
    blob.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # same size, other bytes
    with pytest.raises(IntegrityError, match=img.manifest.layers[0].digest.hex):
        read_layout_dir(layout, MemoryBlobs())
    write_layout_dir(layout, [ArchiveImage(img.manifest, (REF,))], store)  # must not trust size alone
    assert blob.read_bytes() == good


def test_docker_archive_legacy_layout_with_uncompressed_and_linked_layers(busybox_tar):
    """What `docker save` wrote before 25 and `skopeo copy docker-archive:` writes: <id>/layer.tar etc."""
    plain = busybox_tar.read_bytes()
    second = _tar([("hello", b"hi\n")])
    store = MemoryBlobs()
    base = make_image(store, busybox_tar, extra_layer=second)
    config = base.config
    entries = [
        ("aaa/layer.tar", plain),
        ("aaa/json", b"{}"),
        ("aaa/VERSION", b"1.0"),
        ("bbb/layer.tar", gzip.compress(second, mtime=0)),
        (f"{config.digest.hex}.json", config.raw),
        ("manifest.json", json.dumps([{"Config": f"{config.digest.hex}.json", "RepoTags": ["bb:old"],
                                       "Layers": ["ccc/layer.tar", "bbb/layer.tar"]}]).encode()),
    ]
    data = _tar(entries, links=[("ccc/layer.tar", "../aaa/layer.tar", tarfile.SYMTYPE)])
    fresh = MemoryBlobs()
    [loaded] = read_archive(io.BytesIO(data), fresh)
    assert loaded.names == ("docker.io/library/bb:old",)
    assert loaded.config.raw == config.raw
    l0, l1 = loaded.manifest.layers
    assert l0.media_type == "application/vnd.oci.image.layer.v1.tar" and l0.digest == Digest.from_bytes(plain)
    assert l1.media_type == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert fresh.has(loaded.manifest.digest)
    schemas.validate(loaded.manifest.raw, schemas.MANIFEST)


def test_docker_archive_layer_that_does_not_match_diff_id(busybox_tar):
    store = MemoryBlobs()
    img = make_image(store, busybox_tar)
    data = _tar([
        ("layer.tar", _tar([("evil", b"x")])),
        ("config.json", img.config.raw),
        ("manifest.json", json.dumps([{"Config": "config.json", "RepoTags": [], "Layers": ["layer.tar"]}]).encode()),
    ])
    with pytest.raises(IntegrityError, match="layer.tar: content hashes to"):
        read_archive(io.BytesIO(data), MemoryBlobs())


def test_docker_archive_with_truncated_gzip_layer(busybox_tar):
    store = MemoryBlobs()
    img = make_image(store, busybox_tar)
    data = _tar([
        ("layer.tar.gz", gzip.compress(busybox_tar.read_bytes())[:5000]),
        ("config.json", img.config.raw),
        ("manifest.json", json.dumps([{"Config": "config.json", "Layers": ["layer.tar.gz"]}]).encode()),
    ])
    with pytest.raises(LayerError, match="broken gzip"):
        read_archive(io.BytesIO(data), MemoryBlobs())


def _oci_archive(image) -> dict[str, bytes]:
    store, img = image
    return _members(_save(store, ArchiveImage(img.manifest, (REF,))))


def _retar(files: dict[str, bytes], drop=(), extra=()) -> bytes:
    return _tar([(k, v) for k, v in files.items() if k not in drop and not k.endswith("/")] + list(extra))


def test_blob_whose_bytes_do_not_match_its_name(image):
    files = _oci_archive(image)
    layer = next(k for k in files if k.startswith("blobs/") and len(files[k]) > 100000)
    files[layer] = files[layer][:-1] + bytes([files[layer][-1] ^ 1])
    with pytest.raises(IntegrityError, match=layer.rsplit("/", 1)[1]):
        read_archive(io.BytesIO(_retar(files)), MemoryBlobs())


def test_blob_missing_from_archive(image):
    _, img = image
    files = _oci_archive(image)
    with pytest.raises(NotFound, match=img.manifest.layers[0].digest.hex):
        read_archive(io.BytesIO(_retar(files, drop={f"blobs/sha256/{img.manifest.layers[0].digest.hex}"})),
                     MemoryBlobs())


@pytest.mark.parametrize("name", ["../escape", "/abs/path", "blobs/../../x"])
def test_member_paths_that_leave_the_archive(image, name):
    files = _oci_archive(image)
    with pytest.raises(InvalidDocument, match="leaves the archive"):
        read_archive(io.BytesIO(_retar(files, extra=[(name, b"x")])), MemoryBlobs())


def test_link_that_leaves_the_archive(image):
    files = _oci_archive(image)
    data = _tar([(k, v) for k, v in files.items() if k and not k.endswith("/")],
                links=[("blobs/sha256/" + "f" * 64, "../../../etc/passwd", tarfile.SYMTYPE)])
    with pytest.raises(InvalidDocument, match="leaves the archive"):
        read_archive(io.BytesIO(data), MemoryBlobs())


def test_truncated_and_garbage_archives(image):
    store, img = image
    data = _save(store, ArchiveImage(img.manifest, (REF,)))
    with pytest.raises(InvalidDocument, match="truncated|broken tar"):
        read_archive(io.BytesIO(data[: len(data) // 2]), MemoryBlobs())
    with pytest.raises(InvalidDocument, match="not a tar|neither"):
        read_archive(io.BytesIO(b"this is not a tar archive" * 40), MemoryBlobs())
    with pytest.raises(InvalidDocument, match="neither an OCI index.json nor a docker manifest.json"):
        read_archive(io.BytesIO(_tar([("hello", b"x")])), MemoryBlobs())


def test_duplicate_members_are_refused(image):
    files = _oci_archive(image)
    with pytest.raises(InvalidDocument, match="appears twice"):
        read_archive(io.BytesIO(_retar(files, extra=[("index.json", b"{}")])), MemoryBlobs())


def test_bad_layout_version_and_bad_index(image):
    files = _oci_archive(image)
    files["oci-layout"] = b'{"imageLayoutVersion": "2.0.0"}'
    with pytest.raises(InvalidDocument, match="imageLayoutVersion"):
        read_archive(io.BytesIO(_retar(files)), MemoryBlobs())
    files = _oci_archive(image)
    files["index.json"] = b'{"schemaVersion":2,"manifests":[],"layers":[]}'
    with pytest.raises(InvalidDocument, match="both an index and a manifest"):
        read_archive(io.BytesIO(_retar(files)), MemoryBlobs())
    files["index.json"] = b'{"schemaVersion":2,"manifests":[]}'
    with pytest.raises(InvalidDocument, match="no images"):
        read_archive(io.BytesIO(_retar(files)), MemoryBlobs())


def test_save_refuses_a_corrupt_store_blob(image):
    store, img = image
    layer = img.manifest.layers[0].digest
    store.blobs[layer] = store.blobs[layer][:-1] + bytes([store.blobs[layer][-1] ^ 1])
    with pytest.raises(IntegrityError, match=layer.hex):
        _save(store, ArchiveImage(img.manifest, (REF,)))


def test_bad_repo_tag_in_docker_archive(image):
    store, img = image
    data = _tar([
        ("layer.tar", img.layer_tar),
        ("config.json", img.config.raw),
        ("manifest.json", json.dumps([{"Config": "config.json", "RepoTags": ["Bad:Tag"],
                                       "Layers": ["layer.tar"]}]).encode()),
    ])
    with pytest.raises(InvalidDocument, match="RepoTags.*lowercase"):
        read_archive(io.BytesIO(data), MemoryBlobs())


@pytest.mark.parametrize("compress", ["gzip", "zstd", "xz"])
def test_compressed_archives_load(image, compress):
    """`docker save | gzip` and friends: docker load and podman load accept them, so do we."""
    import lzma

    import zstandard

    store, img = image
    data = _save(store, ArchiveImage(img.manifest, (REF,)))
    packed = {"gzip": lambda d: gzip.compress(d, compresslevel=1), "xz": lambda d: lzma.compress(d, preset=0),
              "zstd": lambda d: zstandard.ZstdCompressor().compress(d)}[compress](data)
    [loaded] = read_archive(io.BytesIO(packed), MemoryBlobs())
    assert loaded.manifest.digest == img.manifest.digest
    with pytest.raises(InvalidDocument, match="broken tar|truncated"):
        read_archive(io.BytesIO(packed[: len(packed) // 2]), MemoryBlobs())


def _layout_with_index(store, index_raw: bytes) -> bytes:
    """An OCI archive whose index.json is ``index_raw`` and whose blobs are everything in ``store``."""
    entries = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index_raw)]
    entries += [(f"blobs/{d.algorithm}/{d.hex}", data) for d, data in store.blobs.items()]
    return _tar(entries)


def test_nested_index_is_narrowed_to_the_platform(image):
    from layers import Index, Platform

    store, img = image
    other = Descriptor(MediaType.OCI_MANIFEST, Digest.from_bytes(b"not here"), 8, platform=Platform("linux", "s390x"))
    inner = Index.build([other, img.manifest.descriptor(Platform.host())])
    store.put_bytes(inner.raw)
    outer = Index.build([inner.descriptor(annotations={"org.opencontainers.image.ref.name": "multi"})])
    [loaded] = read_archive(io.BytesIO(_layout_with_index(store, outer.raw)), MemoryBlobs())
    assert loaded.manifest.digest == img.manifest.digest and loaded.ref_names == ("multi",)
    with pytest.raises(NotFound, match="no manifest for platform linux/riscv64"):
        read_archive(io.BytesIO(_layout_with_index(store, outer.raw)), MemoryBlobs(),
                     platform=Platform("linux", "riscv64"))


def test_index_entry_that_lies_about_size_or_type(image):
    from layers import Index

    store, img = image
    d = img.manifest.descriptor()
    lying = Descriptor(d.media_type, d.digest, d.size - 1)
    with pytest.raises(IntegrityError, match="expected"):
        read_archive(io.BytesIO(_layout_with_index(store, Index.build([lying]).raw)), MemoryBlobs())
    as_index = Descriptor(MediaType.OCI_INDEX, d.digest, d.size)
    with pytest.raises(InvalidDocument, match="content type"):
        read_archive(io.BytesIO(_layout_with_index(store, Index.build([as_index]).raw)), MemoryBlobs())


def test_manifest_and_config_disagree_on_layer_count(image):
    from layers import Index, Manifest

    store, img = image
    two = Manifest.build(img.manifest.config, list(img.manifest.layers) * 2)
    store.put_bytes(two.raw)
    with pytest.raises(InvalidDocument, match="2 entries but config .* has 1 diff_ids"):
        read_archive(io.BytesIO(_layout_with_index(store, Index.build([two.descriptor()]).raw)), MemoryBlobs())


def test_disk_full_while_saving_is_a_clean_error(image):
    from layers import StoreError

    store, img = image
    with open("/dev/full", "wb") as out, pytest.raises(StoreError, match="write image archive: No space left"):
        write_archive(out, [ArchiveImage(img.manifest, (REF,))], store)


def test_index_json_without_oci_layout(image):
    """Without oci-layout a tar is not an OCI layout; its manifest.json, if any, is used instead."""
    files = _oci_archive(image)
    [loaded] = read_archive(io.BytesIO(_retar(files, drop={"oci-layout"})), MemoryBlobs())
    assert loaded.names == (str(REF),)  # from manifest.json's RepoTags
    with pytest.raises(InvalidDocument, match="oci-layout"):
        read_archive(io.BytesIO(_retar(files, drop={"oci-layout", "manifest.json"})), MemoryBlobs())


def test_zstd_bomb_layer_in_docker_archive_stops_at_the_cap(image):
    """A few KiB of zstd that inflate to 256 MiB: hashing stops at the cap, no image is returned."""
    import zstandard

    store, img = image
    bomb = zstandard.ZstdCompressor(level=3).compress(bytes(256 << 20))
    assert len(bomb) < 64 << 10
    data = _tar([
        ("layer.tar.zst", bomb),
        ("config.json", img.config.raw),
        ("manifest.json", json.dumps([{"Config": "config.json", "Layers": ["layer.tar.zst"]}]).encode()),
    ])
    with pytest.raises(LayerError, match="decompresses to more than 16777216 bytes"):
        read_archive(io.BytesIO(data), MemoryBlobs(), max_layer_size=16 << 20)


def test_save_multi_platform_index_whole(busybox_tar):
    from layers import Index, Platform

    store = MemoryBlobs()
    host = make_image(store, busybox_tar)
    other = make_image(store, busybox_tar, extra_layer=_tar([("arch", b"other\n")]))
    index = Index.build([host.manifest.descriptor(Platform.host()),
                         other.manifest.descriptor(Platform("linux", "s390x"))], annotations={"a": "b"})
    store.put_bytes(index.raw)
    data = _save(store, ArchiveImage(index, (REF,)))
    files = _members(data)
    assert json.loads(files["index.json"])["manifests"][0]["digest"] == str(index.digest)
    assert f"blobs/sha256/{index.digest.hex}" in files and f"blobs/sha256/{other.manifest.digest.hex}" in files
    assert json.loads(files["manifest.json"])[0]["Config"] == f"blobs/sha256/{host.manifest.config.digest.hex}"
    [loaded] = read_archive(io.BytesIO(data), MemoryBlobs())
    assert loaded.manifest.digest == host.manifest.digest and loaded.names == (str(REF),)
    [s390x] = read_archive(io.BytesIO(data), MemoryBlobs(), platform=Platform("linux", "s390x"))
    assert s390x.manifest.digest == other.manifest.digest


def test_save_index_with_entries_missing_from_the_store(busybox_tar):
    """After a one-platform pull the store lacks the other entries: a smaller index is saved."""
    from layers import Index, Platform

    store = MemoryBlobs()
    host = make_image(store, busybox_tar)
    absent = Descriptor(MediaType.OCI_MANIFEST, Digest.from_bytes(b"never pulled"), 12,
                        platform=Platform("linux", "s390x"))
    index = Index.build([host.manifest.descriptor(Platform.host()), absent])
    files = _members(_save(store, ArchiveImage(index, (REF,))))
    [entry] = json.loads(files["index.json"])["manifests"]
    saved = Index.parse(files["blobs/sha256/" + entry["digest"].split(":")[1]])
    assert [d.digest for d in saved.manifests] == [host.manifest.digest]
    assert f"blobs/sha256/{index.digest.hex}" not in files
    lonely = Index.build([absent])
    with pytest.raises(NotFound, match="none of its manifests"):
        _save(store, ArchiveImage(lonely, (REF,)))


@pytest.mark.parametrize("names, ref_names, want", [
    (("docker.io/library/busybox:1",), ("ignored",), ("docker.io/library/busybox:1",)),
    ((), ("v1",), ("localhost/v1:latest",)),
    ((), ("team/app:2", "team/app:2", "other"), ("docker.io/team/app:2", "localhost/other:latest")),
    ((), ("Not A Name!",), None),
    ((), (), None),
])
def test_loaded_image_tags_follow_the_naming_rules(image, names, ref_names, want):
    from layers.config import ImageConfig
    from layers.layout import LoadedImage

    store, manifest = image
    config = ImageConfig.parse(store.open(manifest.config.digest).read())
    loaded = LoadedImage(manifest, config, names, ref_names)
    fallback = (f"localhost/{config.digest.short}:latest",)
    assert loaded.tags() == (want if want is not None else fallback)
