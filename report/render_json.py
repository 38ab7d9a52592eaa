"""The JSON report: groups, addresses and totals (schema "ncs-report/1", see docs/report.md).

Written group by group so that a million addresses do not build one huge
string.  Output is ASCII only, and '<', '>' and '&' are written as \\u escapes
as well, so hostile names stay inert even when the JSON is pasted into a page.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import IO, Any

from report.group import Group, Member, Report

SCHEMA = "ncs-report/1"

_NEEDS_ESCAPE = re.compile(r'["\\<>&]')
_HTML_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def dumps(value: Any) -> str:
    """Return VALUE as compact ASCII JSON with <, > and & escaped."""
    return json.dumps(value, ensure_ascii=True, separators=(",", ":")).translate(_HTML_SAFE)


def _num(value: float) -> str:
    """Return a finite number as JSON text (ints stay ints); NaN/inf become null."""
    if isinstance(value, int):
        return str(value)
    return repr(value) if value == value and abs(value) != float("inf") else "null"


def _names(names: list[str]) -> str:
    # Most names need no escaping at all; json.dumps per name is the slow path.
    if all(n.isascii() and n.isprintable() and not _NEEDS_ESCAPE.search(n) for n in names):
        return "[" + ",".join(f'"{n}"' for n in names) + "]"
    return dumps(names)


def address_text(m: Member) -> str:
    """Return the JSON object of one address (written by hand: a million json.dumps are slow)."""
    r = m.record
    return (
        f'{{"address":"{m.address}","names":{_names(r.N)},'
        f'"hits_per_minute":{_num(r.R / 60)},"bytes_per_second":{_num(r.W / 3600)},'
        f'"hits_per_hour":{_num(r.R)},"bytes_per_hour":{_num(r.W)},'
        f'"last_contact":{_num(r.E)},"bytes":{_num(r.B)},"hits":{_num(r.C)},"start":{_num(r.S)}}}'
    )


def group_text(group: Group) -> str:
    """Return the JSON object of one group with all its addresses."""
    head = dumps({
        "key": group.label,
        "kind": group.kind,
        "hits_per_minute": group.R / 60,
        "bytes_per_second": group.W / 3600,
        "hits_per_hour": group.R,
        "bytes_per_hour": group.W,
        "last_contact": group.E,
        "count": len(group.members),
    })
    return head[:-1] + ',"addresses":[' + ",".join(address_text(m) for m in group.members) + "]}"


def iter_json(report: Report) -> Iterator[str]:
    """Yield the JSON document in chunks: head, one chunk per group, tail."""
    t = report.totals
    head = {
        "schema": SCHEMA,
        "source": report.stats.source,
        "grouping": report.by,
        "v4_prefix": report.v4_prefix,
        "v6_prefix": report.v6_prefix,
        "header": list(report.stats.header),
        "totals": {
            "hits_per_minute": t.hits_per_minute,
            "bytes_per_second": t.bytes_per_second,
            "addresses": t.addresses,
            "groups": t.groups,
        },
    }
    yield dumps(head)[:-1] + ',"groups":['
    for i, group in enumerate(report.groups):
        yield ("," if i else "") + "\n" + group_text(group)
    yield "\n]}\n"


def render_json(report: Report) -> str:
    """Return the whole JSON document as one string."""
    return "".join(iter_json(report))


def write_json(report: Report, out: IO[str]) -> None:
    """Write the JSON document to OUT."""
    for chunk in iter_json(report):
        out.write(chunk)
