"""ncs-coalesce's side of the history store: every composite written is appended as a snapshot."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ncs.stats.streamread import read_runs


def add_history_options(p: argparse.ArgumentParser) -> None:
    """Add --history, --no-history and --keep."""
    p.add_argument("--history", metavar="STORE",
                   help="history store every composite is appended to "
                        "(default: <output>.history.duckdb beside the composite)")
    p.add_argument("--no-history", action="store_true", help="append nothing to a history store (default: off)")
    p.add_argument("--keep", metavar="POLICY",
                   help="the store's retention, e.g. raw=2d,hour=30d,day=400d "
                        "(default: the store's, at first raw=2d,hour=30d,day=400d)")


def store_path(args: argparse.Namespace, output: str) -> str | None:
    """Return the store the composite OUTPUT goes to, or None with --no-history."""
    if args.no_history:
        return None
    return args.history or output + ".history.duckdb"


def append_composite(args: argparse.Namespace, output: str, header: Sequence[str]) -> bool:
    """Append the composite written to OUTPUT under its HEADER; False after one line on failure.

    The source is the composite's file name.  The rows are read back from
    the file a run at a time as the store takes them: what the store holds
    is what was written, and the merge need not be kept for it.
    """
    store = store_path(args, output)
    if store is None:
        return True
    # Here, not at the top: DuckDB is loaded only when a composite was written.
    from ncs.history.keep import parse_keep
    from ncs.history.schema import HistoryError
    from ncs.history.store import add_snapshot_pieces

    try:
        keep = parse_keep(args.keep) if args.keep else None
        add_snapshot_pieces(store, header, read_runs(output), os.path.basename(output), keep)
    except (HistoryError, ValueError) as err:  # StatsFormatError is a ValueError
        print(f"ncs-coalesce: history: {err}", file=sys.stderr)
        return False
    except OSError as err:
        print(f"ncs-coalesce: history: {output}: cannot read: {err.strerror or err}", file=sys.stderr)
        return False
    return True
