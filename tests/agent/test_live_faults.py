"""A live agent's faults: its interface goes down, the disk fills up, no right to capture, dumps right
after traffic, stale temporary files, and its log.

Each test runs real agents in a network namespace of its own (tests/support/netns.py)
and sends real datagrams from another.
"""

# The fixtures lab_hosts and agent come from test_daemon by import; tests name them as arguments.
# ruff: noqa: F811
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ncs.agent.pidfile import process_alive
from tests.agent.test_daemon import (  # noqa: F401  (lab_hosts and agent are fixtures)
    AGENT,
    WAIT,
    Agent,
    agent,
    counted,
    dump_until,
    lab_hosts,
    make_agent,
    record_of,
    send,
)
from tests.support.stats import read_stats


def wait_until(predicate, what: str, timeout: float = WAIT) -> None:
    """Poll PREDICATE until it is true; fail naming WHAT after TIMEOUT seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def log_lines(agent: Agent) -> list[str]:
    path = agent.piddir / f"{agent.name}.log"
    return path.read_text().splitlines() if path.exists() else []


# -- item 2: the interface goes down and comes back -------------------------

def test_interface_down_dumps_waits_and_captures_again(lab_hosts, agent: Agent) -> None:
    a, b = lab_hosts
    assert agent.cli("start").returncode == 0
    pid = agent.pid()
    before = [10, 20, 30]
    send(b, a.ipv4, before)
    dump_until(agent, b.ipv4, counted(before))
    dumped = agent.stats_file.stat()

    a.run(["ip", "link", "set", "eth0", "down"])
    # the counts so far are written at once, and status says what the agent waits for
    wait_until(lambda: agent.stats_file.stat().st_ino != dumped.st_ino, "the dump at the failure")
    assert record_of(read_stats(str(agent.stats_file)), b.ipv4) == counted(before)
    status = agent.cli("status")
    assert status.returncode == 0 and status.stdout.startswith(f"{pid} {agent.name} is running\n")
    assert f"{agent.name}: waiting for eth0 to come back up" in status.stdout.splitlines()[1]
    assert any("The interface went down" in line and "waits for eth0" in line
               and " ERROR: " in line for line in log_lines(agent))
    assert process_alive(pid)

    a.run(["ip", "link", "set", "eth0", "up"])
    wait_until(lambda: len(agent.cli("status").stdout.splitlines()) == 1, "capture again")
    assert any("capturing again on eth0" in line for line in log_lines(agent))
    after = [40, 50]
    deadline = time.monotonic() + WAIT  # the bridge port may take a moment to forward again
    while record_of(read_stats(str(agent.stats_file)), b.ipv4) != counted(before + after):
        assert time.monotonic() < deadline, read_stats(str(agent.stats_file)).records
        send(b, a.ipv4, after)
        stats = dump_until(agent, b.ipv4, counted(before + after))
        if record_of(stats, b.ipv4) != counted(before + after):
            before = before + after  # sent while the port was not forwarding yet: counted anyway
    assert agent.cli("stop").returncode == 0
    final = read_stats(str(agent.stats_file))
    assert record_of(final, b.ipv4) == counted(before + after)
    assert not Path(str(agent.stats_file) + ".status").exists()


# -- item 3: stale temporary files of a killed dump ------------------------

def test_stale_temporaries_are_removed_at_start(lab_hosts, agent: Agent) -> None:
    tmp, part = Path(str(agent.stats_file) + ".tmp"), Path(str(agent.stats_file) + ".part")
    tmp.write_bytes(b"x" * 8_000_000)  # what a dump killed half-way leaves
    part.write_bytes(b"y" * 4_000_000)  # the second half's file of older versions
    assert agent.cli("start").returncode == 0
    assert not tmp.exists() and not part.exists()
    assert any(f"removed {tmp} (8000000 bytes), left by an interrupted dump" in line
               for line in log_lines(agent))
    assert agent.cli("stop").returncode == 0


# -- item 4: a full disk ----------------------------------------------------

def fill(path: Path) -> None:
    """Write PATH until the file system is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)


def test_full_disk_keeps_the_last_dump_and_counting(lab_hosts, tmp_path: Path, tmpfs: Callable[..., Path]) -> None:
    small_disk = tmpfs("256k")
    a, b = lab_hosts
    instance = make_agent(a, tmp_path, f"f{os.getpid()}")
    instance.config.write_text(instance.config.read_text().replace(str(instance.sniffer), str(small_disk)))
    instance = Agent(a, instance.config, instance.name, instance.piddir, small_disk)
    assert instance.cli("start").returncode == 0
    try:
        first = [100, 200]
        send(b, a.ipv4, first)
        dump_until(instance, b.ipv4, counted(first))
        good = instance.stats_file.read_bytes()
        filler = small_disk / "filler"
        fill(filler)
        more = [300, 400, 500]
        send(b, a.ipv4, more)
        os.kill(instance.pid(), signal.SIGUSR1)
        stats_path = instance.stats_file
        wait_until(lambda: any(f"cannot write {stats_path}" in line for line in log_lines(instance)),
                   "the dump's error in the log")
        errors = [line for line in log_lines(instance) if " ERROR: " in line]
        assert len(errors) == 1
        assert errors[0].endswith(f"ERROR: ncs-agent: cannot write {stats_path}: No space left on device")
        assert instance.stats_file.read_bytes() == good  # the last good dump survives, whole
        assert sorted(p.name for p in small_disk.iterdir()) == sorted([stats_path.name, "filler"])
        assert instance.cli("status").returncode == 0

        filler.unlink()  # room again: the next dump has every packet
        stats = dump_until(instance, b.ipv4, counted(first + more))
        assert record_of(stats, b.ipv4) == counted(first + more)
    finally:
        instance.cli("stop", "--timeout", "5")


# -- item 13: capturing without the right -----------------------------------

# Runs ncs-agent with the installed packages of this venv under another interpreter path.
VIA_SITE = ("import site, sys; site.addsitedir(sys.argv.pop(1)); "
            "from ncs.agent.cli import main; sys.exit(main(sys.argv[1:]))")


def as_nobody() -> list[str] | None:
    """Return a command prefix running ncs-agent as the user nobody, or None when nobody cannot run it.

    The venv's own interpreter may live where nobody cannot reach (a pyenv
    under /root); the system's python3 of the same version reads the venv's
    site-packages instead.
    """
    site_dir = next(p for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix))
    for python in (sys.executable, f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"):
        probe = subprocess.run(["runuser", "-u", "nobody", "--", python, "-c", "pass"], capture_output=True)
        if probe.returncode == 0:
            return ["runuser", "-u", "nobody", "--", python, "-c", VIA_SITE, site_dir]
    return None


MISSING_RIGHT = ("ncs-agent: device 'eth0': cannot capture: permission denied "
                 "(capturing needs root or the CAP_NET_RAW capability)\n")


def test_capture_as_nobody_says_what_is_missing(lab_hosts) -> None:
    a, _b = lab_hosts
    prefix = as_nobody()
    if prefix is None:
        pytest.skip("no interpreter of this Python version that the user nobody may run")
    res = a.run([*prefix, "run", "--device", "eth0", "--bpf", f"host {a.ipv4}", "--no-dns",
                 "--stats", "-"], check=False)
    assert (res.returncode, res.stderr) == (1, MISSING_RIGHT)


def test_capture_as_root_without_cap_net_raw_says_what_is_missing(lab_hosts) -> None:
    a, _b = lab_hosts
    res = a.run(["setpriv", "--bounding-set=-net_raw", "--inh-caps=-net_raw", "--", *AGENT, "run",
                 "--device", "eth0", "--bpf", f"host {a.ipv4}", "--no-dns", "--stats", "-"], check=False)
    assert (res.returncode, res.stderr) == (1, MISSING_RIGHT)


# -- item 14: a dump right after traffic holds all of it ---------------------

SENDER = """
import socket, sys
source, dest = sys.argv[1], sys.argv[2]
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    s.bind((source, 0))
    for line in sys.stdin:
        for _ in range(int(line)):
            s.sendto(b"d" * 64, (dest, 9))
        print("sent", flush=True)
"""
ROUNDS = 50
PER_ROUND = 7


def test_dump_right_after_traffic_counts_every_packet(lab_hosts, tmp_path: Path) -> None:
    """50 rounds: N datagrams, then at once a dump (USR1 within milliseconds); C is exact every time."""
    a, b = lab_hosts
    stats = tmp_path / "fast.stats"
    agent_proc = a.popen([*AGENT, "run", "--device", "eth0", "--bpf", f"udp and host {a.ipv4}",
                          "--no-dns", "--stats", str(stats)], stderr=subprocess.PIPE, text=True)
    assert "capturing on eth0" in agent_proc.stderr.readline()
    sender = b.popen([sys.executable, "-c", SENDER, b.ipv4, a.ipv4], stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE, text=True)
    short = []
    for round_ in range(1, ROUNDS + 1):
        before = stats.stat().st_ino if stats.exists() else None
        sender.stdin.write(f"{PER_ROUND}\n")
        sender.stdin.flush()
        assert sender.stdout.readline() == "sent\n"
        agent_proc.send_signal(signal.SIGUSR1)  # within a few ms of the last datagram
        wait_until(lambda b=before: stats.exists() and stats.stat().st_ino != b, "the dump")
        got = record_of(read_stats(str(stats)), b.ipv4)
        if got != counted([64] * (PER_ROUND * round_)):
            short.append((round_, got))
    sender.stdin.close()
    agent_proc.send_signal(signal.SIGTERM)
    assert agent_proc.wait(timeout=WAIT) == 0
    assert short == [], f"dumps missing packets the kernel had delivered: {short[:5]}"


# -- item 15: the log -----------------------------------------------------------

NO_ROUTE = "203.0.113.77:53"  # a lab host has routes to 198.51.100.0/24 only

def test_log_is_appended_with_levels_and_dns_failures(lab_hosts, agent: Agent) -> None:
    a, b = lab_hosts
    # a name server A has no route to (no packet leaves: sendto fails at once)
    agent.config.write_text(agent.config.read_text().replace("dns: false\n", f"nameserver: {NO_ROUTE}\n"))
    assert agent.cli("start").returncode == 0
    first_pid = agent.pid()
    send(b, a.ipv4, [10])
    wait_until(lambda: any(f"DNS: cannot send to {NO_ROUTE}" in line for line in log_lines(agent)),
               "the DNS failure in the log")
    assert agent.cli("stop").returncode == 0
    assert agent.cli("start").returncode == 0
    lines = log_lines(agent)
    assert agent.cli("stop").returncode == 0
    starts = [line for line in lines if "capturing on eth0" in line]
    assert len(starts) == 2 and f"[{first_pid}] INFO: ncs-agent: capturing on eth0" in starts[0]
    warning = next(line for line in lines if "DNS: cannot send" in line)
    assert warning.endswith(f"ncs-agent[{first_pid}] WARNING: DNS: cannot send to {NO_ROUTE}: "
                            "Network is unreachable")


def test_journal_gets_levels_and_the_header_counts_refused_requests(lab_hosts, agent: Agent,
                                                                    tmp_path: Path) -> None:
    """Under systemd (stderr is $JOURNAL_STREAM) every line has its syslog priority; refused UDP is counted."""
    a, b = lab_hosts
    journal = tmp_path / "journal"
    with open(journal, "w") as err:
        st = os.fstat(err.fileno())
        env = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        proc = a.popen([*AGENT, "-c", str(agent.config), "run"], stderr=err, env=env)
        wait_until(lambda: "capturing on eth0" in journal.read_text(), "the start line")
        asker = ("import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                 f"s.bind(('{b.ipv4}',0))\ns.sendto(b'dump',('{a.ipv4}',10004))\n")
        b.run([sys.executable, "-c", asker])  # B is not in `allowed`
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=WAIT) == 0
    assert journal.read_text().startswith("<6>ncs-agent: capturing on eth0")
    header = read_stats(str(agent.stats_file)).header_value("dumpport")
    assert header == "requests=0 answered=0 refused=1"
