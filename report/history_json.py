"""The history report as JSON: the window, its buckets, and per group and address the traffic and series.

Numbers are exact integers (bytes, packets, Unix seconds); each series
lists bytes and packets per bucket, the buckets starting at `buckets`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any

from ncs.report.group import Group
from ncs.report.history_build import HistoryReport, history_title


def _address_objects(h: HistoryReport, group: Group) -> list[dict[str, Any]]:
    """Return the JSON objects of GROUP's addresses."""
    rows = h.rows(group).tolist()
    b, c, last = group.column("B").tolist(), group.column("C").tolist(), group.column("L").tolist()
    return [{"address": address, "names": list(names), "bytes": b[i], "packets": c[i],
             "change": int(h.change[rows[i]]), "first_seen": int(h.first[rows[i]]), "last_seen": last[i],
             "series": {"bytes": h.series_bytes[rows[i]].tolist(),
                        "packets": h.series_packets[rows[i]].tolist()}}
            for i, (address, names) in enumerate(zip(group.addresses, group.names, strict=True))]


def _group_object(h: HistoryReport, group: Group) -> dict[str, Any]:
    """Return the JSON object of GROUP with its addresses."""
    series_b, series_p = h.group_series(group)
    return {"label": group.label, "kind": group.kind, "bytes": h.group_bytes(group),
            "packets": h.group_packets(group), "change": h.group_change(group),
            "first_seen": h.group_first(group), "last_seen": group.L,
            "series": {"bytes": series_b.tolist(), "packets": series_p.tolist()},
            "addresses": _address_objects(h, group)}


def iter_history_json(h: HistoryReport) -> Iterator[str]:
    """Yield the JSON document of H in pieces (one group at a time)."""
    head = {"title": history_title(h), "view": h.view, "by": h.report.by, "source": h.source,
            "since": h.window.since, "until": h.window.until, "buckets": h.window.edges(),
            "totals": {"bytes": sum(h.group_bytes(g) for g in h.report.groups),
                       "packets": sum(h.group_packets(g) for g in h.report.groups),
                       "addresses": h.report.totals.addresses, "groups": len(h.report.groups),
                       "series": h.total_series().tolist()}}
    yield json.dumps(head, ensure_ascii=False)[:-1] + ', "groups": ['
    for i, group in enumerate(h.report.groups):
        yield ("," if i else "") + json.dumps(_group_object(h, group), ensure_ascii=False)
    yield "]}\n"


def write_history_json(h: HistoryReport, out: IO[str]) -> None:
    """Write the JSON history report of H to OUT."""
    for piece in iter_history_json(h):
        out.write(piece)
