"""``pybuild build`` options through the real CLI, on Dockerfiles that only edit the config (no layer
is packed): ``-f -``, a Dockerfile on stdin as the context, ``-q``, ``--iidfile``, several ``-t``,
``--label``, ``--build-arg``, ``--format docker|oci``, history per instruction, full cache hit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

DOCKERFILE = """ARG TAG=latest
FROM busybox:${TAG}
ARG WHO=world
ENV GREETING="hello ${WHO}" EMPTY=${UNSET:-fallback}
LABEL org.example.from-file=yes
WORKDIR /srv
USER 1000:1000
EXPOSE 8080
VOLUME /data
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s CMD ["true"]
ONBUILD RUN echo child
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo $GREETING"]
"""


def _inspect(pb, ref: str) -> dict:
    return json.loads(pb("inspect", ref, check=True).stdout)[0]


def test_dockerfile_from_stdin_with_options(meta_pybuild, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    iid = tmp_path / "iid"
    proc = meta_pybuild("build", "-q", "-f", "-", "-t", "m:1", "-t", "m:2", "--label", "org.example.cli=1",
                        "--build-arg", "WHO=pybuild", "--iidfile", str(iid), "--format", "docker", str(ctx),
                        input=DOCKERFILE, check=True)
    image_id = proc.stdout.strip()
    assert image_id.startswith("sha256:") and "\n" not in image_id and iid.read_text() == image_id
    info = _inspect(meta_pybuild, "m:2")
    cfg = info["Config"]
    assert "GREETING=hello pybuild" in cfg["Env"] and "EMPTY=fallback" in cfg["Env"]
    assert cfg["Labels"] == {"org.example.from-file": "yes", "org.example.cli": "1"}
    assert cfg["WorkingDir"] == "/srv" and cfg["User"] == "1000:1000" and "8080/tcp" in cfg["ExposedPorts"]
    assert cfg["StopSignal"] == "SIGINT" and cfg["Healthcheck"]["Test"] == ["CMD", "true"]
    assert cfg["OnBuild"] == ["RUN echo child"] and cfg["Entrypoint"] == ["/bin/sh", "-c"]
    assert cfg["Cmd"] == ["echo $GREETING"] and "/data" in cfg["Volumes"]
    hist = meta_pybuild("history", "--no-trunc", "m:1", check=True).stdout
    assert "ENV GREETING=" in hist and "ONBUILD RUN echo child" in hist
    # the OCI format keeps them too, in the config fields BuildKit writes
    meta_pybuild("build", "-q", "-f", "-", "-t", "m:oci", "--format", "oci", str(ctx),
                 input=DOCKERFILE.replace("ONBUILD", 'SHELL ["/bin/ash", "-eo", "pipefail", "-c"]\nONBUILD'),
                 check=True)
    oci = _inspect(meta_pybuild, "m:oci")["Config"]
    assert oci["Healthcheck"] == {"Test": ["CMD", "true"], "Interval": 5_000_000_000}
    assert oci["OnBuild"] == ["RUN echo child"] and oci["Shell"] == ["/bin/ash", "-eo", "pipefail", "-c"]
    raw = _config_blob(meta_pybuild, "m:oci")
    assert raw["config"]["Healthcheck"]["Test"] == ["CMD", "true"] and raw["config"]["OnBuild"] == ["RUN echo child"]


def _config_blob(pb, ref: str) -> dict:
    """The image's config blob as stored, not as inspect renders it."""
    image_id = _inspect(pb, ref)["Id"]
    path = Path(pb.root) / "blobs" / "sha256" / image_id.split(":", 1)[1]
    return json.loads(path.read_bytes())


@pytest.mark.parametrize("fmt", ["oci", "docker"])
def test_dockerfile_as_stdin_context_and_onbuild_trigger(meta_pybuild, tmp_path: Path, fmt: str) -> None:
    meta_pybuild("build", "-q", "--format", fmt, "-t", "parent:1", "-",
                 input=DOCKERFILE.replace("RUN echo child", "ENV CHILD=1"), check=True)
    proc = meta_pybuild("build", "--progress", "plain", "-t", "child:1", "-", input="FROM parent:1\nENV OWN=1\n",
                        check=True)
    env = _inspect(meta_pybuild, "child:1")["Config"]["Env"]
    assert "CHILD=1" in env and "OWN=1" in env  # the parent's ONBUILD trigger ran in the child build
    meta_pybuild("build", "-q", "--format", "docker", "-t", "child:d", "-", input="FROM parent:1\n", check=True)
    assert not _inspect(meta_pybuild, "child:d")["Config"].get("OnBuild")  # triggers do not pass to grandchildren
    assert "pybuild:" not in proc.stderr


def test_unknown_base_image_is_located(meta_pybuild, tmp_path: Path) -> None:
    proc = meta_pybuild("build", "-t", "x:1", "-", input="\nFROM localhost:1/nope/never:1\n",
                        env={"PYBUILD_INSECURE_REGISTRIES": "localhost:1"})
    assert proc.returncode != 0
    assert "\npybuild: Dockerfile:2: FROM: localhost:1/nope/never:1:" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_from_platform_must_match_the_local_image(meta_pybuild) -> None:
    proc = meta_pybuild("build", "-t", "x:1", "-", input="FROM --platform=linux/arm64 busybox\nENV A=1\n")
    assert proc.returncode != 0 and "Dockerfile:1: FROM: busybox: image busybox is for linux/amd64, not linux/arm64" \
        in proc.stderr, proc.stderr
    ok = meta_pybuild("build", "-q", "-t", "x:2", "-", input="FROM --platform=linux/amd64 busybox\nENV A=1\n")
    assert ok.returncode == 0, ok.stderr
