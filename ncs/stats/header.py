"""The comment header of a stats file: what an agent writes there, and reading values back.

A header is a list of lines without their leading "# " (e.g.
"start:\\t1145923212,\\tMon Apr 24 17:00:12 2006").  The original's lines
come first; ncs adds further "key: value" lines (drops, evictions, DNS
counters), which the original's report prints as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ncs import __version__
from ncs.stats.numbers import number_value
from ncs.stats.quoting import escape_bytes, safe_text
from ncs.stats.times import local_time_text


@dataclass
class Header:
    """What an agent knows when it writes a file; rendered by `header_lines`."""

    start: int
    current: int
    hits_per_minute: float
    bytes_per_second: float
    users: int
    device: str
    promiscuous: bool
    bpf: str
    payload: int | None = None
    snaplen: int | None = None
    match: bytes | None = None
    nomatch: bytes | None = None
    #: further "key: value" lines (drops, evictions, DNS counters), in order
    extra: list[tuple[str, str]] = field(default_factory=list)


def localtime_text(epoch: int) -> str:
    """Return Perl's `scalar localtime(epoch)`, e.g. 'Mon Apr 24 17:00:12 2006' (see ncs.stats.times)."""
    return local_time_text(epoch, "%a %b %e %H:%M:%S %Y")


def version_line() -> str:
    """Return the first header line, naming the program that wrote the file."""
    return f"ncs version {__version__}"


def time_line(key: str, epoch: int) -> str:
    """Return a time header line, "KEY:\\tEPOCH,\\tlocal time" (start, current)."""
    return f"{key}:\t{epoch},\t{localtime_text(epoch)}"


def rate_lines(hits_per_minute: float, bytes_per_second: float) -> list[str]:
    """Return the "hits:" and "bytes:" header lines, rounded as the original prints them."""
    return [f"hits:\t\t{hits_per_minute:.0f} per minute", f"bytes:\t{bytes_per_second:.0f} per second"]


def header_lines(h: Header) -> list[str]:
    """Return the header lines of H, in file order."""
    lines = [
        version_line(),
        time_line("start", h.start),
        time_line("current", h.current),
        *rate_lines(h.hits_per_minute, h.bytes_per_second),
        f"users:\t{h.users}",
        f"device:\t{safe_text(h.device)}\t{'promiscuous' if h.promiscuous else 'non-promiscuous'}",
        f"bpf:\t\t{safe_text(h.bpf)}",
    ]
    if h.match is not None or h.nomatch is not None:
        lines.append(f"fragment:\t{h.payload} - {h.snaplen}")
        if h.match is not None:
            lines.append("contains:\t" + escape_bytes(h.match))
        if h.nomatch is not None:
            lines.append("excludes:\t" + escape_bytes(h.nomatch))
    lines.extend(f"{safe_text(k)}:\t{safe_text(v)}" for k, v in h.extra)
    return lines


def header_value(lines: list[str], key: str) -> str | None:
    """Return the text after the first "KEY:" line of LINES, stripped, or None."""
    prefix = key + ":"
    for line in lines:
        if line.startswith(prefix):
            return line[len(prefix):].strip()
    return None


def header_number(lines: list[str], key: str) -> float | None:
    """Return the number leading header line KEY ("start: 1145923212, ...": 1145923212), or None.

    Integral numbers come back as int.  None also for a value no stats file
    may hold (`ncs.stats.numbers`: not finite, negative, too long or too large).
    """
    value = header_value(lines, key)
    if not value:
        return None
    head = value.split(",")[0].split()
    if not head:
        return None
    try:
        return number_value(head[0])
    except ValueError:  # not a number, or none a stats file may hold (BadNumber)
        return None
