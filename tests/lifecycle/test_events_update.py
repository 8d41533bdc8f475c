"""``pybuild events`` and ``pybuild update`` through the real command, on real containers."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time

from tests.conftest import pybuild_exe
from runner import cgroups


def _events(pybuild, *args: str) -> list[dict]:
    r = pybuild("events", "--since", "1h", "--until", "0s", "--format", "{{json .}}", *args, check=True)
    return [json.loads(line) for line in r.stdout.splitlines()]


def _follow(pybuild, *args: str) -> subprocess.Popen:
    """``pybuild events ARGS`` running; its lines arrive in ``proc.lines`` (a queue)."""
    proc = subprocess.Popen([pybuild_exe(), "--root", str(pybuild.root), "--state-dir", str(pybuild.state),
                             "events", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.lines = queue.Queue()

    def pump() -> None:
        for line in proc.stdout:
            proc.lines.put(line.strip())
        proc.lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return proc


def _readline(proc: subprocess.Popen, timeout: float = 30.0) -> str:
    """The next line ``events`` prints; fails the test instead of hanging if none comes."""
    try:
        line = proc.lines.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no event within {timeout}s") from None
    assert line is not None, proc.stderr.read()
    return line


def _memory_limit(cid: str) -> int:
    cg = cgroups.open_existing(cid)
    assert cg is not None
    path = cg.path_for("memory")
    name = "memory.max" if cg.version == "v2" else "memory.limit_in_bytes"
    with open(os.path.join(path, name)) as f:
        return int(f.read())


def _pids_limit(cid: str) -> str:
    cg = cgroups.open_existing(cid)
    with open(os.path.join(cg.path_for("pids"), "pids.max")) as f:
        return f.read().strip()


def test_a_container_life_is_recorded_as_docker_events(pybuild, image):
    cid = pybuild("run", "-d", "--name", "ev1", "--network", "none", "--label", "team=a", image,
                  "sleep", "300", check=True).stdout.strip()
    pybuild("stop", "-t", "1", "ev1", check=True)
    pybuild("rename", "ev1", "ev2", check=True)
    pybuild("rm", "ev2", check=True)
    evs = [e for e in _events(pybuild) if e["Type"] == "container"]
    # sleep as PID 1 ignores SIGTERM: stop kills it after its timeout, as Docker reports it
    assert [e["Action"] for e in evs] == ["create", "start", "kill", "kill", "die", "stop", "rename", "destroy"]
    assert {e["Actor"]["ID"] for e in evs} == {cid}
    start = evs[1]
    assert start["Actor"]["Attributes"] == {"image": image, "name": "ev1", "team": "a"}
    assert start["scope"] == "local" and start["status"] == "start" and start["from"] == image
    assert start["time"] == start["timeNano"] // 10**9
    assert [evs[i]["Actor"]["Attributes"]["signal"] for i in (2, 3)] == [str(int(signal.SIGTERM)),
                                                                          str(int(signal.SIGKILL))]
    assert evs[4]["Actor"]["Attributes"]["exitCode"] == "137"
    assert evs[6]["Actor"]["Attributes"]["oldName"] == "/ev1"
    assert evs[7]["Actor"]["Attributes"]["name"] == "ev2"
    times = [e["timeNano"] for e in evs]
    assert times == sorted(times)


def test_default_lines_filters_and_templates(pybuild, image):
    pybuild("run", "--name", "ok", "--network", "none", image, "true", check=True)
    pybuild("run", "--name", "bad", "--network", "none", image, "sh", "-c", "exit 3")
    r = pybuild("events", "--since", "1h", "--until", "0s", "--filter", "event=die", check=True)
    lines = r.stdout.splitlines()
    assert len(lines) == 2
    assert " container die " in lines[0] and "exitCode=0" in lines[0] and "name=ok)" in lines[0]
    assert lines[0][:4].isdigit() and lines[0][10] == "T"
    assert "exitCode=3" in lines[1]
    r = pybuild("events", "--since", "1h", "--until", "0s", "-f", "container=bad", "-f", "event=start",
                "-f", "event=die", "--format", "{{.Action}} {{.Actor.Attributes.name}}", check=True)
    assert r.stdout.splitlines() == ["start bad", "die bad"]
    r = pybuild("events", "--since", "1h", "--until", "0s", "-f", "type=image", "--format", "json", check=True)
    docs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(d["Action"], d["Actor"]["Attributes"]["name"]) for d in docs] == [("tag", image), ("import", image)]
    r = pybuild("system", "events", "--since", "1h", "--until", "0s", "-f", f"image={image}",
                "-f", "event=create", "--format", "{{.Actor.Attributes.name}}", check=True)
    assert r.stdout.splitlines() == ["ok", "bad"]


def test_bad_input_is_a_one_line_error(pybuild):
    for args in (("--filter", "colour=red"), ("--filter", "nothing"), ("--since", "yesterday"),
                 ("--until", "soon")):
        r = pybuild("events", *args)
        assert r.returncode != 0 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, (args, r.stderr)
    for fmt in ("{{.Action", "{{.NoSuchField}}"):      # Docker: status 64, checked before streaming
        r = pybuild("events", "--format", fmt, timeout=30)
        assert r.returncode == 64 and r.stderr.startswith("Error parsing format: "), r.stderr


def test_events_follows_until_interrupted(pybuild, image):
    since = f"{time.time() - 1:.3f}"
    proc = _follow(pybuild, "--since", since, "--format", "{{.Action}} {{.Actor.Attributes.name}}",
                   "-f", "type=container")
    try:
        pybuild("run", "--name", "live", "--network", "none", image, "true", check=True)
        seen = []
        while "die live" not in seen:
            seen.append(_readline(proc))
        assert seen == ["create live", "start live", "die live"]
        assert proc.poll() is None                    # still following
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_update_changes_the_limits_of_a_running_container(pybuild, image):
    cid = pybuild("run", "-d", "--name", "up", "--network", "none", "--memory", "64m", image,
                  "sleep", "300", check=True).stdout.strip()
    assert _memory_limit(cid) == 64 * 1024 * 1024
    r = pybuild("update", "--memory", "96m", "--pids-limit", "33", "--cpus", "0.5", "--restart", "on-failure:2", "up")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "up"
    assert _memory_limit(cid) == 96 * 1024 * 1024
    assert _pids_limit(cid) == "33"
    doc = json.loads(pybuild("inspect", "up", check=True).stdout)[0]
    assert doc["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    # a smaller limit too, and the record keeps it across a restart
    pybuild("update", "-m", "48m", "up", check=True)
    assert _memory_limit(cid) == 48 * 1024 * 1024
    pybuild("restart", "-t", "1", "up", check=True)
    assert _memory_limit(cid) == 48 * 1024 * 1024
    assert _pids_limit(cid) == "33"
    assert "update" in [e["Action"] for e in _events(pybuild, "-f", "container=up")]


def test_update_of_a_stopped_container_applies_at_its_next_start(pybuild, image):
    cid = pybuild("create", "--name", "later", "--network", "none", image, "sleep", "300",
                  check=True).stdout.strip()
    pybuild("update", "--memory", "80m", "--restart", "always", "later", check=True)
    pybuild("start", "later", check=True)
    assert _memory_limit(cid) == 80 * 1024 * 1024
    doc = json.loads(pybuild("inspect", "later", check=True).stdout)[0]
    assert doc["HostConfig"]["RestartPolicy"]["Name"] == "always"


def test_update_refuses_what_it_cannot_honour(pybuild, image):
    pybuild("create", "--name", "ref", "--network", "none", image, "true", check=True)
    pybuild("create", "--name", "gone", "--rm", "--network", "none", image, "true", check=True)
    cases = {("--cpu-shares", "512", "ref"): "--cpu-shares",
             ("--memory", "1m", "ref"): "minimum memory",
             ("--restart", "sometimes", "ref"): "restart policy",
             ("ref",): "one or more flags",
             ("--restart", "always", "gone"): "AutoRemove",
             ("--memory", "64m", "nosuch"): "no such container"}
    for args, words in cases.items():
        r = pybuild("update", *args)
        assert r.returncode != 0 and words in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
    doc = json.loads(pybuild("inspect", "ref", check=True).stdout)[0]
    assert doc["HostConfig"]["RestartPolicy"]["Name"] == "no"


def test_a_running_shim_follows_an_updated_restart_policy(pybuild, image):
    from tests.lifecycle.conftest import wait_for

    pybuild("run", "-d", "--name", "pol", "--network", "none", image, "sh", "-c",
            "trap 'exit 3' USR1; while :; do sleep 0.05; done", check=True)
    pybuild("update", "--restart", "on-failure:1", "pol", check=True)
    pybuild("kill", "-s", "USR1", "pol", check=True)     # not a stop: the policy decides

    def restarted() -> bool:
        doc = json.loads(pybuild("inspect", "pol", check=True).stdout)[0]
        return doc["RestartCount"] == 1 and doc["State"]["Running"]

    wait_for(restarted, timeout=20, what="the container restarted by its updated policy")
    actions = [e["Action"] for e in _events(pybuild, "-f", "container=pol")]
    assert actions[:6] == ["create", "start", "update", "kill", "die", "start"]


def test_health_changes_are_events(pybuild, image):
    since = f"{time.time() - 1:.3f}"
    proc = _follow(pybuild, "--since", since, "-f", "event=health_status", "-f", "container=hc",
                   "--format", "{{.Action}}")
    try:
        pybuild("run", "-d", "--name", "hc", "--network", "none", "--health-cmd", "test ! -e /tmp/bad",
                "--health-interval", "200ms", "--health-retries", "1", image, "sleep", "300", check=True)
        assert _readline(proc) == "health_status: healthy"
        pybuild("exec", "hc", "touch", "/tmp/bad", check=True)
        assert _readline(proc) == "health_status: unhealthy"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_image_changes_are_events(pybuild, busybox_tar, tmp_path):
    pybuild("import", str(busybox_tar), "ev/img:1", check=True)
    image_id = json.loads(pybuild("inspect", "ev/img:1", check=True).stdout)[0]["Id"]
    pybuild("tag", "ev/img:1", "ev/img:2", check=True)
    pybuild("save", "-o", str(tmp_path / "img.tar"), "ev/img:2", check=True)
    pybuild("rmi", "ev/img:2", check=True)
    pybuild("rmi", "ev/img:1", check=True)
    pybuild("load", "-i", str(tmp_path / "img.tar"), check=True)
    got = [(e["Action"], e["Actor"]["ID"], e["Actor"]["Attributes"].get("name"))
           for e in _events(pybuild, "-f", "type=image")]
    assert got == [("tag", image_id, "ev/img:1"), ("import", image_id, "ev/img:1"),
                   ("tag", image_id, "ev/img:2"), ("save", image_id, "ev/img:2"),
                   ("untag", image_id, "ev/img:2"), ("untag", image_id, "ev/img:1"),
                   ("delete", image_id, "ev/img:1"), ("tag", image_id, "ev/img:2"),
                   ("load", image_id, "ev/img:2")]


def test_an_oom_kill_is_an_event_before_the_die(pybuild, image):
    r = pybuild("run", "--network", "none", "--name", "hog", "--memory", "32m", image, "tail", "/dev/zero")
    assert r.returncode == 137
    got = [(e["Action"], e["Actor"]["Attributes"].get("exitCode"))
           for e in _events(pybuild, "-f", "container=hog")]
    assert got == [("create", None), ("start", None), ("oom", None), ("die", "137")]


def test_exec_attach_network_and_volume_events(pybuild, image):
    """Docker's exec_create/exec_start/exec_die, attach, network create/connect/disconnect/destroy and
    volume create/destroy events, with their attributes, and the network=/volume= filters."""
    net, vol = "evnet", "evvol"
    pybuild("network", "create", net, check=True)
    pybuild("volume", "create", vol, check=True)
    cid = pybuild("run", "-d", "--name", "evx", "--network", net, "-v", f"{vol}:/v", image,
                  "sh", "-c", "sleep 300", check=True).stdout.strip()
    assert pybuild("exec", "evx", "sh", "-c", "exit 3").returncode == 3
    att = subprocess.Popen([pybuild_exe(), "--root", str(pybuild.root), "--state-dir", str(pybuild.state),
                            "attach", "evx"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not [e for e in _events(pybuild, "--filter", "event=attach")]:
            assert time.monotonic() < deadline, "no attach event"
            time.sleep(0.1)
        pybuild("rm", "-f", "evx", check=True)
        att.wait(timeout=30)
    finally:
        if att.poll() is None:
            att.kill()
            att.wait()
    pybuild("network", "rm", net, check=True)
    pybuild("volume", "rm", vol, check=True)
    evs = _events(pybuild)
    execs = [e for e in evs if e["Action"].startswith("exec_")]
    assert [e["Action"] for e in execs] == ["exec_create: sh -c exit 3", "exec_start: sh -c exit 3", "exec_die"]
    assert len({e["Actor"]["Attributes"]["execID"] for e in execs}) == 1 and {e["Actor"]["ID"] for e in execs} == {cid}
    assert execs[2]["Actor"]["Attributes"]["exitCode"] == "3" and execs[2]["Actor"]["Attributes"]["name"] == "evx"
    assert [e["Actor"]["ID"] for e in evs if e["Action"] == "attach"] == [cid]
    nets = [e for e in evs if e["Type"] == "network"]
    assert [e["Action"] for e in nets] == ["create", "connect", "disconnect", "destroy"]
    assert {e["Actor"]["Attributes"]["name"] for e in nets} == {net} and len({e["Actor"]["ID"] for e in nets}) == 1
    assert nets[1]["Actor"]["Attributes"]["container"] == cid == nets[2]["Actor"]["Attributes"]["container"]
    vols = [e for e in evs if e["Type"] == "volume"]
    assert [(e["Action"], e["Actor"]["ID"]) for e in vols] == [("create", vol), ("destroy", vol)]
    assert [e["Action"] for e in _events(pybuild, "--filter", f"network={net}")] == [e["Action"] for e in nets]
    assert [e["Type"] for e in _events(pybuild, "--filter", f"volume={vol}")] == ["volume", "volume"]
    assert [e["Action"] for e in _events(pybuild, "--filter", "event=exec_start")] == ["exec_start: sh -c exit 3"]
