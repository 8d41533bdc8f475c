"""A build context from a git repository: the one adapter around the ``git`` command.

Which arguments are git URLs follows Docker's CLI (``urlutil.IsGitURL``) plus BuildKit's ``ssh://``:

* ``http://`` or ``https://`` URLs whose path ends in ``.git`` (``https://host/team/app.git``);
* ``git://...``, ``ssh://...`` and scp-like ``git@host:team/app.git``;
* ``github.com/team/app`` (Docker's legacy spelling, fetched over https).

A fragment picks what to check out, as ``docker build`` reads it: ``URL#REF:SUBDIR``. ``REF`` is a
branch, a tag or a commit (default: the remote's HEAD); ``SUBDIR`` (default: the top) is the context
directory inside the checkout; it must stay inside it (symlinks are resolved inside the checkout).

:func:`fetch` makes a fresh repository and fetches just that ref, shallow where the server allows it
(dumb HTTP servers do not: then in full), checks it out into a work tree with no ``.git`` in it (as
BuildKit does by default) and updates submodules. ``git`` runs with no system or global configuration,
no prompts, no standard input, and only the http, https, git and ssh transports (submodules too: no
``file://`` or ``ext::``). Failures are one line: git's first ``fatal:`` line, else its last line.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import subprocess

from layers.value import frozen

from .errors import BuildError, ContextError

__all__ = ["GitSource", "is_git_url", "fetch"]

_HTTP = ("http://", "https://")
_GIT_PREFIXES = ("git://", "ssh://", "git@", "github.com/")
_HTTP_GIT = re.compile(r"\.git(?:#.+)?$")          # Docker's urlPathWithFragmentSuffix
_SCP = re.compile(r"^git@[A-Za-z0-9.\-]+:[^\s]+$")
_REF = re.compile(r"^[A-Za-z0-9._/\-]+$")
_PROTOCOLS = ("http", "https", "git", "ssh")
_TIMEOUT = 1800.0


def is_git_url(text: str) -> bool:
    """Whether ``docker build`` would treat ``text`` as a git repository (see the module docstring)."""
    if text.startswith(_HTTP):
        return bool(_HTTP_GIT.search(text))
    return text.startswith(_GIT_PREFIXES)


@frozen
class GitSource:
    """A parsed git context: the repository ``url`` git fetches from, the ``ref`` to check out (``""``:
    the remote's HEAD) and the context ``subdir`` inside the checkout (``""``: the top)."""

    url: str
    ref: str = ""
    subdir: str = ""

    @classmethod
    def parse(cls, text: str) -> "GitSource":
        """``URL[#REF[:SUBDIR]]`` -> a GitSource; :class:`ContextError` naming what is wrong."""
        if not is_git_url(text):
            raise ContextError(f"{text!r}: not a git URL (https://HOST/PATH.git, git://, ssh://, git@HOST:PATH)")
        if any(c.isspace() or ord(c) < 32 for c in text):
            raise ContextError(f"{text!r}: a git URL cannot contain spaces or control characters")
        url, _, fragment = text.partition("#")
        ref, _, subdir = fragment.partition(":")
        if url.startswith("github.com/"):
            url = "https://" + url
        if url.startswith("git@") and not _SCP.match(url):
            raise ContextError(f"{text!r}: expected git@HOST:PATH")
        if url.startswith(("git://", "ssh://", *_HTTP)) and not url.split("://", 1)[1].split("/", 1)[0]:
            raise ContextError(f"{text!r}: the git URL names no host")
        if ref and (not _REF.match(ref) or ref.startswith(("-", "/")) or ".." in ref or ref.endswith((".", "/", ".lock"))):
            raise ContextError(f"{text!r}: {ref!r} is not a valid git ref")
        if subdir:
            clean = posixpath.normpath(subdir)
            if subdir.startswith("/") or clean == ".." or clean.startswith("../"):
                raise ContextError(f"{text!r}: the subdirectory {subdir!r} must be relative and inside the repository")
            subdir = "" if clean == "." else clean
        return cls(url, ref, subdir)


def fetch(source: GitSource, workdir: str) -> str:
    """Check ``source`` out under the empty directory ``workdir``; the context directory.

    :class:`BuildError` when git is missing, the fetch or checkout fails, or ``subdir`` is not a
    directory of the checkout."""
    if shutil.which("git") is None:
        raise BuildError("git is not installed: a git URL context needs it (apt-get install git)")
    git_dir, tree = os.path.join(workdir, "git"), os.path.join(workdir, "tree")
    os.mkdir(tree, 0o755)
    _git(["init", "-q", "--bare", git_dir], "init")
    commit = _fetch(git_dir, source)
    work = ["--git-dir", git_dir, "--work-tree", tree]
    _git([*work, "checkout", "-q", "-f", commit, "--"], f"checkout {source.ref or 'HEAD'}", cwd=tree)
    if os.path.isfile(os.path.join(tree, ".gitmodules")):
        _git([*work, "submodule", "update", "-q", "--init", "--recursive", "--depth=1"], "submodule update", cwd=tree)
    return _context_dir(tree, source)


def _fetch(git_dir: str, source: GitSource) -> str:
    """Fetch ``source.ref``; what to check out. Shallow first; then in full (dumb HTTP has no shallow
    fetch); then, for a commit no ref advertises, every branch and tag."""
    ref = source.ref or "HEAD"
    base = ["--git-dir", git_dir, "fetch", "-q", "--no-tags"]
    try:
        _git([*base, "--depth=1", source.url, "--", ref], f"fetch {ref}")
        return "FETCH_HEAD"
    except BuildError:
        pass
    try:
        _git([*base, source.url, "--", ref], f"fetch {ref}")
        return "FETCH_HEAD"
    except BuildError as exc:
        if not re.fullmatch(r"[0-9a-f]{7,64}", ref):
            raise exc from None
    _git([*base, source.url, "--", "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"], f"fetch {ref}")
    return ref


def _context_dir(tree: str, source: GitSource) -> str:
    if not source.subdir:
        return tree
    from runner.rootfs import resolve_in_root

    path = resolve_in_root(tree, source.subdir)
    if not os.path.isdir(path):
        raise BuildError(f"{source.url}: {source.subdir!r} is not a directory of {source.ref or 'HEAD'}")
    return path


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_TERMINAL_PROMPT="0", GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull,
               GIT_PROTOCOL_FROM_USER="0", LC_ALL="C")
    return env


def _git(args: list[str], what: str, cwd: str | None = None) -> None:
    config = ["-c", "protocol.allow=never", "-c", "advice.detachedHead=false", "-c", "core.hooksPath=/dev/null"]
    for proto in _PROTOCOLS:
        config += ["-c", f"protocol.{proto}.allow=always"]
    try:
        proc = subprocess.run(["git", *config, *args], cwd=cwd, env=_env(), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise BuildError(f"git {what}: no answer in {_TIMEOUT:.0f} s") from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in proc.stderr.decode(errors="replace").splitlines() if ln.strip()]
        fatal = [ln for ln in lines if ln.startswith("fatal:")]
        line = fatal[0] if fatal else lines[-1] if lines else f"exit status {proc.returncode}"
        raise BuildError(f"git {what}: {line}")
