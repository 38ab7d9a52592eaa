"""The general stats file parser: the three dialects of the same Perl data, never evaluated.

* files ncs writes (the layout of `ncs.stats.layout`);
* files the original Perl agent writes (the same layout, header line
  "# Net::Connection::Sniffer version 0.31", names not escaped);
* Data::Dumper output, as the original coalescer wrote composites:
  ``$VAR1 = { 'ADDR' => { 'B' => '240', 'N' => [ 'a', 'b' ], ... } };``

A tokenizer and a recursive-descent parser accept all three and name the
line of the first problem.  The reader (`ncs.stats.reader`) hands it every
text its fast path does not recognise.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from typing import NamedTuple

from ncs.stats.addresses import is_address
from ncs.stats.errors import StatsFormatError
from ncs.stats.layout import comment_text
from ncs.stats.numbers import BadNumber, number_value
from ncs.stats.quoting import unquote_single
from ncs.stats.record import KEYS, NAMES_KEY, Record


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
# What Perl (and a "%.0f" of a non-finite float) prints for infinity and NaN;
# recognised only to be refused by name (ncs.stats.numbers).
_NON_FINITE = re.compile(r"[+-]?(?i:inf(?:inity)?|nan)")
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
            self.header.append(comment_text(tok.text))
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

    def parse(self) -> tuple[list[str], list[tuple[str, Record]]]:
        """Parse the whole text; return (header lines, (address, Record) pairs in file order).

        Raises StatsFormatError naming the line of the first problem.

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
        return self.header, list(self.records.items())

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
        if not is_address(text):
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
            if key not in KEYS:
                raise self._error(
                    f"unknown record key {_show(key)} (known: {' '.join(KEYS)})", tok
                )
            if key in fields:
                raise self._error(f"duplicate record key {_show(key)}", tok)
            self._advance()
            self._expect("=>", f"after the key {key}")
            fields[key] = self._names() if key == NAMES_KEY else self._number(key)
            if not self._is(","):
                break
            self._advance()
        self._expect("}", "closing a record")
        return Record(**fields)  # type: ignore[arg-type]

    def _number(self, key: str) -> int | float:
        """Parse a bare or quoted number (Data::Dumper quotes many); return int or float.

        Raises StatsFormatError for text that is not a number, and for a
        number no stats file may hold (`ncs.stats.numbers`: not finite,
        negative, too long or too large).
        """
        tok = self.tok
        if tok.kind == "num":
            text = tok.text
        elif tok.kind in ("sq", "dq"):
            text = self._string(tok)
            if not _NUMBER.fullmatch(text):
                raise self._error(f"{key}: not a number: {_show(text)}", tok)
        elif tok.kind in ("word", "junk") and _NON_FINITE.fullmatch(tok.text):
            text = tok.text
        else:
            raise self._error(f"{key}: expected a number, found {_describe(tok)}", tok)
        try:
            value = number_value(text)
        except BadNumber as err:
            raise self._error(f"{key}: {err}: {_show(text)}", tok) from None
        self._advance()
        return value

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
            return unquote_single(body)
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


def parse_general(text: str, source: str) -> tuple[list[str], list[tuple[str, Record]]]:
    """Parse TEXT in any accepted dialect; return (header lines, (address, Record) pairs).

    Addresses are returned as written (after unquoting); they must be an IPv4
    dotted quad without leading zeros or an IPv6 address without a zone.
    Raises StatsFormatError naming SOURCE and the line of the first problem.
    """
    return _Parser(text, source).parse()
