"""Stacked coalescers, the run lock, the cached composite and the report output."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.coalesce.fleet import (
    REPO,
    Fleet,
    as_tuples,
    expected_merge,
    make_records,
    run_coalesce,
    run_in_terminal,
    write_stats,
)
from tests.support.stats import read_stats

START = 1_700_000_000


def _sources(tmp_path: Path, count: int, seed: int):
    rng = random.Random(seed)
    names = ["a.example.com", "b.example.com", "c.example.net"]
    tables = [make_records(rng, 40, START + i, names) for i in range(count)]
    paths = [write_stats(tmp_path / f"s{i}.stats", t, START + i, hits=i + 1, rate=10 * (i + 1))
             for i, t in enumerate(tables)]
    return tables, paths


def _inventory(fleet: Fleet, path: Path, hosts: dict[str, str], server, out: Path) -> Path:
    """Write an inventory at PATH whose hosts print the given files through SERVER."""
    path.write_text(yaml.safe_dump({
        "defaults": {"user": "root", "identity": fleet.key.path, "known_hosts": str(fleet.known_hosts),
                     "ssh_agent": False, "ssh_config": False, "connect_timeout": 3},
        "hosts": {name: {"address": server.address, "port": server.port, "command": f"cat {file}"}
                  for name, file in hosts.items()},
        "cache": str(out),
    }))
    return path


def test_composite_of_composites_equals_composite_of_all(fleet: Fleet, tmp_path: Path):
    tables, paths = _sources(tmp_path, 4, seed=1)
    server = fleet.server()
    left, right, flat, top = (tmp_path / f"{n}.stats" for n in ("left", "right", "flat", "top"))
    runs = [
        (_inventory(fleet, tmp_path / "l.yaml", {"h0": paths[0], "h1": paths[1]}, server, left)),
        (_inventory(fleet, tmp_path / "r.yaml", {"h2": paths[2], "h3": paths[3]}, server, right)),
        (_inventory(fleet, tmp_path / "f.yaml", {f"h{i}": p for i, p in enumerate(paths)}, server, flat)),
        # the upper coalescer fetches the lower composites over SSH like any host
        (_inventory(fleet, tmp_path / "t.yaml", {"left": left, "right": right}, server, top)),
    ]
    for inventory in runs:
        run = run_coalesce("-i", str(inventory))
        assert run.returncode == 0, run.stderr
    stacked, direct = read_stats(str(top)), read_stats(str(flat))
    assert as_tuples(stacked.records) == as_tuples(direct.records) == expected_merge(tables)
    assert list(stacked.records) == list(direct.records)
    for key in ("hits", "bytes", "users", "start"):
        assert stacked.header_number(key) == direct.header_number(key), key
    assert direct.header_number("hits") == 1 + 2 + 3 + 4
    assert any(line.startswith("[right] [h3] bpf:") for line in stacked.header)


def _hold_lock(path: Path) -> subprocess.Popen:
    """Start a process that holds the coalescer's lock on PATH until killed; waits until it does."""
    code = ("import os, sys, time; from ncs.locks import FileLock; lock = FileLock(sys.argv[1]); "
            "lock.acquire(); lock.write(str(os.getpid())); print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_running_coalescer_keeps_a_second_one_out(fleet: Fleet, tmp_path: Path):
    _, paths = _sources(tmp_path, 1, seed=2)
    fleet.serve_file("h0", paths[0])
    lock = fleet.base / "coalesce.lock"
    holder = _hold_lock(lock)
    try:
        run = fleet.run()
        assert run.returncode == 3
        assert f"another ncs-coalesce (pid {holder.pid}) is running" in run.stderr
        assert not fleet.composite.exists()
    finally:
        holder.kill()
        holder.wait()
    assert fleet.run().returncode == 0


def test_a_stale_lock_of_a_dead_process_is_taken_over(fleet: Fleet, tmp_path: Path):
    tables, paths = _sources(tmp_path, 1, seed=3)
    fleet.serve_file("h0", paths[0])
    dead = subprocess.Popen(["true"])
    dead.wait()
    (fleet.base / "coalesce.lock").write_text(f"{dead.pid}\n")
    run = fleet.run()
    assert run.returncode == 0, run.stderr
    assert as_tuples(read_stats(str(fleet.composite)).records) == expected_merge(tables)
    assert (fleet.base / "coalesce.lock").read_text() == ""


def test_a_fresh_composite_is_served_without_fetching(fleet: Fleet, tmp_path: Path):
    tables, paths = _sources(tmp_path, 2, seed=4)
    fleet.serve_file("h0", paths[0])
    fleet.top["refresh"] = 300
    assert fleet.run().returncode == 0
    first = fleet.composite.read_text()
    # New data at the source: a fresh composite is still served as it is ...
    os.replace(paths[1], paths[0])
    run = fleet.run("--format", "json")
    assert run.returncode == 0, run.stderr
    assert "served without fetching" in run.stderr
    assert fleet.composite.read_text() == first
    report = json.loads(run.stdout)  # the report of the cached composite
    assert report["source"] == str(fleet.composite)
    assert report["totals"]["addresses"] == len(tables[0])
    # ... until it is older than `refresh`, or --force is given.
    old = time.time() - 301
    os.utime(fleet.composite, (old, old))
    assert fleet.run().returncode == 0
    assert as_tuples(read_stats(str(fleet.composite)).records) == expected_merge([tables[1]])


def test_report_formats_come_from_ncs_report(fleet: Fleet, tmp_path: Path):
    tables, paths = _sources(tmp_path, 2, seed=5)
    for i, p in enumerate(paths):
        fleet.serve_file(f"h{i}", p)
    run = fleet.run("--format", "text")
    assert run.returncode == 0, run.stderr
    assert "Composite report, CIDR/24 ordered by BANDWIDTH" in run.stdout
    assert "composite:\t2 sources ok, 0 failed" in run.stdout
    merged = expected_merge(tables)
    assert f"users\t\t= {len(merged)}" in run.stdout


def test_terminal_gets_progress_and_a_summary_table(fleet: Fleet, tmp_path: Path):
    _, paths = _sources(tmp_path, 2, seed=6)
    fleet.serve_file("tty-good", paths[0])
    fleet.add("tty-bad", fleet.server(), command="echo nonsense")
    stranger = fleet.factory.start()  # not in known_hosts: its reason holds "[addr]:port"
    stranger.authorize(fleet.key)
    fleet.serve_file("tty-unknown", paths[1], stranger)
    fleet.write_inventory()
    status, screen = run_in_terminal([sys.executable, "-m", "ncs.coalesce.cli",
                                      "-i", str(fleet.inventory_path)])
    assert status == 1
    assert "fetching" in screen  # the progress bar
    for word in ("host", "status", "records", "seconds", "reason", "tty-good", "tty-bad",
                 "not a complete stats file", f"[{stranger.address}]:{stranger.port}"):
        assert word in screen, word
