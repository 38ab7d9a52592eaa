"""The daemon's whole life against live traffic: a real agent in one namespace, senders in another.

Host A runs `ncs-agent` (start, status, dump, signals, restart, stop, the UDP
port); host B sends UDP datagrams of known sizes to A.  What the agent counts is
checked against what the test sent: 14 (Ethernet) + 20 (IPv4) + 8 (UDP) +
payload bytes per datagram on a veth.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ncs.agent.pidfile import catches_signal, process_alive
from tests.support.stats import StatsFile, parse_stats, read_stats

AGENT = [sys.executable, "-m", "ncs.agent.cli"]
UDP_OVERHEAD = 14 + 20 + 8  # Ethernet + IPv4 + UDP headers on a veth (no padding)
SINK_PORT = 9  # the discard port; nothing listens, the agent counts what passes the filter
DUMP_PORT = 10004
WAIT = 10.0  # seconds for anything that should happen "at once"

# Sends UDP datagrams of the given payload sizes from SOURCE to DEST:PORT.
SEND = """
import socket, sys
source, dest, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    s.bind((source, 0))
    for size in sys.argv[4:]:
        s.sendto(b"x" * int(size), (dest, port))
"""

# Sends one datagram from SOURCE to DEST:PORT and prints the answer, or NONE after 1 s.
ASK = """
import socket, sys
source, dest, port, text = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    s.bind((source, 0))
    s.settimeout(1.0)
    s.sendto(text.encode(), (dest, port))
    try:
        print(s.recv(512).decode())
    except TimeoutError:
        print("NONE")
"""


@dataclass
class Agent:
    """An agent instance in host A's namespace, driven through the real command line."""

    host: object  # NetnsHost
    config: Path
    name: str
    piddir: Path
    sniffer: Path

    @property
    def pid_file(self) -> Path:
        return self.piddir / f"{self.name}.pid"

    @property
    def stats_file(self) -> Path:
        return self.sniffer / f"{self.name}.stats"

    def cli(self, *args: str, timeout: float = 60):
        """Run `ncs-agent -c CONFIG ARGS` inside host A; returns the completed process."""
        return self.host.run([*AGENT, "-c", str(self.config), *args], check=False, timeout=timeout)

    def pid(self) -> int:
        """Return the pid in the pid file (the test fails if there is none)."""
        return int(self.pid_file.read_text())

    def dump(self, *extra: str) -> StatsFile:
        """Run `dump --wait --print` and return the parsed file it printed."""
        proc = self.cli("dump", "--wait", "--print", "--timeout", str(WAIT), *extra)
        assert proc.returncode == 0, proc.stderr
        return parse_stats(proc.stdout, "dump --print")


def send(sender, target: str, sizes: list[int], port: int = SINK_PORT) -> None:
    """Send UDP datagrams with these payload sizes from host SENDER to TARGET."""
    sender.run([sys.executable, "-c", SEND, sender.ipv4, target, str(port), *map(str, sizes)])


def counted(sizes: list[int]) -> tuple[int, int]:
    """Return (hits, bytes) the agent must count for datagrams of these payload sizes."""
    return len(sizes), sum(UDP_OVERHEAD + size for size in sizes)


def record_of(stats: StatsFile, address: str) -> tuple[int, int] | None:
    """Return (C, B) of ADDRESS in STATS, or None when it has no record."""
    rec = stats.records.get(address)
    return None if rec is None else (int(rec.C), int(rec.B))


def dump_until(agent: Agent, address: str, expected: tuple[int, int] | None) -> StatsFile:
    """Dump until ADDRESS shows EXPECTED (C, B): packets may still sit in the capture buffer.

    Returns the last dump; the caller asserts on it, so a wrong count fails after WAIT.
    """
    deadline = time.monotonic() + WAIT
    while True:
        stats = agent.dump()
        if record_of(stats, address) == expected or time.monotonic() > deadline:
            return stats
        time.sleep(0.2)


def wait_file_change(path: Path, before: os.stat_result, timeout: float = WAIT) -> bool:
    """Return True once PATH is a different file (inode) or rewritten (mtime) compared to BEFORE."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            now = path.stat()
        except FileNotFoundError:
            now = None
        if now is not None and (now.st_ino, now.st_mtime_ns) != (before.st_ino, before.st_mtime_ns):
            return True
        time.sleep(0.05)
    return False


def header_start(stats: StatsFile) -> int:
    """Return the data set's start time from the `# start:` header line."""
    return int(stats.header_value("start").split(",")[0])


@pytest.fixture
def lab_hosts(netlab):
    """Hosts A (the agent) and B (the remote sender) on one lab bridge."""
    a = netlab.add_host("agent", "198.51.100.41")
    b = netlab.add_host("remote", "198.51.100.42")
    return a, b


def make_agent(host, base: Path, name: str, extra: str = "") -> Agent:
    """Write a config for an agent watching UDP to and from HOST, with the dump port on."""
    piddir, sniffer = base / "run", base / "stats"
    piddir.mkdir(exist_ok=True)
    sniffer.mkdir(exist_ok=True)
    config = base / f"{name}.yaml"
    config.write_text(
        f"name: {name}\npiddir: {piddir}\nsniffer: {sniffer}\n"
        f"bpf: udp and host {host.ipv4}\ndns: false\n"
        f"port: {DUMP_PORT}\nhost: INADDR_ANY\nallowed: [{host.ipv4}]\n{extra}")
    return Agent(host, config, name, piddir, sniffer)


@pytest.fixture
def agent(lab_hosts, tmp_path: Path) -> Iterator[Agent]:
    """An agent configured (not started) in host A; stopped at teardown if still running."""
    a, _b = lab_hosts
    instance = make_agent(a, tmp_path, f"d{os.getpid()}")
    yield instance
    if instance.pid_file.exists():
        instance.cli("stop", "--timeout", "5")


def test_lifecycle_with_live_traffic(lab_hosts, agent: Agent) -> None:
    a, b = lab_hosts

    # start, then status and a second start at once: start returns when the agent is ready
    proc = agent.cli("start")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    pid = agent.pid()
    assert process_alive(pid)
    assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(f"/run/netns/{a.netns}").st_ino
    proc = agent.cli("status")
    assert (proc.returncode, proc.stdout) == (0, f"{pid} {agent.name} is running\n")
    proc = agent.cli("start")
    assert (proc.returncode, proc.stderr) == (1, f"{agent.name} already running (pid {pid})\n")
    assert agent.pid() == pid

    # traffic from B, counted exactly
    sizes = [1, 100, 1000, 1472] + [50] * 10
    send(b, a.ipv4, sizes)
    stats = dump_until(agent, b.ipv4, counted(sizes))
    assert record_of(stats, b.ipv4) == counted(sizes)
    assert set(stats.records) == {b.ipv4}
    first_start = header_start(stats)

    # USR1 rewrites the file with the same data set
    before = agent.stats_file.stat()
    os.kill(pid, signal.SIGUSR1)
    assert wait_file_change(agent.stats_file, before)
    stats = read_stats(str(agent.stats_file))
    assert record_of(stats, b.ipv4) == counted(sizes)

    # --max-age: a young file is printed as it is, no dump is asked for
    before = agent.stats_file.stat()
    proc = agent.cli("dump", "--max-age", "3600", "--print")
    assert proc.returncode == 0
    assert proc.stdout == agent.stats_file.read_text()
    time.sleep(0.3)
    assert agent.stats_file.stat().st_ino == before.st_ino

    # HUP writes the file and starts a new data set: new start time, old traffic gone
    time.sleep(1.05)  # so that the new start time is a later second
    before = agent.stats_file.stat()
    os.kill(pid, signal.SIGHUP)
    assert wait_file_change(agent.stats_file, before)
    stats = agent.dump()
    assert header_start(stats) > first_start
    assert record_of(stats, b.ipv4) is None
    more = [10, 20, 30]
    send(b, a.ipv4, more)
    stats = dump_until(agent, b.ipv4, counted(more))
    assert record_of(stats, b.ipv4) == counted(more)

    # restart: a new process; the old one wrote its last dump on the way out
    proc = agent.cli("restart")
    assert proc.returncode == 0, proc.stderr
    new_pid = agent.pid()
    assert new_pid != pid and not process_alive(pid)
    assert agent.cli("status").stdout == f"{new_pid} {agent.name} is running\n"
    assert record_of(read_stats(str(agent.stats_file)), b.ipv4) == counted(more)

    # stop leaves a complete final dump (traffic since restart) and no pid file
    last = [7, 77]
    send(b, a.ipv4, last)
    dump_until(agent, b.ipv4, counted(last))
    send(b, a.ipv4, [5])
    time.sleep(0.3)  # let the capture see it; stop must flush it into the final dump
    proc = agent.cli("stop")
    assert (proc.returncode, proc.stderr) == (0, "")
    assert not agent.pid_file.exists()
    assert not process_alive(new_pid)
    final = read_stats(str(agent.stats_file), allow_empty=False)
    assert record_of(final, b.ipv4) == counted(last + [5])
    assert agent.stats_file.read_text().rstrip().endswith("}")

    proc = agent.cli("status")
    assert (proc.returncode, proc.stdout) == (3, f"{agent.name} not running\n")
    proc = agent.cli("stop")
    assert (proc.returncode, proc.stderr) == (0, f"{agent.name} not running\n")
    proc = agent.cli("dump")
    assert (proc.returncode, proc.stderr) == (3, f"{agent.name} not running\n")


def test_stale_pid_file_is_replaced(lab_hosts, agent: Agent) -> None:
    gone = lab_hosts[0].run([sys.executable, "-c", "import os; print(os.getpid())"]).stdout.strip()
    assert not process_alive(int(gone))
    agent.pid_file.write_text(f"{gone}\n")
    proc = agent.cli("status")
    assert (proc.returncode, proc.stdout) == (3, f"{agent.name} not running\n")
    proc = agent.cli("start")
    assert proc.returncode == 0, proc.stderr
    assert agent.pid() != int(gone) and process_alive(agent.pid())
    assert agent.cli("stop").returncode == 0
    assert not agent.pid_file.exists()


def test_udp_dump_port(lab_hosts, agent: Agent) -> None:
    a, b = lab_hosts
    assert agent.cli("start").returncode == 0
    send(b, a.ipv4, [200, 300])
    dump_until(agent, b.ipv4, counted([200, 300]))

    # from A's own address (allowed): OK <epoch> and a fresh file
    before = agent.stats_file.stat()
    t0 = int(time.time())
    answer = a.run([sys.executable, "-c", ASK, a.ipv4, a.ipv4, str(DUMP_PORT), "dump"]).stdout.split()
    assert answer[0] == "OK" and t0 <= int(answer[1]) <= time.time() + 1
    assert wait_file_change(agent.stats_file, before)
    assert record_of(read_stats(str(agent.stats_file)), b.ipv4) == counted([200, 300])
    answer = a.run([sys.executable, "-c", ASK, a.ipv4, a.ipv4, str(DUMP_PORT), "status?"]).stdout
    assert answer == "??\n"

    # from B (not in allowed): no answer and no dump
    before = agent.stats_file.stat()
    answer = b.run([sys.executable, "-c", ASK, b.ipv4, a.ipv4, str(DUMP_PORT), "dump"]).stdout
    assert answer == "NONE\n"
    assert not wait_file_change(agent.stats_file, before, timeout=1.0)
    assert agent.cli("stop").returncode == 0


def test_run_in_foreground_is_found_by_the_verbs(lab_hosts, agent: Agent) -> None:
    """`run` (systemd's way) keeps a pid file, so status/dump/stop work on it too."""
    a, b = lab_hosts
    proc = a.popen([*AGENT, "-c", str(agent.config), "run"], stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + WAIT
    while not (agent.pid_file.exists() and agent.pid_file.read_text().strip()):
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert agent.pid() == proc.pid or process_alive(agent.pid())
    wait_ready(agent.pid())
    assert agent.cli("status").returncode == 0
    send(b, a.ipv4, [64])
    stats = dump_until(agent, b.ipv4, counted([64]))
    assert record_of(stats, b.ipv4) == counted([64])
    assert agent.cli("stop").returncode == 0
    assert proc.wait(timeout=WAIT) == 0
    assert not agent.pid_file.exists()


def test_privileges_dropped_to_user(lab_hosts) -> None:
    a, b = lab_hosts
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' on this machine")
    # under /tmp, not tmp_path: pytest's directories are private to root (0700)
    base = Path(tempfile.mkdtemp(prefix="ncs-priv-"))
    base.chmod(0o755)
    try:
        instance = make_agent(a, base, f"p{os.getpid()}", extra="user: nobody\n")
        proc = instance.cli("start")
        assert proc.returncode == 0, proc.stderr
        pid = instance.pid()
        uids = [line.split()[1:] for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                if line.startswith("Uid:")][0]
        assert uids == [str(nobody.pw_uid)] * 4  # real, effective, saved, filesystem
        send(b, a.ipv4, [42])
        stats = dump_until(instance, b.ipv4, counted([42]))
        assert record_of(stats, b.ipv4) == counted([42])
        assert instance.stats_file.stat().st_uid == nobody.pw_uid  # written after the switch
        assert instance.cli("stop").returncode == 0
        assert not process_alive(pid)
        assert instance.cli("status").returncode == 3
    finally:
        if (base / "run" / f"p{os.getpid()}.pid").exists():
            a.run([*AGENT, "-c", str(base / f"p{os.getpid()}.yaml"), "stop"], check=False)
        shutil.rmtree(base, ignore_errors=True)


def wait_ready(pid: int) -> None:
    """Wait until PID has its USR1 handler (a USR1 before that would kill it)."""
    deadline = time.monotonic() + WAIT
    while not catches_signal(pid, signal.SIGUSR1):
        assert time.monotonic() < deadline, "agent never installed its signal handlers"
        time.sleep(0.05)


HOLD_PORT = """
import socket, sys, time
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("::", int(sys.argv[1])))
print("bound", flush=True)
time.sleep(60)
"""


def test_start_reports_the_daemons_startup_error(lab_hosts, agent: Agent) -> None:
    """An error the daemon meets after forking (the dump port taken) reaches the caller of start."""
    a, _b = lab_hosts
    holder = a.popen([sys.executable, "-c", HOLD_PORT, str(DUMP_PORT)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "bound\n"
    proc = agent.cli("start")
    assert proc.returncode == 1
    assert proc.stderr == f"config: cannot bind dump port INADDR_ANY:{DUMP_PORT}: Address already in use\n"
    assert not agent.pid_file.exists()
    assert agent.cli("status").returncode == 3
