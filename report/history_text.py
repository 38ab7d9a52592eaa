"""The history report as plain text: tab-separated lines, raw numbers, a series per row.

One line per group, then one per address indented by a tab: label, bytes,
packets, change against the window before, first-seen time, last-seen time
(Unix seconds), then the bytes of each bucket separated by commas, then the
names.  Names are cleaned of control characters.
"""

from __future__ import annotations

from typing import IO

from ncs.report.display import names_text
from ncs.report.history_build import HistoryReport, history_title


def _series_text(values) -> str:
    """Return a series as "n,n,n"."""
    return ",".join(str(int(v)) for v in values)


def write_history_text(h: HistoryReport, out: IO[str]) -> None:
    """Write the text history report of H to OUT."""
    out.write(f"# {history_title(h)}\n")
    out.write(f"# since\t{h.window.since}\n# until\t{h.window.until}\n")
    out.write(f"# buckets\t{_series_text(h.window.edges())}\n")
    out.write("# label\tbytes\tpackets\tchange\tfirst\tlast\tseries\tnames\n")
    for group in h.report.groups:
        series, _ = h.group_series(group)
        out.write(f"{group.label}\t{h.group_bytes(group)}\t{h.group_packets(group)}\t"
                  f"{h.group_change(group)}\t{h.group_first(group)}\t{group.L}\t{_series_text(series)}\n")
        rows = h.rows(group).tolist()
        b, c, last = group.column("B").tolist(), group.column("C").tolist(), group.column("L").tolist()
        for i, (address, names) in enumerate(zip(group.addresses, group.names, strict=True)):
            row = rows[i]
            out.write(f"\t{address}\t{b[i]}\t{c[i]}\t{int(h.change[row])}\t{int(h.first[row])}\t{last[i]}\t"
                      f"{_series_text(h.series_bytes[row])}\t{names_text(list(names))}\n")
