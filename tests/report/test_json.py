"""The JSON report follows its documented schema (docs/report.md) with the test's own numbers."""

from __future__ import annotations

import json
from pathlib import Path

from ncs.stats.record import Record

from .helpers import NOW, run_report, write_stats


def test_json_schema_and_values(tmp_path: Path) -> None:
    records = {
        "198.51.100.9": Record(B=5, C=1, E=NOW - 9, L=NOW - 3, S=NOW - 99, R=120, W=7200, N=[]),
        "198.51.100.1": Record(B=7, C=2, E=NOW, S=NOW - 99, R=60, W=3600, N=["a.example.org", "b.example.org"]),
        "2001:db8::1": Record(B=1, C=1, E=NOW - 1, S=NOW - 99, R=6, W=36000, N=[":ns.example.net"]),
    }
    stats = write_stats(tmp_path / "j.stats", ["ncs version 1.0.0", "drops:\t3"], records)
    result = run_report("--format", "json", str(stats))
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["schema"] == "ncs-report/2"
    assert doc["order"] == "bandwidth"
    assert doc["grouping"] == "prefix" and doc["v4_prefix"] == 24 and doc["v6_prefix"] == 64
    assert doc["header"] == ["ncs version 1.0.0", "drops:\t3"]
    assert doc["totals"] == {"packets_per_minute": 186 / 60, "bytes_per_second": 46800 / 3600,
                             "window_packets": 4, "window_bytes": 13, "last_seen": NOW,
                             "addresses": 3, "groups": 2}
    v6, v4 = doc["groups"]  # 10 B/s before 3 B/s
    assert (v6["key"], v6["kind"], v6["count"]) == ("2001:db8::/64", "prefix", 1)
    assert v4["key"] == "198.51.100.0/24"
    assert v4["packets_per_hour"] == 180 and v4["bytes_per_second"] == 3.0
    assert (v4["window_packets"], v4["window_bytes"], v4["last_seen"]) == (3, 12, NOW)
    # top talkers first: .9 has the larger W
    assert [a["address"] for a in v4["addresses"]] == ["198.51.100.9", "198.51.100.1"]
    assert v4["addresses"][0]["last_seen"] == NOW - 3 and v4["addresses"][0]["window_start"] == NOW - 9
    first = v4["addresses"][1]
    assert first == {"address": "198.51.100.1", "names": ["a.example.org", "b.example.org"],
                     "packets_per_minute": 1.0, "bytes_per_second": 1.0, "packets_per_hour": 60,
                     "bytes_per_hour": 3600, "window_packets": 2, "window_bytes": 7,
                     "window_start": NOW, "last_seen": NOW, "start": NOW - 99}
    domain = json.loads(run_report("--format", "json", "--by", "domain", str(stats)).stdout)
    assert [(g["key"], g["kind"]) for g in domain["groups"]] == [
        ("example.net", "domain"), ("198.51.100.0/24", "prefix"), ("example.org", "domain")]


def test_rates_are_rounded_to_three_decimals(tmp_path: Path) -> None:
    # 100/60 = 1.6666..., 1000/3600 = 0.2777..., 50/60 = 0.8333...: the text
    # shows three decimals, rounded; the hourly figures stay exact.
    records = {
        "198.51.100.1": Record(B=1, C=1, E=NOW, S=NOW - 9, R=100, W=1000, N=[]),
        "198.51.100.2": Record(B=1, C=1, E=NOW, S=NOW - 9, R=50, W=1, N=[]),
    }
    stats = write_stats(tmp_path / "r.stats", ["ncs version 1.0.0"], records)
    out = run_report("--format", "json", str(stats)).stdout
    assert '"packets_per_minute":1.667,"bytes_per_second":0.278,"packets_per_hour":100,"bytes_per_hour":1000,' in out
    assert '"packets_per_minute":0.833,"bytes_per_second":0.000,"packets_per_hour":50,"bytes_per_hour":1,' in out
    doc = json.loads(out)
    group = doc["groups"][0]
    assert (group["packets_per_minute"], group["bytes_per_second"]) == (2.5, 0.278)
    assert doc["totals"]["packets_per_minute"] == 2.5 and doc["totals"]["bytes_per_second"] == 0.278
