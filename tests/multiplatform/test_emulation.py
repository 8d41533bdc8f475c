"""Building and running linux/arm64 images on this amd64 host through binfmt_misc + qemu-aarch64:
RUN steps under emulation, BuildKit's automatic platform args, ``run --platform``, the binfmt check
with its one command, and a cross-compile stage run natively with ``FROM --platform=$BUILDPLATFORM``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ARGS_DOCKERFILE = """\
FROM busybox:multi
ARG BUILDPLATFORM BUILDOS BUILDARCH BUILDVARIANT TARGETPLATFORM TARGETOS TARGETARCH TARGETVARIANT
RUN uname -m > /arch && \\
    echo "$BUILDPLATFORM|$BUILDOS|$BUILDARCH|$BUILDVARIANT|$TARGETPLATFORM|$TARGETOS|$TARGETARCH|$TARGETVARIANT" > /args
CMD ["cat", "/arch", "/args"]
"""


def _inspect(pb, image: str) -> dict:
    return json.loads(pb("inspect", image, check=True).stdout)[0]


def test_arm64_build_runs_its_steps_under_emulation(mpybuild, qemu_registered, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(ARGS_DOCKERFILE)
    mpybuild("build", "--platform", "linux/arm64/v8", "-t", "app:arm", str(ctx), check=True)
    doc = _inspect(mpybuild, "app:arm")
    assert (doc["Os"], doc["Architecture"], doc.get("Variant")) == ("linux", "arm64", "v8")

    run = mpybuild("run", "--rm", "--network", "none", "--platform", "linux/arm64", "app:arm", "uname", "-m", check=True)
    assert run.stdout == "aarch64\n" and "WARNING" not in run.stderr, run.stderr
    out = mpybuild("run", "--rm", "--network", "none", "app:arm", check=True)  # no --platform: warned
    assert out.stdout == "aarch64\nlinux/amd64|linux|amd64||linux/arm64/v8|linux|arm64|v8\n"
    assert "WARNING: The requested image's platform (linux/arm64/v8) does not match the detected host platform " \
           "(linux/amd64)" in out.stderr, out.stderr

    # an index record: --platform picks the entry, the host's is the default
    native = mpybuild("run", "--rm", "--network", "none", "busybox:multi", "uname", "-m", check=True)
    assert native.stdout == "x86_64\n" and native.stderr == ""
    arm = mpybuild("run", "--rm", "--network", "none", "--platform", "linux/arm64", "busybox:multi", "uname", "-m")
    assert arm.stdout == "aarch64\n", arm.stderr
    # a one-platform image is not another platform's
    bad = mpybuild("run", "--rm", "--platform", "linux/arm64", "busybox:amd64", "true")
    assert bad.returncode == 125
    assert bad.stderr == "pybuild: --platform linux/arm64: image docker.io/library/busybox:amd64 is linux/amd64; " \
                         "it has no linux/arm64 image\n"


def test_a_missing_handler_is_named_with_the_command_that_registers_it(tmp_path: Path) -> None:
    """The check reads a binfmt_misc directory; a copy without the qemu-aarch64 entry, or with it
    disabled, stands for a host that never registered it (writing the real one is the admin's call)."""
    from runner import binfmt
    from runner.errors import EmulationUnavailable

    fake = tmp_path / "binfmt_misc"
    fake.mkdir()
    with pytest.raises(EmulationUnavailable, match=r"binfmt_misc is not mounted; run: mount -t binfmt_misc "):
        binfmt.require("linux", "arm64", directory=str(fake))
    (fake / "status").write_text("enabled\n")
    with pytest.raises(EmulationUnavailable, match=r"no binfmt_misc handler is registered for aarch64; "
                                                   r"run: (update-binfmts --enable qemu-aarch64|apt-get install qemu)"):
        binfmt.require("linux", "arm64", directory=str(fake))
    (fake / "qemu-aarch64").write_text("disabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: P\n")
    with pytest.raises(EmulationUnavailable, match=r"is disabled; run: update-binfmts --enable qemu-aarch64$"):
        binfmt.require("linux", "arm64", directory=str(fake))
    (fake / "qemu-aarch64").write_text("enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: P\n")
    with pytest.raises(EmulationUnavailable, match=r"lacks the F \(fix-binary\) flag"):
        binfmt.require("linux", "arm64", directory=str(fake))
    (fake / "qemu-aarch64").write_text("enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\n")
    binfmt.require("linux", "arm64", directory=str(fake))
    binfmt.require("linux", "amd64", directory=str(tmp_path / "none"))  # native: nothing to check
    with pytest.raises(EmulationUnavailable, match="only linux programs"):
        binfmt.require("windows", "arm64", directory=str(fake))


def test_the_host_handler_is_what_pybuild_needs() -> None:
    """The real registration (install.sh): enabled, with the F flag, so containers find the interpreter."""
    from runner import binfmt

    found = binfmt.handler("arm64")
    assert found is not None and found.enabled and "F" in found.flags, found


HELLO_C = r"""
#include <stdio.h>
#include <sys/utsname.h>
int main(void) { struct utsname u; uname(&u); printf("hello from %s\n", u.machine); return 0; }
"""

CROSS_DOCKERFILE = """\
FROM --platform=$BUILDPLATFORM toolchain:1 AS build
ARG TARGETARCH
COPY hello.c /src/hello.c
RUN mkdir -p /out && uname -m > /out/built-on && \\
    case "$TARGETARCH" in arm64) cc=aarch64-linux-gnu-gcc ;; *) echo "no compiler for $TARGETARCH"; exit 1 ;; esac && \\
    $cc -static -O2 -o /out/hello /src/hello.c

FROM busybox:multi
COPY --from=build /out/ /opt/
RUN /opt/hello > /opt/greeting
CMD ["/opt/hello"]
"""


def test_cross_compile_in_a_native_stage_runs_on_arm64(mpybuild, qemu_registered, toolchain_tar: Path,
                                                         tmp_path: Path) -> None:
    mpybuild("import", str(toolchain_tar), "toolchain:1", check=True)  # linux/amd64 only
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(CROSS_DOCKERFILE)
    (ctx / "hello.c").write_text(HELLO_C)
    build = mpybuild("build", "--platform", "linux/arm64", "-t", "hello:arm", str(ctx))
    assert build.returncode == 0, build.stderr
    run = mpybuild("run", "--rm", "--network", "none", "--platform", "linux/arm64", "hello:arm")
    assert run.stdout == "hello from aarch64\n", run.stderr
    files = mpybuild("run", "--rm", "--network", "none", "--platform", "linux/arm64", "hello:arm",
                     "cat", "/opt/built-on", "/opt/greeting", check=True)
    assert files.stdout == "x86_64\nhello from aarch64\n"  # compiled natively, its RUN step emulated
    assert _inspect(mpybuild, "hello:arm")["Architecture"] == "arm64"


SHARED_STAGE = """\
FROM --platform=$BUILDPLATFORM busybox:multi AS tools
RUN uname -m > /native && sleep 0.5 && date +%s%N > /stamp

FROM busybox:multi
ARG TARGETARCH
COPY --from=tools /native /stamp /
RUN echo "$TARGETARCH on $(uname -m)" > /target
"""


def test_a_build_platform_stage_runs_once_for_every_target(mpybuild, qemu_registered, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(SHARED_STAGE)
    build = mpybuild("build", "--platform", "linux/amd64,linux/arm64", "-t", "shared:1", str(ctx))
    assert build.returncode == 0, build.stderr
    assert "# 1/6 steps cached" in build.stderr, build.stderr  # the tools RUN: run by one graph, a hit for the other
    outs = {}
    for platform in ("linux/amd64", "linux/arm64"):
        outs[platform] = mpybuild("run", "--rm", "--network", "none", "--platform", platform, "shared:1",
                                  "cat", "/native", "/stamp", "/target", check=True).stdout.splitlines()
    amd, arm = outs["linux/amd64"], outs["linux/arm64"]
    assert amd[0] == arm[0] == "x86_64" and amd[1] == arm[1]  # the same native layer in both images
    assert (amd[2], arm[2]) == ("amd64 on x86_64", "arm64 on aarch64")


def test_a_bad_platform_is_refused_in_one_line(pybuild) -> None:
    # (--sbom and --cache-to with several platforms: tests/multiplatform/test_attest_cache.py)
    bad = pybuild("build", "--platform", "linux/amd64,linux", "-", input="FROM scratch\n")
    assert bad.returncode != 0 and "invalid platform 'linux'" in bad.stderr and bad.stderr.count("\n") == 1
