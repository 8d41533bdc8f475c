"""Progress through the real ``pybuild pull``/``push``: bars on a terminal, plain lines in a pipe, nothing with -q."""

from __future__ import annotations

import os
import pty
import select
import subprocess

from .images import make_image
from .test_pull_push import _env, _push_library, _store_image


def _on_a_terminal(pybuild, args: list[str], env: dict) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal (stdout a pipe); (exit code, stdout, terminal output)."""
    from tests.conftest import pybuild_exe

    master, slave = pty.openpty()
    proc = subprocess.Popen([pybuild_exe(), "--root", str(pybuild.root), "--state-dir", str(pybuild.state), *args],
                            stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL,
                            env={**os.environ, **env})
    os.close(slave)
    seen = bytearray()
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            proc.kill()
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the other end closed
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    out = proc.stdout.read().decode()
    proc.stdout.close()
    return proc.wait(30), out, seen.decode(errors="replace")


def test_pull_progress_on_terminal_pipe_and_quiet(open_registry, pybuild, tmp_path):
    env = _env(tmp_path)
    manifest, blobs = make_image((3_000_000, 200_000), tag="progress")
    _push_library(open_registry, "progress/app", "1", manifest, blobs)
    ref = f"{open_registry.host}/progress/app:1"

    code, out, tty = _on_a_terminal(pybuild, ["pull", ref], env)
    assert code == 0, tty
    assert out == ref + "\n"
    assert "\x1b[" in tty and "Downloading [" in tty  # bars redrawn in place
    for layer in manifest.layers:
        assert f"{layer.digest.short}: Pull complete" in tty

    (tmp_path / "r2").mkdir(mode=0o700)
    (tmp_path / "s2").mkdir(mode=0o700)
    other = type(pybuild)(tmp_path / "r2", tmp_path / "s2")
    plain = other("pull", ref, env=env)  # stderr is a pipe here: one line per event
    assert plain.returncode == 0, plain.stderr
    assert "\x1b[" not in plain.stderr
    for layer in manifest.layers:
        assert f"{layer.digest.short}: Downloading {layer.size} bytes\n" in plain.stderr
        assert f"{layer.digest.short}: Pull complete\n" in plain.stderr
    again = other("pull", ref, env=env)
    assert f"{manifest.layers[0].digest.short}: Already exists" in again.stderr

    quiet = pybuild("pull", "-q", ref, env=env)
    assert quiet.returncode == 0 and quiet.stdout == ref + "\n" and quiet.stderr == ""


def test_push_progress_on_terminal_and_quiet(open_registry, pybuild, tmp_path):
    env = _env(tmp_path)
    manifest = _store_image(pybuild, "prog:1", (2_000_000,))
    code, out, tty = _on_a_terminal(pybuild, ["push", "prog:1", f"{open_registry.host}/progress/push:1"], env)
    assert code == 0, tty
    assert out.strip() == str(manifest.digest)
    assert "\x1b[" in tty and "Pushing [" in tty and f"{manifest.layers[0].digest.short}: Pushed" in tty
    quiet = pybuild("push", "-q", "prog:1", f"{open_registry.host}/progress/push:2", env=env)
    assert quiet.returncode == 0 and quiet.stdout.strip() == str(manifest.digest) and quiet.stderr == ""
