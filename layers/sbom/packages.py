"""Installed packages found in an image's unpacked layers (its snapshots, overlay form).

The layers are given bottom first; a path is read from the top-most layer that has it, and a
0/0 character device there (an overlay whiteout) means the path was deleted. Sources:

- dpkg: ``var/lib/dpkg/status`` (stanzas with ``Status: install ok installed``), licence from
  ``usr/share/doc/<pkg>/copyright`` when it is machine-readable (``License:`` lines);
- apk: ``lib/apk/db/installed`` (``P:`` name, ``V:`` version, ``A:`` arch, ``L:`` licence);
- Python: ``*.dist-info/METADATA`` and ``*.egg-info/PKG-INFO`` under ``site-packages``/``dist-packages``;
- npm: ``package.json`` of each package directory under a ``node_modules``.

Everything read is capped (a hostile image cannot make the scan read gigabytes into memory).
"""

from __future__ import annotations

import json
import os
import stat
from email.parser import HeaderParser
from urllib.parse import quote

from layers.value import frozen

__all__ = ["Package", "LayerView", "scan_packages", "os_release"]

_CAP = 64 << 20
_SMALL = 1 << 20


@frozen
class Package:
    name: str
    version: str
    ecosystem: str          # deb | apk | pypi | npm
    purl: str
    license: str = ""       # SPDX expression when known
    source: str = ""        # where it was found (path in the image)
    arch: str = ""


class LayerView:
    """Read-only union of unpacked layer directories (bottom first), as overlayfs would show them."""

    def __init__(self, layer_dirs: list[str]) -> None:
        self.layers = list(layer_dirs)

    def locate(self, rel: str) -> str | None:
        """The host path of ``rel`` in the top-most layer that has it; None if absent or whited out.

        Nothing outside a layer is ever returned: a ``..`` component, or a symlink on the way (an
        image's ``var/lib/dpkg`` pointing at the host's ``/etc``), makes the path absent."""
        rel = rel.strip("/")
        if any(part in ("..", ".") for part in rel.split("/")):
            return None
        for base in reversed(self.layers):
            path = os.path.join(base, rel)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            real_base = os.path.realpath(base)
            if os.path.realpath(os.path.dirname(path)) != os.path.join(real_base, os.path.dirname(rel)).rstrip("/"):
                return None  # a symlinked directory on the way
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                return None
            return path
        return None

    def read(self, rel: str, cap: int = _SMALL) -> bytes | None:
        path = self.locate(rel)
        if path is None:
            return None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:  # a symlink (ELOOP), or gone
            return None
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                return None  # a fifo or device must not be read
            return fh.read(cap)

    def find_dirs(self, predicate) -> list[str]:
        """Image-relative directories (any layer, not whited out above) whose name satisfies ``predicate``."""
        found: set[str] = set()
        for base in self.layers:
            for top, dirs, _files in os.walk(base):
                for d in dirs:
                    if predicate(d, top):
                        found.add(os.path.relpath(os.path.join(top, d), base))
        kept = []
        for rel in sorted(found):
            path = self.locate(rel)
            if path is not None and os.path.isdir(path) and not os.path.islink(path):
                kept.append(rel)
        return kept


def _v(version: str) -> str:
    """A version as package-url writes it: percent-encoded, ``:`` (a Debian epoch) kept."""
    return quote(version, safe=":")


def os_release(view: LayerView) -> dict[str, str]:
    data = view.read("etc/os-release") or view.read("usr/lib/os-release") or b""
    out = {}
    for line in data.decode("utf-8", "replace").splitlines():
        key, eq, value = line.partition("=")
        if eq:
            out[key.strip()] = value.strip().strip('"')
    return out


# Debian's short licence names (copyright-format 1.0) -> SPDX identifiers; names not here are left out
_DEB_SPDX = {
    "Apache-2.0": "Apache-2.0", "Artistic": "Artistic-1.0", "Artistic-2.0": "Artistic-2.0",
    "BSD-2-clause": "BSD-2-Clause", "BSD-3-clause": "BSD-3-Clause", "BSD-4-clause": "BSD-4-Clause",
    "CC0-1.0": "CC0-1.0", "Expat": "MIT", "MIT": "MIT", "ISC": "ISC", "Zlib": "Zlib", "zlib": "Zlib",
    "MPL-1.1": "MPL-1.1", "MPL-2.0": "MPL-2.0", "OpenSSL": "OpenSSL", "PSF-2": "PSF-2.0", "X11": "X11",
}
for _n in ("1", "2", "3"):
    _DEB_SPDX[f"GPL-{_n}"], _DEB_SPDX[f"GPL-{_n}+"] = f"GPL-{_n}.0-only", f"GPL-{_n}.0-or-later"
for _n in ("2", "2.1", "3"):
    _spdx = _n if "." in _n else f"{_n}.0"
    _DEB_SPDX[f"LGPL-{_n}"], _DEB_SPDX[f"LGPL-{_n}+"] = f"LGPL-{_spdx}-only", f"LGPL-{_spdx}-or-later"
_DEB_SPDX.update({"AGPL-3": "AGPL-3.0-only", "AGPL-3+": "AGPL-3.0-or-later", "GFDL-1.2+": "GFDL-1.2-or-later",
                  "GFDL-1.3+": "GFDL-1.3-or-later"})


def _deb_license(view: LayerView, name: str) -> str:
    """The SPDX licences a machine-readable ``copyright`` file names (``License:`` fields, ``or`` and
    ``and`` split); ``""`` for a free-form file or names SPDX has no identifier for."""
    data = view.read(f"usr/share/doc/{name}/copyright", 256 << 10)
    if not data or not data.startswith(b"Format:"):
        return ""
    seen: list[str] = []
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.startswith("License:"):
            continue
        for word in line[8:].replace(",", " ").split():
            spdx = _DEB_SPDX.get(word)
            if spdx and spdx not in seen:
                seen.append(spdx)
    return " AND ".join(seen[:8])


def _dpkg(view: LayerView, distro: str) -> list[Package]:
    data = view.read("var/lib/dpkg/status", _CAP)
    if data is None:
        return []
    out = []
    for stanza in data.decode("utf-8", "replace").split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for line in stanza.splitlines():
            if line.startswith((" ", "\t")) and key:
                continue
            key, colon, value = line.partition(":")
            if colon:
                fields[key.strip()] = value.strip()
        name, version = fields.get("Package"), fields.get("Version")
        if not name or not version or not fields.get("Status", "").endswith(" installed"):
            continue
        arch = fields.get("Architecture", "")
        purl = f"pkg:deb/{distro}/{quote(name)}@{_v(version)}" + (f"?arch={arch}" if arch else "")
        out.append(Package(name, version, "deb", purl, _deb_license(view, name), "var/lib/dpkg/status", arch))
    return out


def _apk(view: LayerView, distro: str) -> list[Package]:
    data = view.read("lib/apk/db/installed", _CAP)
    if data is None:
        return []
    out = []
    for stanza in data.decode("utf-8", "replace").split("\n\n"):
        fields = {line[0]: line[2:] for line in stanza.splitlines() if len(line) > 2 and line[1] == ":"}
        name, version = fields.get("P"), fields.get("V")
        if not name or not version:
            continue
        arch = fields.get("A", "")
        purl = f"pkg:apk/{distro}/{quote(name)}@{_v(version)}" + (f"?arch={arch}" if arch else "")
        out.append(Package(name, version, "apk", purl, fields.get("L", ""), "lib/apk/db/installed", arch))
    return out


def _python(view: LayerView) -> list[Package]:
    def wanted(d: str, top: str) -> bool:
        return d.endswith((".dist-info", ".egg-info")) and ("site-packages" in top or "dist-packages" in top)

    out = []
    for rel in view.find_dirs(wanted):
        meta = view.read(f"{rel}/METADATA") if rel.endswith(".dist-info") else view.read(f"{rel}/PKG-INFO")
        if meta is None:
            continue
        headers = HeaderParser().parsestr(meta.decode("utf-8", "replace"), headersonly=True)
        name, version = headers.get("Name"), headers.get("Version")
        if not name or not version:
            continue
        lic = headers.get("License-Expression") or ""
        if not lic:
            lic = (headers.get("License") or "").strip()
            lic = lic if lic and "\n" not in lic and len(lic) < 64 and " " not in lic else ""
        norm = name.lower().replace("_", "-").replace(".", "-")
        out.append(Package(name, version, "pypi", f"pkg:pypi/{quote(norm)}@{_v(version)}", lic, rel))
    return out


def _npm(view: LayerView) -> list[Package]:
    def wanted(d: str, top: str) -> bool:
        parent = os.path.basename(top)
        return parent == "node_modules" or (parent.startswith("@") and os.path.basename(os.path.dirname(top))
                                            == "node_modules")

    out = []
    for rel in view.find_dirs(wanted):
        if os.path.basename(rel).startswith("@") or os.path.basename(rel).startswith("."):
            continue
        data = view.read(f"{rel}/package.json")
        if data is None:
            continue
        try:
            doc = json.loads(data)
        except ValueError:
            continue
        if not isinstance(doc, dict):
            continue
        name, version = doc.get("name"), doc.get("version")
        if not isinstance(name, str) or not isinstance(version, str):
            continue
        lic = doc.get("license") if isinstance(doc.get("license"), str) else ""
        if name.startswith("@"):
            scope, _, short = name.partition("/")
            purl = f"pkg:npm/{quote(scope)}/{quote(short)}@{_v(version)}"
        else:
            purl = f"pkg:npm/{quote(name)}@{_v(version)}"
        out.append(Package(name, version, "npm", purl, lic, rel))
    return out


def scan_packages(layer_dirs: list[str]) -> tuple[list[Package], dict[str, str]]:
    """Every package the layers (bottom first) hold, and the image's os-release fields."""
    view = LayerView(layer_dirs)
    release = os_release(view)
    distro = release.get("ID", "") or "unknown"
    packages = _dpkg(view, distro) + _apk(view, distro) + _python(view) + _npm(view)
    seen: set[str] = set()
    unique = []
    for p in packages:
        if p.purl not in seen:
            seen.add(p.purl)
            unique.append(p)
    return unique, release
