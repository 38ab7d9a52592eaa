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
    assert [m.address for m in by_label["example.co.uk"].members] == ["198.51.100.1", "203.0.113.2"]
    assert by_label["example.co.uk"].W == 10800 and by_label["example.co.uk"].E == NOW + 5
    assert [m.address for m in by_label["other.co.uk"].members] == ["198.51.100.3"]
    assert [m.address for m in by_label["example.com.au"].members] == ["192.0.2.4"]
    assert [m.address for m in by_label["soa-example.org"].members] == ["192.0.2.5"]
    # Unnamed and reverse-mapping-only addresses fall back to their prefix.
    assert [m.address for m in by_label["192.0.2.0/24"].members] == ["192.0.2.6", "192.0.2.7"]
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
        report = make_report(stats(records), by=by)
        seen = [m.address for g in report.groups for m in g.members]
        assert sorted(seen) == sorted(records)
        assert len(seen) == len(set(seen))
        assert len({g.label for g in report.groups}) == len(report.groups)
        assert report.totals.addresses == len(records)
        assert report.totals.hits_per_minute == sum(r.R for r in records.values()) / 60
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


def test_ipv6_prefix_option() -> None:
    report = make_report(stats({
        "2001:db8:0:1::1": Record(W=1, E=NOW),
        "2001:db8:0:2::1": Record(W=1, E=NOW),
        "2001:db8:1::1": Record(W=1, E=NOW),
    }), v6_prefix=48)
    assert [g.label for g in report.groups] == ["2001:db8::/48", "2001:db8:1::/48"]
    assert len(report.groups[0].members) == 2
