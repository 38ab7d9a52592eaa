"""Web use of the report: a cache file refreshed on demand from the agent, regenerated once.

The flow of one page view:

1. The cache is fresh (younger than --refresh): print it.
2. Otherwise take an exclusive lock on CACHE.lock.  Whoever waited for the
   lock looks again: if the cache was replaced meanwhile, it prints that, and
   if another view's update attempt failed meanwhile, it prints the stale
   cache with that attempt's error instead of waiting for the agent again.
3. The lock holder asks the agent for a dump over UDP ("dump" -> "OK <epoch>"),
   waits (at most --updto seconds in all) until the stats file is newer,
   renders the report, replaces the cache atomically and prints it.

The lock file's content is the error of the last failed attempt (empty after
a success) and its mtime the time of that attempt.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from ncs import dumpport
from ncs.files import file_id, is_fresh, mtime_ns, replace_file, wait_rewritten
from ncs.locks import FileLock


class UpdateError(Exception):
    """The agent did not deliver a fresh stats file; str() is a one-line reason."""


@dataclass(frozen=True, slots=True)
class WebOptions:
    """--cache, --refresh, --update and --updto of the command line."""

    cache: str
    refresh: float = 300.0
    update: tuple[str, int] | None = None
    updto: float = 15.0


@dataclass(frozen=True, slots=True)
class Served:
    """What a page view prints: the report BODY and, if it is stale, the ERROR line."""

    body: str
    error: str | None
    regenerated: bool


def read_cache(path: str) -> str | None:
    """Return the cache file's text, or None if there is none."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return None


def write_cache(path: str, text: str) -> None:
    """Replace the cache at PATH with TEXT atomically (PATH.tmp.PID, fsync, rename).

    The file is made world-readable: the web server's user may not be the
    one who regenerated it.  Raises OSError; a failure leaves the old cache.
    """
    replace_file(path, [text.encode("utf-8")], mode=0o644, tmp=f"{path}.tmp.{os.getpid()}")


def request_dump(host: str, port: int, stats_path: str, timeout: float) -> None:
    """Ask the agent at HOST:PORT for a dump and wait until STATS_PATH is rewritten.

    Returns when the stats file changed after an "OK" answer, all within
    TIMEOUT seconds.  Raises UpdateError (no answer, refused, a different
    answer, or the file not rewritten in time).
    """
    before = file_id(stats_path)
    deadline = time.monotonic() + timeout
    try:
        dumpport.request_dump(host, port, timeout)
    except dumpport.DumpPortError as e:
        raise UpdateError(str(e)) from None
    if not wait_rewritten(stats_path, before, deadline - time.monotonic()):
        raise UpdateError(f"stats file {stats_path} was not rewritten within {timeout:g} s")


def _stale(cache: str, error: str, render: Callable[[], str]) -> Served:
    # Without any cache, the stats file as it is beats an empty page.
    old = read_cache(cache)
    if old is None:
        return Served(render(), error, False)
    return Served(old, error, False)


def serve(opts: WebOptions, stats_path: str, render: Callable[[], str]) -> Served:
    """Return what this page view prints, regenerating the cache if it is stale.

    RENDER returns the report body from the current stats file (its
    exceptions propagate, the cache is then left alone).  Raises OSError when
    the cache or its lock cannot be written.
    """
    started = time.time_ns()
    if is_fresh(opts.cache, opts.refresh):
        body = read_cache(opts.cache)
        if body is not None:
            return Served(body, None, False)
    with FileLock(opts.cache + ".lock", mode=0o666) as lock:
        # Another view may have done the work while this one waited.
        if mtime_ns(opts.cache) >= started or is_fresh(opts.cache, opts.refresh):
            body = read_cache(opts.cache)
            if body is not None:
                return Served(body, None, False)
        last_error = lock.note()
        if lock.mtime_ns() >= started and last_error:
            return _stale(opts.cache, last_error, render)
        if opts.update is not None:
            try:
                request_dump(opts.update[0], opts.update[1], stats_path, opts.updto)
            except UpdateError as e:
                lock.write(str(e))
                return _stale(opts.cache, str(e), render)
        body = render()
        write_cache(opts.cache, body)
        lock.write("")
        return Served(body, None, True)
