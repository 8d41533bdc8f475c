"""``pybuild build`` end to end over the real store, overlayfs and sandbox: the testdata Dockerfiles
build and their images run and print what they should; cache hits and misses; reproducible digests."""

from __future__ import annotations

import json
import re
import os
import shutil
import socket
import time
from pathlib import Path


TESTDATA = Path(__file__).resolve().parents[2] / "testdata"
CASES = TESTDATA / "dockerfiles"


def _build(pb, context: Path, *args: str, check: bool = True):
    proc = pb("build", "--progress", "plain", *args, str(context), check=check)
    return proc


def _run(pb, image: str, *cmd: str) -> str:
    return pb("run", "--rm", "--network", "none", image, *cmd, check=True).stdout


def _copy_case(name: str, tmp_path: Path) -> Path:
    dest = tmp_path / name
    shutil.copytree(CASES / name, dest, symlinks=True)
    (dest / "expected.json").unlink(missing_ok=True)
    return dest


def test_app_builds_and_serves(bpybuild, tmp_path: Path) -> None:
    proc = _build(bpybuild, TESTDATA / "app", "-t", "app:1", "-t", "app:latest")
    image_id = proc.stdout.strip().splitlines()[-1]
    assert image_id.startswith("sha256:")
    images = bpybuild("images", check=True).stdout
    assert "app" in images
    inspect = json.loads(bpybuild("inspect", "app:1", check=True).stdout)
    cfg = inspect[0] if isinstance(inspect, list) else inspect
    text = json.dumps(cfg)
    assert "httpd" in text and "80/tcp" in text and "/www" in text
    assert "hello from pybuild" in _run(bpybuild, "app:1", "cat", "/www/index.html")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cid = bpybuild("run", "-d", "-p", f"127.0.0.1:{port}:80", "app:1", check=True).stdout.strip()
    try:
        import httpx

        deadline = time.monotonic() + 15
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert r.status_code == 200 and "hello from pybuild" in r.text
    finally:
        bpybuild("rm", "-f", cid)


def test_no_change_rebuild_is_full_cache_hit_and_one_change_reruns_what_follows(bpybuild, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "a.txt").write_text("a1\n")
    (ctx / "b.txt").write_text("b1\n")
    (ctx / "Dockerfile").write_text(
        "FROM busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt > /from-a\nCOPY b.txt /b.txt\nRUN cat /a.txt /b.txt > /both\n")
    first = _build(bpybuild, ctx, "-t", "c:1")
    assert first.stderr.count("CACHED") == 0
    again = _build(bpybuild, ctx, "-t", "c:2")
    assert again.stderr.count("CACHED") == 4 and "4/4 steps cached" in again.stderr
    assert again.stdout.strip() == first.stdout.strip()  # same image id
    (ctx / "b.txt").write_text("b2\n")
    third = _build(bpybuild, ctx, "-t", "c:3")
    assert third.stderr.count("CACHED") == 2, third.stderr  # COPY a + RUN reuse; COPY b + RUN rerun
    assert _run(bpybuild, "c:3", "cat", "/both") == "a1\nb2\n"
    nocache = _build(bpybuild, ctx, "--no-cache", "-t", "c:4")
    assert nocache.stderr.count("CACHED") == 0


def test_same_source_date_epoch_gives_same_digest(bpybuild, tmp_path: Path) -> None:
    ctx = _copy_case("heredocs", tmp_path)
    ids = []
    for tag in ("r:1", "r:2"):
        proc = bpybuild("build", "--no-cache", "-q", "-t", tag, str(ctx), env={"SOURCE_DATE_EPOCH": "1700000000"},
                        check=True)
        ids.append(proc.stdout.strip())
        time.sleep(1.1)  # a wall-clock leak would show up as a different digest
    assert ids[0] == ids[1] and ids[0].startswith("sha256:")
    inspect = json.loads(bpybuild("inspect", "r:1", check=True).stdout)
    assert "2023-11-14T22:13:20Z" in json.dumps(inspect)


def test_heredocs_image_prints(bpybuild, tmp_path: Path) -> None:
    _build(bpybuild, CASES / "heredocs", "-t", "h:1", "--build-arg", "GREETING=hi")
    out = _run(bpybuild, "h:1")
    assert out == "hi world\n${GREETING} stays literal\nbuilt\nindented with a tab\n"


def test_mounts_cache_secret_bind_tmpfs(bpybuild, tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("s3cr3t-value-do-not-leak")
    args = ("--secret", f"id=token,src={secret}")
    _build(bpybuild, CASES / "mounts", "-t", "m:1", *args)
    out = _run(bpybuild, "m:1", "cat", "/cache-runs", "/secret-status", "/secret-size", "/dep-list",
               "/data-copy", "/tmpfs-list", "/net")
    assert out.split("\n") == ["1", "secret was readable", "24", "dep", "context data", "x", "offline", ""]
    # nothing of the mounts reaches the image
    listing = _run(bpybuild, "m:1", "sh", "-c", "ls -a /run /scratch /mnt /cache /tok 2>&1; true")
    assert "secrets" not in listing and "tok" not in listing.replace("/tok:", "")
    import gzip

    for blob in (bpybuild.root / "blobs").rglob("*"):
        if blob.is_file():
            data = blob.read_bytes()
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            assert b"s3cr3t-value" not in data, blob
    # the cache mount persists across builds: a rebuild without cache sees the first run's file
    _build(bpybuild, CASES / "mounts", "--no-cache", "-t", "m:2", *args)
    assert _run(bpybuild, "m:2", "cat", "/cache-runs").strip() == "2"
    # a required secret that is missing is a located error
    proc = _build(bpybuild, CASES / "mounts", "--no-cache", "-t", "m:3", check=False)
    assert proc.returncode != 0 and "Dockerfile:7: RUN: secret 'token' is required" in proc.stderr


def test_multistage_target_and_copy_from(bpybuild, tmp_path: Path) -> None:
    ctx = tmp_path / "ms"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM busybox AS one\nRUN echo one > /one && sleep 1\n"
        "FROM busybox AS two\nRUN echo two > /two && sleep 1\n"
        "FROM busybox AS unused\nRUN exit 1\n"
        "FROM scratch\nCOPY --from=one /one /\nCOPY --from=two /two /\nCOPY --from=busybox /bin/busybox /bin/busybox\n"
        "FROM busybox AS final\nCOPY --from=3 / /merged/\nCMD [\"cat\", \"/merged/one\", \"/merged/two\"]\n")
    proc = _build(bpybuild, ctx, "-t", "ms:1")
    assert _run(bpybuild, "ms:1") == "one\ntwo\n"
    lines = proc.stderr.splitlines()
    runs = [l.split()[0] for l in lines if re.match(r"#\d+ \[(one|two) 2/2\] RUN", l)]
    assert len(runs) == 2, lines
    first_done = min(i for i, l in enumerate(lines) if l.split()[0] in runs and " DONE " in l)
    # independent stages run at once: both RUN lines are printed before either of them finishes
    assert all(any(l.startswith(r + " [") for l in lines[:first_done]) for r in runs), lines
    assert "[unused]" not in proc.stderr
    proc = _build(bpybuild, ctx, "--target", "unused", "-t", "ms:bad", check=False)
    assert proc.returncode != 0 and "Dockerfile:6: RUN" in proc.stderr and "status 1" in proc.stderr


def test_dockerignore_chown_chmod(bpybuild, tmp_path: Path) -> None:
    ctx = _copy_case("dockerignore", tmp_path)
    _build(bpybuild, ctx, "-t", "d:1")
    out = _run(bpybuild, "d:1", "sh", "-c",
               "cd /ctx && find . | sort; ls /globbed; stat -c '%u:%g %a' /owned.md")
    lines = out.split("\n")
    assert "./README.md" not in lines and "./secret.key" not in lines and "./src/x.tmp" not in lines
    assert "./src/keep.md" in lines and "./src/a.txt" in lines
    assert "a.txt" in lines and "b.txt" in lines and "1:2 640" in lines


def test_failed_run_names_line_and_commits_nothing(bpybuild, tmp_path: Path) -> None:
    ctx = tmp_path / "f"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo ok\nRUN echo bad >&2; exit 3\n")
    before = bpybuild("images", check=True).stdout
    proc = _build(bpybuild, ctx, "-t", "f:1", check=False)
    assert proc.returncode != 0
    assert "Dockerfile:3: RUN:" in proc.stderr and "status 3" in proc.stderr and "bad" in proc.stderr
    assert bpybuild("images", check=True).stdout == before


def test_output_oci_archive_and_docker_format(bpybuild, tmp_path: Path) -> None:
    out = tmp_path / "img.tar"
    _build(bpybuild, TESTDATA / "app", "--format", "docker", "-t", "app:d", "-o", f"type=oci,dest={out}")
    import tarfile

    with tarfile.open(out) as tar:
        names = tar.getnames()
    assert "index.json" in names and "manifest.json" in names and "oci-layout" in names
    inspect = json.dumps(json.loads(bpybuild("inspect", "app:d", check=True).stdout))
    assert "Healthcheck" in inspect  # docker format keeps HEALTHCHECK


def test_tampered_cache_blob_is_not_a_hit(bpybuild, tmp_path: Path) -> None:
    """moby CVE-2024-24557: a cache entry whose layer bytes changed is a miss, never reused."""
    ctx = tmp_path / "t"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo original > /f\n")
    _build(bpybuild, ctx, "-t", "t:1")
    entry = next((bpybuild.root / "cache" / "keys").rglob("*.json"))
    layer = json.loads(entry.read_text())["layer"]
    blob = bpybuild.root / "blobs" / "sha256" / layer["digest"].split(":")[1]
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    os.chmod(blob, 0o600)
    blob.write_bytes(bytes(data))
    proc = _build(bpybuild, ctx, "-t", "t:2", check=False)
    assert "CACHED" not in proc.stderr


def test_add_local_tar_and_url_with_checksum(bpybuild, tmp_path: Path) -> None:
    import hashlib
    import http.server
    import io
    import tarfile
    import threading

    ctx = tmp_path / "add"
    ctx.mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = b"from the tarball\n"
        info = tarfile.TarInfo("pkg/readme.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    (ctx / "pkg.tar.gz").write_bytes(buf.getvalue())
    served = tmp_path / "www"
    served.mkdir()
    payload = b"downloaded bytes\n"
    (served / "file.txt").write_bytes(payload)
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(served), **kw)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/file.txt"
        good = "sha256:" + hashlib.sha256(payload).hexdigest()
        (ctx / "Dockerfile").write_text(f"FROM busybox\nADD pkg.tar.gz /opt/\nADD --checksum={good} {url} /dl/\n")
        _build(bpybuild, ctx, "-t", "add:1")
        assert _run(bpybuild, "add:1", "cat", "/opt/pkg/readme.txt", "/dl/file.txt") == \
            "from the tarball\ndownloaded bytes\n"
        bad = "sha256:" + "0" * 64
        (ctx / "Dockerfile").write_text(f"FROM busybox\nADD --checksum={bad} {url} /dl/\n")
        proc = _build(bpybuild, ctx, "-t", "add:2", check=False)
        assert proc.returncode != 0 and "Dockerfile:2: ADD:" in proc.stderr and "does not match" in proc.stderr
    finally:
        server.shutdown()


def test_context_symlink_to_host_file_is_not_followed_out(bpybuild, tmp_path: Path) -> None:
    ctx = tmp_path / "ln"
    ctx.mkdir()
    os.symlink("/etc/shadow", ctx / "shadowlink")
    (ctx / "real.txt").write_text("inside\n")
    os.symlink("real.txt", ctx / "good")
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY shadowlink /s\nCOPY good /g\n")
    _build(bpybuild, ctx, "-t", "ln:1")
    out = _run(bpybuild, "ln:1", "sh", "-c", "readlink /s; cat /g; cat /s 2>/dev/null | wc -c")
    assert out.split() == ["/etc/shadow", "inside", "0"]


def test_context_as_a_tar_on_stdin(bpybuild, tmp_path: Path) -> None:
    """``pybuild build -`` with a (gzip) tar of the context on stdin: its Dockerfile, ``-f`` relative
    to the tar's root, and its .dockerignore apply."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (("Dockerfile", b"FROM busybox\nCOPY . /ctx/\n"), ("hello.txt", b"from the tar\n"),
                           ("ignored.txt", b"no\n"), (".dockerignore", b"ignored.txt\n"),
                           ("sub/Other.Dockerfile", b"FROM busybox\nCOPY hello.txt /other.txt\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    data = buf.getvalue()
    bpybuild("build", "-q", "-t", "tar:1", "-", input=data, text=False, check=True)
    assert _run(bpybuild, "tar:1", "sh", "-c", "cat /ctx/hello.txt; ls /ctx") == \
        "from the tar\nDockerfile\nhello.txt\nsub\n"
    bpybuild("build", "-q", "-f", "sub/Other.Dockerfile", "-t", "tar:2", "-", input=data, text=False, check=True)
    assert _run(bpybuild, "tar:2", "cat", "/other.txt") == "from the tar\n"
    # without -t: an unnamed image (Docker's <none>:<none>), run by a short id prefix
    ctx = tmp_path / "unnamed"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nENV UNNAMED=yes\n")
    built = bpybuild("build", "-q", str(ctx), check=True).stdout.strip()
    unnamed = bpybuild("images", "-q", "--no-trunc", "--filter", "dangling=true", check=True).stdout.split()
    assert unnamed == [built]
    assert _run(bpybuild, built[7:14], "sh", "-c", "echo $UNNAMED") == "yes\n"


def test_progress_plain_tty_quiet(bpybuild, tmp_path: Path) -> None:
    """BuildKit-like step lines: ``#N [stage k/n] INSTR`` then ``#N DONE 0.1s`` or ``#N CACHED``; RUN
    output streamed; ``tty`` leaves out metadata steps; ``quiet`` and ``-q`` print no step lines."""
    ctx = tmp_path / "p"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox AS base\nENV X=1\nRUN echo out-$X && echo err-$X >&2\n"
                                    "FROM base\nRUN echo second\n")
    plain = _build(bpybuild, ctx, "-t", "p:1").stderr
    lines = plain.splitlines()
    assert lines[0] == "#1 [base 1/2] FROM busybox AS base" and re.fullmatch(r"#1 DONE \d+\.\ds", lines[1])
    assert "#2 [base] ENV X=1" in lines and "#3 [base 2/2] RUN echo out-$X && echo err-$X >&2" in lines
    assert "out-1" in lines and "err-1" in lines and "#5 [2/2] RUN echo second" in lines
    assert any(re.fullmatch(r"#5 DONE \d+\.\ds", l) for l in lines)
    tty = bpybuild("build", "--progress", "tty", "--no-cache", "-t", "p:2", str(ctx), check=True).stderr
    assert "ENV X=1" not in tty and "#3 [base 2/2] RUN" in tty and "out-1" in tty
    cached = bpybuild("build", "--progress", "plain", "-t", "p:3", str(ctx), check=True).stderr
    assert "#3 CACHED" in cached and "#5 CACHED" in cached and "2/2 steps cached" in cached
    quiet = bpybuild("build", "--progress", "quiet", "--no-cache", "-t", "p:4", str(ctx), check=True)
    assert "#1" not in quiet.stderr and "out-1" not in quiet.stderr and quiet.stdout.startswith("sha256:")
    q = bpybuild("build", "-q", "--no-cache", "-t", "p:5", str(ctx), check=True)
    assert q.stderr == "" and re.fullmatch(r"sha256:[0-9a-f]{64}\n", q.stdout)


def test_args_case_builds_and_runs(bpybuild, tmp_path: Path) -> None:
    """testdata/dockerfiles/args: global and stage ARGs, --build-arg, ${V:-d}/${V:+a}, SHELL applied to RUN
    and to a shell-form ENTRYPOINT, USER/WORKDIR; a proxy build arg reaches RUN but neither the config
    nor the history (as Docker keeps it out)."""
    ctx = _copy_case("args", tmp_path)
    _build(bpybuild, ctx, "-t", "args:1", "--build-arg", "FLAVOUR=spicy", "--build-arg",
           "HTTP_PROXY=http://proxy.invalid:3128")
    assert _run(bpybuild, "args:1") == "1.0\n"  # ENTRYPOINT echo $APP_VERSION through SHELL ["/bin/sh", "-ec"]
    sh = ("run", "--rm", "--network", "none", "--entrypoint", "/bin/sh")
    out = bpybuild(*sh, "args:1", "-c", "cat /tmp/v; pwd; id -u; echo $APP_FLAVOUR $HAS_FLAVOUR", check=True).stdout
    assert out == "1.0 http://proxy.invalid:3128\n/opt/1.0/sub\n1000\nspicy yes\n"
    info = json.loads(bpybuild("inspect", "args:1", check=True).stdout)[0]
    history = bpybuild("history", "--no-trunc", "args:1", check=True).stdout
    assert "proxy.invalid" not in json.dumps(info) and "proxy.invalid" not in history
    assert info["Config"]["Entrypoint"] == ["/bin/sh", "-ec", "echo $APP_VERSION"]
    assert info["Config"]["Labels"] == {"version": "1.0", "quoted key": "single $VERSION"}
    _build(bpybuild, ctx, "-t", "args:2")
    assert bpybuild(*sh, "args:2", "-c", "echo $APP_FLAVOUR-$HAS_FLAVOUR", check=True).stdout == "plain-\n"


def test_single_case_builds_and_serves_its_page(bpybuild, tmp_path: Path) -> None:
    ctx = _copy_case("single", tmp_path)
    _build(bpybuild, ctx, "-t", "single:1")
    assert _run(bpybuild, "single:1", "cat", "/www/index.html") == (ctx / "index.html").read_text()
    info = json.loads(bpybuild("inspect", "single:1", check=True).stdout)[0]
    assert info["Config"]["Cmd"] == ["httpd", "-f", "-v", "-p", "80", "-h", "/www"]
    assert "80/tcp" in info["Config"]["ExposedPorts"] and info["Config"]["WorkingDir"] == "/www"


def test_output_docker_archive_loads_elsewhere_and_runs(bpybuild, tmp_path: Path) -> None:
    """``-o type=docker,dest=...``: a docker-archive (manifest.json with the tags) another store loads."""
    import tarfile

    from tests.conftest import PybuildRunner

    out = tmp_path / "app.tar"
    _build(bpybuild, TESTDATA / "app", "-t", "app:arch", "-o", f"type=docker,dest={out}")
    with tarfile.open(out) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
    assert manifest[0]["RepoTags"] == ["app:arch"] and len(manifest[0]["Layers"]) >= 2
    root, state = tmp_path / "other-root", tmp_path / "other-state"
    root.mkdir(mode=0o700)
    state.mkdir(mode=0o700)
    other = PybuildRunner(root, state)
    other("load", "-i", str(out), check=True)
    assert "hello from pybuild" in other("run", "--rm", "--network", "none", "app:arch", "cat", "/www/index.html",
                                         check=True).stdout


def test_an_image_of_sixty_layers_builds_and_runs(bpybuild, tmp_path: Path) -> None:
    """More layers than one page of overlay mount options holds as paths (~40 here): still built
    and run (the lowerdirs go as /proc/self/fd/N)."""
    ctx = tmp_path / "deep"
    ctx.mkdir()
    steps = "".join(f"RUN echo {i} > /f{i}\n" for i in range(1, 60))
    (ctx / "Dockerfile").write_text("FROM busybox\n" + steps + "RUN cat /f1 /f59 > /ends\n")
    _build(bpybuild, ctx, "-t", "deep:1")
    assert _run(bpybuild, "deep:1", "cat", "/ends", "/f30") == "1\n59\n30\n"
