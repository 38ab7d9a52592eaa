"""The optional agent on the central box: ask it for a dump over UDP and read its stats file."""

from __future__ import annotations

import time

from ncs.coalesce.inventory import LocalAgent
from ncs.coalesce.sshfetch import FetchResult
from ncs.dumpport import DumpPortError, request_dump
from ncs.files import file_id, wait_rewritten
from ncs.stats.reader import StatsFormatError, read_stats


def fetch_local(local: LocalAgent) -> FetchResult:
    """Refresh (when an update address is set) and read the local agent's stats file.

    Never raises: a failure comes back as a FetchResult with the reason.
    """
    started = time.monotonic()

    def failed(reason: str) -> FetchResult:
        return FetchResult.failed(local.name, reason, time.monotonic() - started)

    if local.update is not None:
        before = file_id(local.stats)
        try:
            request_dump(*local.update, max(0.1, local.updto))  # updto 0: one short look
        except DumpPortError as err:
            return failed(f"dump request to {err.where} failed: {err.reason}")
        if not wait_rewritten(local.stats, before, local.updto):
            return failed(f"{local.stats} was not rewritten within {local.updto:g} s of the dump request")
    try:
        stats = read_stats(local.stats, allow_empty=False)
    except StatsFormatError as err:
        return failed(f"not a complete stats file: {err}")
    return FetchResult.fetched(local.name, stats, time.monotonic() - started)
