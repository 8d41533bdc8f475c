"""The pure parts of rootless mode: subordinate id files, id maps, the private state directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from layers.errors import StoreError
from layers.store.location import private_dir, read_id_map
from runner.userns.idmap import map_lines
from runner.userns.subids import IdRange, subordinate_ranges


def test_subordinate_ranges_by_name_and_uid(tmp_path: Path) -> None:
    f = tmp_path / "subuid"
    f.write_text("alice:100000:65536\n1001:300000:10\nbob:200000:65536\nbroken line\nalice:x:1\nalice:5:0\n"
                 "alice:400000:5\n")
    assert subordinate_ranges(str(f), "alice", 1001) == (IdRange(100000, 65536), IdRange(300000, 10),
                                                         IdRange(400000, 5))
    assert subordinate_ranges(str(f), None, 1001) == (IdRange(300000, 10),)
    assert subordinate_ranges(str(f), "carol", 1003) == ()
    assert subordinate_ranges(str(tmp_path / "missing"), "alice", 1) == ()


def test_map_lines_put_the_user_at_zero_and_ranges_after() -> None:
    assert map_lines(1001, ()) == [(0, 1001, 1)]
    assert map_lines(1001, (IdRange(100000, 65536), IdRange(300000, 10))) == [
        (0, 1001, 1), (1, 100000, 65536), (65537, 300000, 10)]


def test_read_id_map(tmp_path: Path) -> None:
    f = tmp_path / "uid_map"
    f.write_text("         0       1001          1\n         1     100000      65536\n")
    assert read_id_map(str(f)) == ((0, 1001, 1), (1, 100000, 65536))
    assert read_id_map(str(tmp_path / "none")) == ((0, 0, 4294967295),)


def test_private_dir_made_0700_and_refused_when_someone_else_owns_it(tmp_path: Path) -> None:
    mine = tmp_path / "a" / "state"
    assert private_dir(str(mine)) == str(mine)
    assert mine.stat().st_mode & 0o777 == 0o700
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, 4242, 4242)  # the suite runs as root: another owner is a chown away
    with pytest.raises(StoreError, match="not a directory owned by"):
        private_dir(str(theirs))
