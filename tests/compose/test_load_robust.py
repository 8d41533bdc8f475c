"""Whatever the file says, loading ends in a Project or a ComposeError with a one-line message,
never another exception: a fixed-seed corpus of mutated compose files (values swapped for odd
ones, lines dropped or duplicated, characters flipped)."""

from __future__ import annotations

import random

import pytest

from compose.errors import ComposeError
from compose.load import load_project

SEED_FILE = """\
name: robust
x-common: &common
  image: busybox
services:
  web:
    <<: *common
    command: ["sh", "-c", "echo ${GREETING:-hi}"]
    ports: ["8080:80", "127.0.0.1:9000-9001:9000-9001/udp", {target: 81, published: "8081"}]
    volumes: [data:/data, ./site:/site:ro, {type: tmpfs, target: /t, tmpfs: {size: 1m}}]
    environment: {A: "1", B: "${B:-2}"}
    env_file: [{path: vars.env, required: false}]
    depends_on:
      db: {condition: service_healthy, restart: true}
    healthcheck: {test: "true", interval: 5s, retries: 3}
    deploy: {replicas: 2, resources: {limits: {memory: 64m, cpus: "0.5"}}}
    ulimits: {nofile: {soft: 10, hard: 20}}
    networks: {front: {aliases: [w]}}
    tmpfs: ["/run:size=1m"]
    extra_hosts: ["h:1.2.3.4"]
    secrets: [pw]
    restart: on-failure:2
    stop_grace_period: 3s
  db:
    image: busybox
    profiles: [db]
    networks: [front]
networks:
  front: {internal: true}
volumes:
  data: {}
secrets:
  pw: {file: ./pw.txt}
"""

ODD = ["", "~", "0", "-1", "1.5", "yes", "[]", "{}", "[1, 2]", "{a: 1}", "'${X:?bad}'", "'$$'", "'${'", "99999999",
       "'1:2:3'", "'a b'", "!reset", "*common", "'8000-8010:80'", "'10q'"]


def _mutations(rng: random.Random, count: int):
    lines = SEED_FILE.splitlines()
    for _ in range(count):
        out = list(lines)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(out))
            kind = rng.random()
            if kind < 0.5 and ":" in out[i]:
                key, _, _ = out[i].partition(":")
                out[i] = f"{key}: {rng.choice(ODD)}"
            elif kind < 0.65:
                del out[i]
            elif kind < 0.8:
                out.insert(i, out[i])
            else:
                line = out[i]
                j = rng.randrange(len(line) + 1)
                out[i] = line[:j] + rng.choice("{}[]:,-'\"$ \t#&*!|>") + line[j:]
        yield "\n".join(out) + "\n"


def test_mutated_files_load_or_fail_cleanly(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pw.txt").write_text("pw")
    path = tmp_path / "compose.yaml"
    path.write_text(SEED_FILE)
    assert load_project(["compose.yaml"], environ={}, profiles=["db"]).service("web").replicas == 2
    rng = random.Random(1234)
    loaded = failed = 0
    for text in _mutations(rng, 400):
        path.write_text(text)
        try:
            load_project(["compose.yaml"], environ={}, profiles=["db"])
            loaded += 1
        except ComposeError as exc:
            message = str(exc)
            assert message and "\n" not in message.strip() and "Traceback" not in message, message
            failed += 1
        except Exception as exc:  # noqa: BLE001 - the point of the test
            pytest.fail(f"{type(exc).__name__}: {exc}\n--- input ---\n{text}")
    assert loaded > 20 and failed > 100, (loaded, failed)
