"""Units over real files: word expansion, .dockerignore, context selection, COPY placement, config edits."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from builder import instructions as I
from builder.context import BuildContext
from builder.dockerignore import parse_ignore
from builder.expand import ExpandError, process_heredoc, process_word, process_words
from builder.parse import parse, parse_duration
from builder.steps.copy import CopyItem, Ownership, copy_items, select_in_root, write_file
from builder.steps.meta import apply_meta
from layers.config import ImageConfig
from layers.descriptor import Platform

ENV = {"A": "x", "EMPTY": "", "SP": "a b"}


@pytest.mark.parametrize("text,want", [
    ("$A", "x"), ("${A}", "x"), ("pre${A}post", "prexpost"), ("${NOPE:-d}", "d"), ("${EMPTY:-d}", "d"),
    ("${EMPTY-d}", ""), ("${A:+y}", "y"), ("${NOPE:+y}", ""), ("${EMPTY+y}", "y"), ("'$A'", "$A"),
    ('"$A $SP"', "x a b"), ("\\$A", "$A"), ("${NOPE:-$A}", "x"), ("$", "$"), ("a\\ b", "a b"),
])
def test_process_word(text: str, want: str) -> None:
    assert process_word(text, ENV) == want


def test_process_words_and_errors() -> None:
    assert process_words('a "b c" $SP', ENV) == ["a", "b c", "a", "b"]
    assert process_word("`$A", ENV, escape="`") == "$A"
    with pytest.raises(ExpandError, match="NOPE: needed"):
        process_word("${NOPE:?needed}", ENV)
    with pytest.raises(ExpandError):
        process_word("${A", ENV)
    assert process_heredoc("echo \"$A\" '${A}' \\$A\n", ENV) == "echo \"x\" 'x' $A\n"


def test_dockerignore_rules() -> None:
    rules = parse_ignore("# comment\n*.md\n!README.md\nbuild\n**/*.pyc\n/tmp\n!tmp/keep\n")
    assert rules.excluded("a.md") and not rules.excluded("README.md") and not rules.excluded("x/a.md")
    assert rules.excluded("build/x/y") and rules.excluded("src/deep/a.pyc") and rules.excluded("tmp/x")
    assert not rules.excluded("tmp/keep") and not rules.excluded("src/main.py")


def test_context_selection_and_digest(tmp_path: Path) -> None:
    (tmp_path / "src" / "sub").mkdir(parents=True)
    (tmp_path / "src" / "a.txt").write_text("a")
    (tmp_path / "src" / "sub" / "b.txt").write_text("b")
    (tmp_path / "src" / "skip.log").write_text("s")
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    ctx = BuildContext(str(tmp_path), parse_ignore("**/*.log\n"))
    entries = ctx.select("src")
    assert [(e.path, e.target) for e in entries] == [("src/sub", "sub"), ("src/a.txt", "a.txt"),
                                                    ("src/sub/b.txt", "sub/b.txt")]
    assert [(e.path, e.target) for e in ctx.select("src/*.txt")] == [("src/a.txt", "a.txt")]
    with pytest.raises(FileNotFoundError):
        ctx.select("src/skip.log")
    before = ctx.digest(entries)
    (tmp_path / "src" / "a.txt").write_text("A")
    assert BuildContext(str(tmp_path), parse_ignore("**/*.log\n")).digest(entries) != before
    os.chmod(tmp_path / "src" / "a.txt", 0o600)
    assert BuildContext(str(tmp_path)).digest(entries) != before


def test_context_hash_memo(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x" * 1000)
    memo = str(tmp_path / "memo.json")
    ctx = BuildContext(str(tmp_path), hash_cache_path=memo)
    d1 = ctx.digest(ctx.select("f"))
    ctx.save_hashes()
    assert os.path.exists(memo)
    ctx2 = BuildContext(str(tmp_path), hash_cache_path=memo)
    assert ctx2.digest(ctx2.select("f")) == d1 and not ctx2._dirty


def test_copy_into_root_follows_links_inside(tmp_path: Path) -> None:
    """A ``/bin -> usr/bin`` link in the image is followed (inside the root); the file keeps its mode."""
    root = tmp_path / "root"
    (root / "usr" / "bin").mkdir(parents=True)
    os.symlink("usr/bin", root / "bin")
    os.symlink("/etc/passwd", root / "evil")  # a link pointing at the host's file: never written through
    src = tmp_path / "tool"
    src.write_text("#!/bin/sh\n")
    os.chmod(src, 0o751)
    copy_items(str(root), [CopyItem(str(src), "")], "/bin/", Ownership())
    placed = root / "usr" / "bin" / "tool"
    assert placed.read_text() == "#!/bin/sh\n" and stat.S_IMODE(placed.stat().st_mode) == 0o751
    assert os.path.islink(root / "bin")
    passwd = Path("/etc/passwd").read_bytes()
    copy_items(str(root), [CopyItem(str(src), "")], "/evil", Ownership())
    assert Path("/etc/passwd").read_bytes() == passwd and not os.path.islink(root / "evil")
    copy_items(str(root), [CopyItem(str(src), "")], "/evil/../../../../etc/x", Ownership(uid=5, gid=6, mode=0o600))
    assert (root / "etc" / "x").stat().st_uid == 5 and stat.S_IMODE((root / "etc" / "x").stat().st_mode) == 0o600


def test_copy_directory_contents_and_chmod(tmp_path: Path) -> None:
    src = tmp_path / "ctx"
    (src / "d").mkdir(parents=True)
    (src / "d" / "f").write_text("f")
    os.symlink("f", src / "d" / "l")
    root = tmp_path / "root"
    root.mkdir()
    items = select_in_root(str(src), "/d")
    copy_items(str(root), items, "/app", Ownership(mode=0o640))
    assert (root / "app" / "f").read_text() == "f" and os.readlink(root / "app" / "l") == "f"
    assert stat.S_IMODE((root / "app" / "f").stat().st_mode) == 0o640
    write_file(str(root), "/app/h.txt", b"hello\n", Ownership())
    assert (root / "app" / "h.txt").read_bytes() == b"hello\n"


def test_meta_edits() -> None:
    df = parse(b'FROM scratch\nENV A=1 B=2\nENV A=3\nLABEL l=v\nWORKDIR /w\nUSER u\nEXPOSE 80/tcp\n'
               b'VOLUME /v\nCMD echo hi\nENTRYPOINT ["/e"]\nSTOPSIGNAL SIGINT\nSHELL ["/bin/bash", "-c"]\n'
               b'CMD run me\nHEALTHCHECK --retries=3 CMD ["true"]\nONBUILD RUN x\n')
    cfg = ImageConfig.new(Platform.parse("linux/amd64"))
    for inst in df.instructions[1:]:
        cfg = apply_meta(cfg, inst)
    c = cfg.config
    assert c.env == ("A=3", "B=2") and dict(c.labels) == {"l": "v"} and c.working_dir == "/w" and c.user == "u"
    assert c.exposed_ports == ("80/tcp",) and c.volumes == ("/v",) and c.entrypoint == ("/e",)
    assert c.cmd == ("/bin/bash", "-c", "run me") and c.stop_signal == "SIGINT"
    assert c.healthcheck.test == ("CMD", "true") and c.healthcheck.retries == 3 and c.on_build == ("RUN x",)


def test_durations_and_heredoc_parse() -> None:
    assert parse_duration("1m30s") == 90 * 10**9 and parse_duration("500ms") == 5 * 10**8
    df = parse("FROM a\nRUN <<EOF\necho one\nEOF\nRUN echo after\n")
    run = df.instructions[1]
    assert isinstance(run, I.Run) and run.command == ("echo one\n",) and df.instructions[2].location.line == 5


def test_dockerfile_specific_ignore_file_wins(tmp_path: Path) -> None:
    from builder.dockerignore import load_ignore

    (tmp_path / ".dockerignore").write_text("a\n")
    (tmp_path / "build.Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "build.Dockerfile.dockerignore").write_text("b\n")
    assert load_ignore(str(tmp_path), str(tmp_path / "build.Dockerfile")).excluded("b")
    assert not load_ignore(str(tmp_path), str(tmp_path / "build.Dockerfile")).excluded("a")
    assert load_ignore(str(tmp_path), str(tmp_path / "Dockerfile")).excluded("a")


def test_stale_build_dirs_are_reaped(tmp_path: Path) -> None:
    """A build killed mid-step leaves a mounted overlay under <root>/tmp/build-*: the next build
    unmounts and removes it; a live build's dir is left alone."""
    from builder.workdir import new_workdir
    from runner.rootfs import OverlayMount

    root = tmp_path / "root"
    stale = Path(new_workdir(str(root)))
    (stale / "pid").write_text("999999999")
    lower = tmp_path / "lower"
    lower.mkdir()
    (lower / "f").write_text("x")
    mount = OverlayMount([str(lower)], str(stale / "u"), str(stale / "w"), str(stale / "mnt"))
    mount.mount()
    live = Path(new_workdir(str(root)))
    assert not stale.exists() and live.exists()
    assert str(stale) not in Path("/proc/self/mountinfo").read_text()


def test_import_changes_go_through_the_build_handlers() -> None:
    """``import --change``: the builder's parser, planning and config edits (ENV expanded against the
    config, ports normalised, WORKDIR relative to the previous one, CMD shell form with the shell)."""
    from builder.changes import apply_changes
    from layers.config import ImageConfig
    from layers.descriptor import Platform

    config = ImageConfig.new(Platform("linux", "amd64"), created="2020-01-01T00:00:00Z")
    out = apply_changes(config, ["ENV A=b", "ENV B=$A/c", "EXPOSE 80 53/udp", "WORKDIR /app", "WORKDIR sub",
                                 "CMD echo hi", "LABEL k=v", "VOLUME /data", "USER 1000", "STOPSIGNAL SIGINT"])
    c = out.config
    assert c.env == ("A=b", "B=b/c") and set(c.exposed_ports) == {"80/tcp", "53/udp"}
    assert c.working_dir == "/app/sub" and c.cmd == ("/bin/sh", "-c", "echo hi")
    assert dict(c.labels) == {"k": "v"} and tuple(c.volumes) == ("/data",) and c.user == "1000"
    assert c.stop_signal == "SIGINT" and config.config.env == ()  # a new value; the input is unchanged


@pytest.mark.parametrize("change, reason", [
    ("RUN rm -rf /", "RUN cannot be changed on import"),
    ("FROM busybox", "FROM cannot be changed on import"),
    ("EXPOSE http", "EXPOSE: invalid port 'http'"),
    ("CMD [oops", "CMD: invalid JSON array"),
    ("NOPE x", "NOPE: unknown instruction"),
])
def test_a_bad_import_change_is_one_line_naming_it(change: str, reason: str) -> None:
    from builder.changes import apply_changes
    from builder.errors import DockerfileError
    from layers.config import ImageConfig
    from layers.descriptor import Platform

    with pytest.raises(DockerfileError) as info:
        apply_changes(ImageConfig.new(Platform("linux", "amd64")), ["ENV OK=1", change])
    message = str(info.value)
    assert message.startswith(f"--change {change!r}: {reason}") and "\n" not in message, message


def test_build_cache_entries_are_registered_store_roots(tmp_path: Path) -> None:
    """Each cache entry with a layer is a root (owner build-cache) keeping its blob and snapshot; an
    entry dropped drops its root; prune removes every entry and root and says how many bytes went."""
    from builder.cache import ROOT_OWNER, BuildCache, prune
    from layers.descriptor import Descriptor
    from layers.digest import Digest
    from layers.store import Store

    store = Store(str(tmp_path / "root"))
    blob = store.blobs.put_bytes(b"layer bytes")
    layer = Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", blob, len(b"layer bytes"))
    diff_id = Digest("sha256", "d" * 64)
    cache = BuildCache(store.root, store)
    k1, k2, k3 = "1" * 64, "2" * 64, "3" * 64
    cache.put(k1, layer, diff_id)
    cache.put(k2, layer, diff_id)
    cache.put(k3, None, None)  # a step that changed nothing: no content, no root
    root = store.roots.get(ROOT_OWNER, k1)
    assert root is not None and root.blobs == {blob} and root.snapshots == {diff_id} and not root.docs
    assert store.roots.keys(ROOT_OWNER) == [k1, k2]
    assert cache.drop(k2) > 0 and cache.get(k2) is None and store.roots.keys(ROOT_OWNER) == [k1]
    store.roots.drop(ROOT_OWNER, k1)  # an entry written before roots existed: a hit registers it again
    assert cache.get(k1).layer == layer and store.roots.get(ROOT_OWNER, k1).blobs == {blob}
    store.roots.put(ROOT_OWNER, "4" * 64, blobs=(blob,))  # a root whose entry never landed
    assert prune(store.root) > 0
    assert store.roots.keys(ROOT_OWNER) == [] and cache.get(k1) is None and cache.get(k3) is None
    assert prune(store.root) == 0


def test_reap_stale_build_dirs_counts_what_it_removed(tmp_path: Path) -> None:
    from builder.cache import reap_stale_build_dirs, stale_build_dirs
    from builder.workdir import new_workdir

    root = tmp_path / "root"
    dead = Path(new_workdir(str(root)))
    (dead / "pid").write_text("999999999")
    live = Path(new_workdir(str(root)))  # reaps the dead one itself: make another
    dead = Path(new_workdir(str(root)))
    (dead / "pid").write_text("999999999")
    assert stale_build_dirs(str(root)) == [dead.name]
    assert reap_stale_build_dirs(str(root)) == 1 and not dead.exists() and live.exists()
    assert reap_stale_build_dirs(str(root)) == 0
