"""Two cores for one big job: a forked child computes one part while this process does the rest.

Reading a million-record stats file or formatting a million JSON objects
is pure Python work that one process does on one core.  `ForkedCall` runs a
function in a forked copy of the process (which shares everything the
function needs, copy-on-write, with nothing to send over) and hands its
pickled result back through an anonymous memory file, so nothing is left on
disk and the child never blocks on a full pipe.

Forking is only safe in a process with a single thread (a forked child
inherits locks held by other threads), so `can_fork` says when to use it;
callers do the work in-process otherwise.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import threading
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

__all__ = ["ForkedCall", "can_fork", "map_in_halves"]

T = TypeVar("T")


def can_fork() -> bool:
    """Return whether forking a helper child is possible and safe here (a single thread)."""
    return hasattr(os, "fork") and hasattr(os, "memfd_create") and threading.active_count() == 1


class ForkedCall(Generic[T]):
    """FUNC() running in a forked child; `result()` returns its value or raises its exception."""

    def __init__(self, func: Callable[[], T]) -> None:
        self._fd = os.memfd_create("ncs-twocore", os.MFD_CLOEXEC)
        self._pid = os.fork()
        if self._pid == 0:  # the child: never returns
            self._run_child(func)

    def _run_child(self, func: Callable[[], T]) -> None:
        status = 1
        try:
            try:
                outcome: tuple[bool, object] = (True, func())
            except Exception as err:  # handed to the parent, which raises it
                outcome = (False, err)
            with os.fdopen(self._fd, "wb", closefd=False) as out:
                pickle.dump(outcome, out, protocol=pickle.HIGHEST_PROTOCOL)
            status = 0
        finally:
            # No atexit handlers, no flushing of the parent's buffered output.
            os._exit(status)

    def result(self) -> T:
        """Wait for the child; return FUNC's value or raise the exception FUNC raised.

        Raises ChildProcessError when the child died without a result.
        """
        try:
            _, status = os.waitpid(self._pid, 0)
            if status != 0:
                raise ChildProcessError(f"forked helper process {self._pid} failed (status {status})")
            os.lseek(self._fd, 0, os.SEEK_SET)
            with os.fdopen(self._fd, "rb", closefd=False) as f:
                ok, value = pickle.load(f)
        finally:
            os.close(self._fd)
        if not ok:
            raise value  # type: ignore[misc]
        return value  # type: ignore[return-value]


R = TypeVar("R")


def map_in_halves(func: Callable[[T], R], items: list[T], fork: bool = True,
                  wire: tuple[Callable[[R], Any], Callable[[Any], R]] | None = None) -> Iterator[R]:
    """Yield FUNC(item) for every item in order; the second half is computed in a forked child.

    Without FORK, with fewer than two items, or where `can_fork` says no,
    everything runs here; so does the second half if the child dies.
    WIRE, if given, is (pack, unpack): the child sends pack(result), which
    this process turns back with unpack (for results that pickle slowly as
    they are).  Exceptions of FUNC propagate (the child's are raised when its
    half is reached).
    """
    if not fork or len(items) < 2 or not can_fork():
        yield from map(func, items)
        return
    pack, unpack = wire if wire is not None else (_same, _same)
    half = len(items) // 2
    second = ForkedCall(lambda: [pack(func(item)) for item in items[half:]])
    try:
        yield from map(func, items[:half])
    except BaseException:
        # Reap the child (its outcome no longer matters) and pass ours on.
        with contextlib.suppress(Exception):
            second.result()
        raise
    try:
        results = [unpack(packed) for packed in second.result()]
    except ChildProcessError:
        # The child died without an answer (killed, out of memory): its
        # half is done here rather than losing the whole job.
        results = [func(item) for item in items[half:]]
    yield from results


def _same(value: Any) -> Any:
    return value
