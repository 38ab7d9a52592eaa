"""Appending snapshots: identity, traffic counted once per window, atomicity, two writers, old stores."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import duckdb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ncs.history import store as store_module
from ncs.history.query import Window, window_totals
from ncs.history.schema import LAYOUT, HistoryError, create_tables
from ncs.history.store import (
    _append_in_transaction,
    add_snapshot,
    add_snapshot_pieces,
    append,
    opened,
)
from ncs.locks import FileLock
from ncs.stats.addresses import AddressKeys
from ncs.stats.columns import StatsColumns
from ncs.stats.errors import StatsFormatError
from ncs.stats.header import time_line
from ncs.stats.record import FIELDS, NUMBER_KEYS
from ncs.stats.streamread import read_runs
from ncs.stats.writer import write_stats
from tests.history.helpers import record, snapshot, window_traffic

T0 = 1_764_000_000


def _traffic(path: Path, source: str | None = None) -> dict[str, tuple[int, int]]:
    """Return each address's stored bytes and packets (IPv4 test addresses only)."""
    with opened(str(path)) as con:
        where = "" if source is None else f"WHERE snap IN (SELECT id FROM snapshots WHERE source = '{source}')"
        rows = con.execute(f"""SELECT r.lo, sum(bytes), sum(packets) FROM counters c
                               JOIN remotes r ON c.addr = r.id {where} GROUP BY r.lo""").fetchall()
    return {f"{lo >> 24}.{lo >> 16 & 255}.{lo >> 8 & 255}.{lo & 255}": (b, c) for lo, b, c in rows}


def test_a_snapshot_is_stored_once(tmp_path: Path):
    store = tmp_path / "h.duckdb"
    table = snapshot(T0, T0 + 60, {"198.51.100.1": record(100, 2, T0, T0)})
    assert add_snapshot(str(store), table, "web") is True
    assert add_snapshot(str(store), table, "web") is False
    assert add_snapshot(str(store), table, "mail") is True  # another source is another snapshot
    with opened(str(store)) as con:
        assert con.execute("SELECT source, start, time, level, rows FROM snapshots ORDER BY id").fetchall() == [
            ("web", T0, T0 + 60, "raw", 1), ("mail", T0, T0 + 60, "raw", 1)]
    assert _traffic(store) == {"198.51.100.1": (200, 4)}


#: The addresses of `_dumps` by default, and IPv4 and IPv6 ones.
V4_ONLY = [f"203.0.113.{i}" for i in range(1, 6)]
MIXED = [f"203.0.113.{i}" for i in range(1, 9)] + [f"2001:db8:{i % 3}::{i}" for i in range(1, 9)]


def _dumps(draw_rng: random.Random, count: int, addresses: list[str] = V4_ONLY) -> list[dict]:
    """Return COUNT dumps of one data set over ADDRESSES: each window grows, or folds into a new one."""
    state: dict[str, list[int]] = {}
    dumps = []
    for k in range(count):
        now = T0 + 100 * (k + 1)
        for a in draw_rng.sample(addresses, draw_rng.randint(1, len(addresses))):
            b, c, e = state.get(a, [0, 0, now])
            if a in state and draw_rng.random() < 0.3:
                b, c, e = 0, 0, now  # the window folded: a new E, a new count
            state[a] = [b + draw_rng.randint(1, 5000), c + draw_rng.randint(1, 9), e]
        dumps.append({a: record(b, c, e, T0) for a, (b, c, e) in state.items()})
    return dumps


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), count=st.integers(1, 6))
def test_frequent_dumps_count_each_window_once(tmp_path_factory, seed, count):
    store = tmp_path_factory.mktemp("h") / "h.duckdb"
    dumps = _dumps(random.Random(seed), count)
    for k, dump in enumerate(dumps):
        add_snapshot(str(store), snapshot(T0, T0 + 100 * (k + 1), dump), "web")
    assert _traffic(store) == window_traffic(dumps)


def test_a_crash_before_commit_leaves_the_store_as_it_was(tmp_path: Path):
    store = str(tmp_path / "h.duckdb")
    first = snapshot(T0, T0 + 60, {"198.51.100.1": record(100, 2, T0, T0)})
    second = snapshot(T0, T0 + 120, {"198.51.100.2": record(7, 1, T0 + 100, T0)})
    add_snapshot(store, first, "web")
    pid = os.fork()
    if pid == 0:  # the writer dies in the middle of its transaction
        with opened(store, write=True) as con:
            con.begin()
            _append_in_transaction(con, [second], "web", T0, T0 + 120)
            os._exit(9)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 9
    assert _traffic(store) == {"198.51.100.1": (100, 2)}
    assert add_snapshot(store, second, "web") is True  # its identity was not taken either
    assert _traffic(store) == {"198.51.100.1": (100, 2), "198.51.100.2": (7, 1)}


def _writer(store: str, source: str, count: int) -> None:
    """Append COUNT snapshots of SOURCE (run in a child process)."""
    for k in range(count):
        add_snapshot(store, snapshot(T0, T0 + k + 1, {"198.51.100.9": record(k + 1, 1, T0 + k, T0)}), source)


def test_two_writers_at_once_both_land(tmp_path: Path):
    store = str(tmp_path / "h.duckdb")
    pids = []
    for source in ("one", "two"):
        pid = os.fork()
        if pid == 0:
            try:
                _writer(store, source, 15)
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    with opened(store) as con:
        assert con.execute("SELECT source, count(*) FROM snapshots GROUP BY source ORDER BY source").fetchall() == [
            ("one", 15), ("two", 15)]
    assert _traffic(store) == {"198.51.100.9": (2 * sum(range(1, 16)), 30)}


def test_a_second_writer_that_cannot_wait_fails_with_one_line(tmp_path: Path):
    store = str(tmp_path / "h.duckdb")
    holder = FileLock(store + ".lock")
    holder.acquire()
    holder.write("4242\n")
    started = time.monotonic()
    with pytest.raises(HistoryError) as err:
        add_snapshot(store, snapshot(T0, T0, {}), "web", wait=0.3)
    holder.release()
    assert time.monotonic() - started >= 0.3
    assert str(err.value) == f"{store}: in use by pid 4242; gave up after 0.3 s"
    assert not os.path.exists(store)


def test_a_store_from_before_a_field_existed_opens_and_gains_it(tmp_path: Path):
    store = str(tmp_path / "old.duckdb")
    older = [f for f in FIELDS if f.key != "L"]  # the record before the last-seen field
    con = duckdb.connect(store)
    create_tables(con, older)
    con.execute("INSERT INTO snapshots VALUES (1, 'web', ?, ?, 'raw', 1)", [T0, T0 + 60])
    con.execute("INSERT INTO taken VALUES ('web', ?, ?)", [T0, T0 + 60])
    con.execute("INSERT INTO remotes VALUES (1, false, 0, 3325256705, ?)", [T0 + 60])
    con.execute(f"INSERT INTO counters (snap, addr, bytes, packets, {', '.join(f.key for f in older)}) "
                f"VALUES (1, 1, 100, 2, 100, 2, {T0 + 5}, [], 0.0, {T0}, 0, 0.0)")
    con.close()
    with opened(store) as ro:  # read-only: L stands in from E
        assert ro.execute("SELECT count(*) FROM information_schema.columns WHERE column_name = 'L'"
                          ).fetchall() == [(0,)]
        old = window_totals(ro, Window(T0, T0 + 61))
        assert (old.fields["L"].tolist(), old.fields["E"].tolist(), old.bytes.tolist()) == ([T0 + 5], [T0 + 5], [100])
    add_snapshot(store, snapshot(T0, T0 + 120, {"198.51.100.1": record(150, 3, T0 + 5, T0)}), "web")
    with opened(store) as con2:
        assert con2.execute('SELECT snap, "L", bytes FROM counters ORDER BY snap').fetchall() == [
            (1, T0 + 5, 100), (2, T0 + 5, 50)]


def test_a_newer_layout_is_refused_with_one_line(tmp_path: Path):
    store = str(tmp_path / "new.duckdb")
    add_snapshot(store, snapshot(T0, T0, {}), "web")
    con = duckdb.connect(store)
    con.execute("UPDATE meta SET value = ? WHERE key = 'layout'", [str(LAYOUT + 1)])
    con.close()
    for write in (False, True):
        with pytest.raises(HistoryError) as err, opened(store, write=write):
            pass
        assert str(err.value) == (f"{store}: history store layout {LAYOUT + 1} is newer than this ncs "
                                  f"reads ({LAYOUT}); not opened")


@pytest.mark.parametrize("content", [b"not a database at all\n" * 100, None], ids=["garbage", "other-db"])
def test_a_file_that_is_not_a_store_is_refused_with_one_line(tmp_path: Path, content):
    store = str(tmp_path / "x.duckdb")
    if content is None:
        con = duckdb.connect(store)
        con.execute("CREATE TABLE t (a INTEGER)")
        con.close()
    else:
        Path(store).write_bytes(content)
    before = Path(store).read_bytes()
    with pytest.raises(HistoryError) as err:
        add_snapshot(store, snapshot(T0, T0, {"198.51.100.1": record(1, 1, T0, T0)}), "web")
    assert str(err.value).startswith(f"{store}: ") and "\n" not in str(err.value)
    assert Path(store).read_bytes() == before


def test_a_value_the_store_cannot_hold_is_refused_and_nothing_is_stored(tmp_path: Path):
    store = str(tmp_path / "h.duckdb")
    add_snapshot(store, snapshot(T0, T0 + 1, {"198.51.100.1": record(1, 1, T0, T0)}), "web")
    huge = snapshot(T0, T0 + 2, {"198.51.100.1": record(1, 1, T0, T0),
                                 "198.51.100.2": record(99999999999999999999, 1, T0, T0)})
    with pytest.raises(HistoryError) as err:
        add_snapshot(store, huge, "web")
    assert str(err.value) == ("web: B of 198.51.100.2 is 99999999999999999999, not a whole number of "
                              "64 bits; snapshot not stored")
    assert _traffic(store) == {"198.51.100.1": (1, 1)}


def test_append_is_column_wise_for_a_big_snapshot(tmp_path: Path):
    n = 200_000
    records = {f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}": record(i, 1, T0, T0) for i in range(n)}
    table = snapshot(T0, T0 + 1, records)
    with opened(str(tmp_path / "h.duckdb"), write=True) as con:
        started = time.monotonic()
        assert append(con, table, "big")
        assert time.monotonic() - started < 10
        assert con.execute("SELECT count(*), sum(bytes) FROM counters").fetchall() == [(n, sum(range(n)))]


def _stored(store: Path) -> list[tuple]:
    """Return every counter of STORE with its snapshot's time and its address's value."""
    with opened(str(store)) as con:
        return con.execute("""SELECT s.time, r.is6, r.hi, r.lo, r.first, c.bytes, c.packets, c."B", c."E"
                              FROM counters c JOIN remotes r ON c.addr = r.id JOIN snapshots s ON c.snap = s.id
                              ORDER BY ALL""").fetchall()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), count=st.integers(1, 5), slice_rows=st.integers(1, 4))
def test_appending_in_slices_stores_what_one_slice_stores(tmp_path_factory, seed, count, slice_rows):
    """A snapshot appended a few addresses at a time, its pieces in any order, is the one appended whole."""
    rng = random.Random(seed)
    dumps = _dumps(rng, count, MIXED)
    whole, sliced = (tmp_path_factory.mktemp("h") / "h.duckdb" for _ in range(2))
    for k, dump in enumerate(dumps):
        table = snapshot(T0, T0 + 100 * (k + 1), dump)
        add_snapshot(str(whole), table, "web")
        rows = list(range(len(table)))
        rng.shuffle(rows)
        cuts = sorted(rng.sample(range(1, len(rows)), min(3, len(rows) - 1))) if len(rows) > 1 else []
        pieces = [table.take(np.array(rows[a:b])) for a, b in zip([0, *cuts], [*cuts, len(rows)], strict=True)]
        kept = store_module.SLICE_ROWS
        store_module.SLICE_ROWS = slice_rows
        try:
            add_snapshot_pieces(str(sliced), table.header, pieces, "web")
        finally:
            store_module.SLICE_ROWS = kept
    assert _stored(sliced) == _stored(whole)


def _numbered(count: int, bytes_: int, current: int) -> StatsColumns:
    """Return a table of COUNT IPv4 addresses, each with B of BYTES in the window since T0."""
    keys = AddressKeys(np.zeros(count, bool), np.zeros(count, np.uint64),
                       np.arange(count, dtype=np.uint64) * 7 + 1)
    numbers = {key: np.full(count, T0, np.int64) for key in NUMBER_KEYS}
    numbers["B"] = np.full(count, bytes_, np.int64)
    return StatsColumns([time_line("start", T0), time_line("current", current)], keys, numbers,
                        [("a.example",)] * count)


def test_a_snapshot_far_beyond_the_writers_memory_is_appended(tmp_path: Path, monkeypatch):
    # At 3 million addresses a second snapshot, joined whole with the first,
    # ran out of the writer's 256 MB; here the same at a tenth of the scale.
    monkeypatch.setattr(store_module, "WRITER_MEMORY", "32MB")
    monkeypatch.setattr(store_module, "SLICE_ROWS", 25_000)
    store = str(tmp_path / "h.duckdb")
    assert add_snapshot(store, _numbered(300_000, 5, T0 + 60), "big") is True
    assert add_snapshot(store, _numbered(300_000, 6, T0 + 120), "big") is True
    with opened(store) as con:
        assert con.execute("SELECT s.time, count(*), sum(c.bytes) FROM counters c JOIN snapshots s "
                           "ON c.snap = s.id GROUP BY s.time ORDER BY 1").fetchall() == [
            (T0 + 60, 300_000, 5 * 300_000), (T0 + 120, 300_000, 300_000)]  # the second: 1 byte more each


def test_a_failing_append_says_duckdbs_own_reason(tmp_path: Path, monkeypatch):
    # The temporary table used to be dropped in a `finally`, whose own error
    # ("transaction is aborted") then stood for the real one.
    monkeypatch.setattr(store_module, "WRITER_MEMORY", "16MB")
    monkeypatch.setattr(store_module, "SLICE_ROWS", 10**9)
    with pytest.raises(HistoryError, match=r"^big: snapshot not stored: Out of Memory Error") as err:
        add_snapshot(str(tmp_path / "h.duckdb"), _numbered(300_000, 5, T0 + 60), "big")
    assert "aborted" not in str(err.value)


def test_a_snapshot_that_cannot_be_read_to_its_end_is_named_and_not_stored(tmp_path: Path):
    # As ncs-coalesce appends: the composite read back from its file.  A
    # broken record two thirds in gives the reader's one line (file and
    # line), not the "transaction is aborted" that followed DuckDB's failed scan.
    path = tmp_path / "c.stats"
    table = _numbered(20_000, 5, T0 + 60)
    write_stats(str(path), table)
    data = bytearray(path.read_bytes())
    at = data.index(b"\tB\t=> 5,", len(data) * 2 // 3)
    data[at:at + 8] = b"\tB\t=> -5"
    path.write_bytes(bytes(data))
    want = data[:at].count(b"\n") + 1
    store = str(tmp_path / "h.duckdb")
    with pytest.raises(StatsFormatError, match=rf"^{path}:{want}: "):
        add_snapshot_pieces(store, table.header, read_runs(str(path), piece_bytes=50_000), "c.stats")
    with opened(store) as con:
        assert con.execute("SELECT count(*) FROM snapshots").fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM counters").fetchone() == (0,)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lists=st.lists(st.lists(st.sampled_from(["a.example", "b.example", "m\u00fcnchen.example", "it's", ""]),
                               max_size=3), min_size=1, max_size=40))
def test_the_names_stored_are_the_tables(tmp_path_factory, lists):
    """Every address's names, none, one or several, come back from the store as the table had them."""
    records = {f"198.51.100.{i}": record(10 + i, 1, T0, T0, names) for i, names in enumerate(lists)}
    path = tmp_path_factory.mktemp("h") / "h.duckdb"
    add_snapshot(str(path), snapshot(T0, T0 + 100, records), "web")
    with opened(str(path)) as con:
        rows = con.execute('SELECT r.lo, c."N" FROM counters c JOIN remotes r ON c.addr = r.id').fetchall()
    assert {lo & 255: names for lo, names in rows} == {i: names for i, names in enumerate(lists)}


def test_a_writer_appends_on_one_thread_and_readers_use_the_machine(tmp_path: Path):
    # A writer's joins gain almost no wall time from a second thread and cost
    # a fifth more CPU (store_module.WRITER_THREADS); a report's queries may
    # use every core.
    store = str(tmp_path / "h.duckdb")
    assert add_snapshot(store, _numbered(1000, 5, T0 + 60), "one") is True
    with opened(store, write=True) as con:
        assert con.execute("SELECT current_setting('threads')").fetchone() == (1,)
    default = duckdb.connect(":memory:").execute("SELECT current_setting('threads')").fetchone()
    assert default != (1,), "DuckDB uses one thread here anyway: the check below proves nothing"
    with opened(store) as con:
        assert con.execute("SELECT current_setting('threads')").fetchone() == default
