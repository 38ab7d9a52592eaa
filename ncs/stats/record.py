"""The stats record: its fields declared once, in file order, with their types and merge rules.

Everything that reads, writes, holds or merges records derives from `FIELDS`:
the text layout (`ncs.stats.layout`), the column table (`ncs.stats.columns`),
the merge (`ncs.stats.merge`) and `Record` below.  A new field is one more
entry here, plus the code that computes it (the agent's accounting) and the
renderers that show it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, make_dataclass


@dataclass(frozen=True)
class Field:
    """One key of a record: its name in the file, its value type and how two records combine."""

    key: str
    #: int, float, or list (the names, a list of str)
    type: type
    #: how a merge combines the values of one address: "sum", "max", "min" or "union"
    merge: str
    meaning: str
    #: the key whose value stands in when a record lacks this one (files written
    #: before the field existed); None: the type's empty value.  Such a key may
    #: be missing from the canonical layout too (see ncs.stats.reader).
    default_from: str | None = None


#: The record's fields in the order the file lists them (the original's sorted keys).
FIELDS: tuple[Field, ...] = (
    Field("B", int, "sum", "bytes since E"),
    Field("C", int, "sum", "packets (that passed the filters) since E"),
    Field("E", int, "max", "time of the last rate update; the first-seen time until then"),
    Field("L", int, "max", "the second of the last packet (files without it: E, its best lower bound)",
          default_from="E"),
    Field("N", list, "union", "reverse-DNS names, or [':soa.host'] after NXDOMAIN"),
    Field("R", float, "sum", "packets per hour (decaying estimate)"),
    Field("S", int, "min", "start time of the data set (agent start or last HUP)"),
    Field("T", int, "max", "time the reverse-DNS name expires (0: never looked up)"),
    Field("W", float, "sum", "bytes per hour (decaying estimate)"),
)

#: Every key, in file order.
KEYS: tuple[str, ...] = tuple(f.key for f in FIELDS)
#: The key of the names list.
NAMES_KEY = next(f.key for f in FIELDS if f.type is list)
#: The numeric keys, in file order.
NUMBER_KEYS: tuple[str, ...] = tuple(f.key for f in FIELDS if f.type is not list)
#: Field by key.
BY_KEY: dict[str, Field] = {f.key: f for f in FIELDS}
#: The keys a record may lack, each with the key whose value it then takes.
DEFAULT_FROM: dict[str, str] = {f.key: f.default_from for f in FIELDS if f.default_from}


def _fill_defaults(record: object) -> None:
    """Give every field still None the value of its `default_from` key (Record's __post_init__)."""
    for key, source in DEFAULT_FROM.items():
        if getattr(record, key) is None:
            setattr(record, key, getattr(record, source))


def _record_class() -> type:
    """Return the Record dataclass: one attribute per field, in file order, all defaulting to empty."""
    attributes = [
        (f.key, "list[str]" if f.type is list else f.type.__name__,
         field(default_factory=list) if f.type is list
         else field(default=None if f.default_from else f.type()))
        for f in FIELDS
    ]
    cls = make_dataclass("Record", attributes, slots=True,
                         namespace={"__post_init__": _fill_defaults} if DEFAULT_FROM else None)
    cls.__module__ = __name__
    cls.__doc__ = (
        "One remote address's statistics, one attribute per key of FIELDS (file order):\n\n"
        + "\n".join(f"    {f.key}: {f.meaning}" for f in FIELDS)
        + "\n\nTimes are Unix seconds.  Positional arguments follow file order.  A key"
        " with a `default_from` left out takes that key's value."
    )
    return cls


Record = _record_class()
