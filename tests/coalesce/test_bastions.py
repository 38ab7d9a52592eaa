"""Hosts behind bastions: ~/.ssh/config ProxyJump (one hop and a chain) and ProxyCommand, with real sshd.

The lab: a bastion namespace on the test bridge, a target namespace joined
only to the bastion by a veth pair of its own, and a second target behind
that one.  The bastions do not forward packets, so the test process can
reach the targets only through SSH's direct-tcpip channels (ProxyJump) or a
command that opens one (ProxyCommand running OpenSSH's `ssh -W`).
"""

from __future__ import annotations

import random
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.coalesce.fleet import as_tuples, expected_merge, make_records, run_coalesce, write_stats
from tests.support.netns import NetLab
from tests.support.sshd import Sshd, SshdFactory, SshKey
from tests.support.stats import read_stats

START = 1_700_000_000
BASTION = "198.51.100.181"
INNER = "203.0.113.2"  # behind the bastion
INNER_SIDE = "203.0.113.1"  # the bastion's end of that link
DEEP = "203.0.114.2"  # behind the inner host
DEEP_SIDE = "203.0.114.1"


@dataclass
class Bastions:
    """The three sshd hosts, the client's files, and a stats file on each target."""

    bastion: Sshd
    inner: Sshd
    deep: Sshd
    key: SshKey
    known_hosts: Path
    tables: dict[str, dict]
    files: dict[str, Path]


@pytest.fixture
def bastions(netlab: NetLab, sshd_factory: SshdFactory, client_key: SshKey,
             tmp_path: Path) -> Bastions:
    bastion_ns = netlab.add_host("bastion", BASTION)
    inner_ns = netlab.add_hidden_host("inner", bastion_ns, INNER, INNER_SIDE)
    deep_ns = netlab.add_hidden_host("deep", inner_ns, DEEP, DEEP_SIDE)
    bastion = sshd_factory.start(address=BASTION, netns=bastion_ns.netns)
    inner = sshd_factory.start(address=INNER, netns=inner_ns.netns, reachable=False)
    deep = sshd_factory.start(address=DEEP, netns=deep_ns.netns, reachable=False)
    known = tmp_path / "known_hosts"
    for server in (bastion, inner, deep):
        server.authorize(client_key)
        with known.open("a") as f:
            f.write(server.known_hosts_line() + "\n")
    rng = random.Random(9)
    tables, files = {}, {}
    for name in ("inner", "deep"):
        tables[name] = make_records(rng, 30, START, ["a.example", "b.example"])
        files[name] = write_stats(tmp_path / f"{name}.stats", tables[name], START)
    return Bastions(bastion, inner, deep, client_key, known, tables, files)


def _coalesce(b: Bastions, tmp_path: Path, ssh_config: str, hosts: dict) -> tuple:
    """Run ncs-coalesce with SSH_CONFIG as its ssh config; returns (run, composite path)."""
    config = tmp_path / "ssh_config"
    config.write_text(ssh_config)
    inventory = tmp_path / "inventory.yaml"
    out = tmp_path / "composite.stats"
    inventory.write_text(yaml.safe_dump({
        "defaults": {"user": "root", "identity": b.key.path, "known_hosts": str(b.known_hosts),
                     "ssh_agent": False, "ssh_config": str(config), "connect_timeout": 5,
                     "timeout": 30},
        "hosts": hosts, "cache": str(out)}, sort_keys=False))
    return run_coalesce("-i", str(inventory)), out


def test_proxyjump_reaches_hosts_behind_one_and_two_bastions(bastions: Bastions, tmp_path: Path):
    b = bastions
    config = (f"Host inner\n  HostName {INNER}\n  Port 2222\n  ProxyJump root@{BASTION}:2222\n"
              f"Host deep\n  HostName {DEEP}\n  Port 2222\n"
              f"  ProxyJump root@{BASTION}:2222,root@{INNER}:2222\n")
    run, out = _coalesce(b, tmp_path, config, {
        "inner": {"command": f"cat {b.files['inner']}"},
        "deep": {"command": f"cat {b.files['deep']}"}})
    assert run.returncode == 0, run.stderr
    assert as_tuples(read_stats(str(out)).records) == expected_merge([b.tables["inner"],
                                                                      b.tables["deep"]])
    # the targets' own sshd served the commands (not the bastion's)
    for server in (b.inner, b.deep):
        assert "Accepted publickey for root" in (server.directory / "sshd.log").read_text()


def test_a_target_behind_a_bastion_is_not_reachable_directly(bastions: Bastions, netlab: NetLab,
                                                             tmp_path: Path):
    # Routed into the lab's bridge, where nobody answers for it: without the
    # bastion the host cannot be reached at all.
    subprocess.run(["ip", "route", "replace", f"{INNER}/32", "dev", netlab.bridge], check=True)
    b = bastions
    run, _ = _coalesce(b, tmp_path, f"Host inner\n  HostName {INNER}\n  Port 2222\n", {
        "inner": {"command": f"cat {b.files['inner']}", "connect_timeout": 1.5}})
    assert run.returncode == 1
    reason = run.summary()["inner"][4]
    assert reason in (f"connect to {INNER} port 2222 timed out after 1.5 s",
                      f"cannot connect to {INNER} port 2222: No route to host"), reason


def test_a_refused_jump_names_the_hop(bastions: Bastions, tmp_path: Path):
    b = bastions
    config = f"Host inner\n  HostName {INNER}\n  Port 2299\n  ProxyJump root@{BASTION}:2222\n"
    run, _ = _coalesce(b, tmp_path, config, {"inner": {"command": "true"}})
    assert run.returncode == 1
    reason = run.summary()["inner"][4]
    assert reason.startswith(f"jump host {BASTION}: cannot reach {INNER} port 2299:"), reason


@pytest.mark.skipif(shutil.which("ssh") is None, reason="the OpenSSH client (ssh) is not installed")
def test_proxycommand_carries_the_connection(bastions: Bastions, tmp_path: Path):
    b = bastions
    hop = (f"ssh -q -i {b.key.path} -o BatchMode=yes -o UserKnownHostsFile={b.known_hosts}"
           f" -o StrictHostKeyChecking=yes -p 2222 -W %h:%p root@{BASTION}")
    config = f"Host inner\n  HostName {INNER}\n  Port 2222\n  ProxyCommand {hop}\n"
    run, out = _coalesce(b, tmp_path, config, {"inner": {"command": f"cat {b.files['inner']}"}})
    assert run.returncode == 0, run.stderr
    assert as_tuples(read_stats(str(out)).records) == expected_merge([b.tables["inner"]])
    # the same from the inventory, with ssh_config's proxy turned off
    run, out = _coalesce(b, tmp_path, "Host inner\n  ProxyCommand none\n", {
        "inner": {"address": INNER, "port": 2222, "proxy_command": hop,
                  "command": f"cat {b.files['inner']}"}})
    assert run.returncode == 0, run.stderr
