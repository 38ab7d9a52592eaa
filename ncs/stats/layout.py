"""The text layout of a stats file, declared once; the writers and the reader are built from it.

The file is Perl source that the original Net::Connection::Sniffer writes
and reads back with `do FILE`::

    (empty line)
    # ncs version 1.0.0                       <- header lines, "# " + line
    # start:\t1145923212,\tMon Apr 24 17:00:12 2006
    ...
    {
      my $dump = {
    \t'69.3.95.131'\t=> {                     <- one block per record, ascending addresses
    \t\tB\t=> 240,
    \t\tC\t=> 4,
    \t\tE\t=> 1145760699,
    \t\tL\t=> 1145760750,                      <- the keys of FIELDS, in order
    \t\tN\t=> ['hostname1','hostname2',],
    \t\tR\t=> 723,
    \t\tS\t=> 1145757331,
    \t\tT\t=> 1145790478,
    \t\tW\t=> 43359,
    \t},
      };
    }

A record block is `RECORD_OPEN`, the quoted address, its separator (a tab
after an address of at most 13 characters, else a space, as the original
pads), then the glue texts of `GLUE` around each field's value in `KEYS`
order.  `ncs.stats.writer` fills the values in, `ncs.stats.fastwriter` lays
the same texts out with numpy and `ncs.stats.reader` matches them.
"""

from __future__ import annotations

from ncs.stats.record import FIELDS, NAMES_KEY

#: What follows the header lines and comes before the first record.
OPENING = "{\n  my $dump = {\n"
#: What follows the last record.
CLOSING = "  };\n}\n"
#: Before the quoted address of a record.
RECORD_OPEN = "\t"
#: The longest address text followed by a tab; longer ones are followed by a space.
TAB_AFTER_AT_MOST = 13


def separator(address: str) -> str:
    """Return what follows the quoted ADDRESS: a tab if it is short, else a space."""
    return "\t" if len(address) <= TAB_AFTER_AT_MOST else " "


#: What opens a record block after the address separator.
BLOCK_OPEN = "=> {\n"
#: What closes a record block.
BLOCK_CLOSE = "\t},\n"


def field_line(key: str) -> tuple[str, str]:
    """Return the texts before and after the value of KEY on its line of a record block."""
    names = key == NAMES_KEY
    return f"\t\t{key}\t=> " + ("[" if names else ""), ("]" if names else "") + ",\n"


def _glue() -> tuple[str, ...]:
    """Return the texts between the record's values: before the first key, between keys, after the last."""
    glue = [BLOCK_OPEN]
    for f in FIELDS:
        before, after = field_line(f.key)
        glue[-1] += before
        glue.append(after)
    glue[-1] += BLOCK_CLOSE
    return tuple(glue)


#: GLUE[0] follows the address separator and precedes the first value,
#: GLUE[i] follows value i - 1, the last one closes the record block.
#: The names value is the body of a list, "'a','b',", between its brackets.
GLUE: tuple[str, ...] = _glue()


def opening_text(header: list[str]) -> str:
    """Return everything before the first record: the empty line, the '# ' header lines, OPENING."""
    return "\n" + "".join(f"# {line}\n" for line in header) + OPENING


def comment_text(comment: str) -> str:
    """Return a header line from its comment ("# start: ..."): without the '#' and one space."""
    body = comment[1:].rstrip("\r")
    return body[1:] if body.startswith(" ") else body
