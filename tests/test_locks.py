"""The shared file lock, held by a second real process."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ncs.locks import FileLock, LockBusy

# Takes the lock on argv[1], leaves argv[2] in it, says "held", and keeps it until a line on stdin.
HOLDER = """
import sys
from ncs.locks import FileLock
lock = FileLock(sys.argv[1])
lock.acquire()
lock.write(sys.argv[2])
print("held", flush=True)
sys.stdin.readline()
lock.release()
print("released", flush=True)
sys.stdin.readline()
"""


class Holder:
    """A second process holding the lock on PATH with NOTE in it, until release()."""

    def __init__(self, path: Path, note: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), note],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None and self.proc.stdout.readline() == "held\n"

    def release(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline() == "released\n"

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def holder(tmp_path: Path):
    made: list[Holder] = []

    def start(note: str = "4242") -> Holder:
        made.append(Holder(tmp_path / "run.lock", note))
        return made[-1]

    yield start
    for h in made:
        h.close()


def test_busy_lock_names_the_holders_note(tmp_path: Path, holder) -> None:
    holder("4242")
    lock = FileLock(str(tmp_path / "run.lock"))
    started = time.monotonic()
    with pytest.raises(LockBusy) as err:
        lock.acquire(wait=0.3)
    assert time.monotonic() - started >= 0.3
    assert (err.value.path, err.value.note) == (str(tmp_path / "run.lock"), "4242")
    assert lock.fd is None  # nothing left open


def test_waiting_takes_the_lock_once_released(tmp_path: Path, holder) -> None:
    other = holder("busy")
    lock = FileLock(str(tmp_path / "run.lock"))
    releaser = threading.Timer(0.3, other.release)
    releaser.start()
    lock.acquire(wait=10)
    releaser.join()
    assert lock.note() == "busy"  # what the last holder left stays readable
    lock.release()


def test_blocking_wait(tmp_path: Path, holder) -> None:
    other = holder("first")
    releaser = threading.Timer(0.3, other.release)
    releaser.start()
    started = time.monotonic()
    with FileLock(str(tmp_path / "run.lock")) as lock:
        assert time.monotonic() - started >= 0.3
        assert lock.note() == "first"
    releaser.join()


def test_lock_of_a_dead_holder_is_taken_over(tmp_path: Path, holder) -> None:
    other = holder("31337")
    other.proc.send_signal(signal.SIGKILL)
    other.proc.wait()
    lock = FileLock(str(tmp_path / "run.lock"))
    lock.acquire()
    assert lock.note() == "31337"
    lock.release()


def test_note_and_time_of_the_last_write(tmp_path: Path) -> None:
    path = tmp_path / "cache.lock"
    lock = FileLock(str(path), mode=0o600)
    lock.acquire()
    assert lock.note() == ""
    before = time.time_ns()
    lock.write("no answer from the agent")
    assert lock.note() == "no answer from the agent"
    assert lock.mtime_ns() >= before - 10_000_000
    lock.write("")
    assert lock.note() == "" and path.read_text() == ""
    assert path.stat().st_mode & 0o777 == 0o600
    lock.release()
    lock.release()  # idempotent
    with pytest.raises(RuntimeError, match="lock not held"):
        lock.note()


def test_lock_in_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        FileLock(str(tmp_path / "no" / "run.lock")).acquire()
