"""Bounded parallel transfers: run a function over items in threads, fail fast, raise the first error."""

from __future__ import annotations

from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Callable, Iterable, TypeVar

__all__ = ["run_parallel"]

T = TypeVar("T")
R = TypeVar("R")


def run_parallel(fn: Callable[[T], R], items: Iterable[T], jobs: int, name: str) -> list[R]:
    """``[fn(item) for item in items]`` on at most ``jobs`` threads.

    On the first failure, items not yet started are cancelled; the ones running finish (their
    partial work is the store's to keep or drop); then the first error is raised.
    """
    items = list(items)
    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(items) or 1)), thread_name_prefix=name) as pool:
        futures = [pool.submit(fn, item) for item in items]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for fut in pending:
            fut.cancel()
    for fut in futures:
        if not fut.cancelled() and fut.exception() is not None:
            raise fut.exception()
    return [fut.result() for fut in futures]
