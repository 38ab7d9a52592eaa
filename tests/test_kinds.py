"""Kinds of setting values: what each accepts and converts, and the hint it refuses with."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest

from ncs.kinds import (
    Choice,
    FilePath,
    HostPort,
    Integer,
    Invalid,
    Kind,
    Number,
    Text,
    TextList,
    Typed,
)

NAME = Text(hint="a word", pattern=re.compile(r"[a-z]+"))


@pytest.mark.parametrize(("kind", "value", "expected"), [
    (Integer(1, 65535), 22, 22), (Integer(1, 65535), " 22 ", 22), (Integer(1), 10**9, 10**9),
    (Number(0), 0, 0.0), (Number(0.5), 2, 2.0), (Number(0), 1.25, 1.25),
    (Text(), " web ", "web"), (Text(), 5, "5"), (Text(), 1.5, "1.5"), (NAME, "abc", "abc"),
    (Typed(bool, "b"), False, False), (Typed(dict, "m"), {"a": 1}, {"a": 1}),
    (Choice(("a", "b")), "b", "b"),
    (TextList(), "a", ["a"]), (TextList(), [" a ", "b"], ["a", "b"]), (TextList(), [], []),
    (FilePath(), "~/x", os.path.expanduser("~/x")), (FilePath(off=True), False, None),
    (FilePath(off=True), None, None),
    (HostPort(default_port=53), "192.0.2.53", ("192.0.2.53", 53)),
    (HostPort(), "[2001:db8::1]:5300", ("2001:db8::1", 5300)),
    (HostPort(default_host="127.0.0.1"), 10004, ("127.0.0.1", 10004)),
])
def test_accepted_values(kind: Kind, value: Any, expected: Any) -> None:
    assert kind(value) == expected


@pytest.mark.parametrize(("kind", "value", "hint"), [
    (Integer(1, 65535), 0, "must be an integer 1-65535"),
    (Integer(1, 65535), True, "must be an integer 1-65535"),  # YAML's true is no number
    (Integer(1, 65535), "x", "must be an integer 1-65535"),
    (Integer(1, 65535), "\u00b2", "must be an integer 1-65535"),
    (Integer(1), 0, "must be an integer >= 1"),
    (Integer(64, 96, "must be 64..96 bytes"), 20, "must be 64..96 bytes"),
    (Integer(1, 9, ""), 10, ""),
    (Number(0), -1, "must be a number >= 0"),
    (Number(0.001), "1", "must be a number >= 0.001"),
    (Text(), "", "must be a non-empty string"), (Text(), None, "must be a non-empty string"),
    (Text(), True, "must be a non-empty string"), (Text(), [1], "must be a non-empty string"),
    (NAME, "a b", "a word"), (NAME, " abc", "a word"),
    (Typed(bool, "must be true or false"), "yes please", "must be true or false"),
    (Typed(dict, "must be a mapping"), [1], "must be a mapping"),
    (Choice(("a", "b")), "c", "must be one of a, b"),
    (TextList(), {"a": 1}, "expected a list"),
    (FilePath(), False, "must be a non-empty string"),
    (HostPort(), "nohost", "'nohost' is not HOST:PORT"),
    (HostPort(), True, "must be HOST:PORT"),
])
def test_refused_values(kind: Kind, value: Any, hint: str) -> None:
    with pytest.raises(Invalid) as err:
        kind(value)
    assert (err.value.hint, err.value.part, err.value.whole) == (hint, False, False)


def test_a_bad_list_item_is_named() -> None:
    with pytest.raises(Invalid) as err:
        TextList()(["a", " ", "b"])
    assert (err.value.value, err.value.part) == (" ", True)
