"""The foreground ``run`` path (``runner.foreground.run_foreground``) over a stand-in image store.

The stand-in has just the ``layers.store.Store`` surface the path uses (``images.resolve/load``,
``snapshots.lowerdirs``) over the extracted busybox rootfs, so the container record, network
``none`` attachment, overlay, exit code and ``--rm`` are covered whether or not the store is
installed; ``test_cli_run.py`` covers the same through the ``pybuild`` command and a real store.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from layers.config import ImageConfig
from runner.foreground import run_foreground
from runner.options import RunOptions
from runner.state import ContainerStore


@dataclass(frozen=True)
class _Manifest:
    digest: str


@dataclass(frozen=True)
class _Image:
    manifest: _Manifest
    config: ImageConfig


class StandInStore:
    def __init__(self, lower: str) -> None:
        cfg = ImageConfig.parse(json.dumps({
            "architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
            "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]}}).encode())
        image = _Image(_Manifest("sha256:" + "2" * 64), cfg)

        class images:
            resolve = staticmethod(lambda ref: image)
            load = staticmethod(lambda record: image)

        class snapshots:
            lowerdirs = staticmethod(lambda img: [lower])

        self.images, self.snapshots = images, snapshots


@pytest.fixture
def env(tmp_path: Path, busybox_rootfs: Path):
    if os.geteuid() != 0:
        pytest.skip("needs root for namespaces, mounts and cgroups")
    return ContainerStore(str(tmp_path / "root"), str(tmp_path / "state")), StandInStore(str(busybox_rootfs))


def _mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [p for p in (line.split()[4] for line in f) if p.startswith(str(path))]


def test_rm_run_prints_exits_and_leaves_nothing(env, capfd, tmp_path: Path) -> None:
    cstore, images = env
    code = run_foreground(cstore, images, "bb:1", RunOptions(network="none", rm=True, hostname="fg",
                                                              command=("sh", "-c", "hostname; cat /etc/hostname; exit 9")))
    out = capfd.readouterr().out
    assert code == 9
    assert out.splitlines()[0] == "fg"
    assert cstore.configs() == []
    assert _mounts_under(tmp_path) == []


def test_plain_run_records_exit_and_oom(env, capfd) -> None:
    cstore, images = env
    code = run_foreground(cstore, images, "bb:1", RunOptions(network="none", name="hog", memory=32 << 20,
                                                              command=("tail", "/dev/zero")))
    assert code == 137
    cfg = cstore.resolve("hog")
    state = cstore.status(cfg.id)
    assert (state.status, state.exit_code, state.oom_killed) == ("exited", 137, True)
