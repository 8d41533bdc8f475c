"""Build progress: BuildKit-like step lines (``#3 [build 2/5] RUN make`` ... ``#3 DONE 1.2s``) and
RUN output streamed, or nothing (``quiet``). The CLI passes the stream; the library never prints."""

from __future__ import annotations

import itertools
import os
import threading
import time
from typing import TextIO

from . import instructions as I

__all__ = ["Progress", "Step"]


class Step:
    def __init__(self, progress: "Progress", number: int, title: str) -> None:
        self.progress, self.number, self.title = progress, number, title
        self.started = time.monotonic()

    @property
    def stdout(self):
        return self.progress.output

    @property
    def stderr(self):
        return self.progress.output

    def done(self, *, cached: bool, meta: bool = False, source: str = "") -> None:
        if cached:
            self.progress.line(f"#{self.number} CACHED" + (f" ({source})" if source else ""))
        elif not meta:
            self.progress.line(f"#{self.number} DONE {time.monotonic() - self.started:.1f}s")


class Progress:
    """``mode`` is ``plain``, ``tty`` or ``quiet``. ``stream`` gets step lines; RUN output goes to its
    file descriptor (so the sandbox writes straight to it) or to /dev/null when quiet."""

    def __init__(self, stream: TextIO | None, mode: str = "plain") -> None:
        self.mode = mode if stream is not None else "quiet"
        self.stream = stream
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._devnull = None
        self._relay = None
        self.started = time.monotonic()

    @property
    def output(self):
        """Where RUN output goes: a file with a real descriptor (the sandbox writes to it directly)."""
        if self.mode == "quiet":
            if self._devnull is None:
                self._devnull = open(os.devnull, "wb")
            return self._devnull
        self.stream.flush()
        try:
            self.stream.fileno()
            return self.stream
        except (AttributeError, OSError, ValueError):
            return self._pipe()  # an in-memory stream (tests, embedding): relay through a pipe

    def _pipe(self):
        with self._lock:
            if self._relay is None:
                r, w = os.pipe()
                writer = os.fdopen(w, "wb", buffering=0)
                thread = threading.Thread(target=self._copy, args=(r,), daemon=True, name="progress-relay")
                thread.start()
                self._relay = (writer, thread)
            return self._relay[0]

    def _copy(self, fd: int) -> None:
        with os.fdopen(fd, "rb", buffering=0) as reader:
            while chunk := reader.read(65536):
                with self._lock:
                    self.stream.write(chunk.decode("utf-8", "replace"))

    def line(self, text: str) -> None:
        if self.mode == "quiet":
            return
        with self._lock:
            self.stream.write(text + "\n")
            self.stream.flush()

    def note(self, text: str) -> None:
        self.line(f"# {text}")

    def step(self, stage: str, inst: I.Instruction, position: tuple[int, int] | None = None) -> Step:
        """Announce a step: ``#N [stage k/n] INSTRUCTION`` (``k/n`` counts FROM and the filesystem
        steps of the stage, as BuildKit does; metadata steps have no position)."""
        number = next(self._numbers)
        where = (f"{stage} " if stage else "") + f"{position[0]}/{position[1]}" if position else (stage or "final")
        title = f"[{where}] {inst.source.splitlines()[0][:120]}" if inst.source else f"[{where}] {inst.keyword}"
        if not isinstance(inst, (I.From, I.Run, I.Copy, I.Workdir)) and self.mode == "tty":
            return Step(self, number, title)  # metadata steps are not worth a line on a terminal
        self.line(f"#{number} {title}")
        return Step(self, number, title)

    def finish(self, text: str) -> None:
        self.line(f"{text} in {time.monotonic() - self.started:.2f}s")

    def close(self) -> None:
        if self._devnull is not None:
            self._devnull.close()
        if self._relay is not None:
            writer, thread = self._relay
            writer.close()
            thread.join(5)
            self._relay = None
