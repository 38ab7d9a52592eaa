"""A lock on a file (flock) whose text the holder keeps for the next one: a pid, a last error.

Exclusive by default; a shared lock (readers that let each other in but
wait for the exclusive holder) opens the file read-only, so a reader needs
no write access to it.
"""

from __future__ import annotations

import fcntl
import os
import time

RETRY = 0.05  # seconds between tries while waiting a limited time for a held lock
MAX_NOTE = 4096  # bytes of the lock file's text that are read


class LockBusy(Exception):
    """Someone else still held the lock after the wait; `note` is the text the holder left in it."""

    def __init__(self, path: str, note: str) -> None:
        super().__init__(f"{path}: locked by another process")
        self.path = path
        self.note = note


class FileLock:
    """An exclusive flock on PATH, which is created (with MODE, less the umask) if missing.

    The kernel drops an flock when its holder dies, so a lock file left behind
    by a dead process is simply taken over.  The file's text is not the lock:
    holders use it to tell the next one something (note(), write()).
    """

    def __init__(self, path: str, mode: int = 0o644, shared: bool = False) -> None:
        self.path = path
        self.mode = mode
        #: a shared lock: the file is opened read-only and must exist
        self.shared = shared
        self.fd: int | None = None

    def acquire(self, wait: float | None = 0.0) -> None:
        """Take the lock, waiting up to WAIT seconds for another holder (None: as long as it takes).

        Raises LockBusy if it is still held after WAIT, OSError if the lock
        file cannot be opened or created (a shared lock's file must exist).
        """
        if self.shared:
            fd, kind = os.open(self.path, os.O_RDONLY), fcntl.LOCK_SH
        else:
            fd, kind = os.open(self.path, os.O_RDWR | os.O_CREAT, self.mode), fcntl.LOCK_EX
        try:
            if wait is None:
                fcntl.flock(fd, kind)
            else:
                _flock_within(fd, wait, kind)
        except BlockingIOError:
            note = _read(fd)
            os.close(fd)
            raise LockBusy(self.path, note) from None
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd

    def note(self) -> str:
        """Return the text in the lock file (stripped): what the last holder left."""
        return _read(self._held())

    def mtime_ns(self) -> int:
        """Return the lock file's modification time: when a holder last wrote its note."""
        return os.fstat(self._held()).st_mtime_ns

    def write(self, text: str) -> None:
        """Replace the lock file's text with TEXT and stamp its modification time now."""
        fd = self._held()
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode("utf-8"), 0)
        os.utime(fd)

    def release(self) -> None:
        """Drop the lock (the file and its text stay); idempotent."""
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the flock
            self.fd = None

    def _held(self) -> int:
        """Return the descriptor of the held lock; raises RuntimeError when it is not held."""
        if self.fd is None:
            raise RuntimeError(f"{self.path}: lock not held")
        return self.fd

    def __enter__(self) -> FileLock:
        self.acquire(wait=None)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _flock_within(fd: int, wait: float, kind: int = fcntl.LOCK_EX) -> None:
    """Take a flock of KIND on FD, retrying for WAIT seconds; raises BlockingIOError after that."""
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, kind | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(RETRY)


def _read(fd: int) -> str:
    """Return the text of the file open at FD (stripped), "" when it cannot be read."""
    try:
        return os.pread(fd, MAX_NOTE, 0).decode("utf-8", "replace").strip()
    except OSError:
        return ""
