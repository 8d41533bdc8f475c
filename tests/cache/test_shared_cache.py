"""The build cache shared through a registry (issue 15), end to end through the real ``pybuild``
command: two stores that share nothing ("machines" A and B) and one token-auth ``docker-registry``
(Harbor's robot-account flow) whose access log counts blob GETs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BUSYBOX, TESTDATA, PybuildRunner

DOCKERFILE = """\
FROM {base} AS build
COPY a.txt /a.txt
RUN date +%s%N > /stamp && cat /a.txt > /copy
FROM {base}
COPY b.txt /b.txt
COPY --from=build /stamp /copy /out/
RUN cat /out/stamp /b.txt > /final
"""


class Fleet:
    def __init__(self, base: Path, registry) -> None:
        self.base, self.registry, self.host = base, registry, registry.host
        self.env = {"PYBUILD_INSECURE_REGISTRIES": registry.host, "PYBUILD_CONFIG": str(base / "cfg"),
                    "DOCKER_CONFIG": str(base / "docker"), "HOME": str(base)}
        self.n = 0

    def machine(self) -> PybuildRunner:
        self.n += 1
        root, state = self.base / f"m{self.n}-root", self.base / f"m{self.n}-state"
        root.mkdir(mode=0o700)
        state.mkdir(mode=0o700)
        return PybuildRunner(root, state)

    def __call__(self, machine: PybuildRunner, *args: str, ok: bool = True):
        proc = machine(*args, env=self.env)
        if ok:
            assert proc.returncode == 0, proc.stderr
        return proc

    def build(self, machine: PybuildRunner, ctx: Path, *args: str, ok: bool = True):
        return self(machine, "build", "--progress", "plain", *args, str(ctx), ok=ok)

    def log_mark(self) -> int:
        return len(self.log_lines())

    def log_lines(self) -> list[str]:
        return (self.registry.workdir / "registry.log").read_text(errors="replace").splitlines()

    def blob_gets(self, since: int) -> list[str]:
        return [l for l in self.log_lines()[since:] if re.search(r'"GET /v2/\S+/blobs/sha256:', l)
                and '" 200 ' in l]


def _ctx(path: Path, base: str, a: str = "a1\n", b: str = "b1\n") -> Path:
    path.mkdir()
    (path / "Dockerfile").write_text(DOCKERFILE.format(base=base))
    (path / "a.txt").write_text(a)
    (path / "b.txt").write_text(b)
    return path


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """The registry, a logged-in robot account, the base image pushed to it, and machine A's build:
    ``--cache-to`` in both modes, the image pushed; ``a_stamp`` is the time A's RUN wrote."""
    from tests.registry.servers import REGISTRY_BIN, start_registry

    if REGISTRY_BIN is None:
        pytest.skip("docker-registry is not installed")
    base = tmp_path_factory.mktemp("fleet")
    server = start_registry("token", base / "registry", access_log=True)
    try:
        f = Fleet(base, server)
        a = f.machine()
        tar = base / "busybox.tar"
        subprocess.run([sys.executable, str(TESTDATA / "busybox" / "make_rootfs.py"), str(tar), BUSYBOX], check=True)
        out = a("login", server.host, "-u", server.user, "--password-stdin", input=server.password + "\n", env=f.env)
        assert out.returncode == 0, out.stderr
        f(a, "import", str(tar), "busybox:latest")
        f.base_ref = f"{f.host}/base/busybox:1"
        f(a, "push", "busybox:latest", f.base_ref)
        f.ctx = _ctx(base / "ctx", f.base_ref)
        h = f.host
        f.max_ref, f.min_ref = f"{h}/cache/app:max", f"{h}/cache/app:min"
        f.a_build = f.build(a, f.ctx, "-t", f"{h}/team/app:a", "--push",
                            "--cache-to", f"type=registry,ref={f.max_ref},mode=max",
                            "--cache-to", f"type=registry,ref={f.min_ref},mode=min,compression=zstd")
        f.a_stamp = f(a, "run", "--rm", "--network", "none", f"{h}/team/app:a", "cat", "/out/stamp").stdout
        f.a = a
        yield f
    finally:
        server.stop()


def _cached(proc) -> int:
    return proc.stderr.count("CACHED (registry)")


def test_a_exported_both_modes(fleet) -> None:
    assert "cache: exported" in fleet.a_build.stderr and "mode=max" in fleet.a_build.stderr
    assert "mode=min" in fleet.a_build.stderr


def test_fresh_machine_hits_every_step_and_pushes_only_manifests(fleet) -> None:
    """B: every step a registry hit, nothing downloaded, the push mounts; then ``run`` fetches lazily
    and the stamp is A's (the RUN did not run again). With the mode=min cache too."""
    f, b = fleet, fleet.machine()
    mark = f.log_mark()
    out = f.build(b, f.ctx, "-t", f"{f.host}/team/b:1", "--push", "--cache-from", f"type=registry,ref={f.max_ref}")
    assert _cached(out) == 3, out.stderr
    assert "# 3/3 steps cached" in out.stderr
    assert "[build" not in out.stderr  # COPY --from=build hit: the build stage is not even walked
    assert "0 cached layers downloaded" in out.stderr
    gets = f.blob_gets(mark)
    # only the cache config and the base image's config come down: no layer
    assert len(gets) == 2, "\n".join(gets)
    mounts = [l for l in f.log_lines()[mark:] if '"POST /v2/team/b/blobs/uploads/?' in l and "mount=" in l
              and '" 201 ' in l]
    assert len(mounts) == 4, "\n".join(f.log_lines()[mark:])  # the base layer and 3 final-stage layers
    # no layer goes up: the one upload is the image config (a small document, like the manifest)
    config = json.loads(f(b, "manifest", "inspect", f"{f.host}/team/b:1").stdout)["config"]["digest"]
    ups = [l for l in f.log_lines()[mark:] if re.search(r'"(PUT|PATCH) /v2/team/b/blobs/uploads/', l)]
    assert len(ups) == 1 and config.split(":")[1] in ups[0], ups
    # the same image as A's: same config, same manifest
    ia = f(f.a, "images", "--no-trunc", "-q", f"{f.host}/team/app:a").stdout.split()
    ib = f(b, "images", "--no-trunc", "-q", f"{f.host}/team/b:1").stdout.split()
    assert ia == ib
    # a lazy image is not a broken one
    fsck = f(b, "fsck")
    assert "lazy" in fsck.stdout + fsck.stderr
    # run needs the bytes: fetched now, verified, and the stamp is A's
    mark = f.log_mark()
    stamp = f(b, "run", "--rm", "--network", "none", f"{f.host}/team/b:1", "cat", "/out/stamp").stdout
    assert stamp == f.a_stamp
    assert len(f.blob_gets(mark)) >= 3  # the base layer and the final stage's layers


def test_changed_copied_file_reruns_only_the_steps_after_it(fleet, tmp_path: Path) -> None:
    f, b = fleet, fleet.machine()
    ctx = _ctx(tmp_path / "ctx", f.base_ref, b="b2\n")
    out = f.build(b, ctx, "-t", "app:b2", "--cache-from", f"type=registry,ref={f.max_ref}")
    steps = dict(re.findall(r"#(\d+) \[[^\]]*\] (.*)", out.stderr))
    cached = {n for n in re.findall(r"#(\d+) CACHED \(registry\)", out.stderr)}
    assert {steps[n] for n in cached} == {"COPY a.txt /a.txt", "RUN date +%s%N > /stamp && cat /a.txt > /copy"}
    assert "# 2/5 steps cached" in out.stderr
    final = f(b, "run", "--rm", "--network", "none", "app:b2", "cat", "/final").stdout
    assert final == f.a_stamp + "b2\n"  # the build stage was A's; the steps after b.txt ran


def test_stale_multistage_copy_from_never_hits(fleet, tmp_path: Path) -> None:
    """A changed file in the *build* stage: its RUN reruns, and ``COPY --from=build`` must not hit A's
    entry (its key holds the source stage's key) even though its own instruction did not change."""
    f, b = fleet, fleet.machine()
    ctx = _ctx(tmp_path / "ctx", f.base_ref, a="a2\n")
    out = f.build(b, ctx, "-t", "app:stale", "--cache-from", f"type=registry,ref={f.max_ref}")
    assert _cached(out) == 1, out.stderr  # COPY b.txt only
    copy = f(b, "run", "--rm", "--network", "none", "app:stale", "cat", "/out/copy", "/out/stamp").stdout
    assert copy.startswith("a2\n") and not copy.endswith(f.a_stamp)


def test_min_mode_holds_the_final_stage_only(fleet) -> None:
    from builder.remotecache.model import CACHE_CONFIG_TYPE, CacheConfig
    from layers.manifest import Manifest
    from layers.reference import Reference
    from registry_client.client import Registry
    from registry_client.credentials import Credentials
    from tests.model.schemas import MANIFEST, validate

    counts = {}
    with Registry(fleet.host, credentials=Credentials(fleet.registry.user, fleet.registry.password)) as reg:
        for ref in (fleet.max_ref, fleet.min_ref):
            r = Reference.parse(ref)
            doc = reg.repository(r.repository).get_manifest(r.tag)
            validate(doc.raw, MANIFEST)
            manifest = Manifest.parse(doc.raw)
            assert manifest.config.media_type == CACHE_CONFIG_TYPE
            config = CacheConfig.parse(reg.repository(r.repository).read_blob(manifest.config, 1 << 20))
            assert {l.blob for l in config.layers} == {d.digest for d in manifest.layers}
            counts[r.tag] = len([x for x in config.records if x.inputs])
            want = "zstd" if r.tag == "min" else "gzip"  # min was exported with compression=zstd
            assert {d.media_type.rsplit("+", 1)[1] for d in manifest.layers} == {want}
    assert counts == {"max": 5, "min": 3}


def test_inline_and_local_round_trips(fleet, tmp_path: Path) -> None:
    f, a, b = fleet, fleet.a, fleet.machine()
    inline = f"{f.host}/team/inline:1"
    f.build(a, f.ctx, "-t", inline, "--push", "--cache-to", "type=inline",
            "--cache-to", f"type=local,dest={tmp_path / 'dir'},mode=max")
    out = f.build(b, f.ctx, "-t", "app:inline", "--cache-from", inline)
    assert _cached(out) == 3, out.stderr  # the final stage (inline is mode=min)
    assert "[build" not in out.stderr  # every step that reads the build stage hit: it never ran
    c = fleet.machine()
    out = f.build(c, f.ctx, "-t", "app:local", "--cache-from", f"type=local,src={tmp_path / 'dir'}")
    assert out.stderr.count("CACHED (local)") == 3, out.stderr
    assert "imported 5 records" in out.stderr  # mode=max: the build stage's steps too
    assert f(c, "run", "--rm", "--network", "none", "app:local", "cat", "/out/stamp").stdout == f.a_stamp


def test_unreachable_cache_ref(fleet) -> None:
    f, b = fleet, fleet.machine()
    dead = "127.0.0.1:9/cache/none:1"
    env_dead = dict(f.env, PYBUILD_INSECURE_REGISTRIES=f"{f.host},127.0.0.1:9")
    out = b("build", "--progress", "plain", "-t", "app:cold", "--cache-from", f"type=registry,ref={dead}",
            str(f.ctx), env=env_dead)
    assert out.returncode == 0, out.stderr
    assert f"cache type=registry,ref={dead} could not be imported" in out.stderr and "building without it" in out.stderr
    assert "# 0/5 steps cached" in out.stderr
    out = b("build", "-t", "app:cold", "--cache-from", f"type=registry,ref={dead},ignore-error=false",
            str(f.ctx), env=env_dead)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert f"--cache-from type=registry,ref={dead} could not be imported" in out.stderr
    out = b("build", "-t", "app:cold", "--cache-to", f"type=registry,ref={dead}", str(f.ctx), env=env_dead)
    assert out.returncode != 0 and f"--cache-to type=registry,ref={dead}" in out.stderr
    out = b("build", "--progress", "plain", "-t", "app:cold", "--cache-to", f"type=registry,ref={dead},ignore-error=true",
            str(f.ctx), env=env_dead)
    assert out.returncode == 0 and "[warning] --cache-to" in out.stderr
    bad = b("build", "--cache-to", "type=s3,ref=x", str(f.ctx), env=env_dead)
    assert bad.returncode != 0 and "type must be registry, inline or local" in bad.stderr


def test_min_cache_alone_rebuilds_the_image(fleet, tmp_path: Path) -> None:
    f, b = fleet, fleet.machine()
    out = f.build(b, f.ctx, "-t", "app:min", "--cache-from", f"type=registry,ref={f.min_ref}")
    assert _cached(out) == 3 and "[build" not in out.stderr, out.stderr
    # the zstd layers of the cache, fetched and unpacked by run: the same files as A's
    assert f(b, "run", "--rm", "--network", "none", "app:min", "cat", "/out/stamp").stdout == f.a_stamp


def test_push_elsewhere_fetches_lazy_layers_first(fleet) -> None:
    """Pushed where no mount can bring them (another registry name), lazy layers come down from the
    cache's repository, verified, then go up; re-exporting the cache to the same registry mounts."""
    f, b = fleet, fleet.machine()
    port = f.host.rsplit(":", 1)[1]
    other = f"localhost:{port}"
    env = dict(f.env, PYBUILD_INSECURE_REGISTRIES=f"{f.host},{other}")
    out = b("login", other, "-u", f.registry.user, "--password-stdin", input=f.registry.password + "\n", env=env)
    assert out.returncode == 0, out.stderr
    out = b("build", "--progress", "plain", "-t", "app:elsewhere", "--cache-from", f"type=registry,ref={f.min_ref}",
            "--cache-to", f"type=registry,ref={f.host}/cache/again:1", str(f.ctx), env=env)
    assert out.returncode == 0 and "0 cached layers downloaded" in out.stderr, out.stderr
    mark = f.log_mark()
    out = b("push", "app:elsewhere", f"{other}/other/x:1", env=env)
    assert out.returncode == 0, out.stderr
    assert len(f.blob_gets(mark)) >= 3  # the lazy layers, fetched to be uploaded
    assert [l for l in f.log_lines()[mark:] if re.search(r'"PUT /v2/other/x/blobs/uploads/', l)]
