"""The composite's memory does not grow with the hosts: each host's table is unreferenced once merged."""

from __future__ import annotations

import gc
import random
import weakref
from pathlib import Path

from ncs.coalesce.composite import Composite
from ncs.coalesce.inventory import load_inventory
from ncs.coalesce.sshfetch import FetchResult, fetch_all
from ncs.stats.record import Record
from tests.coalesce.fleet import Fleet, as_tuples, expected_merge, make_records, write_stats
from tests.support.stats import StatsFile, as_file

START = 1_700_000_000
NAMES = ["a.example.com", "b.example.net", ":ns1.example.org"]


def _tables(count: int) -> list[dict[str, Record]]:
    rng = random.Random(23)
    return [make_records(rng, 50, START + 60 * i, NAMES) for i in range(count)]


def test_composite_add_keeps_no_reference_to_the_table() -> None:
    tables = _tables(3)
    built = Composite()
    refs = []
    for rank, records in enumerate(tables):
        table = StatsFile([f"start:\t{START}"], records).columns()
        built.add(rank, f"host{rank}", table)
        refs.append(weakref.ref(table))
        del table
    gc.collect()
    assert [r() is None for r in refs] == [True] * len(tables)
    assert as_tuples(as_file(built.merge.rows(built.merge.order())).records) == expected_merge(tables)


def test_tables_fetched_over_ssh_are_dropped_once_merged(fleet: Fleet, tmp_path: Path) -> None:
    tables = _tables(4)
    server = fleet.server()
    for i, records in enumerate(tables):
        fleet.serve_file(f"host{i}", write_stats(tmp_path / f"host{i}.stats", records, START), server)
    hosts = load_inventory(str(fleet.write_inventory())).hosts
    rank = {spec.name: i for i, spec in enumerate(hosts)}
    built = Composite()
    refs = []

    def merged(result: FetchResult) -> None:
        assert result.stats is not None, result.reason
        built.add(rank[result.name], result.name, result.stats, result.seconds)
        refs.append(weakref.ref(result.stats))

    results = fetch_all(hosts, jobs=2, on_done=merged)
    gc.collect()
    assert len(refs) == len(tables)
    assert [r() is None for r in refs] == [True] * len(tables), "a table was still referenced after its merge"
    assert [(r.name, r.ok, r.stats, r.records) for r in results] == [
        (f"host{i}", True, None, len(t)) for i, t in enumerate(tables)]
    assert as_tuples(as_file(built.merge.rows(built.merge.order())).records) == expected_merge(tables)
