"""Where ``pybuild build`` takes its context from, through the real command: a git repository served on
loopback (``git daemon`` for git://, Python's http.server for dumb-HTTP https-style URLs), a tar on
stdin (plain, and hostile ones refused as a layer's would be), and what Docker calls a git URL."""

from __future__ import annotations

import functools
import http.server
import io
import os
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import pytest

from builder.errors import ContextError
from builder.gitcontext import GitSource, is_git_url
from tests.registry.servers import free_port

GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}


def _git(*args: str, cwd: Path | None = None) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def _commit(repo: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    _git("add", "-A", cwd=repo)
    _git("commit", "-q", "-m", message, cwd=repo)
    return _git("rev-parse", "HEAD", cwd=repo)


class Repos:
    """Bare repositories under ``base`` served by ``git daemon`` (git://) and a dumb HTTP server."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.commits: dict[str, str] = {}


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    base = tmp_path_factory.mktemp("git-served")
    work = tmp_path_factory.mktemp("git-work")
    served = Repos(base)
    # a library repository, used as a submodule
    lib = work / "lib"
    _git("init", "-q", "-b", "main", str(lib))
    _commit(lib, {"lib.txt": "from the submodule\n"}, "lib")
    _git("clone", "-q", "--bare", str(lib), str(base / "lib.git"))

    src = work / "app"
    _git("init", "-q", "-b", "main", str(src))
    top = "FROM busybox\nCOPY . /ctx/\n"
    served.commits["one"] = _commit(src, {"Dockerfile": top, "app/Dockerfile": "FROM busybox\nCOPY msg.txt /msg\n",
                                          "app/msg.txt": "one\n"}, "one")
    _git("tag", "-a", "v1", "-m", "v1", cwd=src)
    os.symlink("/etc", src / "etc-link")
    served.commits["two"] = _commit(src, {"app/msg.txt": "two\n"}, "two")
    _git("checkout", "-q", "-b", "feature", cwd=src)
    _commit(src, {"app/msg.txt": "feature\n"}, "feature")
    _git("checkout", "-q", "main", cwd=src)
    _git("clone", "-q", "--bare", str(src), str(base / "app.git"))

    port = free_port()
    daemon = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={base}",
                               "--listen=127.0.0.1", f"--port={port}", str(base)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    served.git = f"git://127.0.0.1:{port}"
    # the submodule is added once the daemon serves lib.git; its URL is the daemon's
    _wait_port(port, daemon)
    _git("-c", "protocol.allow=always", "submodule", "add", "-q", f"{served.git}/lib.git", "vendor/lib", cwd=src)
    _git("commit", "-q", "-m", "submodule", cwd=src)
    _git("checkout", "-q", "-b", "with-file-submodule", cwd=src)
    _git("config", "-f", ".gitmodules", "submodule.vendor/lib.url", f"file://{base}/lib.git", cwd=src)
    _git("commit", "-q", "-am", "file submodule", cwd=src)
    _git("checkout", "-q", "main", cwd=src)
    _git("push", "-q", "--all", str(base / "app.git"), cwd=src)
    _git("update-server-info", cwd=base / "app.git")  # what a dumb HTTP client reads

    handler = functools.partial(_QuietHandler, directory=str(base))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    served.http = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield served
    finally:
        httpd.shutdown()
        httpd.server_close()
        daemon.terminate()
        daemon.wait(timeout=10)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def _wait_port(port: int, proc: subprocess.Popen) -> None:
    import socket

    for _ in range(100):
        if proc.poll() is not None:
            raise AssertionError("git daemon exited")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError("git daemon does not listen")


def _cat(pb, image: str, path: str) -> str:
    return pb("run", "--rm", "--network", "none", image, "cat", path, check=True).stdout


def test_git_contexts_over_git_protocol(bpybuild, repos: Repos) -> None:
    """The remote's HEAD with no fragment (no .git in the context, submodules checked out); a branch,
    an annotated tag and a commit with a subdirectory."""
    bpybuild("build", "-q", "-t", "g:head", f"{repos.git}/app.git", check=True)
    listing = bpybuild("run", "--rm", "--network", "none", "g:head", "sh", "-c",
                       "cd /ctx && ls -A && cat app/msg.txt vendor/lib/lib.txt", check=True).stdout.split("\n")
    assert ".git" not in listing and "Dockerfile" in listing and "app" in listing
    assert listing[-3:] == ["two", "from the submodule", ""]
    for ref, want in (("feature", "feature\n"), ("v1", "one\n"), (repos.commits["one"], "one\n"),
                      (repos.commits["two"][:12], "two\n")):
        bpybuild("build", "-q", "-t", "g:ref", f"{repos.git}/app.git#{ref}:app", check=True)
        assert _cat(bpybuild, "g:ref", "/msg") == want, ref


def test_git_context_over_dumb_http(bpybuild, repos: Repos) -> None:
    """An http URL ending in .git on a server that cannot fetch shallow: fetched in full, then checked out."""
    bpybuild("build", "-q", "-t", "h:1", f"{repos.http}/app.git#v1:app", check=True)
    assert _cat(bpybuild, "h:1", "/msg") == "one\n"
    # -f names a file inside the fetched context
    proc = bpybuild("build", "-q", "-f", "Dockerfile", "-t", "h:2", f"{repos.http}/app.git#main:app")
    assert proc.returncode == 0, proc.stderr
    assert _cat(bpybuild, "h:2", "/msg") == "two\n"


@pytest.mark.parametrize("fragment, message", [
    ("#no-such-branch", "git fetch no-such-branch: "),
    ("#main:missing", "'missing' is not a directory of main"),
    ("#main:etc-link", "'etc-link' is not a directory of main"),      # a symlink out of the checkout
    ("#with-file-submodule", "git submodule update: "),               # file:// is not an allowed transport
    ("#main:../up", "must be relative and inside the repository"),
    ("#-x", "is not a valid git ref"),
])
def test_git_context_errors_are_one_line(bpybuild, repos: Repos, fragment: str, message: str) -> None:
    proc = bpybuild("build", "-q", "-t", "bad:1", f"{repos.git}/app.git{fragment}")
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pybuild: ") and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_file_submodule_is_refused_for_the_transport(bpybuild, repos: Repos) -> None:
    proc = bpybuild("build", "-q", "-t", "bad:1", f"{repos.git}/app.git#with-file-submodule")
    assert "transport 'file' not allowed" in proc.stderr, proc.stderr


def test_other_urls_and_missing_paths(bpybuild, tmp_path: Path) -> None:
    proc = bpybuild("build", "-q", "http://127.0.0.1:9/context.tar.gz")
    assert proc.returncode == 2 and "remote tarballs are not supported" in proc.stderr
    proc = bpybuild("build", "-q", str(tmp_path / "absent"))
    assert proc.returncode == 2 and proc.stderr.strip() == f"pybuild: {tmp_path / 'absent'}: not a directory"


# -- what Docker calls a git URL (moby urlutil.IsGitURL, plus BuildKit's ssh://) ---------------------

@pytest.mark.parametrize("text, expected", [
    ("https://github.com/docker/docker.git", True),
    ("https://github.com/docker/docker.git#branch:dir", True),
    ("http://host/x.git#v1", True),
    ("git://github.com/docker/docker", True),
    ("git@github.com:docker/docker.git", True),
    ("github.com/docker/docker", True),
    ("ssh://git@host/team/app.git", True),
    ("https://github.com/docker/docker", False),        # an http URL must end in .git (before the fragment)
    ("https://host/ctx.tar.gz", False),
    ("file:///srv/app.git", False),
    ("./app.git", False),
    ("-", False),
])
def test_is_git_url_follows_docker(text: str, expected: bool) -> None:
    assert is_git_url(text) is expected


def test_git_source_parse() -> None:
    assert GitSource.parse("https://h/a.git") == GitSource("https://h/a.git")
    assert GitSource.parse("https://h/a.git#v1.0:sub/dir/") == GitSource("https://h/a.git", "v1.0", "sub/dir")
    assert GitSource.parse("git@h:team/a.git#:docs") == GitSource("git@h:team/a.git", "", "docs")
    assert GitSource.parse("github.com/team/a#main") == GitSource("https://github.com/team/a", "main")
    for bad in ("https://h/a.git#a..b", "https://h/a.git#x:/abs", "git@h", "git:///a.git", "https://h/a b.git",
                "https://h/a.git#main:a/../../b", "https://h/ctx.tar"):
        with pytest.raises(ContextError):
            GitSource.parse(bad)


# -- a tar on stdin: the hostile-tar rules of a layer -------------------------------------------------

def _tar(entries) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _link(name: str, target: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info, None


def test_plain_tar_on_stdin(bpybuild) -> None:
    data = _tar([_file("Dockerfile", b"FROM busybox\nCOPY hi /hi\n"), _file("hi", b"plain tar\n")])
    bpybuild("build", "-q", "-t", "plain:1", "-", input=data, text=False, check=True)
    assert _cat(bpybuild, "plain:1", "/hi") == "plain tar\n"


def test_tar_on_stdin_escaping_by_dotdot_is_refused(bpybuild) -> None:
    data = _tar([_file("Dockerfile", b"FROM busybox\n"), _file("../escaped", b"x")])
    proc = bpybuild("build", "-q", "-t", "hostile:1", "-", input=data, text=False)
    err = proc.stderr.decode()
    assert proc.returncode != 0 and err.startswith("pybuild: build context: ") and len(err.splitlines()) == 1, err
    assert "Traceback" not in err


def test_tar_on_stdin_paths_stay_inside_the_context(bpybuild, tmp_path: Path) -> None:
    """A symlink to an outside directory, then a file through it, and an absolute name: both resolve
    inside the context (as a layer's entries do), never outside."""
    outside = tmp_path / "outside"
    outside.mkdir()
    data = _tar([_file("Dockerfile", b"FROM busybox\nCOPY . /ctx/\n"), _link("out", str(outside)),
                 _file("out/through-link", b"x"), _file("/abs/absolute", b"y")])
    proc = bpybuild("build", "-q", "-t", "inside:1", "-", input=data, text=False)
    assert proc.returncode == 0, proc.stderr
    assert list(outside.iterdir()) == [] and not Path("/abs/absolute").exists()
    found = bpybuild("run", "--rm", "--network", "none", "inside:1", "find", "/ctx", "-type", "f", check=True).stdout
    assert sorted(found.split()) == ["/ctx/Dockerfile", "/ctx/abs/absolute", f"/ctx{outside}/through-link"]
