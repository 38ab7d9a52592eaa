"""A live agent with `history:` appends each dump from its dump child, each window counted once."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from ncs.history.schema import HistoryError
from ncs.history.store import opened
from tests.agent.test_live import AGENT, dump_now, read_until, wait_for
from tests.support.stats import read_stats

A4, B4 = "198.51.100.31", "198.51.100.32"
SIZES = [10, 200, 1400]


def _snapshots(store: Path) -> list[tuple]:
    """Return (time, rows, bytes of B4's address) per stored snapshot, [] while none is readable."""
    try:
        with opened(str(store), wait=5) as con:
            return con.execute(
                """SELECT s.time, s.rows, sum(c.bytes) FROM snapshots s JOIN counters c ON c.snap = s.id
                GROUP BY s.id, s.time, s.rows ORDER BY s.id""").fetchall()
    except HistoryError:
        return []


def test_live_dumps_go_to_the_store(netlab, tmp_path: Path):
    a = netlab.add_host("a", A4)
    b = netlab.add_host("b", B4)
    stats, store = tmp_path / "live.stats", tmp_path / "history.duckdb"
    agent = a.popen([AGENT, "run", "--bpf", f"host {A4} and udp", "--no-dns", "--stats", str(stats),
                     "--device", a.ifname, "--history", str(store), "--name", "edge"],
                    stderr=subprocess.PIPE, text=True)
    read_until(agent.stderr, "capturing on eth0")
    sender = ("import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
              f"for n in {SIZES!r}: s.sendto(b'u'*n,('{A4}',9))\n")
    sent = 0
    for round_ in (1, 2):
        b.run([sys.executable, "-c", sender])
        sent += sum(14 + 20 + 8 + n for n in SIZES)
        time.sleep(0.5)
        dump_now(agent, stats)
        wait_for(lambda n=round_: len(_snapshots(store)) == n, what=f"snapshot {round_} in the store")
        assert read_stats(str(stats)).records[B4].B == sent
    agent.send_signal(signal.SIGTERM)
    assert agent.wait(timeout=15) == 0, agent.stderr.read()
    snaps = _snapshots(store)
    # two dumps of one window (same E): the second adds only what came after the first
    assert [s[2] for s in snaps[:2]] == [sum(14 + 20 + 8 + n for n in SIZES)] * 2
    assert sum(s[2] for s in snaps) == sent
    with opened(str(store)) as con:
        assert {r[0] for r in con.execute("SELECT source FROM snapshots").fetchall()} == {"edge"}
