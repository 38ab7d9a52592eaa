"""The history store's tables, derived from the record's fields, and opening a store of any version.

A store is one DuckDB file with three tables:

* `meta(key, value)`: `layout` (the version of the table layout below) and
  `keep` (the retention policy, `ncs.history.retention`);
* `snapshots`: one row per snapshot (`id`, `source`, `start` and `time` of
  the stats file, `level`: raw, hour or day, `rows`);
* `taken`: the identity (`source`, `start`, `time`) of every snapshot ever
  appended, kept after its rows were rolled up, so none is stored twice;
* `remotes`: every address the store has seen: its number `id`, the
  address as `is6`/`hi`/`lo` (`ncs.stats.addresses`) and its first-seen
  time over the whole store;
* `counters`: one row per address of a snapshot: `snap`, `addr` (the
  address's `remotes.id`), `bytes` and `packets` (the traffic the snapshot
  adds, see `ncs.history.store`), then one column per field of
  `ncs.stats.record.FIELDS`, named by its key.

An address is a 4-byte number in `counters`, not its 17 bytes: rows stay
small, and grouping by one integer is several times faster than by three
columns.

The field columns follow `FIELDS`: a store written before a field existed
lacks its column and gets it when opened for writing (filled from the
field's `default_from` key, else the type's empty value).  A store of a
newer layout, or a file that is not a store, is refused with one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa

from ncs.stats.record import FIELDS, Field

#: The version of the table layout (not of the field list, which follows FIELDS).
LAYOUT = 1


#: The tables every store of this layout has.
TABLES = ("meta", "snapshots", "taken", "remotes", "counters")


class HistoryError(Exception):
    """The store cannot be opened, read or written; str() is the one-line reason (store named)."""


def sql_type(f: Field) -> str:
    """Return the DuckDB type of field F's column: BIGINT, DOUBLE or VARCHAR[] (the names)."""
    if f.type is list:
        return "VARCHAR[]"
    return "DOUBLE" if f.type is float else "BIGINT"


def field_columns(fields: Sequence[Field] = FIELDS) -> str:
    """Return the field columns of `counters` as SQL column definitions, in FIELDS order."""
    return ", ".join(f'"{f.key}" {sql_type(f)}' for f in fields)


def create_tables(con: duckdb.DuckDBPyConnection, fields: Sequence[Field] = FIELDS) -> None:
    """Create the tables of an empty store with the columns of FIELDS (tests pass older lists)."""
    con.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)")
    con.execute(
        "CREATE TABLE snapshots (id BIGINT PRIMARY KEY, source VARCHAR NOT NULL, "
        "start BIGINT NOT NULL, time BIGINT NOT NULL, level VARCHAR NOT NULL, rows BIGINT NOT NULL)")
    con.execute(
        "CREATE TABLE counters (snap BIGINT NOT NULL, addr INTEGER NOT NULL, bytes BIGINT NOT NULL, "
        f"packets BIGINT NOT NULL, {field_columns(fields)})")
    con.execute("CREATE TABLE taken (source VARCHAR, start BIGINT, time BIGINT, "
                "PRIMARY KEY (source, start, time))")
    con.execute("CREATE TABLE remotes (id INTEGER NOT NULL, is6 BOOLEAN NOT NULL, hi UBIGINT NOT NULL, "
                "lo UBIGINT NOT NULL, first BIGINT NOT NULL)")
    con.execute("INSERT INTO meta VALUES ('layout', ?)", [str(LAYOUT)])


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> Any:
    """Return the first value of the first row of query SQL, or None when it has no row.

    The whole result is fetched: DuckDB refuses further work on a connection
    with an unfinished result.
    """
    rows = con.execute(sql, params or []).fetchall()
    return rows[0][0] if rows else None


def arrow_result(con: duckdb.DuckDBPyConnection, sql: str, params: dict | list | None = None) -> pa.Table:
    """Return the result of query SQL as an Arrow table (through `sql`, which copies nothing)."""
    return con.sql(sql, params=params).to_arrow_table()


def meta_value(con: duckdb.DuckDBPyConnection, key: str) -> str | None:
    """Return the meta value KEY, or None."""
    return scalar(con, "SELECT value FROM meta WHERE key = ?", [key])


def check_layout(con: duckdb.DuckDBPyConnection, path: str) -> None:
    """Raise HistoryError unless PATH (open as CON) is a store of a layout this ncs reads."""
    tables = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}
    if not set(TABLES) <= tables:
        raise HistoryError(f"{path}: not an ncs history store (it lacks the tables {', '.join(TABLES)})")
    layout = meta_value(con, "layout")
    if layout is None or not layout.isdigit():
        raise HistoryError(f"{path}: not an ncs history store (no layout version)")
    if int(layout) > LAYOUT:
        raise HistoryError(f"{path}: history store layout {layout} is newer than this ncs reads "
                           f"({LAYOUT}); not opened")


def missing_fields(con: duckdb.DuckDBPyConnection) -> list[Field]:
    """Return the fields of FIELDS that the store's counters table has no column for."""
    have = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'counters'").fetchall()}
    return [f for f in FIELDS if f.key not in have]


def add_fields(con: duckdb.DuckDBPyConnection, fields: Sequence[Field]) -> None:
    """Add a column for each of FIELDS to counters, filled as a reader fills a file without it."""
    for f in fields:
        con.execute(f'ALTER TABLE counters ADD COLUMN "{f.key}" {sql_type(f)}')
        fill = f'"{f.default_from}"' if f.default_from else ("[]" if f.type is list else "0")
        con.execute(f'UPDATE counters SET "{f.key}" = {fill}')


def select_fields(missing: Sequence[Field], prefix: str = "") -> str:
    """Return the SELECT list of every field, standing in for MISSING ones as `add_fields` fills them.

    PREFIX qualifies the columns ("c.").  A store opened read-only cannot be
    upgraded; its queries read through this.
    """
    absent = {f.key for f in missing}
    parts = []
    for f in FIELDS:
        if f.key not in absent:
            parts.append(f'{prefix}"{f.key}"')
        else:
            fill = (f'{prefix}"{f.default_from}"' if f.default_from
                    else ("[]::VARCHAR[]" if f.type is list else "0"))
            parts.append(f'{fill} AS "{f.key}"')
    return ", ".join(parts)
