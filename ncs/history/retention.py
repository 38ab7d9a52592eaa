"""Retention: recent snapshots kept as taken, older ones rolled up hourly, then daily, then dropped.

Ages are counted back from the store's newest snapshot, not from the
clock: a store fed with old captures keeps them, and a test is repeatable.
A roll-up merges every snapshot of one source in one hour (or day) into one
snapshot at the start of that bucket: `bytes` and `packets` are summed, so
totals over any window of whole buckets stay exact; the record's fields
take the values of the bucket's latest snapshot.  The latest raw snapshot of
each source is never rolled up: the next append compares with it.
"""

from __future__ import annotations

import duckdb

from ncs.history.keep import LEVELS, Keep, parse_keep
from ncs.history.schema import meta_value, scalar
from ncs.stats.record import FIELDS


def stored_keep(con: duckdb.DuckDBPyConnection) -> Keep:
    """Return the store's policy (the default when none was set)."""
    text = meta_value(con, "keep")
    return Keep() if text is None else parse_keep(text)


def set_keep(con: duckdb.DuckDBPyConnection, keep: Keep) -> None:
    """Record KEEP as the store's policy."""
    con.execute("INSERT OR REPLACE INTO meta VALUES ('keep', ?)", [keep.text()])


def apply_keep(con: duckdb.DuckDBPyConnection, keep: Keep) -> None:
    """Roll up and drop what KEEP no longer keeps at its level, in one transaction."""
    newest = scalar(con, "SELECT max(time) FROM snapshots")
    if newest is None:
        return
    con.begin()
    try:
        roll_up(con, "raw", "hour", newest - keep.raw)
        roll_up(con, "hour", "day", newest - keep.hour)
        _drop_older(con, newest - keep.day)
        con.commit()
    except BaseException:
        con.rollback()
        raise


def roll_up(con: duckdb.DuckDBPyConnection, level: str, into: str, before: int) -> None:
    """Merge the LEVEL snapshots taken before BEFORE into one INTO snapshot per source and bucket.

    An INTO snapshot already holding that source and bucket is merged in too.
    """
    width = LEVELS[into]
    con.execute(
        """CREATE OR REPLACE TEMP TABLE ncs_moving AS
        SELECT id, source, start, time, time - time % ? AS bucket FROM snapshots
        WHERE level = ? AND time < ?
          AND id NOT IN (SELECT arg_max(id, time) FROM snapshots WHERE level = 'raw' GROUP BY source)""",
        [width, level, before])
    con.execute(
        """INSERT INTO ncs_moving
        SELECT s.id, s.source, s.start, s.time, s.time FROM snapshots s
        JOIN (SELECT DISTINCT source, bucket FROM ncs_moving) m ON s.source = m.source AND s.time = m.bucket
        WHERE s.level = ?""", [into])
    con.execute(
        """CREATE OR REPLACE TEMP TABLE ncs_buckets AS
        SELECT (SELECT coalesce(max(id), 0) FROM snapshots) + row_number() OVER (ORDER BY source, bucket) AS id,
               source, bucket, min(start) AS start
        FROM ncs_moving GROUP BY source, bucket""")
    latest = ", ".join(f'arg_max(c."{f.key}", m.time)' for f in FIELDS)
    con.execute(
        f"""INSERT INTO counters
        SELECT b.id, c.addr, sum(c.bytes), sum(c.packets), {latest}
        FROM counters c JOIN ncs_moving m ON c.snap = m.id
        JOIN ncs_buckets b ON m.source = b.source AND m.bucket = b.bucket
        GROUP BY b.id, c.addr""")
    con.execute(
        """INSERT INTO snapshots
        SELECT b.id, b.source, b.start, b.bucket, ?, (SELECT count(*) FROM counters WHERE snap = b.id)
        FROM ncs_buckets b""", [into])
    con.execute("DELETE FROM counters WHERE snap IN (SELECT id FROM ncs_moving)")
    con.execute("DELETE FROM snapshots WHERE id IN (SELECT id FROM ncs_moving)")
    con.execute("DROP TABLE ncs_moving")
    con.execute("DROP TABLE ncs_buckets")


def _drop_older(con: duckdb.DuckDBPyConnection, before: int) -> None:
    """Delete the daily snapshots (and their rows) whose day began before BEFORE."""
    con.execute("""DELETE FROM counters WHERE snap IN
                   (SELECT id FROM snapshots WHERE level = 'day' AND time < ?)""", [before])
    con.execute("DELETE FROM snapshots WHERE level = 'day' AND time < ?", [before])
