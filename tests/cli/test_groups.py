"""Docker's management groups: ``image``, ``container``, ``system``, ``network``, ``volume`` mirror
the top-level commands, through the real ``pybuild`` binary."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pybuild.commands import COMMANDS, GROUPS


@pytest.fixture
def image(pybuild, busybox_tar):
    if os.geteuid() != 0:
        pytest.skip("needs root for namespaces, mounts and cgroups")
    pybuild("import", str(busybox_tar), "grp/busybox:1", check=True)
    yield "grp/busybox:1"
    for cid in pybuild("ps", "-a", "-q", "--no-trunc").stdout.split():
        pybuild("rm", "-f", cid)


def test_every_group_entry_names_a_command():
    for group, table in GROUPS.items():
        assert group in COMMANDS
        for sub, entry in table.items():
            assert isinstance(entry, tuple) or entry in COMMANDS, (group, sub)


@pytest.mark.parametrize("group,subs", [
    ("image", ["ls", "list", "build", "pull", "push", "rm", "inspect", "history", "tag", "save", "load",
               "import", "prune"]),
    ("container", ["ls", "list", "run", "create", "start", "stop", "restart", "kill", "rm", "exec", "logs",
                   "inspect", "top", "stats", "port", "rename", "pause", "unpause", "wait", "attach",
                   "prune", "cp", "diff", "commit", "export", "update"]),
    ("system", ["info", "df", "prune", "events"]),
])
def test_group_help_lists_docker_subcommands(pybuild, group, subs):
    out = pybuild(group, "--help", check=True).stdout
    listed = {line.split()[0] for line in out.split("Commands:")[1].splitlines() if line.strip()}
    assert set(subs) <= listed


def test_group_help_imports_no_library():
    code = ("import sys\nfrom pybuild.cli import run\nrun(sys.argv[1:])\n"
            "sys.stderr.write('MODULES ' + ' '.join(sorted(sys.modules)) + '\\n')\n")
    for group in ("image", "container", "system"):
        proc = subprocess.run([sys.executable, "-c", code, group, "--help"], capture_output=True, text=True,
                              timeout=60)
        mods = proc.stderr.split("MODULES ")[1].split()
        assert not {"runner", "builder", "registry_client", "layers.store.store", "httpx"} & set(mods), group
        # layers.store.location gives the defaults help prints; nothing else of the store
        assert {m for m in mods if m.startswith("layers.store")} <= {"layers.store", "layers.store.location"}, group
        assert not [m for m in mods if m.startswith("pybuild.cmd_")], group


def test_missing_module_is_one_line(pybuild, monkeypatch):
    proc = pybuild("container", "no-such-sub")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    code = ("import sys\nfrom pybuild import commands\nfrom pybuild.cli import run\n"
            "commands.GROUPS['container']['zap'] = ('pybuild.cmd_nowhere', 'zap_cmd', 'x')\n"
            "commands.GROUPS['container']['zip'] = ('pybuild.cmd_prune', 'zip_cmd', 'x')\n"
            "sys.exit(run(sys.argv[1:]))\n")
    for sub, missing in (("zap", "no module pybuild.cmd_nowhere"), ("zip", "no pybuild.cmd_prune.zip_cmd")):
        proc = subprocess.run([sys.executable, "-c", code, "container", sub, "x"], capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 1
        assert proc.stderr == f"pybuild: 'container {sub}' is not available in this installation ({missing})\n"


def test_image_group_mirrors_top_level(pybuild, image):
    assert pybuild("image", "ls", check=True).stdout == pybuild("images", check=True).stdout
    assert pybuild("image", "list", "-q", check=True).stdout == pybuild("images", "-q", check=True).stdout
    pybuild("image", "tag", image, "grp/other:2", check=True)
    doc = json.loads(pybuild("image", "inspect", "grp/other:2", check=True).stdout)[0]
    assert doc["RepoTags"] and "grp/other:2" in doc["RepoTags"]
    pybuild("image", "rm", "grp/other:2", check=True)
    assert "grp/other" not in pybuild("image", "ls", check=True).stdout


def test_inspect_types_are_restricted(pybuild, image):
    cid = pybuild("container", "create", "--network", "none", "--name", "box", image, "true",
                  check=True).stdout.strip()
    assert json.loads(pybuild("container", "inspect", "box", check=True).stdout)[0]["Id"] == cid
    wrong = pybuild("container", "inspect", image)
    assert wrong.returncode != 0 and "no such container" in wrong.stderr.lower()
    assert "Traceback" not in wrong.stderr
    wrong = pybuild("image", "inspect", "box")
    assert wrong.returncode != 0 and "no such image" in wrong.stderr.lower()


def test_container_group_mirrors_top_level(pybuild, image):
    out = pybuild("container", "run", "--network", "none", "--name", "c1", image, "echo", "hi")
    assert (out.returncode, out.stdout) == (0, "hi\n")
    assert pybuild("container", "ls", "-a", "-q").stdout == pybuild("ps", "-a", "-q").stdout != ""
    assert pybuild("container", "list", "-a", "--format", "json").returncode == 0
    pybuild("container", "rename", "c1", "c2", check=True)
    assert pybuild("container", "wait", "c2", check=True).stdout == "0\n"
    pybuild("container", "remove", "c2", check=True)
    assert pybuild("ps", "-a", "-q").stdout == ""


def test_image_prune_untags_unused_with_all(pybuild, image):
    pybuild("image", "tag", image, "grp/spare:1", check=True)
    cid = pybuild("create", "--network", "none", image, "true", check=True).stdout.strip()
    out = pybuild("image", "prune", "-f", check=True).stdout
    assert out == "Total reclaimed space: 0B\n"
    assert "grp/spare" in pybuild("image", "ls").stdout           # not dangling: kept
    out = pybuild("image", "prune", "-a", "-f", check=True).stdout
    assert out == "Total reclaimed space: 0B\n"                  # a container uses it
    pybuild("rm", cid, check=True)
    out = pybuild("image", "prune", "-a", "-f", check=True).stdout
    assert out.startswith("Deleted Images:\n")
    assert "untagged: grp/spare:1" in out and "untagged: grp/busybox:1" in out and "deleted: sha256:" in out
    assert "Total reclaimed space: 0B" not in out
    assert pybuild("image", "ls", "-q").stdout == ""


def test_network_and_volume_remove_is_rm(pybuild):
    pybuild("volume", "create", "v1", check=True)
    pybuild("volume", "remove", "v1", check=True)
    assert "v1" not in pybuild("volume", "ls").stdout
    assert pybuild("network", "list").returncode == 0
    assert "Usage: pybuild network remove" in pybuild("network", "remove", "--help", check=True).stdout


def test_system_group(pybuild):
    assert "Total reclaimed space" in pybuild("system", "prune", "-f", check=True).stdout
    assert pybuild("system", "df", check=True).stdout.startswith("TYPE")
