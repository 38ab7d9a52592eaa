"""Opening a history store and appending a snapshot to it, atomically and once.

A snapshot is a stats table (`StatsColumns`) with its source's name; its
identity is (source, the file's `start`, the file's `current`): appending
the same identity again stores nothing.  Its time is the file's `current`.

What a snapshot adds to the history is its traffic, the columns `bytes` and
`packets`: a record's B and C (its window since E), less what the previous
snapshot of the same source and data set (same `start`) already counted of
that window (same E); a record whose window folded (a new E) adds its new
window whole.  Summing `bytes` over snapshots therefore counts each window
once however often an agent dumps.

One writer at a time: a writer takes `STORE.lock` exclusively, readers
share it (DuckDB lets no reader in while a writer has the file), each
waiting up to a given time, then failing with one line.  An append is one transaction: a crash
before its commit leaves the store as it was.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain

import duckdb
import numpy as np
import pyarrow as pa

from ncs.history.retention import Keep, apply_keep, set_keep, stored_keep
from ncs.history.schema import (
    HistoryError,
    add_fields,
    check_layout,
    create_tables,
    missing_fields,
    scalar,
)
from ncs.locks import FileLock, LockBusy
from ncs.stats.columns import StatsColumns
from ncs.stats.errors import StatsFormatError
from ncs.stats.header import header_number
from ncs.stats.record import FIELDS, NAMES_KEY

#: DuckDB's memory bound for a writer's connection.
WRITER_MEMORY = "256MB"
#: DuckDB's worker threads for a writer's connection.  An append is a chain
#: of joins on one slice at a time, which a second thread hardly shortens:
#: appending the fleet benchmark's composite (3 million addresses) took
#: 7.7-10.9 s of CPU and 7.8-11.0 s of wall time on one thread, 10.4-12.2 s
#: of CPU and 8.3-9.9 s of wall time on two (alternating runs, load 1).
#: Readers keep DuckDB's default of a thread per core.
WRITER_THREADS = 1
#: Addresses a snapshot is appended by at a time (see `_append_in_transaction`).
SLICE_ROWS = 250_000
#: How long a writer or reader waits for another one by default, in seconds.
DEFAULT_WAIT = 30.0


def lock_path(path: str) -> str:
    """Return the lock file of the store PATH."""
    return path + ".lock"


def one_line(err: BaseException) -> str:
    """Return the first line of ERR's text (DuckDB's messages run over several)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


@contextlib.contextmanager
def opened(path: str, write: bool = False, wait: float = DEFAULT_WAIT) -> Iterator[duckdb.DuckDBPyConnection]:
    """Yield a connection to the store PATH under its lock; creates it when WRITE and missing.

    A store opened for writing gains the columns of fields it lacks
    (`ncs.history.schema`).  Raises HistoryError (one line, naming PATH)
    when the lock stays taken for WAIT seconds, or the file is missing (for
    reading), unreadable or not a store this ncs reads.
    """
    if not write and not os.path.exists(path):
        raise HistoryError(f"{path}: no such history store")
    # Readers share the lock and need no write access; a store no writer made has no lock file.
    reader_alone = not write and not os.path.exists(lock_path(path))
    lock = FileLock(lock_path(path), shared=not write)
    try:
        if not reader_alone:
            lock.acquire(wait=wait)
    except LockBusy as err:
        who = f"pid {err.note}" if err.note.isdigit() else "another process"
        raise HistoryError(f"{path}: in use by {who}; gave up after {wait:g} s") from None
    except OSError as err:
        raise HistoryError(f"{lock.path}: cannot lock: {err.strerror or err}") from None
    try:
        if write:
            lock.write(f"{os.getpid()}\n")
        con = _connect(path, write)
        try:
            yield con
        finally:
            con.close()
    finally:
        if write:
            lock.write("")
        lock.release()


def _connect(path: str, write: bool) -> duckdb.DuckDBPyConnection:
    """Return a checked connection to PATH (see `opened`); raises HistoryError."""
    fresh = write and (not os.path.exists(path) or os.path.getsize(path) == 0)
    try:
        # A writer is ncs-coalesce or an agent's dump child: bounded, spilling
        # beside the store past the bound, rather than DuckDB's default of
        # most of the machine's memory on top of a fleet's composite; and on
        # one thread (WRITER_THREADS).
        config = {"memory_limit": WRITER_MEMORY, "threads": WRITER_THREADS,
                  "preserve_insertion_order": False} if write else {}
        con = duckdb.connect(path, read_only=not write, config=config)
    except duckdb.Error as err:
        raise HistoryError(f"{path}: cannot open: {one_line(err)}") from None
    try:
        if fresh:
            con.begin()
            create_tables(con)
            con.commit()
        check_layout(con, path)
        missing = missing_fields(con)
        if write and missing:
            con.begin()
            add_fields(con, missing)
            con.commit()
    except duckdb.Error as err:
        con.close()
        raise HistoryError(f"{path}: {one_line(err)}") from None
    except HistoryError:
        con.close()
        raise
    return con


def snapshot_time(header: Sequence[str], source: str) -> tuple[int, int]:
    """Return (start, current) of a stats HEADER as whole seconds; current defaults to start.

    Raises HistoryError (naming SOURCE) when the header has no start time.
    """
    start, current = header_number(list(header), "start"), header_number(list(header), "current")
    if start is None:
        raise HistoryError(f"{source or 'snapshot'}: the header has no start time")
    return int(start), int(start if current is None else current)


#: The rows of a snapshot as they enter the store: the address, then every field.
ARROW_SCHEMA = pa.schema(
    [("is6", pa.bool_()), ("hi", pa.uint64()), ("lo", pa.uint64())]
    + [(f.key, pa.list_(pa.string()) if f.key == NAMES_KEY else pa.float64() if f.type is float
        else pa.int64()) for f in FIELDS])


def arrow_columns(table: StatsColumns, source: str) -> pa.Table:
    """Return TABLE as an Arrow table of the counters' address and field columns (`ARROW_SCHEMA`).

    Raises HistoryError (naming SOURCE, the key and the address) for an
    integer field whose value is not a whole number that fits 64 bits.
    """
    columns: dict[str, pa.Array] = {
        "is6": pa.array(table.keys.is6), "hi": pa.array(table.keys.hi), "lo": pa.array(table.keys.lo)}
    for f in FIELDS:
        if f.key == NAMES_KEY:
            columns[f.key] = _names_column(table.names)
            continue
        values = table.column(f.key)
        if f.type is float:
            columns[f.key] = pa.array(values.astype(np.float64))
        elif values.dtype == np.int64:
            columns[f.key] = pa.array(values)
        else:
            columns[f.key] = pa.array(_whole_numbers(values, f.key, table, source))
    return pa.table(columns, schema=ARROW_SCHEMA)


def _names_column(names: Sequence[Sequence[str]]) -> pa.ListArray:
    """Return every row's NAMES as an Arrow list column: all names in one array, cut by offsets.

    Three to four times cheaper than a Python list per row (0.11-0.17 us a
    row against 0.37-0.54 for the fleet composite's rows).
    """
    offsets = np.zeros(len(names) + 1, np.int32)
    np.cumsum(np.fromiter(map(len, names), np.int32, len(names)), out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(list(chain.from_iterable(names)), pa.string()))


class _Slices:
    """The pieces of a snapshot as Arrow streams of about ROWS rows each, converted as DuckDB reads them.

    Each stream's `bounds` are complete once DuckDB has read it.  A piece
    that `arrow_columns` refuses, or that cannot be read (PIECES read from a
    file: StatsFormatError, OSError), ends the append: the error is put in
    REFUSED (and raised), since DuckDB reports only that its scan failed.
    """

    def __init__(self, pieces: Iterable[StatsColumns], source: str, refused: list[Exception],
                 rows: int) -> None:
        self._pieces = iter(_at_most(pieces, rows))
        self._source = source
        self._refused = refused
        self._rows = rows
        self.done = False  # every piece was read

    def next(self) -> tuple[pa.RecordBatchReader, _Bounds]:
        """Return the next slice's stream and the bounds of its addresses (filled as it is read)."""
        bounds = _Bounds()

        def batches() -> Iterator[pa.RecordBatch]:
            held = 0
            while True:
                try:
                    piece = next(self._pieces, None)
                    if piece is None:
                        break
                    converted = arrow_columns(piece, self._source)
                except (HistoryError, StatsFormatError, OSError) as err:
                    self._refused.append(err)
                    raise
                bounds.take(piece)
                yield from converted.to_batches()
                held += len(piece)
                if held >= self._rows:
                    return
            self.done = True

        return pa.RecordBatchReader.from_batches(ARROW_SCHEMA, batches()), bounds


def _at_most(pieces: Iterable[StatsColumns], rows: int) -> Iterator[StatsColumns]:
    """Yield PIECES, each one of more than ROWS rows cut into parts of ROWS."""
    for piece in pieces:
        if len(piece) <= rows:
            yield piece
            continue
        for start in range(0, len(piece), rows):
            yield piece.slice(start, min(start + rows, len(piece)))


class _Bounds:
    """The lowest and highest address of a slice, each family apart, as a filter on `remotes`."""

    def __init__(self) -> None:
        self.v4: tuple[int, int] | None = None
        self.v6: tuple[tuple[int, int], tuple[int, int]] | None = None

    def take(self, piece: StatsColumns) -> None:
        """Widen the bounds to PIECE's addresses."""
        keys = piece.keys
        if (~keys.is6).any():
            lo = keys.lo[~keys.is6]
            low, high = int(lo.min()), int(lo.max())
            self.v4 = (low, high) if self.v4 is None else (min(self.v4[0], low), max(self.v4[1], high))
        if keys.is6.any():
            six = keys.take(keys.is6)
            order = six.order()
            first, last = (int(six.hi[order[0]]), int(six.lo[order[0]])), (int(six.hi[order[-1]]),
                                                                         int(six.lo[order[-1]]))
            self.v6 = (first, last) if self.v6 is None else (min(self.v6[0], first), max(self.v6[1], last))

    def where(self) -> tuple[str, list[int]]:
        """Return (an SQL condition on `remotes` holding every address within the bounds, its parameters)."""
        terms, params = [], []
        if self.v4 is not None:
            terms.append("(NOT remotes.is6 AND remotes.lo BETWEEN ? AND ?)")
            params += list(self.v4)
        if self.v6 is not None:
            (fhi, flo), (lhi, llo) = self.v6
            terms.append("(remotes.is6 AND (remotes.hi > ? OR (remotes.hi = ? AND remotes.lo >= ?)) "
                         "AND (remotes.hi < ? OR (remotes.hi = ? AND remotes.lo <= ?)))")
            params += [fhi, fhi, flo, lhi, lhi, llo]
        return "(" + (" OR ".join(terms) or "FALSE") + ")", params


def _whole_numbers(values: np.ndarray, key: str, table: StatsColumns, source: str) -> np.ndarray:
    """Return an object column of integers as int64; raises HistoryError at the first that is not one."""
    for row, v in enumerate(values.tolist()):
        if not (isinstance(v, int) or (isinstance(v, float) and v.is_integer())) or not -2**63 <= v < 2**63:
            raise HistoryError(f"{source}: {key} of {table.keys.text(row)} is {v!r}, not a whole "
                               "number of 64 bits; snapshot not stored")
    return values.astype(np.int64)


def _field_list(prefix: str = "") -> str:
    """Return the quoted field columns, each prefixed by PREFIX ("n." ...), in FIELDS order."""
    return ", ".join(f'{prefix}"{f.key}"' for f in FIELDS)


def append(con: duckdb.DuckDBPyConnection, table: StatsColumns, source: str) -> bool:
    """Append TABLE as a raw snapshot of SOURCE; return False when its identity was already stored.

    One transaction; raises HistoryError for a value the store cannot hold
    or a failing write (the store is then as it was).
    """
    return append_pieces(con, table.header, [table], source)


def append_pieces(con: duckdb.DuckDBPyConnection, header: Sequence[str], pieces: Iterable[StatsColumns],
                  source: str) -> bool:
    """Append the table given as PIECES (in any order) under HEADER, as `append` does one table.

    The pieces are converted and handed to the store a slice at a time, so a
    composite of millions of addresses is never held twice.
    """
    start, now = snapshot_time(header, source)
    refused: list[Exception] = []
    con.begin()
    try:
        stored = _append_in_transaction(con, pieces, source, start, now, refused)
        con.commit()
    except BaseException as err:
        con.rollback()
        if refused:
            raise refused[0] from None
        if isinstance(err, duckdb.Error):
            raise HistoryError(f"{source}: snapshot not stored: {one_line(err)}") from None
        raise
    return stored


def _append_in_transaction(con: duckdb.DuckDBPyConnection, pieces: Iterable[StatsColumns], source: str,
                           start: int, now: int, refused: list[Exception] | None = None) -> bool:
    """Insert the snapshot rows (see `append`); return False, inserting nothing, for a known identity.

    The rows go in slices of `SLICE_ROWS` addresses: each statement then
    joins a slice with the addresses of the store that fall within the
    slice's bounds, so DuckDB's joins hold a slice's worth whatever the
    snapshot's size (a second snapshot of 3 million addresses ran out of
    the writer's 256 MB when joined whole).  A refused piece's error goes
    to REFUSED.
    """
    if scalar(con, "SELECT count(*) FROM taken WHERE source = ? AND start = ? AND time = ?",
              [source, start, now]):
        return False
    con.execute("INSERT INTO taken VALUES (?, ?, ?)", [source, start, now])
    snap = scalar(con, "SELECT coalesce(max(id), 0) + 1 FROM snapshots")
    # The previous snapshot of the same data set, whose windows this one may continue.
    prev = scalar(
        con, "SELECT id FROM snapshots WHERE source = ? AND start = ? AND level = 'raw' AND time < ? "
        "ORDER BY time DESC LIMIT 1", [source, start, now])
    rows = 0
    slices = _Slices(pieces, source, [] if refused is None else refused, SLICE_ROWS)
    while not slices.done:
        rows += _append_slice(con, *slices.next(), snap, -1 if prev is None else prev, now)
    con.execute("INSERT INTO snapshots VALUES (?, ?, ?, ?, 'raw', ?)",
                [snap, source, start, now, rows])
    return True


def _append_slice(con: duckdb.DuckDBPyConnection, arriving: pa.RecordBatchReader, bounds: _Bounds,
                  snap: int, prev: int, now: int) -> int:
    """Insert the rows ARRIVING (their addresses within BOUNDS once read) into snapshot SNAP; return how many.

    An error leaves the transaction to be rolled back (which drops the
    temporary table too).
    """
    con.register("ncs_arriving", arriving)
    try:
        # read three times below: DuckDB keeps the rows in a temporary table of the transaction
        con.execute("CREATE TEMP TABLE ncs_incoming AS SELECT * FROM ncs_arriving")
    finally:
        # After a failed scan the transaction is aborted and this fails too:
        # the scan's error is the one to report.
        with contextlib.suppress(duckdb.Error):
            con.unregister("ncs_arriving")
    near, near_params = bounds.where()
    _number_addresses(con, now, near, near_params)
    con.execute(
        f"""INSERT INTO counters (snap, addr, bytes, packets, {_field_list()})
        SELECT ?, r.id,
               CASE WHEN p."E" = n."E" AND n."B" >= p."B" THEN n."B" - p."B" ELSE n."B" END,
               CASE WHEN p."E" = n."E" AND n."C" >= p."C" THEN n."C" - p."C" ELSE n."C" END,
               {_field_list("n.")}
        FROM ncs_incoming n
        JOIN (SELECT id, is6, hi, lo FROM remotes WHERE {near}) r
          ON n.is6 = r.is6 AND n.hi = r.hi AND n.lo = r.lo
        LEFT JOIN (SELECT addr, "B", "C", "E" FROM counters
                   WHERE snap = ? AND addr IN (SELECT id FROM remotes WHERE {near})) p ON p.addr = r.id""",
        [snap, *near_params, prev, *near_params])
    rows = scalar(con, "SELECT count(*) FROM ncs_incoming")
    con.execute("DROP TABLE ncs_incoming")
    return rows


def _number_addresses(con: duckdb.DuckDBPyConnection, now: int, near: str, near_params: list[int]) -> None:
    """Give each address of `ncs_incoming` new to the store the next number, first seen NOW.

    NEAR (with NEAR_PARAMS) is a condition on `remotes` that holds for every
    address of `ncs_incoming`.  A snapshot older than the store's newest may
    move a first-seen time back.
    """
    con.execute(
        f"""INSERT INTO remotes
        SELECT (SELECT coalesce(max(id), 0) FROM remotes) + row_number() OVER (ORDER BY is6, hi, lo),
               is6, hi, lo, ?
        FROM (SELECT DISTINCT n.is6, n.hi, n.lo FROM ncs_incoming n
              ANTI JOIN (SELECT is6, hi, lo FROM remotes WHERE {near}) r
              ON n.is6 = r.is6 AND n.hi = r.hi AND n.lo = r.lo)""", [now, *near_params])
    con.execute(
        f"""UPDATE remotes SET first = ? FROM ncs_incoming n
        WHERE remotes.first > ? AND {near}
          AND n.is6 = remotes.is6 AND n.hi = remotes.hi AND n.lo = remotes.lo""",
        [now, now, *near_params])


def add_snapshot(path: str, table: StatsColumns, source: str, keep: Keep | None = None,
                 wait: float = DEFAULT_WAIT) -> bool:
    """Append TABLE to the store PATH as SOURCE's snapshot, then apply the retention policy.

    KEEP, when given, becomes the store's policy; otherwise the store's own
    applies.  Returns False when the snapshot was already stored.  Raises
    HistoryError with one line naming the store (or the source).
    """
    return add_snapshot_pieces(path, table.header, [table], source, keep, wait)


def add_snapshot_pieces(path: str, header: Sequence[str], pieces: Iterable[StatsColumns], source: str,
                        keep: Keep | None = None, wait: float = DEFAULT_WAIT) -> bool:
    """`add_snapshot` of a table given as PIECES under HEADER (see `append_pieces`)."""
    with opened(path, write=True, wait=wait) as con:
        stored = append_pieces(con, header, pieces, source)
        try:
            if keep is not None:
                set_keep(con, keep)
            apply_keep(con, stored_keep(con))
        except duckdb.Error as err:
            raise HistoryError(f"{path}: roll-up failed (the snapshot is stored): {one_line(err)}") from None
        except ValueError as err:
            raise HistoryError(f"{path}: keep policy: {err}") from None
    return stored
