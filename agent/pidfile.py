"""Pid files: created exclusively, stale ones (dead pid) replaced, live ones respected."""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager


class AlreadyRunning(RuntimeError):
    """The pid file names a live process; `pid` is that process."""

    def __init__(self, path: str, pid: int) -> None:
        super().__init__(f"{path}: process {pid} is running")
        self.path = path
        self.pid = pid


def read_pid(path: str) -> int | None:
    """Return the pid written in PATH, or None if the file is missing, empty or not a pid."""
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            text = handle.read(64).strip()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    if not text.isdigit() or int(text) <= 0:
        return None
    return int(text)


def process_alive(pid: int) -> bool:
    """Return True if process PID exists and is not a zombie.

    A zombie has exited but waits for its parent to reap it; for a daemon whose
    parent died it may stay a zombie for a while under a container's init, and
    it must count as gone (otherwise `stop` would wait for it forever).
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            # the state follows the parenthesised command name, which may contain spaces
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (not Linux): kill(0) is all we know
    return state not in ("Z", "X")


def running_pid(path: str) -> int | None:
    """Return the pid in PATH if that process is alive, else None (no file, garbage or stale)."""
    pid = read_pid(path)
    if pid is None or not process_alive(pid):
        return None
    return pid


@contextmanager
def _directory_lock(path: str) -> Iterator[None]:
    """Hold an exclusive flock on PATH's directory, so two starters do not both replace a stale file."""
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def create_pidfile(path: str, pid: int | None = None) -> None:
    """Create PATH holding PID (default: this process), failing if a live process owns it.

    The pid is written to a private file created with O_EXCL and then hard-linked
    to PATH: link() is exclusive like O_EXCL, and PATH never exists empty, so a
    reader never mistakes a half-written file for a stale one.  A stale file
    (dead pid, garbage) is replaced.
    Raises AlreadyRunning if PATH names a live process, OSError if the directory
    is not writable.
    """
    pid = os.getpid() if pid is None else pid
    private = f"{path}.{pid}.new"
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(f"{pid}\n")
        with _directory_lock(path):
            try:
                os.link(private, path)
                return
            except FileExistsError:
                pass
            owner = running_pid(path)
            if owner is not None:
                raise AlreadyRunning(path, owner)
            os.unlink(path)  # stale: its process is gone
            os.link(private, path)
    finally:
        try:
            os.unlink(private)
        except FileNotFoundError:
            pass


def remove_pidfile(path: str, pid: int | None = None) -> None:
    """Remove PATH if it still names PID (default: this process); never raises.

    After dropping privileges the directory may not be writable; then the file
    is emptied instead, which every reader treats as "not running".
    """
    pid = os.getpid() if pid is None else pid
    if read_pid(path) != pid:
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as err:
        if err.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            return
        try:
            with open(path, "w", encoding="ascii"):
                pass
        except OSError:
            pass


def wait_for_exit(pid: int, timeout: float, interval: float = 0.05) -> bool:
    """Wait up to TIMEOUT seconds for PID to die; returns True if it did."""
    deadline = time.monotonic() + timeout
    while process_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


def signal_process(pid: int, signum: int) -> bool:
    """Send SIGNUM to PID; returns False if it no longer exists.

    Raises PermissionError if PID belongs to another user.
    """
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        return False
    return True


def catches_signal(pid: int, signum: int = signal.SIGUSR1) -> bool | None:
    """Return whether PID has a handler installed for SIGNUM (from /proc/PID/status SigCgt).

    Returns None where /proc does not tell (not Linux, process gone).
    """
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) & (1 << (signum - 1)))
    except (OSError, ValueError, IndexError):
        return None
    return None


def _socket_inodes(pid: int) -> set[int] | None:
    """Return the inodes of the sockets PID has open, or None if /proc does not tell."""
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    inodes = set()
    for name in names:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def _table_inodes(path: str, inode_column: int, keep=lambda fields: True) -> set[int] | None:
    """Return the inode column of the rows of a /proc/net table that KEEP accepts."""
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            rows = handle.read().splitlines()[1:]
    except OSError:
        return None
    found = set()
    for row in rows:
        fields = row.split()
        if len(fields) > inode_column and keep(fields):
            found.add(int(fields[inode_column]))
    return found


def _mapped_sockets(pid: int) -> set[int] | None:
    """Return the inodes of the sockets PID has memory-mapped (capture rings), or None."""
    try:
        with open(f"/proc/{pid}/maps", encoding="ascii", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    return {int(line.rsplit("socket:[", 1)[1].rstrip("]")) for line in lines if "socket:[" in line}


def has_packet_socket(pid: int) -> bool | None:
    """Return whether PID has a capture socket with its ring mapped; None where /proc does not tell.

    libpcap binds the packet socket first, then sets up and maps the ring
    (tens of milliseconds for a large buffer) and only then sets the filter,
    which drops what arrived before: a packet socket without its ring is not
    capturing yet.
    """
    mine = _socket_inodes(pid)
    table = _table_inodes(f"/proc/{pid}/net/packet", 8)
    mapped = _mapped_sockets(pid)
    if mine is None or table is None or mapped is None:
        return None
    return bool(mine & table & mapped)


def has_udp_port(pid: int, port: int) -> bool | None:
    """Return whether PID has a UDP socket bound to PORT; None where /proc does not tell."""
    mine = _socket_inodes(pid)
    if mine is None:
        return None
    suffix = f":{port:04X}"
    for table in ("udp", "udp6"):
        inodes = _table_inodes(f"/proc/{pid}/net/{table}", 9, lambda f: f[1].endswith(suffix))
        if inodes and mine & inodes:
            return True
    return False
