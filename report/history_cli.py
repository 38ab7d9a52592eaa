"""ncs-report --history: a report over time from the store, in any format, or its Parquet export."""

from __future__ import annotations

import argparse
from typing import IO

from ncs.history.export import export_parquet
from ncs.history.schema import HistoryError
from ncs.history.store import opened
from ncs.report.group import GroupingError
from ncs.report.history_build import VIEWS, build_history
from ncs.report.history_html import history_cgi, render_history_fragment
from ncs.report.history_json import write_history_json
from ncs.report.history_table import render_history_table
from ncs.report.history_text import write_history_text


def add_history_options(p: argparse.ArgumentParser) -> None:
    """Add the options of reports over time (they need --history)."""
    group = p.add_argument_group("history (reports over time from a history store)")
    group.add_argument("--history", metavar="STORE",
                       help="report from this history store instead of a stats file (default: none)")
    group.add_argument("--since", default="24h", metavar="SPAN|DATE",
                       help="window start: a span back from the newest snapshot (24h, 7d) or a local "
                            "date YYYY-MM-DD[THH:MM] (default: %(default)s)")
    group.add_argument("--view", choices=VIEWS, default="top",
                       help="top talkers, new remotes (first seen in the window) or top movers "
                            "(change against the window before) (default: %(default)s)")
    group.add_argument("--source", metavar="NAME",
                       help="only the snapshots of this source (an agent's name, a composite's file "
                            "name; default: all)")
    group.add_argument("--export", metavar="DIR",
                       help="write the store as Parquet partitioned by day into DIR instead of a report "
                            "(default: none)")


def history_usage_error(args: argparse.Namespace) -> str | None:
    """Return why ARGS mix history and stats-file options wrongly, or None."""
    if args.history is None:
        if args.export:
            return "--export needs --history STORE"
        if args.statsfile is None:
            return "a STATSFILE or --history STORE is needed"
        return None
    if args.statsfile is not None:
        return "give either a STATSFILE or --history STORE, not both"
    if args.watch or args.cache or args.update:
        return "--history takes neither --watch, --cache nor --update"
    return None


def run_history(args: argparse.Namespace, out: IO[str]) -> str | None:
    """Print the history report (or export) for ARGS on OUT; return the one-line error, or None."""
    try:
        with opened(args.history) as con:
            if args.export:
                rows = export_parquet(con, args.export)
                out.write(f"{rows} rows written to {args.export}\n")
                return None
            # The table and the page show --top groups (only theirs need series)
            # and a change only for movers; text and JSON show everything.
            shown = args.format in ("table", "html", "cgi")
            h = build_history(con, args.since, args.view, args.by, args.v4_prefix, args.v6_prefix,
                              args.source, args.top if shown else 0, change=not shown)
    except (HistoryError, GroupingError, ValueError) as err:
        return str(err)
    if args.format == "table":
        render_history_table(h, out, args.top, args.addresses, width=args.width)
    elif args.format == "html":
        out.write(render_history_fragment(h, args.top, args.addresses))
    elif args.format == "cgi":
        out.write(history_cgi(h, args.top, args.addresses))
    elif args.format == "json":
        write_history_json(h, out)
    else:
        write_history_text(h, out)
    return None
