"""Pid files: exclusive creation, stale files replaced, live owners respected, races settled by one winner."""

from __future__ import annotations

import mmap
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ncs.agent.pidfile import (
    AlreadyRunning,
    create_pidfile,
    has_packet_socket,
    process_alive,
    read_pid,
    remove_pidfile,
    running_pid,
)


def dead_pid() -> int:
    """Return the pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def sleeper():
    """A live process (not this one) that the test can name in a pid file."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


HOLDER = """
import sys, time
from ncs.agent.pidfile import create_pidfile
create_pidfile(sys.argv[1])
print("created", flush=True)
time.sleep(60)
"""


@pytest.fixture
def holder(tmp_path: Path):
    """A process that created tmp_path/held.pid as the agent does, and holds it."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "held.pid")],
                            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    assert proc.stdout.readline() == "created\n"
    yield proc
    proc.kill()
    proc.wait()


def test_create_writes_pid_and_refuses_a_second(tmp_path: Path, holder) -> None:
    path = str(tmp_path / "held.pid")
    assert Path(path).read_text() == f"{holder.pid}\n"
    assert running_pid(path) == holder.pid
    with pytest.raises(AlreadyRunning) as info:
        create_pidfile(path, os.getpid())
    assert info.value.pid == holder.pid
    assert read_pid(path) == holder.pid  # the live owner's file is untouched
    assert sorted(os.listdir(tmp_path)) == ["held.pid"]  # no private temporary left behind


def test_a_live_process_that_does_not_hold_the_file_is_not_the_agent(tmp_path: Path, sleeper) -> None:
    """A reused or forged pid: the process lives, but it is not the agent; it is never taken for it."""
    path = tmp_path / "a.pid"
    path.write_text(f"{sleeper.pid}\n")
    assert read_pid(str(path)) == sleeper.pid and process_alive(sleeper.pid)
    assert running_pid(str(path)) is None
    fd = create_pidfile(str(path))  # stale: replaced
    try:
        assert running_pid(str(path)) == os.getpid()  # this process holds it now
    finally:
        os.close(fd)
    assert running_pid(str(path)) is None  # let go: no longer the agent's
    assert sleeper.poll() is None


def test_a_symlink_is_no_pid_file(tmp_path: Path, holder) -> None:
    link = tmp_path / "link.pid"
    link.symlink_to(tmp_path / "held.pid")
    assert read_pid(str(link)) is None and running_pid(str(link)) is None


def test_stale_pid_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "a.pid"
    gone = dead_pid()
    path.write_text(f"{gone}\n")
    assert running_pid(str(path)) is None
    os.close(create_pidfile(str(path), os.getpid()))
    assert read_pid(str(path)) == os.getpid()


@pytest.mark.parametrize("content", ["", "garbage\n", "0\n", "-5\n"])
def test_unreadable_pid_file_is_stale(tmp_path: Path, content: str) -> None:
    path = tmp_path / "a.pid"
    path.write_text(content)
    assert read_pid(str(path)) is None
    os.close(create_pidfile(str(path), os.getpid()))
    assert read_pid(str(path)) == os.getpid()


def test_zombie_counts_as_dead(tmp_path: Path) -> None:
    proc = subprocess.Popen(["sleep", "60"])
    try:
        os.kill(proc.pid, signal.SIGKILL)
        # not reaped yet: the pid still exists as a zombie until wait()
        deadline = time.monotonic() + 5
        while process_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert os.path.exists(f"/proc/{proc.pid}")
        assert not process_alive(proc.pid)
        path = tmp_path / "z.pid"
        path.write_text(f"{proc.pid}\n")
        os.close(create_pidfile(str(path), os.getpid()))
        assert read_pid(str(path)) == os.getpid()
    finally:
        proc.wait()


def test_remove_only_own_pid(tmp_path: Path, sleeper) -> None:
    path = str(tmp_path / "a.pid")
    os.close(create_pidfile(path, sleeper.pid))
    remove_pidfile(path, os.getpid())  # not ours: stays
    assert read_pid(path) == sleeper.pid
    remove_pidfile(path, sleeper.pid)
    assert not os.path.exists(path)
    remove_pidfile(path, sleeper.pid)  # already gone: no error


RACER = """
import os, sys, time
from ncs.agent.pidfile import AlreadyRunning, create_pidfile
go = float(sys.argv[2])
while time.time() < go:
    pass
try:
    create_pidfile(sys.argv[1])
except AlreadyRunning:
    sys.exit(1)
time.sleep(1.0)  # stay alive so that the losers see a live owner
"""


def test_racing_starters_have_one_winner(tmp_path: Path) -> None:
    path = tmp_path / "race.pid"
    path.write_text(f"{dead_pid()}\n")  # a stale file: every racer wants to replace it
    go = time.time() + 1.0
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(path), str(go)],
                               cwd=Path(__file__).resolve().parents[2]) for _ in range(6)]
    codes = [proc.wait(timeout=30) for proc in racers]
    winners = [proc.pid for proc, code in zip(racers, codes, strict=True) if code == 0]
    assert len(winners) == 1, codes
    assert read_pid(str(path)) == winners[0]


SOL_PACKET = 263  # linux/socket.h
PACKET_RX_RING = 5  # linux/if_packet.h
ETH_P_ALL = 3


def test_a_capture_counts_once_its_ring_is_mapped() -> None:
    """libpcap binds the packet socket before it maps the ring: readiness waits for the ring."""
    assert has_packet_socket(os.getpid()) is False
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)) as sock:
        sock.bind(("lo", 0))
        assert has_packet_socket(os.getpid()) is False  # receiving, but no ring yet
        block = 1 << 16
        # struct tpacket_req: block size, block count, frame size, frame count
        sock.setsockopt(SOL_PACKET, PACKET_RX_RING, struct.pack("IIII", block, 2, 2048, 64))
        with mmap.mmap(sock.fileno(), 2 * block):
            assert has_packet_socket(os.getpid()) is True
