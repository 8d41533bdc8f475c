"""runner.events: Docker's event filters and time arguments, on journal values."""

from __future__ import annotations

import pytest

from layers.errors import InvalidInput
from layers.events import Event
from runner.events import parse_filters, parse_time, watch
from layers import events as journal

CID = "ab" * 32


def _ev(type_="container", action="start", actor=CID, **attrs) -> Event:
    return Event(type_, action, actor, tuple(attrs.items()), 1)


@pytest.mark.parametrize("filters, event, expected", [
    (["container=web"], _ev(name="web"), True),
    (["container=abab"], _ev(name="web"), True),
    (["container=db"], _ev(name="web"), False),
    (["container=web"], _ev("image", "tag", "sha256:1", name="web"), False),
    (["event=die"], _ev(action="die"), True),
    (["event=start", "event=die"], _ev(action="die"), True),
    (["event=health_status"], _ev(action="health_status: healthy"), True),
    (["event=start"], _ev(action="restart"), False),
    (["type=image"], _ev(), False),
    (["image=busybox"], _ev(image="busybox:latest"), True),
    (["image=busybox:1"], _ev(image="busybox:latest"), False),
    (["image=abcd"], _ev("image", "delete", "sha256:abcdef"), True),
    (["label=team"], _ev(team="a"), True),
    (["label=team=b"], _ev(team="a"), False),
    (["type=container", "event=die"], _ev(action="start"), False),
])
def test_filters_match_as_dockers_do(filters, event, expected):
    assert parse_filters(filters).matches(event) is expected


@pytest.mark.parametrize("bad", ["colour=red", "container", "type=spaceship", "since=tomorrow"])
def test_bad_filters_are_refused(bad):
    with pytest.raises(InvalidInput):
        parse_filters([bad])


def test_times_are_durations_unix_times_or_rfc3339():
    now = 1_700_000_000.0
    assert parse_time("10m", now) == int((now - 600) * 1e9)
    assert parse_time("1h30m", now) == int((now - 5400) * 1e9)
    assert parse_time("0s", now) == int(now * 1e9)
    assert parse_time("1500ms", now) == int(now * 1e9) - 1_500_000_000
    assert parse_time("1700000000", now) == 1_700_000_000 * 10**9
    assert parse_time("2023-11-14T22:13:20Z", now) == 1_700_000_000 * 10**9
    assert parse_time("2023-11-14T23:13:20.5+01:00", now) == 1_700_000_000 * 10**9 + 500_000_000
    assert parse_time("2023-11-14T22:13:20.000000001Z", now) == 1_700_000_000 * 10**9 + 1
    assert parse_time("2023-11-14", now) == (1_700_000_000 - 80000) * 10**9
    with pytest.raises(InvalidInput, match="--until"):
        parse_time("soon", now, "--until")


def test_watch_without_follow_gives_the_window(tmp_path):
    for ns, action in ((10, "create"), (20, "start"), (30, "die")):
        journal.append(str(tmp_path), Event("container", action, CID, (("name", "x"),), ns))
    got = list(watch(str(tmp_path), since=15, until=30, follow=False))
    assert [e.action for e in got] == ["start", "die"]
    got = list(watch(str(tmp_path), since=0, flt=parse_filters(["event=create"]), follow=False))
    assert [e.action for e in got] == ["create"]


def test_watch_follows_until_its_end_time(tmp_path):
    clock = iter(range(100, 10**6, 10))
    journal.append(str(tmp_path), Event("container", "start", CID, (), 50))
    got = list(watch(str(tmp_path), since=0, until=150, poll=0, clock=lambda: next(clock)))
    assert [e.action for e in got] == ["start"]
