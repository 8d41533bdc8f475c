"""A two-platform build with ``--sbom`` and ``--cache-to`` (registry, local and inline at once), under
real qemu emulation of arm64, pushed to a real ``docker-registry``: one build shared by the checks.

- Each platform's manifest on the registry has its own SPDX referrer, made from that platform's image:
  the package the RUN wrote names the platform's ``TARGETARCH`` and the ``uname -m`` it ran under.
- One cache export holds both platforms' records (their keys differ by platform): a fresh store
  (the bases, no build cache) with ``--cache-from`` hits every step of both platforms, from the
  registry cache, the local directory, and the pushed index's inline caches.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PybuildRunner

DOCKERFILE = """\
FROM busybox:multi
ARG TARGETARCH
RUN mkdir -p /var/lib/dpkg && printf 'Package: tool-%s\\nStatus: install ok installed\\nVersion: 1.0\\nArchitecture: %s\\n\\n' "$TARGETARCH" "$(uname -m)" > /var/lib/dpkg/status
COPY a.txt /a.txt
"""
PLATFORMS = "linux/amd64,linux/arm64"
ARCH = {"linux/amd64": ("amd64", "x86_64"), "linux/arm64": ("arm64", "aarch64")}


@pytest.fixture(scope="module")
def built(multi_root: Path, qemu_registered, tmp_path_factory):
    """The registry and the one two-platform build: ``--sbom --push`` and three cache exports."""
    from tests.registry.servers import start_registry

    base = tmp_path_factory.mktemp("mp-attest")
    server = start_registry("open", base / "registry")
    try:
        ctx = base / "ctx"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(DOCKERFILE)
        (ctx / "a.txt").write_text("a\n")
        pb = _machine(base, multi_root, "builder")
        env = {"PYBUILD_INSECURE_REGISTRIES": server.host}
        image, cache, local = f"{server.host}/mp/app:1", f"{server.host}/mp/cache:1", base / "cache-dir"
        build = pb("build", "--progress", "plain", "--platform", PLATFORMS, "--sbom", "--push", "-t", image,
                   "--cache-to", f"type=registry,ref={cache}", "--cache-to", f"type=local,dest={local}",
                   "--cache-to", "type=inline", str(ctx), env=env)
        assert build.returncode == 0, build.stderr
        yield {"server": server, "pb": pb, "env": env, "image": image, "cache": cache, "local": local,
               "ctx": ctx, "base": base, "build": build}
    finally:
        server.stop()


def _machine(base: Path, multi_root: Path, name: str) -> PybuildRunner:
    """A store with only the base images (a copy of ``multi_root``): no build cache at all."""
    root, state = base / f"{name}-root", base / f"{name}-state"
    shutil.copytree(multi_root, root, symlinks=True)
    state.mkdir(mode=0o700)
    return PybuildRunner(root, state)


def _skopeo_raw(ref: str) -> dict:
    out = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
                         capture_output=True, check=True).stdout
    return json.loads(out)


def _tool(doc: dict) -> tuple[str, str]:
    (tool,) = [p for p in doc["packages"] if p["name"].startswith("tool-")]
    return tool["name"], tool["externalRefs"][0]["referenceLocator"]


def test_each_platform_manifest_has_its_own_sbom_referrer(built) -> None:
    pb, env, image = built["pb"], built["env"], built["image"]
    index = _skopeo_raw(image)
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    entries = {f'{m["platform"]["os"]}/{m["platform"]["architecture"]}': m["digest"] for m in index["manifests"]}
    assert sorted(entries) == ["linux/amd64", "linux/arm64"]
    name = image.rsplit(":", 1)[0]
    for platform, (arch, machine) in ARCH.items():
        # the referrers of that platform's manifest, as the registry lists them
        listed = json.loads(pb("referrers", f"{name}@{entries[platform]}", "--format", "json", env=env,
                               check=True).stdout)
        assert [r["artifactType"] for r in listed] == ["application/spdx+json"], listed
        remote = json.loads(pb("sbom", "--remote", "--platform", platform, image, env=env, check=True).stdout)
        tool, purl = _tool(remote)  # written by the RUN of that platform, under its (emulated) machine
        assert tool == f"tool-{arch}" and purl.endswith(f"/tool-{arch}@1.0?arch={machine}"), remote["packages"]
        local = json.loads(pb("sbom", "--platform", platform, image, env=env, check=True).stdout)
        assert local == remote  # the document saved by the build is the one attached
    # the index itself carries none: an SBOM belongs to one platform's image
    assert json.loads(pb("referrers", image, "--format", "json", env=env, check=True).stdout) == []
    for args in (["--platform", "linux/s390x", image],  # no such entry in the index
                 ["--platform", "linux/arm64", f"{name}@{entries['linux/amd64']}"]):  # one image, another platform
        bad = pb("sbom", "--remote", *args, env=env)
        assert bad.returncode != 0 and bad.stderr.count("\n") == 1, bad.stderr
        assert args[1] in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
    one = json.loads(pb("sbom", "--remote", "--platform", "linux/amd64", f"{name}@{entries['linux/amd64']}",
                        env=env, check=True).stdout)
    assert _tool(one)[0] == "tool-amd64"


@pytest.mark.parametrize("source", ["registry", "local", "inline"])
def test_fresh_store_hits_every_step_of_both_platforms(built, multi_root: Path, source: str) -> None:
    spec = {"registry": f"type=registry,ref={built['cache']}", "local": f"type=local,src={built['local']}",
            "inline": f"type=registry,ref={built['image']}"}[source]
    first = built["build"].stderr
    assert "# 0/4 steps cached" in first, first
    for platform in ARCH:  # each image carries the records of its own platform's steps
        assert f"records inline in the {platform} image's config" in first, first
    fresh = _machine(built["base"], multi_root, f"fresh-{source}")
    out = fresh("build", "--progress", "plain", "--platform", PLATFORMS, "--cache-from", spec, "-t", "again:1",
                str(built["ctx"]), env=built["env"])
    assert out.returncode == 0, out.stderr
    assert "# 4/4 steps cached" in out.stderr, out.stderr
    assert "cache: 4 steps hit the imported cache" in out.stderr, out.stderr
    for platform, (arch, machine) in ARCH.items():
        assert f"[{platform} 2/3] RUN" in out.stderr, out.stderr
        # each platform's image got its own platform's cached layers (fetched from the cache on use)
        status = fresh("run", "--rm", "--network", "none", "--platform", platform, "again:1",
                       "cat", "/var/lib/dpkg/status", env=built["env"], check=True).stdout
        assert f"Package: tool-{arch}\n" in status and f"Architecture: {machine}\n" in status, status

