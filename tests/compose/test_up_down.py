"""``pybuild compose up/down/ps/logs/run/exec`` end to end on busybox: labels and names, services
reaching each other by name and alias, idempotent ``up`` (recreate only what changed), scale,
``--wait`` failing with the service's name, attached ``up`` stopped by Ctrl-C, and ``down``
leaving nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.conftest import pybuild_exe

pytestmark = pytest.mark.timeout(240)

# sh traps TERM so ``stop`` is quick (PID 1 ignores signals it does not handle)
LOOP = '["sh", "-c", "trap \'exit 0\' TERM; echo started $$HOSTNAME; while :; do sleep 0.2; done"]'

WEB_DB = f"""
services:
  web:
    image: busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM; mkdir -p /www; echo hello-from-web > /www/index.html; httpd -f -p 8080 -h /www & wait"]
    ports: ["127.0.0.1::8080"]
    depends_on: [db]
    networks:
      default:
        aliases: [frontend]
  db:
    image: busybox:latest
    command: {LOOP}
    environment:
      LEVEL: "1"
    volumes: ["data:/data"]
volumes:
  data: {{}}
"""


def _names(compose) -> set[str]:
    return set(compose.ids())


def test_up_ps_names_labels_dns_and_down_leaves_nothing(compose, cpybuild) -> None:
    compose.write(WEB_DB)
    up = compose("up", "-d")
    assert up.returncode == 0, up.stderr
    assert _names(compose) == {"demo-web-1", "demo-db-1"}
    doc = compose.inspect("demo-web-1")
    labels = doc["Config"]["Labels"]
    assert labels["com.docker.compose.project"] == "demo"
    assert labels["com.docker.compose.service"] == "web"
    assert labels["com.docker.compose.container-number"] == "1"
    assert labels["com.docker.compose.oneoff"] == "False"
    assert len(labels["com.docker.compose.config-hash"]) == 64
    assert labels["com.docker.compose.project.config_files"] == str(compose.dir / "compose.yaml")
    # ps: table and json
    table = compose("ps", check=True).stdout
    assert "demo-web-1" in table and "demo-db-1" in table and "SERVICE" in table
    rows = [json.loads(line) for line in compose("ps", "--format", "json", check=True).stdout.splitlines()]
    assert {r["Service"] for r in rows} == {"web", "db"} and all(r["State"] == "running" for r in rows)
    # the db reaches the web server by service name and by alias on the project network
    for host in ("web", "frontend", "demo-web-1"):
        got = compose("exec", "-T", "db", "wget", "-qO-", f"http://{host}:8080/")
        assert got.returncode == 0 and got.stdout == "hello-from-web\n", (host, got.stderr)
    # the published port works from the host
    port = compose("port", "web", "8080", check=True).stdout.strip()
    import urllib.request

    assert urllib.request.urlopen(f"http://{port}/", timeout=10).read() == b"hello-from-web\n"
    # the named volume is the project's
    assert "demo_data" in cpybuild("volume", "ls", "--format", "{{.Name}}", check=True).stdout.split()
    logs = compose("logs", "db", check=True).stdout
    assert logs.startswith("demo-db-1  | started"), logs
    assert "demo" in compose("ls", check=True).stdout
    down = compose("down", "-v", "-t", "2")
    assert down.returncode == 0, down.stderr
    assert cpybuild("ps", "-aq").stdout == ""
    assert "demo_default" not in cpybuild("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert "demo_data" not in cpybuild("volume", "ls", "--format", "{{.Name}}").stdout.split()
    assert compose("ls", "-a", check=True).stdout.splitlines()[1:] == []


def test_second_up_recreates_only_what_changed(compose) -> None:
    compose.write(WEB_DB)
    compose("up", "-d", check=True)
    first = compose.ids()
    again = compose("up", "-d")
    assert again.returncode == 0 and compose.ids() == first, again.stderr       # nothing changed, nothing recreated
    assert "Running" in again.stderr
    compose.write(WEB_DB.replace('LEVEL: "1"', 'LEVEL: "2"'))
    changed = compose("up", "-d", "-t", "2")
    assert changed.returncode == 0, changed.stderr
    now = compose.ids()
    assert now["demo-db-1"] != first["demo-db-1"]
    assert now["demo-web-1"] == first["demo-web-1"]
    env = compose.inspect("demo-db-1")["Config"]["Env"]
    assert "LEVEL=2" in env
    forced = compose("up", "-d", "--force-recreate", "-t", "2")
    assert forced.returncode == 0, forced.stderr
    assert set(compose.ids().values()).isdisjoint(now.values())
    compose("down", "-t", "2", check=True)


def test_scale_up_and_down(compose) -> None:
    compose.write(f"""
services:
  worker:
    image: busybox:latest
    command: {LOOP}
""")
    compose("up", "-d", "--scale", "worker=3", check=True)
    assert _names(compose) == {"demo-worker-1", "demo-worker-2", "demo-worker-3"}
    ps = compose("ps", "-q", check=True).stdout.split()
    assert len(ps) == 3
    compose("up", "-d", "--scale", "worker=1", "-t", "2", check=True)
    assert _names(compose) == {"demo-worker-1"}
    bad = compose("up", "-d", "--scale", "nope=2")
    assert bad.returncode != 0 and "nope" in bad.stderr
    compose("down", "-t", "2", check=True)


def test_wait_fails_naming_the_unhealthy_service(compose, cpybuild) -> None:
    compose.write(f"""
services:
  good:
    image: busybox:latest
    command: {LOOP}
  sick:
    image: busybox:latest
    command: {LOOP}
    healthcheck:
      test: ["CMD", "false"]
      interval: 200ms
      retries: 1
""")
    r = compose("up", "-d", "--wait", "--wait-timeout", "60")
    assert r.returncode != 0
    assert "sick" in r.stderr and "unhealthy" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    compose("down", "-t", "2", check=True)


def test_invalid_project_creates_nothing(compose, cpybuild) -> None:
    compose.write(f"""
services:
  a:
    image: busybox:latest
    command: {LOOP}
    depends_on: [b]
  b:
    image: busybox:latest
    depends_on: [a]
""")
    r = compose("up", "-d")
    assert r.returncode != 0 and "a -> b -> a" in r.stderr or "b -> a -> b" in r.stderr, r.stderr
    assert cpybuild("ps", "-aq").stdout == ""
    assert "demo_default" not in cpybuild("network", "ls", "--format", "{{.Name}}").stdout
    r = compose("up", "-d", "nosuch")
    assert r.returncode != 0 and "nosuch" in r.stderr


def test_run_and_exec(compose, cpybuild) -> None:
    compose.write(f"""
services:
  db:
    image: busybox:latest
    command: {LOOP}
  tool:
    image: busybox:latest
    depends_on: [db]
    environment: {{GREETING: hi}}
""")
    r = compose("run", "--rm", "-T", "-e", "EXTRA=x", "tool", "sh", "-c", "echo $GREETING $EXTRA; ping -c1 -W2 db >/dev/null && echo reached")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hi x\nreached\n"
    assert set(compose.ids()) == {"demo-db-1"}             # the dependency came up, the one-off is gone
    assert compose("run", "-T", "tool", "sh", "-c", "exit 7").returncode == 7
    oneoff = [n for n in compose.ids() if n.startswith("demo-tool-run-")]
    assert len(oneoff) == 1
    assert compose.inspect(oneoff[0])["Config"]["Labels"]["com.docker.compose.oneoff"] == "True"
    e = compose("exec", "-T", "-e", "X=1", "db", "sh", "-c", "echo $X; exit 3")
    assert e.returncode == 3 and e.stdout == "1\n"
    compose("down", "-t", "2", check=True)
    assert cpybuild("ps", "-aq").stdout == ""


def test_ctrl_c_stops_attached_up(compose, cpybuild) -> None:
    compose.write(f"""
services:
  a:
    image: busybox:latest
    command: {LOOP}
  b:
    image: busybox:latest
    command: {LOOP}
    depends_on: [a]
""")
    proc = subprocess.Popen([pybuild_exe(), "--root", str(cpybuild.root), "--state-dir", str(cpybuild.state),
                             "compose", "-f", str(compose.dir / "compose.yaml"), "-p", "demo", "up", "-t", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and not ({"demo-a-1", "demo-b-1"} <= set(seen)):
            line = proc.stdout.readline()
            if not line:
                break
            name, sep, text = line.partition("  | ")
            if sep and text.startswith("started"):
                seen.append(name.strip())
        assert {"demo-a-1", "demo-b-1"} <= set(seen), seen
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 130
    assert "Gracefully stopping" in proc.stderr.read()
    rows = [json.loads(line) for line in compose("ps", "-a", "--format", "json", check=True).stdout.splitlines()]
    assert {r["Name"]: r["State"] for r in rows} == {"demo-a-1": "exited", "demo-b-1": "exited"}
    compose("down", check=True)
    assert os.path.exists(compose.dir / "compose.yaml")


def test_abort_on_container_exit_returns_its_code_and_stops_the_rest(compose, cpybuild) -> None:
    compose.write(f"""
services:
  job:
    image: busybox:latest
    command: ["sh", "-c", "sleep 1; echo job done; exit 4"]
  server:
    image: busybox:latest
    command: {LOOP}
""")
    r = compose("up", "--abort-on-container-exit", "-t", "3", "--no-color", timeout=120)
    assert r.returncode == 4, r.stderr
    assert "demo-job-1     | job done" in r.stdout, r.stdout
    rows = [json.loads(line) for line in compose("ps", "-a", "--format", "json", check=True).stdout.splitlines()]
    assert {row["Name"]: row["State"] for row in rows} == {"demo-job-1": "exited", "demo-server-1": "exited"}
    compose("down", check=True)


def test_logs_tail_timestamps_and_follow(compose) -> None:
    compose.write("""
services:
  talker:
    image: busybox:latest
    command: ["sh", "-c", "echo one; echo two; sleep 0.5; echo three >&2; sleep 1.5; echo four"]
""")
    compose("up", "-d", check=True)
    follow = compose("logs", "-f", "--no-color", timeout=60)     # returns once the container has exited
    assert follow.returncode == 0
    assert follow.stdout.splitlines() == ["demo-talker-1  | one", "demo-talker-1  | two",
                                          "demo-talker-1  | three", "demo-talker-1  | four"], follow.stdout
    assert compose("logs", "--tail", "1", check=True).stdout == "demo-talker-1  | four\n"
    stamped = compose("logs", "-t", "--tail", "1", check=True).stdout
    assert stamped.startswith("demo-talker-1  | 20") and stamped.endswith("Z four\n"), stamped
    assert compose("logs", "--no-log-prefix", "--tail", "2", check=True).stdout == "three\nfour\n"
    compose("down", check=True)
