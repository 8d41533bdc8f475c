"""Bounded parallel transfers: run a function over items in threads, fail fast, raise the first error.

Fail fast means the transfers still running stop too, at their next chunk: a transfer calls
:func:`checkpoint` as bytes move (the pull and push progress callbacks do), which raises
:class:`Cancelled` once another item failed or the caller was interrupted (Ctrl-C). Without that,
one refused layer, or a Ctrl-C, would wait for every other layer in flight to finish.
"""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Callable, Iterable, TypeVar

from .errors import Cancelled

__all__ = ["run_parallel", "checkpoint", "Cancelled"]  # Cancelled lives in .errors; re-exported here

T = TypeVar("T")
R = TypeVar("R")

_current = threading.local()


def checkpoint() -> None:
    """Raise :class:`Cancelled` if the :func:`run_parallel` running this thread has been cancelled."""
    event = getattr(_current, "cancel", None)
    if event is not None and event.is_set():
        raise Cancelled("cancelled")


def run_parallel(fn: Callable[[T], R], items: Iterable[T], jobs: int, name: str) -> list[R]:
    """``[fn(item) for item in items]`` on at most ``jobs`` threads.

    On the first failure (or an interrupt of the calling thread), items not yet started are
    cancelled and the running ones stop at their next :func:`checkpoint` (their partial work is
    the store's to keep for a resume or drop); then the first real error is raised.
    """
    items = list(items)
    cancel = threading.Event()
    failures: list[BaseException] = []  # real errors, in the order they happened
    lock = threading.Lock()

    def run(item: T) -> R:
        _current.cancel = cancel
        try:
            checkpoint()
            return fn(item)
        except Cancelled:
            raise
        except BaseException as exc:
            with lock:
                failures.append(exc)
            cancel.set()  # siblings stop at their next chunk
            raise
        finally:
            _current.cancel = None

    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(items) or 1)), thread_name_prefix=name) as pool:
        futures = [pool.submit(run, item) for item in items]
        try:
            wait(futures, return_when=FIRST_EXCEPTION)
        except BaseException:  # KeyboardInterrupt in the caller: stop the transfers, then re-raise
            cancel.set()
            for fut in futures:
                fut.cancel()
            raise
        if cancel.is_set():
            for fut in futures:
                fut.cancel()
    if failures:
        raise failures[0]
    return [fut.result() for fut in futures]
