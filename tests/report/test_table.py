"""The terminal table as a person reads it: header sentences, local time with its zone, narrow terminals."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ncs.stats.record import Record

from .helpers import NOW, run_report, write_stats

#: The longest IPv6 text there is (39 characters): it must show whole on a narrow terminal.
LONG_V6 = "2001:db8:ffff:ffff:ffff:ffff:ffff:fffe"
START = NOW - 5400


def _header(**extra: int) -> list[str]:
    lines = ["ncs version 1.0.0", f"start:\t{START},\tx", f"current:\t{NOW},\tx",
             "hits:\t\t1500 per minute", "bytes:\t250000 per second",
             "device:\teth0\tpromiscuous", "bpf:\t\thost 198.51.100.10"]
    return lines + [f"{key}:\t{value}" for key, value in extra.items()]


def _records() -> dict[str, Record]:
    return {
        LONG_V6: Record(B=123_456, C=321, R=600, W=7_200_000, E=NOW - 30, L=NOW - 4, S=START,
                        N=["a-rather-long-reverse-name.v6.example.net"]),
        "198.51.100.7": Record(B=5_000, C=12, R=60, W=36_000, E=NOW - 300, L=NOW - 200, S=START,
                               N=["small.example.com"]),
    }


@pytest.mark.parametrize("width", [70, 80, 120])
def test_a_narrow_terminal_drops_columns_never_part_of_an_address(tmp_path: Path, width: int) -> None:
    path = write_stats(tmp_path / "s.stats", _header(), _records())
    run = run_report("--format", "table", "--width", str(width), str(path))
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert max(map(len, lines)) <= width
    assert any(LONG_V6 in line for line in lines), run.stdout
    assert any("2001:db8:ffff:ffff::/64" in line for line in lines), run.stdout
    assert "2.0 kB/s" in run.stdout  # the columns give way, the bytes per second stay


def test_header_facts_are_sentences_with_the_zone_named(tmp_path: Path) -> None:
    path = write_stats(tmp_path / "s.stats", _header(received=1_000_000, drops=1234, ifdrops=7,
                                                     evicted=42, purged=3), _records())
    zone = "Europe/Berlin"
    run = run_report("--format", "table", "--width", "160", str(path), env={"TZ": zone})
    assert run.returncode == 0, run.stderr
    out = run.stdout

    def local(fmt: str, epoch: int) -> str:
        return datetime.fromtimestamp(epoch, ZoneInfo(zone)).strftime(fmt)

    started, written = local("%Y-%m-%d %H:%M:%S %Z", START), local("%Y-%m-%d %H:%M:%S %Z", NOW)
    zone_name = local("%Z", NOW)
    assert zone_name == "CEST"  # NOW is in April
    assert f"Capture started {started}; this data was written {written}, 1 h 30 min later." in out
    assert "Captured from eth0 (promiscuous)." in out
    assert "Filter: host 198.51.100.10." in out
    assert ("The capture dropped 1,234 packets of 1,000,000 received; "
            "the interface dropped 7 more.") in out
    assert "42 addresses were evicted to keep the table within its bound." in out
    assert "3 addresses idle for a day were purged." in out
    assert "The agent's whole-filter estimate: 1,500 packets/min, 250.0 kB/s." in out
    assert f"seen {zone_name}" in out  # the zone once, in the heading
    assert local("%H:%M:%S", NOW - 4) in out  # last seen of the top address, on the data's day
