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


# Reverse names as they come back from real networks, and the group each
# belongs in: cloud providers and CDNs under the provider (the list's ICANN
# section only), ISPs' dynamic ranges under the ISP, NXDOMAIN ":soa" names by
# the SOA host, IDNs in their ACE form ("xn--") by the rules of their TLD.
REAL_WORLD_NAMES = [
    ("ec2-3-1-2-3.compute-1.amazonaws.com", "amazonaws.com"),
    ("ec2-52-28-1-2.eu-central-1.compute.amazonaws.com", "amazonaws.com"),
    ("server-13-32-1-2.fra50.r.cloudfront.net", "cloudfront.net"),
    ("h765-45.cloudflare.net", "cloudflare.net"),
    ("a23-45-67-89.deploy.static.akamaitechnologies.com", "akamaitechnologies.com"),
    ("1.2.3.4.bc.googleusercontent.com", "googleusercontent.com"),
    ("lb-140-82-112-3-iad.github.com", "github.com"),
    ("x.blogspot.com", "blogspot.com"),
    ("static.1.2.3.4.clients.your-server.de", "your-server.de"),
    ("c-73-15-2-1.hsd1.ca.comcast.net", "comcast.net"),
    ("p5b0c2d3e.dip0.t-ipconnect.de", "t-ipconnect.de"),
    ("cpe-1-2-3-4.nyc.res.rr.com", "rr.com"),
    ("host81-1-2-3.range81-1.btcentralplus.com", "btcentralplus.com"),
    ("dynamic-78-8-1-2.adsl.eunet.rs", "eunet.rs"),
    ("ppp-1-2-3-4.dsl.example.co.uk", "example.co.uk"),
    ("203-0-113-9.static.tpgi.com.au", "tpgi.com.au"),
    ("softbank126001002003.bbtec.net", "bbtec.net"),
    (":ns1.amazonaws.com", "amazonaws.com"),
    (":a.root-servers.net", "root-servers.net"),
    ("mail.xn--mnchen-3ya.de", "xn--mnchen-3ya.de"),
    ("www.example.xn--p1ai", "example.xn--p1ai"),
    ("host.city.kawasaki.jp", "city.kawasaki.jp"),
    ("Upper.Case.Example.COM.", "example.com"),
]


def test_real_world_reverse_names_group_under_their_provider() -> None:
    records = {f"198.51.100.{i + 1}": Record(W=i, E=NOW, N=[name])
               for i, (name, _) in enumerate(REAL_WORLD_NAMES)}
    report = make_report(stats(records), by="domain")
    group_of = {m.address: g.label for g in report.groups for m in g.members}
    for i, (name, domain) in enumerate(REAL_WORLD_NAMES):
        assert (name, group_of[f"198.51.100.{i + 1}"]) == (name, domain)
        assert registrable_domain(name) == domain
    amazon = next(g for g in report.groups if g.label == "amazonaws.com")
    assert amazon.count == 3  # two EC2 hosts and the NXDOMAIN answer's SOA host
