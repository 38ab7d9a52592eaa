"""The values a stats file's numbers may take, and the one check of a number's text that every reader applies.

A record's numbers are counts, rates and Unix times: finite and never
negative.  No counter of a real host comes near int64 (9.2e18 bytes is 23
years at 100 Gbit/s), and a composite sums at most a few thousand hosts, so
a value is bounded at 20 digits: int64 or a little more.  Anything beyond
(NaN, an infinity, a negative value, a number of 5000 digits) is not data
but damage or hostility, and is refused with the reason.  A merge keeps its
sums within the same bound (`ncs.stats.merge`), so whatever ncs writes it
reads back: coalescers can be stacked.
"""

from __future__ import annotations

import math

#: The most digits a value may have: 20, int64's 19 and a little more.
MAX_DIGITS = 20
#: The largest value a stats file may hold (twenty nines); merged sums stop here.
MAX_VALUE = 10**MAX_DIGITS - 1
#: The longest text of a number: room for a float's decimals and exponent, none for padding.
MAX_TEXT = 40


class BadNumber(ValueError):
    """A number's text that is not a value a stats file may hold; str() is the reason."""


def number_value(text: str) -> int | float:
    """Return the value of the numeric TEXT (decimal, float or Perl's inf/nan; spaces around allowed).

    Integral text gives an int, anything else a float; a negative zero is 0.
    Raises BadNumber when the text is longer than MAX_TEXT, or the value is
    not finite, negative or above MAX_VALUE.  The caller has checked that
    TEXT is numeric in form.
    """
    text = text.strip()
    # Checked before any conversion: int() of 5000 digits raises, and of
    # 4000 costs time for nothing.
    if len(text) > MAX_TEXT:
        raise BadNumber(f"number too long ({len(text)} characters, at most {MAX_TEXT})")
    value: int | float
    try:
        value = int(text)
    except ValueError:
        value = float(text)
    check_value(value)
    return value + 0  # -0.0 + 0 is 0.0: no negative zero is written back as "-0"


def check_value(value: int | float) -> None:
    """Raise BadNumber (the reason) unless VALUE is finite, not negative and at most MAX_VALUE."""
    if value != value or value in (math.inf, -math.inf):
        raise BadNumber("not a finite number")
    if value < 0:
        raise BadNumber("negative number")
    if value > MAX_VALUE:
        raise BadNumber(f"number too large (more than {MAX_DIGITS} digits)")
