"""Software bills of materials: installed packages read from an image's unpacked layers
(:mod:`.packages`) and the SPDX 2.3 JSON document pybuild writes for them (:mod:`.spdx`)."""

from __future__ import annotations

from .packages import LayerView, Package, scan_packages
from .records import load_sbom, local_sbom, save_sbom, sbom_for_image
from .spdx import FileEntry, ImageFacts, image_sbom, layer_files, spdx_document

__all__ = ["Package", "LayerView", "scan_packages", "ImageFacts", "FileEntry", "image_sbom", "layer_files",
           "spdx_document", "save_sbom", "load_sbom", "local_sbom", "sbom_for_image"]
