"""Health check values: moby's state rules (:meth:`runner.records.Health.after`), the merge of the
image's HEALTHCHECK with ``--health-*``, Go durations, and the records' JSON round trip."""

from __future__ import annotations

import pytest

from runner.errors import InvalidRunOption
from runner.options import HealthOptions, container_healthcheck, parse_duration
from runner.records import ContainerState, Health, HealthConfig, HealthResult

CHECK = HealthConfig(test=("CMD", "true"), retries=2, start_period=10.0)


def _result(code: int, at: float) -> HealthResult:
    return HealthResult(at, at + 0.1, code, "")


def test_failures_in_the_start_period_do_not_count_until_healthy() -> None:
    h = Health().after(_result(1, 105.0), CHECK, started_at=100.0)
    assert (h.status, h.failing_streak) == ("starting", 0)
    h = h.after(_result(0, 106.0), CHECK, 100.0)
    assert (h.status, h.failing_streak) == ("healthy", 0)
    h = h.after(_result(1, 107.0), CHECK, 100.0)        # healthy: the start period no longer shields
    assert (h.status, h.failing_streak) == ("healthy", 1)
    h = h.after(_result(-1, 108.0), CHECK, 100.0)
    assert (h.status, h.failing_streak) == ("unhealthy", 2)
    h = Health().after(_result(1, 111.0), CHECK, 100.0)  # after the start period a failure counts
    assert h.failing_streak == 1 and h.status == "starting"


def test_log_keeps_the_last_five() -> None:
    h = Health()
    for i in range(7):
        h = h.after(_result(i % 2, 200.0 + i), CHECK, 100.0)
    assert [r.start for r in h.log] == [202.0, 203.0, 204.0, 205.0, 206.0]


def test_state_round_trip_with_health() -> None:
    cur = ContainerState(status="running", health=Health("healthy", 0, (HealthResult(1.5, 2.5, 0, "ok\n"),)))
    assert ContainerState.from_json(cur.to_json(), "x") == cur
    assert ContainerState.from_json(ContainerState().to_json(), "x").health is None
    check = HealthConfig(("CMD-SHELL", "curl -f x"), interval=1.0, timeout=0.5, retries=4, shell=("/bin/ash", "-c"))
    assert HealthConfig.from_dict(check.to_dict()) == check and check.argv() == ("/bin/ash", "-c", "curl -f x")
    assert check.to_dict()["Interval"] == 1_000_000_000 and check.effective("start_interval") == 5.0


def test_merge_with_the_image() -> None:
    image = {"Test": ["CMD", "probe"], "Interval": 5_000_000_000, "Retries": 7}
    got = container_healthcheck(image, None, HealthOptions(timeout=2.0))
    assert got == HealthConfig(("CMD", "probe"), interval=5.0, timeout=2.0, retries=7)
    got = container_healthcheck(image, ["/bin/bash", "-c"], HealthOptions(cmd="true", retries=1))
    assert got.test == ("CMD-SHELL", "true") and got.retries == 1 and got.interval == 5.0
    assert got.argv() == ("/bin/bash", "-c", "true")
    assert container_healthcheck(image, None, HealthOptions(disable=True)) is None
    assert container_healthcheck({"Test": ["NONE"]}, None, HealthOptions()) is None
    assert container_healthcheck(None, None, HealthOptions()) is None
    assert container_healthcheck({"Test": ["NONE"]}, None, HealthOptions(cmd="x")).test == ("CMD-SHELL", "x")


@pytest.mark.parametrize("text,seconds", [("30s", 30.0), ("1m30s", 90.0), ("500ms", 0.5), ("0", 0.0),
                                          ("1.5h", 5400.0), ("250us", 0.00025)])
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, "--health-interval") == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["10", "", "1x", "s", "-1s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(InvalidRunOption, match="not a duration"):
        parse_duration(text, "--health-interval")


def test_bad_options() -> None:
    with pytest.raises(InvalidRunOption, match="conflicts"):
        HealthOptions(disable=True, interval=1.0)
    with pytest.raises(InvalidRunOption, match="less than 1ms"):
        HealthOptions(timeout=0.0001)
    with pytest.raises(InvalidRunOption, match="negative"):
        HealthOptions(retries=-1)
