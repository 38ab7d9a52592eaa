"""The store as Parquet files, partitioned by day, for any column engine (schema in docs/history.md).

`DIR/day=YYYY-MM-DD/*.parquet` (the UTC day of the snapshot's time): one
row per address of a snapshot, with the snapshot's source, level, start and
time, the address as text (IPv6 in the full eight-group form) and as its
`is6`/`hi`/`lo` numbers, the traffic it adds (`bytes`, `packets`) and one
column per record field.
"""

from __future__ import annotations

import os

import duckdb

from ncs.history.schema import HistoryError, missing_fields, select_fields

#: The SQL of an address's text: dotted quad, or eight groups of four hex digits.
ADDRESS_TEXT = (
    "CASE WHEN NOT r.is6 THEN concat_ws('.', (r.lo >> 24) & 255, (r.lo >> 16) & 255, (r.lo >> 8) & 255, "
    "r.lo & 255) ELSE concat_ws(':', "
    + ", ".join(f"lpad(lower(hex(({half} >> {shift}) & 65535)), 4, '0')"
                for half in ("r.hi", "r.lo") for shift in (48, 32, 16, 0))
    + ") END"
)


def export_parquet(con: duckdb.DuckDBPyConnection, directory: str) -> int:
    """Write the store to DIRECTORY as Parquet partitioned by day; return the rows written.

    DIRECTORY must not exist or be empty.  Raises HistoryError (one line).
    """
    if os.path.isdir(directory) and os.listdir(directory):
        raise HistoryError(f"{directory}: not empty; the export writes into a new or empty directory")
    fields = select_fields(missing_fields(con), "c.")
    query = f"""SELECT strftime(to_timestamp(s.time) AT TIME ZONE 'UTC', '%Y-%m-%d') AS day,
                   s.source, s.level, s.start, s.time, {ADDRESS_TEXT} AS address,
                   r.is6, r.hi, r.lo, c.bytes, c.packets, {fields}
               FROM counters c JOIN snapshots s ON c.snap = s.id JOIN remotes r ON c.addr = r.id"""
    quoted = directory.replace("'", "''")
    try:
        rows = con.execute(f"COPY ({query}) TO '{quoted}' (FORMAT PARQUET, PARTITION_BY (day), "
                           "OVERWRITE_OR_IGNORE)").fetchall()
    except duckdb.Error as err:
        raise HistoryError(f"{directory}: export failed: {str(err).splitlines()[0]}") from None
    return int(rows[0][0]) if rows else 0
