"""runner.bundle.write_bundle over the stand-in store, run by Debian's runc (interop)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from runner.bundle import write_bundle
from runner.errors import RuntimeFailure
from runner.options import RunOptions

from .test_foreground import StandInStore
from .test_spec import validate

DOCKER_CAPS = "00000000a80425fb"


def test_bundle_is_schema_valid_and_runc_runs_it(busybox_rootfs: Path, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root for overlay mounts")
    bundle = tmp_path / "b"
    opts = RunOptions(network="none", command=("sh", "-c", "echo from-runc; grep CapEff /proc/self/status; "
                                                           "hostname; cat /proc/keys | wc -c; id -u"))
    write_bundle(StandInStore(str(busybox_rootfs)), "bb:1", str(bundle), opts)
    spec = json.loads((bundle / "config.json").read_text())
    validate(spec)
    assert spec["root"]["path"] == "rootfs"
    assert os.stat(bundle / "rootfs" / "bin" / "busybox").st_mode & 0o111
    assert os.readlink(bundle / "rootfs" / "bin" / "sh") == "busybox"
    with pytest.raises(RuntimeFailure, match="already holds"):
        write_bundle(StandInStore(str(busybox_rootfs)), "bb:1", str(bundle), opts)
    runc = shutil.which("runc")
    if runc is None:
        pytest.skip("runc is not installed (apt-get install runc): interop part not run")
    cid = f"pybuild-bundle-{os.getpid()}"
    state = tmp_path / "runc-state"
    try:
        out = subprocess.run([runc, "--root", str(state), "run", "--bundle", str(bundle), cid],
                             capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    finally:
        subprocess.run([runc, "--root", str(state), "delete", "-f", cid], capture_output=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["from-runc", f"CapEff:\t{DOCKER_CAPS}", "b", "0", "0"]
