"""The build context: a directory (or a tar from stdin unpacked into a temp dir), filtered by the
``.dockerignore`` rules, with the selection rules of COPY/ADD sources and content digests for cache keys.

A file's digest covers its relative path, type, permission bits and content (or link target), so a
cache key changes when any byte COPY would copy changes. Content hashes are remembered per
(device, inode, size, mtime, ctime) in a JSON file when ``hash_cache_path`` is given, so a no-change
rebuild of a large context does not read it again.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import stat

from layers.value import frozen

from .dockerignore import IgnoreRules, compile_pattern

__all__ = ["BuildContext", "Entry", "has_wildcards"]

_WILDCARDS = set("*?[")


def has_wildcards(path: str) -> bool:
    return any(c in _WILDCARDS for c in path)


@frozen
class Entry:
    """One context path selected by a COPY source: ``path`` relative to the context root, ``target``
    relative to the destination (``""`` means the destination itself). ``top`` marks a path the source
    named itself (not one found inside a named directory): ADD unpacks only those archives."""

    path: str
    target: str
    top: bool = False


class BuildContext:
    """A context directory and its ignore rules. Not a value: it caches the tree listing and hashes."""

    def __init__(self, root: str, ignore: IgnoreRules | None = None, hash_cache_path: str | None = None) -> None:
        self.root = os.path.realpath(root)
        self.ignore = ignore or IgnoreRules()
        self._tree: dict[str, os.stat_result] | None = None
        self._hash_cache_path = hash_cache_path
        self._hashes: dict[str, str] | None = None
        self._dirty = False

    # -- listing -------------------------------------------------------------------------------
    def tree(self) -> dict[str, os.stat_result]:
        """Every included path (relative, ``/``-separated) -> its lstat, parents before children."""
        if self._tree is None:
            tree: dict[str, os.stat_result] = {}
            walk_excluded = self.ignore.may_contain_included("")
            for dirpath, dirnames, filenames in os.walk(self.root):
                rel_dir = os.path.relpath(dirpath, self.root)
                rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/")
                keep = []
                for name in sorted(dirnames):
                    rel = f"{rel_dir}/{name}" if rel_dir else name
                    st = os.lstat(os.path.join(dirpath, name))
                    if not self.ignore.excluded(rel):
                        tree[rel] = st
                        keep.append(name)
                    elif walk_excluded:
                        keep.append(name)
                dirnames[:] = keep
                for name in sorted(filenames):
                    rel = f"{rel_dir}/{name}" if rel_dir else name
                    if not self.ignore.excluded(rel):
                        tree[rel] = os.lstat(os.path.join(dirpath, name))
            self._tree = tree
        return self._tree

    def abspath(self, rel: str) -> str:
        return os.path.join(self.root, rel) if rel else self.root

    # -- selection -----------------------------------------------------------------------------
    def select(self, source: str, excludes: tuple[str, ...] = ()) -> list[Entry]:
        """Entries one COPY source names; raises FileNotFoundError when it names nothing included.

        ``source`` is already expanded and cleaned (no ``..`` escapes). A directory contributes its
        contents, as Docker copies them; wildcards match per path component."""
        rel = posixpath.normpath("/" + source).lstrip("/")
        tree = self.tree()
        if has_wildcards(rel):
            rx = compile_pattern(rel)
            roots = [p for p in tree if rx.fullmatch(p)]
            if not roots:
                raise FileNotFoundError(source)
        else:
            if rel and rel not in tree:
                raise FileNotFoundError(source)
            roots = [rel]
        excl = [compile_pattern(posixpath.normpath(e).lstrip("/")) for e in excludes]
        out: list[Entry] = []
        multiple = has_wildcards(rel)
        for named in roots:
            if any(r.fullmatch(named) for r in excl):
                continue
            root = self.follow(named)
            st = tree.get(root) if root else os.lstat(self.root)
            if stat.S_ISDIR(st.st_mode):
                prefix = root + "/" if root else ""
                for p in tree:
                    if p.startswith(prefix) and p != root and not any(r.fullmatch(p) for r in excl):
                        out.append(Entry(p, p[len(prefix):]))
            else:
                out.append(Entry(root, posixpath.basename(named) if multiple else "", top=True))
        return out

    def follow(self, rel: str) -> str:
        """A path a COPY source names, with a symlink followed as Docker does, but only inside the
        context and only to something the context includes; else the link itself (copied as a link,
        never read through: ``link -> /etc/shadow`` stays a link)."""
        if not rel or not stat.S_ISLNK(self.tree()[rel].st_mode):
            return rel
        from runner.rootfs import resolve_in_root

        resolved = os.path.relpath(resolve_in_root(self.root, rel), self.root).replace(os.sep, "/")
        if resolved == ".":
            return ""
        return resolved if resolved in self.tree() else rel

    # -- digests -------------------------------------------------------------------------------
    def digest(self, entries: list[Entry]) -> str:
        """sha256 over (target, type, mode, content digest or link target) of every entry."""
        h = hashlib.sha256()
        tree = self.tree()
        for e in sorted(entries, key=lambda e: (e.target, e.path)):
            st = tree.get(e.path) or os.lstat(self.abspath(e.path))
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISREG(st.st_mode):
                body = self.file_digest(e.path, st)
                kind = "f"
            elif stat.S_ISLNK(st.st_mode):
                body, kind = os.readlink(self.abspath(e.path)), "l"
            elif stat.S_ISDIR(st.st_mode):
                body, kind = "", "d"
            else:
                body, kind = "", "o"
            h.update(json.dumps([e.target, kind, mode, body]).encode() + b"\n")
        return h.hexdigest()

    def file_digest(self, rel: str, st: os.stat_result) -> str:
        hashes = self._load_hashes()
        key = f"{rel}\0{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"
        cached = hashes.get(key)
        if cached:
            return cached
        h = hashlib.sha256()
        with open(self.abspath(rel), "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        hashes[key] = h.hexdigest()
        self._dirty = True
        return hashes[key]

    def _load_hashes(self) -> dict[str, str]:
        if self._hashes is None:
            self._hashes = {}
            if self._hash_cache_path:
                try:
                    with open(self._hash_cache_path, encoding="utf-8") as f:
                        data = json.load(f)
                    if isinstance(data, dict) and data.get("root") == self.root:
                        self._hashes = {k: v for k, v in data.get("hashes", {}).items() if isinstance(v, str)}
                except (OSError, ValueError):
                    self._hashes = {}
        return self._hashes

    def save_hashes(self) -> None:
        """Persist the content-hash memo atomically (only hashes of files still present are kept)."""
        if not (self._hash_cache_path and self._dirty and self._hashes is not None):
            return
        from layers.atomic import write_atomic

        live = {k: v for k, v in self._hashes.items() if k.split("\0", 1)[0] in self.tree()}
        os.makedirs(os.path.dirname(self._hash_cache_path), mode=0o700, exist_ok=True)
        write_atomic(self._hash_cache_path, json.dumps({"root": self.root, "hashes": live}).encode())
        self._dirty = False
