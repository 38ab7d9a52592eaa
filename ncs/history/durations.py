"""Spans of time as people write them: "90m", "24h", "7d", "2w", or plain seconds."""

from __future__ import annotations

import re

#: Seconds per unit letter.
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}

_SPAN = re.compile(r"(\d{1,12})([smhdwy]?)")


def parse_duration(text: str) -> int:
    """Return the seconds of TEXT ("24h", "7d", "3600"); raises ValueError naming TEXT."""
    m = _SPAN.fullmatch(text.strip())
    if not m:
        raise ValueError(f"'{text}' is not a span of time (a number with s, m, h, d, w or y)")
    return int(m.group(1)) * UNITS[m.group(2) or "s"]


def duration_text(seconds: int) -> str:
    """Return SECONDS in the largest unit that divides it ("7d", "36h", "90s"), as parse_duration reads."""
    for unit, size in sorted(UNITS.items(), key=lambda u: -u[1]):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
