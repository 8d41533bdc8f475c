"""cp, diff, export and commit against the real ``pybuild`` binary, on running and stopped containers."""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from .conftest import wait_for
from tests.trustedtar import extract_trusted


def _create(pybuild, image: str, *args: str) -> str:
    return pybuild("create", image, *(args or ("sh",)), check=True).stdout.strip()


def _run_d(pybuild, image: str, script: str) -> str:
    return pybuild("run", "-d", image, "sh", "-c", script, check=True).stdout.strip()


def _one_line_error(r, *words: str) -> None:
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    for w in words:
        assert w in lines[0], lines[0]


def _tar_names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [m.name for m in tar.getmembers()]


# -- cp ----------------------------------------------------------------------------------------------


def test_cp_file_and_directory_rules_on_a_stopped_container(pybuild, image, tmp_path):
    cid = _create(pybuild, image)
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("A")
    (src / "sub" / "b.txt").write_text("B")
    # a directory to a missing DEST: DEST is created with its contents
    pybuild("cp", str(src), f"{cid}:/new", check=True)
    # ... to an existing directory: copied into it; with "/." only its contents are
    pybuild("cp", str(src), f"{cid}:/tmp", check=True)
    pybuild("cp", f"{src}/.", f"{cid}:/tmp", check=True)
    # a file to an existing directory, to a new name, over an existing file
    pybuild("cp", str(src / "a.txt"), f"{cid}:/etc", check=True)
    pybuild("cp", str(src / "a.txt"), f"{cid}:/etc/renamed", check=True)
    (tmp_path / "hosts").write_text("replaced\n")
    pybuild("cp", str(tmp_path / "hosts"), f"{cid}:/etc/hosts", check=True)

    out = tmp_path / "out"
    out.mkdir()
    pybuild("cp", f"{cid}:/new", str(out / "new"), check=True)
    pybuild("cp", f"{cid}:/tmp", str(out), check=True)
    pybuild("cp", f"{cid}:/etc/.", str(out / "etc"), check=True)
    assert (out / "new" / "a.txt").read_text() == "A"
    assert (out / "new" / "sub" / "b.txt").read_text() == "B"
    assert (out / "tmp" / "src" / "sub" / "b.txt").read_text() == "B"
    assert (out / "tmp" / "a.txt").read_text() == "A" and (out / "tmp" / "sub" / "b.txt").read_text() == "B"
    assert (out / "etc" / "a.txt").read_text() == "A"
    assert (out / "etc" / "renamed").read_text() == "A"
    assert (out / "etc" / "hosts").read_text() == "replaced\n"
    assert "root:" in (out / "etc" / "passwd").read_text()      # the image's files are there too

    # Docker's refusals, one line each naming the path
    _one_line_error(pybuild("cp", str(src), f"{cid}:/etc/passwd"), "/etc/passwd", "directory to a file")
    _one_line_error(pybuild("cp", str(src / "a.txt"), f"{cid}:/nodir/"), "/nodir/")
    _one_line_error(pybuild("cp", str(src / "a.txt"), f"{cid}:/no/such/dir"), "/no/such/dir")
    _one_line_error(pybuild("cp", f"{cid}:/missing", str(out)), "/missing")
    _one_line_error(pybuild("cp", f"nosuchcontainer:/etc", str(out)), "nosuchcontainer")
    _one_line_error(pybuild("cp", str(src), str(out)), "CONTAINER:PATH")
    # nothing stays mounted after the copies of a stopped container
    with open("/proc/self/mounts") as f:
        assert not [line for line in f if str(pybuild.root) in line]


def test_cp_archive_mode_keeps_owners(pybuild, image, tmp_path):
    cid = _create(pybuild, image)
    f = tmp_path / "owned"
    f.write_text("x")
    os.chown(f, 1234, 5678)
    pybuild("cp", str(f), f"{cid}:/kept", "-a", check=True)
    pybuild("cp", str(f), f"{cid}:/rooted", check=True)
    names = {}
    data = pybuild("cp", f"{cid}:/.", "-", text=False, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar.getmembers():
            names[m.name] = (m.uid, m.gid)
    assert names["kept"] == (1234, 5678)
    assert names["rooted"] == (0, 0)
    # out to the host: -a keeps the container's owners, without it the caller owns the copy
    pybuild("cp", "-a", f"{cid}:/kept", str(tmp_path / "back-a"), check=True)
    pybuild("cp", f"{cid}:/kept", str(tmp_path / "back"), check=True)
    st_a, st = os.stat(tmp_path / "back-a"), os.stat(tmp_path / "back")
    assert (st_a.st_uid, st_a.st_gid) == (1234, 5678)
    assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())


def test_cp_never_follows_a_container_symlink_to_the_host(pybuild, image, tmp_path):
    """SECURITY.md: a symlink in the container to /etc (or /etc/shadow) is resolved in the container."""
    cid = _create(pybuild, image)
    links = tmp_path / "links"
    links.mkdir()
    os.symlink("/etc", links / "hostetc")
    os.symlink("/etc/shadow", links / "shadow")
    os.symlink("../../../../../../etc", links / "up")
    pybuild("cp", f"{links}/.", f"{cid}:/", check=True)

    host_passwd = Path("/etc/passwd").read_text()
    pybuild("cp", f"{cid}:/hostetc/passwd", str(tmp_path / "p1"), check=True)
    pybuild("cp", "-L", f"{cid}:/up/passwd", str(tmp_path / "p2"), check=True)
    image_passwd = pybuild("run", "--rm", image, "cat", "/etc/passwd", check=True).stdout
    for p in ("p1", "p2"):
        assert (tmp_path / p).read_text() == image_passwd != host_passwd
    # -L on a link to /etc/shadow: the container has none, the host's is never read
    _one_line_error(pybuild("cp", "-L", f"{cid}:/shadow", str(tmp_path / "s")), "/shadow")
    assert not (tmp_path / "s").exists()
    # without -L the link itself is copied
    pybuild("cp", f"{cid}:/shadow", str(tmp_path / "s-link"), check=True)
    assert os.readlink(tmp_path / "s-link") == "/etc/shadow"

    # writes through the links land in the container's /etc, never the host's
    name = "pybuild-cp-" + secrets.token_hex(4)
    (tmp_path / name).write_text("inside")
    try:
        pybuild("cp", str(tmp_path / name), f"{cid}:/hostetc/", check=True)
        pybuild("cp", str(tmp_path / name), f"{cid}:/up/{name}.2", check=True)
        pybuild("cp", str(tmp_path / "links"), f"{cid}:/hostetc/links", check=True)
        assert not os.path.lexists(f"/etc/{name}") and not os.path.lexists(f"/etc/{name}.2")
        assert not os.path.lexists("/etc/links")
    finally:
        for p in (f"/etc/{name}", f"/etc/{name}.2"):
            if os.path.lexists(p):
                os.unlink(p)
        if os.path.lexists("/etc/links"):
            shutil.rmtree("/etc/links")
    got = pybuild("cp", f"{cid}:/etc/{name}", "-", text=False, check=True).stdout
    assert _tar_names(got) == [name]


def test_cp_tar_streams_both_ways(pybuild, image, tmp_path):
    cid = _create(pybuild, image)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (("dir/x", b"X"), ("y", b"Y")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    pybuild("cp", "-", f"{cid}:/tmp", input=buf.getvalue(), text=False, check=True)
    out = pybuild("cp", f"{cid}:/tmp", "-", text=False, check=True).stdout
    assert _tar_names(out) == ["tmp", "tmp/dir", "tmp/dir/x", "tmp/y"]
    contents = pybuild("cp", f"{cid}:/tmp/.", "-", text=False, check=True).stdout
    assert _tar_names(contents) == ["dir", "dir/x", "y"]
    r = pybuild("cp", "-", f"{cid}:/etc/passwd", input=buf.getvalue(), text=False)
    assert r.returncode != 0 and b"must be a directory" in r.stderr


def test_cp_into_and_out_of_a_running_container(pybuild, image, tmp_path):
    cid = _run_d(pybuild, image, "echo ready > /ready; sleep 1000")
    wait_for(lambda: pybuild("exec", cid, "cat", "/ready").stdout.strip() == "ready", what="the container's write")
    (tmp_path / "in.txt").write_text("from the host\n")
    pybuild("cp", str(tmp_path / "in.txt"), f"{cid}:/root/", check=True)
    assert pybuild("exec", cid, "cat", "/root/in.txt", check=True).stdout == "from the host\n"
    pybuild("cp", f"{cid}:/ready", str(tmp_path / "ready"), check=True)
    assert (tmp_path / "ready").read_text() == "ready\n"


def test_cp_goes_through_bind_mounts_and_named_volumes(pybuild, image, tmp_path):
    """Docker's cp sees a container's mounts: a bind's or a named volume's source, running or stopped;
    a read-only mount refuses a copy into it; a link inside a mount stays inside it."""
    vol = "cpv" + secrets.token_hex(3)
    bind, ro = tmp_path / "bind", tmp_path / "ro"
    (bind / "sub").mkdir(parents=True)
    ro.mkdir()
    (bind / "sub" / "f").write_text("on the host\n")
    os.symlink("/", bind / "up")
    (tmp_path / "in.txt").write_text("copied in\n")
    cid = pybuild("run", "-d", "-v", f"{bind}:/mnt/b", "-v", f"{vol}:/vol", "-v", f"{ro}:/ro:ro", image,
                  "sh", "-c", "echo v > /vol/made; sleep 1000", check=True).stdout.strip()
    try:
        wait_for(lambda: pybuild("exec", cid, "cat", "/vol/made").stdout == "v\n", what="the volume write")
        out = tmp_path / "out"
        out.mkdir()
        pybuild("cp", f"{cid}:/mnt/b/sub/f", str(out / "f"), check=True)
        assert (out / "f").read_text() == "on the host\n"
        pybuild("cp", f"{cid}:/vol", str(out), check=True)              # the mount point itself, by name
        assert (out / "vol" / "made").read_text() == "v\n"
        assert _tar_names(pybuild("cp", f"{cid}:/vol/.", "-", text=False, check=True).stdout) == ["made"]
        pybuild("cp", str(tmp_path / "in.txt"), f"{cid}:/vol/", check=True)
        pybuild("cp", str(tmp_path / "in.txt"), f"{cid}:/mnt/b/sub/in.txt", check=True)
        assert pybuild("exec", cid, "cat", "/vol/in.txt", "/mnt/b/sub/in.txt", check=True).stdout == "copied in\n" * 2
        assert (bind / "sub" / "in.txt").read_text() == "copied in\n"
        # the link to / inside the bind resolves in the bind's source, never the host's /
        pybuild("cp", f"{cid}:/mnt/b/up/sub/f", str(out / "g"), check=True)
        assert (out / "g").read_text() == "on the host\n"
        _one_line_error(pybuild("cp", str(tmp_path / "in.txt"), f"{cid}:/ro/"), "read-only")
        assert not (ro / "in.txt").exists()
        pybuild("stop", "-t", "0", cid, check=True)
        pybuild("cp", f"{cid}:/vol/in.txt", str(out / "stopped"), check=True)   # a stopped container too
        assert (out / "stopped").read_text() == "copied in\n"
    finally:
        pybuild("rm", "-f", cid)
        pybuild("volume", "rm", vol)


# -- diff --------------------------------------------------------------------------------------------


def test_diff_reports_added_changed_and_deleted(pybuild, image):
    name = "d" + secrets.token_hex(3)
    pybuild("run", "--name", name, image, "sh", "-c",
            "echo new > /new; rm /bin/ls; echo extra >> /etc/group; mkdir -p /a/b", check=True)
    lines = pybuild("diff", name, check=True).stdout.splitlines()
    assert lines == ["A /a", "A /a/b", "C /bin", "D /bin/ls", "C /etc", "C /etc/group", "A /new"]
    # the mount points the sandbox made (/etc/hostname, /etc/resolv.conf...) are not changes
    fresh = _create(pybuild, image)
    assert pybuild("diff", fresh, check=True).stdout == ""
    _one_line_error(pybuild("diff", "nosuchcontainer"), "nosuchcontainer")


# -- export ------------------------------------------------------------------------------------------


def test_export_of_a_created_container_runs_under_runc(pybuild, image, tmp_path):
    runc = shutil.which("runc")
    assert runc, "runc is installed by scripts/install.sh"
    cid = _create(pybuild, image)
    data = pybuild("export", cid, text=False, check=True).stdout
    bundle = tmp_path / "bundle"
    (bundle / "rootfs").mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        extract_trusted(tar, bundle / "rootfs", "tar")
    assert "bin/busybox" in names and not any(n.startswith(("/", "..")) for n in names)
    subprocess.run([runc, "spec"], cwd=bundle, check=True)
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["args"] = ["/bin/echo", "hi"]
    config["process"]["terminal"] = False
    (bundle / "config.json").write_text(json.dumps(config))
    r = subprocess.run([runc, "--root", str(tmp_path / "runc"), "run", "--bundle", str(bundle),
                        "pybuild-export-" + secrets.token_hex(4)], capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout) == (0, "hi\n"), r.stderr

    # -o FILE writes the same tar; a running container's export holds its writes
    pybuild("export", "-o", str(tmp_path / "c.tar"), cid, check=True)
    assert (tmp_path / "c.tar").read_bytes() == data
    run = _run_d(pybuild, image, "echo live > /live; sleep 1000")
    wait_for(lambda: pybuild("exec", run, "cat", "/live").stdout == "live\n", what="the container's write")
    with tarfile.open(fileobj=io.BytesIO(pybuild("export", run, text=False, check=True).stdout)) as tar:
        assert tar.extractfile("live").read() == b"live\n"


# -- commit ------------------------------------------------------------------------------------------


def test_commit_a_running_container(pybuild, image):
    cid = _run_d(pybuild, image, "echo committed > /f; rm /bin/ls; sleep 1000")
    wait_for(lambda: pybuild("exec", cid, "cat", "/f").stdout == "committed\n", what="the container's write")
    r = pybuild("commit", "-m", "a message", "-a", "Ann <ann@example.com>", "-c", 'CMD ["cat", "/f"]',
                "-c", "ENV COMMITTED=1", cid, "fs/committed:1", check=True)
    image_id = r.stdout.strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    # the container was paused for the commit and runs again
    assert pybuild("exec", cid, "true").returncode == 0
    assert pybuild("run", "--rm", "fs/committed:1", check=True).stdout == "committed\n"
    assert pybuild("run", "--rm", "fs/committed:1", "sh", "-c", "echo $COMMITTED", check=True).stdout == "1\n"
    assert pybuild("run", "--rm", "fs/committed:1", "ls").returncode == 127         # the deletion is kept
    info = json.loads(pybuild("inspect", "fs/committed:1", check=True).stdout)[0]
    assert info["Author"] == "Ann <ann@example.com>"
    assert info["Id"] == image_id
    hist = pybuild("history", "--no-trunc", "fs/committed:1", check=True).stdout
    assert "a message" in hist
    # the mount points the sandbox made (/etc/hostname, /etc/resolv.conf) are not in the layer
    fresh = _create(pybuild, "fs/committed:1")
    with tarfile.open(fileobj=io.BytesIO(pybuild("export", fresh, text=False, check=True).stdout)) as tar:
        names = tar.getnames()
    assert "f" in names and "etc/passwd" in names
    assert "etc/hostname" not in names and "etc/resolv.conf" not in names


def test_commit_pause_false_and_stopped_containers(pybuild, image):
    name = "c" + secrets.token_hex(3)
    pybuild("run", "--name", name, image, "sh", "-c", "echo stopped > /s", check=True)
    image_id = pybuild("commit", "--pause=false", name, "fs/stopped", check=True).stdout.strip()
    assert image_id.startswith("sha256:")
    assert pybuild("run", "--rm", image_id.removeprefix("sha256:")[:12], "cat", "/s", check=True).stdout == "stopped\n"
    assert pybuild("run", "--rm", "fs/stopped:latest", "cat", "/s", check=True).stdout == "stopped\n"
    # the container's command, environment, working directory and labels go into the image's config
    pybuild("run", "--name", name + "b", "-e", "GREETING=hello", "-w", "/tmp", "--label", "k=v", image,
            "sh", "-c", 'echo "$GREETING from $(pwd)"', check=True)
    pybuild("commit", name + "b", "fs/config:1", check=True)
    assert pybuild("run", "--rm", "fs/config:1", check=True).stdout == "hello from /tmp\n"
    conf = json.loads(pybuild("inspect", "fs/config:1", check=True).stdout)[0]["Config"]
    assert conf["Cmd"] == ["sh", "-c", 'echo "$GREETING from $(pwd)"'] and conf["Labels"] == {"k": "v"}
    assert "GREETING=hello" in conf["Env"] and not [e for e in conf["Env"] if e.startswith(("HOSTNAME=", "HOME="))]
    before = pybuild("images", "-q").stdout
    _one_line_error(pybuild("commit", "-c", "RUN echo no", name, "fs/bad:1"), "RUN")
    _one_line_error(pybuild("commit", "nosuchcontainer"), "nosuchcontainer")
    assert pybuild("images", "-q").stdout == before


def _state(pybuild, cid: str) -> str:
    return json.loads(pybuild("ps", "-a", "--format", "json", check=True).stdout.splitlines()[0])["State"]


@pytest.mark.parametrize("pause", ["true", "false"])
def test_commit_pauses_a_running_container_while_it_packs(pybuild, image, tmp_path, pause):
    cid = _run_d(pybuild, image, "sleep 1000")
    marker = tmp_path / "at-commit-layer"
    proc = subprocess.Popen([str(Path(sys.executable).with_name("pybuild")), "--root", str(pybuild.root),
                             "--state-dir", str(pybuild.state), "commit", f"--pause={pause}", cid, "fs/p:1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, PYBUILD_TEST_PAUSE_AT="commit-layer",
                                     PYBUILD_TEST_PAUSE_FILE=str(marker)))
    try:
        wait_for(marker.exists, timeout=60, what="the commit to reach its layer")
        assert _state(pybuild, cid) == ("paused" if pause == "true" else "running")
        marker.unlink()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert out.decode().startswith("sha256:")
    assert _state(pybuild, cid) == "running"


def test_diff_reads_whiteouts_and_opaque_directories(pybuild, tmp_path):
    """An upper dir written as overlayfs writes it: a whiteout is D, an opaque directory is C with D for
    each path of the image it hides, a file of the image written again is C."""
    from runner.resources import rootfs_paths

    from .conftest import Lab

    lower = tmp_path / "lower"
    for rel in ("d/x", "d/y", "keep/z", "gone"):
        (lower / rel).parent.mkdir(parents=True, exist_ok=True)
        (lower / rel).write_text(rel)
    lab = Lab(pybuild, lower)
    cid = lab.create("fsdiff", ["true"])
    upper = Path(rootfs_paths(lab.store, cid).upper)
    (upper / "d").mkdir(parents=True)
    os.setxattr(upper / "d", "trusted.overlay.opaque", b"y")
    (upper / "d" / "w").write_text("new")
    (upper / "d" / "y").write_text("again")
    os.mknod(upper / "gone", 0o600 | 0o020000, os.makedev(0, 0))
    (upper / "keep").mkdir()
    (upper / "keep" / "z").write_text("changed")
    (upper / "n").mkdir()
    assert pybuild("diff", "fsdiff", check=True).stdout.splitlines() == [
        "C /d", "A /d/w", "D /d/x", "C /d/y", "D /gone", "C /keep", "C /keep/z", "A /n"]


def test_unnamed_commit_is_a_dangling_image_found_by_its_id(pybuild, image):
    """Docker's ``<none>:<none>``: an unnamed commit is listed, resolved by full id, ``sha256:`` form and a
    short prefix, tagged, removed by id; ``image prune`` removes the unnamed images no container uses."""
    name = "u" + secrets.token_hex(3)
    pybuild("run", "--name", name, image, "sh", "-c", "echo unnamed > /u", check=True)
    image_id = pybuild("commit", name, check=True).stdout.strip()
    hexid = image_id.removeprefix("sha256:")
    rows = [json.loads(l) for l in pybuild("images", "--format", "json", check=True).stdout.splitlines()]
    mine = [r for r in rows if r["ID"] == image_id]
    assert len(mine) == 1 and (mine[0]["Repository"], mine[0]["Tag"]) == ("<none>", "<none>")
    assert pybuild("images", "-q", "--filter", "dangling=true", check=True).stdout.split() == [hexid[:12]]
    assert hexid[:12] not in pybuild("images", "-q", "--filter", "dangling=false", check=True).stdout
    assert pybuild("run", "--rm", hexid[:6], "cat", "/u", check=True).stdout == "unnamed\n"
    assert json.loads(pybuild("inspect", image_id, check=True).stdout)[0]["Id"] == image_id
    assert json.loads(pybuild("image", "inspect", hexid, check=True).stdout)[0]["Id"] == image_id
    # a second unnamed image: `image prune` takes both unless a container uses one (then only the other)
    pybuild("tag", hexid[:8], "fs/named:1", check=True)
    assert pybuild("images", "-q", "--filter", "dangling=true", check=True).stdout == ""
    pybuild("rmi", "fs/named:1", check=True)
    assert pybuild("inspect", "--type", "image", image_id).returncode != 0
    again = pybuild("commit", name, check=True).stdout.strip().removeprefix("sha256:")
    other = pybuild("commit", "-c", "ENV X=1", name, check=True).stdout.strip().removeprefix("sha256:")
    user = _create(pybuild, other[:12])
    r = pybuild("rmi", other[:12])
    assert r.returncode != 0 and "used by a container" in r.stderr
    pybuild("image", "prune", "-f", check=True)
    assert pybuild("images", "-q", "--filter", "dangling=true", check=True).stdout.split() == [other[:12]]
    assert pybuild("inspect", "--type", "image", again).returncode != 0
    pybuild("rm", user, check=True)
    pybuild("rmi", other, check=True)
    assert pybuild("images", "-q", "--filter", "dangling=true", check=True).stdout == ""
    # a name moved to another image leaves the old one unnamed, as Docker does
    pybuild("commit", name, "fs/moving:1", check=True)
    first = pybuild("images", "-q", "fs/moving", check=True).stdout.strip()
    pybuild("commit", "-c", "ENV Y=1", name, "fs/moving:1", check=True)
    assert pybuild("images", "-q", "--filter", "dangling=true", check=True).stdout.split() == [first]
