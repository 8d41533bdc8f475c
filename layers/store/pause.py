"""A test hook: stop at a named write step so a test can SIGKILL the process there, or act while
it waits and then let it go on.

With ``PYBUILD_TEST_PAUSE_AT=<step>`` in the environment, :func:`pause_point` for that step creates
``$PYBUILD_TEST_PAUSE_FILE`` (if set; it holds ``<pid> <step>``) and waits: until the process is
killed, or until the test removes that file, when it returns and the command carries on. Without the
variable it costs one dict lookup. The steps are listed in docs/INTERFACES.md.
"""

from __future__ import annotations

import os
import time

__all__ = ["pause_point"]


def pause_point(step: str) -> None:
    if os.environ.get("PYBUILD_TEST_PAUSE_AT") != step:
        return
    marker = os.environ.get("PYBUILD_TEST_PAUSE_FILE")
    if not marker:
        while True:
            time.sleep(3600)
    with open(marker, "w") as f:
        f.write(f"{os.getpid()} {step}\n")
    while os.path.exists(marker):
        time.sleep(0.02)
