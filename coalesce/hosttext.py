"""Text that a host controls (its command's stderr, banners, error texts), made inert and one line.

Whatever a monitored host writes must reach the operator's terminal, the
summary and the composite's header as plain characters: an escape sequence
(`ESC ] 0 ; title BEL`, `ESC [ 2 J`) would retitle or clear the terminal,
a line break would forge a line of the summary.  Every reason shown for a
host goes through `inert`; a command's standard error through
`stderr_text`, which keeps all of it (up to a bound), not just its first
line.
"""

from __future__ import annotations

from ncs.stats.quoting import decode_stats_bytes, safe_text

#: Bytes of a command's standard error kept for the reason.
STDERR_KEEP = 4096
#: Joins the lines of a multi-line text into one.
LINE_JOIN = " | "


def inert(text: str) -> str:
    """Return TEXT as one line of printable characters: lines joined by " | ", the rest as \\x{hex}.

    Empty lines and the blanks around each line are dropped.
    """
    lines = [line.strip() for line in text.splitlines()]
    return safe_text(LINE_JOIN.join(line for line in lines if line))


def stderr_text(kept: bytes, total: int) -> str:
    """Return a command's standard error for a reason: the KEPT bytes inert, and what was left out.

    TOTAL is how many bytes the command wrote in all.
    """
    text = inert(decode_stats_bytes(kept))
    if total > len(kept):
        text += f" ... ({total - len(kept)} more bytes)"
    return text
