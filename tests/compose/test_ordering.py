"""``depends_on`` conditions, checked against what the containers' records say: each container's
recorded start and finish times (``inspect`` State.StartedAt/FinishedAt) and the database's health
probe log. Services with nothing between them start at once; a failed one-shot stops its
dependants from being created at all; ``stop`` goes dependants first."""

from __future__ import annotations

import calendar
import time

import pytest

from tests.compose.conftest import times

pytestmark = pytest.mark.timeout(240)

ORDER = """
services:
  app:
    image: busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.2; done"]
    depends_on:
      db: {condition: service_healthy}
      migrate: {condition: service_completed_successfully}
  migrate:
    image: busybox:latest
    command: ["sh", "-c", "sleep 0.5; exit EXIT"]
    depends_on:
      db: {condition: service_healthy}
  db:
    image: busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 2; touch /tmp/ready; while :; do sleep 0.2; done"]
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 60s              # after the first pass, no probe in this test's time: the log keeps it
      start_period: 30s
      start_interval: 100ms
  side1:
    image: busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.2; done"]
  side2:
    image: busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.2; done"]
"""


def _rfc(text: str) -> float:
    base, _, frac = text.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + (float("0." + frac) if frac else 0.0)


def test_conditions_order_the_starts(compose) -> None:
    compose.write(ORDER.replace("EXIT", "0"))
    up = compose("up", "-d")
    assert up.returncode == 0, up.stderr
    t = {n: times(compose.inspect(f"demo-{n}-1")) for n in ("db", "migrate", "app", "side1", "side2")}
    db = compose.inspect("demo-db-1")["State"]["Health"]
    first_pass = min(_rfc(p["Start"]) for p in db["Log"] if p["ExitCode"] == 0)
    assert t["db"][0] + 1.5 < first_pass                      # the probe passed only once /tmp/ready existed
    assert first_pass < t["migrate"][0], (first_pass, t["migrate"])     # service_healthy waited for it
    assert t["migrate"][1] is not None                         # the one-shot finished ...
    assert t["migrate"][1] <= t["app"][0], (t["migrate"], t["app"])    # ... before the app started
    # independent services did not wait for anyone: both up before the database was healthy
    assert t["side1"][0] < first_pass and t["side2"][0] < first_pass
    assert compose.inspect("demo-migrate-1")["State"]["ExitCode"] == 0
    # stop goes the other way: the app stops before the database it depends on
    compose("stop", "-t", "5", check=True)
    t = {n: times(compose.inspect(f"demo-{n}-1")) for n in ("db", "app")}
    assert t["app"][1] <= t["db"][1], t
    compose("down", check=True)


def test_failed_one_shot_keeps_its_dependants_from_starting(compose) -> None:
    compose.write(ORDER.replace("EXIT", "3"))
    up = compose("up", "-d")
    assert up.returncode != 0
    assert "migrate" in up.stderr and "didn't complete successfully" in up.stderr and "code 3" in up.stderr, up.stderr
    names = set(compose.ids())
    assert "demo-app-1" not in names                           # never created
    assert {"demo-db-1", "demo-migrate-1", "demo-side1-1", "demo-side2-1"} <= names
    compose("down", "-t", "2", check=True)
    assert compose.ids() == {}

