"""The live terminal view of `ncs-report --watch`: the table, refreshed in place from a running agent.

Every --interval seconds the view asks the agent for a dump over its UDP
port (--update, then waits for the stats file to be rewritten, at most
--updto seconds) or, without --update, re-reads the stats file, and redraws
the same table `--format table` prints (rich's Live, on the terminal's
alternate screen, like iftop and bandwhich).  A failed refresh keeps the
last good table on screen with the reason underneath; Ctrl-C ends the view.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import IO

from rich.console import Console
from rich.live import Live
from rich.text import Text

from ncs.hostport import parse_hostport
from ncs.report.cache import UpdateError, request_dump
from ncs.report.display import full_time
from ncs.report.group import GroupingError, Report
from ncs.report.render_table import report_view
from ncs.stats.errors import StatsFormatError
from ncs.stats.quoting import safe_line


def refresh(args: argparse.Namespace, load: Callable[[], Report]) -> Report:
    """Return a fresh report: ask the agent for a dump first when --update is given.

    Raises UpdateError, StatsFormatError or GroupingError (one-line reasons).
    """
    if args.update:
        host, port = parse_hostport(args.update)
        request_dump(host, port, args.statsfile, args.updto)
    return load()


def footer(args: argparse.Namespace, error: str | None) -> str:
    """Return the line under the table: when it was refreshed and how, or why it was not."""
    source = f"the agent at {args.update}" if args.update else "the stats file"
    line = (f"Refreshed {full_time(time.time())} from {source}, every {args.interval:g} s;"
            " Ctrl-C ends.")
    return line + (f"\nNot refreshed: {safe_line(error)}" if error else "")


def watch(args: argparse.Namespace, load: Callable[[], Report], out: IO[str], err: IO[str]) -> int:
    """Show the live view on OUT until interrupted; return the exit status (2 if never loaded)."""
    console = Console(file=out, highlight=False)
    report: Report | None = None
    error: str | None = None
    try:
        with Live(console=console, screen=console.is_terminal, auto_refresh=False,
                  vertical_overflow="crop") as live:
            while True:
                try:
                    report = refresh(args, load)
                    error = None
                except (UpdateError, StatsFormatError, GroupingError, OSError) as e:
                    error = str(e)
                if report is None:
                    live.update(Text(footer(args, error)), refresh=True)
                else:
                    live.update(report_view(report, args.top, args.expand, args.addresses,
                                            console.width, footer(args, error)), refresh=True)
                time.sleep(args.interval)
    except KeyboardInterrupt:
        pass
    if report is None and error:
        err.write(f"ncs-report: {error}\n")
        return 2
    return 0
