"""The Parquet export: one directory per day, the documented columns, the store's sums."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from ncs.history.export import export_parquet
from ncs.history.schema import HistoryError
from ncs.history.store import add_snapshot, opened
from tests.history.helpers import record, snapshot

T0 = 1_764_028_800  # a UTC midnight
COLUMNS = ["source", "level", "start", "time", "address", "is6", "hi", "lo", "bytes", "packets",
           "B", "C", "E", "L", "N", "R", "S", "T", "W"]


@pytest.fixture
def store(tmp_path: Path) -> str:
    path = str(tmp_path / "h.duckdb")
    for day in range(3):
        t = T0 + day * 86400 + 3600
        add_snapshot(path, snapshot(t, t, {
            "198.51.100.7": record(100 + day, 1, t, t, ["a.example"]),
            "2001:db8:0:1::abcd": record(7000, 9, t, t)}), "web")
    return path


def test_the_export_has_a_directory_per_day_and_the_store_sums(store: str, tmp_path: Path):
    out = tmp_path / "parquet"
    with opened(store) as con:
        assert export_parquet(con, str(out)) == 6
    assert sorted(p.name for p in out.iterdir()) == ["day=2025-11-25", "day=2025-11-26", "day=2025-11-27"]
    files = sorted(out.glob("day=*/*.parquet"))
    assert pq.read_schema(files[0]).names == COLUMNS  # the day is the directory, as the docs say
    other = duckdb.connect()
    rows = other.execute(
        f"SELECT day, address, sum(bytes) FROM read_parquet('{out}/*/*.parquet', hive_partitioning = true) "
        "GROUP BY ALL ORDER BY ALL").fetchall()
    assert [(str(d), a, b) for d, a, b in rows] == [
        ("2025-11-25", "198.51.100.7", 100), ("2025-11-25", "2001:0db8:0000:0001:0000:0000:0000:abcd", 7000),
        ("2025-11-26", "198.51.100.7", 101), ("2025-11-26", "2001:0db8:0000:0001:0000:0000:0000:abcd", 7000),
        ("2025-11-27", "198.51.100.7", 102), ("2025-11-27", "2001:0db8:0000:0001:0000:0000:0000:abcd", 7000)]
    names = other.execute(f"SELECT DISTINCT N FROM read_parquet('{out}/*/*.parquet') WHERE NOT is6").fetchall()
    assert names == [(["a.example"],)]


def test_the_export_writes_into_an_empty_directory_only(store: str, tmp_path: Path):
    out = tmp_path / "parquet"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with opened(store) as con, pytest.raises(HistoryError) as err:
        export_parquet(con, str(out))
    assert str(err.value) == f"{out}: not empty; the export writes into a new or empty directory"
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
