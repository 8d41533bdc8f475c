"""A service on several networks: ``web`` on frontend, ``app`` on frontend and backend, ``db`` on
backend. ``web`` reaches ``app`` and ``app`` reaches ``db`` by name; ``web`` cannot resolve ``db``;
aliases are per network; ``down`` leaves neither container nor network."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.timeout(300)


def _httpd(text: str) -> str:
    return (f'["sh", "-c", "trap \'exit 0\' TERM; mkdir -p /www; echo {text} > /www/index.html; '
            f'httpd -f -p 8080 -h /www & wait"]')


TIERS = f"""
services:
  web:
    image: busybox:latest
    command: {_httpd("web")}
    networks: [frontend]
  app:
    image: busybox:latest
    command: {_httpd("app")}
    networks:
      frontend: {{}}
      backend:
        aliases: [api]
  db:
    image: busybox:latest
    command: {_httpd("db")}
    networks: [backend]
networks:
  frontend: {{}}
  backend: {{}}
"""


def _get(compose, service: str, host: str):
    """``wget`` from ``service`` to ``host`` (retried while the server may still be starting)."""
    import time

    deadline = time.monotonic() + 15
    while True:
        got = compose("exec", "-T", service, "wget", "-qO-", f"http://{host}:8080/")
        if got.returncode == 0 or time.monotonic() > deadline or "bad address" in got.stderr:
            return got
        time.sleep(0.3)


def _resolves(compose, service: str, host: str) -> bool:
    out = compose("exec", "-T", service, "ping", "-c", "1", "-W", "1", host)
    return re.search(r"^PING \S+ \([0-9.]+\)", out.stdout, re.M) is not None


def test_frontend_backend(compose, cpybuild) -> None:
    compose.write(TIERS)
    up = compose("up", "-d")
    assert up.returncode == 0, up.stderr
    nets = compose.inspect("demo-app-1")["NetworkSettings"]["Networks"]
    assert set(nets) == {"demo_frontend", "demo_backend"} and all(n["IPAddress"] for n in nets.values())
    assert nets["demo_backend"]["Aliases"] == ["app", "api"]
    assert _get(compose, "web", "app").stdout == "app\n"
    assert _get(compose, "app", "db").stdout == "db\n"
    assert _get(compose, "app", "web").stdout == "web\n"
    assert _get(compose, "db", "api").stdout == "app\n"        # the alias lives on backend...
    assert not _resolves(compose, "web", "api")                 # ...not on frontend
    assert not _resolves(compose, "web", "db") and not _resolves(compose, "db", "web")
    # a second up keeps everything (the networks are part of the unchanged config)
    ids = compose.ids()
    compose("up", "-d", check=True)
    assert compose.ids() == ids
    down = compose("down", "-t", "2")
    assert down.returncode == 0, down.stderr
    assert cpybuild("ps", "-aq").stdout == ""
    left = cpybuild("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert "demo_frontend" not in left and "demo_backend" not in left
