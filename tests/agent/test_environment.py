"""What check_environment finds, and the runner capturing with exactly that (nothing looked up again)."""

from __future__ import annotations

from pathlib import Path

from ncs.agent.config import AgentConfig, resolve_config
from ncs.agent.environment import Environment, check_environment
from ncs.agent.runner import run_foreground
from tests.support.pcapgen import LINKTYPE_EN10MB, Pkt
from tests.support.stats import read_stats

ME = "198.51.100.10"


def test_check_finds_the_addresses_and_the_device(tmp_path: Path) -> None:
    cfg = resolve_config({}, {"bpf": "udp and host 127.0.0.1", "stats": str(tmp_path / "a.stats")})
    env = check_environment(cfg, need_piddir=False, to_stderr=False)
    assert env == Environment(["127.0.0.1"], "lo", False)
    replay = resolve_config({}, {"bpf": f"host {ME}", "read": "-", "stats": "-"})
    assert check_environment(replay, need_piddir=False, to_stderr=True) == Environment([ME], None, False)


def test_the_runner_takes_the_addresses_it_is_given(pcap_writer, tmp_path: Path) -> None:
    # The bpf names no host: the runner would fail if it looked the addresses up again.
    path, _frames = pcap_writer("in.pcap", LINKTYPE_EN10MB,
                                [Pkt("203.0.113.5", ME, 1_700_000_000 + i) for i in range(3)])
    stats = tmp_path / "out.stats"
    cfg = AgentConfig(bpf="udp", read=path, stats=str(stats), dns=False)
    assert run_foreground(cfg, Environment([ME], None, False)) == 0
    written = read_stats(str(stats))
    assert written.records["203.0.113.5"].C == 3
    assert written.header_value("monitored") == ME
