"""History from real agent dumps and composites over simulated days, checked against the captures.

Each simulated day, two monitored hosts' traffic is generated as a capture
(packet times on that day), replayed through `ncs-agent run --read` with
`--history`, and the two dumps are merged into a composite by the coalescer's
merge and appended to a second store.  The reports over time must give
each address the bytes and packets the captures hold, summed here from the
built frames, never from the agent.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from ncs.coalesce.composite import Composite
from ncs.history.store import add_snapshot_pieces
from ncs.stats.reader import read_stats
from ncs.stats.streamread import read_runs
from tests.support.pcapgen import LINKTYPE_EN10MB, Pkt, build, write_pcap

AGENT = [sys.executable, "-m", "ncs.agent.cli"]
REPORT = [sys.executable, "-m", "ncs.report.cli"]
DAY0 = 1_764_028_800  # a UTC midnight
HOSTS = {"web": "198.51.100.10", "mail": "198.51.100.20"}
#: Who each host talks to on each simulated day.
REMOTES = {
    "web": [["203.0.113.1", "203.0.113.2", "2001:db8::c"], ["203.0.113.1", "203.0.113.2", "203.0.113.77"],
            ["203.0.113.1", "203.0.113.200"], ["203.0.113.1", "203.0.113.2", "2001:db8:1::f"]],
    "mail": [["203.0.113.1", "203.0.113.9"], ["203.0.113.9"], ["203.0.113.9", "203.0.113.1"],
             ["203.0.113.9", "203.0.113.201"]],
}
DAYS = 4
#: Every capture runs from 10:00 to 10:04 of its day: under the agent's 5 minutes, so B and C are whole.
SPAN = 240


def _packets(rng: random.Random, me: str, remotes: list[str], day: int) -> list[Pkt]:
    """Return a day's packets between ME and REMOTES, both ways, the last one at 10:04."""
    start = DAY0 + day * 86400 + 10 * 3600
    pkts = []
    for i in range(rng.randint(20, 40)):
        remote = rng.choice(remotes)
        mine = me if ":" not in remote else "2001:db8:100::10"
        src, dst = (remote, mine) if rng.random() < 0.5 else (mine, remote)
        pkts.append(Pkt(src, dst, start + i * 3, payload=bytes(rng.randint(0, 1200)),
                        proto=rng.choice(["udp", "tcp"])))
    pkts.append(Pkt(remotes[0], me if ":" not in remotes[0] else "2001:db8:100::10", start + SPAN))
    return pkts


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> dict:
    """Replay every host's day through the agent into one store; composites into another."""
    base = tmp_path_factory.mktemp("history")
    rng = random.Random(13)
    store, composites = base / "agents.duckdb", base / "composites.duckdb"
    expected: dict[tuple[str, str, int], list[int]] = defaultdict(lambda: [0, 0])
    for day in range(DAYS):
        built = Composite()
        for rank, (host, me) in enumerate(HOSTS.items()):
            frames = build(LINKTYPE_EN10MB, _packets(rng, me, REMOTES[host][day], day))
            for f in frames:
                remote = f.pkt.dst if f.pkt.src in (me, "2001:db8:100::10") else f.pkt.src
                expected[(host, remote, day)][0] += f.counted_len
                expected[(host, remote, day)][1] += 1
            capture, stats = base / f"{host}-{day}.pcap", base / f"{host}-{day}.stats"
            write_pcap(str(capture), LINKTYPE_EN10MB, frames)
            res = subprocess.run([*AGENT, "run", "--read", str(capture), "--name", host, "--no-dns",
                                  "--bpf", f"host {me} or host 2001:db8:100::10", "--stats", str(stats),
                                  "--history", str(store)], capture_output=True, text=True, timeout=120)
            assert res.returncode == 0, res.stderr
            built.add(rank, host, read_stats(str(stats)))
        end = DAY0 + day * 86400 + 10 * 3600 + SPAN
        # as ncs-coalesce appends: the composite written, read back a run at a time
        written = base / f"all-{day}.stats"
        built.write(str(written), end)
        built.release()
        add_snapshot_pieces(str(composites), built.header(end), read_runs(str(written), piece_bytes=900),
                            "all.stats")
    return {"store": store, "composites": composites, "expected": expected, "newest": end}


def report(store: Path, *args: str) -> dict:
    """Return the JSON history report of STORE with ARGS."""
    res = subprocess.run([*REPORT, "--history", str(store), "--format", "json", *args],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def by_address(doc: dict) -> dict[str, tuple[int, int]]:
    """Return {address: (bytes, packets)} of a JSON history report."""
    return {a["address"]: (a["bytes"], a["packets"]) for g in doc["groups"] for a in g["addresses"]}


def summed(expected: dict, hosts, days) -> dict[str, tuple[int, int]]:
    """Return the captures' bytes and packets per address over HOSTS and DAYS."""
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (host, remote, day), (b, c) in expected.items():
        if host in hosts and day in days:
            out[remote][0] += b
            out[remote][1] += c
    return {a: (b, c) for a, (b, c) in out.items()}


def test_the_whole_history_holds_every_packet_of_every_day(history):
    doc = report(history["store"], "--since", "5d")
    want = summed(history["expected"], HOSTS, range(DAYS))
    assert by_address(doc) == want
    assert doc["totals"]["bytes"] == sum(b for b, _ in want.values())
    assert doc["totals"]["packets"] == sum(c for _, c in want.values())
    for group in doc["groups"]:
        assert group["bytes"] == sum(a["bytes"] for a in group["addresses"])
        assert sum(group["series"]["bytes"]) == group["bytes"]
        for a in group["addresses"]:
            assert sum(a["series"]["bytes"]) == a["bytes"] and sum(a["series"]["packets"]) == a["packets"]
    # the days fall into their own buckets: 5 days in 24 buckets of 5 hours
    assert sum(1 for v in doc["totals"]["series"] if v) == DAYS


def test_one_source_and_one_day(history):
    doc = report(history["store"], "--since", "23h", "--source", "mail")
    assert by_address(doc) == summed(history["expected"], ["mail"], [DAYS - 1])
    assert doc["since"] == history["newest"] - 23 * 3600 and doc["until"] == history["newest"] + 1


def test_new_remotes_are_those_first_seen_inside_the_window(history):
    last_two_days = report(history["store"], "--since", "47h", "--view", "new")
    assert set(by_address(last_two_days)) == {"203.0.113.200", "2001:db8:1::f", "203.0.113.201"}
    assert by_address(last_two_days)["203.0.113.200"] == summed(history["expected"], ["web"], [2])[
        "203.0.113.200"]
    first = {a["address"]: a["first_seen"] for g in last_two_days["groups"] for a in g["addresses"]}
    assert first["203.0.113.200"] == DAY0 + 2 * 86400 + 10 * 3600 + SPAN


def test_movers_are_ranked_by_the_change_against_the_day_before(history):
    doc = report(history["store"], "--since", "23h", "--view", "movers", "--by", "prefix", "--v4-prefix", "32",
                 "--v6-prefix", "128")
    today = summed(history["expected"], HOSTS, [DAYS - 1])
    yesterday = summed(history["expected"], HOSTS, [DAYS - 2])
    change = {a: today.get(a, (0, 0))[0] - yesterday.get(a, (0, 0))[0] for a in {*today, *yesterday}}
    got = {a["address"]: a["change"] for g in doc["groups"] for a in g["addresses"]}
    assert got == change  # 203.0.113.200 fell silent: a mover with no traffic now
    ranked = [g["addresses"][0]["address"] for g in doc["groups"]]
    assert [abs(change[a]) for a in ranked] == sorted((abs(v) for v in change.values()), reverse=True)


def test_grouping_by_prefix_adds_up(history):
    doc = report(history["store"], "--since", "5d", "--by", "prefix")
    labels = {g["label"]: g["bytes"] for g in doc["groups"]}
    want = summed(history["expected"], HOSTS, range(DAYS))
    assert labels["203.0.113.0/24"] == sum(b for a, (b, _) in want.items() if a.startswith("203.0.113."))
    assert labels["2001:db8::/64"] == want["2001:db8::c"][0]
    top = [g["bytes"] for g in doc["groups"]]
    assert top == sorted(top, reverse=True)


def test_composites_hold_both_hosts(history):
    doc = report(history["composites"], "--since", "5d")
    assert by_address(doc) == summed(history["expected"], HOSTS, range(DAYS))
    assert doc["source"] is None


@pytest.mark.parametrize("fmt", ["text", "table", "html", "cgi"])
def test_every_format_shows_the_window(history, fmt):
    res = subprocess.run([*REPORT, "--history", str(history["store"]), "--since", "5d", "--format", fmt,
                          "--width", "160"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "203.0.113.1" in res.stdout and "Top talkers" in res.stdout
    if fmt == "text":
        row = next(line for line in res.stdout.splitlines() if line.startswith("\t203.0.113.1\t"))
        want = summed(history["expected"], HOSTS, range(DAYS))["203.0.113.1"]
        assert row.split("\t")[2:4] == [str(want[0]), str(want[1])]
