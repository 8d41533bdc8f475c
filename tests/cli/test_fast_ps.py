"""``ps`` answered without click (:mod:`pybuild.fastps`): the plain forms load neither click nor the OCI
spec classes, and print what the click command prints; anything else goes to click unchanged."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

_MODULES = ("import sys\nfrom pybuild.cli import run\ncode = run(sys.argv[1:])\n"
            "sys.stderr.write('MODULES ' + ' '.join(sorted(sys.modules)) + '\\n')\nsys.exit(code)\n")


def _modules(pybuild, *args: str, env: dict | None = None) -> tuple[subprocess.CompletedProcess, set[str]]:
    proc = subprocess.run([sys.executable, "-c", _MODULES, "--root", str(pybuild.root), "--state-dir",
                           str(pybuild.state), *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})
    return proc, set(proc.stderr.rsplit("MODULES ", 1)[1].split())


@pytest.mark.parametrize("args", [["ps"], ["ps", "-a"], ["ps", "-aq"], ["ps", "--all", "--no-trunc", "-q"]])
def test_plain_ps_loads_no_click_and_no_spec_classes(pybuild, args):
    proc, mods = _modules(pybuild, *args)
    assert proc.returncode == 0, proc.stderr
    assert not {"click", "runner.ocispec", "runner.lifecycle", "layers.store.store"} & mods


def test_other_forms_go_to_click(pybuild):
    proc, mods = _modules(pybuild, "ps", "--format", "{{.ID}}")
    assert proc.returncode == 0 and "click" in mods
    proc, mods = _modules(pybuild, "ps", "--bogus")
    assert proc.returncode == 125 and "No such option" in proc.stderr and "click" in mods
    proc, mods = _modules(pybuild, "ps", env={"PYBUILD_DEBUG": "1"})
    assert proc.returncode == 0 and "click" in mods


def _untimed(out: str) -> list[list[str]]:
    """The table's cells, the ones that tell time ("3 seconds ago", "Up 2 seconds") made alike."""
    return [[re.sub(r"(\d+|Less than a|About an?) \w+( ago)?$", "T", c) for c in re.split(r"\s{2,}", line)]
            for line in out.splitlines()]


def test_fast_and_click_ps_print_the_same(pybuild, busybox_tar):
    if os.geteuid() != 0:
        pytest.skip("needs root for namespaces, mounts and cgroups")
    pybuild("import", str(busybox_tar), "fps/busybox:1", check=True)
    try:
        pybuild("create", "--network", "none", "--name", "fps1", "fps/busybox:1", "sh", "-c",
                "echo a long command line to truncate", check=True)
        pybuild("run", "-d", "--network", "none", "--name", "fps2", "fps/busybox:1", "sleep", "60", check=True)
        for flags in ([], ["-a"], ["-a", "-q"], ["-a", "--no-trunc"]):
            fast = pybuild("ps", *flags, check=True).stdout            # no other option: the fast path
            slow = pybuild("container", "ls", *flags, check=True).stdout  # the click command
            assert _untimed(fast) == _untimed(slow), flags
        assert "fps2" in pybuild("ps", check=True).stdout and "fps1" not in pybuild("ps", check=True).stdout
        assert '"sh -c echo a long c…"' in pybuild("ps", "-a", check=True).stdout
        env_root = pybuild("ps", "-aq", env={"PYBUILD_ROOT": str(pybuild.root)}, check=True).stdout
        assert len(env_root.split()) == 2
    finally:
        for cid in pybuild("ps", "-a", "-q", "--no-trunc").stdout.split():
            pybuild("rm", "-f", cid)
