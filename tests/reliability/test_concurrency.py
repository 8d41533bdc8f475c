"""SECURITY.md case 23: builds and pulls at once on one store, sharing base layers, while ``rmi``,
``system prune`` and GC run; and the lock granularity that lets unrelated work overlap.

What is checked: every command succeeds or fails with one ``pybuild:`` line (never a traceback, never
"not in the store"); an image that ``images`` lists is always whole (a watcher loads every listed image
and checks every ready snapshot all along); ``fsck`` is clean afterwards; what was built or pulled runs.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from .helpers import fsck_clean, pause_at, pids_of, resume, spawn

pytestmark = pytest.mark.timeout(300)


def _context(tmp: Path, name: str, dockerfile: str, files: dict[str, str] | None = None) -> Path:
    ctx = tmp / name
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    for fname, text in (files or {}).items():
        (ctx / fname).write_text(text)
    return ctx


class Watcher(threading.Thread):
    """Loads every listed image and checks every ready snapshot, over and over, in this process."""

    def __init__(self, root: Path) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.stop = threading.Event()
        self.seen: list[str] = []
        self.rounds = 0

    def run(self) -> None:
        import os

        from layers.errors import NotFound
        from layers.store import Store

        store = Store(str(self.root))
        while not self.stop.is_set():
            for rec in store.images.list():
                try:
                    store.images.load(rec)
                except NotFound as exc:
                    if any(r.name == rec.name and r.manifest_digest == rec.manifest_digest
                           for r in store.images.list()):
                        self.seen.append(f"listed image {rec.name} is not whole: {exc}")
            for name, ready in store.snapshots.list():
                if ready and not os.path.isdir(os.path.join(store.snapshots.base, name, "fs")):
                    if os.path.isfile(os.path.join(store.snapshots.base, name, "ready")):
                        self.seen.append(f"snapshot {name} is marked ready without its tree")
            self.rounds += 1
            time.sleep(0.05)


@pytest.mark.slow
def test_eight_builds_and_pulls_with_rmi_prune_and_gc(rpb, seeded, tmp_path):
    """Four builds (two FROM the local busybox, two FROM a registry base they must pull) and four pulls
    (two images on that same base, the base itself, busybox by its registry name) at once, while a churn
    loop removes images, prunes and tags. GC must not wait for whole builds: a prune started while every
    build sleeps in its RUN step ends while they still sleep."""
    host = seeded.host
    token = f"3.{time.time_ns() % 10**6:06d}"
    rpb("tag", "busybox:latest", "old:1", check=True)
    contexts = [
        _context(tmp_path, f"local{i}", "FROM busybox\nCOPY own.txt /own.txt\n"
                 f"RUN sleep {token} && cat /own.txt > /copied && echo {i} > /n\n", {"own.txt": f"own {i}\n"})
        for i in range(2)
    ] + [
        _context(tmp_path, f"remote{i}", f"FROM {seeded.base}\nRUN sleep {token} && echo remote {i} > /n\n")
        for i in range(2)
    ]
    pulls = [seeded.apps[0], seeded.apps[1], seeded.base, f"{host}/rel/busybox:1"]
    watcher = Watcher(rpb.root)
    watcher.start()
    stop = threading.Event()
    churn_log: list[tuple[str, int, str, float]] = []

    def churn() -> None:
        n = 0
        while not stop.is_set():
            for args in (("rmi", "old:1"), ("system", "prune"), ("tag", "busybox:latest", f"extra:{n}"),
                         ("rmi", f"extra:{n}"), ("rmi", seeded.apps[1]), ("images", "-q")):
                t0 = time.monotonic()
                proc = rpb(*args)
                churn_log.append((" ".join(args), proc.returncode, proc.stderr, time.monotonic() - t0))
            n += 1

    side = threading.Thread(target=churn, daemon=True)
    t_start = time.monotonic()
    procs = [(f"build {ctx.name}", spawn(rpb, "build", "-q", "-t", f"{ctx.name}:1", str(ctx))) for ctx in contexts]
    procs += [(f"pull {ref}", spawn(rpb, "pull", "-q", ref)) for ref in pulls]
    deadline = time.monotonic() + 60
    while len(pids_of(f"sleep {token}")) < len(contexts):
        assert time.monotonic() < deadline, "the builds never all reached their RUN step"
        assert all(p.poll() is None for w, p in procs if w.startswith("build")), "a build ended early"
        time.sleep(0.02)
    t0 = time.monotonic()
    first = rpb("system", "prune")
    first_prune = time.monotonic() - t0
    assert first.returncode == 0, first.stderr
    still = len(pids_of(f"sleep {token}"))
    assert still == len(contexts), f"prune ({first_prune:.2f}s) waited for the builds: {still} still in RUN"
    side.start()
    results = []
    for what, p in procs:
        out, err = p.communicate(timeout=240)
        results.append((what, p.returncode, out, err))
    elapsed = time.monotonic() - t_start
    stop.set()
    side.join(60)
    watcher.stop.set()
    watcher.join(10)

    for what, code, _out, err in results + [(a, c, "", e) for a, c, e, _t in churn_log]:
        assert "Traceback" not in err, f"{what}: {err}"
        assert "not in the store" not in err and "not known" not in err, f"{what}: {err}"
        if code != 0:
            lines = err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("pybuild: "), f"{what}: {err}"
    failed = [(what, err) for what, code, _o, err in results if code != 0]
    assert not failed, failed
    assert not watcher.seen, watcher.seen[:5]
    assert watcher.rounds > 5
    prunes = [first_prune] + [t for a, c, _e, t in churn_log if a == "system prune" and c == 0]

    for ctx in contexts:
        i = ctx.name[-1]
        want = f"own {i}\n{i}\n" if ctx.name.startswith("local") else f"remote {i}\n"
        files = ["/copied", "/n"] if ctx.name.startswith("local") else ["/n"]
        run = rpb("run", "--rm", "--network", "none", f"{ctx.name}:1", "cat", *files, check=True)
        assert run.stdout == want
    run = rpb("run", "--rm", "--network", "none", seeded.apps[0], "cat", "/app", check=True)
    assert run.stdout == "app-a\n"
    rpb("system", "prune", check=True)
    fsck_clean(rpb)
    print(f"\nconcurrency: 4 builds + 4 pulls in {elapsed:.1f}s; {len(prunes)} prunes "
          f"(max {max(prunes):.2f}s), {len(churn_log)} churn commands, {watcher.rounds} watcher rounds")


def _timed_build(rpb, ctx: Path, tag: str) -> float:
    t0 = time.monotonic()
    rpb("build", "-q", "--no-cache", "-t", tag, str(ctx), check=True)
    return time.monotonic() - t0


@pytest.mark.slow
def test_two_builds_of_different_images_do_not_wait_on_each_other(rpb, tmp_path):
    """Lock granularity: two builds with a ``RUN sleep 2`` each, at once, finish in well under twice
    the time of one (they share the base's snapshot, the image index, the cache index and GC's lock)."""
    a = _context(tmp_path, "a", "FROM busybox\nRUN sleep 2 && echo a > /a\n")
    b = _context(tmp_path, "b", "FROM busybox\nRUN sleep 2 && echo b > /b\n")
    _timed_build(rpb, a, "warm:1")  # the base snapshot is unpacked once, outside the measure
    one = min(_timed_build(rpb, a, "a:1"), _timed_build(rpb, b, "b:1"))
    t0 = time.monotonic()
    procs = [spawn(rpb, "build", "-q", "--no-cache", "-t", f"{n}:2", str(c)) for n, c in (("a", a), ("b", b))]
    for p in procs:
        _out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    both = time.monotonic() - t0
    print(f"\nlock granularity: one build {one:.2f}s, two at once {both:.2f}s")
    assert both < 1.5 * one, (one, both)
    # and a prune while a build sleeps in RUN does not wait for it
    token = f"3.{time.time_ns() % 10**6:06d}"
    c = _context(tmp_path, "c", f"FROM busybox\nRUN sleep {token} && echo c > /c\n")
    proc = spawn(rpb, "build", "-q", "-t", "c:1", str(c))
    deadline = time.monotonic() + 60
    while not pids_of(f"sleep {token}"):
        assert proc.poll() is None and time.monotonic() < deadline, "the build never reached its RUN step"
        time.sleep(0.02)
    t0 = time.monotonic()
    rpb("system", "prune", check=True)
    prune = time.monotonic() - t0
    assert pids_of(f"sleep {token}"), f"prune ({prune:.2f}s) waited for the build to finish its RUN step"
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    print(f"prune during a build: {prune:.2f}s")
    for tag, text in (("a:2", "a\n"), ("b:2", "b\n"), ("c:1", "c\n")):
        path = "/" + text.strip()
        assert rpb("run", "--rm", "--network", "none", tag, "cat", path, check=True).stdout == text
    fsck_clean(rpb)
    json.loads(rpb("inspect", "c:1", check=True).stdout)


@pytest.mark.parametrize("case", ["build", "pull", "run -d"])
def test_gc_between_a_lookup_and_its_record_keeps_what_the_command_uses(rpb, seeded, tmp_path, case):
    """The command stops after it wrote or chose its content and before the record that makes it
    reachable (a name, a container); GC runs then, with the base image's own name removed too. The
    command's lease keeps what it uses: it finishes, and what it made runs. No "layer not known"."""
    if case == "build":
        ctx = _context(tmp_path, "b", "FROM busybox\nRUN echo leased > /l\n")
        proc, marker = pause_at(rpb, "build-tag", "build", "-q", "-t", "leased:1", str(ctx), tmp=tmp_path)
        target, check = "leased:1", ("cat", "/l")
    elif case == "pull":
        proc, marker = pause_at(rpb, "pull-tag", "pull", "-q", seeded.apps[1], tmp=tmp_path)
        target, check = seeded.apps[1], ("cat", "/app")
    else:
        proc, marker = pause_at(rpb, "run-create-record", "run", "-d", "--name", "leased", "--network", "none",
                                "busybox", "sleep", "300", tmp=tmp_path)
        target, check = None, None
    if case != "pull":
        rpb("rmi", "busybox:latest", check=True)  # the base loses its name: only the lease holds it now
    t0 = time.monotonic()
    rpb("system", "prune", check=True)
    assert time.monotonic() - t0 < 5, "GC waited for the paused command"
    code, out, err = resume(proc, marker)
    assert code == 0, err
    assert "Traceback" not in err
    if target is not None:
        run = rpb("run", "--rm", "--network", "none", target, *check, check=True)
        assert run.stdout.strip() in ("leased", "app-b")
    else:
        assert rpb("exec", "leased", "echo", "alive", check=True).stdout == "alive\n"
        rpb("rm", "-f", "leased", check=True)
        gone = rpb("system", "prune", check=True).stdout  # the container was the last user of busybox
        assert "Deleted:" in gone, gone
    fsck_clean(rpb)


@pytest.mark.slow
def test_builds_while_prune_all_drops_images_and_the_build_cache(rpb, tmp_path):
    """``system prune -a`` untags every image and drops the build cache index while four builds run
    (two of them with the same steps, so they write the same cache entries), after each has resolved its
    base: every build succeeds (it used to fail writing its cache entry into the index prune -a had moved
    away) and what is still named is whole; fsck is clean."""
    base = "127.0.0.1:9/rel/base:1"  # once prune -a untags it, a pull fails at once (no Docker Hub)
    rpb("tag", "busybox:latest", base, check=True)
    contexts = [_context(tmp_path, f"p{i}", f"FROM {base}\nCOPY f /f\nRUN sleep 1 && cat /f > /g\n",
                         {"f": f"file {i % 2}\n"}) for i in range(4)]
    stop = threading.Event()
    log: list[tuple[int, str]] = []

    def churn() -> None:
        while not stop.is_set():
            proc = rpb("system", "prune", "-a")
            log.append((proc.returncode, proc.stderr))
            rpb("tag", "busybox:latest", "keep:1")  # (fails cleanly once prune -a took busybox too)
            time.sleep(0.2)

    side = threading.Thread(target=churn, daemon=True)
    procs = [spawn(rpb, "build", "-q", "-t", f"{c.name}:1", str(c)) for c in contexts]
    deadline = time.monotonic() + 30  # the builds have resolved their base once their work dirs exist
    while len(list((rpb.root / "tmp").glob("build-*"))) < len(procs):
        ended = [p.returncode for p in procs if p.poll() is not None]
        assert not ended and time.monotonic() < deadline, (
            f"the builds never all resolved their base before prune -a started (exited: {ended}, "
            f"work dirs: {len(list((rpb.root / 'tmp').glob('build-*')))} of {len(procs)})")
        time.sleep(0.02)
    side.start()
    results = [(p.communicate(timeout=120), p.returncode) for p in procs]
    stop.set()
    side.join(60)
    for (out, err), code in results:
        assert "Traceback" not in err, err
        if code != 0:
            lines = err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("pybuild: "), err
        else:
            assert out.strip().startswith("sha256:")
    for code, err in log:
        assert code == 0 or (len(err.strip().splitlines()) == 1 and "Traceback" not in err), err
    failed = [o[1] for o, code in results if code != 0]
    assert not failed, f"prune -a broke builds that had resolved their base: {failed}"
    from layers.store import Store

    store = Store(str(rpb.root))
    for rec in store.images.list():
        store.images.load(rec)  # whatever is still named is whole
    fsck_clean(rpb)
    print(f"\nprune -a during builds: {sum(c == 0 for _o, c in results)}/4 builds succeeded, "
          f"{len(log)} prunes; failures: {[o[1].strip() for o, c in results if c]}")
