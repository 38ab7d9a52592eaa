"""ncs-coalesce's command line: fetch every inventory host, merge, write the composite, report."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from collections.abc import Callable

from ncs import __version__, allocator, gcpause
from ncs.argtypes import OneLineParser, bounded_int
from ncs.coalesce.composite import Composite
from ncs.coalesce.history import add_history_options, append_composite
from ncs.coalesce.inventory import HostSpec, Inventory, InventoryError, load_inventory
from ncs.coalesce.localagent import fetch_local
from ncs.coalesce.sshfetch import READING, FetchResult, fetch_all
from ncs.files import is_fresh
from ncs.locks import FileLock, LockBusy
from ncs.stats.quoting import safe_text

EXIT_OK = 0
EXIT_HOST_FAILED = 1
EXIT_USAGE = 2
EXIT_LOCKED = 3

REPORT_FORMATS = ("table", "text", "html", "cgi", "json")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ncs-coalesce."""
    p = OneLineParser(
        prog="ncs-coalesce",
        description="fetch ncs stats from many hosts over SSH and merge them into one composite",
        epilog="examples:\n  ncs-coalesce -i inventory.yaml --format html --output /var/lib/ncs/all.stats\n"
               "  ncs-coalesce -i inventory.yaml --force -q",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"ncs-coalesce {__version__}")
    p.add_argument("-i", "--inventory", default="inventory.yaml",
                   help="inventory file (YAML; default: %(default)s)")
    p.add_argument("-j", "--jobs", type=bounded_int(1),
                   help="hosts fetched at once (default: inventory 'jobs', 8)")
    p.add_argument("-o", "--output", help="composite stats file (default: inventory 'cache')")
    p.add_argument("--format", choices=REPORT_FORMATS,
                   help="also print the report of the composite in this ncs-report format "
                        "(default: no report)")
    p.add_argument("--by", choices=("prefix", "domain"), default="prefix",
                   help="report grouping, with --format (default: %(default)s)")
    p.add_argument("--force", action="store_true",
                   help="fetch even if the composite is fresh (default: off)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress display on a terminal (default: shown on a terminal)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only failures (default: off)")
    add_history_options(p)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ncs-coalesce; returns the exit status.

    0: every host merged; 1: at least one host failed (the composite holds
    the others); 2: bad inventory or options; 3: another coalescer is running.
    """
    args = build_parser().parse_args(argv)
    # paramiko logs tracebacks from its transport threads; every failure is
    # already reported once per host, in one line, by the summary.
    logging.getLogger("paramiko").addHandler(logging.NullHandler())
    logging.getLogger("paramiko").propagate = False
    try:
        inv = load_inventory(args.inventory)
    except InventoryError as err:
        return _fail(str(err), EXIT_USAGE)
    if args.jobs is not None:
        inv.jobs = args.jobs
    output = args.output or inv.cache
    if not output:
        return _fail(f"{inv.path}: no output: give --output or set 'cache' in the inventory", EXIT_USAGE)
    out_dir = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(out_dir):
        return _fail(f"{output}: directory {out_dir} does not exist", EXIT_USAGE)

    if not args.force and is_fresh(output, inv.refresh):
        _note(args, f"{output}: fresh (younger than {inv.refresh:g} s), served without fetching")
        return _report(args, output, EXIT_OK)

    lock = FileLock(inv.lock or output + ".lock")
    try:
        lock.acquire(wait=inv.lock_wait)
    except LockBusy as err:
        who = f"pid {err.note}" if err.note.isdigit() else "another process"
        return _fail(f"{lock.path}: another ncs-coalesce ({who}) is running", EXIT_LOCKED)
    except OSError as err:
        return _fail(f"{lock.path}: cannot create lock: {err.strerror}", EXIT_USAGE)
    # The pid is for the message of a coalescer that finds the lock taken.
    lock.write(f"{os.getpid()}\n")
    try:
        # Another coalescer may have refreshed the composite while we waited.
        if not args.force and is_fresh(output, inv.refresh):
            _note(args, f"{output}: refreshed by another coalescer, served without fetching")
            return _report(args, output, EXIT_OK)
        built = Composite(inv.max_names)
        allocator.few_arenas()  # before the fetching threads start
        # The collector is paused; the composite collects each host's garbage
        # as it merges the host (Composite.add), without walking itself each
        # time, nor the modules and settings frozen here.
        started = time.monotonic()
        with gcpause.paused(freeze=True):
            results = _fetch_everything(inv, built, _progress_wanted(args))
            status = _write_composite(output, built, args)
            gcpause.tidy(full=True)
        _print_summary(args, results)
        # the merge is released once, and only once, the composite is written
        _print_totals(args, results, built.addresses if built.merge is None else None,
                      time.monotonic() - started)
    finally:
        try:
            lock.write("")  # no live holder any more
        finally:
            lock.release()
    if status is not None:
        return status
    failed = any(not r.ok for r in results)
    return _report(args, output, EXIT_HOST_FAILED if failed else EXIT_OK)


def _fetch_everything(inv: Inventory, built: Composite, progress: bool) -> list[FetchResult]:
    """Fetch the local agent and every host, merging each table into BUILT as it arrives.

    Returns the results (without their tables), the local agent first.  The
    local agent has rank 0 and the hosts 1, 2, ... in inventory order.
    """
    rank = {spec.name: i for i, spec in enumerate(inv.hosts, start=1)}

    def merged(result: FetchResult) -> None:
        where = rank.get(result.name, 0)
        if result.stats is not None:
            built.add(where, result.name, result.stats, result.seconds)
        else:
            built.fail(where, result.name, result.reason or "failed", result.seconds)

    local_result: list[FetchResult] = []
    local_thread = None
    if inv.local is not None:
        local = inv.local

        def fetch_local_agent() -> None:
            result = fetch_local(local)
            with READING:  # one merge at a time, as the fetching threads do
                merged(result)
            local_result.append(result.without_stats())

        local_thread = threading.Thread(target=fetch_local_agent, name="ncs-local", daemon=True)
        local_thread.start()
    if progress and inv.hosts:
        results = _fetch_with_progress(inv.hosts, inv.jobs, merged)
    else:
        results = fetch_all(inv.hosts, inv.jobs, on_done=merged)
    if local_thread is not None:
        local_thread.join()
    return local_result + results


def _fetch_with_progress(hosts: list[HostSpec], jobs: int,
                         merged: Callable[[FetchResult], None]) -> list[FetchResult]:
    """fetch_all (each result to MERGED) with a rich progress bar and a line per finished host on stderr."""
    # rich takes a while to import; only a run watched on a terminal uses it.
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    console = Console(stderr=True)
    running: set[str] = set()
    guard = threading.Lock()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                  transient=True) as bar:
        task = bar.add_task("fetching", total=len(hosts))

        def describe() -> str:
            names = sorted(running)
            shown = ", ".join(names[:4]) + (" ..." if len(names) > 4 else "")
            return f"fetching {escape(shown)}" if names else "fetching"

        def started(spec: HostSpec) -> None:
            with guard:
                running.add(spec.name)
                bar.update(task, description=describe())

        def done(result: FetchResult) -> None:
            merged(result)
            with guard:
                running.discard(result.name)
                bar.update(task, advance=1, description=describe())
            name = escape(safe_text(result.name))
            if result.ok:
                bar.console.print(f"[green]ok[/]     {name}  {result.records} records  "
                                  f"{result.seconds:.2f} s")
            else:
                bar.console.print(f"[red]failed[/] {name}  {escape(safe_text(result.reason or ''))}")

        return fetch_all(hosts, jobs, on_start=started, on_done=done)


def _write_composite(output: str, built: Composite, args: argparse.Namespace) -> int | None:
    """Write the composite BUILT atomically to OUTPUT, then append it to the history store.

    Returns None when written, or an exit status when nothing could be
    written (no host delivered stats, or the file could not be written;
    the previous composite is then left untouched) or when the history
    store refused the composite written (`ncs.coalesce.history`).
    """
    if not built.sources:
        print(f"ncs-coalesce: no host delivered stats; {output} left as it was", file=sys.stderr)
        return EXIT_HOST_FAILED
    now = int(time.time())  # one `current:` for the file and its snapshot
    try:
        built.write(output, now)
    except OSError as err:
        print(f"ncs-coalesce: {output}: cannot write: {err.strerror or err}", file=sys.stderr)
        return EXIT_HOST_FAILED
    built.release()
    return None if append_composite(args, output, built.header(now)) else EXIT_HOST_FAILED


def _print_summary(args: argparse.Namespace, results: list[FetchResult]) -> None:
    """Print one line per host (ok/failed, records, seconds, reason) on stderr.

    Failures are always printed; successes not with --quiet.  A terminal gets
    a rich table, anything else tab-separated lines.
    """
    rows = [r for r in results if not (args.quiet and r.ok)]
    if not rows:
        return
    if sys.stderr.isatty():
        # rich only for a terminal (see _fetch_with_progress)
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        table = Table(title="ncs-coalesce", title_justify="left")
        for col, justify in (("host", "left"), ("status", "left"), ("records", "right"),
                             ("seconds", "right"), ("reason", "left")):
            table.add_column(col, justify=justify)  # type: ignore[arg-type]
        for r in rows:
            # names and reasons hold brackets ("[addr]:port") that are not markup
            table.add_row(escape(safe_text(r.name)), "[green]ok[/]" if r.ok else "[red]failed[/]",
                          str(r.records) if r.ok else "-", f"{r.seconds:.2f}",
                          escape(safe_text(r.reason or "")))
        Console(stderr=True, highlight=False).print(table)
        return
    for r in rows:
        records = str(r.records) if r.ok else "-"
        status = "ok" if r.ok else "failed"
        line = f"{safe_text(r.name)}\t{status}\t{records}\t{r.seconds:.2f}"
        print(line + (f"\t{safe_text(r.reason)}" if r.reason else ""), file=sys.stderr)


def _report(args: argparse.Namespace, output: str, status: int) -> int:
    """Print the report of the composite when --format was given; returns STATUS (or 1 on error)."""
    if not args.format:
        return status
    render = _report_main()
    if render is None:
        return _fail("--format: ncs-report is not installed with this ncs", EXIT_USAGE)
    sys.stdout.flush()
    rc = render(["--format", args.format, "--by", args.by, output])
    return status if rc == 0 else max(status, EXIT_HOST_FAILED)


def _report_main() -> Callable[[list[str]], int] | None:
    """Return ncs-report's main function, or None when report.cli is missing."""
    try:
        # Here, not at the top: the report (and its renderers) only for --format.
        from ncs.report.cli import main as report_main
    except ImportError:
        return None
    return report_main


def _print_totals(args: argparse.Namespace, results: list[FetchResult], addresses: int | None,
                  seconds: float) -> None:
    """Print the run's one-line totals on stderr (not with --quiet when every host was merged).

    ADDRESSES: the composite's, or None when no composite was written.  A
    fleet's summary has a line per host; this is the line to read first.
    """
    failed = sum(not r.ok for r in results)
    if args.quiet and not failed:
        return
    records = sum(r.records for r in results if r.ok)
    merged = f"merged into {addresses:,} addresses" if addresses is not None else "no composite written"
    # unprefixed, as the per-host lines: "ncs-coalesce: ..." lines are the run's messages
    hosts = f"{len(results):,} host{'' if len(results) == 1 else 's'}"
    print(f"{hosts}, {len(results) - failed:,} ok, {failed:,} failed; {records:,} records {merged} "
          f"in {seconds:.1f} s", file=sys.stderr)


def _progress_wanted(args: argparse.Namespace) -> bool:
    """True when a progress display makes sense: stderr is a terminal and not disabled."""
    return sys.stderr.isatty() and not args.no_progress and not args.quiet


def _note(args: argparse.Namespace, message: str) -> None:
    if not args.quiet:
        print(f"ncs-coalesce: {message}", file=sys.stderr)


def _fail(message: str, status: int) -> int:
    print(f"ncs-coalesce: {message}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
