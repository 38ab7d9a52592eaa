"""The shared settings loader (lines of every key, at any depth) and key tables, on real files."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ncs import kinds, settings


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "settings.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


def describe(key: settings.Key, value: Any, hint: str) -> str:
    return f"key '{key.name}': {hint}, not {value!r}"


TABLE = settings.Table([
    settings.Key("port", kinds.Integer(1, 65535), None, "a port", settings.NULL),
    settings.Key("jobs", kinds.Integer(1), 8, "how many at once", settings.NULL),
    settings.Key("wait", kinds.Number(0), 1.5, "seconds", settings.NULL),
    settings.Key("name", kinds.Text(), "x", "a name"),
    settings.Key("on", kinds.Typed(bool, "must be true or false"), True, "on or off"),
    settings.Key("mode", kinds.Choice(("a", "b")), "a", "a mode"),
    settings.Key("list", kinds.TextList(), ["127.0.0.1"], "addresses", (None, [])),
    settings.Key("file", kinds.FilePath(off=True), "~/f", "a file"),
    settings.Key("peer", kinds.HostPort(default_port=53), None, "a server", settings.NULL),
    settings.Key("sub", kinds.Typed(dict, "must be a mapping"), {}, "a section", settings.NULL),
], describe)


def test_every_key_knows_its_line_at_every_depth(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        # a comment
        top: 1
        hosts:
          web1:
            port: 22

            user: ncs
          web2: {port: 2222}
        list: [a, b]
    """)
    data = settings.load_settings(path)
    assert isinstance(data, settings.Section) and data == {
        "top": 1, "hosts": {"web1": {"port": 22, "user": "ncs"}, "web2": {"port": 2222}},
        "list": ["a", "b"]}
    assert data.lines == {"top": 2, "hosts": 3, "list": 9}
    hosts = data["hosts"]
    assert (hosts.lines, hosts.line, hosts.path) == ({"web1": 4, "web2": 8}, 4, path)
    assert hosts["web1"].lines == {"port": 5, "user": 7}
    assert settings.where(hosts["web1"], "user") == f"{path}:7"
    assert settings.where(hosts["web2"], "port") == f"{path}:8"
    assert settings.where(hosts["web1"]) == f"{path}:5"  # the mapping itself
    assert settings.where({"a": 1}, "a", "inv.yaml") == "inv.yaml" and settings.where({"a": 1}, "a") == ""


@pytest.mark.parametrize(("text", "message"), [
    ("a: 1\nb: 2\na: 3\n", "{path}:3: key 'a' given twice"),
    ("hosts:\n  web1:\n    port: 1\n    port: 2\n", "{path}:4: key 'port' given twice"),
    ("a: [1\n", "{path}:2: invalid YAML: did not find expected ',' or ']'"),
    ("- a\n- b\n", "{path}: expected a mapping of keys to values"),
    ("? [a]\n: 1\n", "{path}:1: key ['a'] is not a name"),
])
def test_bad_files_are_one_line_with_the_place(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(settings.SettingsError) as err:
        settings.load_settings(path)
    assert str(err.value) == message.format(path=path)


def test_empty_and_unreadable_files(tmp_path: Path) -> None:
    assert settings.load_settings(write(tmp_path, "")) == {}
    missing = str(tmp_path / "absent.yaml")
    with pytest.raises(settings.Unreadable) as err:
        settings.load_settings(missing)
    assert (err.value.path, err.value.reason) == (missing, "No such file or directory")
    assert str(err.value) == f"{missing}: cannot read: No such file or directory"
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"a: \xff\n")
    with pytest.raises(settings.Unreadable):
        settings.load_settings(str(binary))


def test_merge_keys_still_work(tmp_path: Path) -> None:
    data = settings.load_settings(write(tmp_path, "base: &b {port: 1}\nhost:\n  <<: *b\n  user: u\n"))
    assert data["host"] == {"port": 1, "user": "u"}


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("port", None, None), ("jobs", None, 8), ("wait", None, 1.5), ("jobs", "12", 12),
    ("list", [], ["127.0.0.1"]), ("list", None, ["127.0.0.1"]), ("list", "a", ["a"]),
    ("file", None, None),  # not blank: the kind turns null into "none", not the default
    ("sub", None, {}),
])
def test_blank_values_mean_the_default(name: str, value: Any, expected: Any) -> None:
    assert TABLE.convert(name, value) == expected


@pytest.mark.parametrize(("name", "value", "message"), [
    ("port", 0, "key 'port': must be an integer 1-65535, not 0"),
    ("port", True, "key 'port': must be an integer 1-65535, not True"),
    ("port", "x", "key 'port': must be an integer 1-65535, not 'x'"),
    ("jobs", 0, "key 'jobs': must be an integer >= 1, not 0"),
    ("wait", -1, "key 'wait': must be a number >= 0, not -1"),
    ("wait", "1", "key 'wait': must be a number >= 0, not '1'"),
    ("name", "", "key 'name': must be a non-empty string, not ''"),
    ("name", None, "key 'name': must be a non-empty string, not None"),
    ("on", "yes please", "key 'on': must be true or false, not 'yes please'"),
    ("mode", "c", "key 'mode': must be one of a, b, not 'c'"),
    ("list", {"a": 1}, "key 'list': expected a list, not {'a': 1}"),
    ("list", ["a", ""], "key 'list': , not ''"),  # the bad item, not the whole list
    ("file", True, "key 'file': must be a non-empty string, not True"),
    ("peer", "ns.example:x", "key 'peer': 'ns.example:x': port 'x' is not a number from 1 to 65535,"
                             " not 'ns.example:x'"),
    ("sub", [1], "key 'sub': must be a mapping, not [1]"),
])
def test_refusals_use_the_tables_wording(name: str, value: Any, message: str) -> None:
    with pytest.raises(settings.SettingsError) as err:
        TABLE.convert(name, value)
    assert str(err.value) == message and err.value.where == ""


def test_whole_messages_and_labels() -> None:
    def refuse(_value: Any) -> Any:
        raise kinds.Invalid("escape out of range in m 'x'", whole=True)

    table = settings.Table([settings.Key("m", refuse), settings.Key("p", kinds.Integer(1, 9, ""), label="bad p {value}")],
                  lambda key, value, hint: (key.label or "{key}={value}").format(
                      key=key.name, value=value) + (f": {hint}" if hint else ""))
    with pytest.raises(settings.SettingsError, match=r"^escape out of range in m 'x'$"):
        table.convert("m", "x")
    with pytest.raises(settings.SettingsError, match=r"^bad p 10$"):
        table.convert("p", 10)


def test_read_places_errors_at_the_key_line(tmp_path: Path) -> None:
    path = write(tmp_path, "hosts:\n  web1:\n    jobs: 2\n    port: 70000\n  web2:\n    colour: blue\n")
    hosts = settings.load_settings(path)["hosts"]
    with pytest.raises(settings.SettingsError) as err:
        TABLE.read(hosts["web1"], "host web1")
    assert str(err.value) == f"{path}:4: host web1: key 'port': must be an integer 1-65535, not 70000"
    assert err.value.message.startswith("host web1: ") and err.value.where == f"{path}:4"
    with pytest.raises(settings.SettingsError) as err:
        TABLE.read(hosts["web2"], "host web2")
    assert str(err.value) == f"{path}:6: host web2: unknown key 'colour'"
    assert TABLE.read({"jobs": "3", "on": False}) == {"jobs": 3, "on": False}  # only what is set


def test_defaults_are_fresh_copies() -> None:
    first = TABLE.default("list")
    first.append("::1")
    assert TABLE.default("list") == ["127.0.0.1"]
    assert [key.name for key in TABLE][:3] == ["port", "jobs", "wait"]
    assert "port" in TABLE and "colour" not in TABLE and TABLE["jobs"].help == "how many at once"


def test_dataclass_fields_take_the_table_defaults() -> None:
    @dataclass
    @TABLE.defaults_for
    class Options:
        name: str = field()  # stays required
        port: int | None
        jobs: int
        list: list[str]
        mode: str = "b"  # a default of its own wins

    first, second = Options("n"), Options("m", port=1)
    assert (first.name, first.port, first.jobs, first.list, first.mode) == ("n", None, 8, ["127.0.0.1"], "b")
    first.list.append("::1")
    assert second.list == ["127.0.0.1"] and second.port == 1
