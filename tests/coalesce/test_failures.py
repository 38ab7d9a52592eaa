"""Each way a host can fail: reported with its name and reason, the others merged, exit status 1."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

from tests.coalesce.fleet import Fleet, as_tuples, expected_merge, make_records, write_stats
from tests.support.sshd import make_client_key
from tests.support.stats import read_stats

START = 1_700_000_000


@pytest.fixture
def good(fleet: Fleet, tmp_path: Path):
    """Two good inventory entries on one sshd; returns their tables (the expected composite's input)."""
    rng = random.Random(42)
    tables = [make_records(rng, 30, START, ["a.example", "b.example"]) for _ in range(2)]
    server = fleet.server()
    for i, table in enumerate(tables):
        fleet.serve_file(f"good{i}", write_stats(tmp_path / f"good{i}.stats", table, START), server)
    return tables


def _bad_file(tmp_path: Path) -> Path:
    rng = random.Random(7)
    return write_stats(tmp_path / "bad.stats", make_records(rng, 30, START, ["x.example"]), START)


def _check(fleet: Fleet, tables, reason: str, *args: str, max_seconds: float | None = None) -> None:
    """Run the fleet; the bad host is reported with REASON, the good ones make the composite."""
    before = fleet.composite.exists()
    run = fleet.run(*args)
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr and "Exception" not in run.stderr
    row = run.summary()["bad"]
    assert row[1] == "failed"
    assert reason in row[4], row
    assert [run.summary()[f"good{i}"][1] for i in range(2)] == ["ok", "ok"]
    composite = read_stats(str(fleet.composite))
    assert as_tuples(composite.records) == expected_merge(tables)
    assert composite.header_value("composite") == "2 sources ok, 1 failed"
    assert run.totals() == (3, 2, 1, sum(map(len, tables)), len(composite.records))
    failed = [line for line in composite.header if line.startswith("source:\tbad\tfailed\t")]
    assert len(failed) == 1 and reason in failed[0]
    assert not before
    if max_seconds is not None:
        assert run.seconds < max_seconds, run.seconds


def test_sshd_stopped(fleet: Fleet, good, tmp_path: Path):
    server = fleet.server()
    server.stop()
    fleet.serve_file("bad", _bad_file(tmp_path), server)
    _check(fleet, good, "Connection refused", max_seconds=8)


def test_host_unreachable_times_out(fleet: Fleet, good, tmp_path: Path, netlab):
    # A route into the lab's bridge where no host answers ARP: SYNs are never
    # even sent, so only the connect timeout ends the attempt.
    address = "198.51.100.231"
    subprocess.run(["ip", "route", "replace", f"{address}/32", "dev", netlab.bridge], check=True)
    server = fleet.server()
    fleet.add("bad", server, address=address, command="true", connect_timeout=1.5)
    _check(fleet, good, "timed out after 1.5 s", max_seconds=8)


def test_sshd_hung(fleet: Fleet, good, tmp_path: Path):
    server = fleet.server()
    fleet.serve_file("bad", _bad_file(tmp_path), server, connect_timeout=1.5)
    server.pause()  # the factory resumes and stops it at teardown
    _check(fleet, good, "no SSH handshake", max_seconds=8)


def test_wrong_host_key(fleet: Fleet, good, tmp_path: Path):
    server = fleet.factory.start()
    server.authorize(fleet.key)
    impostor = make_client_key(tmp_path / "impostor", "hostkey")
    host = f"[{server.address}]:{server.port}"
    with fleet.known_hosts.open("a") as f:
        f.write(f"{host} {' '.join(impostor.public.split()[:2])}\n")
    fleet.serve_file("bad", _bad_file(tmp_path), server)
    _check(fleet, good, "host key changed")


def test_missing_known_hosts_entry(fleet: Fleet, good, tmp_path: Path):
    server = fleet.factory.start()
    server.authorize(fleet.key)
    fleet.serve_file("bad", _bad_file(tmp_path), server)
    _check(fleet, good, "unknown host key")


def test_wrong_client_key(fleet: Fleet, good, tmp_path: Path):
    server = fleet.factory.start()
    server.authorize(make_client_key(tmp_path / "other", "other"))
    with fleet.known_hosts.open("a") as f:
        f.write(server.known_hosts_line() + "\n")
    fleet.serve_file("bad", _bad_file(tmp_path), server)
    _check(fleet, good, "authentication as root refused")


def test_garbage_output(fleet: Fleet, good, tmp_path: Path):
    fleet.add("bad", fleet.server(), command="echo 'this is not a stats file'")
    _check(fleet, good, "not a complete stats file")


def test_truncated_stats_file(fleet: Fleet, good, tmp_path: Path):
    path = _bad_file(tmp_path)
    half = path.stat().st_size // 2
    fleet.add("bad", fleet.server(), command=f"head -c {half} {path}")
    _check(fleet, good, "not a complete stats file")


def test_empty_output(fleet: Fleet, good, tmp_path: Path):
    fleet.add("bad", fleet.server(), command="true")
    _check(fleet, good, "not a complete stats file")


def test_remote_command_times_out(fleet: Fleet, good, tmp_path: Path):
    fleet.add("bad", fleet.server(), command="sleep 30", timeout=2)
    _check(fleet, good, "timed out after 2 s while running 'sleep 30'", max_seconds=10)


def test_remote_command_fails(fleet: Fleet, good, tmp_path: Path):
    fleet.add("bad", fleet.server(), command=f"cat {tmp_path}/missing.stats")
    _check(fleet, good, "failed with status 1: cat:")


def test_legacy_fetch_of_a_missing_file(fleet: Fleet, good, tmp_path: Path):
    fleet.add("bad", fleet.server(), fetch=str(tmp_path / "missing.stats"))
    _check(fleet, good, "No such file")


def test_nothing_fetched_leaves_the_old_composite(fleet: Fleet, tmp_path: Path):
    fleet.composite.write_text("previous\n")
    fleet.add("bad", fleet.server(), command="echo garbage")
    run = fleet.run()
    assert run.returncode == 1
    assert "no host delivered stats" in run.stderr
    assert run.totals() == (1, 0, 1, 0, None)
    assert fleet.composite.read_text() == "previous\n"
