"""ncs-coalesce appends every composite it writes to a history store (by default beside it)."""

from __future__ import annotations

import random
from pathlib import Path

from ncs.history.store import opened
from tests.coalesce.fleet import Fleet, make_records, write_stats

START = 1_700_000_000


def _serve_one(fleet: Fleet, tmp_path: Path) -> int:
    """Serve one host's stats file; return the sum of its B."""
    records = make_records(random.Random(4), 30, START, ["a.example"])
    path = tmp_path / "one.stats"
    write_stats(path, records, START)
    fleet.serve_file("one", path)
    return sum(r.B for r in records.values())


def test_every_composite_lands_in_the_store_beside_it(fleet: Fleet, tmp_path: Path):
    total = _serve_one(fleet, tmp_path)
    run = fleet.run("--force", "--keep", "raw=1d")
    assert run.returncode == 0, run.stderr
    store = str(fleet.composite) + ".history.duckdb"
    with opened(store) as con:
        assert con.execute("SELECT source, level, rows FROM snapshots").fetchall() == [
            ("composite.stats", "raw", 30)]
        assert con.execute("SELECT sum(bytes) FROM counters").fetchall() == [(total,)]
        assert con.execute("SELECT value FROM meta WHERE key = 'keep'").fetchall() == [
            ("raw=1d,hour=30d,day=400d",)]


def test_no_history_and_a_broken_store(fleet: Fleet, tmp_path: Path):
    _serve_one(fleet, tmp_path)
    run = fleet.run("--force", "--no-history")
    assert run.returncode == 0, run.stderr
    assert not Path(str(fleet.composite) + ".history.duckdb").exists()
    broken = tmp_path / "broken.duckdb"
    broken.write_text("not a store\n" * 500)
    run = fleet.run("--force", "--history", str(broken))
    assert run.returncode == 1
    lines = [line for line in run.stderr.splitlines() if "history" in line]
    assert len(lines) == 1 and lines[0].startswith(f"ncs-coalesce: history: {broken}: cannot open: ")
    assert fleet.composite.exists()  # the composite is written whatever the store says
