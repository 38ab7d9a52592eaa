"""The JSON report: groups, addresses and totals (schema "ncs-report/2", see docs/report.md).

Written group by group so that a million addresses do not build one huge
string.  Rates (packets per minute, bytes per second) are rounded to 3
decimals; the exact hourly figures they come from are in the document too.
Output is ASCII only, and '<', '>' and '&' are written as \\u escapes
as well, so hostile names stay inert even when the JSON is pasted into a page.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import IO, Any

import numpy as np

from ncs import twocore
from ncs.report.group import CHUNK_ADDRESSES, Group, Report, chunk_groups
from ncs.stats.columns import StatsColumns
from ncs.stats.record import Record

SCHEMA = "ncs-report/2"

_NEEDS_ESCAPE = re.compile(r'["\\<>&]')
# Anything in a name that json.dumps would escape or the HTML-safe output spells as \u.
_UNSAFE_NAME_CHARS = re.compile(r'[^\x20-\x7e]|["\\<>&]')
_QUOTED_COMMA = '","'
_HTML_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def dumps(value: Any) -> str:
    """Return VALUE as compact ASCII JSON with <, > and & escaped."""
    return json.dumps(value, ensure_ascii=True, separators=(",", ":")).translate(_HTML_SAFE)


def _num(value: float) -> str:
    """Return a finite number as JSON text (ints stay ints); NaN/inf become null."""
    if isinstance(value, int):
        return str(value)
    return repr(value) if value == value and abs(value) != float("inf") else "null"


def _whole(value: float) -> str:
    """Return a sum of whole numbers (a float) as JSON text without ".0"; null when not finite."""
    if isinstance(value, float) and value == value and abs(value) != float("inf") and value.is_integer():
        return str(int(value))
    return _num(value)


def _whole_or_none(value: float) -> int | None:
    """Return a sum of whole numbers as an int for json.dumps, or None (null) when not finite."""
    return int(value) if value == value and abs(value) != float("inf") else None


def _names(names: list[str]) -> str:
    # Most names need no escaping at all; json.dumps per name is the slow path.
    if all(n.isascii() and n.isprintable() and not _NEEDS_ESCAPE.search(n) for n in names):
        return "[" + ",".join(f'"{n}"' for n in names) + "]"
    return dumps(names)


def _address_object(address: str, r: Record) -> str:
    """Return the JSON object of ADDRESS with record R, every field checked (the slow path)."""
    return (
        f'{{"address":"{address}","names":{_names(r.N)},'
        f'"packets_per_minute":{_rate(r.R, 60)},"bytes_per_second":{_rate(r.W, 3600)},'
        f'"packets_per_hour":{_num(r.R)},"bytes_per_hour":{_num(r.W)},'
        f'"window_packets":{_num(r.C)},"window_bytes":{_num(r.B)},"window_start":{_num(r.E)},'
        f'"last_seen":{_num(r.L)},"start":{_num(r.S)}}}'
    )


def _rate(value: float, seconds: int) -> str:
    """Return VALUE / SECONDS to 3 decimals as JSON text; null when not finite or beyond float range."""
    try:
        rate = value / seconds
    except OverflowError:
        return "null"
    return f"{rate:.3f}" if rate == rate and abs(rate) != float("inf") else "null"


def _rounded_rate(value: float) -> float | None:
    """Return a rate rounded to 3 decimals for json.dumps, or None (null) when not finite."""
    return round(value, 3) if value == value and abs(value) != float("inf") else None


#: The numeric columns an address object shows.
_SHOWN = ("B", "C", "E", "L", "S", "R", "W")


def _plain_objects(columns: StatsColumns, rows: slice | np.ndarray) -> list[str]:
    """Return the JSON objects of ROWS of COLUMNS (a slice, or an array of row numbers).

    Numbers are formatted by the f-string (str() of an int or a float is the
    JSON text); names are written as they are.  The caller makes sure that
    no name needs escaping and checks the result for a non-finite number.
    """
    if isinstance(rows, slice):
        addresses, names = columns.addresses[rows], columns.names[rows]
    else:
        at = rows.tolist()
        addresses = [columns.addresses[i] for i in at]
        names = [columns.names[i] for i in at]
    bs, cs, es, ls, ss, rs, ws = (columns.column(k)[rows].tolist() for k in _SHOWN)
    join, q, nothing = _QUOTED_COMMA.join, '"', ""
    return [
        f'{{"address":"{a}","names":[{q + join(ns) + q if ns else nothing}],'
        f'"packets_per_minute":{r / 60:.3f},"bytes_per_second":{w / 3600:.3f},'
        f'"packets_per_hour":{r},"bytes_per_hour":{w},'
        f'"window_packets":{c},"window_bytes":{b},"window_start":{e},"last_seen":{ls_},"start":{s}}}'
        for a, ns, b, c, e, ls_, s, r, w in zip(addresses, names, bs, cs, es, ls, ss, rs, ws,
                                                 strict=True)
    ]


def _plain_addresses(group: Group) -> str:
    """Return the address objects of a group whose names need no escaping, comma-separated."""
    return ",".join(_plain_objects(group.table, slice(group.start, group.stop)))


def plain_columns(columns: StatsColumns) -> bool:
    """Return whether all shown COLUMNS are int64 and no name needs escaping.

    True lets every group take the fast path unchecked (see `addresses_text`).
    """
    if not columns.all_int64(_SHOWN):
        return False
    names = "".join([n for ns in columns.names for n in ns])
    return not _UNSAFE_NAME_CHARS.search(names)


def addresses_text(group: Group) -> str:
    """Return the JSON objects of GROUP's addresses, comma-separated, every field checked.

    A group without names to escape is formatted by the fast path and falls
    back to the per-address path only if a number turns out not finite.
    """
    names = "".join([n for ns in group.names for n in ns])
    if not _UNSAFE_NAME_CHARS.search(names):
        try:
            text = _plain_addresses(group)
        except OverflowError:
            text = "inf"  # an int too large for a float: the checked path writes null
        # A non-finite number prints as inf or nan; such a group takes the
        # slow path, which writes null (names with "inf" only cost time).
        if "inf" not in text and "nan" not in text:
            return text
    return ",".join([_address_object(a, r) for a, r in zip(group.addresses, group.records, strict=True)])


def group_text(group: Group) -> str:
    """Return the JSON object of one group with all its addresses, every field checked."""
    label = group.label
    if _UNSAFE_NAME_CHARS.search(label):
        label = dumps(label)[1:-1]
    return (
        f'{{"key":"{label}","kind":"{group.kind}",'
        f'"packets_per_minute":{_rate(group.R, 60)},"bytes_per_second":{_rate(group.W, 3600)},'
        f'"packets_per_hour":{_num(group.R)},"bytes_per_hour":{_num(group.W)},'
        f'"window_packets":{_whole(group.C)},"window_bytes":{_whole(group.B)},'
        f'"last_seen":{_num(group.L)},"count":{group.count},'
        f'"addresses":[{addresses_text(group)}]}}'
    )


def _plain_group_text(group: Group, addresses: str) -> str:
    """Return the JSON object of a group of `plain_columns` with finite sums, unchecked.

    ADDRESSES is the group's address objects, comma-separated.  Sums of ints
    are finite floats here and E is an int, so str() of every number is its
    JSON text; a label is a network or a checked host name.  Raises
    OverflowError for an int too large for a float.
    """
    return (
        f'{{"key":"{group.label}","kind":"{group.kind}",'
        f'"packets_per_minute":{group.R / 60:.3f},"bytes_per_second":{group.W / 3600:.3f},'
        f'"packets_per_hour":{group.R},"bytes_per_hour":{group.W},'
        f'"window_packets":{int(group.C)},"window_bytes":{int(group.B)},'
        f'"last_seen":{group.L},"count":{group.count},'
        f'"addresses":[{addresses}]}}'
    )


def _plain_chunk(groups: list[Group]) -> list[str]:
    """Return the JSON objects of GROUPS (all of one report of `plain_columns`), in order.

    The addresses of all the groups are formatted in one pass over their
    rows: per-group work is what makes a report of many small groups slow.
    """
    table = groups[0].table
    counts = np.array([g.count for g in groups], dtype=np.int64)
    starts = np.array([g.start for g in groups], dtype=np.int64)
    ends = np.cumsum(counts)
    # Row numbers of every group, one group after the other.
    rows = np.arange(int(ends[-1]), dtype=np.int64) + np.repeat(starts - (ends - counts), counts)
    objects = _plain_objects(table, rows)
    texts = []
    for group, stop in zip(groups, ends.tolist(), strict=True):
        addresses = ",".join(objects[stop - group.count:stop])
        if math.isfinite(group.R) and math.isfinite(group.W):
            try:
                texts.append(_plain_group_text(group, addresses))
                continue
            except OverflowError:
                pass  # an int too large for a float: the checked path writes null
        texts.append(group_text(group))
    return texts


def iter_json(report: Report) -> Iterator[str]:
    """Yield the JSON document in chunks: the head, then groups by the thousand, the tail."""
    t = report.totals
    head = {
        "schema": SCHEMA,
        "source": report.stats.source,
        "grouping": report.by,
        "v4_prefix": report.v4_prefix,
        "v6_prefix": report.v6_prefix,
        "header": list(report.stats.header),
        "order": report.order,
        "totals": {
            "packets_per_minute": _rounded_rate(t.packets_per_minute),
            "bytes_per_second": _rounded_rate(t.bytes_per_second),
            "window_packets": _whole_or_none(t.C),
            "window_bytes": _whole_or_none(t.B),
            "last_seen": _whole_or_none(t.L),
            "addresses": t.addresses,
            "groups": t.groups,
        },
    }
    yield dumps(head)[:-1] + ',"groups":['
    groups = report.groups
    plain = bool(groups) and plain_columns(report.stats)
    render = _plain_chunk_text if plain else _checked_chunk_text
    chunks = list(chunk_groups(groups, CHUNK_ADDRESSES))
    for i, text in enumerate(twocore.map_in_halves(render, chunks, report.totals.addresses)):
        yield ("," if i else "") + "\n" + text
    yield "\n]}\n"


def _plain_chunk_text(groups: list[Group]) -> str:
    return ",\n".join(_plain_chunk(groups))


def _checked_chunk_text(groups: list[Group]) -> str:
    return ",\n".join(group_text(g) for g in groups)


def render_json(report: Report) -> str:
    """Return the whole JSON document as one string."""
    return "".join(iter_json(report))


def write_json(report: Report, out: IO[str]) -> None:
    """Write the JSON document to OUT."""
    for chunk in iter_json(report):
        out.write(chunk)
