"""The second core for one big job: a forked child computes the second half while this process does the first.

Reading a million-record stats file, formatting its report or writing an
agent's dump is pure Python and numpy work that one process does on one
core.  Every such job in ncs is a list of items (chunks of records) whose
results come back in order; `map_in_halves` hands the second half of the
items to a forked copy of the process, which shares everything the work
needs copy-on-write, and takes its results back through a spool file:

- pickled results (`map_in_halves`) through an anonymous memory file, or
- raw bytes (`stream_in_halves`, for a dump of tens of megabytes) through an
  unlinked temporary file in a directory the caller names, read back in
  pieces, so that the second half is never held in memory and nothing is
  left on disk if either process is killed.

The one policy for when to split is `worth_splitting`: a job of at least
`MIN_RECORDS` records, in a process that can fork safely.  If the child
dies without an answer (killed, out of memory), its half is done here: that
costs time, never data.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import IO, Any, Generic, TypeVar

__all__ = ["ForkedCall", "MIN_RECORDS", "can_fork", "map_in_halves", "stream_in_halves",
           "worth_splitting"]

T = TypeVar("T")
R = TypeVar("R")

#: A job of this many records or more is split over two cores.  Forking a
#: process and handing results back cost milliseconds plus a share of the
#: results' size; below this size the second core gained nothing or lost
#: (bench/bench_twocore.py; docs/design-notes.md, "One way to use the
#: second core").
MIN_RECORDS = 400_000
#: Bytes read back from a spool file at a time.
_READ_SIZE = 1 << 22


def can_fork() -> bool:
    """Return whether forking a helper child is possible and safe here (a single thread).

    A forked child inherits the locks other threads hold, so a process with
    threads (ncs-coalesce's fetchers) does everything itself.
    """
    return hasattr(os, "fork") and hasattr(os, "memfd_create") and threading.active_count() == 1


def worth_splitting(records: int) -> bool:
    """Return whether a job over RECORDS records should use the second core."""
    return records >= MIN_RECORDS and can_fork()


def _spool(directory: str | None) -> IO[bytes]:
    """Return a new read-write file that vanishes when closed: in memory, or unlinked in DIRECTORY."""
    if directory is None:
        return os.fdopen(os.memfd_create("ncs-twocore", os.MFD_CLOEXEC), "w+b")
    return tempfile.TemporaryFile(dir=directory, prefix=".ncs-twocore-")


class ForkedCall(Generic[T]):
    """FUNC() running in a forked child, its outcome spooled to a file this process reads back.

    With RAW, FUNC returns an iterable of bytes that the child writes as they
    come (`chunks` reads them back); otherwise its value (or exception) is
    pickled (`result` returns or raises it).
    """

    def __init__(self, func: Callable[[], T], raw: bool = False, spool_dir: str | None = None) -> None:
        self._file = _spool(spool_dir)
        self._raw = raw
        self._pid = os.fork()
        if self._pid == 0:  # the child: never returns
            self._run_child(func)

    def _run_child(self, func: Callable[[], Any]) -> None:
        status = 1
        try:
            if self._raw:
                for chunk in func():
                    self._file.write(chunk)
            else:
                try:
                    outcome: tuple[bool, object] = (True, func())
                except Exception as err:  # handed to the parent, which raises it
                    outcome = (False, err)
                pickle.dump(outcome, self._file, protocol=pickle.HIGHEST_PROTOCOL)
            self._file.flush()
            status = 0
        finally:
            # No atexit handlers, no flushing of the parent's buffered output.
            os._exit(status)

    def _wait(self) -> None:
        """Wait for the child; raise ChildProcessError if it did not finish its work."""
        _, status = os.waitpid(self._pid, 0)
        if status != 0:
            self._file.close()
            raise ChildProcessError(f"forked helper process {self._pid} failed (status {status})")
        self._file.seek(0)

    def result(self) -> T:
        """Wait for the child; return FUNC's value or raise the exception FUNC raised.

        Raises ChildProcessError when the child died without a result.
        """
        self._wait()
        with self._file:
            ok, value = pickle.load(self._file)
        if not ok:
            raise value  # type: ignore[misc]
        return value  # type: ignore[return-value]

    def chunks(self) -> Iterator[bytes]:
        """Wait for the child (RAW); yield what it wrote, in pieces.

        Raises ChildProcessError when the child died before writing all of it
        (before the first piece is yielded).
        """
        self._wait()
        with self._file:
            while piece := self._file.read(_READ_SIZE):
                yield piece

    def reap(self) -> None:
        """Wait for the child and discard its outcome (when this process gave up on it)."""
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(self._pid, 0)
        self._file.close()


def map_in_halves(func: Callable[[T], R], items: list[T], records: int,
                  wire: tuple[Callable[[R], Any], Callable[[Any], R]] | None = None) -> Iterator[R]:
    """Yield FUNC(item) for every item in order; a job of RECORDS records uses two cores.

    When `worth_splitting(RECORDS)` and there are two items or more, the
    second half of ITEMS is computed in a forked child.  WIRE, if given, is
    (pack, unpack): the child sends pack(result), which this process turns
    back with unpack (for results that pickle slowly as they are).
    Exceptions of FUNC propagate (the child's when its half is reached).
    """
    if len(items) < 2 or not worth_splitting(records):
        yield from map(func, items)
        return
    pack, unpack = wire if wire is not None else (_same, _same)
    half = len(items) // 2
    second = ForkedCall(lambda: [pack(func(item)) for item in items[half:]])
    with _reaped_on_error(second):
        yield from map(func, items[:half])
    try:
        results = [unpack(packed) for packed in second.result()]
    except ChildProcessError:
        # The child died without an answer: its half is done here.
        results = [func(item) for item in items[half:]]
    yield from results


def stream_in_halves(func: Callable[[T], bytes], items: list[T], records: int,
                     spool_dir: str | None = None, split_at: int | None = None) -> Iterator[bytes]:
    """Yield FUNC(item) (bytes) for every item in order; a job of RECORDS records uses two cores.

    Like `map_in_halves`, but the child writes the second half's bytes to an
    unlinked file in SPOOL_DIR (memory if None) and this process reads them
    back in pieces after yielding its own half.  SPLIT_AT, if given, is where
    the second half starts (to balance halves of unequal cost).
    """
    if len(items) < 2 or not worth_splitting(records):
        yield from map(func, items)
        return
    half = len(items) // 2 if split_at is None else min(max(split_at, 1), len(items) - 1)
    second = ForkedCall(lambda: map(func, items[half:]), raw=True, spool_dir=spool_dir)
    with _reaped_on_error(second):
        yield from map(func, items[:half])
    try:
        pieces = second.chunks()
        first = next(pieces, b"")
    except ChildProcessError:
        yield from map(func, items[half:])
        return
    yield first
    yield from pieces


@contextlib.contextmanager
def _reaped_on_error(call: ForkedCall) -> Iterator[None]:
    """Reap CALL's child if the block raises (or the consumer stops early), then pass it on."""
    try:
        yield
    except BaseException:
        call.reap()
        raise


def _same(value: Any) -> Any:
    return value
