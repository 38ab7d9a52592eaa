"""compression: true over a real sshd: the same composite, and sshd negotiated zlib both ways."""

from __future__ import annotations

import random
import re
from pathlib import Path

from tests.coalesce.fleet import Fleet, as_tuples, expected_merge, make_records, write_stats
from tests.support.stats import read_stats

START = 1_700_000_000
NAMES = ["a.example.com", "b.example.net", "c.example.org"]
# sshd at DEBUG1 logs each direction's algorithms once the key exchange has chosen them
KEX_LINE = re.compile(r"kex: (client->server|server->client) cipher: \S+ MAC: \S+ compression: (\S+)")


def _negotiated(log: Path) -> list[tuple[str, str]]:
    """Return (direction, compression) of every key exchange sshd logged, in order."""
    return KEX_LINE.findall(log.read_text(errors="replace"))


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
    for host in fleet.hosts:
        host.settings["compression"] = True
    packed = fleet.run("--output", str(tmp_path / "packed.stats"))
    assert packed.returncode == 0, packed.stderr
    assert sorted(set(_negotiated(log)[seen:])) == [("client->server", "zlib@openssh.com"),
                                                   ("server->client", "zlib@openssh.com")]

    with_zlib, without = read_stats(str(tmp_path / "packed.stats")), read_stats(str(tmp_path / "plain.stats"))
    assert as_tuples(with_zlib.records) == as_tuples(without.records) == expected_merge(tables)
    assert list(with_zlib.records) == list(without.records)
