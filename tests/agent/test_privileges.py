"""Dropping root: what the agent hands to its user, and what that user cannot make root do.

A user who owns the stats directory (as `user:` makes it) can plant links
there and could, if it owned the pid file, name any process in it.  These
tests play that user for real (`runuser -u nobody`) against a real agent.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ncs.agent.pidfile import process_alive, running_pid
from ncs.agent.privileges import hand_over
from tests.agent.test_daemon import Agent, counted, dump_until, make_agent, record_of, send
from tests.support.stats import read_stats


@pytest.fixture
def nobody() -> pwd.struct_passwd:
    """The passwd entry of 'nobody' (skips where there is none, or when not root)."""
    if os.geteuid() != 0:
        pytest.skip("handing files to another user needs root")
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' on this machine")


def as_nobody(*argv: str) -> subprocess.CompletedProcess:
    """Run ARGV as the user nobody (runuser, as root); returns the finished process."""
    return subprocess.run(["runuser", "-u", "nobody", "--", *argv], capture_output=True, text=True,
                          timeout=30)


def _secret(path: Path) -> Path:
    """Write a root-owned 0600 file at PATH; returns PATH."""
    path.write_text("root only\n")
    path.chmod(0o600)
    return path


def test_hand_over_changes_only_what_it_opened(tmp_path: Path, nobody) -> None:
    uid, gid = nobody.pw_uid, nobody.pw_gid
    gids = {gid}
    plain = tmp_path / "plain.stats"
    plain.write_text("x")
    assert hand_over(str(plain), uid, gid, gids) is None
    assert (plain.stat().st_uid, plain.stat().st_gid) == (uid, gid)

    secret = _secret(tmp_path / "secret")
    link = tmp_path / "link.stats"
    link.symlink_to(secret)
    assert hand_over(str(link), uid, gid, gids) == "it is a symbolic link"
    hard = tmp_path / "hard.stats"
    os.link(secret, hard)
    assert hand_over(str(hard), uid, gid, gids) == "it has 2 hard links"
    fifo = tmp_path / "fifo.stats"
    os.mkfifo(fifo)  # opening it for reading would block: the hand-over does not open it so
    assert hand_over(str(fifo), uid, gid, gids) == "it is not a regular file"
    assert secret.stat().st_uid == 0 and stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert fifo.stat().st_uid == 0

    closed, shared = tmp_path / "closed", tmp_path / "shared"
    closed.mkdir(mode=0o755)
    shared.mkdir()
    shared.chmod(0o1777)
    linked_dir = tmp_path / "linked"
    linked_dir.symlink_to(closed)
    assert hand_over(str(linked_dir), uid, gid, gids) == "it is a symbolic link"
    assert closed.stat().st_uid == 0
    assert hand_over(str(shared), uid, gid, gids) is None  # the user can write it: left alone
    assert shared.stat().st_uid == 0
    assert hand_over(str(closed), uid, gid, gids) is None
    assert closed.stat().st_uid == uid
    assert hand_over(str(tmp_path / "missing"), uid, gid, gids) is None


@pytest.fixture
def dropping_agent(netlab, nobody) -> Iterator[tuple[Agent, object]]:
    """An agent configured with `user: nobody` in host A, and host B to send from.

    Its files are under /tmp, not tmp_path: pytest's directories are private
    to root (0700) and nobody must reach the stats directory.
    """
    a = netlab.add_host("agent", "198.51.100.61")
    b = netlab.add_host("remote", "198.51.100.62")
    base = Path(tempfile.mkdtemp(prefix="ncs-rights-"))
    base.chmod(0o755)
    instance = make_agent(a, base, f"r{os.getpid()}", extra="user: nobody\n")
    try:
        yield instance, b
    finally:
        if instance.pid_file.exists():
            instance.cli("stop", "--timeout", "5")
        shutil.rmtree(base, ignore_errors=True)


def test_a_planted_symlink_does_not_make_root_give_a_file_away(dropping_agent, nobody) -> None:
    """Issue 10, item 8: nobody owns the stats directory and links the stats file to root's file."""
    agent, b = dropping_agent
    assert agent.cli("start").returncode == 0
    send(b, agent.host.ipv4, [10])
    assert record_of(dump_until(agent, b.ipv4, counted([10])), b.ipv4) == counted([10])
    assert agent.cli("stop").returncode == 0
    assert agent.sniffer.stat().st_uid == nobody.pw_uid  # handed over: nobody may write there

    secret = _secret(agent.sniffer.parent / "secret")
    planted = as_nobody("ln", "-sfn", str(secret), str(agent.stats_file))
    assert planted.returncode == 0, planted.stderr
    assert agent.stats_file.is_symlink()

    proc = agent.cli("start")
    assert proc.returncode == 0, proc.stderr
    assert secret.stat().st_uid == 0 and stat.S_IMODE(secret.stat().st_mode) == 0o600
    log = (agent.piddir / f"{agent.name}.log").read_text()
    assert (f"ncs-agent: '{agent.stats_file}' not handed over to user 'nobody': "
            "it is a symbolic link\n") in log
    # The dumps replace the link (rename), never write through it.
    send(b, agent.host.ipv4, [20])
    assert record_of(dump_until(agent, b.ipv4, counted([20])), b.ipv4) == counted([20])
    assert not agent.stats_file.is_symlink()
    assert agent.stats_file.stat().st_uid == nobody.pw_uid
    assert secret.read_text() == "root only\n" and secret.stat().st_uid == 0
    assert agent.cli("stop").returncode == 0


def test_the_pid_file_stays_roots_and_names_only_the_agent(dropping_agent, nobody) -> None:
    """Issue 10, item 9: a pid file naming an unrelated root process never gets it signalled."""
    agent, _b = dropping_agent
    assert agent.cli("start").returncode == 0
    pid = agent.pid()
    assert Path(f"/proc/{pid}/status").read_text().count(f"\t{nobody.pw_uid}\t") >= 1  # dropped
    assert agent.pid_file.stat().st_uid == 0  # not handed over
    sleeper = subprocess.Popen(["sleep", "60"])  # an unrelated root process
    try:
        forged = as_nobody("sh", "-c", f"echo {sleeper.pid} > {agent.pid_file}")
        assert forged.returncode != 0  # nobody may not write root's pid file
        assert agent.pid() == pid
        assert agent.cli("stop").returncode == 0
        assert not process_alive(pid)

        # However the pid got there (a pid reused after a crash, an old setup
        # that gave the file away): the verbs see a process that is not the agent.
        agent.pid_file.write_text(f"{sleeper.pid}\n")
        note = (f"ncs-agent: pid file '{agent.pid_file}' names process {sleeper.pid}, which is not "
                f"{agent.name}: ignored\n")
        status = agent.cli("status")
        assert (status.returncode, status.stdout, status.stderr) == (3, f"{agent.name} not running\n", note)
        dump = agent.cli("dump")  # USR1 would end a sleep: it must not be sent
        assert (dump.returncode, dump.stderr) == (3, f"{note}{agent.name} not running\n")
        stop = agent.cli("stop")
        assert (stop.returncode, stop.stderr) == (0, f"{note}{agent.name} not running\n")
        assert sleeper.poll() is None, f"the unrelated process got signal {-sleeper.returncode}"
        assert not agent.pid_file.exists()  # stale, so stop removed it
        agent.pid_file.write_text(f"{sleeper.pid}\n")
        start = agent.cli("start")  # replaces the stale file
        assert start.returncode == 0, start.stderr
        assert agent.pid() != sleeper.pid and agent.cli("status").returncode == 0
        assert agent.cli("stop").returncode == 0
        assert sleeper.poll() is None
    finally:
        sleeper.send_signal(signal.SIGKILL)
        sleeper.wait()


def as_user(entry: pwd.struct_passwd, func):
    """Return what FUNC() returns when called in a forked child running as ENTRY's user (real ids)."""
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child)
        try:
            os.close(reader)
            os.setgroups([])
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)
            os.write(writer, repr(func()).encode())
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as pipe:
        answer = pipe.read()
    os.waitpid(child, 0)
    return answer


def test_a_user_who_cannot_look_trusts_only_a_root_or_own_pid_file(nobody) -> None:
    """Without root, /proc does not show who holds the file: then the file's owner decides."""
    base = Path(tempfile.mkdtemp(prefix="ncs-pidview-"))
    base.chmod(0o755)
    holder = subprocess.Popen(["sleep", "60"])  # root's: nobody cannot look at its descriptors
    try:
        files = {}
        for owner in (0, 1, nobody.pw_uid):  # root, daemon (another user), nobody itself
            files[owner] = base / f"{owner}.pid"
            files[owner].write_text(f"{holder.pid}\n")
            os.chown(files[owner], owner, owner)
        seen = as_user(nobody, lambda: [running_pid(str(files[o])) for o in (0, 1, nobody.pw_uid)])
        assert seen == repr([holder.pid, None, holder.pid])
        # root can look: the sleep does not hold any of them
        assert [running_pid(str(f)) for f in files.values()] == [None, None, None]
    finally:
        holder.kill()
        holder.wait()
        shutil.rmtree(base, ignore_errors=True)


REPO = Path(__file__).resolve().parents[2]
CAP_NET_RAW = 1 << 13


def test_the_agent_captures_as_a_user_with_only_cap_net_raw(netlab, nobody) -> None:
    """What the systemd unit gives the agent (issue 10, item 12): an unprivileged user, CAP_NET_RAW alone.

    No systemd runs as PID 1 here, so the unit itself cannot be started; its
    credentials are set up by tests/support/caps.py instead, and the agent
    must still capture on a veth, count every datagram, answer the verbs
    and write its files.
    """
    a = netlab.add_host("agent", "198.51.100.71")
    b = netlab.add_host("remote", "198.51.100.72")
    base = Path(tempfile.mkdtemp(prefix="ncs-caps-"))
    base.chmod(0o755)
    try:
        agent = make_agent(a, base, f"k{os.getpid()}")
        for directory in (agent.piddir, agent.sniffer):  # as RuntimeDirectory= and StateDirectory= make them
            os.chown(directory, nobody.pw_uid, nobody.pw_gid)
        proc = a.popen([sys.executable, "-m", "tests.support.caps", "nobody", "net_raw",
                        "ncs.agent.cli:main", "--preload", "ncs.agent", "--preload", "locale", "--",
                        "-c", str(agent.config), "run"],
                       cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert proc.stderr.readline().startswith("ncs-agent: capturing on eth0 ")
        pid = agent.pid()
        assert pid == proc.pid
        status = dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                      if ":\t" in line)
        assert status["Uid"].split() == [str(nobody.pw_uid)] * 4
        for kind in ("CapPrm", "CapEff", "CapBnd", "CapAmb"):
            assert int(status[kind], 16) == CAP_NET_RAW, (kind, status[kind])
        assert status["NoNewPrivs"].strip() == "1"
        # MemoryDenyWriteExecute= of the unit forbids what this would show: a writable code mapping
        maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
        assert not [m for m in maps if m.split()[1].startswith("rwx")]

        sizes = [1, 200, 1472] + [64] * 7
        send(b, a.ipv4, sizes)
        assert record_of(dump_until(agent, b.ipv4, counted(sizes)), b.ipv4) == counted(sizes)
        assert agent.cli("status").stdout == f"{pid} {agent.name} is running\n"
        assert agent.cli("stop").returncode == 0
        assert proc.wait(timeout=10) == 0
        assert agent.stats_file.stat().st_uid == nobody.pw_uid
        assert record_of(read_stats(str(agent.stats_file)), b.ipv4) == counted(sizes)
    finally:
        shutil.rmtree(base, ignore_errors=True)
