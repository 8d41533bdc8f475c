"""The issue's three-tier application, for real: nginx (Debian's nginx-light) proxies to an
application service built from a Dockerfile here (Python's http.server speaking RESP), which reads
and writes a real database server (Debian's redis-server). The app waits for the database with
``condition: service_healthy``, and a one-shot migration gated by
``service_completed_successfully`` seeds the database first. An HTTP GET on nginx's published port
shows data that went through all three; ``down -v`` leaves no container, network or volume.

The Debian base comes from the session's ``debian_tar`` (debootstrap, made once per session and
shared with the builder's Debian builds); the packages are installed by ``pybuild build`` from the
Debian mirror. Slow (a minute or two): marked ``slow``."""

from __future__ import annotations

import json
import textwrap
import urllib.request
from pathlib import Path

import pytest

from tests.compose.conftest import Compose, times

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

BASE = """\
FROM debian:bookworm
RUN apt-get update && apt-get install -y --no-install-recommends nginx-light redis-server python3-minimal \\
    libpython3.11-stdlib && rm -rf /var/lib/apt/lists/*
"""

RESP = '''\
import socket


def redis(*args):
    """One command to the database over RESP; the reply decoded (int, str, list or None)."""
    with socket.create_connection(("db", 6379), timeout=5) as s:
        out = b"*%d\\r\\n" % len(args)
        for a in args:
            a = str(a).encode()
            out += b"$%d\\r\\n%s\\r\\n" % (len(a), a)
        s.sendall(out)
        return _reply(s.makefile("rb"))


def _reply(f):
    line = f.readline().rstrip(b"\\r\\n")
    kind, rest = line[:1], line[1:]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        return None if n < 0 else f.read(n + 2)[:-2].decode()
    if kind == b"*":
        return [_reply(f) for _ in range(int(rest))]
    raise RuntimeError(line)
'''

APP = '''\
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from resp import redis


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        q = parse_qs(urlparse(self.path).query)
        for note in q.get("note", []):
            redis("RPUSH", "notes", note)
        body = json.dumps({"hits": redis("INCR", "hits"), "notes": redis("LRANGE", "notes", 0, -1),
                           "schema": redis("GET", "schema_version"), "served_by": "app"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


print("app listening on 8000", flush=True)
ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
'''

MIGRATE = '''\
from resp import redis

redis("SET", "schema_version", "1")
redis("DEL", "notes")
redis("RPUSH", "notes", "seeded-by-migration")
print("migrated", flush=True)
'''

APP_DOCKERFILE = """\
FROM tt-base
WORKDIR /app
COPY resp.py app.py migrate.py /app/
ENV PYTHONUNBUFFERED=1
CMD ["python3", "/app/app.py"]
"""

NGINX = """\
worker_processes 1;
error_log stderr;
pid /tmp/nginx.pid;
events { worker_connections 64; }
http {
  access_log off;
  server {
    listen 80;
    location / {
      proxy_pass http://app:8000;
      add_header X-Tier web;
    }
  }
}
"""

COMPOSE = """\
name: shop
services:
  web:
    image: tt-base
    command: ["nginx", "-g", "daemon off;", "-c", "/etc/nginx/compose.conf"]
    volumes: ["./nginx.conf:/etc/nginx/compose.conf:ro"]
    ports: ["127.0.0.1::80"]
    depends_on:
      app: {condition: service_started}
  app:
    build: ./app
    image: shop-app:dev
    stop_signal: SIGINT
    depends_on:
      db: {condition: service_healthy}
      migrate: {condition: service_completed_successfully}
  migrate:
    image: shop-app:dev
    command: ["python3", "/app/migrate.py"]
    depends_on:
      db: {condition: service_healthy}
  db:
    image: tt-base
    command: ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--dir", "/data", "--appendonly", "yes"]
    volumes: ["dbdata:/data"]
    healthcheck:
      test: ["CMD", "redis-cli", "ping"]
      interval: 300ms
      start_interval: 200ms
      retries: 20
volumes:
  dbdata: {}
"""


@pytest.fixture
def shop(cpybuild, debian_tar: Path, tmp_path: Path) -> Compose:
    cpybuild("import", str(debian_tar), "debian:bookworm", check=True)
    base = tmp_path / "base"
    base.mkdir()
    (base / "Dockerfile").write_text(BASE)
    cpybuild("build", "--progress", "plain", "-t", "tt-base", str(base), check=True, timeout=600)
    d = tmp_path / "shop"
    (d / "app").mkdir(parents=True)
    for name, text in (("resp.py", RESP), ("app.py", APP), ("migrate.py", MIGRATE), ("Dockerfile", APP_DOCKERFILE)):
        (d / "app" / name).write_text(textwrap.dedent(text))
    (d / "nginx.conf").write_text(NGINX)
    c = Compose(cpybuild, d, "shop")
    c.write(COMPOSE)
    return c


def _get(url: str):
    with urllib.request.urlopen(url, timeout=15) as resp:
        return resp.headers.get("X-Tier"), json.loads(resp.read())


def test_three_tier_app_through_nginx_app_and_redis(shop, cpybuild) -> None:
    up = shop("up", "-d", "--build", "--wait", "--wait-timeout", "120", timeout=600)
    assert up.returncode == 0, up.stderr
    # the order: db healthy before migrate started; migrate done before app started; app before web
    t = {n: times(shop.inspect(f"shop-{n}-1")) for n in ("db", "migrate", "app", "web")}
    health = shop.inspect("shop-db-1")["State"]["Health"]
    assert health["Status"] == "healthy"
    assert t["migrate"][1] is not None and shop.inspect("shop-migrate-1")["State"]["ExitCode"] == 0
    assert t["db"][0] < t["migrate"][0]
    assert t["migrate"][1] <= t["app"][0], (t["migrate"], t["app"])
    assert t["app"][0] <= t["web"][0]
    port = shop("port", "web", "80", check=True).stdout.strip()
    tier, first = _get(f"http://{port}/?note=from-the-test")
    assert tier == "web"                                  # nginx answered ...
    assert first["served_by"] == "app"                    # ... with the app's response ...
    assert first["schema"] == "1"                         # ... of data the migration wrote to redis
    assert first["notes"] == ["seeded-by-migration", "from-the-test"]
    _, second = _get(f"http://{port}/")
    assert second["hits"] == first["hits"] + 1            # state kept in the database
    assert second["notes"] == first["notes"]
    logs = shop("logs", "migrate", "app", check=True).stdout
    assert "shop-migrate-1  | migrated" in logs and "shop-app-1" in logs
    # a second up changes nothing
    ids = shop.ids()
    assert shop("up", "-d", "--wait", timeout=300).returncode == 0
    assert {k: v for k, v in shop.ids().items()} == ids
    down = shop("down", "-v", "-t", "3")
    assert down.returncode == 0, down.stderr
    assert cpybuild("ps", "-aq").stdout == ""
    assert "shop_default" not in cpybuild("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert "shop_dbdata" not in cpybuild("volume", "ls", "--format", "{{.Name}}").stdout.split()
