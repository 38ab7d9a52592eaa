"""The local agent of the inventory: a UDP dump request to a live ncs-agent, then its stats file merged."""

from __future__ import annotations

import random
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.coalesce.fleet import REPO, Fleet, as_tuples, expected_merge, make_records, write_stats
from tests.support.sshd import random_loopback
from tests.support.stats import read_stats

START = 1_700_000_000


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_local_agent_is_asked_to_dump_and_merged_first(fleet: Fleet, tmp_path: Path):
    monitored = random_loopback()
    port = _free_udp_port()
    stats = tmp_path / "local.stats"
    agent = subprocess.Popen(
        [sys.executable, "-m", "ncs.agent.cli", "run", "--bpf", f"udp and host {monitored}", "--no-dns",
         "--device", "lo", "--stats", str(stats), "--port", str(port), "--host", "127.0.0.1",
         "--name", f"coalesce-local-{port}", "--piddir", str(tmp_path)],
        cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)  # capture open
        assert agent.poll() is None, agent.stderr.read() if agent.stderr else ""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for n in range(7):
                s.sendto(b"z" * (50 + n), (monitored, 9))
        time.sleep(0.5)
        assert not stats.exists()  # only the coalescer's request makes the agent write

        table = make_records(random.Random(3), 20, START, ["a.example"])
        fleet.serve_file("remote", write_stats(tmp_path / "remote.stats", table, START))
        fleet.top["local"] = {"name": "central", "stats": str(stats),
                              "update": f"127.0.0.1:{port}", "updto": 10}
        run = fleet.run()
        assert run.returncode == 0, run.stderr
        own = read_stats(str(stats)).records
        assert own["127.0.0.1"].C == 7
        composite = read_stats(str(fleet.composite))
        assert as_tuples(composite.records) == expected_merge([own, table])
        assert list(run.summary()) == ["central", "remote"]
    finally:
        agent.terminate()
        agent.wait(timeout=10)


def test_local_agent_that_does_not_answer_is_a_failure(fleet: Fleet, tmp_path: Path):
    table = make_records(random.Random(4), 20, START, ["a.example"])
    fleet.serve_file("remote", write_stats(tmp_path / "remote.stats", table, START))
    fleet.top["local"] = {"stats": str(tmp_path / "none.stats"),
                          "update": f"127.0.0.1:{_free_udp_port()}", "updto": 1}
    run = fleet.run()
    assert run.returncode == 1
    row = run.summary()["localhost"]
    assert row[1] == "failed" and "dump request to 127.0.0.1" in row[4]
    assert as_tuples(read_stats(str(fleet.composite)).records) == expected_merge([table])
