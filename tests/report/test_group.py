"""Grouping by prefix and by domain, ordering, totals: every address appears exactly once."""

from __future__ import annotations

import random

from ncs.report.group import make_report, registrable_domain
from ncs.stats.columns import StatsColumns
from ncs.stats.record import Record
from tests.support.stats import StatsFile

NOW = 1145923334


def stats(records: dict[str, Record]) -> StatsColumns:
    return StatsFile(header=["ncs version 1.0.0"], records=records, source="mem").columns()


def test_domain_grouping_uses_the_public_suffix_list() -> None:
    report = make_report(stats({
        "198.51.100.1": Record(W=3600, E=NOW, N=["x.example.co.uk"]),
        "203.0.113.2": Record(W=7200, E=NOW + 5, N=["y.example.co.uk", "alias.example.net"]),
        "198.51.100.3": Record(W=36000, E=NOW, N=["other.co.uk"]),
        "192.0.2.4": Record(W=1, E=NOW, N=["shop.example.com.au"]),
        "192.0.2.5": Record(W=2, E=NOW, N=[":ns1.soa-example.org"]),
        "192.0.2.6": Record(W=3, E=NOW, N=[]),
        "192.0.2.7": Record(W=4, E=NOW, N=["7.2.0.192.in-addr.arpa"]),
        "2001:db8::8": Record(W=5, E=NOW, N=[]),
    }), by="domain")
    by_label = {g.label: g for g in report.groups}
    # top talker first: 203.0.113.2's W is the larger
    assert [m.address for m in by_label["example.co.uk"].members] == ["203.0.113.2", "198.51.100.1"]
    assert by_label["example.co.uk"].W == 10800 and by_label["example.co.uk"].E == NOW + 5
    assert [m.address for m in by_label["other.co.uk"].members] == ["198.51.100.3"]
    assert [m.address for m in by_label["example.com.au"].members] == ["192.0.2.4"]
    assert [m.address for m in by_label["soa-example.org"].members] == ["192.0.2.5"]
    # Unnamed and reverse-mapping-only addresses fall back to their prefix.
    assert [m.address for m in by_label["192.0.2.0/24"].members] == ["192.0.2.7", "192.0.2.6"]
    assert [m.address for m in by_label["2001:db8::/64"].members] == ["2001:db8::8"]
    assert [g.label for g in report.groups][:2] == ["other.co.uk", "example.co.uk"]


def test_registrable_domain_edge_cases() -> None:
    assert registrable_domain("Shop.Example.COM.au.") == "example.com.au"
    assert registrable_domain(":ns1.soa-example.org") == "soa-example.org"
    assert registrable_domain("localhost") == "localhost"
    assert registrable_domain("<script>") is None
    assert registrable_domain("1.2.0.192.in-addr.arpa") is None


def test_every_group_and_address_appears_and_totals_add_up() -> None:
    # The original lost its last /24 and groups whose domain key repeated.
    rng = random.Random(7)
    records = {}
    for i in range(600):
        a = f"198.{51 + i % 7}.{i % 13}.{i % 251 + 1}"
        name = rng.choice([[], [f"h{i}.example.com"], [f"h{i}.example.org"], [f"n{i}.other.co.uk"]])
        records[a] = Record(R=rng.randrange(0, 10000), W=rng.randrange(0, 10**6), E=NOW - i, N=name)
    for by in ("prefix", "domain"):
        report = make_report(stats(records), by=by, order="classic")
        seen = [m.address for g in report.groups for m in g.members]
        assert sorted(seen) == sorted(records)
        assert len(seen) == len(set(seen))
        assert len({g.label for g in report.groups}) == len(report.groups)
        assert report.totals.addresses == len(records)
        assert report.totals.packets_per_minute == sum(r.R for r in records.values()) / 60
        assert report.totals.bytes_per_second == sum(r.W for r in records.values()) / 3600
        keys = [(-int(g.W / 3600), g.members[0].key) for g in report.groups]
        assert keys == sorted(keys)
        for g in report.groups:
            assert [m.key for m in g.members] == sorted(m.key for m in g.members)
            assert g.W == sum(m.record.W for m in g.members)
            assert g.E == max(m.record.E for m in g.members)
    prefix = make_report(stats(records), by="prefix")
    expected_nets = {".".join(a.split(".")[:3]) + ".0/24" for a in records}
    assert {g.label for g in prefix.groups} == expected_nets


def test_top_talkers_first_from_the_first_minute() -> None:
    """Before any rate folds (W = 0 everywhere), the window's bytes order groups and addresses."""
    report = make_report(stats({
        "198.51.100.1": Record(B=100, C=1, E=NOW, L=NOW),
        "198.51.100.2": Record(B=600_000, C=420, E=NOW - 30, L=NOW),
        "198.51.100.3": Record(B=5_000, C=9, E=NOW - 20, L=NOW - 2),
        "203.0.113.9": Record(B=900_000, C=700, E=NOW - 30, L=NOW - 1),
        "192.0.2.1": Record(B=10, C=1, E=NOW - 5, L=NOW - 5),
    }))
    assert [g.label for g in report.groups] == ["203.0.113.0/24", "198.51.100.0/24", "192.0.2.0/24"]
    group = report.groups[1]
    assert group.addresses == ["198.51.100.2", "198.51.100.3", "198.51.100.1"]
    assert (group.B, group.C, group.L) == (605_100, 430, NOW)
    t = report.totals
    assert (t.B, t.C, t.L) == (1_505_110, 1131, NOW)
    classic = make_report(stats({a: Record(B=b) for a, b in (("198.51.100.1", 1), ("198.51.100.2", 9))}),
                          order="classic")
    assert classic.groups[0].addresses == ["198.51.100.1", "198.51.100.2"]


def test_ipv6_prefix_option() -> None:
    report = make_report(stats({
        "2001:db8:0:1::1": Record(W=1, E=NOW),
        "2001:db8:0:2::1": Record(W=1, E=NOW),
        "2001:db8:1::1": Record(W=1, E=NOW),
    }), v6_prefix=48)
    assert [g.label for g in report.groups] == ["2001:db8::/48", "2001:db8:1::/48"]
    assert len(report.groups[0].members) == 2
