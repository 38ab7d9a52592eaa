"""The record blocks of a stats file for a whole table, formatted with numpy.

A dump of a million records must not take seconds, so instead of one Python
format per record, each chunk of rows is laid out as a 2-D byte array: fixed
text columns, numbers as fixed-width digit columns with their leading zeros
marked as holes, then the holes are squeezed out in one pass.  Only names
(which need Perl quoting) are spliced in per record.  The output is byte for
byte what agent.statsfile.format_record writes; a test holds them together.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from agent.statsfile import CLOSING, opening_text, perl_quote

HOLE = 0  # a byte that never appears in the text: marks squeezed-out positions
CHUNK = 32768
DIGITS = 20  # room for any non-negative int64
_LUT = np.frombuffer("".join(f"{i:04d}" for i in range(10000)).encode(), np.uint8).reshape(-1, 4)


def _const(text: str, n: int) -> np.ndarray:
    return np.broadcast_to(np.frombuffer(text.encode(), np.uint8), (n, len(text)))


_POW10 = 10 ** np.arange(1, 19, dtype=np.int64)


def _digits(values: np.ndarray, width: int = 0) -> np.ndarray:
    """Decimal digits of non-negative int64 VALUES, right-aligned, leading zeros as holes.

    WIDTH 0 picks the narrowest multiple of four that holds the largest value.
    """
    v = values.astype(np.int64, copy=True)
    ndigits = 1 + np.searchsorted(_POW10, v, side="right")
    if not width:
        width = max(4, -(-int(ndigits.max(initial=1)) // 4) * 4)
    groups = []
    for _ in range(width // 4):
        groups.append(_LUT[v % 10000])
        v //= 10000
    out = np.concatenate(groups[::-1], axis=1)
    out[np.arange(width) < (width - ndigits)[:, None]] = HOLE
    return out


# "0".."255" right-aligned in three bytes, leading positions holed
_OCTETS = np.array([list(str(i).rjust(3, "\0").encode()) for i in range(256)], np.uint8)


def _number_block(values: np.ndarray) -> np.ndarray:
    """Digits of VALUES; a column that holds one value throughout (S always, T and R/W
    often) is formatted once and broadcast."""
    if len(values) and values[0] == values.min() == values.max():
        return _const(str(int(values[0])), len(values))
    return _digits(values)


def _octets(keys: np.ndarray) -> np.ndarray:
    """Dotted-quad text of IPv4 keys, as a holed (n, 15) array."""
    parts = []
    for shift in (24, 16, 8, 0):
        parts.append(_OCTETS[(keys >> np.uint64(shift)) & np.uint64(255)])
        if shift:
            parts.append(_const(".", len(keys)))
    return np.concatenate(parts, axis=1)


def _texts(addresses: list[str]) -> np.ndarray:
    """Arbitrary address texts as a holed (n, 39) array (IPv6 is at most 39 characters)."""
    raw = b"".join(a.encode().ljust(39, b"\0") for a in addresses)
    return np.frombuffer(raw, np.uint8).reshape(len(addresses), 39)


def _rounded(values: np.ndarray) -> np.ndarray | None:
    """VALUES rounded like C's %.0f (half to even), as int64; None if not all in [0, 2**62)."""
    if values.dtype.kind in "iu":
        if len(values) and values.min() < 0:
            return None
        return values.astype(np.int64, copy=False)
    r = np.rint(values.astype(np.float64))
    if len(r) and not (np.isfinite(r).all() and r.min() >= 0 and r.max() < 2.0**62):
        return None
    return r.astype(np.int64)


def record_chunks(address: np.ndarray, B, C, E, S, R, W, T,
                  names: dict[int, list[str]] | None = None) -> bytes | None:
    """Return the record blocks of rows as bytes, or None if a value cannot be laid out.

    ADDRESS is a holed (n, k) byte array (see `_octets`, `_texts`); the other
    arguments are arrays of length n; NAMES maps a row position to its names.
    """
    n = len(B)
    numbers = [_rounded(x) for x in (B, C, E, R, S, T, W)]
    if any(x is None for x in numbers):
        return None
    b, c, e, r, s, t, w = (_number_block(x) for x in numbers)
    alen = np.count_nonzero(address, axis=1)
    sep = np.where(alen <= 13, ord("\t"), ord(" ")).astype(np.uint8)[:, None]
    head = [_const("\t'", n), address, _const("'", n), sep, _const("=> {\n\t\tB\t=> ", n), b,
            _const(",\n\t\tC\t=> ", n), c, _const(",\n\t\tE\t=> ", n), e, _const(",\n\t\tN\t=> [", n)]
    tail = [_const("],\n\t\tR\t=> ", n), r, _const(",\n\t\tS\t=> ", n), s,
            _const(",\n\t\tT\t=> ", n), t, _const(",\n\t\tW\t=> ", n), w, _const(",\n\t},\n", n)]
    block = np.concatenate(head + tail, axis=1)
    keep = block != HOLE
    text = block[keep].tobytes()
    if not names:
        return text
    # Splice the names in after each named row's "[".
    bracket_col = sum(part.shape[1] for part in head)
    row_len = np.count_nonzero(keep, axis=1)
    row_start = np.concatenate([[0], np.cumsum(row_len)[:-1]])
    upto = np.count_nonzero(keep[:, :bracket_col], axis=1)
    pieces, at = [], 0
    for row in sorted(names):
        cut = int(row_start[row] + upto[row])
        pieces.append(text[at:cut])
        pieces.append("".join(perl_quote(name) + "," for name in names[row]).encode())
        at = cut
    pieces.append(text[at:])
    return b"".join(pieces)


def v4_address_block(keys: np.ndarray) -> np.ndarray:
    """Holed address array for IPv4 keys."""
    return _octets(keys)


def text_address_block(addresses: list[str]) -> np.ndarray:
    """Holed address array for address texts (IPv6)."""
    return _texts(addresses)


def file_chunks(header: list[str], blocks: Iterable[bytes]) -> Iterator[bytes]:
    """Yield a whole stats file as bytes: header lines, opening, record BLOCKS, closing."""
    yield opening_text(header).encode()
    yield from blocks
    yield CLOSING.encode()
