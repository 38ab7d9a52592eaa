"""Kinds of setting values: each checks and converts one value, or raises Invalid with a hint."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ncs.hostport import parse_hostport

#: A kind: called with a raw value, returns it checked and converted, raises Invalid.
Kind = Callable[[Any], Any]


class Invalid(ValueError):
    """A value that a kind refuses; str() is the hint that says what is expected.

    `value` is the offending part when it is not the whole value (an item of a
    list); `whole` means the hint is the complete message, to be used as is.
    """

    def __init__(self, hint: str, value: Any = None, part: bool = False, whole: bool = False) -> None:
        super().__init__(hint)
        self.hint = hint
        self.value = value
        self.part = part
        self.whole = whole


def _is_number(value: Any) -> bool:
    """Return True for an int or float that is not a bool (YAML's true is an int to Python)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Text:
    """A non-empty string, stripped; a number written without quotes counts as its text.

    PATTERN, if given, must match the whole text.
    """

    hint: str = "must be a non-empty string"
    pattern: re.Pattern | None = None

    def __call__(self, value: Any) -> str:
        """Return the stripped text; raises Invalid."""
        if _is_number(value):
            value = str(value)  # a numeric user id or device name written without quotes
        if not isinstance(value, str) or not value.strip():
            raise Invalid(self.hint)
        if self.pattern is not None and not self.pattern.fullmatch(value):
            raise Invalid(self.hint)
        return value.strip()


@dataclass(frozen=True)
class FilePath:
    """A file name (Text) with ~ expanded; with OFF, null and false mean "none" (None)."""

    off: bool = False
    hint: str = "must be a non-empty string"

    def __call__(self, value: Any) -> str | None:
        """Return the expanded path, or None for null/false when OFF; raises Invalid."""
        if self.off and (value is None or value is False):
            return None
        return os.path.expanduser(Text(self.hint)(value))


@dataclass(frozen=True)
class Integer:
    """A whole number in LOW..HIGH (no upper bound without HIGH); digits in a string count too.

    HINT None says "must be an integer LOW-HIGH"; "" says nothing beyond the key's label.
    """

    low: int
    high: int | None = None
    hint: str | None = None

    def __call__(self, value: Any) -> int:
        """Return the number; raises Invalid."""
        number = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
            number = int(value.strip())
        if number is None or number < self.low or (self.high is not None and number > self.high):
            raise Invalid(self.default_hint() if self.hint is None else self.hint)
        return number

    def default_hint(self) -> str:
        """Return "must be an integer LOW-HIGH" (">= LOW" without an upper bound)."""
        bound = f"{self.low}-{self.high}" if self.high is not None else f">= {self.low}"
        return f"must be an integer {bound}"


@dataclass(frozen=True)
class Number:
    """A number (int or float) of at least LOW, returned as a float."""

    low: float
    hint: str = ""

    def __call__(self, value: Any) -> float:
        """Return the number as a float; raises Invalid."""
        if not _is_number(value) or value < self.low:
            raise Invalid(self.hint or f"must be a number >= {self.low:g}")
        return float(value)


@dataclass(frozen=True)
class Typed:
    """A value of the type ACCEPTS, taken as it is: bool for true/false, dict for a nested mapping.

    A YAML boolean is the only true/false ("yes please" is not one); a nested
    mapping (a Section when read from a file) is checked by its own table later.
    """

    accepts: type
    hint: str

    def __call__(self, value: Any) -> Any:
        """Return VALUE itself; raises Invalid when it is not of the accepted type."""
        if not isinstance(value, self.accepts):
            raise Invalid(self.hint)
        return value


@dataclass(frozen=True)
class Choice:
    """One of a few fixed words."""

    options: tuple[str, ...]

    def __call__(self, value: Any) -> str:
        """Return the word; raises Invalid naming the options."""
        if value not in self.options:
            raise Invalid(f"must be one of {', '.join(self.options)}")
        return value


@dataclass(frozen=True)
class TextList:
    """A list of non-empty strings (stripped); a single string is a list of one."""

    hint: str = "expected a list"

    def __call__(self, value: Any) -> list[str]:
        """Return the list; raises Invalid (with the bad item as its value)."""
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list):
            raise Invalid(self.hint)
        for item in items:
            if not isinstance(item, str) or not item.strip():
                raise Invalid("", item, part=True)
        return [item.strip() for item in items]


@dataclass(frozen=True)
class HostPort:
    """HOST:PORT (see ncs.hostport.parse_hostport), returned as (host, port)."""

    default_port: int | None = None
    default_host: str | None = None
    ip_only: bool = False

    def __call__(self, value: Any) -> tuple[str, int]:
        """Return (host, port); raises Invalid with the parser's reason."""
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise Invalid("must be HOST:PORT")
        try:
            return parse_hostport(str(value), default_port=self.default_port,
                                  default_host=self.default_host, ip_only=self.ip_only)
        except ValueError as err:
            raise Invalid(str(err)) from None
