"""compression: true over a real sshd: the same composite, and the connection really compressed."""

from __future__ import annotations

import random
import re
import time
from pathlib import Path

from tests.coalesce.fleet import Fleet, as_tuples, expected_merge, make_records, write_stats
from tests.support.stats import read_stats

START = 1_700_000_000
NAMES = ["a.example.com", "b.example.net", "c.example.org"]
# sshd at DEBUG1 logs each direction's algorithms once the key exchange has chosen them
KEX_LINE = re.compile(r"kex: (client->server|server->client) cipher: \S+ MAC: \S+ compression: (\S+)")
# and, at VERBOSE, the bytes that went over the wire when a connection closes
TRANSFERRED = re.compile(r"Transferred: sent (\d+), received \d+ bytes")


def _negotiated(log: Path) -> list[tuple[str, str]]:
    """Return (direction, compression) of every key exchange sshd logged, in order."""
    return KEX_LINE.findall(log.read_text(errors="replace"))


def _sent(log: Path, connections: int) -> list[int]:
    """Return the bytes sshd sent on each closed connection, once CONNECTIONS have closed (10 s at most)."""
    deadline = time.monotonic() + 10
    while len(sent := [int(n) for n in TRANSFERRED.findall(log.read_text(errors="replace"))]) < connections:
        assert time.monotonic() < deadline, f"sshd logged {len(sent)} closed connections, not {connections}"
        time.sleep(0.05)
    return sent


def test_compressed_fetch_gives_the_same_composite(fleet: Fleet, tmp_path: Path) -> None:
    rng = random.Random(11)
    tables = [make_records(rng, 120, START + 60 * i, NAMES, prefix=f"198.51.{100 + i}.")
              for i in range(2)]
    server = fleet.server(log_level="DEBUG1")
    log = server.directory / "sshd.log"
    for i, table in enumerate(tables):
        fleet.serve_file(f"host{i}", write_stats(tmp_path / f"host{i}.stats", table, START), server)

    plain = fleet.run("--output", str(tmp_path / "plain.stats"))
    assert plain.returncode == 0, plain.stderr
    assert sorted(set(_negotiated(log))) == [("client->server", "none"), ("server->client", "none")]

    seen = len(_negotiated(log))
    size = sum(p.stat().st_size for p in tmp_path.glob("host*.stats"))
    assert sum(_sent(log, 2)) > size  # uncompressed: every byte of both files, and SSH's own
    for host in fleet.hosts:
        host.settings["compression"] = True
    packed = fleet.run("--output", str(tmp_path / "packed.stats"))
    assert packed.returncode == 0, packed.stderr
    assert sorted(set(_negotiated(log)[seen:])) == [("client->server", "zlib@openssh.com"),
                                                   ("server->client", "zlib@openssh.com")]
    assert sum(_sent(log, 4)[2:]) < size / 2  # stats text compresses well: the zlib really ran

    with_zlib, without = read_stats(str(tmp_path / "packed.stats")), read_stats(str(tmp_path / "plain.stats"))
    assert as_tuples(with_zlib.records) == as_tuples(without.records) == expected_merge(tables)
    assert list(with_zlib.records) == list(without.records)
