"""``images --filter`` (and ``image ls --filter``) as Docker documents it: reference globs,
dangling, label, before and since."""

from __future__ import annotations

import json

import pytest


def _names(pybuild, *args) -> list[str]:
    out = pybuild("images", "--format", "json", *args, check=True).stdout.splitlines()
    return sorted(f'{r["Repository"]}:{r["Tag"]}' for r in map(json.loads, out))


@pytest.fixture
def three(pybuild, busybox_tar):
    """``old/box:1`` (label tier=a), ``new/box:2`` (tier=b, color=red), ``busybox:latest``, created in that order."""
    pybuild("import", "--change", "LABEL tier=a", str(busybox_tar), "old/box:1", check=True)
    pybuild("import", "--change", "LABEL tier=b color=red", str(busybox_tar), "new/box:2", check=True)
    pybuild("import", str(busybox_tar), "busybox", check=True)
    created = [json.loads(pybuild("image", "inspect", n, check=True).stdout)[0]["Created"]
               for n in ("old/box:1", "new/box:2", "busybox")]
    assert created == sorted(created) and len(set(created)) == 3


def test_reference_globs_do_not_cross_slashes(pybuild, three):
    assert _names(pybuild, "--filter", "reference=busybox") == ["busybox:latest"]
    assert _names(pybuild, "--filter", "reference=*box") == ["busybox:latest"]
    assert _names(pybuild, "--filter", "reference=*/box") == ["new/box:2", "old/box:1"]
    assert _names(pybuild, "--filter", "reference=*/box:1") == ["old/box:1"]
    assert _names(pybuild, "-f", "reference=old/*", "-f", "reference=busy*") == ["busybox:latest", "old/box:1"]
    ids = pybuild("image", "ls", "-q", "--filter", "reference=new/box", check=True).stdout.split()
    assert ids == pybuild("images", "-q", "new/box", check=True).stdout.split() and len(ids) == 1


def test_label_dangling_before_since(pybuild, three):
    assert _names(pybuild, "--filter", "label=tier") == ["new/box:2", "old/box:1"]
    assert _names(pybuild, "--filter", "label=tier=b") == ["new/box:2"]
    assert _names(pybuild, "--filter", "label=tier", "--filter", "label=color=blue") == []
    assert _names(pybuild, "--filter", "dangling=true") == []
    assert len(_names(pybuild, "--filter", "dangling=false")) == 3
    assert _names(pybuild, "--filter", "before=new/box:2") == ["old/box:1"]
    assert _names(pybuild, "--filter", "since=new/box:2") == ["busybox:latest"]
    assert _names(pybuild, "--filter", "since=old/box:1", "--filter", "before=busybox") == ["new/box:2"]


@pytest.mark.parametrize("bad", ["colour=red", "dangling=maybe", "reference"])
def test_bad_filters_are_one_line_errors(pybuild, three, bad):
    r = pybuild("images", "--filter", bad)
    assert r.returncode != 0 and "invalid filter" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_before_an_unknown_image_fails(pybuild, three):
    r = pybuild("images", "--filter", "before=nosuch:1")
    assert r.returncode != 0 and "Traceback" not in r.stderr and r.stderr.strip()
