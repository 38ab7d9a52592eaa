"""`ncs-report --watch` in a real terminal (tmux) against a live agent in a network namespace.

The agent captures on a veth; the live view, running in a tmux pane inside
the same namespace, asks the agent for a dump over its UDP port every
second.  Traffic sent from the other end must show up on the screen with
its exact window bytes, and grow when more is sent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.agent.test_live import read_until

BIN = Path(sys.executable).parent
A4, B4 = "198.51.100.41", "198.51.100.42"
PORT = 10004
PAYLOAD, COUNT = 1000, 150
FRAME = 14 + 20 + 8 + PAYLOAD  # Ethernet + IPv4 + UDP headers + payload, as the agent counts


def send_udp(host, count: int) -> None:
    """Send COUNT datagrams of PAYLOAD bytes from HOST to A4."""
    host.run([sys.executable, "-c",
              "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
              f"for _ in range({count}): s.sendto(b'w'*{PAYLOAD},('{A4}',9))\n"])


class Pane:
    """A tmux server of our own (its own socket) with one window running a command."""

    def __init__(self, base: Path, argv: list[str]) -> None:
        self.socket = str(base / "tmux.sock")
        command = " ".join(f"'{a}'" for a in argv)
        self.tmux("new-session", "-d", "-x", "130", "-y", "60", "-s", "watch",
                  f"env TZ=UTC {command}")

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True, text=True,
                              check=True, timeout=30).stdout

    def screen(self) -> str:
        """Return what the pane shows now."""
        return self.tmux("capture-pane", "-p", "-t", "watch")

    def wait_for(self, text: str, timeout: float = 60.0) -> str:
        """Return the screen once it shows TEXT; fail with the last screen after TIMEOUT seconds."""
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.3)
        raise AssertionError(f"{text!r} never appeared; the pane shows:\n{screen}")

    def close(self) -> None:
        """End this tmux server (the socket names it) and with it the pane's command."""
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True, timeout=30)


def row_of(screen: str, address: str) -> str:
    """Return the screen line of ADDRESS's row."""
    return next(line for line in screen.splitlines() if line.strip().startswith(address))


def test_watch_shows_live_traffic_in_a_terminal(netlab, tmp_path: Path) -> None:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    a = netlab.add_host("a", A4)
    b = netlab.add_host("b", B4)
    stats = tmp_path / "live.stats"
    agent = a.popen([str(BIN / "ncs-agent"), "run", "--bpf", f"host {A4} and udp", "--no-dns",
                     "--device", a.ifname, "--port", str(PORT), "--stats", str(stats)],
                    stderr=subprocess.PIPE, text=True)
    read_until(agent.stderr, "capturing on eth0")
    pane = Pane(tmp_path, a.cmd([str(BIN / "ncs-report"), "--watch", "--interval", "1",
                                 "--update", f"127.0.0.1:{PORT}", str(stats)]))
    try:
        first = pane.wait_for("Refreshed")
        assert B4 not in first  # nothing sent yet
        send_udp(b, COUNT)
        screen = pane.wait_for(f"{COUNT * FRAME / 1000:.1f} kB")
        row = row_of(screen, B4)
        assert f"{COUNT * FRAME / 1000:.1f} kB" in row and str(COUNT) in row.split()
        assert "198.51.100.0/24" in screen and "the agent at 127.0.0.1" in screen
        send_udp(b, COUNT)
        screen = pane.wait_for(f"{2 * COUNT * FRAME / 1000:.1f} kB")
        assert str(2 * COUNT) in row_of(screen, B4).split()
    finally:
        pane.close()
    assert agent.poll() is None  # the agent kept running through the dumps
    os.kill(agent.pid, 15)
    assert agent.wait(timeout=15) == 0
