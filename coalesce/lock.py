"""The run lock that keeps two coalescers from fetching and writing at the same time."""

from __future__ import annotations

import fcntl
import os
import time


class LockBusy(Exception):
    """Another live coalescer holds the lock; str() names the lock file and its pid."""


class RunLock:
    """An exclusive lock on a file that also records the holder's pid.

    The lock is an flock on the open file, so the kernel drops it when the
    holder dies: a lock file left behind by a dead process is simply taken
    over (its stale pid is overwritten).  The pid inside is for messages only.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self, wait: float = 0.0) -> None:
        """Take the lock, waiting up to WAIT seconds for a live holder to finish.

        Raises LockBusy if it is still held after WAIT, OSError if the lock
        file cannot be created.
        """
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _read_pid(fd)
                    os.close(fd)
                    who = f"pid {holder}" if holder else "another process"
                    raise LockBusy(f"{self.path}: another ncs-coalesce ({who}) is running") from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd

    def release(self) -> None:
        """Drop the lock (the file stays, holding no live pid's lock); idempotent."""
        if self.fd is None:
            return
        try:
            os.ftruncate(self.fd, 0)
        finally:
            os.close(self.fd)  # closing the descriptor releases the flock
            self.fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    """Return the pid written in the lock file, or None if it holds none."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
