"""Reader of stats files: a parser (never eval) for ncs, original-agent and Data::Dumper files.

Three dialects of the same Perl data reach this module:

* files written by `agent.statsfile` (the canonical layout of DESIGN section 6);
* files written by the original Perl agent (the same layout, header line
  "# Net::Connection::Sniffer version 0.31", names not escaped);
* Data::Dumper output as the original coalescer wrote composites:
  ``$VAR1 = { 'ADDR' => { 'B' => '240', 'N' => [ 'a', 'b' ], ... } };``

The canonical layout is read by a line-exact fast path built on one regular
expression per record; anything it does not recognise (another dialect, an
error) is handed to a small tokenizer and recursive-descent parser that
accepts all three dialects and names the line of the first problem.  The
result is a `StatsFile` or a `StatsFormatError`, never a partial table.
"""

from __future__ import annotations

import codecs
import functools
import gc
import re
import socket
import sys
from collections.abc import Iterator
from itertools import compress
from typing import NamedTuple

from ncs.agent.statsfile import CLOSING, RECORD_KEYS, Record, StatsFile

__all__ = [
    "CanonicalBlocks",
    "NotCanonical",
    "StatsFormatError",
    "canonical_blocks",
    "canonical_header",
    "canonical_names",
    "pack_addresses",
    "decode_stats_bytes",
    "parse_stats",
    "read_stats",
]


class StatsFormatError(ValueError):
    """A stats file that cannot be read; str() is "SOURCE:LINE: message" on one line."""

    def __init__(self, source: str, line: int, message: str) -> None:
        self.source = source
        self.line = line
        # One line whatever the message quotes: a log line per bad file.
        self.message = message.replace("\r", " ").replace("\n", " ")
        super().__init__(f"{source}:{line}: {self.message}")

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.message}"

    def __reduce__(self) -> tuple[type, tuple[str, int, str]]:
        # Survives pickling (a process pool parsing files) with all its fields.
        return (type(self), (self.source, self.line, self.message))


# --------------------------------------------------------------------------
# Decoding bytes: names in the original agent's files are raw bytes from DNS.


def _xescape_errors(err: UnicodeError) -> tuple[str, int]:
    # Bytes that are not UTF-8 become "\x{hh}" text, the spelling the writer
    # uses for unprintable characters, so nothing is lost silently and the
    # text stays printable and encodable for every renderer.
    assert isinstance(err, UnicodeDecodeError)
    bad = err.object[err.start:err.end]
    return "".join(f"\\x{{{b:x}}}" for b in bad), err.end


codecs.register_error("ncs-xescape", _xescape_errors)


def decode_stats_bytes(data: bytes) -> str:
    """Return DATA decoded as UTF-8, invalid bytes spelled as \\x{hh}."""
    return data.decode("utf-8", errors="ncs-xescape")


def read_stats(path: str, *, allow_empty: bool = True) -> StatsFile:
    """Read and parse the stats file at PATH ('-' reads standard input).

    Returns the parsed `StatsFile` (its `source` is PATH, or "<stdin>").
    Raises StatsFormatError for a malformed file, and also when the file
    cannot be read ("PATH: cannot read: reason", line 0).
    """
    source = "<stdin>" if path == "-" else path
    return parse_stats(read_text(path, source), source, allow_empty=allow_empty)


def read_text(path: str, source: str) -> str:
    """Return the decoded text of PATH or stdin (the bytes are freed on return)."""
    try:
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as f:
                data = f.read()
    except OSError as exc:
        raise _ReadError(source, exc.strerror or str(exc)) from exc
    return decode_stats_bytes(data)


class _ReadError(StatsFormatError):
    """A file that could not be opened or read: "PATH: cannot read: reason"."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(source, 0, "cannot read: " + reason)

    def __str__(self) -> str:
        return f"{self.source}: {self.message}"

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # type: ignore[override]
        return (type(self), (self.source, self.message.removeprefix("cannot read: ")))


def parse_stats(text: str, source: str = "<string>", *, allow_empty: bool = True) -> StatsFile:
    """Parse the text of a stats file in any of the accepted dialects.

    An empty (or whitespace-only) text is the original agent's empty table and
    returns an empty StatsFile, unless ALLOW_EMPTY is false, when it raises.
    Addresses are returned as written (after unquoting); they must be an IPv4
    dotted quad without leading zeros or an IPv6 address without a zone.
    Raises StatsFormatError naming SOURCE and the line of the first problem.
    """
    if not text.strip():
        if allow_empty:
            return StatsFile([], {}, source)
        raise StatsFormatError(source, 1, "empty file, expected a stats file header and table")
    fast = _parse_canonical(text, source)
    if fast is not None:
        return fast
    return _Parser(text, source).parse()


# --------------------------------------------------------------------------
# Fast path: the canonical layout, exactly as agent.statsfile writes it.

# No leading zeros: Perl reads a bare 010 as octal; the general parser rejects it.
_INT = r"(-?(?:0|[1-9][0-9]*+))"
# One record block; the groups are address, B, C, E, names, R, S, T, W.
_CANON_RECORD = re.compile(
    # Addresses are checked by inet_pton afterwards: cheaper than a strict regex.
    rf"\t'([0-9A-Fa-f:.]+)'[\t ]=> \{{\n"
    rf"\t\tB\t=> {_INT},\n"
    rf"\t\tC\t=> {_INT},\n"
    rf"\t\tE\t=> {_INT},\n"
    # Names: the loop is unrolled (runs of plain characters, then one escape)
    # because a per-character alternation doubles the cost of the whole match.
    r"\t\tN\t=> \[((?:'[^'\\\n]*+(?:\\[^\n][^'\\\n]*+)*+',)*+)\],\n"
    rf"\t\tR\t=> {_INT},\n"
    rf"\t\tS\t=> {_INT},\n"
    rf"\t\tT\t=> {_INT},\n"
    rf"\t\tW\t=> {_INT},\n"
    r"\t\},\n"
)
_CANON_GROUPS = 9
_CANON_HEAD = re.compile(r"\n?((?:#[^\n]*\n)*)\{\n  my \$dump = \{\n")
_CANON_TAIL = CLOSING
_NAME_IN_LIST = re.compile(r"'((?:[^'\\]|\\.)*)',", re.S)
_PERL_SQ_ESCAPE = re.compile(r"\\([\\'])")
#: Characters of body text handed to one regex split; bounds peak memory.
_CHUNK_CHARS = 1 << 22


def _header_text(comment: str) -> str:
    """Return a header comment line without its '#' and one following space."""
    body = comment[1:].rstrip("\r")
    return body[1:] if body.startswith(" ") else body


def _escaped_names(text: str) -> list[str]:
    """Return the names of a canonical list body with escapes, "'a','b\\'c',"."""
    return [_PERL_SQ_ESCAPE.sub(r"\1", m) for m in _NAME_IN_LIST.findall(text)]


class CanonicalBlocks(NamedTuple):
    """One chunk of canonical record blocks, split into its fields (all still text).

    `parts` is the regex split of the chunk: the fields of record i are
    `parts[i * STRIDE + 1 : i * STRIDE + 10]`, in the order address, B, C,
    E, names, R, S, T, W.  Take a column with `column(k)`.
    """

    parts: list[str]
    #: per record, whether its address is IPv6 (has a colon)
    v6: list[bool]
    #: the inet_pton bytes of the IPv4 addresses, in order, and of the IPv6 ones
    packed4: bytes
    packed6: bytes

    #: Distance between the same field of two consecutive records in `parts`.
    STRIDE = _CANON_GROUPS + 1
    #: Offsets in a record's stride of each numeric key.
    NUMBER_FIELDS = {"B": 2, "C": 3, "E": 4, "R": 6, "S": 7, "T": 8, "W": 9}

    def column(self, k: int) -> list[str]:
        """Return field K (1: address, 5: names list body, see NUMBER_FIELDS) of every record."""
        return self.parts[k::self.STRIDE]

    @property
    def addresses(self) -> list[str]:
        """Return the address texts, in file order."""
        return self.column(1)

    def names(self) -> list[list[str]]:
        """Return each record's names, unescaped (a new empty list for a record without)."""
        return [canonical_names(n) for n in self.column(5)]


def canonical_names(body: str) -> list[str]:
    """Return the names of the body of a canonical names list ("'a','b\\'c',"), unescaped."""
    if not body:
        return []
    return body[1:-2].split("','") if "\\" not in body else _escaped_names(body)


class NotCanonical(Exception):
    """The text is not exactly in the canonical layout (not an error: use the general parser)."""


def canonical_header(text: str) -> tuple[list[str], int, int] | None:
    """Return (header lines, body start, body end) of canonical TEXT, or None if it is not."""
    head = _CANON_HEAD.match(text)
    if head is None or not text.endswith(_CANON_TAIL):
        return None
    body_end = len(text) - len(_CANON_TAIL)
    if body_end < head.end():
        return None
    # split("\n"), not splitlines(): the latter also breaks at \x85 or U+2028.
    header = [_header_text(line) for line in head.group(1).split("\n")[:-1]]
    return header, head.end(), body_end


def pack_addresses(addresses: list[str]) -> tuple[list[bool], bytes, bytes]:
    """Return (IPv6 flag of each address, inet_pton bytes of the IPv4 ones, of the IPv6 ones).

    Raises OSError (or ValueError for an embedded NUL) when one is not an address.
    """
    v6 = [":" in a for a in addresses]
    packed4 = b"".join(map(_INET_PTON_V4, compress(addresses, [not f for f in v6])))
    packed6 = b"".join(map(_INET_PTON_V6, compress(addresses, v6)))
    return v6, packed4, packed6


def canonical_blocks(text: str, start: int, end: int) -> Iterator[CanonicalBlocks]:
    """Yield the record blocks of TEXT[START:END] chunk by chunk (bounded memory).

    Every address is checked with inet_pton.  Raises NotCanonical as soon as
    a chunk is not a run of canonical record blocks.
    """
    # The split leaves the text between matches at every stride-th place; a
    # canonical body has nothing between its records.  Columns are then taken
    # by slicing, so that conversions run in C over whole columns rather than
    # in a Python loop per record.
    pos = start
    while pos < end:
        stop = text.find("\n\t},\n", min(pos + _CHUNK_CHARS, end))
        stop = end if stop < 0 else min(stop + 5, end)
        parts = _CANON_RECORD.split(text[pos:stop])
        if any(parts[0::CanonicalBlocks.STRIDE]):
            raise NotCanonical
        try:
            # The checked addresses' bytes are kept: they are the sort keys.
            packed = pack_addresses(parts[1::CanonicalBlocks.STRIDE])
        except OSError:
            raise NotCanonical from None
        yield CanonicalBlocks(parts, *packed)
        pos = stop


def _parse_canonical(text: str, source: str) -> StatsFile | None:
    """Return the StatsFile for text in the exact canonical layout, else None.

    None means "not recognised", never "malformed": the general parser then
    reads the text and reports the error, if there is one, with its line.
    """
    found = canonical_header(text)
    if found is None:
        return None
    header, start, end = found
    records: dict[str, Record] = {}
    count = 0
    # Building a million small objects triggers the cyclic collector over and
    # over for nothing (records hold no cycles); pausing it halves the time.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for blocks in canonical_blocks(text, start, end):
            col = [map(int, blocks.column(k)) for k in (2, 3, 4, 7, 6, 9, 8)]  # B C E S R W T
            records.update(zip(blocks.addresses, map(Record, *col, blocks.names()), strict=True))
            count += len(blocks.addresses)
    except NotCanonical:
        return None
    finally:
        if gc_was_enabled:
            gc.enable()
    if count != len(records):
        return None  # a duplicate address: let the general parser name its line
    return StatsFile(header, records, source)


_INET_PTON_V4 = functools.partial(socket.inet_pton, socket.AF_INET)
_INET_PTON_V6 = functools.partial(socket.inet_pton, socket.AF_INET6)


def _valid_address(text: str) -> bool:
    """Return whether TEXT is an IPv4 dotted quad or an IPv6 address (no zone)."""
    family = socket.AF_INET6 if ":" in text else socket.AF_INET
    try:
        socket.inet_pton(family, text)
    except (OSError, ValueError):
        return False
    return True


# --------------------------------------------------------------------------
# General path: a tokenizer and a recursive-descent parser for the Perl subset.


class _Token(NamedTuple):
    kind: str  # one of the group names of _TOKEN, or "eof"
    text: str
    pos: int  # offset in the text; the line is counted only for an error message


# Leading whitespace, then one token.  Every character starts some token (the
# last resort is "bad"), so consecutive matches cover the whole text.  A bare
# number with a leading zero is octal in Perl (010 == 8): it is no "num" here,
# so it ends up a "junk" token and a clear error.
_TOKEN = re.compile(
    r"""
    [ \t\r\n\f\v]*+
    (?:
      (?P<comment>\#[^\n]*)
    | (?P<sq>'[^'\\]*+(?:\\.[^'\\]*+)*+')
    | (?P<dq>"[^"\\]*+(?:\\.[^"\\]*+)*+")
    | (?P<num>[+-]?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?(?![\w.]))
    | (?P<arrow>=>)
    | (?P<punct>[{}\[\],;=])
    | (?P<var>\$[A-Za-z_]\w*)
    | (?P<word>[A-Za-z_]\w*(?![^\s{}\[\],;=>'"\#]))
    | (?P<junk>[^\s{}\[\],;=>'"\#]+)
    | (?P<bad>.)
    )?
    """,
    re.X | re.S,
)
_NUMBER = re.compile(
    r"\s*(?:[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?i:inf(?:inity)?|nan))\s*"
)
# What Perl (and a "%.0f" of a non-finite float) prints for infinity and NaN.
_NON_FINITE = re.compile(r"(?i:inf(?:inity)?|nan)")
_DQ_ESCAPE = re.compile(
    r"\\(?:x\{([0-9A-Fa-f]*)\}|x([0-9A-Fa-f]{0,2})|([0-7]{1,3})|N\{U\+([0-9A-Fa-f]+)\}|(.))", re.S
)
_DQ_SIMPLE = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "b": "\b", "a": "\a", "e": "\x1b"}
_DQ_INTERPOLATION = re.compile(r"(?<!\\)(?:\\\\)*[$@][\w{:]")


def _show(text: str) -> str:
    """Return TEXT quoted for an error message: one line, at most ~40 characters."""
    if len(text) > 40:
        text = text[:37] + "..."
    return repr(text)


def _describe(tok: _Token) -> str:
    """Return how an error message names TOK."""
    return "end of file" if tok.kind == "eof" else _show(tok.text)


class _Parser:
    """Recursive-descent parser of one stats file text in any accepted dialect."""

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.tokens = self._tokenize()
        self.header: list[str] = []
        self.tok = self._first_token()

    # -- tokens --------------------------------------------------------------

    def _tokenize(self) -> Iterator[_Token]:
        """Yield the tokens of the text, then eof; comments only before the first code token."""
        text = self.text
        in_header = True
        for m in _TOKEN.finditer(text):
            kind = m.lastgroup
            if kind is None:
                break  # only whitespace was left
            if kind == "comment" and not in_header:
                continue
            in_header = kind == "comment"
            yield _Token(kind, m.group(kind), m.start(kind))
            if kind == "bad":
                return  # the parser stops at it
        yield _Token("eof", "", len(text) - 1 if text.endswith("\n") else len(text))

    def _first_token(self) -> _Token:
        """Collect the leading comment lines as the header; return the first code token."""
        for tok in self.tokens:
            if tok.kind != "comment":
                return tok
            self.header.append(_header_text(tok.text))
        raise AssertionError("the tokenizer always ends with eof")

    def _advance(self) -> _Token:
        """Move to the next token; return the one that was current."""
        current = self.tok
        self.tok = next(self.tokens, current)  # eof is last and stays current
        return current

    def _line(self, tok: _Token) -> int:
        """Return the line number (from 1) on which TOK starts."""
        return self.text.count("\n", 0, tok.pos) + 1

    def _error(self, message: str, tok: _Token | None = None) -> StatsFormatError:
        tok = tok or self.tok
        if tok.kind == "bad":
            if tok.text in ("'", '"'):
                message = "unterminated string"
            else:
                message = f"unexpected character {_show(tok.text)}"
        elif tok.kind == "eof":
            message = f"file ends early (truncated?): {message}"
        return StatsFormatError(self.source, self._line(tok), message)

    def _is(self, text: str) -> bool:
        # Token texts are unambiguous: a string token keeps its quotes, so
        # only a punctuation mark or a bare word can equal "}" or "my".
        return self.tok.text == text

    def _expect(self, text: str, context: str) -> _Token:
        if not self._is(text):
            raise self._error(f"expected {text!r} {context}, found {_describe(self.tok)}")
        return self._advance()

    # -- grammar -------------------------------------------------------------

    def parse(self) -> StatsFile:
        """Parse the whole text; return the StatsFile or raise StatsFormatError.

        Accepted top level: ``{ my $dump = TABLE; }`` (ncs and the original
        agent) or ``$VAR1 = TABLE;`` (Data::Dumper), semicolons optional where
        Perl allows, comments anywhere.
        """
        if self.tok.kind == "eof":
            raise self._error("expected '{' (the table) after the header")
        if self._is("{"):
            self._advance()
            self._assignment()
            self._expect("}", "closing the outer block")
        elif self.tok.kind == "var" or self._is("my"):
            self._assignment()
        else:
            raise self._error(f"expected '{{' or '$VAR1 =', found {_describe(self.tok)}")
        while self._is(";"):
            self._advance()
        if self.tok.kind != "eof":
            raise self._error(f"unexpected {_describe(self.tok)} after the end of the table")
        return StatsFile(self.header, self.records, self.source)

    def _assignment(self) -> None:
        """Parse ``[my] $NAME = TABLE [;]`` into self.records."""
        if self._is("my"):
            self._advance()
        if self.tok.kind != "var":
            raise self._error(f"expected a variable such as '$dump', found {_describe(self.tok)}")
        self._advance()
        self._expect("=", "after the variable")
        self.records = self._table()
        if self._is(";"):
            self._advance()

    def _table(self) -> dict[str, Record]:
        """Parse ``{ 'ADDR' => RECORD, ... }``; return the records in file order."""
        self._expect("{", "opening the table")
        records: dict[str, Record] = {}
        first_seen: dict[str, _Token] = {}
        while not self._is("}"):
            tok = self.tok
            if tok.kind not in ("sq", "dq"):
                raise self._error(f"expected a quoted address or '}}', found {_describe(tok)}")
            address = self._address(tok)
            self._advance()
            self._expect("=>", f"after the address {_show(address)}")
            if address in first_seen:
                first = self._line(first_seen[address])
                raise self._error(f"duplicate address {_show(address)} (first on line {first})", tok)
            first_seen[address] = tok
            records[address] = self._record()
            if not self._is(","):
                break
            self._advance()
        self._expect("}", "closing the table")
        return records

    def _address(self, tok: _Token) -> str:
        """Return the address in string token TOK, as written; raise unless it is an IP address."""
        text = self._string(tok)
        if not _valid_address(text):
            raise self._error(f"not an IP address: {_show(text)}", tok)
        return text

    def _record(self) -> Record:
        """Parse ``{ KEY => VALUE, ... }`` of one address; missing keys keep their defaults."""
        self._expect("{", "opening a record")
        fields: dict[str, object] = {}
        while not self._is("}"):
            tok = self.tok
            if tok.kind == "word":
                key = tok.text
            elif tok.kind in ("sq", "dq"):
                key = self._string(tok)
            else:
                raise self._error(f"expected a record key or '}}', found {_describe(tok)}")
            if key not in RECORD_KEYS:
                raise self._error(
                    f"unknown record key {_show(key)} (known: {' '.join(RECORD_KEYS)})", tok
                )
            if key in fields:
                raise self._error(f"duplicate record key {_show(key)}", tok)
            self._advance()
            self._expect("=>", f"after the key {key}")
            fields[key] = self._names() if key == "N" else self._number(key)
            if not self._is(","):
                break
            self._advance()
        self._expect("}", "closing a record")
        return Record(**fields)  # type: ignore[arg-type]

    def _number(self, key: str) -> int | float:
        """Parse a bare or quoted number (Data::Dumper quotes many); return int or float."""
        tok = self.tok
        if tok.kind == "num":
            text = tok.text
        elif tok.kind in ("sq", "dq"):
            text = self._string(tok)
            if not _NUMBER.fullmatch(text):
                raise self._error(f"{key}: not a number: {_show(text)}", tok)
        elif tok.kind == "word" and _NON_FINITE.fullmatch(tok.text):
            text = tok.text
        else:
            raise self._error(f"{key}: expected a number, found {_describe(tok)}", tok)
        self._advance()
        return _to_number(text)

    def _names(self) -> list[str]:
        """Parse ``[ 'name', ... ]``; return the names."""
        self._expect("[", "opening the list of names (N)")
        names: list[str] = []
        while not self._is("]"):
            tok = self.tok
            if tok.kind in ("sq", "dq"):
                names.append(self._string(tok))
            elif tok.kind == "num":
                names.append(tok.text)
            else:
                raise self._error(f"N: expected a quoted name or ']', found {_describe(tok)}")
            self._advance()
            if not self._is(","):
                break
            self._advance()
        self._expect("]", "closing the list of names (N)")
        return names

    def _string(self, tok: _Token) -> str:
        """Return the value of a Perl string literal token (no interpolation)."""
        body = tok.text[1:-1]
        if tok.kind == "sq":
            # Single quotes: only \\ and \' are escapes, any other backslash is literal.
            return _PERL_SQ_ESCAPE.sub(r"\1", body) if "\\" in body else body
        if _DQ_INTERPOLATION.search(body):
            raise self._error(f"variable interpolation in {_show(tok.text)} is not data", tok)
        return _dq_bytes_as_utf8(_DQ_ESCAPE.sub(_dq_unescape, body)) if "\\" in body else body


def _dq_unescape(m: re.Match[str]) -> str:
    """Return the character one Perl double-quote escape stands for."""
    braced, short_hex, octal, named, other = m.groups()
    if braced is not None or short_hex is not None:
        digits = braced if braced is not None else short_hex
        return chr(min(int(digits or "0", 16), sys.maxunicode))
    if octal is not None:
        return chr(int(octal, 8))
    if named is not None:
        return chr(min(int(named, 16), sys.maxunicode))
    return _DQ_SIMPLE.get(other, other)


def _dq_bytes_as_utf8(text: str) -> str:
    """Return TEXT re-read as UTF-8 when it is a byte string that holds UTF-8.

    Data::Dumper with Useqq spells the bytes of a UTF-8 name as escapes
    ("m\\303\\274nchen"); the text of the file itself is read as UTF-8, so the
    escaped bytes are too.  Text with a character above 255 is already text.
    """
    if text.isascii() or max(text) > "\xff":
        return text
    try:
        return text.encode("latin-1").decode("utf-8")
    except UnicodeDecodeError:
        return text


def _to_number(text: str) -> int | float:
    """Return TEXT (already checked to be numeric) as an int when integral in form, else float."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        return float(text)
