"""A foreground ``run`` keeps the container's output in its log (as a detached one does), so
``logs`` shows it after the container exits and again after ``start``; through the real binary."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.conftest import pybuild_exe


@pytest.fixture
def image(pybuild, busybox_tar):
    if os.geteuid() != 0:
        pytest.skip("needs root for namespaces, mounts and cgroups")
    pybuild("import", str(busybox_tar), "lg/busybox:1", check=True)
    yield "lg/busybox:1"
    for cid in pybuild("ps", "-a", "-q", "--no-trunc").stdout.split():
        pybuild("rm", "-f", cid)


def _log_records(pybuild, name: str) -> list[dict]:
    cid = json.loads(pybuild("container", "inspect", name, check=True).stdout)[0]["Id"]
    path = pybuild.root / "containers" / cid / "container.log"
    with open(path) as f:
        return [json.loads(line) for line in f]


def test_foreground_output_is_relayed_and_logged(pybuild, image):
    script = "echo one; echo two >&2; printf 'no newline'; exit 3"
    r = pybuild("run", "--network", "none", "--name", "fg", image, "sh", "-c", script)
    assert (r.returncode, r.stdout, r.stderr) == (3, "one\nno newline", "two\n")
    logs = pybuild("logs", "fg")
    assert (logs.returncode, logs.stdout, logs.stderr) == (0, "one\nno newline", "two\n")
    records = _log_records(pybuild, "fg")
    assert [(x["stream"], x["log"]) for x in records] == [
        ("stdout", "one\n"), ("stderr", "two\n"), ("stdout", "no newline")] or \
        sorted((x["stream"], x["log"]) for x in records) == [
        ("stderr", "two\n"), ("stdout", "no newline"), ("stdout", "one\n")]
    assert all(x["time"].endswith("Z") for x in records)
    # start (detached, through the shim) appends to the same log
    pybuild("start", "fg", check=True)
    assert pybuild("wait", "fg", check=True).stdout == "3\n"
    again = pybuild("logs", "fg")
    assert (again.stdout, again.stderr) == ("one\nno newlineone\nno newline", "two\ntwo\n")


def test_logs_after_start_attach(pybuild, image):
    pybuild("run", "--network", "none", "--name", "sa", image, "echo", "hello", check=True)
    r = pybuild("start", "-a", "sa")
    assert (r.returncode, r.stdout) == (0, "hello\n")
    assert pybuild("logs", "sa", check=True).stdout == "hello\nhello\n"


def test_tty_output_is_logged_as_stdout(pybuild, image):
    r = pybuild("run", "-t", "--network", "none", "--name", "tt2", image, "sh", "-c", "echo out; echo err >&2",
                text=False)
    assert r.returncode == 0 and r.stderr == b"", r.stderr
    assert r.stdout == b"out\r\nerr\r\n"                          # both streams were the terminal
    records = _log_records(pybuild, "tt2")
    assert {x["stream"] for x in records} == {"stdout"}
    assert "".join(x["log"] for x in records) == "out\r\nerr\r\n"
    assert pybuild("logs", "tt2", check=True, text=False).stdout == b"out\r\nerr\r\n"


def test_big_output_reaches_both(pybuild, image):
    r = pybuild("run", "--network", "none", "--name", "big", image, "sh", "-c", "seq 1 50000")
    assert r.returncode == 0 and r.stdout == "".join(f"{i}\n" for i in range(1, 50001))
    assert pybuild("logs", "big", check=True).stdout == r.stdout


def test_reader_gone_ends_the_writer_as_without_the_log(pybuild, image):
    """``run ... | head -1``: the relay's reader goes away, so the container's writes fail as they would
    on the reader's pipe itself (``yes`` ends with SIGPIPE); what was relayed is in the log."""
    cmd = [pybuild_exe(), "--root", str(pybuild.root), "--state-dir", str(pybuild.state), "run",
           "--network", "none", "--name", "cut", image, "sh", "-c", "yes; echo after $? >&2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert (first, err, proc.returncode) == (b"y\n", b"after 141\n", 0)
    logged = pybuild("logs", "cut", check=True)
    assert logged.stderr == "after 141\n" and set(logged.stdout.splitlines()) == {"y"}


def test_run_rm_leaves_nothing(pybuild, image):
    r = pybuild("run", "--rm", "--network", "none", image, "sh", "-c", "echo gone")
    assert (r.returncode, r.stdout) == (0, "gone\n")
    assert pybuild("ps", "-a", "-q").stdout == ""
    assert [n for n in os.listdir(pybuild.root / "containers") if not n.startswith(".")] == []
