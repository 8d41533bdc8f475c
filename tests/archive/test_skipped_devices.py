"""A rootless extraction cannot create device nodes: their names go to the caller (``on_skipped``,
the store's ``notes``), and the library writes nothing to stderr; the CLI prints the note once.

Rootless is real here: a forked child drops to the ``nobody`` user (``is_rootless()`` is true for a
non-root host user) and extracts into a directory it owns; ``mknod`` fails as it does for any user."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import tempfile
import traceback
from pathlib import Path

import pytest

from layers.archive import extract
from layers.descriptor import Descriptor
from layers.mediatype import MediaType
from layers.store import location
from layers.store.store import Store  # imported as root: the interpreter's files are not nobody's to read
from tests.archive.helpers import build, f, member

NOBODY = 65534


@pytest.fixture
def nobody_dir():
    if os.geteuid() != 0:
        pytest.fail("this test drops from root to nobody; run the suite as root")
    d = Path(tempfile.mkdtemp(prefix="pb-skipdev-", dir="/var/tmp"))
    os.chmod(d, 0o755)
    os.chown(d, NOBODY, NOBODY)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _as_nobody(work: Path, body) -> dict:
    """Run ``body(work)`` in a child as nobody, its fd 2 captured; its JSON result and the stderr text."""
    err = work / "stderr"
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            fd = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 2)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            location.host_uid.cache_clear()  # the parent (root) may have asked already
            location.in_user_namespace.cache_clear()
            (work / "result.json").write_text(json.dumps(body(work)))
            code = 0
        except BaseException:
            (work / "error").write_text(traceback.format_exc())
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, (work / "error").read_text()
    return {"result": json.loads((work / "result.json").read_text()), "stderr": err.read_text()}


LAYER = build(f("etc/hello", b"hi\n", uid=NOBODY, gid=NOBODY),
              member("dev/odd", tarfile.CHRTYPE, major=1, minor=3, mode=0o666, uid=NOBODY, gid=NOBODY),
              member("dev/blk", tarfile.BLKTYPE, major=7, minor=0, mode=0o660, uid=NOBODY, gid=NOBODY))


def _extract(work: Path) -> dict:
    dest = work / "dest"
    dest.mkdir()
    calls = []
    extract(io.BytesIO(LAYER), str(dest), on_skipped=calls.append)
    return {"calls": [list(c) for c in calls], "hello": (dest / "etc" / "hello").read_text(),
            "odd": os.path.lexists(dest / "dev" / "odd")}


def test_extract_hands_skipped_devices_to_the_caller_and_prints_nothing(nobody_dir: Path) -> None:
    out = _as_nobody(nobody_dir, _extract)
    assert out["result"] == {"calls": [["dev/odd", "dev/blk"]], "hello": "hi\n", "odd": False}
    assert out["stderr"] == ""


def _snapshot(work: Path) -> dict:
    notes: list[str] = []
    store = Store(str(work / "root"), notes=notes.append)
    digest = store.blobs.put_bytes(LAYER)
    desc = Descriptor(MediaType.layer_type(None), digest, len(LAYER))
    path = store.snapshots.ensure(desc, digest)
    again = store.snapshots.ensure(desc, digest)  # ready: not unpacked again, not said again
    return {"notes": notes, "same": path == again, "hello": Path(path, "etc", "hello").read_text()}


def test_snapshot_unpack_says_it_once_through_the_store_s_notes(nobody_dir: Path) -> None:
    out = _as_nobody(nobody_dir, _snapshot)
    notes = out["result"]["notes"]
    assert len(notes) == 1 and notes[0].endswith(
        "device nodes cannot be created in a rootless user namespace, skipped: dev/odd, dev/blk"), notes
    assert out["result"]["same"] and out["result"]["hello"] == "hi\n"
    assert out["stderr"] == ""
