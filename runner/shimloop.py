"""The shim's resident loop: what stays in memory while a container runs.

:mod:`runner.shim` does the one-time work (detach, mount the overlay, start the sandbox, record
``running``, tell the CLI) with the whole of ``runner`` loaded, then hands a running container over
by ``execve`` into a fresh ``python -I -S`` running :func:`main`: the same process (pid, start time,
children, ``PR_SET_CHILD_SUBREAPER`` and ``shim.json`` stay valid), without the tens of modules the
start needed. This loop copies the container's output to its log (:class:`runner.logfile.LogWriter`),
reaps whatever is re-parented to it, and when the container's process ends:

1. drains its output (at most 1 s, as :class:`runner.shim.Shim` does), writes out partial lines;
2. records the exit itself (:func:`record_exit`: the container's ``die`` event, then ``state.json``
   moved ``running|paused -> exited`` under the container's lock), so ``stop`` returns without
   waiting for an interpreter start;
3. when the run ended for good and holds nothing but its cgroup and overlay (:func:`finish_here`:
   no restart, no ``--rm``, network ``none`` or ``host``), releases them and exits; otherwise
   ``execve``\\ s back into ``python -S -m runner.shim --resume FD``, which releases what the run
   held, carries out the restart policy (and hands a restarted container over again), or finishes.

Anything it does not recognise (a record another version wrote, a state that is not ``running`` or
``paused``) is left to the full shim, which records the exit the usual way. An unexpected error kills
nothing here: it resumes the full shim, which aborts the container the usual way.

Published ports are served here too (:mod:`runner.shimproxy`, on the sockets the full shim bound);
containers with a health check keep the full shim.

The handover document (a memfd, both ways) is JSON. Imports are modules built into the interpreter,
``select``, ``fcntl`` and ``_json`` (not :mod:`json`, :mod:`signal`, :mod:`selectors` nor anything of
``runner`` but :mod:`runner.logfile`): about 0.1 MiB above a bare interpreter's 2.7 MiB of private
memory, against 7 MiB for the full shim.
"""

from __future__ import annotations

import os
import sys
import time

import _json
import _signal
import fcntl
import select

from .logfile import LogWriter

__all__ = ["main", "record_exit", "finish_here", "dumps", "loads", "STATE_KEYS", "HANDOVER_SIGNALS", "RESUME_BOOT"]

#: the keys of ``state.json`` as :class:`runner.records.ContainerState` writes them (a test holds
#: them equal); a record with other keys is left to the full shim
STATE_KEYS = frozenset({"error", "exit_code", "finished_at", "health", "oom_killed", "pid", "restart_count",
                        "shim_pid", "started_at", "status"})
#: blocked across each ``execve`` between the two halves of the shim, handled again on the other side
HANDOVER_SIGNALS = (_signal.SIGCHLD, _signal.SIGHUP, _signal.SIGINT, _signal.SIGPIPE, _signal.SIGTTOU,
                    _signal.SIGTTIN)
#: how the full shim starts this loop: ``python -I -S -c RESUME_BOOT <dir holding runner> <fd>``
RESUME_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from runner.shimloop import main; main(sys.argv[2:])"

_EVENT_LINE_MAX = 4096          # layers.events.LINE_MAX
_EVENTS_MAX_BYTES = 8 * 1024 * 1024   # layers.events.MAX_BYTES


# ---------------------------------------------------------------------------------------------
# JSON through the C accelerator alone: the same bytes json.dumps / json.loads give

class _ScanContext:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float
    memo: dict = {}


_scan = _json.make_scanner(_ScanContext())


def loads(text: str | bytes):
    """``json.loads`` of a whole document."""
    if isinstance(text, bytes):
        text = text.decode()
    start = len(text) - len(text.lstrip())
    try:
        value, end = _scan(text, start)
    except StopIteration:
        raise ValueError("not a JSON document") from None
    if text[end:].strip():
        raise ValueError("extra data after the JSON document")
    return value


def _no_default(o):
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def dumps(value, *, sort_keys: bool = False) -> str:
    """``json.dumps(value, separators=(",", ":"), sort_keys=...)`` (ASCII, as json's default)."""
    enc = _json.make_encoder({}, _no_default, _json.encode_basestring_ascii, None, ":", ",",
                             sort_keys, False, True)
    return "".join(enc(value, 0))


def _read_all(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _memfd(doc: dict) -> int:
    """An inheritable memfd holding ``doc``, read from the start by the other side."""
    fd = os.memfd_create("pybuild-shim", 0)
    data = dumps(doc).encode()
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


# ---------------------------------------------------------------------------------------------
# the exit record: ContainerStore.move(cid, name, EXITED, ...) for a running container

def _write_atomic(path: str, data: bytes) -> None:
    """:func:`layers.atomic.write_atomic` (same temp name, fsyncs and mode) without contextlib."""
    head, tail = os.path.split(path)
    tmp = os.path.join(head, f".{tail}.tmp-{os.getpid()}-{os.urandom(6).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fchmod(fd, 0o600)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dfd = os.open(head, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _event(root: str, cid: str, config: dict | None, action: str, **attributes) -> None:
    """:meth:`runner.state.ContainerStore.event` (labels, image, name, then ``attributes``) appended
    as :func:`layers.events.append` does; a line too long for one write goes through that module."""
    attrs = {} if config is None else {str(k): v for k, v in (config.get("labels") or {}).items()}
    if config is not None:
        attrs.update(image=config.get("image"), name=config.get("name"))
    attrs.update(attributes)
    at = {k: str(v) for k, v in attrs.items() if v is not None}
    line = (dumps({"t": "container", "a": action, "id": cid, "at": at, "ns": time.time_ns()}) + "\n").encode()
    if len(line) > _EVENT_LINE_MAX:
        from layers import events           # cuts the attributes to fit (rare: huge labels)

        events.emit(root, "container", action, cid, **{k: v for k, v in attrs.items()})
        return
    path = os.path.join(root, "events", "events.jsonl")
    try:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, line)
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        if size > _EVENTS_MAX_BYTES and os.stat(path).st_size > _EVENTS_MAX_BYTES:
            os.replace(path, path + ".1")
    except OSError:
        pass                    # best effort, as layers.events: the journal never fails a state move


def record_exit(root: str, cid: str, code: int, finished: float, oom: bool) -> bool:
    """Move container ``cid`` from running or paused to exited (exit ``code`` at ``finished``,
    ``oom``), with its ``oom``/``die`` events first, exactly as ``ContainerStore.move`` writes it.

    Returns False, having written nothing, for anything else (another status, a health record, a
    record of another shape, a removed container): the full shim then records the exit itself."""
    d = os.path.join(root, "containers", cid)
    try:
        lock = os.open(os.path.join(d, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with open(os.path.join(d, "state.json"), "rb") as f:
                state = loads(f.read())
        except (OSError, ValueError):
            return False
        if (not isinstance(state, dict) or set(state) != STATE_KEYS or state["health"] is not None
                or state["status"] not in ("running", "paused")):
            return False
        try:
            with open(os.path.join(d, "config.json"), "rb") as f:
                config = loads(f.read())
            if not isinstance(config, dict):
                config = None
        except (OSError, ValueError):
            config = None
        state.update(status="exited", pid=0, exit_code=code, finished_at=finished, oom_killed=oom)
        if oom:
            _event(root, cid, config, "oom")
        _event(root, cid, config, "die", exitCode=code)
        _write_atomic(os.path.join(d, "state.json"), dumps(state, sort_keys=True).encode())
        return True
    finally:
        os.close(lock)


def _oom_killed(path: str | None) -> bool:
    """``runner.cgroups.Cgroup.oom_killed`` for the file the full shim named."""
    if not path:
        return False
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(" ")
                if key == "oom_kill" and int(value) > 0:
                    return True
    except (OSError, ValueError):
        return False
    return False


# ---------------------------------------------------------------------------------------------
# the loop

def _noop(signum, frame) -> None:
    pass


class _Loop:
    def __init__(self, doc: dict) -> None:
        self.doc = doc
        self.wait_pid = int(doc["wait_pid"])
        self.exited: dict[int, int] = {}
        self.poll = select.epoll()
        self.handlers: dict[int, object] = {}     # fd -> handler(fd, events)
        self.relay = None                          # runner.shimproxy.Relay: published ports
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.log = LogWriter(doc["log_path"], max_size=int(doc["log_max_size"]), max_files=int(doc["log_max_files"]))
        self.pipes: set[int] = set()

    def install_signals(self) -> None:
        _signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        _signal.signal(_signal.SIGCHLD, _noop)
        # no-op handlers, not SIG_IGN: an ignored disposition would survive the next execve
        for s in (_signal.SIGHUP, _signal.SIGINT, _signal.SIGPIPE, _signal.SIGTTOU, _signal.SIGTTIN):
            _signal.signal(s, _noop)
        self._add(self._wake_r, self._on_wake)
        _signal.pthread_sigmask(_signal.SIG_UNBLOCK, HANDOVER_SIGNALS)

    def _add(self, fd: int, handler) -> None:
        self.watch(fd, select.EPOLLIN, handler)

    def watch(self, fd: int, events: int, handler) -> None:
        """Call ``handler(fd, events)`` when ``fd`` is ready for ``events`` (0: no longer watch it)."""
        if not events:
            if self.handlers.pop(fd, None) is not None:
                self.poll.unregister(fd)
        elif fd in self.handlers:
            self.poll.modify(fd, events)
            self.handlers[fd] = handler
        else:
            self.poll.register(fd, events)
            self.handlers[fd] = handler

    def _drop(self, fd: int) -> None:
        self.watch(fd, 0, None)
        os.close(fd)

    def _on_wake(self, fd: int, events: int) -> None:
        try:
            while os.read(fd, 512):
                pass
        except BlockingIOError:
            pass

    def _pump(self, stream: str):
        def on_read(fd: int, events: int) -> None:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                return
            except OSError:          # EIO: the last holder of a pty's slave side is gone
                data = b""
            if data:
                self.log.write(stream, data)
            else:
                self._drop(fd)
                self.pipes.discard(fd)
        return on_read

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = os.waitstatus_to_exitcode(status)
            self.exited[pid] = 128 - code if code < 0 else code

    def _dispatch(self, timeout: float) -> None:
        for fd, events in self.poll.poll(timeout):
            handler = self.handlers.get(fd)
            if handler is not None:
                handler(fd, events)
        if self.relay is not None:
            self.relay.sweep()

    def run(self) -> int:
        for fd, stream in self.doc["streams"]:
            os.set_inheritable(fd, False)
            self.pipes.add(fd)
            self._add(fd, self._pump(stream))
        if self.doc.get("ports"):
            from .shimproxy import Relay

            for fd, _, _ in self.doc["ports"]:
                os.set_inheritable(fd, False)
            self.relay = Relay(self, self.doc["target_ip"], self.doc["ports"])
        self._reap()
        while self.wait_pid not in self.exited:
            self._dispatch(1.0)
            self._reap()
        code = self.exited.pop(self.wait_pid)
        deadline = time.monotonic() + 1.0
        while self.pipes and (left := deadline - time.monotonic()) > 0:
            self._dispatch(min(left, 0.1))
        for fd in list(self.pipes):
            self._drop(fd)
        self.pipes.clear()
        return code


def _read_config(root: str, cid: str) -> dict | None:
    try:
        with open(os.path.join(root, "containers", cid, "config.json"), "rb") as f:
            config = loads(f.read())
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None


def finish_here(doc: dict) -> bool:
    """The run ended for good with nothing but its cgroup and overlay to release (no restart: the
    policy is ``no`` or a stop was asked for; no ``--rm``; network ``none`` or ``host``): release
    them as :meth:`runner.shim.Shim` would (``ResumedProcess.cleanup``, ``release_resources``) and
    drop ``shim.json``, without starting the full shim. False, having released what it could, for
    anything else: the full shim then does it all (every step is idempotent)."""
    root, cid = doc["root"], doc["cid"]
    config = _read_config(root, cid)
    if config is None or config.get("auto_remove") is not False:
        return False
    if (config.get("network") or {}).get("mode") not in ("none", "host"):
        return False
    stop_marker = os.path.join(doc["state_dir"], cid, "stop-requested")
    if config.get("restart_policy") != "no" and not os.path.exists(stop_marker):
        return False
    launcher = config.get("launcher")
    if launcher == "sandbox":
        if not _destroy_cgroup([p for p in doc.get("cgroups") or () if os.path.isdir(p)]):
            return False
        rootfs = doc.get("rootfs")
        if rootfs and (doc["overlay"] or os.path.ismount(rootfs)):
            from .syscalls import MNT_DETACH, umount2   # ctypes: loaded now, for the last moments

            try:
                umount2(rootfs, 0 if doc["overlay"] else MNT_DETACH)
            except OSError:
                try:
                    umount2(rootfs, MNT_DETACH)
                except OSError:
                    return False
    elif launcher != "host":
        return False
    try:
        os.unlink(os.path.join(doc["state_dir"], cid, "shim.json"))
    except FileNotFoundError:
        pass
    return True


def _destroy_cgroup(paths: list[str], timeout: float = 5.0) -> bool:
    """``runner.cgroups.Cgroup.kill_all`` then ``destroy``: SIGKILL what is left, remove the
    directories, retrying while the kernel lets go of them."""
    def kill_all() -> None:
        try:
            with open(os.path.join(paths[0], "cgroup.procs")) as f:
                pids = [int(x) for x in f.read().split()]
        except (FileNotFoundError, ValueError):
            return
        for pid in pids:
            try:
                os.kill(pid, _signal.SIGKILL)
            except ProcessLookupError:
                pass

    if not paths:
        return True
    kill_all()
    deadline = time.monotonic() + timeout
    for p in paths:
        while True:
            try:
                os.rmdir(p)
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                if exc.errno != 16 or time.monotonic() > deadline:      # EBUSY
                    return False
                kill_all()
                time.sleep(0.005)
    return True


def _resume(doc: dict) -> None:
    """``execve`` into the full shim with ``doc``; never returns."""
    _signal.pthread_sigmask(_signal.SIG_BLOCK, HANDOVER_SIGNALS)
    fd = _memfd(doc)
    os.execv(sys.executable, [sys.executable, "-S", "-m", "runner.shim", "--resume", str(fd)])


def main(argv: list[str]) -> None:
    """``python -I -S -c RESUME_BOOT DIR FD``: FD is a memfd with the full shim's handover document."""
    fd = int(argv[0])
    doc = loads(_read_all(fd))
    os.close(fd)
    back = {"root": doc["root"], "state_dir": doc["state_dir"], "cid": doc["cid"], "started": doc["started"],
            "overlay": doc["overlay"], "delay": doc["delay"], "code": 255, "recorded": False}
    try:
        loop = _Loop(doc)
        loop.install_signals()
        import gc

        gc.collect()
        gc.freeze()             # what is left lives as long as the loop: the collector need not walk it
        code = loop.run()
        loop.log.flush()
        finished = time.time()
        oom = _oom_killed(doc.get("oom_file"))
        back.update(code=code, finished=finished, oom=oom)
        back["recorded"] = record_exit(doc["root"], doc["cid"], code, finished, oom)
        loop.log.close()
        if loop.relay is not None:
            back["port_fds"] = loop.relay.hand_back()
        elif back["recorded"] and finish_here(doc):
            return
    except BaseException as exc:          # a bug here must not leave an unsupervised container
        back["abort"] = f"shim loop failed: {type(exc).__name__}: {exc}"
        try:
            os.write(2, f"shim loop: {back['abort']}\n".encode())
        except OSError:
            pass
    _resume(back)
