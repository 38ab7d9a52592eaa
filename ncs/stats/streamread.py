"""Reading a stats file that arrives in pieces (a host's output): records read as they come.

`StatsStream` is fed the bytes as they arrive and returns, at the end, what
`ncs.stats.reader.parse_stats` returns for the whole text: the same table,
or a `StatsFormatError` with the same line and message.  It never holds the
whole text.  In the layout ncs writes (a header of `#` lines, then the
opening of the table), every run of complete record blocks of about
`PIECE_BYTES` bytes is read as it is complete, by the byte reader of
`ncs.stats.bytereader` or, when that declines, by `parse_stats` under a
made-up opening, and its bytes are dropped; line numbers in errors are those
of the whole text.  Rows go into growing columns, so a host's output costs
its table plus one piece.

Any other dialect (the original coalescer's Data::Dumper files) is kept
whole and read at the end, once its start shows that it can be one: text
whose first code is none of `{`, `$name` or `my` (an error message, a
binary dump) fails as soon as that is seen, with the reader's message, and
is not held.  A piece that does not read by itself (a quoted name holding a
line break and a record's closing, say) ends the cutting: the rest is kept
and read at the end, so the outcome stays that of the whole text.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ncs.stats.addresses import AddressKeys
from ncs.stats.bytereader import BLOCK_LINES, read_blocks
from ncs.stats.columns import StatsColumns
from ncs.stats.errors import StatsFormatError
from ncs.stats.growing import GrowingColumns, object_array
from ncs.stats.layout import CLOSING, GLUE, OPENING
from ncs.stats.namearena import NameBytes, PackedNames
from ncs.stats.quoting import decode_stats_bytes
from ncs.stats.reader import parse_stats
from ncs.stats.record import NUMBER_KEYS

#: Bytes of record text read at once.  The byte reader makes a few dozen
#: numpy calls a piece, whatever its size: 1 MiB pieces read 1.2 times faster
#: than 128 KiB ones, and bigger ones fall out of the CPU's cache.
PIECE_BYTES = 1 << 20
#: The end of every canonical record block: where a piece may be cut.
_RECORD_END = GLUE[-1].lstrip(",").encode()
_OPENING = OPENING.encode()
_CLOSING = CLOSING.encode()
#: What a piece is read under: an empty first line, then the opening.
_PIECE_HEAD = "\n" + OPENING
_PIECE_HEAD_LINES = _PIECE_HEAD.count("\n")
#: Blanks and comment lines before a text's first code (the reader's tokens).
_LEAD = re.compile(r"(?:[ \t\r\n\f\v]*+#[^\n]*+)*+[ \t\r\n\f\v]*+")
#: How every accepted dialect starts its code: the table, a variable, or "my".
_CODE_START = re.compile(r"\{|\$[A-Za-z_]|my(?:[\s{}\[\],;=>'\"#]|\Z)")
#: Characters after the first code enough to quote it in an error as the whole text would.
_SHOWN_CHARS = 200


@dataclass
class _Piece:
    """Where the records of one piece are: their rows in the table, their lines in the whole text."""

    start: int
    rows: int
    #: line breaks before the piece
    offset: int
    #: the line of each record, when the piece is not 10 lines a record
    lines: list[int] | None = None
    #: the addresses as written (None: as their values spell them)
    texts: list[str] | None = None
    #: the addresses' values, once `take` handed the piece's rows on
    keys: AddressKeys | None = None

    def line(self, row: int) -> int:
        """Return the line (from 1) on which the record in table row ROW starts."""
        at = row - self.start
        return self.lines[at] if self.lines is not None else self.offset + 1 + BLOCK_LINES * at


class StatsStream:
    """One stats text fed in pieces of bytes; `finish` returns its table or raises StatsFormatError."""

    def __init__(self, source: str, piece_bytes: int = PIECE_BYTES, keep_texts: bool = True,
                 packed_names: bool = False) -> None:
        """Start reading the text of SOURCE (the name errors give), about PIECE_BYTES at a time.

        Without KEEP_TEXTS the table does not keep its addresses as written
        (a merge needs only their values): an IPv4 address has one spelling
        anyway, and the texts of the IPv6 ones are dropped at the end.  With
        PACKED_NAMES the pieces the byte reader reads keep an address's one
        name in bytes (`ncs.stats.namearena.PackedNames`).
        """
        self.source = source
        self.piece_bytes = piece_bytes
        self.keep_texts = keep_texts
        self.packed_names = packed_names
        self._single: list[NameBytes] = []  # names in bytes since the last `take` (rows: from the start)
        self._chunks: list[bytes] = []  # bytes not read yet
        self._chars = 0  # bytes in _chunks
        self._head: bytes | None = None  # the header and opening, once found
        self._scanned = 0  # the header's lines before this position are comments
        self._look_at = 0  # pending characters at which to look for the header or a cut again
        self._whole = False  # not the canonical layout: read everything at the end
        self._start_checked = 0  # whole text: characters looked at for its first code (0: not yet)
        self._cutting = True  # False once a piece failed: the rest is read at the end
        self._lines = 0  # line breaks before the pending text
        self._pieces: list[_Piece] = []
        self._rows = _growing_rows()  # the rows read since the last `take`
        self._taken = 0  # rows handed on by `take`
        self._taken_pieces = 0  # pieces handed on by `take`
        self._texts: set[str] | None = None  # every address so far, once they stop ascending
        self._last: AddressKeys | None = None  # the last address read, while they ascend
        self.size = 0  # bytes fed

    @classmethod
    def for_merge(cls, source: str) -> StatsStream:
        """Return a stream that reads SOURCE's text as a merge takes it: values only, names in bytes."""
        return cls(source, keep_texts=False, packed_names=True)

    def feed(self, data: bytes) -> None:
        """Take the next DATA; reads the complete pieces it finishes.

        Raises StatsFormatError when a piece holds an address seen before.
        """
        self.size += len(data)
        self._chunks.append(data)
        self._chars += len(data)
        if self._whole:
            self._check_start()
            return
        if not self._cutting:
            return
        # Looked at again only once the text has doubled since a look that
        # decided nothing (a long header line, a huge record): the joins and
        # searches then add up to the text once, whatever the host sends.
        if self._head is None:
            if self._chars < self._look_at:
                return
            if not self._find_head():
                self._look_at = 2 * self._chars
                return
            self._look_at = 0
        if self._chars >= max(self.piece_bytes, self._look_at):
            self._look_at = 0 if self._cut() else 2 * self._chars

    def _check_start(self) -> None:
        """Raise the reader's error as soon as a whole text's first code cannot start a stats file.

        Looked at when the text has doubled since the last look, so the
        joins add up to the text once.
        """
        if self._start_checked < 0 or self._chars < max(256, 2 * self._start_checked):
            return
        text = decode_stats_bytes(self._pending())
        self._start_checked = self._chars
        lead = _LEAD.match(text)
        code = lead.end() if lead else 0
        if len(text) - code < _SHOWN_CHARS:
            return  # no code yet, or too little of it to judge and to quote
        self._start_checked = -1  # judged, once
        if _CODE_START.match(text, code) is None:
            parse_stats(text[:code + _SHOWN_CHARS], self.source)
            raise AssertionError("the reader took a text that starts with no table")

    def _pending(self) -> bytes:
        """Return the bytes not read yet as one object (and keep them so)."""
        if len(self._chunks) != 1:
            self._chunks = [b"".join(self._chunks)]
        return self._chunks[0]

    def _keep(self, text: bytes) -> None:
        self._chunks = [text]
        self._chars = len(text)

    def _find_head(self) -> bool:
        """Look for the end of the header; return whether it was found.

        The header is comment lines after an optional empty line, then the
        opening; text that cannot be that is kept whole.
        """
        text = self._pending()
        pos = self._scanned
        while pos < len(text):
            if text.startswith(b"#", pos) or (pos == 0 and text.startswith(b"\n")):
                end = text.find(b"\n", pos)
                if end < 0:
                    break  # the rest of a comment line is still coming
                pos = end + 1
                continue
            if text.startswith(_OPENING, pos):
                self._head = text[:pos + len(_OPENING)]
                self._lines = self._head.count(b"\n")
                self._keep(text[pos + len(_OPENING):])
                return True
            if not _OPENING.startswith(text[pos:pos + len(_OPENING)]):
                self._whole = True
            break
        self._scanned = pos
        return False

    def _cut(self) -> bool:
        """Read every complete piece of the pending text; keep the rest; return whether it cut any."""
        text = self._pending()
        pos = 0
        while len(text) - pos >= self.piece_bytes:
            cut = text.find(_RECORD_END, pos + self.piece_bytes - len(_RECORD_END))
            if cut < 0:
                break
            cut += len(_RECORD_END)
            piece = text[pos:cut]
            table = read_blocks(piece, self.source, self.keep_texts, self.packed_names)
            if table is not None:
                lines = BLOCK_LINES * len(table)
            else:  # not the canonical layout throughout: the reader's turn
                try:
                    table = parse_stats(_PIECE_HEAD + decode_stats_bytes(piece) + CLOSING, self.source)
                except StatsFormatError:
                    self._cutting = False  # the rest, from this piece on, is read whole at the end
                    break
                lines = piece.count(b"\n")
            self._add(table, lines, piece)
            self._lines += lines
            pos = cut
        self._keep(text[pos:])
        return pos > 0

    def _add(self, table: StatsColumns, lines: int, text: bytes) -> None:
        """Append TABLE, read from the piece TEXT of LINES lines, after self._lines lines.

        Raises StatsFormatError, as the reader would, for an address that an
        earlier piece holds.
        """
        piece = _Piece(self._read(), len(table), self._lines)
        if lines != BLOCK_LINES * len(table):
            piece.lines = _record_lines(table.addresses, decode_stats_bytes(text), piece.offset)
        if self._texts is None and len(table):
            edge = [] if self._last is None else [self._last]
            if not AddressKeys.concat([*edge, table.keys]).ascending(strictly=True):
                self._texts = {self._text(row) for row in range(self._read())}
            self._last = table.keys.take(slice(-1, None))
        if self._texts is not None:
            for row, address in enumerate(table.addresses):
                if address in self._texts:
                    raise StatsFormatError(
                        self.source, piece.line(piece.start + row),
                        f"duplicate address {_show(address)} (first on line {self._line_of(address)})")
            self._texts.update(table.addresses)
        keys = table.keys
        names = table.names
        if isinstance(names, PackedNames):
            single = names.single
            self._single.append(single.with_rows(single.rows + piece.start))
            names = names.rest
        self._rows.append({"is6": keys.is6, "hi": keys.hi, "lo": keys.lo, **table.numbers,
                           "names": object_array(names)})
        # An IPv4 address has one spelling; an IPv6 one's, as written, matters for
        # repeats: a table without texts spells its IPv6 addresses as inet_ntop does.
        if self.keep_texts or table.texts is not None:
            piece.texts = table.addresses
        self._pieces.append(piece)

    def _text(self, row: int) -> str:
        """Return the address of table ROW as written."""
        piece = self._pieces[bisect_right([p.start for p in self._pieces], row) - 1]
        if piece.texts is not None:
            return piece.texts[row - piece.start]
        if piece.keys is not None:
            return piece.keys.text(row - piece.start)
        at = row - self._taken
        return AddressKeys(*(self._rows.view(c)[at:at + 1] for c in ("is6", "hi", "lo"))).text(0)

    def _read(self) -> int:
        """Return how many rows were read so far (taken or not)."""
        return self._taken + len(self._rows)

    def _row_of(self, address: str) -> int | None:
        """Return the table row of ADDRESS (as written) read so far, or None."""
        return next((row for row in range(self._read()) if self._text(row) == address), None)

    def _line_of(self, address: str) -> int:
        """Return the line on which ADDRESS starts in the pieces read so far."""
        row = self._row_of(address)
        assert row is not None, f"{address} was not read"
        return next(p for p in self._pieces if p.start <= row < p.start + p.rows).line(row)

    def take(self) -> list[StatsColumns]:
        """Return the rows read since the last take as a table (none: an empty list), and stop holding them.

        The table is a run of consecutive records (no header) as the whole
        text holds them; `finish` then returns only the records after those
        taken.  The stream keeps the addresses' values (17 bytes a record)
        to find repeats.
        """
        if not len(self._rows):
            return []
        table = self._handed_on([])
        for piece in self._pieces[self._taken_pieces:]:
            at = piece.start - self._taken
            piece.keys = table.keys.take(slice(at, at + piece.rows))
        self._taken += len(table)
        self._taken_pieces = len(self._pieces)
        return [table]

    def _handed_on(self, header: list[str]) -> StatsColumns:
        """Return the rows read since the last take under HEADER, and start a new run."""
        rows, self._rows = self._rows, _growing_rows()
        texts = [a for p in self._pieces[self._taken_pieces:] for a in p.texts or ()] \
            if self.keep_texts else None
        names: list | PackedNames = rows.view("names").tolist()
        if self._single:
            single = NameBytes.concat(self._single)
            self._single = []
            names = PackedNames(names, single.with_rows(single.rows - self._taken))
        return StatsColumns(header, AddressKeys(rows.view("is6"), rows.view("hi"), rows.view("lo")),
                            {key: rows.view(key) for key in NUMBER_KEYS}, names, self.source, texts)

    def finish(self, *, allow_empty: bool = True) -> StatsColumns:
        """Return the table of the whole text, or of the records after those taken (see `take`).

        Raises StatsFormatError as `parse_stats` does for the whole text.
        """
        pending = self._pending()
        self._keep(b"")
        if self._head is None:
            return parse_stats(decode_stats_bytes(pending), self.source, allow_empty=allow_empty)
        head = decode_stats_bytes(self._head)
        body = pending.removesuffix(_CLOSING)
        last = read_blocks(body, self.source, self.keep_texts, self.packed_names) \
            if self._cutting and body != pending else None
        lines = BLOCK_LINES * len(last) if last is not None else body.count(b"\n")
        if last is None:
            rest = decode_stats_bytes(pending)
            if not self._pieces:
                table = parse_stats(head + rest, self.source, allow_empty=allow_empty)
                if not self.keep_texts and not table.keys.is6.any():
                    table.texts = None
                return table
            try:
                last = parse_stats(_PIECE_HEAD + rest, self.source)
            except StatsFormatError:
                raise self._first_error(rest) from None
        self._add(last, lines, body)
        header = parse_stats(head + CLOSING, self.source).header
        return self._handed_on(header)

    def _first_error(self, rest: str) -> StatsFormatError:
        """Return the error the whole text gives, knowing that REST (the text after the pieces) has one.

        REST is read again after every address of the pieces, on the line of
        the opening (so no line moves): an address in REST that a piece
        holds is then named first if it comes before REST's own error.
        """
        seen = "".join(f"'{self._text(row)}'=>{{}}," for row in range(self._read()))
        try:
            parse_stats(_PIECE_HEAD[:-1] + seen + "\n" + rest, self.source)
        except StatsFormatError as err:
            moved = _moved(err, self._lines - _PIECE_HEAD_LINES)
            first = _FIRST_ON_LINE.search(err.message)
            if first is None or int(first.group(1)) > _PIECE_HEAD_LINES:
                return moved
            # The first one is a piece's: name its real line.
            line = rest.split("\n")[err.line - _PIECE_HEAD_LINES - 1]
            address = next(a for a in _QUOTED.findall(line) if self._row_of(a) is not None)
            return StatsFormatError(self.source, moved.line,
                                    f"duplicate address {_show(address)} (first on line "
                                    f"{self._line_of(address)})")
        raise AssertionError("the text after the pieces read without error the second time")


def _growing_rows() -> GrowingColumns:
    """Return empty growing columns for a table's rows."""
    return GrowingColumns({"is6": bool, "hi": np.uint64, "lo": np.uint64,
                           **{key: np.int64 for key in NUMBER_KEYS}, "names": object})


def _record_lines(addresses: list[str], text: str, offset: int) -> list[int]:
    """Return the line of each of ADDRESSES (in order) in TEXT, which starts after OFFSET line breaks."""
    lines, pos, line = [], 0, offset + 1
    for address in addresses:
        at = min((i for i in (text.find(q + address + q, pos) for q in "'\"") if i >= 0), default=pos)
        line += text.count("\n", pos, at)
        lines.append(line)
        pos = at
    return lines


_FIRST_ON_LINE = re.compile(r"\(first on line (\d+)\)$")
_QUOTED = re.compile(r"['\"]([0-9A-Fa-f:.]+)['\"]")


def _moved(err: StatsFormatError, lines: int) -> StatsFormatError:
    """Return ERR with its line numbers (its own, and one its message names) LINES further on."""
    message = _FIRST_ON_LINE.sub(lambda m: f"(first on line {int(m.group(1)) + lines})", err.message)
    return StatsFormatError(err.source, err.line + lines, message)


def _show(text: str) -> str:
    """Return TEXT quoted as the reader's messages quote it: at most ~40 characters."""
    return repr(text[:37] + "..." if len(text) > 40 else text)


def read_runs(path: str, source: str | None = None, piece_bytes: int = PIECE_BYTES) -> Iterator[StatsColumns]:
    """Yield the records of the stats file PATH in runs of about PIECE_BYTES of text, in order.

    Only a run is held at a time (and 17 bytes a record): a composite of
    millions of addresses can be read back without holding it whole.  The
    runs carry no header.  Raises OSError, or StatsFormatError (SOURCE,
    default PATH, with its line) where `read_stats` would; runs already
    yielded were read right.
    """
    stream = StatsStream(source or path, piece_bytes, keep_texts=False)
    with open(path, "rb") as f:
        while chunk := f.read(piece_bytes):
            stream.feed(chunk)
            yield from stream.take()
    rest = stream.finish()
    if len(rest):
        yield rest
