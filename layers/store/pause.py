"""A test hook: stop at a named write step so a test can SIGKILL the process there.

With ``PYBUILD_TEST_PAUSE_AT=<step>`` in the environment, :func:`pause_point` for that step
creates ``$PYBUILD_TEST_PAUSE_FILE`` (if set) and then sleeps until the process is killed.
Without the variable it costs one dict lookup.
"""

from __future__ import annotations

import os
import time

__all__ = ["pause_point"]


def pause_point(step: str) -> None:
    if os.environ.get("PYBUILD_TEST_PAUSE_AT") != step:
        return
    marker = os.environ.get("PYBUILD_TEST_PAUSE_FILE")
    if marker:
        with open(marker, "w") as f:
            f.write(f"{os.getpid()} {step}\n")
    while True:
        time.sleep(3600)
