"""End to end: three namespace hosts, each with sshd and a live ncs-agent; the composite is their sum.

Each host's sshd runs inside its namespace, so the dump command runs there too.
The client key is restricted on every host to that host's own dump command
(`command="ncs-agent -c CONF dump --wait --max-age 300 --print",restrict`),
while the inventory sends the default command: the forced command of
docs/coalesce.md.  `ncs-agent` is found through PATH, which the sshd fixture
sets with SetEnv (the project's venv first).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.coalesce.fleet import as_tuples, expected_merge, run_coalesce
from tests.support.sshd import SshdFactory, SshKey
from tests.support.stats import read_stats

HOSTS = {"ns-a": "198.51.100.71", "ns-b": "198.51.100.72", "ns-c": "198.51.100.73"}
PORT = 9  # discard: nobody listens, the agents only count


def _agent_config(directory: Path, name: str, address: str) -> Path:
    directory.mkdir(parents=True)
    conf = directory / "agent.yaml"
    conf.write_text(yaml.safe_dump({
        "name": name, "piddir": str(directory), "sniffer": str(directory),
        "bpf": f"udp and host {address}", "dns": False,
    }))
    return conf


def _send_from(host, target: str, sizes: list[int]) -> None:
    """Send UDP datagrams of SIZES to TARGET from inside HOST's namespace."""
    code = ("import socket, sys; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "for n in sys.argv[2:]: s.sendto(b'x' * int(n), (sys.argv[1], 9))")
    host.run([sys.executable, "-c", code, target, *map(str, sizes)])


def test_composite_equals_the_sum_of_three_live_agents(netlab, sshd_factory: SshdFactory,
                                                       client_key: SshKey, tmp_path: Path):
    known_hosts = tmp_path / "known_hosts"
    inventory: dict = {
        "defaults": {"user": "root", "identity": client_key.path, "known_hosts": str(known_hosts),
                     "ssh_agent": False, "ssh_config": False, "connect_timeout": 5, "timeout": 40},
        "hosts": {},
    }
    hosts, configs = {}, {}
    for name, address in HOSTS.items():
        host = netlab.add_host(name, address)
        conf = _agent_config(tmp_path / name, f"agent-{name}", address)
        host.run([sys.executable, "-m", "ncs.agent.cli", "-c", str(conf), "start"])
        server = sshd_factory.start(address=address, port=2222, netns=host.netns)
        server.authorize(client_key, options=(
            f'command="ncs-agent -c {conf} dump --wait --max-age 300 --print",restrict'))
        with known_hosts.open("a") as f:
            f.write(server.known_hosts_line() + "\n")
        inventory["hosts"][name] = {"address": address, "port": 2222}
        hosts[name], configs[name] = host, conf
    try:
        # Traffic: from the root side to every host, and between the hosts,
        # so that the agents share remote addresses and the merge has sums to do.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i, address in enumerate(HOSTS.values()):
                for n in range(5 + i):
                    s.sendto(b"r" * (100 + 10 * n), (address, PORT))
        names = list(HOSTS)
        for i, name in enumerate(names):
            _send_from(hosts[name], HOSTS[names[(i + 1) % 3]], [200, 300, 400 + i])
        time.sleep(1.0)  # let the agents' capture loops see every packet

        inv_path = tmp_path / "inventory.yaml"
        inv_path.write_text(yaml.safe_dump(inventory))
        out = tmp_path / "composite.stats"
        run = run_coalesce("-i", str(inv_path), "-o", str(out))
        assert run.returncode == 0, run.stderr
        own = [read_stats(str(tmp_path / n / f"agent-{n}.stats")).records for n in names]
        composite = read_stats(str(out))
        assert as_tuples(composite.records) == expected_merge(own)
        # the agents really captured: every one saw the root side, and one peer host
        assert all(t["198.51.100.1"].C >= 5 for t in own)
        assert composite.records["198.51.100.1"].C == sum(t["198.51.100.1"].C for t in own)
        assert set(composite.records) == {"198.51.100.1", *HOSTS.values()}
    finally:
        for name, conf in configs.items():
            subprocess.run(hosts[name].cmd([sys.executable, "-m", "ncs.agent.cli", "-c", str(conf), "stop"]),
                           capture_output=True, timeout=30)
