"""``runner.containers.run_detached`` from an image, through the real sandbox.

The image side is a stand-in with the ``layers.store.Store`` surface the lifecycle uses
(``images.resolve/load``, ``snapshots.lowerdirs``) over the busybox root directory, so this runs
whether or not the store is installed; ``test_run_detached.py`` covers the same through ``pybuild``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

import pytest

from layers.config import ImageConfig
from runner import containers as C
from runner.options import RunOptions
from runner.state import ContainerStore

from .conftest import wait_for

MANIFEST_DIGEST = "sha256:" + "1" * 64


@dataclass(frozen=True)
class _Manifest:
    digest: str


@dataclass(frozen=True)
class _Image:
    manifest: _Manifest
    config: ImageConfig


class _StandInStore:
    """Just the calls runner.containers makes; the real one is layers.store.Store."""

    def __init__(self, lower: str) -> None:
        cfg = ImageConfig.parse(json.dumps({
            "architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
            "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"], "StopSignal": "SIGPWR",
                       "Labels": {"org.example": "yes"}}}).encode())
        image = _Image(_Manifest(MANIFEST_DIGEST), cfg)
        lowerdirs = [lower]

        class images:
            @staticmethod
            def resolve(ref):
                return image

            @staticmethod
            def load(record):
                return image

        class snapshots:
            @staticmethod
            def lowerdirs(img):
                return lowerdirs

        self.images, self.snapshots = images, snapshots


@pytest.fixture
def env(tmp_path, busybox_lower):
    if os.geteuid() != 0:
        pytest.skip("needs root for namespaces, mounts and cgroups")
    store = ContainerStore(str(tmp_path / "root"), str(tmp_path / "state"))
    yield store, _StandInStore(str(busybox_lower))
    for cfg in store.configs():
        C.remove(store, cfg.id, force=True)


def test_run_detached_records_image_and_stop_signal(env):
    store, images = env
    info = C.run_detached(store, images, "busybox:1", RunOptions(command=("sleep", "1000"), network="none",
                                                                 name="img1", init=True))
    cid = info.config.id
    from layers.store.roots import Roots

    assert {str(d) for d in Roots(store.root).get("containers", cid).docs} == {MANIFEST_DIGEST}
    assert info.config.stop_signal == "SIGPWR" and info.config.labels == {} and info.state.status == "running"
    from pybuild.views.containers import inspect_document

    doc = inspect_document(C.details(store, "img1"))
    assert doc["Image"] == MANIFEST_DIGEST and doc["Config"]["StopSignal"] == "SIGPWR"
    assert doc["HostConfig"]["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert doc["HostConfig"]["Init"] is True
    t0 = time.monotonic()
    C.stop(store, "img1", timeout=5)          # init forwards SIGPWR; it kills sleep at once
    assert time.monotonic() - t0 < 4           # not the 5 s timeout: SIGPWR itself ended it
    assert store.status(cid).exit_code == 128 + 30


def test_on_failure_3_in_the_sandbox(env):
    store, images = env
    info = C.run_detached(store, images, "busybox:1", RunOptions(command=("sh", "-c", "echo try; exit 1"),
                                                                 network="none", restart="on-failure:3"))
    assert C.wait(store, info.config.id, timeout=30) == 1
    s = store.status(info.config.id)
    assert (s.status, s.exit_code, s.restart_count) == ("exited", 1, 3)
    from runner.logs import read_logs

    assert [e.text for e in read_logs(store.log_path(info.config.id))] == ["try\n"] * 4


def test_rm_and_failed_start(env):
    store, images = env
    info = C.run_detached(store, images, "busybox:1", RunOptions(command=("true",), network="none", rm=True))
    wait_for(lambda: info.config.id not in store.ids(), what="--rm removal")
    with pytest.raises(Exception, match="no/such/binary"):
        C.run_detached(store, images, "busybox:1", RunOptions(command=("/no/such/binary",), network="none",
                                                              name="broken"))
    s = store.status(store.resolve("broken").id)
    assert s.status == "exited" and s.exit_code == 127 and "no/such/binary" in s.error
