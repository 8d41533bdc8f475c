"""Where a build's context and Dockerfile come from, as ``docker build`` reads its arguments.

:func:`open_context` turns ``pybuild build``'s CONTEXT and ``-f`` into a :class:`ContextSource`:

* ``-``: standard input holds a tar of the context (plain, gzip or zstd), unpacked as it arrives
  through the store's safe extraction (:func:`layers.archive.extract`: no path leaves the directory,
  no device is trusted, the same hostile-tar rules as a layer); or, when it is not a tar, a
  Dockerfile alone and an empty context (``pybuild build - < Dockerfile``);
* an existing directory: that directory (checked first, as Docker does);
* a git URL (:mod:`builder.gitcontext`): the checkout of ``URL#REF:SUBDIR``;
* any other URL (a remote tarball) is refused; anything else is "not a directory".

``-f -`` reads the Dockerfile from standard input (not with a ``-`` context). A relative ``-f`` names a
file inside a context pybuild unpacked or fetched, and is taken as it is for a directory context.
What pybuild unpacks or fetches goes under ``workdir``, which the caller owns and removes.
"""

from __future__ import annotations

import os
from typing import BinaryIO

from layers.value import frozen

from .errors import ContextError

__all__ = ["ContextSource", "open_context"]

_GZIP, _ZSTD = b"\x1f\x8b", b"\x28\xb5\x2f\xfd"


@frozen
class ContextSource:
    """``context_dir`` to build from; the Dockerfile as a path (``dockerfile``, absolute) or as bytes
    (``dockerfile_text``), or neither (the context's own ``Dockerfile``)."""

    context_dir: str
    dockerfile: str | None = None
    dockerfile_text: bytes | None = None


def open_context(context: str, dockerfile: str | None, stdin: BinaryIO, workdir: str) -> ContextSource:
    """The context and Dockerfile ``pybuild build CONTEXT [-f DOCKERFILE]`` names (module docstring).

    Errors: :class:`ContextError` for an argument that names no context, a malformed git URL or both
    read from stdin; :class:`layers.errors.LayerError` for a hostile or malformed tar;
    :class:`BuildError` when a git fetch fails."""
    text = None
    fetched = True
    if context == "-":
        if dockerfile == "-":
            raise ContextError("context and Dockerfile cannot both come from stdin")
        context_dir = os.path.join(workdir, "stdin")
        os.mkdir(context_dir, 0o755)
        head = _read_head(stdin, 512)
        if _looks_like_tar(head):
            _unpack(_Prefixed(head, stdin), head, context_dir)  # streamed, never all in memory
        else:
            text = head + stdin.read()  # `pybuild build - < Dockerfile`: no context
    elif os.path.isdir(context):
        context_dir, fetched = context, False
    else:
        context_dir = _remote(context, workdir)
    if dockerfile == "-":
        return ContextSource(os.path.abspath(context_dir), None, stdin.read())
    if dockerfile is not None and fetched and not os.path.isabs(dockerfile):
        dockerfile = os.path.join(context_dir, dockerfile)
    return ContextSource(os.path.abspath(context_dir), os.path.abspath(dockerfile) if dockerfile else None, text)


def _remote(context: str, workdir: str) -> str:
    from . import gitcontext

    if gitcontext.is_git_url(context):
        source = gitcontext.GitSource.parse(context)
        git_work = os.path.join(workdir, "git")
        os.mkdir(git_work, 0o700)
        return gitcontext.fetch(source, git_work)
    if context.startswith(("http://", "https://")):
        raise ContextError(f"{context}: a URL context must be a git repository (its path ending in .git); "
                           "remote tarballs are not supported")
    raise ContextError(f"{context}: not a directory")


def _looks_like_tar(data: bytes) -> bool:
    if data[:2] == _GZIP or data[:4] == _ZSTD:
        return True
    return len(data) >= 262 and data[257:262] == b"ustar"


def _read_head(stream: BinaryIO, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = stream.read(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


class _Prefixed:
    """``head`` (already read to sniff the format) followed by the rest of ``stream``."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head, self._stream = head, stream

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n is None or n < 0:
                data, self._head = self._head + self._stream.read(), b""
                return data
            data, self._head = self._head[:n], self._head[n:]
            return data
        return self._stream.read(n)


def _unpack(stream, head: bytes, dest: str) -> None:
    from layers import archive

    compression = "gzip" if head[:2] == _GZIP else "zstd" if head[:4] == _ZSTD else None
    archive.extract(stream, dest, compression=compression, mode="apply", what="build context")
