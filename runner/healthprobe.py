"""One health probe of a detached container, in a process of its own.

The resident shim loop (:mod:`runner.shimloop`) keeps none of the probe's code in memory: when a
probe is due it forks and execs ``python -S -m runner.healthprobe ROOT STATE_DIR CID PID1``, and
reaps it. This process does what :class:`runner.health.HealthMonitor` does for one probe: unless the
container is no longer running (paused, exited), it runs the check as ``exec`` does
(:func:`runner.exec.run_probe`), keeps the first 4 KiB of its output, kills it one second past its
timeout if its own timer did not, and records the result under the container's lock
(:meth:`runner.state.ContainerStore.record_health`, which also journals a ``health_status`` change).
It exits with :data:`runner.shimloop.STILL_STARTING` while the container's health is still
``starting`` (0 otherwise), so the loop keeps its timing without reading ``state.json`` itself.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time

from . import records as st
from .health import MAX_OUTPUT, _seconds
from .records import HealthResult
from .shimloop import STILL_STARTING
from .state import ContainerStore

__all__ = ["main"]


def main(argv: list[str]) -> str | None:
    """Probe once; the container's health status after it (None: it has no health any more)."""
    root, state_dir, cid, pid1 = argv
    store = ContainerStore(root, state_dir)
    cfg = store.load_config(cid)
    check = cfg.healthcheck
    cur = store.read_state(cid)
    if check is None or cur.status != st.RUNNING:    # paused: try again later
        return cur.health.status if cur.health is not None else None
    from .exec import run_probe

    timeout = check.effective("timeout")
    r, w = os.pipe2(os.O_CLOEXEC)
    start, clock = time.time(), time.monotonic()
    try:
        pid = run_probe(int(pid1), cfg.spec, check.argv(), w, timeout)
    except OSError as exc:
        os.close(r)
        health = store.record_health(cid, HealthResult(start, time.time(), -1, f"cannot start the health check: {exc}"),
                                     check)
        return health.status if health is not None else None
    finally:
        os.close(w)
    output = b""
    code = None
    eof = False
    while code is None:
        if not eof and select.select([r], [], [], 0.05)[0]:
            data = os.read(r, 65536)
            output, eof = (output + data)[:MAX_OUTPUT], not data
        elif eof:
            time.sleep(0.01)
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            code = 128 - code if code < 0 else code
        elif time.monotonic() > clock + timeout + 1.0:     # the child's own timer did not do it
            os.kill(pid, signal.SIGKILL)
    os.set_blocking(r, False)
    try:
        while data := os.read(r, 65536):      # what is left (a process it left may keep it open)
            output = (output + data)[:MAX_OUTPUT]
    except BlockingIOError:
        pass
    os.close(r)
    text = output.decode(errors="replace")
    if code == 128 + signal.SIGKILL and time.monotonic() - clock >= timeout:
        code, text = -1, f"Health check exceeded timeout ({_seconds(timeout)})"
    health = store.record_health(cid, HealthResult(start, time.time(), code, text), check)
    return health.status if health is not None else None


if __name__ == "__main__":
    sys.exit(STILL_STARTING if main(sys.argv[1:]) == st.STARTING else 0)
