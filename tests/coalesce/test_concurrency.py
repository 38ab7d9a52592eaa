"""Many inventory entries against a few sshd: the concurrency bound holds and the time scales with it."""

from __future__ import annotations

import math
import random
import threading
import time
from pathlib import Path

import pytest

from ncs.coalesce import sshfetch
from ncs.coalesce.composite import Composite
from ncs.coalesce.inventory import load_inventory
from ncs.coalesce.sshfetch import FetchResult, fetch_all
from ncs.stats.streamread import StatsStream
from tests.coalesce.fleet import (
    Fleet,
    as_tuples,
    expected_merge,
    make_records,
    merge_records,
    write_stats,
)
from tests.support.stats import as_file

START = 1_700_000_000
HOSTS = 32
JOBS = 8
SLEEP = 0.6  # seconds each remote command holds its slot
HOLD = 0.1  # seconds a thread stays in a watched section (long enough for another host's bytes to arrive)


def _max_overlap(log: Path) -> int:
    """Return the largest number of remote commands running at the same moment."""
    events = []
    for line in log.read_text().split("\n"):
        if line:
            kind, stamp = line.split()
            events.append((float(stamp), 1 if kind == "S" else -1))
    assert sum(e for _, e in events) == 0, "every command that started also ended"
    running = peak = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):
        running += step
        peak = max(peak, running)
    return peak


def test_bound_holds_and_time_scales(fleet: Fleet, tmp_path: Path):
    rng = random.Random(5)
    servers = [fleet.server() for _ in range(3)]
    log = tmp_path / "commands.log"
    tables = []
    for i in range(HOSTS):
        table = make_records(rng, 10, START, ["a.example"], prefix=f"10.{i}.0.")
        tables.append(table)
        path = write_stats(tmp_path / f"h{i}.stats", table, START)
        command = (f"echo S $(date +%s.%N) >> {log}; sleep {SLEEP}; "
                   f"echo E $(date +%s.%N) >> {log}; cat {path}")
        fleet.add(f"h{i:02d}", servers[i % 3], command=command)

    inv = load_inventory(str(fleet.write_inventory(jobs=JOBS)))
    started = time.monotonic()
    single = fetch_all(inv.hosts[:1], 1)
    one_host = time.monotonic() - started
    assert single[0].ok, single[0].reason
    log.unlink()

    started = time.monotonic()
    results = fetch_all(inv.hosts, inv.jobs)
    total = time.monotonic() - started
    assert all(r.ok for r in results), [r.reason for r in results if not r.ok]
    assert [r.name for r in results] == [h.name for h in inv.hosts]
    for r in results:  # the remote command's sleep is in the transfer, and the stages add up
        assert r.stages.connect > 0 and r.stages.transfer >= SLEEP and r.stages.parse > 0, r
        assert abs(sum(r.stages) - r.seconds) < 0.01, r

    peak = _max_overlap(log)
    assert peak <= JOBS, f"{peak} commands ran at once with jobs={JOBS}"
    assert peak >= JOBS // 2, f"only {peak} commands ran at once: the pool is not used"
    rounds = math.ceil(HOSTS / JOBS)
    # The bound makes at least `rounds` sleeps in a row; parallelism keeps it
    # near rounds x one host's time.  sshd itself needs CPU for every login,
    # so a loaded 2-core machine gets room.
    assert total >= rounds * SLEEP
    print(f"one host {one_host:.2f} s, {HOSTS} hosts with jobs={JOBS}: {total:.2f} s, peak {peak}")
    # Fetched one after the other this would take HOSTS x one_host (about 8x more).
    assert total <= rounds * one_host * 2 + 2.0, (total, one_host)
    assert as_tuples(merge_records([as_file(r.stats).records for r in results])) == expected_merge(tables)


class _Overlap:
    """Counts the threads inside a watched section at once; each stays a moment (letting go of the GIL)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self.inside = 0
        self.most = 0
        self.entries = 0

    def __enter__(self) -> None:
        with self._guard:
            self.inside += 1
            self.entries += 1
            self.most = max(self.most, self.inside)
        time.sleep(HOLD)  # another thread would get in meanwhile, were nothing holding it off

    def __exit__(self, *exc) -> None:
        with self._guard:
            self.inside -= 1


def test_hosts_are_read_and_merged_one_thread_at_a_time(fleet: Fleet, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch):
    """Reading arrived bytes and merging tables never run in two fetching threads at once,
    while the waits (remote command, transfer) still overlap."""
    rng = random.Random(11)
    servers = [fleet.server() for _ in range(3)]
    tables = []
    for i in range(6):
        table = make_records(rng, 120, START, ["a.example", "b.example"], prefix=f"10.{i}.0.")
        tables.append(table)
        path = write_stats(tmp_path / f"h{i}.stats", table, START)
        fleet.add(f"h{i:02d}", servers[i % 3], command=f"sleep {SLEEP}; cat {path}")
    hosts = load_inventory(str(fleet.write_inventory(jobs=6))).hosts
    overlap = _Overlap()

    class WatchedStream(StatsStream):  # the real reader, entered through the counter
        def feed(self, data: bytes) -> None:
            with overlap:
                super().feed(data)

        def finish(self, allow_empty: bool = True):
            with overlap:
                return super().finish(allow_empty=allow_empty)

    monkeypatch.setattr(sshfetch, "StatsStream", WatchedStream)
    built = Composite()
    rank = {spec.name: i for i, spec in enumerate(hosts)}

    def merged(result: FetchResult) -> None:
        assert result.stats is not None, result.reason
        with overlap:
            built.add(rank[result.name], result.name, result.stats)

    started = time.monotonic()
    results = fetch_all(hosts, jobs=6, on_done=merged)
    took = time.monotonic() - started
    assert all(r.ok for r in results), [r.reason for r in results if not r.ok]
    assert overlap.entries >= 3 * len(hosts)  # every host fed, finished and merged
    assert overlap.most == 1, f"{overlap.most} fetching threads read or merged at once"
    # one after the other, the remote commands alone would take len(hosts) x SLEEP;
    # the watched sections (three a host) add HOLD each, one at a time
    assert took < (len(hosts) - 1) * SLEEP + 3 * len(hosts) * HOLD, f"the waits did not overlap: {took:.1f} s"
    merged_records = as_file(built.merge.rows(built.merge.order())).records
    assert as_tuples(merged_records) == expected_merge(tables)
