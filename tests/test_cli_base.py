"""The CLI shell: help is fast and imports no heavy library; unknown input fails cleanly."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import pybuild_exe


def _imported_after(args: list[str]) -> set[str]:
    code = (
        "import sys\n"
        "from pybuild.cli import cli\n"
        f"try:\n    cli.main(args={args!r}, standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_help_imports_no_heavy_library():
    mods = _imported_after(["--help"])
    for heavy in ("httpx", "cryptography", "pyroute2", "zstandard", "dockerfile_parse"):
        assert heavy not in mods, f"--help imported {heavy}"


def test_unknown_command_fails(pybuild):
    proc = pybuild("no-such-command")
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr


# --- one place maps outcomes to exit codes (pybuild.cli.main) --------------------------------

# commands registered only in the child process: COMMANDS points at its __main__ module
_FAKE_COMMANDS = '''
import sys
import click
from click.exceptions import Exit
from pybuild import commands
from pybuild.cli import main

@click.command()
def returns3():
    return 3

@click.command()
def raises_exit4():
    raise Exit(4)

@click.command()
def bug():
    raise RuntimeError("kaboom")

@click.command()
def spew():
    for _ in range(10000):
        click.echo("x" * 100)

@click.group()
def grp():
    pass

@grp.command()
def five():
    return 5

@grp.command()
def six():
    raise Exit(6)

for name in ("returns3", "raises_exit4", "bug", "spew", "grp"):
    commands.COMMANDS[name.replace("_", "-")] = ("__main__", name, "test command")
main(sys.argv[1:])
print("main returned", file=sys.stderr)   # never reached: main ends the process
'''


def _fake(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != "PYBUILD_DEBUG"}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-c", _FAKE_COMMANDS, *args], capture_output=True, text=True,
                          env=full_env, timeout=60)


@pytest.mark.parametrize(("args", "code"), [
    (["returns3"], 3), (["raises-exit4"], 4), (["grp", "five"], 5), (["grp", "six"], 6),
])
def test_command_result_is_the_exit_code(args, code):
    proc = _fake(*args)
    assert proc.returncode == code, proc.stderr
    assert "main returned" not in proc.stderr


def test_bug_is_one_line_without_debug_and_a_traceback_with_it():
    plain = _fake("bug")
    assert plain.returncode == 1
    assert "Traceback" not in plain.stderr
    assert plain.stderr.strip().splitlines() == [
        "pybuild: internal error: RuntimeError: kaboom (--debug shows the traceback)"]
    for debug in (_fake("--debug", "bug"), _fake("bug", env={"PYBUILD_DEBUG": "1"})):
        assert debug.returncode == 1
        assert "Traceback (most recent call last)" in debug.stderr
        assert 'in bug\nRuntimeError: kaboom\n' in debug.stderr


def test_reader_gone_exits_141():
    proc = subprocess.Popen([sys.executable, "-c", _FAKE_COMMANDS, "spew"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 141, err
    assert b"Traceback" not in err


def test_debug_flag_shows_the_traceback_of_a_failing_command(pybuild):
    plain = pybuild("inspect", "no-such-thing")
    assert plain.returncode != 0
    assert plain.stderr == "pybuild: no such image or container: no-such-thing\n"
    debug = pybuild("--debug", "inspect", "no-such-thing")
    assert debug.returncode == plain.returncode
    assert "Traceback (most recent call last)" in debug.stderr
    assert "layers.errors.NotFound: no such image or container: no-such-thing" in debug.stderr
    assert debug.stderr.endswith(plain.stderr)
    env = pybuild("inspect", "no-such-thing", env={"PYBUILD_DEBUG": "1"})
    assert "Traceback (most recent call last)" in env.stderr


# --- top-level help without click --------------------------------------------------------------

def _click_help(args: list[str], columns: int) -> subprocess.CompletedProcess:
    code = ("import sys\nfrom pybuild.group import cli\n"
            "cli.main(args=sys.argv[1:], prog_name='pybuild')\n")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=dict(os.environ, COLUMNS=str(columns)), timeout=60)


@pytest.mark.parametrize("columns", [40, 60, 72, 80, 200])
@pytest.mark.parametrize("args", [["--help"], ["-h"], []])
def test_fast_help_is_what_click_writes(args, columns):
    fast = subprocess.run([pybuild_exe(), *args], capture_output=True, text=True,
                          env=dict(os.environ, COLUMNS=str(columns)), timeout=60)
    slow = _click_help(args, columns)
    assert (fast.returncode, fast.stdout, fast.stderr) == (slow.returncode, slow.stdout, slow.stderr)
    assert "Commands:" in fast.stdout + fast.stderr


LOCATION_MODULES = {"layers", "layers.errors", "layers.store", "layers.store.location"}


def test_help_does_not_import_click():
    code = ("import sys\nfrom pybuild.cli import run\ncode = run(sys.argv[1:])\n"
            "sys.stderr.write('MODULES ' + ' '.join(sorted(sys.modules)) + '\\n')\n")
    for args in (["--help"], ["-h"], []):
        proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)
        mods = proc.stderr.split("MODULES ")[1].split()
        assert "click" not in mods, args
        # the defaults --help prints come from the one location function, and nothing else of layers
        assert {m for m in mods if m.startswith("layers")} <= LOCATION_MODULES, args
        assert "pybuild.commands" in mods
