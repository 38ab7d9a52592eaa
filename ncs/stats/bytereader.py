"""The layout ncs writes, read straight from bytes with numpy: the fast path of the stream reader.

A host's output arrives as bytes and is read in pieces of complete record
blocks (`ncs.stats.streamread`).  `read_blocks` reads such a piece in a
few whole-array passes: the line breaks give every line of every block
(a canonical block is ten lines), each line's fixed text is compared at
once for all blocks, the numbers become one text of digits that numpy's
parser reads in one call, and the address and name texts are gathered
into one text each and decoded once.  It returns None for anything it does
not read exactly as `ncs.stats.reader.parse_stats` would (a negative or
huge number, a name list of another shape, an address that is not one, a
repeated address): the caller then hands that piece to `parse_stats`.  A
hypothesis property holds the two together.

Line layout of a block (from `ncs.stats.layout`): the address line, one
line per key in file order (numbers; the names list between brackets),
and the closing line.
"""

from __future__ import annotations

import re

import numpy as np

from ncs.stats.addresses import AddressKeys
from ncs.stats.columns import NO_NAMES, StatsColumns
from ncs.stats.growing import object_array
from ncs.stats.layout import GLUE, RECORD_OPEN
from ncs.stats.quoting import decode_stats_bytes
from ncs.stats.reader import list_names
from ncs.stats.record import KEYS, NAMES_KEY

_LINES = [part.split("\n") for part in GLUE]
#: Fixed text before and after the value on each line of a block.
_PREFIX = [RECORD_OPEN + "'"] + [parts[-1] for parts in _LINES[:-1]]
_SUFFIX = ["'"] + [parts[0] for parts in _LINES[1:]]
#: The address line ends with the separator (a tab or a space) and this.
_AFTER_ADDRESS = _LINES[0][0]
_CLOSING_LINE = _LINES[-1][1]
BLOCK_LINES = len(_PREFIX) + 1
_NAMES_LINE = 1 + KEYS.index(NAMES_KEY)
_NUMBER_LINES = [(1 + i, key) for i, key in enumerate(KEYS) if key != NAMES_KEY]
#: The shortest each line can be: its fixed text around its value (a number has a
#: digit at least; the address line also holds the separator and its end).
_SHORTEST_LINE = np.array([len(b) + len(a) + (line != _NAMES_LINE)
                           for line, (b, a) in enumerate(zip(_PREFIX, _SUFFIX, strict=True))]
                          + [len(_CLOSING_LINE)])
_SHORTEST_LINE[0] += 1 + len(_AFTER_ADDRESS)
_NUMBER_PREFIX = np.array([len(_PREFIX[line]) for line, _ in _NUMBER_LINES])
_NUMBER_SUFFIX = np.array([len(_SUFFIX[line]) for line, _ in _NUMBER_LINES])
#: Bytes before a number's digits that are never digits: the previous line's
#: end and line break, and the line's own text up to the value.
_NOT_DIGITS_BEFORE = min(len(_SUFFIX[line - 1]) + 1 + len(_PREFIX[line]) for line, _ in _NUMBER_LINES)
#: Byte value -> its digit (0 for any other byte), and whether it is one.
_DIGIT = np.zeros(256, np.uint8)
_DIGIT[48:58] = np.arange(10)
_IS_DIGIT = np.zeros(256, np.uint8)
_IS_DIGIT[48:58] = 1
#: Longest number read here: 18 digits always fit int64 (longer ones go to the reader).
_MAX_DIGITS = 18
#: Numbers of up to 15 digits are below 2**53: read exactly through float64.
_EXACT_IN_FLOAT = 15
_FLOAT_POWERS = 10.0 ** np.arange(_EXACT_IN_FLOAT - 1, -1, -1)
_NL, _SPACE, _TAB, _ZERO, _DOT, _COLON = 10, 32, 9, 48, 46, 58
#: The longest address text (an IPv6 address with an IPv4 tail).
_LONGEST_ADDRESS = 45
#: Name lists, one a line, each in the shape the reader's fast path accepts.
_BODIES = re.compile(r"(?:(?:'[^'\\\n]*+(?:\\[^\n][^'\\\n]*+)*+',)*+\n)*+")


def _window(buf: np.ndarray, first: np.ndarray, stop: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (the WIDTH bytes ending at each STOP, right-aligned; which of them are within [FIRST, STOP))."""
    at = stop[:, None] - width + np.arange(width)
    inside = at >= first[:, None]
    return buf[np.maximum(at, 0)], inside


def _slices(piece: bytes, first: np.ndarray, stop: np.ndarray) -> list[bytes]:
    """Return the byte slices [FIRST, STOP) of PIECE."""
    return [piece[a:b] for a, b in zip(first.tolist(), stop.tolist(), strict=True)]


def _fixed_texts() -> list[tuple[int, int, np.ndarray]]:
    """Return every fixed text of a block as (line edge, offset from it, its bytes).

    An edge is a line's start (0 .. BLOCK_LINES - 1) or its end, the line
    break (BLOCK_LINES + line).
    """
    texts = []
    for line, (before, after) in enumerate(zip(_PREFIX, _SUFFIX, strict=True)):
        if before:
            texts.append((line, 0, before))
        tail = len(after) + (1 + len(_AFTER_ADDRESS) if line == 0 else 0)  # and the separator
        texts.append((BLOCK_LINES + line, -tail, after))
    texts.append((BLOCK_LINES, -len(_AFTER_ADDRESS), _AFTER_ADDRESS))
    texts.append((BLOCK_LINES - 1, 0, _CLOSING_LINE))
    return [(edge, offset, np.frombuffer(text.encode(), np.uint8)) for edge, offset, text in texts]


def read_blocks(piece: bytes, source: str = "", keep_texts: bool = True) -> StatsColumns | None:
    """Return the table of PIECE, complete canonical record blocks (UTF-8), or None.

    None: the piece is not exactly the canonical layout, or holds a value the
    reader reads otherwise (see the module docstring).  Without KEEP_TEXTS
    the IPv4 addresses' texts are not kept (they have one spelling).
    """
    buf = np.frombuffer(piece, np.uint8)
    breaks = np.flatnonzero(buf == _NL)
    if not len(breaks) or len(breaks) % BLOCK_LINES or breaks[-1] != len(buf) - 1:
        return None
    ends = breaks.reshape(-1, BLOCK_LINES)
    starts = np.empty_like(ends)
    starts.flat[0] = 0
    starts.flat[1:] = breaks[:-1] + 1
    # every line: its fixed text before and after the value
    if ((ends - starts) < _SHORTEST_LINE).any() or (ends[:, -1] - starts[:, -1] != len(_CLOSING_LINE)).any():
        return None
    edges = np.concatenate([starts, ends], axis=1)
    for edge, offset, fixed in _FIXED:
        if not (buf[edges[:, edge, None] + (offset + np.arange(len(fixed)))] == fixed).all():
            return None
    address_end = ends[:, 0] - len(_AFTER_ADDRESS) - 2  # the closing quote
    separator = buf[address_end + 1]
    if not ((separator == _TAB) | (separator == _SPACE)).all():
        return None
    numbers = _numbers(buf, starts, ends)
    if numbers is None:
        return None
    names = _names(piece, starts[:, _NAMES_LINE] + len(_PREFIX[_NAMES_LINE]),
                   ends[:, _NAMES_LINE] - len(_SUFFIX[_NAMES_LINE]))
    if names is None:
        return None
    return _with_keys(piece, buf, starts[:, 0] + len(_PREFIX[0]), address_end, numbers, names,
                      source, keep_texts)


def _numbers(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> dict[str, np.ndarray] | None:
    """Return the int64 column of every number line, or None unless all are plain decimals that fit."""
    lines = [line for line, _ in _NUMBER_LINES]
    first = starts[:, lines] + _NUMBER_PREFIX
    stop = ends[:, lines] - _NUMBER_SUFFIX
    width = stop - first
    if width.min() < 1 or width.max() > _MAX_DIGITS:
        return None
    if ((buf[first] == _ZERO) & (width > 1)).any():
        return None  # a leading zero: octal to Perl, refused by the reader
    columns = {}
    for i, (_, key) in enumerate(_NUMBER_LINES):
        values = _decimals(buf, stop[:, i], width[:, i])
        if values is None:
            return None
        columns[key] = values
    return columns


def _decimals(buf: np.ndarray, stop: np.ndarray, width: np.ndarray) -> np.ndarray | None:
    """Return the decimal numbers of WIDTH digits ending before each STOP, or None if one is not.

    A window of the widest one's bytes is taken before every STOP; a
    narrower number's window also holds the fixed text before it, at least
    `_NOT_DIGITS_BEFORE` bytes that are no digits (worth 0), so only widths
    that differ by more need a mask.
    """
    wide = int(width.max())
    window = buf[(stop - wide)[:, None] + np.arange(wide)]
    if wide - int(width.min()) > _NOT_DIGITS_BEFORE:
        # the window of a narrow number reaches into the line before: blank that out
        window = np.where(np.arange(wide) >= (wide - width)[:, None], window, np.uint8(0))
    # np.take, not window-as-index: the same lookup, twice as fast
    if not (np.take(_IS_DIGIT, window).sum(axis=1, dtype=np.int64) == width).all():
        return None  # something other than digits within a number
    digits = np.take(_DIGIT, window)
    if wide <= _EXACT_IN_FLOAT:
        # Every product and partial sum is an integer below 2**53, so the
        # float dot product (BLAS) is exact, and faster than numpy's
        # integer one.
        return (digits.astype(np.float64) @ _FLOAT_POWERS[-wide:]).astype(np.int64)
    return digits.astype(np.int64) @ (10 ** np.arange(wide - 1, -1, -1, dtype=np.int64))


def _names(piece: bytes, first: np.ndarray, stop: np.ndarray) -> list | None:
    """Return each record's names from the bodies [FIRST, STOP) of their lists, or None if one is odd."""
    named = np.flatnonzero(stop > first)
    if not len(named):
        return [NO_NAMES] * len(first)
    text = decode_stats_bytes(b"\n".join(_slices(piece, first[named], stop[named])) + b"\n")
    if _BODIES.fullmatch(text) is None:
        return None
    if "\\" in text:
        lists = [list_names(b) for b in text.split("\n")[:-1]]
    elif "','" not in text:
        # one name each (the usual case): unquoted and made 1-tuples in C
        lists = list(zip(text[1:-3].split("',\n'")))
    else:
        lists = [b[1:-2].split("','") for b in text.split("\n")[:-1]]
    names = object_array([NO_NAMES] * len(first))
    names[named] = object_array(lists)
    return names.tolist()


def _ipv4_keys(chars: np.ndarray, inside: np.ndarray) -> np.ndarray | None:
    """Return the values of dotted quads (CHARS, a window of each; INSIDE: its text), or None.

    None unless every one is what inet_pton takes: four decimal octets of
    at most 255, without leading zeros.
    """
    dot = (chars == _DOT) & inside
    digit = ((chars - np.uint8(_ZERO)) < 10) & inside
    if not ((dot | digit | ~inside).all() and (dot.sum(axis=1) == 3).all()):
        return None
    begins = digit & np.concatenate([np.ones((len(chars), 1), bool), ~digit[:, :-1]], axis=1)
    follows = np.concatenate([digit[:, 1:], np.zeros((len(chars), 1), bool)], axis=1)
    if (begins & (chars == _ZERO) & follows).any():
        return None  # a leading zero
    spaced = np.full((len(chars), chars.shape[1] + 1), _SPACE, np.uint8)  # a blank after each
    spaced[:, :-1] = np.where(digit, chars, np.uint8(_SPACE))
    text = spaced.tobytes().decode("ascii")
    octets = np.fromstring(text, dtype=np.int64, sep=" ")
    if len(octets) != 4 * len(chars) or octets.max(initial=0) > 255:
        return None  # an empty octet, or one beyond 255
    return (octets.reshape(-1, 4) @ np.array([1 << 24, 1 << 16, 1 << 8, 1], np.int64)).astype(np.uint64)


def _with_keys(piece: bytes, buf: np.ndarray, first: np.ndarray, stop: np.ndarray,
               numbers: dict[str, np.ndarray], names: list, source: str,
               keep_texts: bool) -> StatsColumns | None:
    """Return the table with its addresses [FIRST, STOP), or None if one is not an address."""
    length = stop - first
    if length.min() < 2 or length.max() > _LONGEST_ADDRESS:
        return None
    chars, inside = _window(buf, first, stop, int(length.max()))
    v6 = ((chars == _COLON) & inside).any(axis=1)
    n = len(first)
    hi, lo = np.zeros(n, np.uint64), np.zeros(n, np.uint64)
    v4 = np.flatnonzero(~v6)
    if len(v4):
        values = _ipv4_keys(chars[v4], inside[v4])
        if values is None:
            return None
        lo[v4] = values
    texts: list[str] | None = None
    if keep_texts or v6.any():
        texts = [t.decode("ascii", "replace") for t in _slices(piece, first, stop)]
    if v6.any():
        assert texts is not None
        try:
            six = AddressKeys.of([texts[i] for i in np.flatnonzero(v6).tolist()])
        except ValueError:
            return None
        hi[v6], lo[v6] = six.hi, six.lo
    keys = AddressKeys(v6, hi, lo)
    if not keys.ascending(strictly=True):
        return None  # a repeat (or disorder): the reader's checks
    return StatsColumns([], keys, numbers, names, source, texts)


_FIXED = _fixed_texts()
