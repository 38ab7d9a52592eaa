"""Stats files as numpy columns, with a vectorised reader for the layout ncs writes.

Reports and merges work on whole columns (sums, maxima, groupings), so they
need no Record object per address.  `read_columns` recognises the exact
layout that agent.statsfile writes with array operations: every record is ten
lines whose fixed parts are checked byte by byte and whose numbers are read as
digit columns.  Anything else (files of the original agent with other
spacing, Data::Dumper composites, damaged files) goes through
agent.statsparse, so the result and the errors are always the parser's.
"""

from __future__ import annotations

import functools
import re
import socket
import sys
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from agent.statsfile import Record, StatsFile
from agent.statsparse import StatsFormatError, decode_stats_bytes, parse_stats

OPENING = b"{\n  my $dump = {\n"
CLOSING = b"  };\n}\n"
LINES = 10  # lines per record in the ncs layout
# (line within the record, fixed start of the line) for the eight key lines
KEY_LINES = [(1, b"\t\tB\t=> "), (2, b"\t\tC\t=> "), (3, b"\t\tE\t=> "), (4, b"\t\tN\t=> ["),
             (5, b"\t\tR\t=> "), (6, b"\t\tS\t=> "), (7, b"\t\tT\t=> "), (8, b"\t\tW\t=> ")]
NUMBER_LINES = {"B": 1, "C": 2, "E": 3, "R": 5, "S": 6, "T": 7, "W": 8}
_NAME = re.compile(r"'((?:[^'\\]|\\.)*)',")
_ESCAPE = re.compile(r"\\([\\'])")
_POW10 = 10 ** np.arange(18, -1, -1, dtype=np.int64)
_PTON4 = functools.partial(socket.inet_pton, socket.AF_INET)
_PTON6 = functools.partial(socket.inet_pton, socket.AF_INET6)


@dataclass
class StatsColumns:
    """A stats file as columns: row i is addresses[i], B[i], ... ; names only for named rows."""

    header: list[str]
    addresses: list[str]
    B: np.ndarray
    C: np.ndarray
    E: np.ndarray
    S: np.ndarray
    R: np.ndarray
    W: np.ndarray
    T: np.ndarray
    names: dict[int, list[str]] = field(default_factory=dict)
    source: str = ""

    def __len__(self) -> int:
        return len(self.addresses)

    def to_statsfile(self) -> StatsFile:
        """Return the same data as a StatsFile of Record objects."""
        cols = [c.tolist() for c in (self.B, self.C, self.E, self.S, self.R, self.W, self.T)]
        records = {
            a: Record(B=b, C=c, E=e, S=s, R=r, W=w, T=t, N=list(self.names.get(i, [])))
            for i, (a, b, c, e, s, r, w, t) in enumerate(zip(self.addresses, *cols))
        }
        return StatsFile(list(self.header), records, self.source)

    @classmethod
    def from_statsfile(cls, sf: StatsFile) -> StatsColumns:
        """Return the columns of a parsed StatsFile (R and W as float64, the rest int64)."""
        recs = list(sf.records.values())

        def col(key: str, dtype) -> np.ndarray:
            return np.array([getattr(r, key) for r in recs], dtype=dtype)

        return cls(list(sf.header), list(sf.records), col("B", np.int64), col("C", np.int64),
                   col("E", np.int64), col("S", np.int64), col("R", np.float64),
                   col("W", np.float64), col("T", np.int64),
                   {i: list(r.N) for i, r in enumerate(recs) if r.N}, sf.source)


def read_columns(path: str) -> StatsColumns:
    """Read a stats file ('-': stdin) into columns.

    Raises StatsFormatError ("SOURCE:LINE: message") for anything the parser
    rejects, including an unreadable file.
    """
    source = "<stdin>" if path == "-" else path
    try:
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as f:
                data = f.read()
    except OSError as err:
        raise StatsFormatError(source, 0, f"cannot read: {err.strerror or err}") from None
    return columns_from_bytes(data, source)


def columns_from_bytes(data: bytes, source: str) -> StatsColumns:
    """Return the columns of a stats file's bytes; see read_columns."""
    fast = _fast(data, source)
    if fast is not None:
        return fast
    return StatsColumns.from_statsfile(parse_stats(decode_stats_bytes(data), source))


def _fast(data: bytes, source: str) -> StatsColumns | None:
    """The vectorised reader; None when DATA is not exactly in the ncs layout."""
    start = data.find(OPENING)
    if start < 0 or not data.endswith(CLOSING):
        return None
    head = data[:start]
    if not head.startswith(b"\n") or not head.endswith(b"\n"):
        return None
    header_lines = head[1:].split(b"\n")[:-1]
    if not all(line.startswith(b"# ") for line in header_lines):
        return None
    try:
        header = [line[2:].decode() for line in header_lines]
    except UnicodeDecodeError:
        return None
    body = data[start + len(OPENING): len(data) - len(CLOSING)]
    if not body:
        return _empty(header, source)
    buf = np.frombuffer(body, np.uint8)
    ends = np.flatnonzero(buf == 10)
    if len(ends) % LINES or (len(ends) and ends[-1] != len(buf) - 1):
        return None
    n = len(ends) // LINES
    ends = ends.reshape(n, LINES)
    starts = np.empty_like(ends)
    starts[:, 0] = np.concatenate([[0], ends[:-1, -1] + 1])
    starts[:, 1:] = ends[:, :-1] + 1
    for k, prefix in KEY_LINES:
        if not _starts_with(buf, starts[:, k], ends[:, k], prefix):
            return None
    # record framing: "\t'ADDR'<tab or space>=> {" ... "\t},"
    if not (_starts_with(buf, starts[:, 0], ends[:, 0], b"\t'")
            and (ends[:, 9] - starts[:, 9] == 3).all()
            and _starts_with(buf, starts[:, 9], ends[:, 9], b"\t},")
            and (buf[ends[:, 0] - 6] == ord("'")).all()
            and np.isin(buf[ends[:, 0] - 5], (9, 32)).all()
            and _starts_with(buf, ends[:, 0] - 4, ends[:, 0], b"=> {")):
        return None
    numbers = {}
    for key, k in NUMBER_LINES.items():
        values = _integers(buf, starts[:, k] + 7, ends[:, k] - 1)
        if values is None or not (buf[ends[:, k] - 1] == ord(",")).all():
            return None
        numbers[key] = values
    addresses = _addresses(body, starts[:, 0] + 2, ends[:, 0] - 6, buf[ends[:, 0] - 5])
    if addresses is None:
        return None
    names = _names(body, starts[:, 4] + 8, ends[:, 4])
    if names is None:
        return None
    return StatsColumns(header, addresses, numbers["B"], numbers["C"], numbers["E"], numbers["S"],
                        numbers["R"].astype(np.float64), numbers["W"].astype(np.float64),
                        numbers["T"], names, source)


def _empty(header: list[str], source: str) -> StatsColumns:
    z = np.empty(0, np.int64)
    return StatsColumns(header, [], z, z, z, z, z.astype(np.float64), z.astype(np.float64), z,
                        {}, source)


def _words(buf: np.ndarray) -> np.ndarray:
    """An overlapping view: element i is the little-endian 8-byte word at byte i of BUF."""
    return np.ndarray(shape=(len(buf) - 7,), dtype="<u8", buffer=buf, strides=(1,))


def _starts_with(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, prefix: bytes) -> bool:
    """Whether every line [start, end) is at least as long as PREFIX (at most 8 bytes) and begins with it."""
    if not (ends - starts >= len(prefix)).all():
        return False
    if len(buf) < 8:
        want = np.frombuffer(prefix, np.uint8)
        return bool((buf[starts[:, None] + np.arange(len(prefix))] == want).all())
    mask = np.uint64((1 << (8 * len(prefix))) - 1)
    want = np.uint64(int.from_bytes(prefix, "little"))
    # a line near the end of BUF has fewer than 8 bytes after its start: step back
    at = np.minimum(starts, len(buf) - 8)
    shift = ((starts - at) * 8).astype(np.uint64)
    return bool((((_words(buf)[at] >> shift) & mask) == want).all())


def _integers(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray | None:
    """Parse the decimal digits in [start, end) of every line; None unless all are 1-18 digits."""
    length = ends - starts
    if len(length) == 0:
        return np.empty(0, np.int64)
    width = int(length.max())
    if length.min() < 1 or width > 18:
        return None
    # every number line starts with a 7-byte prefix, so ends - width stays inside BUF
    digits = buf[ends[:, None] - width + np.arange(width)] - np.uint8(ord("0"))
    digits[np.arange(width) < (width - length)[:, None]] = 0
    if digits.max() > 9:  # uint8 arithmetic: anything below "0" wrapped above 9
        return None
    # no leading zeros ("010" is octal to Perl: the parser rejects it)
    first = buf[starts]
    if ((first == ord("0")) & (length > 1)).any():
        return None
    return digits.astype(np.int64) @ _POW10[-width:]


def _addresses(body: bytes, starts: np.ndarray, ends: np.ndarray,
               seps: np.ndarray) -> list[str] | None:
    """The address texts, checked as the parser checks them; None to defer to the parser."""
    try:
        texts = list(map(bytes.decode, map(body.__getitem__, map(slice, starts.tolist(),
                                                                   ends.tolist()))))
    except UnicodeDecodeError:
        return None
    if len(set(texts)) != len(texts):
        return None  # duplicates: let the parser name the line
    try:
        deque(map(_PTON4, [t for t in texts if ":" not in t]), maxlen=0)
        deque(map(_PTON6, [t for t in texts if ":" in t]), maxlen=0)
    except (OSError, ValueError):
        return None
    # the writer's padding: a tab after addresses of at most 13 characters
    if not (np.where(ends - starts <= 13, 9, 32) == seps).all():
        return None
    return texts


def _names(body: bytes, starts: np.ndarray, ends: np.ndarray) -> dict[int, list[str]] | None:
    """Names of rows whose N line is not '],' alone; None if one is not in the writer's form.

    STARTS point just after "N => [", ENDS at the line end.
    """
    buf = np.frombuffer(body, np.uint8)
    if not ((buf[ends - 2] == ord("]")) & (buf[ends - 1] == ord(","))).all():
        return None
    named = np.flatnonzero(ends - starts != 2)
    if len(named) == 0:
        return {}
    a, b = starts[named], ends[named]
    try:
        inners = list(map(bytes.decode, map(body.__getitem__, map(slice, a.tolist(), (b - 2).tolist()))))
    except UnicodeDecodeError:
        return None
    joined = "\n".join(inners)
    if "\\" in joined:
        return _escaped_names(named, inners)
    # No escapes anywhere: every name is 'text', with no quote inside.
    lists = [x[1:-2].split("','") for x in inners]
    if joined.count("'") != 2 * sum(map(len, lists)) or not all(
            x.startswith("'") and x.endswith("',") for x in inners):
        return None
    return dict(zip(named.tolist(), lists))


def _escaped_names(named: np.ndarray, inners: list[str]) -> dict[int, list[str]] | None:
    out: dict[int, list[str]] = {}
    for i, inner in zip(named.tolist(), inners):
        found = _NAME.findall(inner)
        if "".join(f"'{x}'," for x in found) != inner:
            return None
        # Perl single quotes: only \\ and \' are escapes, any other backslash is literal.
        out[i] = [_ESCAPE.sub(r"\1", x) for x in found]
    return out
