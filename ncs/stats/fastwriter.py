"""The numpy writer: record blocks of a whole chunk of rows laid out at once (the speed trick of writing).

A dump of a million records must not take seconds, so instead of one Python
format per record, each chunk of rows is laid out as a 2-D array of 4-byte
cells.  A template row, made once per chunk, holds the fixed text of the
layout (`ncs.stats.layout`) and every field that has one value throughout
the chunk (S always; T, R and W often), padded with hole bytes so that each
varying field starts on a cell boundary.  The template is copied to every
row, the varying fields (address, B, C, E...) are written into their cells
from lookup tables of four-character digit groups, whose leading zeros are
holes, and the holes are squeezed out in one pass.  A row's one name, when
it needs no Perl quoting (printable ASCII without ' or \\) and is short, is
laid out the same way: its bytes scattered into cells of its own, which the
other rows leave as holes.  Other names are quoted by Python and spliced in
per record.  The output is byte for byte what
`ncs.stats.writer.format_record` writes; a property test holds them together.

`ncs.stats.writer` is the plain interface; nothing else calls this module.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence

import numpy as np

from ncs.stats.addresses import AddressKeys
from ncs.stats.layout import GLUE, RECORD_OPEN, TAB_AFTER_AT_MOST
from ncs.stats.namearena import NameBytes
from ncs.stats.quoting import names_bodies
from ncs.stats.record import KEYS, NAMES_KEY, NUMBER_KEYS

HOLE = 0  # a byte that never appears in the text: marks squeezed-out positions
_HOLE_BYTE = bytes([HOLE])
CELL = 4  # bytes per cell


def _cells(chars: np.ndarray) -> np.ndarray:
    """Return an (n, 4) uint8 array of characters as n uint32 cells (bytes stay in place)."""
    return np.ascontiguousarray(chars, np.uint8).view(np.uint32).ravel()


def _text_cells(texts: list[str]) -> np.ndarray:
    """Return texts whose lengths add up to whole cells as uint32 cells."""
    return np.frombuffer("".join(texts).encode(), np.uint32)


def _decimal(count: int, width: int) -> np.ndarray:
    """Return (count, width) characters: 0..count-1 in decimal with leading zeros."""
    place = 10 ** np.arange(width - 1, -1, -1)
    return (ord("0") + (np.arange(count)[:, None] // place) % 10).astype(np.uint8)


def _leading_holed(chars: np.ndarray, zero_holed: bool) -> np.ndarray:
    """Return decimal CHARS with their leading zeros as holes; the number 0 keeps
    its last "0" unless ZERO_HOLED."""
    leading = np.cumprod(chars == ord("0"), axis=1).astype(bool)
    leading[:, -1] = False
    if zero_holed:
        leading[0] = True
    return np.where(leading, HOLE, chars).astype(np.uint8)


# Digit groups: index q (0..9999) is a group below the leading one (all four
# digits); index 10000 + q is the leading group (leading zeros holed, and 0
# all holes, because a number's higher groups that are zero print nothing).
_GROUPS = _decimal(10000, 4)
_UPPER = np.concatenate([_cells(_GROUPS), _cells(_leading_holed(_GROUPS, True))])
# The lowest group: the same, except that the number 0 prints "0".
_LOWEST = np.concatenate([_UPPER[:10000], _cells(_leading_holed(_GROUPS, False))])
# IPv4 octets: the first three with their dot, the last one behind a hole.
_OCTET = _leading_holed(_decimal(256, 3), False)
_OCTET_DOT = _cells(np.concatenate([_OCTET, np.full((256, 1), ord("."))], axis=1))
_OCTET_LAST = _cells(np.concatenate([np.full((256, 1), HOLE), _OCTET], axis=1))
_OCTET_DIGITS = np.count_nonzero(_OCTET, axis=1)


def _hex_groups() -> np.ndarray:
    """Return the cells of 0..0xffff in lowercase hex without leading zeros.

    Built from the two bytes of each group (256 x 256), which is ten times
    faster than from 65536 numbers and keeps the agent's start-up short.
    """
    byte = np.arange(256)
    digits = np.frombuffer(b"0123456789abcdef", np.uint8)
    full = np.stack([digits[byte >> 4], digits[byte & 15]], axis=1)
    lowest = full.copy()  # the low byte when the high one is zero: "0" stays
    lowest[byte < 16, 0] = HOLE
    leading = lowest.copy()  # the high byte: a zero high byte prints nothing
    leading[0, 1] = HOLE
    chars = np.empty((256, 256, 4), np.uint8)
    chars[:, :, :2] = leading[:, None, :]
    chars[:, :, 2:] = full[None, :, :]
    chars[0, :, 2:] = lowest
    return _cells(chars.reshape(-1, 4))


# IPv6 groups: lowercase hex without leading zeros.
_HEX = _hex_groups()
_COLON, _NO_CELL = _text_cells([":" + chr(HOLE) * 3, chr(HOLE) * 4])
# After the quoted address: a tab when it is short, else a space (ncs.stats.layout.separator).
_SEP_TAB, _SEP_SPACE = _text_cells(["'\t" + chr(HOLE) * 2, "' " + chr(HOLE) * 2])


def _digit_cells(values: np.ndarray) -> np.ndarray:
    """Decimal text of non-negative int64 VALUES as (n, groups) cells, leading zeros holed."""
    v = values.astype(np.int64, copy=True)
    groups = max(1, -(-len(str(int(v.max(initial=0)))) // 4))
    out = np.empty((len(v), groups), np.uint32)
    for j in range(groups - 1, -1, -1):
        q = v % 10000
        v //= 10000
        q += (v == 0) * 10000  # no higher digits: this is the leading group
        out[:, j] = (_LOWEST if j == groups - 1 else _UPPER)[q]
    return out


def _rounded(values: np.ndarray) -> np.ndarray | None:
    """VALUES rounded like C's %.0f (half to even), as int64; None if not all in [0, 2**62)."""
    if values.dtype.kind in "iu":
        if len(values) and values.min() < 0:
            return None
        return values.astype(np.int64, copy=False)
    f = values.astype(np.float64)
    r = np.rint(f)
    # f, not r: -0.4 rounds to a zero, but is negative and no value to write.
    if len(r) and not (np.isfinite(r).all() and f.min() >= 0 and r.max() < 2.0**62):
        return None
    return r.astype(np.int64)


def _field(values: np.ndarray) -> str | np.ndarray:
    """A number column as its text if it holds one value throughout, else as digit cells."""
    if len(values) and values[0] == values.min() == values.max():
        return str(int(values[0]))
    return _digit_cells(values)


NAMES_AT = object()  # marks, in a row's segments, where the names are spliced in

#: The longest body ("'name',") laid out in cells; longer names are spliced.
#: Every row of a chunk gets as many cells as its longest laid-out name needs.
NAME_CELL_BYTES = 64
_QUOTE, _COMMA, _BACKSLASH = ord("'"), ord(","), ord("\\")


def _name_cells(rows: int, single: NameBytes) -> tuple[np.ndarray | None, NameBytes]:
    """Return (cells of the names laid out, the names of SINGLE that are not).

    The cells are a (ROWS, w) array holding each laid-out name's list body,
    "'name',", from its first cell on, holes elsewhere (None when no name is
    laid out).  A name is laid out when it is printable ASCII without a
    quote or a backslash (the body is then the bytes themselves) and its
    body has at most NAME_CELL_BYTES bytes.
    """
    data, lengths = single.data, single.lengths
    if not len(lengths):
        return None, single
    laid = lengths + 3 <= NAME_CELL_BYTES
    refused = (data < 0x20) | (data > 0x7E) | (data == _QUOTE) | (data == _BACKSLASH)
    if refused.any():
        before = np.concatenate([[0], np.cumsum(refused)])
        ends = np.cumsum(lengths)
        laid &= before[ends] == before[ends - lengths]
    if not laid.any():
        return None, single
    if not laid.all():
        data, lengths = data[np.repeat(laid, lengths)], lengths[laid]
    width = -(-(int(lengths.max()) + 3) // CELL) * CELL
    out = np.full((rows, width), HOLE, np.uint8)
    flat = out.reshape(-1)
    base = single.rows[laid] * width  # where each body starts
    begins = np.cumsum(lengths) - lengths
    flat[np.arange(len(data)) + np.repeat(base + 1 - begins, lengths)] = data
    flat[base] = _QUOTE
    flat[base + 1 + lengths] = _QUOTE
    flat[base + 2 + lengths] = _COMMA
    return out.view(np.uint32), single.take(~laid)


def _single_names(named: Mapping[int, Sequence[str]]) -> tuple[NameBytes, dict[int, Sequence[str]]]:
    """Return (the one-name lists of NAMED as bytes, the other lists of NAMED)."""
    ones = [row for row, names in named.items() if len(names) == 1]
    rest = {row: names for row, names in named.items() if len(names) != 1}
    return NameBytes.of_texts(ones, [named[row][0] for row in ones]), rest


def _lay_out(n: int, segments: list) -> tuple[np.ndarray, int, bytearray]:
    """Return (rows of cells, cell where NAMES_AT falls, the rows' memory) for SEGMENTS.

    A segment is fixed text (str), a (n, k) cell array, or NAMES_AT.  Fixed
    text is padded with holes to whole cells before each array and at NAMES_AT.
    """
    template: list[str] = []
    columns: list[tuple[int, np.ndarray]] = []
    pending = ""
    names_cell = 0
    cells = 0

    def flush() -> int:
        nonlocal pending
        padded = pending + chr(HOLE) * (-len(pending) % CELL)
        template.append(padded)
        pending = ""
        return len(padded) // CELL

    for seg in segments:
        if isinstance(seg, str):
            pending += seg
            continue
        cells += flush()
        if seg is NAMES_AT:
            names_cell = cells
            continue
        columns.append((cells, seg))
        template.append(chr(HOLE) * (CELL * seg.shape[1]))
        cells += seg.shape[1]
    cells += flush()
    # The rows live in a bytearray so that the holes can be deleted from it
    # without first copying the whole block into a bytes object.
    buf = bytearray(n * cells * CELL)
    out = np.frombuffer(buf, np.uint32).reshape(n, cells)
    out[:] = _text_cells(template)
    for at, seg in columns:
        out[:, at:at + seg.shape[1]] = seg
    return out, names_cell, buf


def record_blocks(keys: AddressKeys, numbers: Mapping[str, np.ndarray],
                  named: Mapping[int, Sequence[str]] | None = None,
                  single: NameBytes | None = None) -> bytearray | None:
    """Return the record blocks of a chunk of rows, or None if a value cannot be laid out.

    KEYS are the rows' addresses, NUMBERS maps each numeric key to its
    column, NAMED maps the position of each named row to its names.  SINGLE,
    if given, holds the rows with one name as bytes instead (NAMED then
    holds the other named rows; without SINGLE, NAMED's one-name lists are
    taken out of it).  None means a value is negative, not finite or beyond
    2**62: the caller formats such a chunk record by record.
    """
    columns = {k: _rounded(numbers[k]) for k in NUMBER_KEYS}
    if any(c is None for c in columns.values()):
        return None
    named = dict(named) if named else {}
    if single is None:
        single, named = _single_names(named)
    name_cells, spliced = _name_cells(len(keys), single)
    named.update(zip(spliced.rows.tolist(), [(text,) for text in spliced.texts()], strict=True))
    cells, length = _address_cells(keys)
    sep = np.where(length <= TAB_AFTER_AT_MOST, _SEP_TAB, _SEP_SPACE)[:, None]
    segments = [RECORD_OPEN + "'", cells, sep]
    for glue, key in zip(GLUE, KEYS, strict=False):
        if key != NAMES_KEY:
            segments += [glue, _field(columns[key])]
        else:  # spliced names go where the laid-out ones start (their cells are holes)
            segments += [glue, NAMES_AT] + ([] if name_cells is None else [name_cells])
    segments.append(GLUE[-1])
    rows, names_cell, memory = _lay_out(len(keys), segments)
    # translate deletes the holes faster than a numpy boolean mask selects the rest
    text = memory.translate(None, _HOLE_BYTE)
    if not named:
        return text
    # Splice the names in after each named row's "[".
    keep = rows.view(np.uint8) != HOLE
    row_len = np.count_nonzero(keep, axis=1)
    row_start = np.concatenate([[0], np.cumsum(row_len)[:-1]])
    upto = np.count_nonzero(keep[:, :names_cell * CELL], axis=1)
    order = sorted(named)
    cuts = (row_start[order] + upto[order]).tolist()
    # All bodies encoded at once; a quoted body never holds a NUL to split at.
    bodies = "\0".join(names_bodies([named[row] for row in order])).encode().split(b"\0")
    # Views, not slices: the text between two names is copied once, by the join.
    view = memoryview(text)
    between = [view[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    pieces = [None] * (2 * len(bodies) + 1)
    pieces[0::2] = between
    pieces[1::2] = bodies
    return bytearray().join(pieces)


def _address_cells(keys: AddressKeys) -> tuple[np.ndarray, np.ndarray]:
    """Return (cells, text lengths) of the address texts of KEYS, either family or both."""
    if not keys.is6.any():
        return v4_address_block(keys.lo)
    if keys.is6.all():
        return v6_address_block(keys.hi, keys.lo)
    # Mixed: IPv4 rows take the first cells of the wider IPv6 rows, the rest holes.
    v4, v6 = ~keys.is6, keys.is6
    cells4, length4 = v4_address_block(keys.lo[v4])
    cells6, length6 = v6_address_block(keys.hi[v6], keys.lo[v6])
    cells = np.full((len(keys), cells6.shape[1]), _NO_CELL, np.uint32)
    cells[v4, :cells4.shape[1]] = cells4
    cells[v6] = cells6
    length = np.empty(len(keys), np.int64)
    length[v4], length[v6] = length4, length6
    return cells, length


def v4_address_block(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (cells, text lengths) of the dotted-quad texts of IPv4 KEYS."""
    cells = np.empty((len(keys), 4), np.uint32)
    length = np.full(len(keys), 3, np.int64)
    for i, shift in enumerate((24, 16, 8, 0)):
        octet = ((keys >> np.uint64(shift)) & np.uint64(255)).astype(np.intp)
        cells[:, i] = (_OCTET_DOT if i < 3 else _OCTET_LAST)[octet]
        length += _OCTET_DIGITS[octet]
    return cells, length


def v6_address_block(hi: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (cells, text lengths) of IPv6 addresses given as 64-bit halves, as inet_ntop writes them.

    Groups in lowercase hex without leading zeros, joined by ":", the first
    longest run of two or more zero groups written "::".  The few addresses
    that glibc writes with an IPv4 tail (::a.b.c.d, ::ffff:a.b.c.d) are
    written by socket.inet_ntop itself.
    """
    n = len(hi)
    words = np.empty((n, 8), np.intp)
    for j in range(4):
        shift = np.uint64(48 - 16 * j)
        words[:, j] = (hi >> shift) & np.uint64(0xFFFF)
        words[:, 4 + j] = (lo >> shift) & np.uint64(0xFFFF)
    # the length of the run of zero groups ending at each group
    run = np.empty((n, 8), np.int8)
    current = np.zeros(n, np.int8)
    for j in range(8):
        current = (current + 1) * (words[:, j] == 0)
        run[:, j] = current
    end = run.argmax(axis=1)  # the end of the first longest run
    best = run[np.arange(n), end]
    squeezed = best >= 2
    start = np.where(squeezed, end - best + 1, 8)
    end = np.where(squeezed, end, -1)
    group = np.arange(8)
    in_run = (group >= start[:, None]) & (group <= end[:, None])
    # cells: a leading ":" (only when the run starts the address), then each
    # group followed by its ":"; inside the run groups and colons are holes,
    # leaving one colon on each side of it
    cells = np.empty((n, 17), np.uint32)
    cells[:, 0] = np.where(start == 0, _COLON, _NO_CELL)
    cells[:, 1::2] = np.where(in_run, _NO_CELL, _HEX[words])
    colon = (group < 7) & ~(in_run & (group < end[:, None]))
    colon[:, 7] = end == 7
    cells[:, 2::2] = np.where(colon, _COLON, _NO_CELL)
    tail4 = squeezed & (start == 0) & ((best == 6) | ((best == 5) & (words[:, 5] == 0xFFFF)))
    if tail4.any():
        for i in np.flatnonzero(tail4).tolist():
            packed = ((int(hi[i]) << 64) | int(lo[i])).to_bytes(16, "big")
            text = socket.inet_ntop(socket.AF_INET6, packed).encode().ljust(17 * CELL, b"\0")
            cells[i] = np.frombuffer(text, np.uint32)
    return cells, np.count_nonzero(cells.view(np.uint8), axis=1)
