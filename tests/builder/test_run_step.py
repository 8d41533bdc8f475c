"""RUN over a real overlay and the real sandbox, with a busybox root filesystem as the lower dir
(no image store needed): the upper dir holds exactly the command's changes, build mounts leave no
mount points behind, and a failing command is a located BuildError."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from builder.errors import BuildError
from builder.parse import parse
from builder.steps.run import RunRequest, remove_stubs, run_step
from layers.config import ImageConfig
from layers.descriptor import Platform
from tests.trustedtar import extract_trusted


@pytest.fixture(scope="module")
def lower(busybox_tar: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bb") / "rootfs"
    root.mkdir()
    with tarfile.open(busybox_tar) as tar:
        extract_trusted(tar, root, "tar")
    return root


def _run(lower: Path, tmp_path: Path, dockerfile: str, *, binds=(), tmpfs=(), network="none"):
    from runner.rootfs import OverlayMount

    inst = parse("FROM x\n" + dockerfile).instructions[1]
    upper, work, target = tmp_path / "upper", tmp_path / "work", tmp_path / "mnt"
    out = tmp_path / "out.log"
    cfg = ImageConfig.new(Platform.parse("linux/amd64"))
    with OverlayMount([str(lower)], str(upper), str(work), str(target)) as root, open(out, "wb") as log:
        req = RunRequest(instruction=inst, config=cfg, rootfs=root, upper=str(upper),
                         env=(("PATH", "/bin:/usr/bin"), ("GREETING", "hi")), shell=("/bin/sh", "-c"),
                         workdir="/work/dir", user="", network=network, binds=tuple(binds), tmpfs=tuple(tmpfs),
                         container_id=f"bt-{os.getpid()}-{tmp_path.name[-8:]}")
        try:
            stubs = run_step(req, log, log)
        finally:
            log.flush()
    remove_stubs(str(upper), stubs)
    return upper, out.read_text()


def test_run_writes_only_its_changes(lower: Path, tmp_path: Path) -> None:
    upper, log = _run(lower, tmp_path, 'RUN echo "$GREETING" > /greeting && pwd && rm /bin/true || true\n')
    assert (upper / "greeting").read_text() == "hi\n"
    assert "/work/dir" in log
    assert (upper / "work" / "dir").is_dir()  # WORKDIR is created, as Docker does
    assert not (upper / "etc").exists() or not any((upper / "etc").iterdir())


def test_mount_points_do_not_reach_the_layer(lower: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("xyz")
    cache = tmp_path / "cache"
    cache.mkdir()
    upper, log = _run(lower, tmp_path, "RUN cat /run/secrets/s /etc/resolv.conf && touch /cache/c /t/x && "
                      "echo done > /made\n",
                      binds=[(str(secret), "/run/secrets/s", True), (str(cache), "/cache", False),
                             ("/etc/resolv.conf", "/etc/resolv.conf", True)], tmpfs=[("/t", "")])
    assert "xyz" in log and (cache / "c").exists() and (upper / "made").exists()
    for gone in ("run", "cache", "t", "etc"):  # /etc exists below: its stub file and the dir copy go
        assert not (upper / gone).exists(), gone


def test_failing_run_is_located(lower: Path, tmp_path: Path) -> None:
    with pytest.raises(BuildError) as info:
        _run(lower, tmp_path, "RUN echo nope >&2; exit 7\n")
    assert str(info.value).startswith("Dockerfile:2: RUN:") and "status 7" in str(info.value)


def test_stub_cleanup_never_follows_a_planted_symlink(tmp_path: Path) -> None:
    """BuildKit CVE-2024-23652: a RUN that turns a stub's parent into ``-> /`` (or any outside dir)
    must not make the cleanup delete outside the upper dir."""
    from builder.steps.run import remove_stubs

    outside = tmp_path / "outside"
    (outside / "secrets").mkdir(parents=True)
    victim = outside / "secrets" / "s"
    victim.write_text("")  # empty: exactly what a stub looks like
    upper = tmp_path / "upper"
    upper.mkdir()
    os.symlink(str(outside), upper / "run")
    remove_stubs(str(upper), ["/run/secrets/s", "/run/secrets", "/run"])
    assert victim.exists() and os.path.islink(upper / "run")
    (upper / "real" / "d").mkdir(parents=True)
    (upper / "real" / "d" / "stub").write_text("")
    remove_stubs(str(upper), ["/real/d/stub", "/real/d"])
    assert not (upper / "real").exists()
