"""Short options parse without click's failed long-option lookup (``pybuild.group._short_options_first``):
same results and errors as click's, and no difflib import on the way (it cost ``stop -t 0`` a tenth of
its instructions)."""

from __future__ import annotations

import subprocess
import sys

_RUN = ("import sys\nfrom pybuild.cli import run\ncode = run(sys.argv[1:])\n"
        "sys.stderr.write('\\nDIFFLIB %s\\n' % ('difflib' in sys.modules))\nsys.exit(code)\n")


def _pybuild(tmp_path, *args: str) -> subprocess.CompletedProcess:
    base = ["--root", str(tmp_path / "root"), "--state-dir", str(tmp_path / "state")]
    return subprocess.run([sys.executable, "-c", _RUN, *base, *args], capture_output=True, text=True, timeout=60)


def test_a_short_option_does_not_import_difflib(tmp_path):
    proc = _pybuild(tmp_path, "stop", "-t", "0", "no-such-container")
    assert proc.returncode not in (0, 125), proc.stderr          # parsed; the container is what is missing
    assert "no-such-container" in proc.stderr
    assert "DIFFLIB False" in proc.stderr


def test_an_attached_short_value_is_still_parsed_and_checked(tmp_path):
    proc = _pybuild(tmp_path, "stop", "-tX", "c")
    assert proc.returncode == 125
    assert "Invalid value for '-t'" in proc.stderr


def test_an_unknown_short_option_is_still_click_s_error(tmp_path):
    proc = _pybuild(tmp_path, "stop", "-x", "0", "c")
    assert proc.returncode == 125
    assert "No such option '-x'" in proc.stderr


def test_a_misspelled_long_option_still_gets_a_suggestion(tmp_path):
    proc = _pybuild(tmp_path, "stop", "--tim", "0", "c")
    assert proc.returncode == 125
    assert "Did you mean '--time'?" in proc.stderr
