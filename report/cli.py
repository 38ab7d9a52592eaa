"""ncs-report's command line: read a stats file, group it, render one format, optionally cached.

Exit status: 0 report printed; 1 a stale report was printed because the agent
did not deliver a fresh stats file (--update); 2 bad arguments or an
unreadable/malformed stats file (one line on stderr, or in the page for
html/cgi).
"""

from __future__ import annotations

import argparse
import io
import sys
from typing import IO

from ncs import __version__, gcpause
from ncs.argtypes import OneLineParser, bounded_float, bounded_int
from ncs.hostport import parse_hostport
from ncs.report.cache import Served, WebOptions, serve
from ncs.report.group import (
    DEFAULT_V4_PREFIX,
    DEFAULT_V6_PREFIX,
    GroupingError,
    Report,
    make_report,
)
from ncs.report.history_cli import add_history_options, history_usage_error, run_history
from ncs.report.render_html import cgi_response, error_html, render_fragment
from ncs.report.render_json import write_json
from ncs.report.render_table import render_table
from ncs.report.render_text import write_text
from ncs.report.watch import watch
from ncs.stats.reader import StatsFormatError, read_stats

FORMATS = ("table", "text", "html", "cgi", "json")
PROG = "ncs-report"


class UsageError(Exception):
    """A bad combination of options; str() is the one-line reason."""


EXAMPLES = """\
examples:
  ncs-report demo-out/sample.stats                  table on a terminal, top talkers first
  ncs-report --by domain demo-out/sample.stats      grouped by registrable domain
  ncs-report --format html demo-out/sample.stats > report.html
  ncs-report --watch --update 127.0.0.1:10004 /var/lib/ncs/web.stats
                                                    live view, a fresh dump every 2 s
  ncs-report --history /var/lib/ncs/history.duckdb --since 7d --view new
                                                    remotes first seen in the last 7 days
"""


def _add_grouping_options(p: argparse.ArgumentParser) -> None:
    """Add what chooses the groups and the output format."""
    p.add_argument("--by", choices=("prefix", "domain"), default="prefix",
                   help="group by network prefix or by registrable domain (default: %(default)s)")
    p.add_argument("--format", choices=FORMATS,
                   help="output format (default: table on a terminal, else text)")
    p.add_argument("--v4-prefix", type=bounded_int(0, 32), default=DEFAULT_V4_PREFIX, metavar="N",
                   help="IPv4 prefix length of a network group (default: %(default)s)")
    p.add_argument("--v6-prefix", type=bounded_int(0, 128), default=DEFAULT_V6_PREFIX, metavar="N",
                   help="IPv6 prefix length of a network group (default: %(default)s)")


def _add_display_options(p: argparse.ArgumentParser) -> None:
    """Add what limits and shapes the table and the HTML page."""
    p.add_argument("--top", type=bounded_int(0), default=100, metavar="N",
                   help="table/html/watch: show the first N groups, 0 for all; text and json are "
                        "always complete (default: %(default)s)")
    p.add_argument("--addresses", type=bounded_int(0), default=20, metavar="N",
                   help="table/html/watch: address rows shown per group, 0 for all; the HTML "
                        "page opens every group to all its addresses (default: %(default)s)")
    p.add_argument("--expand", action=argparse.BooleanOptionalAction, default=True,
                   help="table/watch: list each group's addresses under it (default: expand)")
    p.add_argument("--width", type=bounded_int(40), metavar="COLS",
                   help="table: terminal width, at least 40 (default: the terminal's)")


def _add_web_options(p: argparse.ArgumentParser) -> None:
    """Add the web use's cache and the agent's dump port."""
    web = p.add_argument_group("web use (like the original web report)")
    web.add_argument("--cache", metavar="FILE", help="cache file of the rendered report (default: none)")
    web.add_argument("--refresh", type=bounded_float(0), default=300.0, metavar="SECONDS",
                     help="serve the cache while younger than this (default: %(default)g)")
    web.add_argument("--update", metavar="HOST:PORT",
                     help="the agent's UDP dump port, asked for fresh data before a report "
                          "(with --cache or --watch; default: none)")
    web.add_argument("--updto", type=bounded_float(0.1), default=15.0, metavar="SECONDS",
                     help="how long to wait for the agent's fresh stats file (default: %(default)g)")


def _add_watch_options(p: argparse.ArgumentParser) -> None:
    """Add the live terminal view."""
    live = p.add_argument_group("live view")
    live.add_argument("--watch", action="store_true",
                      help="refresh the table in place every --interval seconds, from the agent "
                           "(--update) or by re-reading the file; Ctrl-C ends it (default: off)")
    live.add_argument("--interval", type=bounded_float(0.2), default=2.0, metavar="SECONDS",
                      help="seconds between refreshes of --watch (default: %(default)g)")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ncs-report."""
    p = OneLineParser(prog=PROG, description="report per-remote-IP traffic statistics from a stats file",
                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _add_grouping_options(p)
    _add_display_options(p)
    _add_web_options(p)
    _add_watch_options(p)
    add_history_options(p)
    p.add_argument("statsfile", metavar="STATSFILE", nargs="?",
                   help="stats file ('-': standard input); not with --history")
    return p


def check_args(args: argparse.Namespace) -> WebOptions | None:
    """Return the web options, if any; raise UsageError for a bad combination."""
    if args.watch:
        if args.cache or args.format != "table":
            raise UsageError("--watch shows the table; it takes neither --cache nor another --format")
        if args.statsfile == "-":
            raise UsageError("--watch needs a stats file path, not '-'")
    elif args.update and not args.cache:
        raise UsageError("--update needs --cache or --watch")
    try:
        update = parse_hostport(args.update) if args.update else None
    except ValueError as e:
        raise UsageError(f"--update {e}") from None
    if args.cache is None:
        return None
    if args.format == "table":
        raise UsageError("--cache needs --format text, html, cgi or json")
    if args.statsfile == "-":
        raise UsageError("--cache needs a stats file path, not '-'")
    return WebOptions(args.cache, args.refresh, update, args.updto)


def load_report(args: argparse.Namespace) -> Report:
    """Return the grouped report of the stats file; raises StatsFormatError, GroupingError.

    The classic text keeps the original's order; every other format lists top talkers first.
    """
    stats = read_stats(args.statsfile)
    order = "classic" if args.format == "text" else "bandwidth"
    return make_report(stats, args.by, args.v4_prefix, args.v6_prefix, order)


def render_body(report: Report, args: argparse.Namespace) -> str:
    """Return the cacheable body for ARGS.format: text, json, or the HTML fragment (html/cgi)."""
    if args.format in ("html", "cgi"):
        return render_fragment(report, args.top, args.addresses)
    buf = io.StringIO()
    if args.format == "json":
        write_json(report, buf)
    else:
        write_text(report, buf)
    return buf.getvalue()


def emit(args: argparse.Namespace, out: IO[str], err: IO[str], body: str, error: str | None) -> None:
    """Print BODY in ARGS.format with the one-line ERROR (in the page for html/cgi, else stderr)."""
    line = f"{PROG}: {error}" if error else None
    if args.format in ("html", "cgi"):
        page_body = (error_html(line) if line else "") + body
        out.write(cgi_response(page_body) if args.format == "cgi" else page_body)
        return
    if line:
        err.write(line + "\n")
    out.write(body)


def fail(args: argparse.Namespace, out: IO[str], err: IO[str], message: str) -> int:
    """Report a fatal one-line error (in the page for html/cgi, always on stderr); return 2."""
    line = f"{PROG}: {message}"
    if args.format == "html":
        out.write(error_html(line))
    elif args.format == "cgi":
        out.write(cgi_response(error_html(line)))
    err.write(line + "\n")
    return 2


def run(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    """Produce the report for parsed ARGS on OUT; return the exit status."""
    if args.format is None:
        args.format = "table" if out.isatty() or args.watch else "text"
    usage = history_usage_error(args)
    if usage:
        return fail(args, out, err, usage)
    if args.history:
        error = run_history(args, out)
        return fail(args, out, err, error) if error else 0
    try:
        web = check_args(args)
    except UsageError as e:
        return fail(args, out, err, str(e))
    if args.watch:
        return watch(args, lambda: load_report(args), out, err)
    try:
        if web is not None:
            served: Served = serve(web, args.statsfile, lambda: render_body(load_report(args), args))
            emit(args, out, err, served.body, served.error)
            return 1 if served.error else 0
        report = load_report(args)
    except (StatsFormatError, GroupingError) as e:
        return fail(args, out, err, str(e))
    except OSError as e:
        name = getattr(e, "filename", None) or args.cache or args.statsfile
        return fail(args, out, err, f"{name}: {e.strerror or e}")
    if args.format == "table":
        render_table(report, out, args.top, args.expand, args.addresses, width=args.width)
    elif args.format in ("html", "cgi"):
        emit(args, out, err, render_fragment(report, args.top, args.addresses), None)
    elif args.format == "json":
        write_json(report, out)
    else:
        write_text(report, out)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ncs-report; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        with gcpause.paused():
            status = run(args, sys.stdout, sys.stderr)
        sys.stdout.flush()
    except BrokenPipeError:
        # `ncs-report ... | head` is normal use, not an error worth a traceback.
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
