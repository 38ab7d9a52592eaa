"""The layout ncs writes, read straight from bytes with numpy: the fast path of the stream reader.

A host's output arrives as bytes and is read in pieces of complete record
blocks (`ncs.stats.streamread`).  `read_blocks` reads such a piece in a
few whole-array passes: the line breaks give every line of every block
(a canonical block is eleven lines); then the piece is read 8 bytes at a
time, as one 64-bit word per gather (`_Words`): each line's fixed text
before and after its value is one masked word compare, a number's digits
are one or two words combined by multiplications, and an address is a
window of words.  The names bodies are gathered into one text and decoded
once; for a merge, a piece whose named rows have one plain name each keeps
those names as the bytes they are (`PackedNames`).  It returns None for
anything it does not read exactly as `ncs.stats.reader.parse_stats` would
(a negative or huge number, a name list of another shape, an address that
is not one, a repeated address): the caller then hands that piece to
`parse_stats`.  Hypothesis properties hold the two together.

Line layout of a block (from `ncs.stats.layout`): the address line, one
line per key in file order (numbers; the names list between brackets),
and the closing line.
"""

from __future__ import annotations

import re

import numpy as np

from ncs.stats.addresses import AddressKeys, ntop6_texts, pack_addresses
from ncs.stats.columns import NO_NAMES, StatsColumns
from ncs.stats.growing import object_array
from ncs.stats.layout import GLUE, RECORD_OPEN
from ncs.stats.namearena import PackedNames, pack_names
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
#: Longest number read here: 18 digits always fit int64 (longer ones go to the reader).
_MAX_DIGITS = 18
_NL, _SPACE, _TAB, _ZERO, _DOT, _COLON = 10, 32, 9, 48, 46, 58
_QUOTE, _BACKSLASH, _COMMA = 39, 92, 44
#: The longest address text (an IPv6 address with an IPv4 tail).
_LONGEST_ADDRESS = 45
#: Name lists, one a line, each in the shape the reader's fast path accepts.
_BODIES = re.compile(r"(?:(?:'[^'\\\n]*+(?:\\[^\n][^'\\\n]*+)*+',)*+\n)*+")

# Eight bytes are read as one little-endian 64-bit word (`_Words`): a line's
# fixed text at either end, up to eight digits of a number, a part of an
# address.  A word's first byte is its lowest.
_WORD = 8
#: KEEP_LAST[k]: the mask of a word's last k bytes (0 <= k <= 8).
_KEEP_LAST = np.array([(2**64 - 1) ^ (2 ** (8 * (_WORD - k)) - 1) for k in range(_WORD + 1)], np.uint64)
_ASCII_ZEROS = np.uint64(0x3030303030303030)
_HIGH_NIBBLES = np.uint64(0xF0F0F0F0F0F0F0F0)
_SIXES = np.uint64(0x0606060606060606)
_LOW_NIBBLES = np.uint64(0x0F0F0F0F0F0F0F0F)
_POW10 = 10 ** np.arange(_MAX_DIGITS + 1, dtype=np.int64)


def _word_of(text: bytes) -> int:
    """Return TEXT (at most 8 bytes) as the word whose first bytes it is."""
    return int.from_bytes(text.ljust(_WORD, b"\0"), "little")


def _fixed_words() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (mask, value) of every line's first word and of the word ending with its line break.

    The fixed text before a line's value is at most 8 bytes, and so is the
    text after it with the line break; the closing line is all fixed text.
    The address line's separator (a tab or a space) is masked out here.
    """
    heads = [p.encode() for p in _PREFIX] + [b""]
    tails = [s.encode() + b"\n" for s in _SUFFIX] + [_CLOSING_LINE.encode() + b"\n"]
    tails[0] = b"'?" + _AFTER_ADDRESS.encode() + b"\n"
    head_mask = [_word_of(b"\xff" * len(h)) for h in heads]
    head_value = [_word_of(h) for h in heads]
    # a tail is the last bytes of its word
    tail_mask = [_word_of(bytes(_WORD - len(t)) + bytes(0 if c == ord("?") else 255 for c in t))
                 for t in tails]
    tail_value = [_word_of(bytes(_WORD - len(t)) + t.replace(b"?", b"\0")) for t in tails]
    assert max(map(len, heads + tails)) <= _WORD
    return tuple(np.array(v, np.uint64) for v in (head_mask, head_value, tail_mask, tail_value))


_HEAD_MASK, _HEAD_VALUE, _TAIL_MASK, _TAIL_VALUE = _fixed_words()


class _Words:
    """The bytes of a piece as 64-bit words at every byte offset: 8 bytes at once in one gather."""

    def __init__(self, piece: bytes) -> None:
        # 8 bytes of padding either side: every word of the piece's bytes exists
        self._padded = bytes(_WORD) + piece + bytes(_WORD)
        self._words = np.ndarray((len(piece) + _WORD + 1,), "<u8", self._padded, 0, (1,))

    def ending(self, at: np.ndarray) -> np.ndarray:
        """Return the words of the 8 bytes before each offset AT (bytes before the piece are 0)."""
        return self._words[at]

    def starting(self, at: np.ndarray) -> np.ndarray:
        """Return the words of the 8 bytes from each offset AT (bytes after the piece are 0)."""
        return self._words[at + _WORD]

    def text_window(self, stop: np.ndarray, width: int) -> np.ndarray:
        """Return the bytes before each STOP, a row each: a multiple of 8 of at least WIDTH."""
        count = -(-width // _WORD)
        at = stop[:, None] - _WORD * np.arange(count - 1, -1, -1)
        return self._words[at].view(np.uint8).reshape(len(stop), _WORD * count)


def _address_texts(piece: bytes, first: np.ndarray, stop: np.ndarray) -> list[str]:
    """Return the address texts [FIRST, STOP) of PIECE."""
    return [piece[a:b].decode("ascii", "replace") for a, b in zip(first.tolist(), stop.tolist(), strict=True)]


def read_blocks(piece: bytes, source: str = "", keep_texts: bool = True,
                packed_names: bool = False) -> StatsColumns | None:
    """Return the table of PIECE, complete canonical record blocks (UTF-8), or None.

    None: the piece is not exactly the canonical layout, or holds a value the
    reader reads otherwise (see the module docstring).  Without KEEP_TEXTS
    the addresses' texts are kept only when an IPv6 one is spelled otherwise
    than inet_ntop spells it (an IPv4 address has one spelling).  With
    PACKED_NAMES a piece whose named rows have one plain name each gets
    them as bytes (`ncs.stats.namearena.PackedNames`).
    """
    buf = np.frombuffer(piece, np.uint8)
    breaks = np.flatnonzero(buf == _NL)
    if not len(breaks) or len(breaks) % BLOCK_LINES or breaks[-1] != len(buf) - 1:
        return None
    ends = breaks.reshape(-1, BLOCK_LINES)
    starts = np.empty_like(ends)
    starts.flat[0] = 0
    starts.flat[1:] = breaks[:-1] + 1
    # every line: its fixed text before and after the value, one word each
    if ((ends - starts) < _SHORTEST_LINE).any() or (ends[:, -1] - starts[:, -1] != len(_CLOSING_LINE)).any():
        return None
    words = _Words(piece)
    if not ((words.starting(starts) & _HEAD_MASK) == _HEAD_VALUE).all():
        return None
    if not ((words.ending(ends + 1) & _TAIL_MASK) == _TAIL_VALUE).all():
        return None
    address_end = ends[:, 0] - len(_AFTER_ADDRESS) - 2  # the closing quote
    separator = buf[address_end + 1]
    if not ((separator == _TAB) | (separator == _SPACE)).all():
        return None
    numbers = _numbers(words, starts, ends)
    if numbers is None:
        return None
    names = _names(buf, starts[:, _NAMES_LINE] + len(_PREFIX[_NAMES_LINE]),
                   ends[:, _NAMES_LINE] - len(_SUFFIX[_NAMES_LINE]), packed_names)
    if names is None:
        return None
    return _with_keys(piece, words, starts[:, 0] + len(_PREFIX[0]), address_end, numbers, names,
                      source, keep_texts)


def _numbers(words: _Words, starts: np.ndarray, ends: np.ndarray) -> dict[str, np.ndarray] | None:
    """Return the int64 column of every number line, or None unless all are plain decimals that fit."""
    lines = [line for line, _ in _NUMBER_LINES]
    first = starts[:, lines] + _NUMBER_PREFIX
    stop = ends[:, lines] - _NUMBER_SUFFIX
    width = stop - first
    if width.min() < 1 or width.max() > _MAX_DIGITS:
        return None
    values = _decimals(words, stop, width)
    if values is None:
        return None
    if ((values < _POW10[width - 1]) & (width > 1)).any():
        return None  # a leading zero: octal to Perl, refused by the reader
    return {key: values[:, i] for i, (_, key) in enumerate(_NUMBER_LINES)}


def _decimals(words: _Words, stop: np.ndarray, width: np.ndarray) -> np.ndarray | None:
    """Return the decimal numbers of WIDTH (1 to 18) digits ending before each STOP, or None if one is not.

    Eight digits at a time: the word of the 8 bytes before a stop, its bytes
    before the number made ASCII zeros, is checked to be digits and combined
    in three steps (pairs, fours, eights) of multiplications on all words
    at once.
    """
    value = np.zeros(stop.shape, np.uint64)
    for part in range(-(-int(width.max()) // _WORD)):
        digits = np.clip(width - _WORD * part, 0, _WORD)
        keep = _KEEP_LAST[digits]
        word = (words.ending(stop - _WORD * part) & keep) | (_ASCII_ZEROS & ~keep)
        if not (((word & _HIGH_NIBBLES) == _ASCII_ZEROS) & (((word + _SIXES) & _HIGH_NIBBLES) == _ASCII_ZEROS)).all():
            return None  # something other than digits within a number
        word &= _LOW_NIBBLES
        word = (word * np.uint64(10) + (word >> np.uint64(8))) & np.uint64(0x00FF00FF00FF00FF)
        word = (word * np.uint64(100) + (word >> np.uint64(16))) & np.uint64(0x0000FFFF0000FFFF)
        word = (word * np.uint64(10000) + (word >> np.uint64(32))) & np.uint64(0xFFFFFFFF)
        value += word * np.uint64(10 ** (_WORD * part))
    return value.view(np.int64)


def _names(buf: np.ndarray, first: np.ndarray, stop: np.ndarray,
           packed: bool = False) -> list | PackedNames | None:
    """Return each record's names from the bodies [FIRST, STOP) of their lists, or None if one is odd.

    PACKED: one plain name a named row comes as PackedNames (bytes).
    """
    named = np.flatnonzero(stop > first)
    if not len(named):
        return [NO_NAMES] * len(first)
    # the bodies, a line each, gathered in one step
    length = stop[named] - first[named] + 1
    at = np.cumsum(length) - length
    bodies = buf[np.arange(int(length.sum())) + np.repeat(first[named] - at, length)]
    bodies[at + length - 1] = _NL
    text = decode_stats_bytes(bodies.tobytes())
    # (a backslash the bytes lack may come from decoding: invalid UTF-8 is spelled \x{hh})
    if _one_plain_name_each(bodies, at, length) and "\\" not in text:
        if packed:  # valid UTF-8 (else a backslash): the bytes are the names' encoding
            inner = np.ones(len(bodies), bool)
            for edge in (at, at + length - 3, at + length - 2, at + length - 1):  # ' ' , \n
                inner[edge] = False
            return pack_names(len(first), named, bodies[inner], length - 4)
        # the usual case: unquoted and made 1-tuples in C
        lists = list(zip(text[1:-3].split("',\n'")))
    elif _BODIES.fullmatch(text) is None:
        return None
    elif "\\" in text:
        lists = [list_names(b) for b in text.split("\n")[:-1]]
    else:
        lists = [b[1:-2].split("','") for b in text.split("\n")[:-1]]
    names = object_array([NO_NAMES] * len(first))
    names[named] = object_array(lists)
    return names.tolist()


def _one_plain_name_each(bodies: np.ndarray, at: np.ndarray, length: np.ndarray) -> bool:
    """Return whether every line of BODIES (starting AT, LENGTH bytes with its break) is 'name', with
    no backslash: two quotes a line, the first byte and the last two but the break.

    That is the shape `_BODIES` takes for a list of one name without escapes.
    """
    quote = bodies == _QUOTE
    return bool(length.min() >= 4 and not (bodies == _BACKSLASH).any()
                and (np.add.reduceat(quote, at) == 2).all() and quote[at].all()
                and quote[at + length - 3].all() and (bodies[at + length - 2] == _COMMA).all())


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


def _with_keys(piece: bytes, words: _Words, first: np.ndarray, stop: np.ndarray,
               numbers: dict[str, np.ndarray], names: list, source: str,
               keep_texts: bool) -> StatsColumns | None:
    """Return the table with its addresses [FIRST, STOP), or None if one is not an address."""
    length = stop - first
    if length.min() < 2 or length.max() > _LONGEST_ADDRESS:
        return None
    chars = words.text_window(stop, int(length.max()))
    inside = np.arange(chars.shape[1]) >= (chars.shape[1] - length)[:, None]
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
    if keep_texts:
        texts = _address_texts(piece, first, stop)
    if v6.any():
        six_rows = np.flatnonzero(v6)
        six_texts = _address_texts(piece, first[six_rows], stop[six_rows])
        try:
            flags, _, packed6 = pack_addresses(six_texts)
        except (OSError, ValueError):
            return None  # not an address to inet_pton
        six = AddressKeys.from_packed(flags, b"", packed6)
        hi[v6], lo[v6] = six.hi, six.lo
        if texts is None and ntop6_texts(packed6) != six_texts:
            # an IPv6 address spelled otherwise than inet_ntop does: the
            # spelling matters (for repeats), so every text is kept
            texts = _address_texts(piece, first, stop)
    keys = AddressKeys(v6, hi, lo)
    if not keys.ascending(strictly=True):
        return None  # a repeat (or disorder): the reader's checks
    return StatsColumns([], keys, numbers, names, source, texts)

