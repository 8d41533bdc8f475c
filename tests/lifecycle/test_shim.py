"""Shim mechanics with plain host processes (the ``host`` launcher: no sandbox, same shim code path):
double fork, survival of the caller, logs, exit records, restart policies and back-off, stop, --rm."""

from __future__ import annotations

import os
import signal
import time

import pytest

from layers.errors import InvalidInput
from runner import containers as C
from runner import state as st
from runner.logs import read_logs
from runner.ocispec import Process, Root, Spec
from runner.shim import parse_restart_policy

from .conftest import process_alive, wait_for


@pytest.fixture
def store(tmp_path):
    return st.ContainerStore(str(tmp_path / "root"), str(tmp_path / "state"))


def _host(store, name: str, script: str, **kw) -> st.ContainerConfig:
    cfg = st.ContainerConfig(id=st.new_id(), name=name, image="host", image_id="sha256:" + "0" * 64,
                             spec=Spec("1.0.2", Process(("/bin/sh", "-c", script), env=("PATH=/usr/bin:/bin",)),
                                       Root("/")),
                             created=time.time(), launcher="host", **kw)
    return C.create(store, cfg)


def test_restart_policy_parsing():
    assert parse_restart_policy("on-failure:3").max_retries == 3
    p = parse_restart_policy("on-failure")
    assert p.should_restart(1, 100, False) and not p.should_restart(0, 0, False)
    assert not parse_restart_policy("always").should_restart(0, 0, stopped_by_user=True)
    for bad in ("sometimes", "always:3", "on-failure:x"):
        with pytest.raises(InvalidInput, match="restart policy"):
            parse_restart_policy(bad)


def test_shim_is_detached_and_logs(store):
    cfg = _host(store, "echo", "echo out; echo err >&2; printf partial; exit 3")
    info = C.start(store, "echo")
    assert C.wait(store, "echo", timeout=10) == 3
    s = store.status(cfg.id)
    assert s.status == st.EXITED and s.exit_code == 3 and s.finished_at >= s.started_at
    entries = list(read_logs(store.log_path(cfg.id)))
    assert [(e.stream, e.text) for e in entries] == [("stdout", "out\n"), ("stderr", "err\n"), ("stdout", "partial")]
    # the shim was not our child: it ran in its own session, re-parented away from us
    assert info.state.shim_pid != os.getpid()
    with pytest.raises(ChildProcessError):
        os.waitpid(info.state.shim_pid, os.WNOHANG)


def test_on_failure_3_restarts_three_times(store):
    cfg = _host(store, "flaky", "echo run; exit 1", restart_policy="on-failure:3")
    t0 = time.monotonic()
    C.start(store, "flaky")
    assert C.wait(store, "flaky", timeout=20) == 1
    s = store.status(cfg.id)
    assert (s.status, s.exit_code, s.restart_count, s.restarting) == (st.EXITED, 1, 3, False)
    assert [e.text for e in read_logs(store.log_path(cfg.id))] == ["run\n"] * 4
    assert time.monotonic() - t0 >= 0.1 + 0.2 + 0.4        # back-off 100 ms, doubling


def test_stop_is_respected_by_always(store):
    cfg = _host(store, "loop", "exec sleep 1000", restart_policy="always")
    C.start(store, "loop")
    pid = store.status(cfg.id).pid
    C.stop(store, "loop", timeout=5)
    s = store.status(cfg.id)
    assert s.status == st.EXITED and s.exit_code == 143 and s.restart_count == 0
    assert not process_alive(pid)
    # stop returns when the container has exited; the shim tears down after (it does not restart it)
    wait_for(lambda: store.shim_pid(cfg.id) is None, what="the shim to end after stop")
    assert store.status(cfg.id).restart_count == 0
    # a crash (not a stop) is restarted
    C.start(store, "loop")
    pid = store.status(cfg.id).pid
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: store.status(cfg.id).restart_count == 1 and store.status(cfg.id).pid not in (0, pid),
             what="restart after a crash")
    C.remove(store, "loop", force=True)
    assert cfg.id not in store.ids()


def test_rm_requires_force_and_auto_remove(store):
    _host(store, "busy", "exec sleep 1000")
    C.start(store, "busy")
    with pytest.raises(st.StateConflict, match="container busy is running: stop it first"):
        C.remove(store, "busy")
    with pytest.raises(st.StateConflict, match="container busy is not paused"):
        C.unpause(store, "busy")
    C.remove(store, "busy", force=True)
    cfg = _host(store, "gone", "exit 0", auto_remove=True)
    C.start(store, "gone")
    wait_for(lambda: cfg.id not in store.ids(), what="--rm removal")
    with pytest.raises(InvalidInput, match="--rm and --restart"):
        _host(store, "both", "true", auto_remove=True, restart_policy="always")


def test_start_failure_is_reported(store):
    cfg = st.ContainerConfig(id=st.new_id(), name="bad", image="host", image_id="sha256:" + "0" * 64,
                             spec=Spec("1.0.2", Process(("/nonexistent/binary",)), Root("/")), created=time.time(),
                             launcher="host")
    C.create(store, cfg)
    C.start(store, "bad")      # the host launcher forks first: the exec failure is exit code 127
    assert C.wait(store, "bad", timeout=10) == 127
    with pytest.raises(st.StateConflict, match="container bad is not running"):
        C.kill(store, "bad", "TERM")


def test_shim_binds_published_ports_and_records_the_real_port(store):
    """The record's typed ports reach the network room's proxy hook as dicts; a host port of 0 comes
    back as the port actually bound, in the record. (An attachment on 127.0.0.1 stands in for a
    bridge address: the host launcher attaches nothing.)"""
    import socket

    from runner.records import NetworkAttachment, PublishedPort

    cfg = _host(store, "pub", "sleep 30", ports=(PublishedPort(80, "tcp", "127.0.0.1", 0),),
                network=NetworkAttachment(mode="bridge", container_id="x" * 64, ip="127.0.0.1"))
    C.start(store, "pub")
    try:
        (port,) = store.load_config(cfg.id).ports
        assert (port.container_port, port.host_ip) == (80, "127.0.0.1") and port.host_port > 0
        with socket.create_connection(("127.0.0.1", port.host_port), timeout=5):
            pass                                    # the proxy listens (and finds nothing behind it)
    finally:
        C.stop(store, "pub", timeout=1)
    assert C.wait(store, "pub", timeout=10) != 0
