"""The strict-skips check (tests/conftest.py) itself: what it lets through and what it refuses."""

from __future__ import annotations

from types import SimpleNamespace

from tests.conftest import allowed_skip_reasons, split_skips


def _skipped(nodeid: str, reason: str) -> SimpleNamespace:
    return SimpleNamespace(nodeid=nodeid, longrepr=("/x/test_a.py", 3, f"Skipped: {reason}"))


def test_only_reasons_that_start_with_an_entry_pass():
    allowed = ("host uses cgroup v1 controllers",)
    ok, refused = split_skips([_skipped("a", "host uses cgroup v1 controllers (hybrid)"),
                               _skipped("b", "libseccomp.so.2 is not installed"),
                               _skipped("c", "the host uses cgroup v1 controllers")], allowed)
    assert ok == [("a", "host uses cgroup v1 controllers (hybrid)")]
    assert [nodeid for nodeid, _ in refused] == ["b", "c"]


def test_the_allow_list_is_short_and_read_without_comments(tmp_path):
    entries = allowed_skip_reasons()
    assert 0 < len(entries) <= 5 and not any(e.startswith("#") for e in entries)
    listed = tmp_path / "list.txt"
    listed.write_text("# why\n\n  one reason  \n# another comment\ntwo\n")
    assert allowed_skip_reasons(listed) == ("one reason", "two")
