"""The retention policy: how long raw snapshots, hourly and daily roll-ups are kept."""

from __future__ import annotations

from dataclasses import dataclass

from ncs.history.durations import duration_text, parse_duration

#: The levels of a snapshot, finest first, with the width of their time bucket in seconds.
LEVELS: dict[str, int] = {"raw": 0, "hour": 3600, "day": 86400}

@dataclass(frozen=True)
class Keep:
    """How long each level is kept, in seconds: raw snapshots, hourly and daily roll-ups."""

    raw: int = 2 * 86400
    hour: int = 30 * 86400
    day: int = 400 * 86400

    def text(self) -> str:
        """Return the policy as `parse_keep` reads it ("raw=2d,hour=30d,day=400d")."""
        return ",".join(f"{level}={duration_text(getattr(self, level))}" for level in LEVELS)


def parse_keep(text: str) -> Keep:
    """Return the policy of TEXT, "LEVEL=SPAN,..." (levels raw, hour, day; others keep defaults).

    Raises ValueError (one line) for an unknown level, a bad span, or
    spans that do not grow from raw to day.
    """
    spans: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        level, sep, span = part.partition("=")
        if not sep or level not in LEVELS:
            raise ValueError(f"'{part}' is not LEVEL=SPAN with LEVEL one of {', '.join(LEVELS)}")
        spans[level] = parse_duration(span)
    keep = Keep(**spans)
    if not keep.raw <= keep.hour <= keep.day:
        raise ValueError(f"'{text}': raw <= hour <= day is needed (got {keep.text()})")
    return keep
