"""``pybuild run -d`` / ``create`` / ``start -a`` end to end with an imported busybox image."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.request

import pytest

from .conftest import free_port, process_alive, wait_for


@pytest.fixture
def image(pybuild, busybox_tar):
    if os.geteuid() != 0:
        pytest.skip("needs root for namespaces, mounts and cgroups")
    r = pybuild("import", str(busybox_tar), "lc/busybox:1")
    assert r.returncode == 0, r.stderr
    yield "lc/busybox:1"
    for cid in pybuild("ps", "-a", "-q", "--no-trunc").stdout.split():
        pybuild("rm", "-f", cid)


def _get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.read()
    except OSError:
        return None


def _exe() -> str:
    import sys
    from pathlib import Path

    return str(Path(sys.executable).with_name("pybuild"))


def test_run_d_returns_id_and_serves_after_cli_sigkill(pybuild, image):
    port = free_port()
    t0 = time.monotonic()
    r = pybuild("run", "-d", "--name", "web", "--network", "host", image,
                "httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", "/etc", check=True)
    assert re.fullmatch(r"[0-9a-f]{64}\n", r.stdout) and time.monotonic() - t0 < 10
    assert b"root:" in wait_for(lambda: _get(f"http://127.0.0.1:{port}/passwd"), what="httpd")
    # a second one, with the CLI SIGKILLed while it runs
    port2 = free_port()
    proc = subprocess.Popen([_exe(), "--root", str(pybuild.root), "--state-dir", str(pybuild.state), "run", "-d",
                             "--name", "web2", "--network", "host", image, "httpd", "-f", "-p",
                             f"127.0.0.1:{port2}", "-h", "/etc"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(lambda: sum(os.path.exists(os.path.join(pybuild.state, d, "shim.json"))
                         for d in os.listdir(pybuild.state) if len(d) == 64) >= 2, what="second shim")
    proc.kill()
    proc.wait()
    assert b"root:" in wait_for(lambda: _get(f"http://127.0.0.1:{port2}/passwd"), what="httpd 2")
    names = {json.loads(x)["Names"] for x in pybuild("ps", "--format", "json", check=True).stdout.splitlines()}
    assert names == {"web", "web2"}
    pybuild("stop", "-t", "1", "web", "web2", check=True)
    pybuild("rm", "web", "web2", check=True)
    assert not _get(f"http://127.0.0.1:{port}/passwd") and not _get(f"http://127.0.0.1:{port2}/passwd")


def test_restart_on_failure_3(pybuild, image):
    cid = pybuild("run", "-d", "--network", "none", "--restart", "on-failure:3", image, "sh", "-c",
                  "echo try; exit 1", check=True).stdout.strip()
    assert pybuild("wait", cid, check=True, timeout=60).stdout.strip() == "1"
    doc = json.loads(pybuild("container", "inspect", cid, check=True).stdout)[0]
    assert doc["RestartCount"] == 3 and doc["State"]["Status"] == "exited" and doc["State"]["ExitCode"] == 1
    assert pybuild("logs", cid, check=True).stdout == "try\n" * 4
    time.sleep(1.0)           # and it stays exited
    assert json.loads(pybuild("container", "inspect", cid).stdout)[0]["RestartCount"] == 3


def test_rm_with_detach_and_create_start_attach(pybuild, image):
    cid = pybuild("run", "-d", "--rm", "--network", "none", image, "true", check=True).stdout.strip()
    wait_for(lambda: pybuild("ps", "-a", "-q", "--no-trunc").stdout.strip() == "", what="--rm removal")
    cid = pybuild("create", "--name", "later", "--network", "none", image, "sh", "-c", "echo hi; exit 4",
                  check=True).stdout.strip()
    assert json.loads(pybuild("container", "inspect", "later").stdout)[0]["State"]["Status"] == "created"
    r = pybuild("start", "-a", "later")
    assert r.returncode == 4 and r.stdout == "hi\n"
    r = pybuild("run", "-d", "--name", "later", "--network", "none", image, "true")
    assert r.returncode != 0 and "already in use" in r.stderr
