"""The composite on a full disk: ncs-coalesce says so in one line and the previous composite stays whole."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from pathlib import Path

from ncs.stats.record import Record
from tests.coalesce.fleet import Fleet, write_stats
from tests.support.stats import read_stats

START = 1_700_000_000


def _records(count: int) -> dict[str, Record]:
    """Return COUNT named records (about 120 bytes each in a stats file)."""
    return {str(ipaddress.IPv4Address(0xC6336400 + i)): Record(
        B=1000 + i, C=1 + i % 7, E=START + i, S=START - 60, R=i, W=2 * i, T=START + 3600,
        N=[f"host-{i:05d}.example.com"]) for i in range(count)}


def test_a_composite_that_does_not_fit_leaves_the_previous_one(fleet: Fleet, tmp_path: Path,
                                                                 tmpfs: Callable[..., Path]) -> None:
    disk = tmpfs("64k")
    output = disk / "composite.stats"
    source = tmp_path / "host.stats"
    fleet.serve_file("host", write_stats(source, _records(20), START))
    # the composite alone on the tmpfs (the history store has tests of its own)
    first = fleet.run("--output", str(output), "--no-history")
    assert first.returncode == 0, first.stderr
    previous = output.read_bytes()
    assert len(read_stats(str(output)).records) == 20

    # about 250 KiB of composite: the 64 KiB file system holds the old one, not the new
    write_stats(source, _records(2000), START)
    run = fleet.run("--output", str(output), "--force", "--no-history")
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    assert run.summary()["host"][1:3] == ["ok", "2000"]  # the fetch itself went well
    own = [line for line in run.stderr.splitlines() if line.startswith("ncs-coalesce:")]
    assert own == [f"ncs-coalesce: {output}: cannot write: No space left on device"], run.stderr
    assert output.read_bytes() == previous
    assert sorted(p.name for p in disk.iterdir()) == ["composite.stats"]
