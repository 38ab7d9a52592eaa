"""Remote latency: hosts behind a delaying relay wait in parallel, so the fleet takes about one host's time."""

from __future__ import annotations

import random
import time
from pathlib import Path

from ncs.coalesce.inventory import load_inventory
from ncs.coalesce.sshfetch import fetch_all, fetch_host
from tests.coalesce.fleet import Fleet, make_records, write_stats
from tests.support.relay import RelayFactory

START = 1_700_000_000
HOSTS = 8
DELAY = 0.25  # seconds each way: a 0.5 s round trip, as to a host on another continent


def test_waits_overlap_behind_a_slow_link(fleet: Fleet, relay_factory: RelayFactory, tmp_path: Path):
    server = fleet.server()
    rng = random.Random(3)
    tables = []
    for i in range(HOSTS):
        relay = relay_factory.start((server.address, server.port), DELAY)
        with fleet.known_hosts.open("a") as f:
            f.write(f"[{relay.address}]:{relay.port} {server.host_key_public}\n")
        tables.append(make_records(rng, 40, START, ["a.example", "b.example"], prefix=f"10.{i}.0."))
        path = write_stats(tmp_path / f"h{i}.stats", tables[-1], START)
        fleet.add(f"far{i}", server, address=relay.address, port=relay.port,
                  command=f"cat {path}", timeout=60)
    hosts = load_inventory(str(fleet.write_inventory())).hosts

    started = time.monotonic()
    one = fetch_host(hosts[0])
    alone = time.monotonic() - started
    assert one.ok, one.reason
    # The delay is real: the login and the command take several round trips.
    assert alone > 5 * 2 * DELAY, alone

    started = time.monotonic()
    results = fetch_all(hosts, jobs=HOSTS)
    together = time.monotonic() - started
    assert all(r.ok for r in results), [r.reason for r in results]
    print(f"one host {alone:.2f} s, {HOSTS} hosts with jobs={HOSTS}: {together:.2f} s")
    # One after the other they would take 8 times as long.
    assert together < 1.6 * alone, (together, alone)
    assert [len(r.stats) for r in results] == [len(t) for t in tables]
