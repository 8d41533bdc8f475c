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

Modules: :mod:`.base` (protocols, values, names), :mod:`.write` (tar and directory out),
:mod:`.tarstream` (one streaming pass over a tar), :mod:`.docker` (docker-archive to OCI),
:mod:`.read` (layouts and archives in).
"""

from __future__ import annotations

from .base import IMAGE_NAME, REF_NAME, ArchiveImage, BlobSource, BlobStore, LoadedImage
from .read import read_archive, read_layout_dir, read_path
from .write import write_archive, write_layout_dir

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
