"""Unix times from a stats file as local-time text, whatever value the file holds."""

from __future__ import annotations

import time

#: What a time the platform cannot express (beyond year 2**31 or time_t) shows as.
OUT_OF_RANGE = "(out of range)"


def local_time_text(epoch: float, fmt: str) -> str:
    """Return EPOCH in local time formatted by strftime FMT, or OUT_OF_RANGE.

    A stats file may hold any time up to `ncs.stats.numbers.MAX_VALUE`;
    localtime() refuses those past year 2**31 or time_t, and a damaged or
    hostile time must not stop a report or a composite.
    """
    try:
        return time.strftime(fmt, time.localtime(epoch))
    except (OverflowError, OSError, ValueError):
        return OUT_OF_RANGE
