"""Text in stats files: Perl single-quoted strings, and hostile text made inert.

Names come from the network and header values from configuration; whatever
they hold, a written file must keep its line structure and stay readable by
Perl's `do`, and a terminal or page that shows them must not be steered.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Sequence


def safe_text(text: str) -> str:
    """Return TEXT with every unprintable character spelled as \\x{hex}.

    A newline or an escape sequence in a name must not break the line
    structure of a file or reach a terminal that shows it.
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else f"\\x{{{ord(ch):x}}}" for ch in text)


def safe_line(line: str) -> str:
    """Return a header LINE with every unprintable character but TAB spelled as \\x{hex}.

    Header lines use tabs for layout; anything else (ESC, CR, newline) could
    rewrite a terminal or break the line structure.
    """
    if line.isprintable():
        return line
    return "\t".join(safe_text(part) for part in line.split("\t"))


def perl_quote(text: str) -> str:
    """Return TEXT as a Perl single-quoted string literal ('it\\'s'), unprintables as \\x{hex}."""
    if "'" not in text and "\\" not in text and text.isprintable():
        return "'" + text + "'"  # the common case, kept cheap for the writer
    return "'" + safe_text(text).replace("\\", "\\\\").replace("'", "\\'") + "'"


def names_body(names: Sequence[str]) -> str:
    """Return the body of a Perl list of NAMES as the writers lay it out, "'a','b',"."""
    if not names:
        return ""
    plain = "".join(names)
    if "'" in plain or "\\" in plain or not plain.isprintable():
        return "".join([perl_quote(n) + "," for n in names])
    return "'" + "','".join(names) + "',"


def names_bodies(lists: Sequence[Sequence[str]]) -> list[str]:
    """Return `names_body` of every list of LISTS, the usual case (one plain name each) in bulk.

    Lists of exactly one name that needs no quoting make their bodies in two
    C calls for all of them (a join and a split), not in a call each.
    """
    single = [ns[0] for ns in lists if len(ns) == 1]
    plain = "".join(single)
    if len(single) != len(lists) or "'" in plain or "\\" in plain or "\0" in plain \
            or not plain.isprintable():
        return [names_body(ns) for ns in lists]
    return ("'" + "',\0'".join(single) + "',").split("\0") if single else []


_SINGLE_QUOTE_ESCAPE = re.compile(r"\\([\\'])")


def unquote_single(body: str) -> str:
    """Return the value of the body of a Perl single-quoted string: only \\ and \' are escapes."""
    return _SINGLE_QUOTE_ESCAPE.sub(r"\1", body) if "\\" in body else body


def escape_bytes(data: bytes) -> str:
    """Return match bytes as the original prints them in the header: unprintables as \\x{hex}."""
    out = []
    for byte in data:
        if byte < 0x20 or byte > 0xFE or 0x7E < byte < 0xA8:
            out.append(f"\\x{{{byte:x}}}")
        else:
            out.append(chr(byte))
    return "".join(out)


def _xescape_errors(err: UnicodeError) -> tuple[str, int]:
    # Bytes that are not UTF-8 become "\x{hh}" text, the spelling the writer
    # uses for unprintable characters, so nothing is lost silently and the
    # text stays printable and encodable for every renderer.
    assert isinstance(err, UnicodeDecodeError)
    bad = err.object[err.start:err.end]
    return "".join(f"\\x{{{b:x}}}" for b in bad), err.end


codecs.register_error("ncs-xescape", _xescape_errors)


def decode_stats_bytes(data: bytes) -> str:
    """Return DATA decoded as UTF-8, invalid bytes spelled as \\x{hh}.

    Names in the original agent's files are raw bytes from DNS answers.
    """
    return data.decode("utf-8", errors="ncs-xescape")
