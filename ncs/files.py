"""Files that readers may be looking at: replaced atomically, judged fresh by their age, watched for a rewrite."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

POLL = 0.02  # seconds between looks at a file while waiting for it to change


def replace_file(path: str, chunks: Iterable[bytes], mode: int | None = None,
                 tmp: str | None = None) -> None:
    """Write CHUNKS to PATH atomically: a temporary file (TMP, default PATH.tmp), fsync, rename.

    A reader never sees a half-written file, and a failure (OSError, or
    anything the CHUNKS iterable raises) leaves the previous file in place and
    removes the temporary one.  MODE, if given, is set before the rename.
    """
    tmp = tmp or path + ".tmp"
    try:
        with open(tmp, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def remove_stale_temporaries(path: str) -> list[tuple[str, int]]:
    """Remove what an interrupted write of PATH left: PATH.tmp (replace_file's) and PATH.part.

    PATH.part held the second half of a big agent dump in older versions.
    Call it only where no other writer of PATH can be at work (a program's
    start).  Returns the (name, size in bytes) of every file removed.
    """
    removed = []
    for stale in (path + ".tmp", path + ".part"):
        try:
            size = os.lstat(stale).st_size
            os.unlink(stale)
        except FileNotFoundError:
            continue
        removed.append((stale, size))
    return removed


def mtime_ns(path: str) -> int:
    """Return PATH's modification time in nanoseconds, 0 if it does not exist."""
    try:
        return os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return 0


def is_fresh(path: str, max_age: float, now: float | None = None) -> bool:
    """Return whether PATH exists and was modified less than MAX_AGE seconds ago (0: never fresh)."""
    if max_age <= 0:
        return False
    mtime = mtime_ns(path)
    if mtime == 0:
        return False
    current = time.time() if now is None else now
    return current - mtime / 1e9 < max_age


@dataclass(frozen=True)
class FileId:
    """What changes when a file is rewritten: replace_file's rename gives a new inode."""

    inode: int
    mtime_ns: int
    size: int


def file_id(path: str) -> FileId | None:
    """Return the identity of the file at PATH, or None if it does not exist."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return FileId(st.st_ino, st.st_mtime_ns, st.st_size)


def wait_rewritten(path: str, before: FileId | None, timeout: float,
                   give_up: Callable[[], bool] | None = None) -> bool:
    """Wait up to TIMEOUT seconds until the file at PATH exists and differs from BEFORE.

    Returns True once it does; False at the timeout, or as soon as GIVE_UP
    (if given) returns True, e.g. because the writer died.
    """
    deadline = time.monotonic() + timeout
    while True:
        now = file_id(path)
        if now is not None and now != before:
            return True
        if (give_up is not None and give_up()) or time.monotonic() >= deadline:
            return False
        time.sleep(POLL)
