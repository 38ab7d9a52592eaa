"""Settings files: a YAML loader that knows every key's line, and declarative key tables that check values.

A program declares its keys once, in a `Table` of `Key`s (name, kind, default,
help text); the kind (see ncs.kinds) checks and converts a value, the table
turns a refusal into the program's one-line message and places it at
FILE:LINE of the key, at any depth of the file.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ncs.kinds import Invalid, Kind


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

    # libyaml's parser (in PyYAML's wheels): a 5,000-host inventory loads in
    # 0.3 s of CPU instead of 0.8 with the pure-Python one; the constructor is
    # the same Python either way.  Without libyaml the pure parser is used.
    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class SectionLoader(base):  # type: ignore[misc, valid-type]
        settings_path = ""

    def construct_section(loader: SectionLoader, node: yaml.MappingNode) -> Section:
        """Return NODE as a Section; raises SettingsError for a repeated or unhashable key."""
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


# ----------------------------------------------------------------- tables of keys

NULL = (None,)  # `blank` of a key whose null (~) in the file means its default


@dataclass(frozen=True)
class Key:
    """One setting: its name, the kind that checks a value, the default and the help text.

    BLANK holds the values that mean "the default" (NULL: null does).  LABEL,
    if given, replaces the table's way of naming the key and value in a
    message ({key} and {value} are filled in).
    """

    name: str
    kind: Kind
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
