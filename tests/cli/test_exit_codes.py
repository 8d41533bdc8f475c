"""Docker's exit codes for run, create, start -a and exec, through the real ``pybuild`` binary:
125 when pybuild fails, 126 when the command cannot be invoked, 127 when it is not found, else
the container's own code."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def image(pybuild, busybox_tar):
    if os.geteuid() != 0:
        pytest.skip("needs root for namespaces, mounts and cgroups")
    pybuild("import", str(busybox_tar), "ec/busybox:1", check=True)
    yield "ec/busybox:1"
    for cid in pybuild("ps", "-a", "-q", "--no-trunc").stdout.split():
        pybuild("rm", "-f", cid)


@pytest.mark.parametrize("cmd", ["run", "create", "container run", "container create"])
def test_own_failures_are_125(pybuild, image, cmd):
    words = cmd.split()
    cases = [
        ([*words, "--no-such-flag", image, "true"], "No such option"),
        ([*words], "Missing argument"),
        ([*words, "--network", "none", "--pull", "never", "ec/nothing:here", "true"], "no such image"),
        ([*words, "--network", "none", "127.0.0.1:1/ec/nothing:here", "true"], "127.0.0.1:1"),
        ([*words, "--network", "none", "--memory", "lots", image, "true"], "--memory"),
    ]
    for args, text in cases:
        r = pybuild(*args)
        assert r.returncode == 125, (args, r.returncode, r.stderr)
        assert text in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("detach", [False, True])
def test_run_not_found_127_not_runnable_126(pybuild, image, detach):
    d = ["-d"] if detach else []
    r = pybuild("run", *d, "--network", "none", image, "/no/such/cmd")
    assert r.returncode == 127 and "no such file or directory" in r.stderr, r.stderr
    r = pybuild("run", *d, "--network", "none", image, "no-such-cmd")
    assert r.returncode == 127 and "executable file not found" in r.stderr, r.stderr
    r = pybuild("run", *d, "--network", "none", image, "/etc/passwd")
    assert r.returncode == 126 and "permission denied" in r.stderr, r.stderr
    r = pybuild("run", *d, "--network", "none", image, "/etc")
    assert r.returncode == 126 and "is a directory" in r.stderr, r.stderr


def test_run_returns_the_containers_code(pybuild, image):
    for code in (0, 1, 3, 125, 126, 127):
        assert pybuild("run", "--rm", "--network", "none", image, "sh", "-c", f"exit {code}").returncode == code


def test_start_attach(pybuild, image):
    pybuild("create", "--network", "none", "--name", "gone", image, "/no/such/cmd", check=True)
    r = pybuild("start", "-a", "gone")
    assert r.returncode == 127 and "no such file or directory" in r.stderr, r.stderr
    pybuild("create", "--network", "none", "--name", "dir", image, "/etc", check=True)
    assert pybuild("start", "-a", "dir").returncode == 126
    pybuild("create", "--network", "none", "--name", "five", image, "sh", "-c", "exit 5", check=True)
    assert pybuild("container", "start", "-a", "five").returncode == 5
    assert pybuild("start", "-a", "--no-such-flag", "five").returncode == 125


def test_exec(pybuild, image):
    pybuild("run", "-d", "--network", "none", "--name", "up", image, "sleep", "60", check=True)
    assert pybuild("exec", "up", "/no/such/cmd").returncode == 127
    assert pybuild("exec", "up", "no-such-cmd").returncode == 127
    assert pybuild("container", "exec", "up", "/etc/passwd").returncode == 126
    assert pybuild("exec", "up", "sh", "-c", "exit 9").returncode == 9
    missing = pybuild("exec", "nosuch", "true")
    assert missing.returncode == 1 and missing.stderr == "pybuild: no such container: nosuch\n"
    # a bad flag is Docker's 125 (its flag errors), not taken for the container's name; flags after
    # CONTAINER belong to the command
    for args in (["exec", "--bogus", "up", "true"], ["container", "exec", "--bogus", "up", "true"],
                 ["exec", "-u"]):
        r = pybuild(*args)
        assert r.returncode == 125 and "no such container" not in r.stderr, (args, r.returncode, r.stderr)
    assert pybuild("exec", "up", "ls", "-ld", "/").stdout.startswith("d")


def test_bad_flags_are_125_on_every_command(pybuild):
    """Docker's CLI gives 125 for an unknown flag, a flag missing its value or a value of the wrong type,
    on every command (its cobra FlagErrorFunc); other usage errors keep their code."""
    for args in (["ps", "--bogus"], ["ps", "--last", "abc"], ["images", "--format"], ["--bogus", "ps"],
                 ["volume", "ls", "--bogus"], ["image", "ls", "--bogus"]):
        r = pybuild(*args)
        assert r.returncode == 125 and "Traceback" not in r.stderr, (args, r.returncode, r.stderr)
