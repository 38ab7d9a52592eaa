"""Many inventory entries against a few sshd: the concurrency bound holds and the time scales with it."""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

from ncs.coalesce.inventory import load_inventory
from ncs.coalesce.sshfetch import fetch_all
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
