"""Health checks with the real shim: a HEALTHCHECK from a Dockerfile built by pybuild turns a
container healthy, then unhealthy when its check starts failing, and the container keeps running;
``--health-*`` and ``--no-healthcheck`` on the command line; ``ps`` words and filter, ``inspect``'s
``State.Health``. Every wait polls with a deadline that fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import wait_for

DOCKERFILE = """FROM {base}
HEALTHCHECK --interval=1s --start-period=60s --start-interval=300ms --retries=2 \\
    CMD echo probing; test -f /tmp/ok
CMD ["sleep", "1000"]
"""


def _inspect(pybuild, ref: str) -> dict:
    return json.loads(pybuild("inspect", ref, check=True).stdout)[0]


def _health(pybuild, ref: str) -> dict:
    return _inspect(pybuild, ref)["State"].get("Health") or {}


def _ps_status(pybuild, name: str, all: bool = False) -> str:
    args = ["-a"] if all else []
    rows = [json.loads(line) for line in pybuild("ps", *args, "--format", "json", check=True).stdout.splitlines()]
    return next(r["Status"] for r in rows if r["Names"] == name)


def _names(pybuild, *filters: str) -> list[str]:
    args = [a for f in filters for a in ("--filter", f)]
    out = pybuild("ps", "-a", "--format", "json", *args, check=True).stdout
    return [json.loads(line)["Names"] for line in out.splitlines()]


def test_dockerfile_healthcheck_turns_healthy_then_unhealthy(pybuild, image, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE.format(base=image))
    pybuild("build", "-q", "-t", "hc:1", str(ctx), check=True)
    check = _inspect(pybuild, "hc:1")["Config"]["Healthcheck"]
    assert check["Test"] == ["CMD-SHELL", "echo probing; test -f /tmp/ok"] and check["Retries"] == 2
    pybuild("run", "-d", "--name", "hc", "hc:1", check=True)

    # within the start period failures do not count: still starting, with failed probes logged
    h = wait_for(lambda: (h := _health(pybuild, "hc")).get("Log") and h, what="a first probe")
    assert h["Status"] == "starting" and h["FailingStreak"] == 0, h
    assert h["Log"][0]["ExitCode"] == 1 and h["Log"][0]["Output"] == "probing\n", h
    assert _ps_status(pybuild, "hc").endswith(" (health: starting)")
    assert _names(pybuild, "health=starting") == ["hc"] and _names(pybuild, "health=healthy") == []

    pybuild("exec", "hc", "touch", "/tmp/ok", check=True)
    wait_for(lambda: _health(pybuild, "hc").get("Status") == "healthy", what="healthy")
    assert _ps_status(pybuild, "hc").endswith(" (healthy)")
    assert _names(pybuild, "health=healthy") == ["hc"]

    pybuild("exec", "hc", "rm", "/tmp/ok", check=True)
    wait_for(lambda: _health(pybuild, "hc").get("Status") == "unhealthy", what="unhealthy")
    h = _health(pybuild, "hc")
    assert h["FailingStreak"] >= 2 and len(h["Log"]) <= 5 and h["Log"][-1]["ExitCode"] == 1, h
    assert h["Log"][-1]["Start"] <= h["Log"][-1]["End"]
    assert _ps_status(pybuild, "hc").endswith(" (unhealthy)")
    assert _names(pybuild, "health=unhealthy") == ["hc"] and _names(pybuild, "health=none") == []
    # a failing check only reports: the container runs on
    state = _inspect(pybuild, "hc")["State"]
    assert state["Running"] and state["Status"] == "running"
    wait_for(lambda: len(_health(pybuild, "hc")["Log"]) == 5, what="five probes logged")
    assert _inspect(pybuild, "hc")["State"]["Running"]
    pybuild("stop", "-t", "0", "hc", check=True)
    h = _health(pybuild, "hc")
    assert h["Status"] == "unhealthy" and len(h["Log"]) == 5       # moby's stopped health, log kept


def test_command_line_check_and_timeout(pybuild, image) -> None:
    pybuild("run", "-d", "--name", "cl", "--health-cmd", "echo out; exit 3", "--health-interval", "200ms",
            "--health-retries", "1", image, "sleep", "1000", check=True)
    pybuild("run", "-d", "--name", "slow", "--health-cmd", "sleep 30", "--health-interval", "200ms",
            "--health-timeout", "300ms", "--health-retries", "1", image, "sleep", "1000", check=True)
    wait_for(lambda: _health(pybuild, "cl").get("Status") == "unhealthy", what="cl unhealthy")
    last = _health(pybuild, "cl")["Log"][-1]
    assert last["ExitCode"] == 3 and last["Output"] == "out\n"
    assert _inspect(pybuild, "cl")["Config"]["Healthcheck"]["Test"] == ["CMD-SHELL", "echo out; exit 3"]
    wait_for(lambda: _health(pybuild, "slow").get("Status") == "unhealthy", what="slow unhealthy")
    last = _health(pybuild, "slow")["Log"][-1]
    assert last["ExitCode"] == -1 and last["Output"] == "Health check exceeded timeout (300ms)", last
    # the timed-out probe was killed, the container was not
    assert _inspect(pybuild, "slow")["State"]["Running"]
    top = pybuild("top", "slow", check=True).stdout
    wait_for(lambda: "sleep 30" not in pybuild("top", "slow", check=True).stdout, what="the probe killed")
    assert "sleep 1000" in top


def test_start_interval_while_starting_then_interval(pybuild, image) -> None:
    """The shim loop keeps ``start_interval`` while the health is ``starting`` within the start period and
    ``interval`` once it is not, told by each probe's exit status (the loop reads no ``state.json``):
    a failing check stays starting and is probed every 200 ms; a passing one turns healthy at its first
    probe and waits its 60 s interval."""
    common = ("--health-interval", "60s", "--health-start-period", "60s", "--health-start-interval", "200ms",
              "--health-retries", "1")
    try:
        pybuild("run", "-d", "--name", "starting", "--health-cmd", "exit 1", *common, image, "sleep", "1000",
                check=True)
        pybuild("run", "-d", "--name", "settled", "--health-cmd", "true", *common, image, "sleep", "1000",
                check=True)
        wait_for(lambda: _health(pybuild, "settled").get("Status") == "healthy", what="settled healthy")
        wait_for(lambda: len(_health(pybuild, "starting").get("Log") or ()) >= 4, what="probes every start interval")
        assert _health(pybuild, "starting")["Status"] == "starting"
        h = _health(pybuild, "settled")
        assert h["Status"] == "healthy" and len(h["Log"]) == 1, h       # one probe, then the 60 s interval
    finally:
        pybuild("rm", "-f", "starting", "settled")


def test_no_healthcheck_and_none(pybuild, image, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {image}\nHEALTHCHECK CMD false\nCMD [\"sleep\", \"1000\"]\n")
    pybuild("build", "-q", "-t", "hc:2", str(ctx), check=True)
    (ctx / "Dockerfile").write_text("FROM hc:2\nHEALTHCHECK NONE\n")
    pybuild("build", "-q", "-t", "hc:none", str(ctx), check=True)
    pybuild("run", "-d", "--name", "off", "--no-healthcheck", "hc:2", check=True)
    pybuild("run", "-d", "--name", "none", "hc:none", check=True)
    for name in ("off", "none"):
        doc = _inspect(pybuild, name)
        assert "Health" not in doc["State"] and "Healthcheck" not in doc["Config"], doc
        assert _ps_status(pybuild, name).startswith("Up ") and "health" not in _ps_status(pybuild, name)
    assert sorted(_names(pybuild, "health=none")) == ["none", "off"]
    bad = pybuild("run", "-d", "--no-healthcheck", "--health-cmd", "true", "hc:2")
    assert bad.returncode != 0 and "--no-healthcheck conflicts with --health-* options" in bad.stderr
    assert "Traceback" not in bad.stderr
    bad = pybuild("run", "-d", "--health-interval", "10", "hc:2")
    assert bad.returncode != 0 and "--health-interval '10': not a duration" in bad.stderr, bad.stderr
    bad = pybuild("ps", "--filter", "health=sick")
    assert bad.returncode != 0 and "health is starting, healthy, unhealthy or none" in bad.stderr


def test_foreground_run_is_checked_too(pybuild, image) -> None:
    """A foreground ``run`` forks a process for its checks: the probe's file appears in the
    container's own filesystem, which the container waits for (a deadline: the CLI's timeout)."""
    proc = pybuild("run", "--name", "fg", "--health-cmd", "touch /tmp/probed", "--health-interval", "200ms",
                   image, "sh", "-c", "until [ -f /tmp/probed ]; do sleep 0.1; done; echo seen", timeout=60)
    assert proc.returncode == 0 and proc.stdout == "seen\n", proc.stderr
    state = _inspect(pybuild, "fg")["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 0
    assert state["Health"]["Status"] == "unhealthy"      # as moby leaves a stopped container's health
    assert _ps_status(pybuild, "fg", all=True).startswith("Exited (0)")


def test_short_foreground_runs_with_a_check_end_and_release_their_output(pybuild, image) -> None:
    """A container that exits at once stops its check process right after the fork: the stop must
    wait for the monitor's own SIGTERM handler (not the forwarder it inherits), and the monitor must
    not hold the caller's stdout/stderr, or a reader of the output (here: the captured pipes) waits
    forever. This hung about one run in four before."""
    for i in range(12):
        proc = pybuild("run", "--rm", "--network", "none", "--health-cmd", "true", "--health-interval", "30s",
                       image, "echo", f"run {i}", timeout=20)
        assert proc.returncode == 0 and proc.stdout == f"run {i}\n", proc.stderr
