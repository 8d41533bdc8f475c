"""Real-world Dockerfiles on a Debian base made here: ``debootstrap`` a minimal bookworm into a temp
dir (from the Debian mirror, a package registry), pack it as a tar and ``pybuild import`` it as
``debian:bookworm`` (the session fixture ``debian_tar`` of tests/conftest.py, shared with compose's
three-tier test). Then the multi-stage C build (gcc from Debian packages inside the build) and the
Python app with pip build, and their images run. Slow (minutes): marked ``slow``."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

CASES = Path(__file__).resolve().parents[2] / "testdata" / "dockerfiles"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


@pytest.fixture
def debian_pybuild(bpybuild, debian_tar: Path):
    bpybuild("import", str(debian_tar), "debian:bookworm", check=True)
    return bpybuild


def test_multistage_c_build_with_gcc(debian_pybuild) -> None:
    debian_pybuild("build", "--progress", "plain", "-t", "hello-c:1", str(CASES / "multistage-c"), check=True,
                   timeout=1200)
    out = debian_pybuild("run", "--rm", "--network", "none", "hello-c:1", check=True).stdout
    assert out == "hello from a static C binary\n"
    # final stage is scratch + one file: one layer
    again = debian_pybuild("build", "--progress", "plain", "-t", "hello-c:2", str(CASES / "multistage-c"), check=True)
    done = re.search(r"# (\d+)/(\d+) steps cached", again.stderr)
    assert done and done.group(1) == done.group(2), again.stderr


def test_python_app_with_pip(debian_pybuild) -> None:
    # behind this machine's TLS-intercepting proxy pip needs the host's CA bundle: a build secret
    ca = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt"
    secret = ["--secret", f"id=pip-ca,src={ca}"] if os.path.isfile(ca) else []
    debian_pybuild("build", "--progress", "plain", *secret, "-t", "py:1", str(CASES / "python-pip"), check=True,
                   timeout=1200)
    out = debian_pybuild("run", "--rm", "--network", "none", "py:1", check=True).stdout
    assert out.startswith("python app ok, six 1.16.0")
