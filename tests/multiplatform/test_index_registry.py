"""A two-platform build pushed as one index to a real ``docker-registry``, read by skopeo and run by
podman on arm64; the index kept whole by ``images``, ``inspect``, ``save``/``load``, ``pull
--all-platforms`` and made by hand with ``manifest create/add/annotate/remove/push/rm``."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.conftest import PybuildRunner

DOCKERFILE = """\
FROM busybox:multi
ARG TARGETARCH
RUN uname -m > /arch && echo "$TARGETARCH" > /target
CMD ["cat", "/arch"]
"""


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    from tests.registry.servers import start_registry

    server = start_registry("open", tmp_path_factory.mktemp("mp-registry"))
    yield server
    server.stop()


def _env(host: str) -> dict[str, str]:
    return {"PYBUILD_INSECURE_REGISTRIES": host}


def _platforms(raw: bytes) -> list[str]:
    body = json.loads(raw)
    return sorted("/".join(filter(None, (m["platform"]["os"], m["platform"]["architecture"],
                                         m["platform"].get("variant")))) for m in body["manifests"])


def test_two_platform_build_pushes_one_index(mpybuild, qemu_registered, registry, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    ref = f"{registry.host}/mp/app:1"
    build = mpybuild("build", "--platform", "linux/amd64,linux/arm64", "-t", ref, "--push", str(ctx),
                     env=_env(registry.host))
    assert build.returncode == 0, build.stderr
    assert "[linux/arm64 2/2] RUN" in build.stderr and "[linux/amd64 2/2] RUN" in build.stderr

    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
                         capture_output=True, check=True).stdout
    body = json.loads(raw)
    assert body["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert _platforms(raw) == ["linux/amd64", "linux/arm64"]
    assert build.stdout.strip() == subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}", f"docker://{ref}"],
        capture_output=True, text=True, check=True).stdout.strip()  # the printed id is the index's digest

    # the local record is one entry with both platforms
    images = mpybuild("images", f"{registry.host}/mp/app", check=True).stdout.splitlines()
    assert images[0].split()[-1] == "PLATFORMS" and images[1].split()[-1] == "linux/amd64,linux/arm64", images
    templated = mpybuild("images", "--format", "{{.Tag}} {{.Platforms}}", f"{registry.host}/mp/app", check=True)
    assert templated.stdout == "1 linux/amd64,linux/arm64\n"
    doc = json.loads(mpybuild("inspect", ref, check=True).stdout)[0]
    assert [p["platform"] for p in doc["Index"]["Platforms"]] == ["linux/amd64", "linux/arm64"]

    # podman pulls the arm64 image of the index and runs it under the same emulation
    podman = Path(tempfile.mkdtemp(prefix="pbpod-", dir="/tmp"))  # its runroot must be under 50 characters
    try:
        proc = subprocess.run(["podman", "--root", str(podman / "root"), "--runroot", str(podman / "run"),
                               "--tmpdir", str(podman / "tmp"), "--storage-driver", "vfs", "--events-backend", "none",
                               "--cgroup-manager", "cgroupfs", "run", "--rm", "--network", "none", "--arch", "arm64",
                               "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",  # no CAP_SYS_RESOURCE here
                               "--tls-verify=false", ref, "uname", "-m"], capture_output=True, text=True, timeout=180)
    finally:
        shutil.rmtree(podman, ignore_errors=True)
    assert proc.stdout == "aarch64\n", proc.stderr

    # a fresh store: pull --all-platforms keeps the index whole, run picks either platform
    fresh = PybuildRunner(tmp_path / "fresh-root", tmp_path / "fresh-state")
    fresh.root.mkdir(mode=0o700)
    fresh.state.mkdir(mode=0o700)
    fresh("pull", "--all-platforms", "-q", ref, env=_env(registry.host), check=True)
    for platform, machine in (("linux/arm64", "aarch64"), ("linux/amd64", "x86_64")):
        out = fresh("run", "--rm", "--network", "none", "--platform", platform, ref, check=True)
        assert out.stdout == f"{machine}\n"

    # save and load keep the index too
    archive = tmp_path / "app.tar"
    mpybuild("save", "-o", str(archive), ref, check=True)
    loaded = PybuildRunner(tmp_path / "load-root", tmp_path / "load-state")
    loaded.root.mkdir(mode=0o700)
    loaded.state.mkdir(mode=0o700)
    loaded("load", "-i", str(archive), check=True)
    doc = json.loads(loaded("inspect", ref, check=True).stdout)[0]
    assert [p["platform"] for p in doc["Index"]["Platforms"]] == ["linux/amd64", "linux/arm64"]
    out = loaded("run", "--rm", "--network", "none", "--platform", "linux/arm64", ref, check=True)
    assert out.stdout == "aarch64\n"


def test_docker_format_makes_a_manifest_list_and_cache_keys_hold_the_platform(mpybuild, qemu_registered,
                                                                              tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    archive = tmp_path / "out.tar"
    first = mpybuild("build", "--platform", "linux/arm64,linux/amd64", "--format", "docker", "-t", "app:d",
                     "-o", f"type=oci,dest={archive}", str(ctx))
    assert first.returncode == 0, first.stderr
    assert "# 0/2 steps cached" in first.stderr  # the same RUN text, a different key per platform
    again = mpybuild("build", "--platform", "linux/arm64,linux/amd64", "--format", "docker", "-t", "app:d", str(ctx))
    assert "# 2/2 steps cached" in again.stderr and again.stdout == first.stdout
    one = mpybuild("build", "--platform", "linux/arm64", "-t", "app:one", str(ctx), check=True)
    assert "# 1/1 steps cached" in one.stderr

    layout = tmp_path / "layout"
    layout.mkdir()
    subprocess.run(["tar", "-xf", str(archive), "-C", str(layout)], check=True)
    top = json.loads((layout / "index.json").read_text())["manifests"][0]
    assert top["mediaType"] == "application/vnd.docker.distribution.manifest.list.v2+json"
    inner = (layout / "blobs" / "sha256" / top["digest"].split(":")[1]).read_bytes()
    assert _platforms(inner) == ["linux/amd64", "linux/arm64"]
    assert json.loads(inner)["manifests"][0]["platform"]["architecture"] == "arm64"  # --platform order
    assert top["digest"] == first.stdout.strip()


def test_manifest_verbs_build_and_push_an_index_by_hand(mpybuild, registry, tmp_path: Path) -> None:
    env = _env(registry.host)
    amd, arm = f"{registry.host}/hand/bb:amd64", f"{registry.host}/hand/bb:arm64"
    for local, remote in (("busybox:amd64", amd), ("busybox:arm64", arm)):
        mpybuild("push", "-q", local, remote, env=env, check=True)
    # a fresh store: the images come from the registry, as docker manifest create takes them
    pb = PybuildRunner(tmp_path / "root2", tmp_path / "state2")
    pb.root.mkdir(mode=0o700)
    pb.state.mkdir(mode=0o700)
    lst = f"{registry.host}/hand/bb:list"
    pb("manifest", "create", lst, amd, env=env, check=True)
    pb("manifest", "add", "--variant", "v8", "--annotation", "team=arm", lst, arm, env=env, check=True)
    raw = pb("manifest", "inspect", "--raw", lst, text=False, check=True).stdout
    assert _platforms(raw) == ["linux/amd64", "linux/arm64/v8"]
    assert json.loads(raw)["manifests"][1]["annotations"] == {"team": "arm"}
    arm_digest = json.loads(raw)["manifests"][1]["digest"]
    pb("manifest", "annotate", "--os-features", "sse4", lst, amd, check=True)
    raw = pb("manifest", "inspect", "--raw", lst, text=False, check=True).stdout
    assert json.loads(raw)["manifests"][0]["platform"]["os.features"] == ["sse4"]
    pushed = pb("manifest", "push", lst, env=env, check=True).stdout.strip()
    remote = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{lst}"],
                            capture_output=True, check=True).stdout
    assert remote == raw and pushed.startswith("sha256:")
    # a build in a fresh store pulls each platform of the pushed list; the name stays on the index, so
    # the second build (and either platform) finds its entry without pulling again
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {lst}\nCOPY Dockerfile /\n")
    b = PybuildRunner(tmp_path / "root3", tmp_path / "state3")
    b.root.mkdir(mode=0o700)
    b.state.mkdir(mode=0o700)
    for _ in range(2):
        built = b("build", "--platform", "linux/amd64,linux/arm64", "-t", "fromlist:1", str(ctx), env=env)
        assert built.returncode == 0, built.stderr
    assert "pulling" not in built.stderr
    # remove one entry, then the list itself; the images stay
    pb("manifest", "remove", lst, arm_digest, check=True)
    assert _platforms(pb("manifest", "inspect", "--raw", lst, text=False, check=True).stdout) == ["linux/amd64"]
    rm = pb("manifest", "rm", lst, check=True)
    assert rm.stdout == f"Untagged: {lst}\n"
    assert pb("image", "inspect", amd).returncode == 0
    bad = pb("manifest", "add", amd, arm)
    assert bad.returncode != 0 and "is an image, not a manifest list" in bad.stderr and bad.stderr.count("\n") == 1
