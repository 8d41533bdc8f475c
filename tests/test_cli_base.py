"""The CLI shell: help is fast and imports no heavy library; unknown input fails cleanly."""

from __future__ import annotations

import subprocess
import sys


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
