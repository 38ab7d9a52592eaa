"""Fetching over real sshd (loopback): merge of several hosts, legacy exec+SFTP, forced commands, ssh config."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ncs.coalesce.inventory import DEFAULT_COMMAND
from tests.coalesce.fleet import (
    REPO,
    Fleet,
    as_tuples,
    expected_merge,
    make_records,
    run_coalesce,
    write_stats,
)
from tests.support.stats import read_stats

START = 1_700_000_000
NAMES = ["a.example.com", "b.example.net", "c.example.org", ":soa.example.com"]


def _host_files(tmp_path: Path, count: int, seed: int, size: int = 40):
    rng = random.Random(seed)
    tables = [make_records(rng, size, START + 60 * i, NAMES) for i in range(count)]
    paths = [write_stats(tmp_path / f"src{i}.stats", t, START + 60 * i, hits=10 + i,
                         rate=100 + i, label=f"src{i}")
             for i, t in enumerate(tables)]
    return tables, paths


def test_three_hosts_are_fetched_and_merged(fleet: Fleet, tmp_path: Path):
    tables, paths = _host_files(tmp_path, 3, seed=1)
    for i, path in enumerate(paths):
        fleet.serve_file(f"host{i}", path)
    run = fleet.run()
    assert run.returncode == 0, run.stderr
    composite = read_stats(str(fleet.composite))
    assert as_tuples(composite.records) == expected_merge(tables)
    assert composite.header_value("composite") == "3 sources ok, 0 failed"
    assert composite.header_number("hits") == 10 + 11 + 12
    assert composite.header_number("bytes") == 100 + 101 + 102
    summary = run.summary()
    assert [summary[f"host{i}"][1:3] for i in range(3)] == [["ok", "40"]] * 3
    assert run.totals() == (3, 3, 0, 120, len(composite.records))
    quiet = fleet.run("-q", "--force")
    assert quiet.returncode == 0 and quiet.totals() is None and not quiet.summary(), quiet.stderr


LEGACY_TEXT = """
# Net::Connection::Sniffer version 0.31
# start:        1145923212,     Mon Apr 24 17:00:12 2006
# current:      1145923334,     Mon Apr 24 17:02:14 2006
# hits:         3832 per minute
# bytes:        5927 per second
# users:        2 users now
# device:       eth1:1  non-promiscuous
# bpf:          dst host my.host.com
{
  my $dump = {
    '198.51.100.7'       => {
        B       => 240,
        C       => 4,
        E       => 1145760699,
        N       => ['hostname1','a.example.com',],
        R       => 723,
        S       => 1145757331,
        T       => 1145790478,
        W       => 43359,
    },
    '203.0.113.9'       => {
        B       => 100,
        C       => 1,
        E       => 1145760000,
        N       => [],
        R       => 0,
        S       => 1145757331,
        T       => 0,
        W       => 0,
    },
  };
}
"""


def test_legacy_host_exec_then_sftp_fetch(fleet: Fleet, tmp_path: Path):
    tables, paths = _host_files(tmp_path, 1, seed=2)
    fleet.serve_file("modern", paths[0])
    # `exec` produces the file that `fetch` then reads: it must run first.
    original = tmp_path / "original.stats"
    original.write_text(LEGACY_TEXT)
    fetched = tmp_path / "legacy-dump" / "nc.sniffer.stats"
    fleet.add("oldbox", exec=f"mkdir -p {fetched.parent} && cp {original} {fetched}",
              fetch=str(fetched))
    run = fleet.run()
    assert run.returncode == 0, run.stderr
    # The original's file has no L: it reads as the record's E.
    legacy = {
        "198.51.100.7": (240, 4, 1145760699, 1145757331, 723, 43359, 1145790478, 1145760699,
                         ("hostname1", "a.example.com")),
        "203.0.113.9": (100, 1, 1145760000, 1145757331, 0, 0, 0, 1145760000, ()),
    }
    want = expected_merge([tables[0]])
    for addr, rec in legacy.items():
        if addr in want:
            b, c, e, s, r, w, t, last, n = want[addr]
            want[addr] = (b + rec[0], c + rec[1], max(e, rec[2]), min(s, rec[3]), r + rec[4],
                          w + rec[5], max(t, rec[6]), max(last, rec[7]),
                          n + tuple(x for x in rec[8] if x not in n))
        else:
            want[addr] = rec
    composite = read_stats(str(fleet.composite))
    assert as_tuples(composite.records) == want
    assert "[oldbox] Net::Connection::Sniffer version 0.31" in composite.header
    assert run.summary()["oldbox"][1:3] == ["ok", "2"]


def test_forced_command_key_ignores_the_requested_command(fleet: Fleet, tmp_path: Path):
    # The restricted key of docs/coalesce.md: the server runs its own command,
    # whatever the client asks for (here the default dump command).
    tables, paths = _host_files(tmp_path, 1, seed=3)
    server = fleet.factory.start()
    server.authorize(fleet.key, options=f'command="cat {paths[0]}",restrict')
    fleet.known_hosts.open("a").write(server.known_hosts_line() + "\n")
    fleet.add("restricted", server)
    run = fleet.run()
    assert run.returncode == 0, run.stderr
    assert as_tuples(read_stats(str(fleet.composite)).records) == expected_merge(tables)
    assert fleet.hosts[0].settings.get("command") is None  # the default dump command was sent
    assert DEFAULT_COMMAND.startswith("ncs-agent dump")


def test_ssh_config_supplies_hostname_port_user_and_key(fleet: Fleet, tmp_path: Path):
    tables, paths = _host_files(tmp_path, 1, seed=4)
    server = fleet.server()
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text(
        "Host statsbox\n"
        f"  HostName {server.address}\n  Port {server.port}\n  User root\n"
        f"  IdentityFile {fleet.key.path}\n  UserKnownHostsFile {fleet.known_hosts}\n")
    inventory = tmp_path / "inv.yaml"
    inventory.write_text(yaml.safe_dump({
        "defaults": {"ssh_config": str(ssh_config), "ssh_agent": False, "connect_timeout": 3},
        "hosts": {"statsbox": {"command": f"cat {paths[0]}"}},
    }))
    out = tmp_path / "out.stats"
    run = run_coalesce("-i", str(inventory), "-o", str(out))
    assert run.returncode == 0, run.stderr
    assert as_tuples(read_stats(str(out)).records) == expected_merge(tables)


def test_accept_new_remembers_an_unknown_host_key(fleet: Fleet, tmp_path: Path):
    tables, paths = _host_files(tmp_path, 1, seed=5)
    server = fleet.factory.start()
    server.authorize(fleet.key)
    fleet.serve_file("newbox", paths[0], server, host_key_check="accept-new")
    assert not fleet.known_hosts.exists()
    run = fleet.run()
    assert run.returncode == 0, run.stderr
    assert fleet.known_hosts.read_text().split() == server.known_hosts_line().split()
    # the remembered key is now enforced: the same inventory in strict mode works
    fleet.hosts[0].settings["host_key_check"] = "strict"
    assert fleet.run("--force").returncode == 0


def test_key_from_ssh_agent(fleet: Fleet, tmp_path: Path):
    if shutil.which("ssh-agent") is None:
        pytest.skip("ssh-agent (openssh-client) is not installed")
    tables, paths = _host_files(tmp_path, 1, seed=6)
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        for _ in range(50):
            if sock.exists():
                break
            time.sleep(0.05)
        subprocess.run(["ssh-add", "-q", fleet.key.path], env=env, check=True, capture_output=True)
        server = fleet.server()
        inventory = tmp_path / "inv.yaml"
        inventory.write_text(yaml.safe_dump({
            "defaults": {"user": "root", "known_hosts": str(fleet.known_hosts), "ssh_agent": True,
                         "ssh_config": False, "connect_timeout": 3},
            "hosts": {"viaagent": {"address": server.address, "port": server.port,
                                   "command": f"cat {paths[0]}"}},
        }))
        out = tmp_path / "out.stats"
        proc = subprocess.run([sys.executable, "-m", "ncs.coalesce.cli", "-i", str(inventory), "-o", str(out)],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert as_tuples(read_stats(str(out)).records) == expected_merge(tables)
    finally:
        agent.terminate()
        agent.wait()
