#!/usr/bin/env python3
"""Replay Docker's CLI reference corpus (``testdata/docker-cli-corpus/corpus.json``) through
pybuild and podman, and print how many invocations each accepts.

An invocation is accepted when its exit code is the documented one and its output has the
documented shape (a regex, one id per line, JSON keys, a tar). Each tool gets its own private
store in a temp dir (pybuild ``--root/--state-dir``, podman ``--root/--runroot
--storage-driver vfs``) with the same busybox rootfs imported locally; nothing is pulled.
``tests/cli/test_docker_corpus.py`` replays the same file through pybuild with this module's
:func:`replay`. Usage: ``bench/cli_corpus.py [pybuild|podman]...`` (default both). Needs root.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "testdata" / "docker-cli-corpus" / "corpus.json"
DOCKERFILE = (
    "FROM busybox\n"
    "RUN mkdir -p /www && echo hello-from-web1 > /www/index.html\n"
    "EXPOSE 80\n"
    'CMD ["httpd", "-f", "-p", "80", "-h", "/www"]\n'
)


@dataclass(frozen=True, slots=True)
class Entry:
    """One invocation: ``cmd`` (``docker ...`` with ``@VAR@`` placeholders) and what to check."""
    cmd: str
    ref: str = ""
    setup: bool = False
    exit: int = 0
    out: str | None = None
    err: str | None = None
    lines: str | None = None
    json: tuple[str, ...] = ()
    jsonl: tuple[str, ...] = ()
    tar: str | None = None
    capture: str | None = None

    @property
    def id(self) -> str:
        return self.cmd.removeprefix("docker ")


def load_corpus(path: Path = CORPUS) -> list[Entry]:
    raw = json.loads(path.read_text())
    return [Entry(**{k: tuple(v) if isinstance(v, list) else v for k, v in e.items()}) for e in raw["entries"]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Session:
    """A tool's argv prefix (replacing ``docker``) and the placeholders' values."""
    prefix: list[str]
    vars: dict[str, str] = field(default_factory=dict)
    timeout: float = 120
    env: dict[str, str] | None = None

    def sub(self, text: str | None) -> str | None:
        if text is None:
            return None
        for k, v in self.vars.items():
            text = text.replace(f"@{k}@", v)
        return text

    def expand(self, entry: Entry) -> Entry:
        """``entry`` with the placeholders in its expected output replaced."""
        return replace(entry, out=self.sub(entry.out), err=self.sub(entry.err), lines=self.sub(entry.lines))

    def argv(self, cmd: str) -> list[str]:
        words = shlex.split(self.sub(cmd))
        assert words[0] == "docker", cmd
        return [*self.prefix, *words[1:]]


def check(entry: Entry, rc: int, out: bytes, err: bytes) -> str | None:
    """None when ``(rc, out, err)`` is what ``entry`` documents, else why not."""
    if rc != entry.exit:
        return f"exit {rc} (want {entry.exit}): {err.decode(errors='replace').strip()[:200]}"
    if entry.tar is not None:
        try:
            with tarfile.open(fileobj=io.BytesIO(out)) as tar:
                names = [n.lstrip("./") for n in tar.getnames()]
        except tarfile.TarError as e:
            return f"not a tar: {e}"
        return None if entry.tar in names else f"{entry.tar} not in the tar ({len(names)} members)"
    text = out.decode(errors="replace")
    if entry.out is not None and not re.search(entry.out, text, re.M):
        return f"stdout does not match {entry.out!r}: {text[:300]!r}"
    if entry.err is not None and not re.search(entry.err, err.decode(errors="replace"), re.M):
        return f"stderr does not match {entry.err!r}: {err[:300]!r}"
    if entry.lines is not None:
        got = [ln for ln in text.splitlines() if ln.strip()]
        bad = [ln for ln in got if not re.fullmatch(entry.lines, ln)]
        if not got or bad:
            return f"lines do not match {entry.lines!r}: {text[:300]!r}"
    docs = []
    if entry.json:
        try:
            doc = json.loads(text)
        except ValueError:
            return f"not JSON: {text[:300]!r}"
        docs = [doc[0] if isinstance(doc, list) and doc else doc]
    if entry.jsonl:
        try:
            docs = [json.loads(ln) for ln in text.splitlines() if ln.strip()]
        except ValueError:
            return f"not JSON lines: {text[:300]!r}"
        if not docs:
            return "no JSON lines"
    for doc in docs:
        missing = [k for k in entry.json or entry.jsonl if not isinstance(doc, dict) or k not in doc]
        if missing:
            return f"JSON lacks {missing}: {text[:300]!r}"
    return None


def run_entry(session: Session, entry: Entry) -> str | None:
    """Run one entry; None when accepted, else the reason (captures ``entry.capture``)."""
    try:
        p = subprocess.run(session.argv(entry.cmd), capture_output=True, timeout=session.timeout,
                           stdin=subprocess.DEVNULL, env=session.env)
    except subprocess.TimeoutExpired:
        return f"timed out after {session.timeout}s"
    why = check(session.expand(entry), p.returncode, p.stdout, p.stderr)
    if why is None and entry.capture:
        session.vars[entry.capture] = p.stdout.decode().strip().splitlines()[-1]
    return why


def prepare(tmp: Path, busybox_tar: Path) -> dict[str, str]:
    """The build context and host files the corpus uses; the placeholders' values."""
    ctx = tmp / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (tmp / "hostfile.txt").write_text("from the host\n")
    return {"TMP": str(tmp), "CTX": str(ctx), "TAR": str(busybox_tar), "PORT": str(free_port()),
            "PORT2": str(free_port())}


def replay(session: Session, entries: list[Entry]) -> list[tuple[Entry, str | None]]:
    return [(e, run_entry(session, e)) for e in entries]


def _busybox_tar(tmp: Path) -> Path:
    out = tmp / "busybox-rootfs.tar"
    busybox = shutil.which("busybox") or "/bin/busybox"
    subprocess.run([sys.executable, str(ROOT / "testdata" / "busybox" / "make_rootfs.py"), str(out), busybox],
                   check=True)
    return out


def _cleanup(session: Session) -> None:
    ids = subprocess.run(session.argv("docker ps -a -q"), capture_output=True, text=True,
                         env=session.env).stdout.split()
    for cid in ids:
        subprocess.run(session.argv(f"docker rm -f {cid}"), capture_output=True, timeout=60, env=session.env)
    for net in ("my-net",):
        subprocess.run(session.argv(f"docker network rm {net}"), capture_output=True, env=session.env)


def _podman_env(work: Path) -> dict[str, str]:
    """Podman raises RLIMIT_NOFILE and RLIMIT_NPROC to its own defaults, which this (nested) host
    refuses ("error setting rlimit type 7: operation not permitted"): a private containers.conf
    gives it limits runc may set."""
    conf = work / "containers.conf"
    conf.write_text('[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n')
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


def main(argv: list[str]) -> int:
    tools = argv or ["pybuild", "podman"]
    entries = load_corpus()
    counted = [e for e in entries if not e.setup]
    results: dict[str, list] = {}
    with tempfile.TemporaryDirectory(prefix="cli-corpus-") as t:
        tmp = Path(t)
        tar = _busybox_tar(tmp)
        for tool in tools:
            work = tmp / tool
            work.mkdir()
            if tool == "pybuild":
                prefix = [str(Path(sys.executable).with_name("pybuild")), "--root", str(work / "root"),
                          "--state-dir", str(work / "state")]
            else:
                prefix = ["podman", "--root", str(work / "root"), "--runroot", str(work / "run"),
                          "--storage-driver", "vfs"]
            session = Session(prefix, prepare(work, tar), env=_podman_env(work) if tool == "podman" else None)
            try:
                results[tool] = replay(session, entries)
            finally:
                _cleanup(session)
    for tool, res in results.items():
        ok = sum(1 for e, why in res if why is None and not e.setup)
        print(f"{tool}: {ok}/{len(counted)} invocations accepted")
        for e, why in res:
            if why is not None:
                print(f"  FAIL{' (setup)' if e.setup else ''} {e.id}\n       {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
