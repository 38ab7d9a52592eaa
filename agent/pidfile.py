"""Pid files: created exclusively and held open by the agent; stale or foreign ones never taken for it."""

from __future__ import annotations

import fcntl
import os
import signal
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager


class AlreadyRunning(RuntimeError):
    """The pid file names a live process; `pid` is that process."""

    def __init__(self, path: str, pid: int) -> None:
        super().__init__(f"{path}: process {pid} is running")
        self.path = path
        self.pid = pid


def _read_pidfile(path: str) -> tuple[int, os.stat_result] | None:
    """Return (pid, the file's stat) of pid file PATH, or None if missing, empty or not a pid.

    A symbolic link is no pid file: it is not followed.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:  # missing, a symlink (ELOOP), a directory in the way, unreadable
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        text = os.read(fd, 64).decode("ascii", errors="replace").strip()
    finally:
        os.close(fd)
    if not text.isdigit() or int(text) <= 0:
        return None
    return int(text), st


def read_pid(path: str) -> int | None:
    """Return the pid written in PATH, or None if the file is missing, empty or not a pid."""
    found = _read_pidfile(path)
    return None if found is None else found[0]


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


def holds_file(pid: int, st: os.stat_result) -> bool | None:
    """Return whether process PID has the file of stat ST open; None where /proc does not tell.

    /proc/PID/fd shows another user's process (and a process that dropped
    root, which the kernel then makes undumpable) only to root.
    """
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return False if os.path.isdir("/proc/self/fd") else None
    except OSError:  # PermissionError: not root, another user's process
        return None
    for name in names:
        try:
            opened = os.stat(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue  # closed meanwhile
        if (opened.st_dev, opened.st_ino) == (st.st_dev, st.st_ino):
            return True
    return False


def running_pid(path: str) -> int | None:
    """Return the pid in pid file PATH if that process is the agent that holds PATH, else None.

    The agent keeps its pid file open all its life (`create_pidfile`), so a
    pid file that names a process not holding it is stale (a pid reused
    after a crash) or forged, and that process is never taken for the agent.
    Where the caller cannot look (neither root nor the process's user), a
    live process is trusted only from a pid file owned by root or the caller.
    None also for no file, garbage and a dead process.
    """
    found = _read_pidfile(path)
    if found is None:
        return None
    pid, st = found
    if not process_alive(pid):
        return None
    held = holds_file(pid, st)
    if held is None:
        held = st.st_uid in (0, os.geteuid())
    return pid if held else None


@contextmanager
def _directory_lock(path: str) -> Iterator[None]:
    """Hold an exclusive flock on PATH's directory, so two starters do not both replace a stale file."""
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def create_pidfile(path: str, pid: int | None = None) -> int:
    """Create PATH holding PID (default: this process), failing if a live agent owns it.

    The pid is written to a private file created with O_EXCL and then hard-linked
    to PATH: link() is exclusive like O_EXCL, and PATH never exists empty, so a
    reader never mistakes a half-written file for a stale one.  A stale file
    (dead pid, garbage, a process that does not hold it) is replaced.
    Returns a descriptor of the file: the agent keeps it open until it exits,
    which is how `running_pid` tells it from any other process with its pid.
    Raises AlreadyRunning if PATH names a live agent, OSError if the directory
    is not writable.
    """
    pid = os.getpid() if pid is None else pid
    private = f"{path}.{pid}.new"
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, f"{pid}\n".encode("ascii"))
        with _directory_lock(path):
            try:
                os.link(private, path)
                return fd
            except FileExistsError:
                pass
            owner = running_pid(path)
            if owner is not None:
                raise AlreadyRunning(path, owner)
            os.unlink(path)  # stale: its process is gone, or is not an agent
            os.link(private, path)
            return fd
    except BaseException:
        os.close(fd)
        raise
    finally:
        try:
            os.unlink(private)
        except FileNotFoundError:
            pass


def remove_pidfile(path: str, pid: int | None = None) -> None:
    """Remove PATH if it still names PID (default: this process); never raises.

    An agent that dropped root can neither remove nor empty its pid file
    (root's, in root's directory); the file then stays behind, naming a
    process that is gone or does not hold it: stale for every verb, and
    removed by the next `stop` or `start`.
    """
    pid = os.getpid() if pid is None else pid
    if read_pid(path) != pid:
        return
    try:
        os.unlink(path)
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
