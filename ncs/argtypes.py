"""Command-line parsing shared by the programs: value types that refuse what is out of range,
and a parser whose usage errors are one line.

argparse calls the type with the option's text; an ArgumentTypeError
becomes, through `OneLineParser`, the line
"PROG: argument --top: must be 0 or more, not -3" and exit status 2.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line, "PROG: message", exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message}\n")


def _range_text(low: float, high: float | None) -> str:
    """Return how the allowed range is said: "0 or more", "between 0 and 32"."""
    if high is None:
        return f"{low:g} or more"
    return f"between {low:g} and {high:g}"


def _bounded(convert: Callable[[str], float], kind: str, low: float,
             high: float | None) -> Callable[[str], float]:
    """Return an argparse type: CONVERT's value of the text, finite, from LOW to HIGH."""

    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a {kind}: {text!r}") from None
        if not math.isfinite(value) or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {_range_text(low, high)}, not {text}")
        return value

    parse.__name__ = kind
    return parse


def bounded_int(low: int, high: int | None = None) -> Callable[[str], int]:
    """Return an argparse type: an integer from LOW to HIGH (no upper bound if None)."""
    return _bounded(int, "whole number", low, high)  # type: ignore[return-value]


def bounded_float(low: float, high: float | None = None) -> Callable[[str], float]:
    """Return an argparse type: a finite number from LOW to HIGH (no upper bound if None)."""
    return _bounded(float, "number", low, high)
