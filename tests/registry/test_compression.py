"""Layer encodings across a registry, end to end through the real ``pybuild``, real registry and store.

- ``push --compression zstd`` of a gzip-stored image re-encodes through ``layers.archive.recompress``:
  the remote layers are zstd, the config (so every diff_id) is unchanged, and the image pulled back
  into an empty store runs. Back again with ``--compression gzip`` gives gzip layers of the same diff_ids.
- A stored layer that no longer matches its digest is refused before anything is re-encoded or sent.
- SECURITY.md case 9: setuid/setgid/sticky modes survive pack -> push -> pull -> unpack.
"""

from __future__ import annotations

import io
import os
import stat

import pytest

from layers.archive import open_decompressed, pack
from layers.config import History, ImageConfig
from layers.descriptor import Descriptor
from layers.digest import Digest
from layers.manifest import Manifest
from layers.mediatype import MediaType
from layers.store import Store
from registry_client.client import Registry

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"


@pytest.fixture
def env(tmp_path):
    return {"PYBUILD_CONFIG": str(tmp_path / "cfg"), "DOCKER_CONFIG": str(tmp_path / "docker"), "HOME": str(tmp_path)}


def _fresh(pybuild, tmp_path, name: str):
    """A second pybuild with its own empty root and state (as another machine would be)."""
    root, state = tmp_path / f"{name}-root", tmp_path / f"{name}-state"
    root.mkdir(mode=0o700)
    state.mkdir(mode=0o700)
    return type(pybuild)(root, state)


def _remote(host: str, ref_path: str, identifier: str):
    """(manifest, config) as the registry holds them, read with the library (digest-verified)."""
    with Registry(host) as reg:
        repo = reg.repository(ref_path)
        manifest = Manifest.parse(repo.get_manifest(identifier).raw)
        config = ImageConfig.parse(repo.read_blob(manifest.config, 1 << 20))
        heads = []
        for layer in manifest.layers:
            got = bytearray()
            try:
                repo.fetch_blob(layer, got.extend)
            finally:
                heads.append(bytes(got[:4]))
    return manifest, config, heads


def _require_root():
    if os.geteuid() != 0:
        pytest.skip("pybuild run needs root for namespaces and mounts")


def test_push_zstd_of_gzip_image_round_trips_and_runs(open_registry, pybuild, busybox_tar, tmp_path, env):
    _require_root()
    assert pybuild("import", str(busybox_tar), "bb:gz", check=True).returncode == 0
    store = Store(str(pybuild.root))
    local = store.images.load(store.images.resolve("bb:gz"))
    assert all(layer.media_type == MediaType.OCI_LAYER_GZIP for layer in local.manifest.layers)
    host = open_registry.host
    out = pybuild("push", "--compression", "zstd", "bb:gz", f"{host}/comp/zstd:1", env=env)
    assert out.returncode == 0, out.stderr
    pushed = Digest.parse(out.stdout.strip())
    assert pushed != local.manifest.digest  # other layer bytes, so another manifest

    manifest, config, heads = _remote(host, "comp/zstd", "1")
    assert manifest.digest == pushed
    assert [layer.media_type for layer in manifest.layers] == [MediaType.OCI_LAYER_ZSTD]
    assert heads == [ZSTD_MAGIC]
    assert manifest.config.digest == local.manifest.config.digest  # config untouched: same diff_ids
    assert config.diff_ids == local.config.diff_ids
    # the zstd blob decompresses to the very tar the gzip one holds
    zlayer = manifest.layers[0]
    with store.blobs.open(zlayer.digest, zlayer.size) as src:  # recompress put it in the local store too
        plain = open_decompressed(src, "zstd", 1 << 32)
        h = Digest.parse("sha256:" + "0" * 64).hasher()
        while chunk := plain.read(1 << 20):
            h.update(chunk)
    assert f"sha256:{h.hexdigest()}" == str(local.config.diff_ids[0])

    # pulled back into an empty store, it is the same image, and it runs
    other = _fresh(pybuild, tmp_path, "b")
    out = other("pull", f"{host}/comp/zstd:1", env=env)
    assert out.returncode == 0, out.stderr
    ostore = Store(str(other.root))
    pulled = ostore.images.load(ostore.images.resolve(f"{host}/comp/zstd:1"))
    assert pulled.manifest.digest == pushed and pulled.config.diff_ids == local.config.diff_ids
    run = other("run", "--rm", "--network", "none", f"{host}/comp/zstd:1", "sh", "-c", "echo zstd-ok", env=env)
    assert (run.returncode, run.stdout) == (0, "zstd-ok\n"), run.stderr
    assert other("fsck").returncode == 0

    # and back to gzip from the zstd copy: gzip layers again, the same diff_ids, the same config
    out = other("push", "-q", "--compression", "gzip", f"{host}/comp/zstd:1", f"{host}/comp/gzip-again:1", env=env)
    assert out.returncode == 0, out.stderr
    again, again_config, heads = _remote(host, "comp/gzip-again", "1")
    assert [h[:2] for h in heads] == [GZIP_MAGIC]
    assert [layer.media_type for layer in again.layers] == [MediaType.OCI_LAYER_GZIP]
    assert again.config.digest == local.manifest.config.digest
    assert Digest.parse(out.stdout.strip()) == again.digest


def test_recompress_refuses_a_stored_layer_that_does_not_match(open_registry, pybuild, busybox_tar, env):
    """A gzip layer replaced on disk by another valid gzip of the same size: the digest check refuses it
    before the re-encoded blob is committed; nothing is pushed."""
    assert pybuild("import", str(busybox_tar), "bb:bad", check=True).returncode == 0
    store = Store(str(pybuild.root))
    layer = store.images.load(store.images.resolve("bb:bad")).manifest.layers[0]
    path = store.blobs.path(layer.digest)
    import gzip

    # the attack: a valid gzip of other content, of the very same size, under the old name (so only
    # the digest can tell; stored deflate blocks make the size exact)
    def forge(n: int, name: str = "") -> bytes:
        buf = io.BytesIO()
        with gzip.GzipFile(filename=name, fileobj=buf, mode="wb", compresslevel=0, mtime=0) as gz:
            gz.write(b"\0" * n)
        return buf.getvalue()

    n = layer.size - 1000
    while len(forge(n)) > layer.size - 2:
        n -= 100
    forged = forge(n, "x" * (layer.size - len(forge(n)) - 1))  # the FNAME field pads to the exact size
    assert len(forged) == layer.size
    os.chmod(path, 0o644)
    with open(path, "wb") as fh:
        fh.write(forged)
    blobs_before = set(store.blobs.digests())
    ref = f"{open_registry.host}/comp/bad:1"
    out = pybuild("push", "--compression", "zstd", "bb:bad", ref, env=env)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert str(layer.digest) in out.stderr.splitlines()[-1], out.stderr
    assert set(store.blobs.digests()) == blobs_before  # no re-encoded blob committed
    assert not os.listdir(os.path.join(pybuild.root, "ingest")) or \
        all(n.endswith(".lock") for n in os.listdir(os.path.join(pybuild.root, "ingest")))
    with Registry(open_registry.host) as reg:
        assert reg.repository("comp/bad").head_manifest("1") is None


def _image_with_layer(pybuild, busybox_tar, layer_dir, name: str):
    """busybox (imported) plus one layer packed from ``layer_dir`` with ``layers.archive.pack``."""
    assert pybuild("import", str(busybox_tar), "bb:base", check=True).returncode == 0
    store = Store(str(pybuild.root))
    base = store.images.load(store.images.resolve("bb:base"))
    with store.lease():
        with store.blobs.ingest() as ing:
            packed = pack(str(layer_dir), ing, compression="gzip")
            digest = ing.commit()
        assert digest == packed.digest
        config = base.config.with_layer(packed.diff_id, History(created_by="test: setuid layer"))
        config_digest = store.blobs.put_bytes(config.raw)
        manifest = Manifest.build(Descriptor(MediaType.OCI_CONFIG, config_digest, len(config.raw)),
                                  [*base.manifest.layers, Descriptor(packed.media_type, digest, packed.size)])
        store.blobs.put_bytes(manifest.raw, expected=manifest.digest)
        store.images.tag(name, manifest.digest)
    return manifest


def test_setuid_survives_pack_push_pull_unpack(token_registry, pybuild, busybox_tar, tmp_path, env):  # case 9
    _require_root()
    layer = tmp_path / "layer"
    (layer / "usr" / "local" / "bin").mkdir(parents=True)
    tool = layer / "usr" / "local" / "bin" / "suidtool"
    tool.write_bytes(open("/bin/busybox", "rb").read())
    os.chown(tool, 0, 0)
    os.chmod(tool, 0o4755)
    sgid = layer / "usr" / "local" / "bin" / "sgidtool"
    sgid.write_bytes(b"#!/bin/sh\necho sgid\n")
    os.chown(sgid, 0, 50)
    os.chmod(sgid, 0o2750)
    (layer / "shared").mkdir()
    os.chmod(layer / "shared", 0o1777)
    manifest = _image_with_layer(pybuild, busybox_tar, layer, "suid:1")

    from registry_client.credentials import Credentials, CredentialStore

    server = token_registry
    CredentialStore(tmp_path / "cfg" / "auth.json", tmp_path / "none").save(
        server.host, Credentials(server.user, server.password))
    remote = f"{server.host}/sec/suid:1"
    out = pybuild("push", "-q", "suid:1", remote, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(manifest.digest)

    other = _fresh(pybuild, tmp_path, "pulled")
    out = other("pull", "-q", remote, env=env)
    assert out.returncode == 0, out.stderr
    ostore = Store(str(other.root))
    image = ostore.images.load(ostore.images.resolve(remote))
    assert image.manifest.digest == manifest.digest
    # unpacked as a snapshot (what run mounts): modes and owners exact
    top = ostore.snapshots.ensure(image.manifest.layers[-1], image.config.diff_ids[-1])
    st = os.lstat(os.path.join(top, "usr/local/bin/suidtool"))
    assert stat.S_IMODE(st.st_mode) == 0o4755 and (st.st_uid, st.st_gid) == (0, 0)
    st = os.lstat(os.path.join(top, "usr/local/bin/sgidtool"))
    assert stat.S_IMODE(st.st_mode) == 0o2750 and (st.st_uid, st.st_gid) == (0, 50)
    assert stat.S_IMODE(os.lstat(os.path.join(top, "shared")).st_mode) == 0o1777
    # and inside a container started from the pulled image
    run = other("run", "--rm", "--network", "none", remote, "stat", "-c", "%a %u %n",
                "/usr/local/bin/suidtool", "/usr/local/bin/sgidtool", "/shared", env=env)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["4755 0 /usr/local/bin/suidtool", "2750 0 /usr/local/bin/sgidtool",
                                       "1777 0 /shared"]
    fsck = other("fsck")
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
