"""builder.glob: Docker's pattern semantics, bad classes refused, linear time on hostile patterns."""

from __future__ import annotations

import time

import pytest

from builder.dockerignore import parse_ignore
from builder.glob import Glob
from layers.errors import InvalidInput


@pytest.mark.parametrize(("pattern", "path", "want"), [
    ("*.md", "a.md", True), ("*.md", "x/a.md", False), ("**/*.md", "x/y/a.md", True), ("**/*.md", "a.md", True),
    ("a?c", "abc", True), ("a?c", "a/c", False), ("[a-c]x", "bx", True), ("[!a-c]x", "bx", False),
    ("[^a-c]x", "dx", True), ("a/**", "a/b/c", True), ("a**", "ab/c", True), ("\\*", "*", True), ("\\*", "a", False),
    ("src/*.txt", "src/a.txt", True), ("src/*.txt", "src/x/a.txt", False), ("**", "anything/at/all", True),
    ("a/**/b", "a/b", True), ("a/**/b", "a/x/y/b", True), ("a/**/**/b", "a/x/b", True), ("[]]", "]", False),
])
def test_fullmatch(pattern, path, want):
    if pattern == "[]]":
        with pytest.raises(ValueError):
            Glob.compile(pattern)
        return
    assert Glob.compile(pattern).fullmatch(path) is want


def test_parents_rule():
    g = Glob.compile("build")
    assert g.match_with_parents("build/x/y") and g.match_with_parents("build") and not g.match_with_parents("builds")
    assert Glob.compile("*/tmp").match_with_parents("a/tmp/deep/file")


@pytest.mark.parametrize("bad", ["[]", "[a", "[z-a]", "x[\\"])
def test_bad_classes(bad):
    with pytest.raises(ValueError):
        Glob.compile(bad)
    with pytest.raises(InvalidInput, match=r"\.dockerignore:2: syntax error in pattern"):
        parse_ignore("ok\n" + bad + "\n")


def test_hostile_patterns_run_in_linear_time():
    patterns = ["*" * 60 + "x", "**/" * 40 + "x", "a*" * 40 + "z", "*a" * 40, "**/*" * 30 + "q"]
    path = "a/" * 100 + "a" * 500
    t0 = time.perf_counter()
    for p in patterns:
        g = Glob.compile(p)
        g.fullmatch(path)
        g.match_with_parents(path)
    assert time.perf_counter() - t0 < 5  # backtracking regexes take hours on these
