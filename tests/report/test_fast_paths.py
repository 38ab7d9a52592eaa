"""The vectorised grouping and the fast renderers agree with straightforward implementations.

The reference here is the plain per-address algorithm of docs/report.md,
written with `ipaddress` and the Public Suffix List package directly:
every address in order, a dict of groups, sums added one by one from 0.0.
"""

from __future__ import annotations

import ipaddress
import json
import math
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from publicsuffixlist import PSLFILE, PublicSuffixList

from ncs import twocore
from ncs.report.domains import DomainFinder
from ncs.report.group import make_report
from ncs.report.render_json import (
    _address_object,
    _plain_chunk,
    addresses_text,
    group_text,
    plain_columns,
    render_json,
)
from ncs.report.render_text import address_line, group_lines, summary_line
from ncs.stats.record import Record
from ncs.twocore import MIN_RECORDS
from tests.support.stats import StatsFile

NOW = 1145923334
PSL = PublicSuffixList(only_icann=True)

# Names that exercise the list's wildcard and exception rules, names directly
# under a public suffix, and names that are no host names at all.
TRICKY_NAMES = [
    "www.example.com", "a.b.example.co.uk", "example.co.uk", "co.uk", "uk", "localhost",
    "x.blogspot.com", "blogspot.com", "www.city.kawasaki.jp", "city.kawasaki.jp",
    "a.b.kawasaki.jp", "b.kawasaki.jp", "x.y.ck", "www.ck", "y.ck", "Mixed.Example.ORG.",
    ":ns1.soa-example.org", "7.2.0.192.in-addr.arpa", "in-addr.arpa", "1.ip6.arpa", "",
    "<script>.evil.example", "a..b.example.com", "-bad.example.com", "bad-.example.com",
    "tab\there.example", "caf\u00e9.example.fr", "\u212aelvin.example.net", "x_y.example.net",
]


def domain_of(name: str) -> str | None:
    """Return the registrable domain of NAME as docs/report.md says, or None (by prefix)."""
    host = (name[1:] if name.startswith(":") else name).rstrip(".").lower()
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789_.-")
    if not host or not set(host) <= allowed or host[0] in ".-" or host[-1] in ".-":
        return None
    if host.endswith((".in-addr.arpa", ".ip6.arpa")) or host in ("in-addr.arpa", "ip6.arpa"):
        return None
    return PSL.privatesuffix(host) or host


def reference_groups(records: dict[str, Record], by: str, v4: int, v6: int,
                     order: str = "bandwidth") -> list[tuple]:
    """Return (label, kind, addresses, R, W, E, B, C, L) per group, in report order, the plain way.

    "classic": groups by int(W/3600) descending, then first address; addresses
    ascending.  "bandwidth": ties broken by the window's bytes (B) first, and
    addresses by W, then B, descending (compared as floats), then ascending.
    """
    def key(address: str) -> tuple[int, int]:
        ip = ipaddress.ip_address(address)
        return (ip.version, int(ip))

    groups: dict[object, list] = {}
    for address in sorted(records, key=key):
        rec = records[address]
        domain = domain_of(rec.N[0]) if by == "domain" and rec.N else None
        if domain is not None:
            gkey, label, kind = ("d", domain), domain, "domain"
        else:
            ip = ipaddress.ip_address(address)
            net = ipaddress.ip_network(f"{ip}/{v4 if ip.version == 4 else v6}", strict=False)
            gkey, label, kind = ("p", str(net)), str(net), "prefix"
        g = groups.setdefault(gkey, [label, kind, [], 0.0, 0.0, 0, 0.0, 0.0, 0, key(address)])
        g[2].append(address)
        g[3] += rec.R
        g[4] += rec.W
        g[6] += rec.B
        g[7] += rec.C
        g[5] = max(g[5], rec.E)
        g[8] = max(g[8], rec.L)
    if order == "classic":
        ordered = sorted(groups.values(), key=lambda g: (-int(g[4] / 3600), g[9]))
    else:
        ordered = sorted(groups.values(), key=lambda g: (-int(g[4] / 3600), -g[6], g[9]))
        for g in ordered:
            g[2].sort(key=lambda a: (-float(records[a].W), -float(records[a].B)))  # stable: ascending
    return [tuple(g[:9]) for g in ordered]


def actual_groups(records: dict[str, Record], by: str, v4: int, v6: int,
                  order: str = "bandwidth") -> list[tuple]:
    report = make_report(StatsFile(["ncs version 1.0.0"], records, "mem").columns(), by, v4, v6, order)
    assert report.totals.addresses == len(records)
    return [(g.label, g.kind, [m.address for m in g.members], g.R, g.W, g.E, g.B, g.C, g.L)
            for g in report.groups]


def numbers(integral_only: bool = False):
    ints = st.integers(0, 10**7) | st.integers(0, 2**62)
    if integral_only:
        return ints
    return ints | st.floats(0, 1e9, allow_nan=False) | st.integers(-5, 5)


@st.composite
def record_sets(draw) -> dict[str, Record]:
    count = draw(st.integers(0, 40))
    records: dict[str, Record] = {}
    for _ in range(count):
        if draw(st.booleans()):
            address = f"198.51.{draw(st.integers(100, 103))}.{draw(st.integers(0, 255))}"
        else:
            address = f"2001:db8:{draw(st.integers(0, 3)):x}:{draw(st.integers(0, 2)):x}::{draw(st.integers(1, 9)):x}"
        names = draw(st.lists(st.sampled_from(TRICKY_NAMES), max_size=2))
        records[address] = Record(
            B=draw(numbers()), C=draw(numbers()), E=draw(st.integers(0, NOW) | st.integers(-3, 3)),
            L=draw(st.integers(0, NOW + 9)), S=NOW - 99, R=draw(numbers()), W=draw(numbers()), N=names,
        )
    return records


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record_sets(), st.sampled_from(["prefix", "domain"]), st.sampled_from([0, 8, 24, 31, 32]),
       st.sampled_from([0, 32, 64, 100, 128]), st.sampled_from(["bandwidth", "classic"]))
def test_grouping_matches_the_plain_algorithm(records, by, v4, v6, order) -> None:
    expected = reference_groups(records, by, v4, v6, order)
    actual = actual_groups(records, by, v4, v6, order)
    assert actual == expected
    # Same types too: E and L are ints as the reference's, sums are floats.
    assert [(type(g[5]), type(g[8])) for g in actual] == [(type(g[5]), type(g[8])) for g in expected]


def test_grouping_out_of_order_and_equal_addresses_spelled_differently() -> None:
    rng = random.Random(5)
    records = {}
    for i in range(400):
        a = f"2001:db8:0:{rng.randrange(3):x}::{rng.randrange(1, 40):x}" if i % 3 == 0 else \
            f"198.51.{100 + rng.randrange(3)}.{rng.randrange(256)}"
        records[a] = Record(R=rng.randrange(1000), W=rng.randrange(10**6), E=NOW - i,
                            N=[rng.choice(TRICKY_NAMES)])
    records["2001:DB8::1"] = Record(W=5, E=NOW, N=["x.example.com"])  # the same address as ::1
    records["2001:db8:0:0::1"] = Record(W=7, E=NOW, N=["y.example.org"])
    shuffled = dict(rng.sample(list(records.items()), len(records)))
    for by in ("prefix", "domain"):
        for order in ("bandwidth", "classic"):
            assert actual_groups(shuffled, by, 24, 64, order) == \
                reference_groups(shuffled, by, 24, 64, order)


def test_domain_finder_matches_the_public_suffix_list() -> None:
    # Names made from the list's own rules, with 0 to 3 labels in front.
    rng = random.Random(11)
    with open(PSLFILE, encoding="utf-8") as f:
        rules = [line.split()[0] for line in f if line.strip() and not line.startswith("//")]
    ascii_rules = [r for r in rules if r.isascii()]
    names = []
    for rule in rng.sample(ascii_rules, 3000):
        base = rule.lstrip("!").replace("*", rng.choice(["w", "x1", "city"]))
        for extra in range(4):
            names.append(".".join([f"l{rng.randrange(3)}" for _ in range(extra)] + [base]))
    names += ["a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.example.com"]
    found = DomainFinder().domains(names)
    assert found == [domain_of(n) for n in names]
    # One at a time, after the shared answers are remembered, still the same.
    finder = DomainFinder()
    assert [finder.domain(n) for n in reversed(names)] == found[::-1]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(
    st.lists(st.sampled_from(TRICKY_NAMES + ["q\"uote", "back\\slash", "amp&lt;", "info.inf", "nan.example"]),
             max_size=3),
    numbers() | st.sampled_from([math.inf, -math.inf, math.nan, -0.0, 1e300, 10**400]),
    numbers(integral_only=True),
), max_size=8))
def test_fast_json_and_text_match_the_per_address_path(rows) -> None:
    addresses = [f"198.51.100.{i}" for i in range(len(rows))]
    records = [Record(B=1, C=2, E=NOW, S=NOW - 9, R=r, W=w, N=n) for n, r, w in rows]
    report = make_report(StatsFile([], dict(zip(addresses, records, strict=True)), "m").columns())
    for group in report.groups:
        slow = ",".join(_address_object(a, r) for a, r in zip(group.addresses, group.records, strict=True))
        fast = addresses_text(group)
        assert fast == slow
        json.loads("[" + fast + "]")  # valid JSON: non-finite numbers became null
        plain = "".join(address_line(a, r.N) for a, r in zip(group.addresses, group.records, strict=True))
        assert group_lines(group) == plain + summary_line(group)
    json.loads(render_json(report))
    if plain_columns(report.stats) and report.groups:
        assert _plain_chunk(report.groups) == [group_text(g) for g in report.groups]


def test_big_reports_formatted_on_two_cores_are_the_same(monkeypatch, forks: list[int]) -> None:
    from ncs.report import render_json as rj
    from ncs.report import render_text as rt
    from ncs.report.render_text import render_text

    rng = random.Random(8)
    records = {f"198.51.{100 + i % 4}.{i // 4}": Record(
        B=rng.randrange(10**6), C=rng.randrange(99), E=NOW - i, S=NOW - 999, R=rng.randrange(10**5),
        W=rng.randrange(10**8), N=[rng.choice(TRICKY_NAMES[:12])] if i % 2 else []) for i in range(1000)}
    records["2001:db8::5"] = Record(R=1.5, W=math.inf, E=NOW, N=["q\"uote.example"])  # checked path
    for by in ("prefix", "domain"):
        report = make_report(StatsFile(["ncs version 1.0.0"], records, "mem").columns(), by)
        serial = (render_json(report), render_text(report))
        forks.clear()
        for module in (rj, rt):
            monkeypatch.setattr(module, "CHUNK_ADDRESSES", 50)
        monkeypatch.setattr(twocore, "MIN_RECORDS", 1)
        assert (render_json(report), render_text(report)) == serial
        assert len(forks) == 2
        json.loads(serial[0])
        monkeypatch.setattr(twocore, "MIN_RECORDS", MIN_RECORDS)
