"""The stats file: its record model, its header, and the writer.

The file is Perl source compatible with the original Net::Connection::Sniffer:
`perl -e 'do FILE'` returns the hash of records.  This module owns the model
that report and coalesce import; the parser that reads such files back lives in
`agent.statsparse` (it never evaluates the text).

Layout written here (DESIGN section 6)::

    (empty line)
    # ncs version 1.0.0
    # start:\t1145923212,\tMon Apr 24 17:00:12 2006
    ...
    {
      my $dump = {
    \t'69.3.95.131'\t=> {
    \t\tB\t=> 240,
    ...
    \t},
      };
    }
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ncs import __version__

#: The record keys in the order the file lists them (sorted, as the original).
RECORD_KEYS = ("B", "C", "E", "N", "R", "S", "T", "W")


@dataclass(slots=True)
class Record:
    """Statistics for one remote address (DESIGN section 2).

    B, C: bytes and hits since E.  E: time of the last rate fold (first-seen
    time until then).  S: start of the data set.  R, W: hits and bytes per
    hour (decaying estimates).  T: reverse-DNS expiry (0: never looked up).
    N: PTR names, or [':soa.host'] after NXDOMAIN.  Times are Unix seconds.
    """

    B: float = 0
    C: float = 0
    E: int = 0
    S: int = 0
    R: float = 0.0
    W: float = 0.0
    T: int = 0
    N: list[str] = field(default_factory=list)


@dataclass
class StatsFile:
    """A whole stats file: its comment header lines and its records.

    `header` holds the comment lines between the leading empty line and the
    opening brace, without the leading "# " (e.g. "start:\\t1145923212,\\tMon
    Apr 24 17:00:12 2006").  `records` maps the address text to its record, in
    file order.  `source` names where it came from, for error messages.
    """

    header: list[str]
    records: dict[str, Record]
    source: str = ""

    def header_value(self, key: str) -> str | None:
        """Return the text after the first "KEY:" header line, stripped, or None."""
        prefix = key + ":"
        for line in self.header:
            if line.startswith(prefix):
                return line[len(prefix):].strip()
        return None

    def header_number(self, key: str) -> int | None:
        """Return the leading integer of header line KEY ("start: 1145923212, ..."), or None."""
        value = self.header_value(key)
        if not value:
            return None
        head = value.split(",")[0].split()[0]
        try:
            return int(head)
        except ValueError:
            return None


@dataclass
class Header:
    """What the agent knows when it writes a file; rendered by `header_lines`."""

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
    """Return Perl's `scalar localtime(epoch)`, e.g. 'Mon Apr 24 17:00:12 2006'."""
    return time.strftime("%a %b %e %H:%M:%S %Y", time.localtime(epoch))


def escape_bytes(data: bytes) -> str:
    """Return match text as the original prints it: unprintable bytes as \\x{hex}."""
    out = []
    for byte in data:
        if byte < 0x20 or byte > 0xFE or 0x7E < byte < 0xA8:
            out.append(f"\\x{{{byte:x}}}")
        else:
            out.append(chr(byte))
    return "".join(out)


def safe_text(text: str) -> str:
    """Return TEXT with control characters spelled as \\x{hex}.

    Names come from the network; a newline or escape sequence in one must not
    break the line structure of the file or a terminal that shows it.
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else f"\\x{{{ord(ch):x}}}" for ch in text)


def perl_quote(text: str) -> str:
    """Return TEXT as a Perl single-quoted string literal."""
    if "'" not in text and "\\" not in text and text.isprintable():
        return "'" + text + "'"  # the common case, kept cheap for the writer
    return "'" + safe_text(text).replace("\\", "\\\\").replace("'", "\\'") + "'"


def header_lines(h: Header) -> list[str]:
    """Return the header comment lines (without '# ') for H, in file order."""
    lines = [
        f"ncs version {__version__}",
        f"start:\t{h.start},\t{localtime_text(h.start)}",
        f"current:\t{h.current},\t{localtime_text(h.current)}",
        f"hits:\t\t{h.hits_per_minute:.0f} per minute",
        f"bytes:\t{h.bytes_per_second:.0f} per second",
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


def address_sort_key(address: str) -> tuple[int, int]:
    """Sort key for address text: IPv4 numerically first, then IPv6 numerically.

    Raises ValueError for text that is not an IP address.
    """
    # inet_pton is an order of magnitude cheaper than ipaddress, which matters
    # when a dump sorts a million addresses; ipaddress covers the rest (zones).
    try:
        if ":" in address:
            return (6, int.from_bytes(socket.inet_pton(socket.AF_INET6, address), "big"))
        return (4, int.from_bytes(socket.inet_pton(socket.AF_INET, address), "big"))
    except (OSError, ValueError):
        ip = ipaddress.ip_address(address)
        return (ip.version, int(ip))


# One record block.  Numbers must come out as Perl's sprintf("%.0f") prints
# them (round half to even on the binary value, like C).  Python's round()
# does exactly that and "%d" of the result is four times cheaper than "%.0f"
# of an int, which matters for a million records (the one difference, -0.4
# printing "0" rather than "-0", is the same number).  "%.0f" stays as the
# fallback for values round() refuses: inf and nan, which Perl reads back.
_RECORD_LAYOUT = (
    "\t%s%s=> {{\n"
    "\t\tB\t=> {n},\n"
    "\t\tC\t=> {n},\n"
    "\t\tE\t=> {n},\n"
    "\t\tN\t=> [%s],\n"
    "\t\tR\t=> {n},\n"
    "\t\tS\t=> {n},\n"
    "\t\tT\t=> {n},\n"
    "\t\tW\t=> {n},\n"
    "\t}},\n"
)
_RECORD_FORMAT_INT = _RECORD_LAYOUT.format(n="%d")
_RECORD_FORMAT_FLOAT = _RECORD_LAYOUT.format(n="%.0f")


def format_record(address: str, rec: Record) -> str:
    """Return the text block of one record, "\\t'ADDR'\\t=> {" through "\\t},"."""
    # Quoting is inlined for the common case (nothing to escape): a call per
    # string would cost more than the rest of the record.
    if "'" in address or "\\" in address or not address.isprintable():
        quoted = perl_quote(address)
    else:
        quoted = "'" + address + "'"
    names = ""
    if rec.N:
        plain = "".join(rec.N)
        if "'" in plain or "\\" in plain or not plain.isprintable():
            names = "".join([perl_quote(n) + "," for n in rec.N])
        else:
            names = "'" + "','".join(rec.N) + "',"
    # The original pads with a tab when the address is at most 13 characters.
    sep = "\t" if len(address) <= 13 else " "
    b, c, e, r, s, t, w = rec.B, rec.C, rec.E, rec.R, rec.S, rec.T, rec.W
    try:
        return _RECORD_FORMAT_INT % (
            quoted, sep,
            b if type(b) is int else round(b),
            c if type(c) is int else round(c),
            e if type(e) is int else round(e),
            names,
            r if type(r) is int else round(r),
            s if type(s) is int else round(s),
            t if type(t) is int else round(t),
            w if type(w) is int else round(w),
        )
    except (OverflowError, ValueError):
        return _RECORD_FORMAT_FLOAT % (quoted, sep, b, c, e, names, r, s, t, w)


#: what follows the last record block
CLOSING = "  };\n}\n"


def opening_text(header: list[str]) -> str:
    """Return everything before the first record: empty line, '# ' header lines, the opening."""
    return "\n" + "".join(f"# {line}\n" for line in header) + "{\n  my $dump = {\n"


def iter_stats_text(header: list[str], records: Iterable[tuple[str, Record]]) -> Iterator[str]:
    """Yield the file's text in chunks; RECORDS must already be in address order."""
    yield opening_text(header)
    chunk: list[str] = []
    for address, rec in records:
        chunk.append(format_record(address, rec))
        if len(chunk) >= 4096:
            yield "".join(chunk)
            chunk.clear()
    if chunk:
        yield "".join(chunk)
    yield CLOSING


def sorted_records(records: dict[str, Record]) -> list[tuple[str, Record]]:
    """Return RECORDS' items in file order (IPv4 numerically, then IPv6)."""
    return sorted(records.items(), key=lambda item: address_sort_key(item[0]))


def replace_file(path: str, chunks: Iterable[bytes], mode: int | None = None,
                 tmp: str | None = None) -> None:
    """Write CHUNKS to PATH atomically: a temporary file (TMP, default PATH.tmp), fsync, rename.

    A reader never sees a half-written file, and a failure (OSError, or
    anything the CHUNKS iterable raises) leaves the previous file in place and
    removes the temporary one.  MODE, if given, is set before the rename.
    """
    tmp = tmp or path + ".tmp"
    try:
        with open(tmp, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_atomic(path: str, header: list[str], records: Iterable[tuple[str, Record]]) -> None:
    """Write a stats file to PATH atomically (see replace_file).  Raises OSError."""
    replace_file(path, (text.encode() for text in iter_stats_text(header, records)))
