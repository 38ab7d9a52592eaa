"""Settings files: a YAML loader that knows every key's line, and declarative key tables that check values.

A program declares its keys once, in a `Table` of `Key`s (name, kind, default,
help text); the kind checks and converts a value, the table turns a refusal
into the program's one-line message and places it at FILE:LINE of the key,
at any depth of the file.
"""

from __future__ import annotations

import copy
import functools
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ncs.hostport import parse_hostport


class SettingsError(ValueError):
    """A bad settings file or value; str() is one line, "WHERE: MESSAGE" (MESSAGE alone without a place)."""

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.message = message
        self.where = where


class Unreadable(SettingsError):
    """The settings file cannot be read; `path` and `reason` (the system's words) say why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"cannot read: {reason}", path)
        self.path = path
        self.reason = reason


class Section(dict):
    """A mapping read from a settings file: a dict that also knows where it and each key stand.

    `path` is the file, `line` the 1-based line where the mapping starts and
    `lines` maps each key to the line it is written on.
    """

    def __init__(self, data: Mapping | Iterable = (), path: str = "", line: int = 0,
                 lines: dict[Any, int] | None = None) -> None:
        super().__init__(data)
        self.path = path
        self.line = line
        self.lines: dict[Any, int] = dict(lines or {})


def where(mapping: Mapping, key: Any = None, path: str = "") -> str:
    """Return "FILE:LINE" of KEY in MAPPING (of MAPPING itself without KEY), as far as it is known.

    A plain dict knows no lines: then the file (MAPPING's, else PATH) alone,
    or "" without one.
    """
    file = getattr(mapping, "path", "") or path
    lines = getattr(mapping, "lines", {})
    line = lines.get(key) if key is not None and key in lines else getattr(mapping, "line", 0)
    return f"{file}:{line}" if file and line else file


def load_settings(path: str) -> Section:
    """Read the YAML file at PATH; returns its top-level mapping (empty for an empty file).

    Every mapping in it, at any depth, is a Section that knows its keys' lines.
    Raises Unreadable when the file cannot be read, SettingsError when it is not
    YAML ("PATH:LINE: invalid YAML: ..."), repeats a key in a mapping
    ("PATH:LINE: key 'k' given twice") or is not a mapping.
    """
    # PyYAML takes ~10 ms to import; the agent's verbs that read no file skip it.
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as err:
        raise Unreadable(path, err.strerror or str(err)) from None
    except UnicodeDecodeError as err:
        raise Unreadable(path, str(err)) from None
    loader = _loader_class()(text)
    loader.settings_path = path
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        place = f"{path}:{mark.line + 1}" if mark is not None else path
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise SettingsError(f"invalid YAML: {problem}", place) from None
    finally:
        loader.dispose()
    if data is None:
        return Section(path=path, line=1)
    if not isinstance(data, Section):
        raise SettingsError("expected a mapping of keys to values", path)
    return data


@functools.cache
def _loader_class() -> type:
    """Return the safe YAML loader whose mappings are Sections and refuse a repeated key."""
    import yaml

    class SectionLoader(yaml.SafeLoader):
        settings_path = ""

    def construct_section(loader: SectionLoader, node: yaml.MappingNode) -> Section:
        loader.flatten_mapping(node)  # YAML merge keys (<<) first, like the safe loader
        section = Section(path=loader.settings_path, line=node.start_mark.line + 1)
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            place = f"{loader.settings_path}:{key_node.start_mark.line + 1}"
            try:
                repeated = key in section
            except TypeError:  # a list or mapping used as a key
                raise SettingsError(f"key {key!r} is not a name", place) from None
            if repeated:
                raise SettingsError(f"key '{key}' given twice", place)
            section[key] = loader.construct_object(value_node, deep=True)
            section.lines[key] = key_node.start_mark.line + 1
        return section

    SectionLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_section)
    return SectionLoader


# ----------------------------------------------------------------- kinds of values


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


# ----------------------------------------------------------------- tables of keys

Check = Callable[[Any], Any]
NULL = (None,)  # `blank` of a key whose null (~) in the file means its default


@dataclass(frozen=True)
class Key:
    """One setting: its name, the kind that checks a value, the default and the help text.

    BLANK holds the values that mean "the default" (NULL: null does).  LABEL,
    if given, replaces the table's way of naming the key and value in a
    message ({key} and {value} are filled in).
    """

    name: str
    kind: Check
    default: Any = None
    help: str = ""
    blank: tuple = ()
    label: str | None = None

    def convert(self, value: Any) -> Any:
        """Return VALUE checked and converted (the default for a blank value); raises Invalid."""
        if any(value == b and type(value) is type(b) for b in self.blank):
            return copy.deepcopy(self.default)
        return self.kind(value)


#: Builds a table's message from the key, the offending value and the kind's hint.
Describe = Callable[[Key, Any, str], str]


class Table:
    """The keys of one mapping (a config file, an inventory section), in the order they are shown."""

    def __init__(self, keys: Iterable[Key], describe: Describe) -> None:
        self.keys: dict[str, Key] = {key.name: key for key in keys}
        self.describe = describe

    def __iter__(self) -> Iterator[Key]:
        return iter(self.keys.values())

    def __contains__(self, name: object) -> bool:
        return name in self.keys

    def __getitem__(self, name: str) -> Key:
        return self.keys[name]

    def default(self, name: str) -> Any:
        """Return a fresh copy of key NAME's default (a list default is not shared)."""
        return copy.deepcopy(self.keys[name].default)

    def defaults_for(self, cls: type) -> type:
        """Class decorator, under @dataclass: fields named like a key default to the key's default.

        A field that has a value or a field() of its own keeps it (so it can
        stay required); list and dict defaults become default factories.
        Returns CLS.
        """
        for name in cls.__annotations__:
            if name in self.keys and name not in cls.__dict__:
                default = self.keys[name].default
                if isinstance(default, list | dict):
                    default = field(default_factory=functools.partial(copy.deepcopy, default))
                setattr(cls, name, default)
        return cls

    def convert(self, name: str, value: Any) -> Any:
        """Return VALUE of key NAME checked and converted; raises SettingsError (with no place)."""
        key = self.keys[name]
        try:
            return key.convert(value)
        except Invalid as err:
            if err.whole:
                raise SettingsError(err.hint) from None
            shown = err.value if err.part else value
            raise SettingsError(self.describe(key, shown, err.hint)) from None

    def check_names(self, mapping: Mapping, context: str = "", path: str = "") -> None:
        """Raise SettingsError, placed at its line, for the first key of MAPPING not in the table."""
        for name in mapping:
            if name not in self.keys:
                raise SettingsError(_within(context, f"unknown key '{name}'"), where(mapping, name, path))

    def read(self, mapping: Mapping, context: str = "", path: str = "") -> dict[str, Any]:
        """Return the checked values of the keys MAPPING sets (only those), after check_names.

        Raises SettingsError "FILE:LINE: CONTEXT: message" for the first bad key or value.
        """
        self.check_names(mapping, context, path)
        values = {}
        for name, value in mapping.items():
            try:
                values[name] = self.convert(name, value)
            except SettingsError as err:
                raise SettingsError(_within(context, err.message), where(mapping, name, path)) from None
        return values


def _within(context: str, message: str) -> str:
    """Return MESSAGE after "CONTEXT: " when there is a context (a host, a section)."""
    return f"{context}: {message}" if context else message
