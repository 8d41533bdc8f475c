"""Media types of the OCI image spec and Docker's schema2, with small classifiers."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["MediaType", "MANIFEST_TYPES", "INDEX_TYPES", "ACCEPT_MANIFESTS"]


class MediaType(StrEnum):
    """Known media types. Values are plain strings; unknown types pass through as ``str``."""

    OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
    OCI_INDEX = "application/vnd.oci.image.index.v1+json"
    OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
    OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
    OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
    OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
    OCI_LAYER_NONDIST_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
    OCI_EMPTY = "application/vnd.oci.empty.v1+json"
    DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
    DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
    DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
    DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    DOCKER_LAYER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

    @staticmethod
    def is_manifest(value: str) -> bool:
        return value in MANIFEST_TYPES

    @staticmethod
    def is_index(value: str) -> bool:
        return value in INDEX_TYPES

    @staticmethod
    def is_layer(value: str) -> bool:
        return value in _LAYER_COMPRESSION

    @staticmethod
    def compression(value: str) -> str | None:
        """``"gzip"``, ``"zstd"`` or ``None`` (plain tar) for a layer type; raise ``KeyError`` otherwise."""
        return _LAYER_COMPRESSION[value]

    @staticmethod
    def layer_type(compression: str | None, docker: bool = False) -> str:
        """The layer media type for a compression (``gzip``, ``zstd``, ``None``) and format."""
        if docker:
            if compression != "gzip":
                raise ValueError("docker schema2 layers are gzip-compressed")
            return MediaType.DOCKER_LAYER_GZIP
        return {
            None: MediaType.OCI_LAYER,
            "gzip": MediaType.OCI_LAYER_GZIP,
            "zstd": MediaType.OCI_LAYER_ZSTD,
        }[compression]


MANIFEST_TYPES = frozenset({MediaType.OCI_MANIFEST, MediaType.DOCKER_MANIFEST})
INDEX_TYPES = frozenset({MediaType.OCI_INDEX, MediaType.DOCKER_MANIFEST_LIST})

_LAYER_COMPRESSION: dict[str, str | None] = {
    MediaType.OCI_LAYER: None,
    MediaType.OCI_LAYER_GZIP: "gzip",
    MediaType.OCI_LAYER_ZSTD: "zstd",
    MediaType.OCI_LAYER_NONDIST_GZIP: "gzip",
    MediaType.DOCKER_LAYER_GZIP: "gzip",
    MediaType.DOCKER_LAYER_FOREIGN: "gzip",
}

#: The Accept header value a registry client sends when resolving a reference.
ACCEPT_MANIFESTS = ", ".join(
    [
        MediaType.OCI_INDEX,
        MediaType.OCI_MANIFEST,
        MediaType.DOCKER_MANIFEST_LIST,
        MediaType.DOCKER_MANIFEST,
    ]
)
