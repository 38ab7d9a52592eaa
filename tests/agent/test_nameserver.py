"""The `nameserver` setting and the fallback to resolv.conf."""

from __future__ import annotations

import pytest

from ncs.agent.nameserver import default_nameserver, parse_nameserver


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("127.0.0.1:5300", ("127.0.0.1", 5300)),
        ("[::1]:5300", ("::1", 5300)),
        ("[::1]", ("::1", 53)),
        ("::1", ("::1", 53)),
        ("2001:db8::53", ("2001:db8::53", 53)),
    ],
)
def test_parse_nameserver_accepts(text, expected):
    assert parse_nameserver(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "ns1.example.org", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:x", "[::1]5300",
     "[127.0.0.1]:53", "::1:5300x", "[::1]:", "300.1.1.1"],
)
def test_parse_nameserver_rejects(text):
    with pytest.raises(ValueError, match=r"^bad nameserver '"):
        parse_nameserver(text)


def test_default_nameserver_reads_first_usable_line(tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text(
        "# comment\nsearch example.org\nnameserver not-an-ip\n"
        "nameserver 2001:db8::53\nnameserver 192.0.2.53\n"
    )
    assert default_nameserver(str(conf)) == ("2001:db8::53", 53)
    conf.write_text("search example.org\n")
    assert default_nameserver(str(conf)) is None
    assert default_nameserver(str(tmp_path / "missing")) is None
